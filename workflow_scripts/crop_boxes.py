"""Crop boxes (original pixels) around each image's Grad-CAM peak, at one crop fraction."""
from neuron_concepts import gradcam, io
from neuron_concepts.logs import to_file

with to_file(snakemake.log[0]) as log:
    manifest = io.load_manifest(snakemake.input.manifest)
    boxes = gradcam.boxes_for_manifest(io.load_cams(snakemake.input.cams), manifest,
                                       snakemake.params.crop_fraction)
    zero = boxes.loc[boxes["cam_zero"], "image_id"].astype(str).tolist()
    log.info("%d boxes at crop fraction %g; %d image(s) with an all-zero Grad-CAM use the "
             "centre crop: %s", len(boxes), snakemake.params.crop_fraction, len(zero),
             ", ".join(zero) or "none")
    io.save_boxes(snakemake.output[0], boxes)
