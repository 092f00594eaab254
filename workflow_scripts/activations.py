"""Activations of the target model's layers on a probe set, through one view."""
from neuron_concepts import activations, data, io, models
from neuron_concepts.layers import LayerNeurons
from neuron_concepts.logs import to_file

with to_file(snakemake.log[0]):
    p = snakemake.params
    manifest = io.load_manifest(snakemake.input.manifest)
    boxes = io.load_boxes(snakemake.input.boxes[0]) if snakemake.input.boxes else None
    device = models.resolve_device(p.device)
    target = models.load_target(**p.target, device=device)
    layers = [LayerNeurons.from_dict(spec) for spec in p.layers]
    loader = data.image_loader(manifest, target.preprocess, p.batch_size, boxes,
                               workers=data.default_workers(device, snakemake.threads), device=device)
    acts = activations.layer_activations(target.module, layers, loader, device, total=len(loader))
    for layer, path in zip(layers, snakemake.output):  # one file per layer, in target.layers order
        io.save_activations(path, acts[layer.name], ids=manifest["image_id"])
