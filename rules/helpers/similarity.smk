# Helpers of rules/similarity.smk: the (CLIP model, view) cosine files of a concept set and
# a similarity job's resources from its inputs' shapes.


def similarity_pairs():
    """(CLIP model tag, view) of every cosine file of a concept set, each once: clip.match
    under WWW's views, clip.dissect under CLIP-Dissect's (and the stability study's), a
    cropping view once per target (clip_view), the center view once for all."""
    views = {"match": [method.view for method in SETTINGS.www],
             "dissect": [method.view for method in SETTINGS.clip_dissect]}
    if SETTINGS.on("stability"):
        views["dissect"].append(settings.STABILITY_VIEW)
    return list(dict.fromkeys((CLIP[role], clip_view(view, target))
                              for role in ("match", "dissect") for view in views[role]
                              for target in TARGETS))


def similarity_items(wildcards):
    """Each (model, view) of a similarity job: inputs, matrices and output path."""
    return [dict(clip=tag, view=view, matrices=similarity_matrices(tag),
                 images=paths.image_embeddings(wildcards.probe, tag, view),
                 texts=paths.text_embeddings(tag, wildcards.concepts),
                 path=similarity_path(wildcards.probe, tag, view, wildcards.concepts))
            for tag, view in similarity_pairs()]


def similarity_resources(wildcards, attempt):
    """A similarity job's mem_mb, gpu_mem_mb and runtime: neuron_concepts.resources'
    formulas on the shapes its inputs hold (known once they exist; Snakemake asks again
    then), times the attempt."""
    pairs = [(item["images"], item["texts"], item["matrices"]) for item in similarity_items(wildcards)]
    needs = resources.similarity_resources(pairs, SETTINGS.scale.gpu_mem_mb)
    return {key: attempt * value for key, value in needs.items()}


def similarity_mem_mb(wildcards, attempt):
    return similarity_resources(wildcards, attempt)["mem_mb"]


def similarity_gpu_mem_mb(wildcards, attempt):
    """0 for a job pinned to the CPU."""
    return similarity_resources(wildcards, attempt)["gpu_mem_mb"] if use_gpu() else 0


def similarity_runtime(wildcards, attempt):
    return similarity_resources(wildcards, attempt)["runtime"]
