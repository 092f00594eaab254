rule similarity:
    """Image-concept cosines [N, C] of one CLIP model: WWW prompts and base template, raw strings.

    Cosines only: t-vMF is applied in float32 where scores are computed (www, CLIP-Dissect),
    so no artifact holds its values and changing kappa reruns no similarity job. The file
    holds the matrices of the roles that use this model (similarity_matrices).
    """
    input:
        images="results/image_emb/{probe}/{clip}/{view}.npz",
        texts="results/text_emb/{clip}/{concepts}.npz",
    output:
        "results/similarity/{probe}/{clip}/{view}/{concepts}/cos.npz",
    params:
        matrices=lambda wc: similarity_matrices(wc.clip),
        device=config["device"],
    resources:
        gpu=use_gpu(),
        mem_mb=8000,
        runtime=60,
    log:
        "logs/similarity/{probe}/{clip}/{view}/{concepts}/cos.log",
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/similarity.py"
