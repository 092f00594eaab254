# Helpers of rules/ablation.smk: the WWW grid, the ablation table's evaluations and the
# neuron panels' inputs, each with its labels.


def www_grid():
    """The configured WWW methods with the ablation's two switches: whether a method uses
    the Grad-CAM crop and whether it uses t-vMF."""
    return [dict(method=m.name, view=m.view, sim=m.sim,
                 gradcam=names.parse_view(m.view).kind != "center",
                 tvmf=names.parse_sim(m.sim).kind != "cos")
            for m in SETTINGS.www]


def ablation_evaluations():
    """Every evaluation the ablation table joins: path and labels."""
    if not SETTINGS.on("ablation"):
        raise WorkflowError("the ablation table needs views: [center, gradcam] and "
                            "methods.www.similarities: [cos, tvmf] in the config")
    return [dict(path=evaluation_path(probe, cell["method"], concepts),
                 labels=dict(probe=probe, concepts=concepts, gradcam=cell["gradcam"],
                             tvmf=cell["tvmf"], method=cell["method"], view=cell["view"],
                             sim=cell["sim"], target=TARGET, clip=CLIP["match"],
                             eval_clip=CLIP["eval"], sentence=SENTENCE))
            for probe in SETTINGS.evaluation_probe_sets
            for concepts in SETTINGS.evaluation_concept_sets
            for cell in www_grid()]


def neuron_panel_views(layer):
    """Each configured view with the layer's activations and its crop boxes (None: center)."""
    probe = SETTINGS.figures.probe
    return [dict(view=view, activations=activations_path(probe, view, layer),
                 boxes=view_boxes_path(probe, view))
            for view in SETTINGS.views]


def neuron_panel_cells(layer):
    """Each WWW method's view, similarity and descriptions of the layer."""
    fig = SETTINGS.figures
    return [dict(view=cell["view"], sim=cell["sim"],
                 path=description_path(fig.probe, layer, cell["method"], fig.concepts))
            for cell in www_grid()]


def neuron_panel_layers():
    """Each figure layer: its views, cells, title and output path."""
    fig = SETTINGS.figures
    return [dict(layer=layer, views=neuron_panel_views(layer), cells=neuron_panel_cells(layer),
                 title=f"{TARGET} {layer} on {fig.probe}, concepts from {fig.concepts}",
                 path=paths.neuron_panel(layer))
            for layer in fig.layers]


def neuron_panel_inputs(wildcards):
    """Manifest, and the files neuron_panel_views and neuron_panel_cells name, of every layer."""
    layers = neuron_panel_layers()
    return dict(
        manifest=paths.probe_manifest(SETTINGS.figures.probe),
        activations=[view["activations"] for item in layers for view in item["views"]],
        boxes=list(dict.fromkeys(view["boxes"] for item in layers for view in item["views"]
                                 if view["boxes"])),
        descriptions=[cell["path"] for item in layers for cell in item["cells"]],
    )


def ablation_outputs():
    """The ablation table (when the 2 x 2 grid is configured and evaluated) and the neuron panels."""
    outputs = []
    if SETTINGS.on("ablation") and SETTINGS.on("evaluation"):
        outputs += paths.table_files("ablation")
    outputs += [paths.neuron_panel(layer) for layer in SETTINGS.figures.layers]
    return outputs
