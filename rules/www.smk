# WWW (Ahn et al. 2024) and its Grad-CAM + t-vMF variants: one method per configured view
# and similarity, named www-{view}-{sim}-n{n_images}-a{alpha} (neuron_concepts.names.WWW).
# One job per (probe set, concept set) describes every layer under every view with every
# similarity (their cosines come from one similarity job); each (layer, method) keeps its
# own artifact.


include: "helpers/www.smk"


rule www_descriptions:
    """WWW concepts of every neuron of every layer: mean similarity over its top images, thresholded.

    The input is the match CLIP's cosine matrix, memory-mapped: each chunk of neurons reads
    the rows of its top images only. The method's similarity (cos or t-vMF, sim in the
    method name) is applied to those rows here, in float32.
    """
    input:
        unpack(www_inputs),
    output:
        www_job_outputs(),
    params:
        # Each view with its cosines, each layer with its activations, and each method's
        # similarity and output path.
        views=www_job_views,
        n_images=config["methods"]["www"]["n_images"],
        alpha=config["methods"]["www"]["alpha"],
        device=config["device"],
    resources:
        gpu=use_gpu(),
        mem_mb=description_mem_mb,
        runtime=60,
    log:
        "logs/www_descriptions/{probe}/{concepts}.log",
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/www_descriptions.py"
