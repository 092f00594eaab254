# Helpers of rules/www.smk: WWW's outputs, and the inputs and params its method names give.


def www_outputs():
    """The descriptions of every WWW method, probe set, layer and concept set."""
    return [description_path(probe, layer, method.name, concepts)
            for probe in config["probe_sets"] for layer in config["target"]["layers"]
            for method in SETTINGS.www for concepts in config["concept_sets"]]


def www_method(wildcards):
    """What a WWW method's name holds: view, sim (names), n_images, alpha."""
    return names.parse_www_method(wildcards.www_method)


def www_inputs(wildcards):
    """The activations and the match CLIP's cosines under the method's view, and the concepts."""
    view = www_method(wildcards)["view"]
    return dict(
        activations=f"results/activations/{wildcards.probe}/{wildcards.target}/{view}/{wildcards.layer}.npz",
        similarity=f"results/similarity/{wildcards.probe}/{CLIP['match']}/{view}/{wildcards.concepts}/cos.npz",
        concepts=f"results/concepts/{wildcards.concepts}.parquet",
    )
