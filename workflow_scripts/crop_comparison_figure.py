"""Centre crop beside Grad-CAM crop, with the CAM, for sample images (the seed's Figure 4)."""
from neuron_concepts import io, www_figures
from neuron_concepts.logs import to_file

with to_file(snakemake.log[0]):
    www_figures.crop_comparison_from_artifacts(
        io.load_manifest(snakemake.input.manifest), io.load_cams(snakemake.input.cams),
        io.load_boxes(snakemake.input.boxes), snakemake.output[0],
        image_ids=snakemake.params.image_ids)
