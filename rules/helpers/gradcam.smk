# Helpers of rules/gradcam.smk: the configured gradcam view and its figure.


def gradcam_view():
    """The gradcam view at the configured crop parameters (gradcam-f0.5), listed under views or not."""
    return settings.member_name(names.VIEWS, "gradcam", config)


def gradcam_outputs():
    """The crop comparison figure, when views lists gradcam."""
    return [paths.figure("crop_comparison")] if SETTINGS.on("crop_comparison") else []


def gradcam_layer_spec(tag=None):
    """The Grad-CAM layer of the target named ``tag`` (the primary when None; gradcam.layer,
    auto: the family's default) and how its output is a conv map or patch tokens
    (neuron_concepts.layers.LayerNeurons), as plain values."""
    spec = target_info(tag or TARGET).found.gradcam
    if spec is None or spec.layout == "vector":
        found = "none was found" if spec is None else f"{spec.layer!r} gives [B, K]"
        where = f"{tag}: " if MULTI_TARGET else ""
        raise WorkflowError(f"Invalid configuration: {where}gradcam.layer: the gradcam view needs a layer "
                            f"whose output is a conv map or patch tokens, and {found}; name one "
                            "(python -m neuron_concepts.layers lists them)")
    return spec.to_dict()
