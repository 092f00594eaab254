# Helpers of rules/gradcam.smk: the configured gradcam view and its figure.


def gradcam_view():
    """The gradcam view at the configured crop parameters (gradcam-f0.5), listed under views or not."""
    return settings.member_name(names.VIEWS, "gradcam", config)


def gradcam_outputs():
    """The crop comparison figure, when views lists gradcam."""
    return ["results/figures/crop_comparison.png"] if gradcam_view() in SETTINGS.views else []
