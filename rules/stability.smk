rule stability_table:
    """Stability of CLIP-Dissect's top concepts from base_k to every other k activating images.

    Its inputs are ordinary clip_dissect_descriptions outputs, one per k (k in the method
    name), so a k shared with methods.clip_dissect is described once.
    """
    input:
        descriptions=[d["path"] for d in stability_descriptions()],
    output:
        csv=report("results/tables/stability.csv", caption="../report/stability_table.rst",
                   category="CLIP-Dissect stability", subcategory="Tables"),
        md="results/tables/stability.md",
        figure=report("results/figures/stability.png", caption="../report/stability_figure.rst",
                      category="CLIP-Dissect stability", subcategory="Figures"),
    params:
        labels=[{key: value for key, value in d.items() if key != "path"}
                for d in stability_descriptions()],
        # One dict: Snakemake compares params as a set of values without their names.
        study=dict(base_k=config["stability"]["base_k"], n_best=config["stability"]["n_best"]),
    localrule: True
    log:
        "logs/stability_table.log",
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/stability_table.py"
