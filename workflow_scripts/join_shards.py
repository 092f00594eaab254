"""Join an image stage's shards (activations, image embeddings or Grad-CAMs) into the artifact."""
from neuron_concepts import io, shards
from neuron_concepts.logs import to_file

with to_file(snakemake.log[0]) as log:
    p = snakemake.params
    ids = io.load_manifest(snakemake.input.manifest)["image_id"]
    if p.kind == "activations":
        shards.join_activations(p.shards, snakemake.output, ids)
    elif p.kind == "image_embeddings":
        shards.join_image_embeddings(p.shards, snakemake.output[0], ids)
    else:
        shards.join_cams(p.shards, snakemake.output[0], ids)
    log.info("joined %d %s shard(s) of %d images", len(snakemake.input.shards) // len(snakemake.output),
             p.kind, len(ids))
