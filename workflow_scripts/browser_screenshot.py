"""Screenshot of one neuron's panel in the browser, by headless Chromium."""
from neuron_concepts import browser
from neuron_concepts.logs import to_file

with to_file(snakemake.log[0]):
    browser.screenshot_panel(snakemake.input[0], snakemake.params.layer, snakemake.output[0],
                             chromium=snakemake.params.chromium)
