"""neuron-concepts: explain the neurons of vision models in words.

    snakemake --cores all                      # the configured experiment (config.yaml)
    snakemake --cores all --config weights=random   # offline smoke run, random weights
"""

from snakemake.utils import min_version

from neuron_concepts import settings
from neuron_concepts.errors import ConfigError

min_version("9.0")


configfile: "config.yaml"


try:
    # The schema fills in defaults; an error names the key, the reason and where it is documented.
    settings.validate(config, "config.schema.yaml")
except ConfigError as error:
    raise WorkflowError(f"Invalid configuration: {error}") from None


# snakemake --report results/report.html: the tables and figures of every method
report: "report/workflow.rst"


# common.smk first: it checks and resolves the config that every rule file reads. Each
# feature's helpers (rules/helpers/, included by its rule file) define its *_outputs() for
# final_outputs(), which is called only once all are included (provenance.smk, rule all).
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
include: "rules/convis.smk"
include: "rules/compare.smk"
include: "rules/browser.smk"
include: "rules/provenance.smk"  # last: its inputs are every final output


rule all:
    # A feature's outputs go into final_outputs() (rules/common.smk), not here, so that
    # the provenance manifest covers them too.
    input:
        final_outputs(),
        rules.provenance.output,
    default_target: True
