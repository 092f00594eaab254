# CLIP-Dissect (Oikarinen & Weng 2023): one method per variant, view and similarity, named
# {variant}-{view}-{sim}-k{top_k} (neuron_concepts.names.CLIP_DISSECT). One job per (probe
# set, concept set) describes every layer with every variant, view, similarity and k (the
# stability study's too). Off when no variant and no stability.


include: "helpers/clip_dissect.smk"


if clip_dissect_job_methods():

    rule clip_dissect_descriptions:
        """CLIP-Dissect concepts of every neuron of every layer: (soft-)WPMI over its top_k images.

        The prior of the score runs over all neurons of a layer, so a layer is scored whole.
        Concepts are matched as raw strings (the ``raw`` cosines, memory-mapped: only the top
        images' rows are read) by CLIP-Dissect's own CLIP model (clip.dissect); a t-vMF sim
        is applied to them in float32 before the softmax.
        """
        input:
            unpack(clip_dissect_inputs),
        output:
            clip_dissect_job_outputs(),
        params:
            # Per view, layer and method one dict (variant, top_k, a, lam, p_start, p_end,
            # sim, kappa): Snakemake compares params as a set of values without their names,
            # so separate params a=10 -> 5 next to top_k=10 would go unseen; a dict keeps them.
            views=clip_dissect_job_views,
            n_best=config["methods"]["clip_dissect"]["n_best"],
            device=config["device"],
        resources:
            gpu=use_gpu(),
            mem_mb=description_mem_mb,
            runtime=60,
        log:
            "logs/clip_dissect_descriptions/{probe}/{concepts}.log",
        conda:
            "../envs/torch.yaml"
        script:
            "../workflow_scripts/clip_dissect_descriptions.py"
