"""Overlay one configured (image, synset) ConVis map on its image."""
from neuron_concepts import convis, data, io
from neuron_concepts.logs import to_file

with to_file(snakemake.log[0]):
    image_id = snakemake.wildcards.image
    manifest = io.load_manifest(snakemake.input.manifest).set_index("image_id")
    saliency = io.load_convis_map(snakemake.input.saliency)
    image = convis.frame_image(data.load_image(manifest.loc[image_id, "path"]), saliency.resize)
    convis.overlay_figure(image, saliency.saliency, snakemake.output[0],
                          title=f"{image_id}: {saliency.synset}")
