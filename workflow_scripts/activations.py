"""Activations of the target model's layers on a probe set (or a shard of its rows), through one view."""
from neuron_concepts import activations, data, io, models, shards
from neuron_concepts.layers import LayerNeurons
from neuron_concepts.logs import to_file

with to_file(snakemake.log[0]):
    p = snakemake.params
    manifest = shards.manifest_rows(io.load_manifest(snakemake.input.manifest), p.rows)
    layers = [LayerNeurons.from_dict(spec) for spec in p.layers]
    if manifest.empty:  # a shard past the manifest's end: the join leaves it out
        acts = {layer.name: shards.empty_rows(2, "float32") for layer in layers}
    else:
        boxes = io.load_boxes(snakemake.input.boxes[0]) if snakemake.input.boxes else None
        device = models.resolve_device(p.device)
        target = models.load_target(**p.target, device=device)
        loader = data.probe_loader(manifest, target.preprocess, p.batch_size, boxes, device=device,
                                   workers=data.default_workers(device, snakemake.threads), decode=p.decode)
        acts = activations.layer_activations(target.module, layers, loader, device, total=len(loader))
    for layer, path in zip(layers, snakemake.output):  # one file per layer, in target.layers order
        io.save_activations(path, acts[layer.name], ids=manifest["image_id"])
