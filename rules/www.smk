rule www_descriptions:
    """WWW concepts of every neuron of a layer: mean similarity over its top images, thresholded.

    The input is the match CLIP's cosine matrix; the method's similarity (cos or t-vMF,
    {sim} in the method name) is applied to its rows here, in float32.
    """
    input:
        activations="results/activations/{probe}/{target}/{view}/{layer}.npz",
        similarity=lambda wc: f"results/similarity/{wc.probe}/{CLIP['match']}/{wc.view}/{wc.concepts}/cos.npz",
        concepts="results/concepts/{concepts}.parquet",
    output:
        "results/descriptions/{probe}/{target}/{layer}/www-{view}-{sim}-n{n}-a{alpha}/{concepts}.parquet",
    params:
        n_images=lambda wc: int(wc.n),
        alpha=lambda wc: float(wc.alpha),
        sim=lambda wc: parse_sim(wc.sim),  # (kind, kappa)
        device=config["device"],
    wildcard_constraints:
        view=r"center|gradcam-f[0-9.]+",
        sim=r"cos|tvmf-k[0-9.]+",
        n=r"\d+",
        alpha=r"[0-9.]+",
    resources:
        mem_mb=8000,
        runtime=60,
    log:
        "logs/www_descriptions/{probe}/{target}/{layer}/www-{view}-{sim}-n{n}-a{alpha}/{concepts}.log",
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/www_descriptions.py"
