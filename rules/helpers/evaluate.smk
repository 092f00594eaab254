# Helpers of rules/evaluate.smk: the method families and every evaluation, with its labels.


def method_families():
    """Every described method's name, by family: the family decides the evaluation styles."""
    return {"www": [m.name for m in SETTINGS.www],
            "clip-dissect": [m.name for m in SETTINGS.clip_dissect]}


EVALUATION_STYLES = {"www": ["www", "clip-dissect"], "clip-dissect": ["clip-dissect"]}

# Name of the class names' evaluation embeddings beside the concept sets' (a hyphen: no
# concept set can be called so, see names.CONFIG_NAME).
EVALUATION_CLASSES = "imagenet-classes"


def evaluation_model_paths(texts):
    """Evaluation embeddings of a concept set (or of EVALUATION_CLASSES), by model kind."""
    return {"clip": f"results/eval_emb/{CLIP['eval']}/{texts}.npz",
            "sentence": f"results/eval_emb/{SENTENCE}/{texts}.npz"}


def evaluation_model_specs():
    """Loader arguments of each evaluation model, by model kind (as evaluation_model_paths)."""
    return {"clip": evaluation_model_spec(CLIP["eval"]), "sentence": evaluation_model_spec(SENTENCE)}


def evaluation_weights_markers():
    """The download markers of both evaluation models."""
    return [*weights_marker("clip", CLIP["eval"]), *weights_marker("sentence", SENTENCE)]


def method_clip(family):
    """Tag of the CLIP model a method family matches with (the tables' ``clip`` label)."""
    return CLIP["dissect"] if family == "clip-dissect" else CLIP["match"]


def evaluations():
    """Every evaluation (evaluated probe sets x methods x concept sets): path and labels."""
    return [dict(path=evaluation_path(probe, method, concepts),
                 labels=dict(probe=probe, method=method, concepts=concepts, family=family,
                             target=TARGET, clip=method_clip(family), eval_clip=CLIP["eval"],
                             sentence=SENTENCE))
            for probe in SETTINGS.evaluation_probe_sets
            for family, methods in method_families().items()
            for method in methods
            for concepts in SETTINGS.evaluation_concept_sets]


def evaluation_job_outputs():
    """What one evaluate_descriptions job writes: every method's evaluation of one probe set
    and concept set (wildcards)."""
    return [evaluation_path("{probe}", method, "{concepts}")
            for methods in method_families().values() for method in methods]


def evaluation_job_items(wildcards):
    """Each method of a job with its final-layer descriptions and its evaluation path."""
    layer = FINAL_LAYER
    return [dict(method=method,
                 descriptions=description_path(wildcards.probe, layer, method, wildcards.concepts),
                 path=evaluation_path(wildcards.probe, method, wildcards.concepts))
            for methods in method_families().values() for method in methods]


def evaluation_outputs():
    """The concept-discovery table (no rows when nothing is evaluated)."""
    return ["results/tables/concept_discovery.csv", "results/tables/concept_discovery.md"]
