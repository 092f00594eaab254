rule activations:
    """Activations [N, K] of every configured layer of the target, one forward pass per view."""
    input:
        manifest="results/probe/{probe}/manifest.parquet",
        boxes=view_boxes,
        weights=lambda wc: weights_marker("target", wc.target),
    output:
        expand(
            "results/activations/{{probe}}/{{target}}/{{view}}/{layer}.npz",
            layer=LAYERS,
        ),
    params:
        target=target_spec(),
        # each layer's module path, layout and reduction (neuron_concepts.layers.LayerNeurons)
        layers=[n.to_dict() for n in TARGET_LAYERS.neurons],
        batch_size=config["batch_size"]["image"],
        device=config["device"],
    # the forward's threads, or on CUDA the main process plus DataLoader workers
    threads: image_model_threads
    resources:
        gpu=use_gpu(),
        mem_mb=8000,
        runtime=120,
    log:
        "logs/activations/{probe}/{target}/{view}.log",
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/activations.py"
