"""Record what made results/: resolved config, package versions, weights and a manifest."""
from pathlib import Path

from neuron_concepts import provenance
from neuron_concepts.logs import to_file

with to_file(snakemake.log[0]) as log:
    weights = provenance.weights_from_markers(snakemake.params.models)
    out = provenance.write_provenance(snakemake.params.results, snakemake.params.config, weights,
                                      out_dir=Path(snakemake.output.manifest).parent)
    log.info("provenance of %s written to %s", snakemake.params.results, out)
