# Evaluation of the final layer's descriptions against the ImageNet classes, and the
# concept-discovery table (the papers' Table 1) over every described method.


include: "helpers/evaluate.smk"


rule evaluation_class_embeddings:
    """Embeddings of the ImageNet class names (synonyms, label lines, "none") by one
    evaluation model (the CLIP or the sentence model): the ground truth of every evaluation,
    embedded once. One job per model, so changing one never rewrites the other's file (nor
    reruns the CLIP-Dissect text embeddings that copy the CLIP's rows)."""
    input:
        weights=lambda wc: evaluation_weights_markers(evaluation_model_kind(wc.eval_model)),
    output:
        evaluation_model_path("{eval_model}", EVALUATION_CLASSES),
    params:
        spec=lambda wc: evaluation_model_specs()[evaluation_model_kind(wc.eval_model)],
        batch_size=config["batch_size"]["text"],
        device=config["device"],
    wildcard_constraints:
        eval_model="|".join(re.escape(tag) for tag in evaluation_model_tags().values()),
    # the head of the evaluations' chain, and clip.dissect's text embeddings copy its rows
    priority: 5
    resources:
        **gpu_resources(text_gpu_mem_mb()),
        mem_mb=8000,
        # minutes: the 2,338 class names through one model
        runtime=lambda wc, attempt: text_runtime_min(2338, bool(use_gpu()), attempt),
    log:
        "logs/evaluation_class_embeddings/{eval_model}.log",
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/evaluation_class_embeddings.py"


rule evaluation_text_embeddings:
    """Embeddings of a concept set's texts and the class names by both evaluation models.

    The class names' rows are copied from evaluation_class_embeddings, and, when clip.dissect
    is the evaluation CLIP, the concepts' rows from its raw strings (text_embeddings); a model
    is loaded only for texts found in neither, so evaluating a method needs no model at all
    and editing a concept set re-embeds only its own texts.
    """
    input:
        concepts=paths.concepts(),
        **{f"{kind}_classes": path
           for kind, path in evaluation_model_paths(EVALUATION_CLASSES).items()},
        # ancient: text_embeddings rewrites the file when only WWW's prompts change
        clip_concepts=lambda wc: [ancient(path) for path in shared_concept_embeddings(wc)],
        weights=evaluation_weights_markers(),
    output:
        **evaluation_model_paths("{concepts}"),
    params:
        models=evaluation_model_specs(),
        batch_size=config["batch_size"]["text"],
        device=config["device"],
    # Configured concept sets only (EVALUATION_CLASSES is no concept set name).
    wildcard_constraints:
        concepts=names.CONFIG_NAME,
    resources:
        **gpu_resources(text_gpu_mem_mb()),
        mem_mb=8000,
        runtime=text_runtime(2),  # both evaluation models, at most
    log:
        "logs/evaluation_text_embeddings/{concepts}.log",
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/evaluation_text_embeddings.py"


rule evaluate_descriptions:
    """Per-neuron metrics of the final layer's descriptions of every method against its ImageNet classes.

    One job per (probe set, concept set): the evaluation embeddings are read once for all
    methods; each method keeps its own evaluation artifact.
    """
    input:
        descriptions=lambda wc: [item["descriptions"] for item in evaluation_job_items(wc)],
        clip_emb=lambda wc: evaluation_model_paths(wc.concepts)["clip"],
        sentence_emb=lambda wc: evaluation_model_paths(wc.concepts)["sentence"],
    output:
        evaluation_job_outputs(),
    params:
        # Each method with its descriptions and evaluation paths.
        methods=evaluation_job_items,
        # decides the top-1 / top-5 accuracy columns (imagenet_labels: class index; imagenet: synonyms)
        concept_type=lambda wc: config["concept_sets"][wc.concepts]["type"],
    resources:
        mem_mb=4000,
        runtime=30,
    log:
        evaluation_log(),
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/evaluate_descriptions.py"


rule concept_discovery_table:
    """The papers' Table 1: one row per (style, method, probe set, concept set)."""
    input:
        evaluations=[item["path"] for item in evaluations()],
    output:
        csv=report(paths.table("concept_discovery", "csv"), caption="../report/concept_discovery.rst",
                   category="Concept discovery", subcategory="Tables"),
        md=paths.table("concept_discovery", "md"),
    params:
        # Each evaluation's path with its labels, so no label depends on list order.
        evaluations=evaluations(),
        styles=EVALUATION_STYLES,
    localrule: True
    log:
        "logs/concept_discovery_table.log",
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/concept_discovery_table.py"
