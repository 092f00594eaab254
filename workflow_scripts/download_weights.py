"""Fetch one model's weights into the cache and record where they are and their hash."""
from neuron_concepts import io, models
from neuron_concepts.logs import to_file

with to_file(snakemake.log[0]) as log:
    spec = dict(snakemake.params.spec)
    path = models.fetch_weights(spec)
    sha256 = io.sha256_file(path) if path and path.is_file() else None
    log.info("weights of %s/%s: %s (sha256 %s)", spec["kind"], snakemake.wildcards.tag, path, sha256)
    io.save_weights_marker(snakemake.output[0], spec, path, sha256)
