"""Describe every neuron of a layer with WWW."""
import numpy as np

from neuron_concepts import io, models, www
from neuron_concepts.logs import to_file

with to_file(snakemake.log[0]) as log:
    p = snakemake.params
    kind, kappa = p.sim
    acts = io.read_npz(snakemake.input.activations)["activations"]
    # Only the prompt and base cosines (a file shared with CLIP-Dissect also holds raw).
    with np.load(snakemake.input.similarity, allow_pickle=False) as arrays:
        prompt, base = arrays["prompt"], arrays["base"]
    concepts = io.read_concepts(snakemake.input.concepts)
    scores = www.layer_scores(prompt, base, acts, p.n_images, models.resolve_device(p.device),
                              sim=kind, kappa=kappa)
    table = www.describe_layer(scores, concepts["text"], p.alpha)
    log.info("%s: %d neurons, %.2f concepts selected on average, %d fell back to the argmax",
             p.sim, scores.shape[0], table["selected"].sum() / scores.shape[0],
             table.groupby("neuron")["fallback"].first().sum())
    io.write_parquet(snakemake.output[0], table)
