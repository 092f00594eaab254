# The neuron browser: a static site of every neuron of every layer with its top images under
# each view, the Grad-CAM overlay, every method's concepts, their agreement, the stability over
# k and the final layer's metrics (neuron_concepts.browser). `snakemake browser` builds it alone.


include: "helpers/browser.smk"


rule browser:
    """The browser folder: pages, per-layer data and thumbnails (once per image and view); no model."""
    input:
        browser_inputs,
    output:
        index=paths.browser(neuron_browser.INDEX),
        files=browser_files(),  # layer pages and data, scripts, the ConVis page
        thumbs=directory(paths.browser(neuron_browser.THUMBS)),
    params:
        site=lambda wc: browser_site(),
        options=lambda wc: browser_options(),
    # thumbnails are written in parallel, one image per task
    threads: 8
    resources:
        mem_mb=4000,
        # minutes: a thumbnail per image and view, at most (and its Grad-CAM overlay)
        runtime=lambda wc, input, threads, attempt: thumbnail_runtime_min(
            table_rows(browser_site()["manifest"]), len(browser_views()), threads, attempt),
    log:
        "logs/browser/site.log",
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
