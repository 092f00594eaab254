# CLIP-Dissect (Oikarinen & Weng 2023): one method per variant, view and similarity, named
# {variant}-{view}-{sim}-k{top_k} (neuron_concepts.names.CLIP_DISSECT). Off when
# methods.clip_dissect.variants is empty.


include: "helpers/clip_dissect.smk"


rule clip_dissect_descriptions:
    """CLIP-Dissect concepts of every neuron of a layer: (soft-)WPMI over its top_k images.

    The prior of the score runs over all neurons of the layer, so a job is one whole layer.
    Concepts are matched as raw strings (the ``raw`` cosines) by CLIP-Dissect's own CLIP
    model (clip.dissect); a t-vMF sim is applied to them in float32 before the softmax.
    """
    input:
        unpack(clip_dissect_inputs),
    output:
        "results/descriptions/{probe}/{target}/{layer}/{clip_dissect_method}/{concepts}.parquet",
    params:
        # One dict (variant, top_k, a, lam, p_start, p_end, sim, kappa): Snakemake compares
        # params as a set of values without their names, so a=10 -> 5 next to top_k=10,
        # n_best=5 would go unseen as separate params; a dict's repr keeps the names.
        scoring=clip_dissect_scoring,
        n_best=config["methods"]["clip_dissect"]["n_best"],
        device=config["device"],
    resources:
        gpu=use_gpu(),
        mem_mb=16000,
        runtime=60,
    log:
        "logs/clip_dissect_descriptions/{probe}/{target}/{layer}/{clip_dissect_method}/{concepts}.log",
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/clip_dissect_descriptions.py"
