"""Embed a probe set's images (or a shard of its rows), through one view, with CLIP's image encoder."""
from neuron_concepts import data, embeddings, io, models, shards
from neuron_concepts.logs import to_file

with to_file(snakemake.log[0]):
    p = snakemake.params
    manifest = shards.manifest_rows(io.load_manifest(snakemake.input.manifest), p.rows)
    if manifest.empty:  # a shard past the manifest's end: the join leaves it out
        emb = shards.empty_rows(2, "float16")
    else:
        boxes = io.load_boxes(snakemake.input.boxes[0]) if snakemake.input.boxes else None
        clip = models.load_clip(**p.clip, device=models.resolve_device(p.device))
        loader = data.probe_loader(manifest, clip.preprocess, p.batch_size, boxes,
                                   workers=data.default_workers(clip.device, snakemake.threads),
                                   device=clip.device, decode=p.decode)
        emb = embeddings.encode_images(clip, loader, total=len(loader))
    io.save_image_embeddings(snakemake.output[0], emb, ids=manifest["image_id"])
