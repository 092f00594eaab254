"""Describe every neuron of a layer with WWW."""
from neuron_concepts import io, models, www
from neuron_concepts.logs import to_file

with to_file(snakemake.log[0]) as log:
    p = snakemake.params
    acts = io.read_npz(snakemake.input.activations)["activations"]
    sims = io.read_npz(snakemake.input.similarity)
    concepts = io.read_concepts(snakemake.input.concepts)
    scores = www.layer_scores(sims["prompt"], sims["base"], acts, p.n_images,
                              models.resolve_device(p.device))
    table = www.describe_layer(scores, concepts["text"], p.alpha)
    log.info("%d neurons, %.2f concepts selected on average, %d fell back to the argmax",
             scores.shape[0], table["selected"].sum() / scores.shape[0],
             table.groupby("neuron")["fallback"].first().sum())
    io.write_parquet(snakemake.output[0], table)
