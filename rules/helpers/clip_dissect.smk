# Helpers of rules/clip_dissect.smk: CLIP-Dissect's outputs, and the inputs and scoring
# arguments its method names give.


def clip_dissect_outputs():
    """The descriptions of every CLIP-Dissect method, probe set, layer and concept set."""
    return [description_path(probe, layer, method.name, concepts)
            for probe in config["probe_sets"] for layer in config["target"]["layers"]
            for method in SETTINGS.clip_dissect for concepts in config["concept_sets"]]


def clip_dissect_method(wildcards):
    """What a CLIP-Dissect method's name holds: variant, view, sim (names), top_k."""
    return names.parse_clip_dissect_method(wildcards.clip_dissect_method)


def clip_dissect_inputs(wildcards):
    """The activations and clip.dissect's cosines under the method's view, and the concepts."""
    view = clip_dissect_method(wildcards)["view"]
    return dict(
        activations=f"results/activations/{wildcards.probe}/{wildcards.target}/{view}/{wildcards.layer}.npz",
        similarity=f"results/similarity/{wildcards.probe}/{CLIP['dissect']}/{view}/{wildcards.concepts}/cos.npz",
        concepts=f"results/concepts/{wildcards.concepts}.parquet",
    )


def clip_dissect_scoring(wildcards):
    """Arguments of neuron_concepts.clip_dissect.layer_scores for a method.

    The variant, top_k and similarity come from the method name; the rest is the variant's
    own config, so changing soft-WPMI's a leaves WPMI's descriptions be.
    """
    method = clip_dissect_method(wildcards)
    spec = config["methods"]["clip_dissect"][method["variant"]]
    kind, kappa = names.parse_sim(method["sim"])
    return dict(variant=method["variant"], top_k=method["top_k"], a=spec["a"], lam=spec["lam"],
                p_start=spec.get("p_start"), p_end=spec.get("p_end"), sim=kind, kappa=kappa)
