# The neuron browser: a static site of every neuron of every layer with its top images under
# each view, the Grad-CAM overlay, every method's concepts, their agreement, the stability over
# k and the final layer's metrics (neuron_concepts.browser). `snakemake browser` builds it alone
# (with several targets, the primary target's site; browser_<tag> another's).


include: "helpers/browser.smk"


# One site per target (rules/helpers/browser.smk): the rule is defined once per target
# (TARGETS), as rules/activations.smk does; the primary target's keeps the name browser,
# another's adds its tag (browser_<tag>) and writes targets/<tag>/ in the primary's folder.
for _tag in TARGETS:

    rule:
        """The browser folder of a target: pages, per-layer data and thumbnails (once per image
        and view); no model."""
        name:
            target_rule_name("browser", _tag)
        input:
            browser_inputs(_tag),
        output:
            index=browser_file(neuron_browser.INDEX, _tag),
            files=browser_files(_tag),  # layer pages and data, scripts, the ConVis page
            thumbs=directory(browser_file(neuron_browser.THUMBS, _tag)),
        params:
            site=browser_site_params(_tag),
            options=lambda wc: browser_options(),
        # thumbnails are written in parallel, one image per task
        threads: 8
        resources:
            mem_mb=4000,
            # minutes: a thumbnail per image and view, at most (and its Grad-CAM overlay)
            runtime=browser_runtime(_tag),
        log:
            browser_log(_tag),
        conda:
            "../envs/torch.yaml"
        script:
            "../workflow_scripts/browser.py"


rule browser_screenshot:
    """A PNG of the first neuron's panel of the final layer, by headless Chromium (for the README)."""
    input:
        rules.browser.output.index,
        rules.browser.output.files,
        rules.browser.output.thumbs,
    output:
        report(paths.figure("browser_panel"), caption="../report/browser.rst",
               category="Neuron browser"),
    params:
        layer=FINAL_LAYER or LAYERS[-1],
        chromium=lambda wc: SETTINGS.browser.chromium,
    resources:
        mem_mb=2000,
        runtime=10,
    log:
        "logs/browser/screenshot.log",
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/browser_screenshot.py"
