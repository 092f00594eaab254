rule similarity:
    """Image-concept similarities [N, C] (float16): WWW prompts, base template and raw strings."""
    input:
        images="results/image_emb/{probe}/{clip}/{view}.npz",
        texts="results/text_emb/{clip}/{concepts}.npz",
    output:
        "results/similarity/{probe}/{clip}/{view}/{concepts}/{sim}.npz",
    params:
        sim=lambda wc: parse_sim(wc.sim),
        device=config["device"],
    wildcard_constraints:
        sim=r"cos|tvmf-k[0-9.]+",
    resources:
        gpu=use_gpu(),
        mem_mb=8000,
        runtime=60,
    log:
        "logs/similarity/{probe}/{clip}/{view}/{concepts}/{sim}.log",
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/similarity.py"
