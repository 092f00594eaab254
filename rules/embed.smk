rule text_embeddings:
    """CLIP text embeddings of a concept set: WWW prompts, the base template and raw strings."""
    input:
        concepts="results/concepts/{concepts}.parquet",
        weights=lambda wc: weights_marker("clip", wc.clip),
    output:
        "results/text_emb/{clip}/{concepts}.npz",
    params:
        clip=lambda wc: clip_spec(wc.clip),
        template=config["methods"]["www"]["template"],
        base_template=config["methods"]["www"]["base_template"],
        batch_size=config["batch_size"]["text"],
        device=config["device"],
    resources:
        gpu=use_gpu(),
        mem_mb=8000,
        runtime=60,
    log:
        "logs/text_embeddings/{clip}/{concepts}.log",
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/text_embeddings.py"


rule image_embeddings:
    """CLIP image embeddings of a probe set through one view (center or Grad-CAM crop)."""
    input:
        manifest="results/probe/{probe}/manifest.parquet",
        boxes=view_boxes,
        weights=lambda wc: weights_marker("clip", wc.clip),
    output:
        "results/image_emb/{probe}/{clip}/{view}.npz",
    params:
        clip=lambda wc: clip_spec(wc.clip),
        batch_size=config["batch_size"]["image"],
        device=config["device"],
    resources:
        gpu=use_gpu(),
        mem_mb=8000,
        runtime=120,
    log:
        "logs/image_embeddings/{probe}/{clip}/{view}.log",
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/image_embeddings.py"
