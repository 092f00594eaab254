rule concept_set:
    """Normalise a concept set: stripped, blank lines dropped, in order (duplicates kept unless deduplicate)."""
    input:
        concept_source,
    output:
        "results/concepts/{concepts}.parquet",
    params:
        spec=lambda wc: config["concept_sets"][wc.concepts],
    # ConVis (issue 5): configured names match this (config schema); "convis-<vocab>" concept
    # sets hold vocabulary definitions and come from rule convis_vocabulary.
    wildcard_constraints:
        concepts=r"[A-Za-z0-9_.]+",
    log:
        "logs/concept_set/{concepts}.log",
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/concept_set.py"
