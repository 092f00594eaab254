# Helpers of rules/evaluate.smk: the method families and every evaluation, with its labels.


def method_families():
    """Every described method's name, by family: the family decides the evaluation styles."""
    return {"www": [m.name for m in SETTINGS.www],
            "clip-dissect": [m.name for m in SETTINGS.clip_dissect]}


EVALUATION_STYLES = {"www": ["www", "clip-dissect"], "clip-dissect": ["clip-dissect"]}

# Name of the class names' evaluation embeddings beside the concept sets' (a hyphen: no
# concept set can be called so, see names.CONFIG_NAME).
EVALUATION_CLASSES = "imagenet-classes"


def evaluation_model_tags():
    """The evaluation models' tags (as in paths), by model kind."""
    tags = {"clip": CLIP["eval"], "sentence": SENTENCE}
    if tags["clip"] == tags["sentence"]:
        raise WorkflowError(f"clip.eval and sentence_model are both named {SENTENCE!r} in "
                            "paths: rename the sentence model's folder")
    return tags


def evaluation_model_path(tag, texts):
    """Evaluation embeddings of a concept set (or of EVALUATION_CLASSES) by the model ``tag``."""
    return paths.evaluation_embeddings(tag, texts)


def evaluation_model_paths(texts):
    """Evaluation embeddings of a concept set (or of EVALUATION_CLASSES), by model kind."""
    return {kind: evaluation_model_path(tag, texts) for kind, tag in evaluation_model_tags().items()}


def known_class_embeddings(tag):
    """The class names' evaluation embeddings when the CLIP model ``tag`` is the evaluation
    CLIP of a run that evaluates (CLIP-Dissect and the CLIP cos metric share ViT-B/16 in the
    papers): a text_embeddings job copies their rows for its raw strings. None otherwise."""
    if tag != CLIP["eval"] or not evaluations():
        return None
    return evaluation_model_paths(EVALUATION_CLASSES)["clip"]


def shared_concept_embeddings(wildcards):
    """The concept set's raw-string embeddings by clip.dissect when it is also the evaluation
    CLIP: evaluation_text_embeddings copies a text's row from them rather than load CLIP."""
    tag = CLIP["eval"]
    if tag in text_models() and "raw" in similarity_matrices(tag):
        return [paths.text_embeddings(tag, wildcards.concepts)]
    return []


def evaluation_model_specs():
    """Loader arguments of each evaluation model, by model kind (as evaluation_model_paths)."""
    return {"clip": evaluation_model_spec(CLIP["eval"]), "sentence": evaluation_model_spec(SENTENCE)}


def evaluation_weights_markers(kind=None):
    """The download markers of both evaluation models, or of the one of ``kind``."""
    return [marker for k, tag in evaluation_model_tags().items() if kind in (None, k)
            for marker in weights_marker(k, tag)]


def method_clip(family):
    """Tag of the CLIP model a method family matches with (the tables' ``clip`` label)."""
    return CLIP["dissect"] if family == "clip-dissect" else CLIP["match"]


def evaluations(target=None):
    """Every evaluation (evaluated probe sets x methods x concept sets) of a target's final
    layer (the primary target's when None): path and labels."""
    target = target or TARGET
    return [dict(path=evaluation_path(probe, method, concepts, target),
                 labels=dict(probe=probe, method=method, concepts=concepts, family=family,
                             target=target, clip=method_clip(family), eval_clip=CLIP["eval"],
                             sentence=SENTENCE))
            for probe in SETTINGS.evaluation_probe_sets
            for family, methods in method_families().items()
            for method in methods
            for concepts in SETTINGS.evaluation_concept_sets]


def evaluation_job_outputs():
    """What one evaluate_descriptions job writes: every method's evaluation of one probe set
    and concept set (wildcards; with several targets, also target and its final layer)."""
    target, layer = ("{target}", "{layer}") if MULTI_TARGET else (None, None)
    return [evaluation_path("{probe}", method, "{concepts}", target, layer)
            for methods in method_families().values() for method in methods]


def evaluation_log():
    """The log of one evaluate_descriptions job (and target, with several)."""
    if MULTI_TARGET:
        return "logs/evaluate_descriptions/{probe}/{target}/{layer}/{concepts}.log"
    return "logs/evaluate_descriptions/{probe}/{concepts}.log"


def evaluation_job_items(wildcards):
    """Each method of a job with its final-layer descriptions and its evaluation path."""
    target = job_target(wildcards)
    layer = target_info(target).final
    return [dict(method=method,
                 descriptions=description_path(wildcards.probe, layer, method, wildcards.concepts,
                                               target),
                 path=evaluation_path(wildcards.probe, method, wildcards.concepts, target))
            for methods in method_families().values() for method in methods]


def evaluation_outputs():
    """The concept-discovery table (no rows when nothing is evaluated)."""
    return paths.table_files("concept_discovery")


def evaluation_model_kind(tag):
    """``clip`` or ``sentence``: which evaluation model a path's model name is."""
    if tag == CLIP["eval"]:
        return "clip"
    if tag == SENTENCE:
        return "sentence"
    raise WorkflowError(f"{tag!r} is neither the evaluation CLIP ({CLIP['eval']}) nor the "
                        f"sentence model ({SENTENCE})")


def evaluation_model_spec(tag):
    """Loader arguments of an evaluation model, with its kind."""
    kind = evaluation_model_kind(tag)
    return dict(kind=kind, **(clip_role_spec("eval") if kind == "clip" else sentence_spec()))
