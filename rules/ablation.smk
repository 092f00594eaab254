# The WWW grid of the improved method (view in {center, gradcam} x similarity in
# {cos, tvmf}): the seed paper's ablation table (Table 2) and neuron panels (Figure 3).


rule ablation_table:
    """WWW-style metrics of the four grid cells, per probe set and concept set."""
    input:
        lambda wc: [cell["path"] for cell in ablation_evaluations()],
    output:
        csv=report("results/tables/ablation.csv", caption="../report/ablation_table.rst",
                   category="WWW: Grad-CAM view and t-vMF", subcategory="Tables"),
        md="results/tables/ablation.md",
    params:
        labels=lambda wc: [{k: v for k, v in cell.items() if k != "path"}
                           for cell in ablation_evaluations()],
    localrule: True
    log:
        "logs/ablation_table.log",
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/ablation_table.py"


rule neuron_panel_figure:
    """Top images of chosen neurons under each view, with the concepts each WWW method assigns."""
    input:
        unpack(neuron_panel_inputs),
    output:
        report("results/figures/neuron_panels/{layer}.png", caption="../report/neuron_panels.rst",
               category="WWW: Grad-CAM view and t-vMF", subcategory="Neuron panels",
               labels={"layer": "{layer}"}),
    params:
        views=lambda wc: view_names(),
        boxed_views=lambda wc: [v for v in view_names() if view_boxes(view_wildcards(v))],
        cells=lambda wc: [{k: cell[k] for k in ("view", "sim")} for cell in www_grid()],
        neurons=lambda wc: figure_settings()["neurons"],
        n_images=lambda wc: figure_settings()["n_images"],
        title=lambda wc: (f"{TARGET} {wc.layer} on {figure_settings()['probe']}, "
                          f"concepts from {figure_settings()['concepts']}"),
    wildcard_constraints:
        layer="|".join(re.escape(layer) for layer in config["target"]["layers"]),
    localrule: True
    log:
        "logs/figures/neuron_panels/{layer}.log",
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/neuron_panel_figure.py"
