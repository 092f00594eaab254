"""Build the neuron browser from the pipeline's artifacts (no model, no torch)."""
from neuron_concepts import browser
from neuron_concepts.logs import to_file

with to_file(snakemake.log[0]):
    browser.build_site(snakemake.output.index, **snakemake.params.site,
                       options=browser.SiteOptions(**snakemake.params.options),
                       threads=snakemake.threads)
