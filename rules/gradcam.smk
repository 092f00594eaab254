# The Grad-CAM view of the improved WWW (Sannomiya & Hotta 2025): CAMs once per probe set
# and target, crop boxes per crop fraction, and the crop comparison figure. A gradcam view
# is named gradcam-{crop} (gradcam-f0.5, names.gradcam_crop); its boxes paths.crop_boxes.
# With several targets each target's crops are its own: the CLIP stages name the view with
# its target, gradcam-f0.5@resnet18-random (clip_view in rules/common.smk).


include: "helpers/gradcam.smk"


rule grad_cam:
    """Grad-CAM of the predicted class on every whole probe image; independent of the crop.

    A probe set larger than scale.images_per_job: grad_cam_shard jobs over ranges of
    manifest rows, joined by join_grad_cam (rules/common.smk, image shards).
    """
    input:
        manifest=paths.probe_manifest(),
        weights=lambda wc: weights_marker("target", wc.target),
    output:
        paths.gradcam_cams(),
    params:
        target=lambda wc: target_spec(wc.target),
        # the Grad-CAM layer and how its output is a map (neuron_concepts.layers.LayerNeurons)
        layer=lambda wc: gradcam_layer_spec(wc.target),
        rows=shard_rows,
        batch_size=config["gradcam"]["batch_size"],
        device=config["device"],
    wildcard_constraints:
        probe=unsharded_probes("gradcam"),
    # the forward's threads, or on CUDA the main process plus DataLoader workers
    threads: image_model_threads
    # the gradcam view's chain (boxes, crops' embeddings and activations) is the longest
    priority: 10
    resources:
        **gpu_resources(image_job_gpu_mem_mb(120, config["gradcam"]["batch_size"])),
        cpus_per_gpu=lambda wc, threads: threads,
        mem_mb=image_job_mem_mb(4 * 64 * 64 + 8),  # a CAM of at most 64 x 64, the class
        # float32 forward and backward, activations and gradients kept: ~120 MB a 224-px image
        runtime=lambda wc, attempt: 2 * image_job_runtime(wc, attempt),
    log:
        "logs/grad_cam/{probe}/{target}.log",
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/grad_cam.py"


use rule grad_cam as grad_cam_shard with:
    output:
        paths.image_shard(paths.gradcam_cams()),
    wildcard_constraints:
        probe=names.CONFIG_NAME,
    log:
        "logs/grad_cam/{probe}/{target}/{shard}.log",


rule join_grad_cam:
    """The Grad-CAMs of a sharded probe set: its shards' rows, in manifest order."""
    input:
        manifest=paths.probe_manifest(),
        shards=lambda wc: image_shard_paths(paths.gradcam_cams(wc.probe, wc.target), wc.probe, "gradcam"),
    output:
        paths.gradcam_cams(),
    params:
        kind="cams",
        shards=lambda wc: image_shard_paths(paths.gradcam_cams(wc.probe, wc.target), wc.probe, "gradcam"),
    wildcard_constraints:
        probe=sharded_probes("gradcam"),
    priority: 10
    resources:
        mem_mb=join_mem_mb(4 * 64 * 64 + 8),
        runtime=lambda wc, attempt: attempt * 30,
    log:
        "logs/join_grad_cam/{probe}/{target}.log",
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/join_shards.py"


rule crop_boxes:
    """Square boxes around each image's CAM peak at one crop fraction; no model, seconds."""
    input:
        manifest=paths.probe_manifest(),
        cams=paths.gradcam_cams(),
    output:
        paths.crop_boxes(),
    params:
        crop_fraction=lambda wc: names.parse_gradcam_crop(wc.crop)["crop_fraction"],
    priority: 10
    resources:
        mem_mb=4000,
        runtime=30,
    log:
        "logs/crop_boxes/{probe}/{target}/{crop}.log",
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/crop_boxes.py"


rule crop_comparison_figure:
    """Centre crop beside Grad-CAM crop with the CAM, for sample images (the seed's Figure 4)."""
    input:
        manifest=lambda wc: paths.probe_manifest(SETTINGS.figures.probe),
        cams=lambda wc: paths.gradcam_cams(SETTINGS.figures.probe, TARGET),
        boxes=lambda wc: view_boxes_path(SETTINGS.figures.probe, gradcam_view()),
    output:
        report(paths.figure("crop_comparison"), caption="../report/crop_comparison.rst",
               category="WWW: Grad-CAM view and t-vMF", subcategory="Figures"),
    params:
        image_ids=lambda wc: SETTINGS.figures.sample_images,
    localrule: True
    log:
        "logs/figures/crop_comparison.log",
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/crop_comparison_figure.py"
