# The Grad-CAM view of the improved WWW (Sannomiya & Hotta 2025): CAMs once per probe set
# and target, crop boxes per crop fraction, and the crop comparison figure. A gradcam view
# is named gradcam-{crop} (gradcam-f0.5); its boxes boxes-{crop}.parquet (view_boxes_path).


include: "helpers/gradcam.smk"


rule grad_cam:
    """Grad-CAM of the predicted class on every whole probe image; independent of the crop."""
    input:
        manifest="results/probe/{probe}/manifest.parquet",
        weights=lambda wc: weights_marker("target", wc.target),
    output:
        "results/gradcam/{probe}/{target}/cams.npz",
    params:
        target=target_spec(),
        # the Grad-CAM layer and how its output is a map (neuron_concepts.layers.LayerNeurons)
        layer=lambda wc: gradcam_layer_spec(),
        batch_size=config["gradcam"]["batch_size"],
        device=config["device"],
    # the forward's threads, or on CUDA the main process plus DataLoader workers
    threads: image_model_threads
    # the gradcam view's chain (boxes, crops' embeddings and activations) is the longest
    priority: 10
    resources:
        gpu=use_gpu(),
        mem_mb=8000,
        runtime=120,
    log:
        "logs/grad_cam/{probe}/{target}.log",
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/grad_cam.py"


rule crop_boxes:
    """Square boxes around each image's CAM peak at one crop fraction; no model, seconds."""
    input:
        manifest="results/probe/{probe}/manifest.parquet",
        cams="results/gradcam/{probe}/{target}/cams.npz",
    output:
        "results/gradcam/{probe}/{target}/boxes-{crop}.parquet",
    params:
        crop_fraction=lambda wc: names.parse_view(f"gradcam-{wc.crop}").params["crop_fraction"],
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
        manifest=lambda wc: f"results/probe/{SETTINGS.figures.probe}/manifest.parquet",
        cams=lambda wc: f"results/gradcam/{SETTINGS.figures.probe}/{TARGET}/cams.npz",
        boxes=lambda wc: view_boxes_path(SETTINGS.figures.probe, gradcam_view()),
    output:
        report("results/figures/crop_comparison.png", caption="../report/crop_comparison.rst",
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
