"""Describe every neuron of a layer with WWW."""
from neuron_concepts import io, models, www
from neuron_concepts.logs import to_file

with to_file(snakemake.log[0]) as log:
    p = snakemake.params
    kind, kappa = p.sim
    acts = io.load_activations(snakemake.input.activations).values
    # Only the prompt and base cosines (a file shared with CLIP-Dissect also holds raw).
    sims = io.load_similarity(snakemake.input.similarity, parts=["prompt", "base"])
    concepts = io.load_concepts(snakemake.input.concepts)
    scores = www.layer_scores(sims.prompt, sims.base, acts, p.n_images, models.resolve_device(p.device),
                              sim=kind, kappa=kappa)
    table = www.describe_layer(scores, concepts["text"], p.alpha)
    log.info("%s: %d neurons, %.2f concepts selected on average, %d fell back to the argmax",
             p.sim, scores.shape[0], table["selected"].sum() / scores.shape[0],
             table.groupby("neuron")["fallback"].first().sum())
    io.save_descriptions(snakemake.output[0], table)
