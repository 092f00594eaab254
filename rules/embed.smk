include: "helpers/embed.smk"


rule text_embeddings:
    """CLIP text embeddings of a concept set by every CLIP model that matches concepts.

    One job per concept set (editing it invalidates every model's embeddings alike); each
    model embeds only what its roles read: WWW's prompts and base template (clip.match),
    raw strings (clip.dissect), and keeps its own artifact. A raw string the same model
    already embedded as an ImageNet class name (clip.dissect = clip.eval, the papers'
    setting) is copied from evaluation_class_embeddings, not embedded again.
    """
    input:
        concepts=paths.concepts(),
        # ancient: a rewritten class-name file (same model, same texts) reruns no CLIP stage
        known=lambda wc: [ancient(m["known"]) for m in text_embedding_models(wc) if m["known"]],
        weights=[marker for tag in text_models() for marker in weights_marker("clip", tag)],
    output:
        [paths.text_embeddings(tag) for tag in text_models()],
    params:
        # Each model: its loader arguments, the parts it embeds and its output path.
        models=text_embedding_models,
        template=config["methods"]["www"]["template"],
        base_template=config["methods"]["www"]["base_template"],
        batch_size=config["batch_size"]["text"],
        device=config["device"],
    # Configured concept sets only; ConVis definition sets: convis_text_embeddings.
    wildcard_constraints:
        concepts=names.CONFIG_NAME,
    resources:
        **gpu_resources(text_gpu_mem_mb()),
        mem_mb=8000,
        # minutes: each model embeds its parts (prompts, raw strings) of every concept
        runtime=text_runtime(2 * len(text_models())),
    log:
        "logs/text_embeddings/{concepts}.log",
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/text_embeddings.py"


rule convis_text_embeddings:
    """CLIP embeddings of a ConVis vocabulary's definitions (raw strings), row i = synset i."""
    input:
        concepts=paths.convis_concepts(),
        weights=lambda wc: weights_marker("clip", wc.clip),
    output:
        paths.convis_text_embeddings(),
    params:
        models=lambda wc: [dict(tag=wc.clip, clip=clip_spec(wc.clip), parts=["raw"],
                                path=paths.convis_text_embeddings(wc.clip, wc.vocab))],
        # no WWW templates: raw definitions only, so a template change reruns no rank volume
        batch_size=config["batch_size"]["text"],
        device=config["device"],
    priority: 5
    resources:
        **gpu_resources(text_gpu_mem_mb()),
        mem_mb=8000,
        runtime=text_runtime(1),
    log:
        "logs/convis_text_embeddings/{clip}/{vocab}.log",
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/text_embeddings.py"


rule image_embeddings:
    """CLIP image embeddings of a probe set through one view (center or Grad-CAM crop).

    A probe set larger than scale.images_per_job: image_embeddings_shard jobs over ranges of
    manifest rows, joined by join_image_embeddings (rules/common.smk, image shards).
    """
    input:
        manifest=paths.probe_manifest(),
        boxes=view_boxes,
        weights=lambda wc: weights_marker("clip", wc.clip),
    output:
        paths.image_embeddings(),
    params:
        clip=lambda wc: clip_spec(wc.clip),
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
        mem_mb=image_job_mem_mb(4 * 1024),  # float32 rows of at most 1,024 dimensions
        runtime=image_job_runtime,
    log:
        "logs/image_embeddings/{probe}/{clip}/{view}.log",
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/image_embeddings.py"


use rule image_embeddings as image_embeddings_shard with:
    output:
        paths.image_shard(paths.image_embeddings()),
    wildcard_constraints:
        probe=names.CONFIG_NAME,
    log:
        "logs/image_embeddings/{probe}/{clip}/{view}/{shard}.log",


rule join_image_embeddings:
    """The CLIP image embeddings of a sharded probe set: its shards' rows, in manifest order."""
    input:
        manifest=paths.probe_manifest(),
        shards=lambda wc: image_shard_paths(paths.image_embeddings(wc.probe, wc.clip, wc.view),
                                            wc.probe, "image"),
    output:
        paths.image_embeddings(),
    params:
        kind="image_embeddings",
        shards=lambda wc: image_shard_paths(paths.image_embeddings(wc.probe, wc.clip, wc.view),
                                            wc.probe, "image"),
    wildcard_constraints:
        probe=sharded_probes("image"),
    resources:
        mem_mb=join_mem_mb(4 * 1024),
        runtime=lambda wc, attempt: attempt * 30,
    log:
        "logs/join_image_embeddings/{probe}/{clip}/{view}.log",
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/join_shards.py"
