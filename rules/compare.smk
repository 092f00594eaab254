# Several targets side by side (config targets:): per target and layer the neurons, distinct
# top concepts, the share each method describes and the final layers' evaluation; the
# agreement of methods; and, for checkpoints of one architecture (same name and source, other
# weights), what changed between consecutive checkpoints. From the description artifacts
# only: no model runs here (neuron_concepts.compare, compare_figures).


include: "helpers/compare.smk"


rule compare_targets:
    """Comparison and agreement tables of every target, layer, method and concept set, and
    the figure of distinct top concepts by layer depth, one line per target."""
    input:
        descriptions=lambda wc: [item["path"] for item in compare_entries()],
        evaluations=lambda wc: [item["evaluation"] for item in compare_entries() if item["evaluation"]],
    output:
        csv=report(paths.table("compare_targets", "csv"), category="Comparison", subcategory="Tables"),
        md=paths.table("compare_targets", "md"),
        agreement_csv=paths.table("compare_agreement", "csv"),
        agreement_md=paths.table("compare_agreement", "md"),
        figure=report(paths.figure("compare_distinct_concepts"), category="Comparison",
                      subcategory="Figures"),
    params:
        # Each description's path with its labels and evaluation: nothing pairs by position.
        entries=lambda wc: compare_entries(),
        layer_order=lambda wc: compare_layer_order(),
    localrule: True
    log:
        "logs/compare_targets.log",
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/compare_tables.py"


rule compare_checkpoints:
    """Per layer, the share of neurons whose top concept changed between consecutive
    checkpoints of one architecture, the neurons that changed most, and their figure."""
    input:
        descriptions=lambda wc: list(dict.fromkeys(
            path for pair in checkpoint_pairs() for path in (pair["before"], pair["after"]))),
    output:
        csv=report(paths.table("compare_checkpoints", "csv"), category="Comparison",
                   subcategory="Tables"),
        md=paths.table("compare_checkpoints", "md"),
        changed_csv=paths.table("compare_checkpoints_most_changed", "csv"),
        changed_md=paths.table("compare_checkpoints_most_changed", "md"),
        figure=report(paths.figure("compare_checkpoints"), category="Comparison",
                      subcategory="Figures"),
    params:
        pairs=lambda wc: checkpoint_pairs(),
        layer_order=lambda wc: checkpoint_layer_order(),
        n_neurons=10,  # the most changed neurons listed per pair
    localrule: True
    log:
        "logs/compare_checkpoints.log",
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/compare_checkpoints.py"
