# The stability study of CLIP-Dissect (Cha & Weng): each neuron described with top_k = k
# for each k in stability.ks, compared with base_k. Off when stability.variants is empty.


include: "helpers/stability.smk"


rule stability_table:
    """Stability of CLIP-Dissect's top concepts from base_k to every other k activating images."""
    input:
        descriptions=lambda wc: [item["path"] for item in stability_descriptions()],
    output:
        csv=report(paths.table("stability", "csv"), caption="../report/stability_table.rst",
                   category="CLIP-Dissect stability", subcategory="Tables"),
        md=paths.table("stability", "md"),
        figure=report(paths.figure("stability"), caption="../report/stability_figure.rst",
                      category="CLIP-Dissect stability", subcategory="Figures"),
    params:
        # Each description's path with its labels, so no label depends on list order.
        descriptions=lambda wc: stability_descriptions(),
        # One dict: Snakemake compares params as a set of values without their names.
        study=lambda wc: dict(base_k=SETTINGS.stability.base_k, n_best=SETTINGS.stability.n_best),
    localrule: True
    log:
        "logs/stability_table.log",
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/stability_table.py"
