include: "helpers/weights.smk"


rule download_weights:
    """Fetch a model's weights into the cache once; every model job reads them from there."""
    output:
        paths.weights_marker(),
    params:
        spec=lambda wc: weights_spec(wc.kind, wc.tag),
    wildcard_constraints:
        kind="target|clip|sentence",
    localrule: True
    log:
        "logs/download_weights/{cache}/{kind}/{tag}.log",
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/download_weights.py"
