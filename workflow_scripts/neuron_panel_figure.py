"""Top images and WWW concepts of chosen neurons, per view and similarity (the seed's Figure 3)."""
from neuron_concepts import io, www_figures
from neuron_concepts.logs import to_file

with to_file(snakemake.log[0]):
    # Each layer, view and cell names its own inputs: no pairing by list position.
    p = snakemake.params
    manifest = io.load_manifest(snakemake.input.manifest)
    for layer in p.layers:
        www_figures.neuron_panel_from_artifacts(
            manifest,
            activations={view["view"]: io.load_activations(view["activations"]).values
                         for view in layer["views"]},
            boxes={view["view"]: io.load_boxes(view["boxes"])
                   for view in layer["views"] if view["boxes"]},
            descriptions={(cell["view"], cell["sim"]): io.load_descriptions(cell["path"])
                          for cell in layer["cells"]},
            neurons=p.neurons, n_images=p.n_images, path=layer["path"], title=layer["title"])
