# Evaluation of the final layer's descriptions against the ImageNet classes, and the
# concept-discovery table (the papers' Table 1) over every described method.


include: "helpers/evaluate.smk"


rule evaluation_text_embeddings:
    """Embeddings of a concept set and the ImageNet labels by an evaluation model (CLIP or mpnet).

    Computed once per (model, concept set), so evaluating a method needs no model at all.
    """
    input:
        concepts="results/concepts/{concepts}.parquet",
        weights=lambda wc: weights_marker(evaluation_model_kind(wc.model), wc.model),
    output:
        "results/eval_emb/{model}/{concepts}.npz",
    params:
        model=lambda wc: evaluation_model_spec(wc.model),
        batch_size=config["batch_size"]["text"],
        device=config["device"],
    resources:
        gpu=use_gpu(),
        mem_mb=8000,
        runtime=60,
    log:
        "logs/evaluation_text_embeddings/{model}/{concepts}.log",
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/evaluation_text_embeddings.py"


rule evaluate_descriptions:
    """Per-neuron metrics of a final layer's descriptions against its ImageNet classes."""
    input:
        descriptions="results/descriptions/{probe}/{target}/{layer}/{method}/{concepts}.parquet",
        clip_emb=lambda wc: f"results/eval_emb/{CLIP['eval']}/{wc.concepts}.npz",
        sentence_emb=lambda wc: f"results/eval_emb/{SENTENCE}/{wc.concepts}.npz",
    output:
        "results/eval/{probe}/{target}/{layer}/{method}/{concepts}.parquet",
    params:
        # decides the top-1 / top-5 accuracy columns (imagenet_labels: class index; imagenet: synonyms)
        concept_type=lambda wc: config["concept_sets"][wc.concepts]["type"],
    resources:
        mem_mb=4000,
        runtime=30,
    log:
        "logs/evaluate_descriptions/{probe}/{target}/{layer}/{method}/{concepts}.log",
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/evaluate_descriptions.py"


rule concept_discovery_table:
    """The papers' Table 1: one row per (style, method, probe set, concept set)."""
    input:
        evaluations=[item["path"] for item in evaluations()],
    output:
        csv=report("results/tables/concept_discovery.csv", caption="../report/concept_discovery.rst",
                   category="Concept discovery", subcategory="Tables"),
        md="results/tables/concept_discovery.md",
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
