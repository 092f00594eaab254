# Helpers of rules/clip_dissect.smk: CLIP-Dissect's outputs, and what one description job
# reads and writes. One job per (probe set, concept set) and, with scale.description_jobs:
# layer, per layer (description_job_layers, description_job_outputs and description_log in
# common.smk).


def clip_dissect_outputs():
    """The descriptions of every CLIP-Dissect method, target, described probe set, layer and concept set."""
    return [description_path(probe, layer, method.name, concepts, target)
            for target, info in TARGETS.items()
            for probe in SETTINGS.described_probe_sets for layer in info.layers
            for method in SETTINGS.clip_dissect for concepts in config["concept_sets"]]


def clip_dissect_job_methods():
    """Every CLIP-Dissect method a description job writes, each once: the configured ones and
    the stability study's (its view, every k), as (name, variant, view, sim, top_k)."""
    methods = [(m.name, m.variant, m.view, m.sim, m.top_k) for m in SETTINGS.clip_dissect]
    st = SETTINGS.stability
    if st:
        view = settings.STABILITY_VIEW
        methods += [(names.clip_dissect_method_name(variant, view, sim, top_k=k), variant, view,
                     sim, k) for variant in st.variants for sim in st.sims for k in st.ks]
    return list(dict.fromkeys(methods))


def clip_dissect_job_outputs():
    """What one clip_dissect_descriptions job writes: every method of its layer(s)."""
    return description_job_outputs([method[0] for method in clip_dissect_job_methods()])


def clip_dissect_scoring(variant, sim, top_k):
    """Arguments of neuron_concepts.clip_dissect.layer_scores for a method.

    The variant, top_k and similarity come from the method name; the rest is the variant's
    own config (a, lam, p_start, p_end).
    """
    spec = config["methods"]["clip_dissect"][variant]
    kind, kappa = names.parse_sim(sim)
    return dict(variant=variant, top_k=top_k, a=spec["a"], lam=spec["lam"],
                p_start=spec.get("p_start"), p_end=spec.get("p_end"), sim=kind, kappa=kappa)


def clip_dissect_job_views(wildcards):
    """Each view of a job: clip.dissect's cosines and, per layer of the job, the activations
    and each method's scoring and output path."""
    target = job_target(wildcards)
    methods = clip_dissect_job_methods()
    views = []
    for view in dict.fromkeys(method[2] for method in methods):
        views.append(dict(
            view=view,
            similarity=similarity_path(wildcards.probe, CLIP["dissect"], clip_view(view, target),
                                       wildcards.concepts),
            layers=[dict(layer=layer, activations=activations_path(wildcards.probe, view, layer, target),
                         methods=[dict(method=name, scoring=clip_dissect_scoring(variant, sim, k),
                                       path=description_path(wildcards.probe, layer, name,
                                                             wildcards.concepts, target))
                                  for name, variant, method_view, sim, k in methods
                                  if method_view == view])
                    for layer in description_job_layers(wildcards)]))
    return views


def clip_dissect_inputs(wildcards):
    """Every view's cosines of clip.dissect and every layer's activations under it, and the concepts."""
    views = clip_dissect_job_views(wildcards)
    return dict(
        activations=[layer["activations"] for view in views for layer in view["layers"]],
        similarity=[view["similarity"] for view in views],
        concepts=paths.concepts(wildcards.concepts),
    )


def clip_dissect_passes():
    """The scoring passes of a layer: methods that differ only in top_k share one
    (neuron_concepts.clip_dissect.group_by_top_k), as top_k lists per (variant, view, sim)."""
    passes = {}
    for _, variant, view, sim, top_k in clip_dissect_job_methods():
        passes.setdefault((variant, view, sim), []).append(top_k)
    return list(passes.values())


def clip_dissect_resources(wildcards, input, attempt):
    """mem_mb, gpu_mem_mb and runtime of a clip_dissect_descriptions job (description_resources)."""
    passes = clip_dissect_passes()
    return description_resources(input, attempt, n_top=max(max(ks) for ks in passes),
                                 n_ks=max(len(ks) for ks in passes), passes=len(passes))


def clip_dissect_mem_mb(wildcards, input, attempt):
    return clip_dissect_resources(wildcards, input, attempt)["mem_mb"]


def clip_dissect_gpu_mem_mb(wildcards, input, attempt):
    return clip_dissect_resources(wildcards, input, attempt)["gpu_mem_mb"]


def clip_dissect_runtime(wildcards, input, attempt):
    return clip_dissect_resources(wildcards, input, attempt)["runtime"]
