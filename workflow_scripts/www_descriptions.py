"""Describe every neuron of every layer with WWW, under each view and each similarity."""
from neuron_concepts import io, models, www
from neuron_concepts.logs import to_file

with to_file(snakemake.log[0]) as log:
    p = snakemake.params
    device = models.resolve_device(p.device)
    concepts = io.load_concepts(snakemake.input.concepts)
    for view in p.views:
        # Memory-mapped: each chunk of neurons reads the rows of its top images only. Only
        # the prompt and base cosines (a file shared with CLIP-Dissect also holds raw).
        sims = io.load_similarity(view["similarity"], parts=["prompt", "base"], mmap=True)
        for item in view["layers"]:
            acts = io.load_activations(item["activations"]).values
            for method in item["methods"]:
                kind, kappa = method["sim"]
                scores = www.layer_scores(sims.prompt, sims.base, acts, p.n_images, device,
                                          sim=kind, kappa=kappa)
                table = www.describe_layer(scores, concepts["text"], p.alpha)
                log.info("%s %s: %d neurons, %.2f concepts selected on average, %d fell back "
                         "to the argmax", item["layer"], method["method"], scores.shape[0],
                         table["selected"].sum() / scores.shape[0],
                         table.groupby("neuron")["fallback"].first().sum())
                io.save_descriptions(method["path"], table)
