"""Build a normalised concept set."""
from neuron_concepts import concepts, io
from neuron_concepts.logs import to_file

with to_file(snakemake.log[0]) as log:
    table = concepts.concept_set(snakemake.params.spec)
    log.info("concept set %s: %d concepts", snakemake.wildcards.concepts, len(table))
    io.save_concepts(snakemake.output[0], table)
