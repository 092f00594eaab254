# CLIP-Dissect (Oikarinen & Weng 2023): one method per variant, view and similarity, named
# {variant}-{view}-{sim}-k{top_k} (neuron_concepts.names.CLIP_DISSECT). One job per (probe
# set, concept set, layer) with scale.description_jobs: layer (the default), or per (probe
# set, concept set) with concept_set, describes its layer(s) with every variant, view,
# similarity and k (the stability study's too). Off when no variant and no stability.


include: "helpers/clip_dissect.smk"


if SETTINGS.on("clip_dissect") or SETTINGS.on("stability"):

    rule clip_dissect_descriptions:
        """CLIP-Dissect concepts of every neuron of a layer (or every layer): (soft-)WPMI over its top_k images.

        The prior of the score runs over all neurons of a layer, so a layer is scored whole.
        Concepts are matched as raw strings (the ``raw`` cosines, memory-mapped: only the top
        images' rows are read; on a GPU, copied there within scale.gpu_mem_mb) by
        CLIP-Dissect's own CLIP model (clip.dissect); a t-vMF sim is applied to them in
        float32 before the softmax (neuron_concepts.describe drives,
        neuron_concepts.clip_dissect scores).
        """
        input:
            unpack(clip_dissect_inputs),
        output:
            clip_dissect_job_outputs(),
        params:
            family="clip_dissect",
            # Per view, layer and method one dict (variant, top_k, a, lam, p_start, p_end,
            # sim, kappa): Snakemake compares params as a set of values without their names,
            # so separate params a=10 -> 5 next to top_k=10 would go unseen; a dict keeps them.
            views=clip_dissect_job_views,
            options=dict(n_best=config["methods"]["clip_dissect"]["n_best"]),
            device=config["device"],
            gpu_mem_mb=SETTINGS.scale.gpu_mem_mb,
        resources:
            **gpu_resources(clip_dissect_gpu_mem_mb),
            # From the inputs' shapes, times attempt (rules/common.smk description_resources).
            mem_mb=clip_dissect_mem_mb,
            runtime=clip_dissect_runtime,
        log:
            description_log("clip_dissect_descriptions"),
        conda:
            "../envs/torch.yaml"
        script:
            "../workflow_scripts/descriptions.py"
