# Helpers of rules/clip_dissect.smk: CLIP-Dissect's outputs, and what one description job
# reads and writes.


def clip_dissect_outputs():
    """The descriptions of every CLIP-Dissect method, described probe set, layer and concept set."""
    return [description_path(probe, layer, method.name, concepts)
            for probe in SETTINGS.described_probe_sets for layer in LAYERS
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
    """What one clip_dissect_descriptions job writes: every layer x method of one probe set
    and concept set (wildcards)."""
    return [description_path("{probe}", layer, method[0], "{concepts}")
            for method in clip_dissect_job_methods() for layer in LAYERS]


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
    """Each view of a job: clip.dissect's cosines and, per layer, the activations and each
    method's scoring and output path."""
    methods = clip_dissect_job_methods()
    views = []
    for view in dict.fromkeys(method[2] for method in methods):
        views.append(dict(
            view=view,
            similarity=similarity_path(wildcards.probe, CLIP["dissect"], view, wildcards.concepts),
            layers=[dict(layer=layer, activations=activations_path(wildcards.probe, view, layer),
                         methods=[dict(method=name, scoring=clip_dissect_scoring(variant, sim, k),
                                       path=description_path(wildcards.probe, layer, name,
                                                             wildcards.concepts))
                                  for name, variant, method_view, sim, k in methods
                                  if method_view == view])
                    for layer in LAYERS]))
    return views


def clip_dissect_inputs(wildcards):
    """Every view's cosines of clip.dissect and every layer's activations under it, and the concepts."""
    views = clip_dissect_job_views(wildcards)
    return dict(
        activations=[layer["activations"] for view in views for layer in view["layers"]],
        similarity=[view["similarity"] for view in views],
        concepts=f"results/concepts/{wildcards.concepts}.parquet",
    )
