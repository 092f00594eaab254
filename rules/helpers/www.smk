# Helpers of rules/www.smk: WWW's outputs, and what one description job reads and writes.
# One job per (probe set, concept set) and, with scale.description_jobs: layer, per layer
# (description_job_layers, description_job_outputs and description_log in common.smk).


def www_outputs():
    """The descriptions of every WWW method, target, described probe set, layer and concept set."""
    return [description_path(probe, layer, method.name, concepts, target)
            for target, info in TARGETS.items()
            for probe in SETTINGS.described_probe_sets for layer in info.layers
            for method in SETTINGS.www for concepts in config["concept_sets"]]


def www_job_outputs():
    """What one www_descriptions job writes: every method of its layer(s)."""
    return description_job_outputs([method.name for method in SETTINGS.www])


def www_job_views(wildcards):
    """Each view of a job: the match CLIP's cosines and, per layer of the job, the
    activations and the output of each method of the view (labelled, so nothing pairs by
    list position)."""
    target = job_target(wildcards)
    views = []
    for view in SETTINGS.views:
        methods = [method for method in SETTINGS.www if method.view == view]
        if not methods:
            continue
        views.append(dict(
            view=view,
            similarity=similarity_path(wildcards.probe, CLIP["match"], clip_view(view, target),
                                       wildcards.concepts),
            layers=[dict(layer=layer, activations=activations_path(wildcards.probe, view, layer, target),
                         methods=[dict(method=method.name, sim=list(names.parse_sim(method.sim)),
                                       path=description_path(wildcards.probe, layer, method.name,
                                                             wildcards.concepts, target))
                                  for method in methods])
                    for layer in description_job_layers(wildcards)]))
    return views


def www_inputs(wildcards):
    """Every view's cosines and every layer's activations under it, and the concepts."""
    views = www_job_views(wildcards)
    return dict(
        activations=[layer["activations"] for view in views for layer in view["layers"]],
        similarity=[view["similarity"] for view in views],
        concepts=paths.concepts(wildcards.concepts),
    )


def www_options():
    """WWW's own arguments of neuron_concepts.www.describe_methods."""
    spec = config["methods"]["www"]
    return dict(n_images=spec["n_images"], alpha=spec["alpha"])


def www_resources(wildcards, input, attempt):
    """mem_mb, gpu_mem_mb and runtime of a www_descriptions job (description_resources)."""
    passes = max([sum(m.view == view for m in SETTINGS.www) for view in SETTINGS.views] or [1])
    return description_resources(input, attempt, n_top=config["methods"]["www"]["n_images"],
                                 n_ks=1, passes=passes)


def www_mem_mb(wildcards, input, attempt):
    return www_resources(wildcards, input, attempt)["mem_mb"]


def www_gpu_mem_mb(wildcards, input, attempt):
    return www_resources(wildcards, input, attempt)["gpu_mem_mb"]


def www_runtime(wildcards, input, attempt):
    return www_resources(wildcards, input, attempt)["runtime"]
