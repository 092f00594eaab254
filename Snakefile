"""neuron-concepts: explain the neurons of vision models in words.

    snakemake --cores all                      # the configured experiment (config.yaml)
    snakemake --cores all --config weights=random   # offline smoke run, random weights
"""

from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config.yaml"


validate(config, "config.schema.yaml")


include: "rules/common.smk"
include: "rules/weights.smk"
include: "rules/probe.smk"
include: "rules/concepts.smk"
include: "rules/embed.smk"
include: "rules/activations.smk"
include: "rules/similarity.smk"
include: "rules/www.smk"
include: "rules/evaluate.smk"
include: "rules/clip_dissect.smk"
include: "rules/stability.smk"
include: "rules/gradcam.smk"
include: "rules/ablation.smk"


rule all:
    input:
        all_descriptions(),
        "results/tables/concept_discovery.csv",
        "results/tables/concept_discovery.md",
        stability_outputs(),
        www_grid_outputs(),
    default_target: True
