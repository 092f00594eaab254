# WWW (Ahn et al. 2024) and its Grad-CAM + t-vMF variants: one method per configured view
# and similarity, named www-{view}-{sim}-n{n_images}-a{alpha} (neuron_concepts.names.WWW).
# One job per (probe set, concept set, layer) with scale.description_jobs: layer (the
# default), or per (probe set, concept set) with concept_set, describes its layer(s) under
# every view with every similarity (their cosines come from one similarity job); each
# (layer, method) keeps its own artifact.


include: "helpers/www.smk"


rule www_descriptions:
    """WWW concepts of every neuron of a layer (or every layer): mean similarity over its top images, thresholded.

    The input is the match CLIP's cosine matrix, memory-mapped: each chunk of neurons reads
    the rows of its top images only (on a GPU, copied there within scale.gpu_mem_mb). The
    method's similarity (cos or t-vMF, sim in the method name) is applied to those rows
    here, in float32 (neuron_concepts.describe drives, neuron_concepts.www scores).
    """
    input:
        unpack(www_inputs),
    output:
        www_job_outputs(),
    params:
        family="www",
        # Each view with its cosines, each layer with its activations, and each method's
        # similarity and output path.
        views=www_job_views,
        options=www_options(),
        device=config["device"],
        gpu_mem_mb=SETTINGS.scale.gpu_mem_mb,
    resources:
        **gpu_resources(www_gpu_mem_mb),
        # From the inputs' shapes, times attempt (rules/common.smk description_resources).
        mem_mb=www_mem_mb,
        runtime=www_runtime,
    log:
        description_log("www_descriptions"),
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/descriptions.py"
