"""Top images and WWW concepts of chosen neurons, per view and similarity (the seed's Figure 3)."""
from neuron_concepts import io, www_figures
from neuron_concepts.logs import to_file

with to_file(snakemake.log[0]):
    p, inputs = snakemake.params, snakemake.input
    www_figures.neuron_panel_from_artifacts(
        io.read_parquet(inputs.manifest),
        activations={view: io.read_npz(path)["activations"]
                     for view, path in zip(p.views, inputs.activations)},
        boxes={view: io.read_parquet(path) for view, path in zip(p.boxed_views, inputs.boxes)},
        descriptions={(cell["view"], cell["sim"]): io.read_parquet(path)
                      for cell, path in zip(p.cells, inputs.descriptions)},
        neurons=p.neurons, n_images=p.n_images, path=snakemake.output[0], title=p.title)
