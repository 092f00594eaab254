# Helpers of rules/www.smk: WWW's outputs, and what one description job reads and writes.


def www_outputs():
    """The descriptions of every WWW method, described probe set, layer and concept set."""
    return [description_path(probe, layer, method.name, concepts)
            for probe in SETTINGS.described_probe_sets for layer in LAYERS
            for method in SETTINGS.www for concepts in config["concept_sets"]]


def www_job_outputs():
    """What one www_descriptions job writes: every layer x method of one probe set and
    concept set (wildcards)."""
    return [description_path("{probe}", layer, method.name, "{concepts}")
            for method in SETTINGS.www for layer in LAYERS]


def www_job_views(wildcards):
    """Each view of a job: the match CLIP's cosines and, per layer, the activations and the
    output of each method of the view (labelled, so nothing pairs by list position)."""
    views = []
    for view in SETTINGS.views:
        methods = [method for method in SETTINGS.www if method.view == view]
        if not methods:
            continue
        views.append(dict(
            view=view,
            similarity=similarity_path(wildcards.probe, CLIP["match"], view, wildcards.concepts),
            layers=[dict(layer=layer, activations=activations_path(wildcards.probe, view, layer),
                         methods=[dict(method=method.name, sim=list(names.parse_sim(method.sim)),
                                       path=description_path(wildcards.probe, layer, method.name,
                                                             wildcards.concepts))
                                  for method in methods])
                    for layer in LAYERS]))
    return views


def www_inputs(wildcards):
    """Every view's cosines and every layer's activations under it, and the concepts."""
    views = www_job_views(wildcards)
    return dict(
        activations=[layer["activations"] for view in views for layer in view["layers"]],
        similarity=[view["similarity"] for view in views],
        concepts=f"results/concepts/{wildcards.concepts}.parquet",
    )
