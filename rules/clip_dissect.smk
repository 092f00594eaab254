rule clip_dissect_descriptions:
    """CLIP-Dissect concepts of every neuron of a layer: (soft-)WPMI over its top_k images.

    The prior of the score runs over all neurons of the layer, so a job is one whole layer.
    Concepts are matched as raw strings (the ``raw`` cosines) by CLIP-Dissect's own CLIP
    model (clip.dissect); a t-vMF {sim} is applied to them in float32 before the softmax.
    """
    input:
        activations="results/activations/{probe}/{target}/{view}/{layer}.npz",
        similarity=lambda wc: f"results/similarity/{wc.probe}/{CLIP['dissect']}/{wc.view}/{wc.concepts}/cos.npz",
        concepts="results/concepts/{concepts}.parquet",
    output:
        "results/descriptions/{probe}/{target}/{layer}/{variant}-{view}-{sim}-k{k}/{concepts}.parquet",
    params:
        # One dict (variant, top_k, a, lam, p_start, p_end, sim, kappa): Snakemake compares
        # params as a set of values without their names, so a=10 -> 5 next to top_k=10,
        # n_best=5 would go unseen as separate params; a dict's repr keeps the names.
        scoring=lambda wc: clip_dissect_scoring(wc.variant, int(wc.k), wc.sim),
        n_best=config["methods"]["clip_dissect"]["n_best"],
        device=config["device"],
    wildcard_constraints:
        variant=r"softwpmi|wpmi",
        view=r"center|gradcam-f[0-9.]+",
        sim=r"cos|tvmf-k[0-9.]+",
        k=r"\d+",
    resources:
        gpu=use_gpu(),
        mem_mb=16000,
        runtime=60,
    log:
        "logs/clip_dissect_descriptions/{probe}/{target}/{layer}/{variant}-{view}-{sim}-k{k}/{concepts}.log",
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/clip_dissect_descriptions.py"
