# The WWW grid of the improved method (view in {center, gradcam} x similarity in
# {cos, tvmf}): the seed paper's ablation table (Table 2) and neuron panels (Figure 3).


include: "helpers/ablation.smk"


rule ablation_table:
    """WWW-style metrics of the four grid cells, per probe set and concept set."""
    input:
        evaluations=lambda wc: [item["path"] for item in ablation_evaluations()],
    output:
        csv=report(paths.table("ablation", "csv"), caption="../report/ablation_table.rst",
                   category="WWW: Grad-CAM view and t-vMF", subcategory="Tables"),
        md=paths.table("ablation", "md"),
    params:
        # Each evaluation's path with its labels, so no label depends on list order.
        evaluations=lambda wc: ablation_evaluations(),
    localrule: True
    log:
        "logs/ablation_table.log",
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/ablation_table.py"


rule neuron_panel_figure:
    """Top images of chosen neurons under each view, with the concepts each WWW method assigns.

    One job draws every configured layer's panel (one PNG each): matplotlib's start-up is
    paid once.
    """
    input:
        unpack(neuron_panel_inputs),
    output:
        [report(paths.neuron_panel(layer), caption="../report/neuron_panels.rst",
                category="WWW: Grad-CAM view and t-vMF", subcategory="Neuron panels",
                labels={"layer": layer})
         for layer in SETTINGS.figures.layers],
    params:
        # Each layer with its views and cells and their input paths, and its output path,
        # so no label depends on list order.
        layers=lambda wc: neuron_panel_layers(),
        neurons=lambda wc: SETTINGS.figures.neurons,
        n_images=lambda wc: SETTINGS.figures.n_images,
    localrule: True
    log:
        "logs/figures/neuron_panels.log",
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/neuron_panel_figure.py"
