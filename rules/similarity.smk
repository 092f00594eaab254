include: "helpers/similarity.smk"


rule similarity:
    """Image-concept cosines [N, C] of a concept set, for every CLIP model and view that matches it.

    One job per (probe set, concept set): every (model, view) file of it is made from one
    read of the concept set's text embeddings. Cosines only: t-vMF is applied in float32
    where scores are computed (www, CLIP-Dissect), so no artifact holds its values and
    changing kappa reruns no similarity job. A file holds the matrices of the roles that use
    its model (similarity_matrices), stored uncompressed so that the description jobs
    memory-map it and read only the rows of their neurons' top images. The cosines are
    streamed into the file one block of images at a time, so the job's memory does not grow
    with N x C; scale.cosine_dtype float16 stores them as float16 (cos-f16.npz).
    """
    input:
        images=lambda wc: list(dict.fromkeys(item["images"] for item in similarity_items(wc))),
        texts=lambda wc: list(dict.fromkeys(item["texts"] for item in similarity_items(wc))),
    output:
        [similarity_path("{probe}", tag, view, "{concepts}") for tag, view in similarity_pairs()],
    params:
        # Each (model, view): its image and text embeddings, its matrices, its output path.
        pairs=similarity_items,
        device=config["device"],
        gpu_mem_mb=SETTINGS.scale.gpu_mem_mb,  # GPU blocks of cosines fit this budget
    resources:
        # From the inputs' shapes (neuron_concepts.resources: similarity_resources), times attempt.
        **gpu_resources(similarity_gpu_mem_mb),
        mem_mb=similarity_mem_mb,
        runtime=similarity_runtime,
    log:
        "logs/similarity/{probe}/{concepts}.log",
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/similarity.py"
