# Activations of the target's layers on a probe set, one forward pass per view. A probe set
# larger than scale.images_per_job runs as activations_shard jobs over ranges of manifest
# rows, joined by join_activations into the same per-layer files (rules/common.smk, image
# shards); one that fits one job is the activations job alone.


rule activations:
    """Activations [N, K] of every configured layer of the target, one forward pass per view."""
    input:
        manifest=paths.probe_manifest(),
        boxes=view_boxes,
        weights=lambda wc: weights_marker("target", wc.target),
    output:
        [paths.activations(layer=layer) for layer in LAYERS],
    params:
        target=target_spec(),
        # each layer's module path, layout and reduction (neuron_concepts.layers.LayerNeurons)
        layers=[n.to_dict() for n in TARGET_LAYERS.neurons],
        rows=shard_rows,
        # pil: the model's own pipeline; gpu: nvJPEG and GPU resizing (a +gpudecode view)
        decode=lambda wc: names.view_decode(wc.view),
        batch_size=config["batch_size"]["image"],
        device=config["device"],
    wildcard_constraints:
        probe=unsharded_probes("image"),
    # the forward's threads, or on CUDA the main process plus DataLoader workers
    threads: image_model_threads
    resources:
        **gpu_resources(image_job_gpu_mem_mb(40, config["batch_size"]["image"])),
        cpus_per_gpu=lambda wc, threads: threads,
        mem_mb=image_job_mem_mb(4 * sum(n.neurons for n in TARGET_LAYERS.neurons)),
        runtime=image_job_runtime,
    log:
        "logs/activations/{probe}/{target}/{view}.log",
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/activations.py"


use rule activations as activations_shard with:
    output:
        [paths.image_shard(paths.activations(layer=layer)) for layer in LAYERS],
    wildcard_constraints:
        probe=names.CONFIG_NAME,
    log:
        "logs/activations/{probe}/{target}/{view}/{shard}.log",


rule join_activations:
    """The activations of a sharded probe set: its shards' rows, in manifest order."""
    input:
        manifest=paths.probe_manifest(),
        shards=lambda wc: [path for layer in LAYERS for path in image_shard_paths(
            paths.activations(wc.probe, wc.target, wc.view, layer), wc.probe, "image")],
    output:
        [paths.activations(layer=layer) for layer in LAYERS],
    params:
        kind="activations",
        # each layer's shards, in row order (one list per output)
        shards=lambda wc: [image_shard_paths(paths.activations(wc.probe, wc.target, wc.view, layer),
                                             wc.probe, "image")
                           for layer in LAYERS],
    wildcard_constraints:
        probe=sharded_probes("image"),
    resources:
        mem_mb=join_mem_mb(4 * sum(n.neurons for n in TARGET_LAYERS.neurons)),
        runtime=lambda wc, attempt: attempt * 30,
    log:
        "logs/join_activations/{probe}/{target}/{view}.log",
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/join_shards.py"
