include: "helpers/concepts.smk"


rule concept_set:
    """Normalise a concept set: stripped, blank lines dropped, in order (duplicates kept unless deduplicate)."""
    input:
        concept_source,
    output:
        paths.concepts(),
    params:
        spec=lambda wc: config["concept_sets"][wc.concepts],
    # Only configured names (the schema's pattern): "convis-<vocab>" concept sets hold
    # vocabulary definitions and come from rule convis_vocabulary.
    wildcard_constraints:
        concepts=names.CONFIG_NAME,
    log:
        "logs/concept_set/{concepts}.log",
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/concept_set.py"
