"""Fetch one model's weights into the cache and record where they are and their hash."""
import json

from neuron_concepts import io, models
from neuron_concepts.logs import to_file

with to_file(snakemake.log[0]) as log:
    spec = dict(snakemake.params.spec)
    path = models.fetch_weights(spec)
    record = {"spec": spec, "path": str(path) if path else None,
              "sha256": models.sha256_file(path) if path and path.is_file() else None}
    log.info("weights of %s/%s: %s", spec["kind"], snakemake.wildcards.tag, record)
    io.write_text(snakemake.output[0], json.dumps(record, indent=2, default=str))
