"""Grad-CAM of the target model's predicted class on every whole probe image (or a shard of them)."""
from neuron_concepts import data, gradcam, io, models, shards
from neuron_concepts.layers import LayerNeurons
from neuron_concepts.logs import to_file

with to_file(snakemake.log[0]) as log:
    p = snakemake.params
    manifest = shards.manifest_rows(io.load_manifest(snakemake.input.manifest), p.rows)
    if manifest.empty:  # a shard past the manifest's end: the join leaves it out
        cams, predicted = shards.empty_rows(3, "float32"), shards.empty_rows(1, "int64")
    else:
        device = models.resolve_device(p.device)
        target = models.load_target(**p.target, device=device)
        layer = LayerNeurons.from_dict(p.layer)
        cams, predicted = gradcam.compute_cams(
            target.module, models.get_layer(target.module, layer.layer), manifest["path"],
            input_size=target.input_size, mean=target.mean, std=target.std,
            batch_size=p.batch_size, device=device,
            num_workers=data.default_workers(device, snakemake.threads), neurons=layer)
        log.info("Grad-CAM at %s (%s) of %s: %d images, CAMs of %dx%d", layer.layer, layer.layout,
                 target.tag, len(cams), cams.shape[1], cams.shape[2])
    io.save_cams(snakemake.output[0], manifest["image_id"], cams, predicted)
