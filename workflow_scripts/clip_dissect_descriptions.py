"""Describe every neuron of every layer with CLIP-Dissect, for each view and method."""
from neuron_concepts import clip_dissect, io, models
from neuron_concepts.logs import to_file

with to_file(snakemake.log[0]) as log:
    p = snakemake.params
    device = models.resolve_device(p.device)
    concepts = io.load_concepts(snakemake.input.concepts)
    for view in p.views:
        # Only the raw-string cosines, memory-mapped: a layer reads the rows of its neurons'
        # top images. The configured similarity is applied to those rows in float32.
        raw = io.load_similarity(view["similarity"], parts=["raw"], mmap=True).raw
        for item in view["layers"]:
            acts = io.load_activations(item["activations"]).values
            # Methods that differ only in top_k (the stability study's ks) share one pass.
            for group in clip_dissect.group_by_top_k([m["scoring"] for m in item["methods"]]):
                for scoring in group:
                    clip_dissect.check_top_k(scoring["top_k"], acts.shape[0],
                                             f"methods.clip_dissect.{scoring['variant']}.top_k "
                                             "(or stability.ks)")
                shared = {key: value for key, value in group[0].items() if key != "top_k"}
                by_k = clip_dissect.layer_scores_over_k(
                    clip_sim=raw, activations=acts, ks=[s["top_k"] for s in group], **shared,
                    device=device)
                for method in item["methods"]:
                    if method["scoring"] not in group:
                        continue
                    scores = by_k[method["scoring"]["top_k"]]
                    table = clip_dissect.description_table(scores, concepts["text"],
                                                           min(p.n_best, scores.shape[1]))
                    log.info("%s %s: %d neurons x %d concepts, %d distinct descriptions",
                             item["layer"], method["method"], scores.shape[0], scores.shape[1],
                             table.loc[table["selected"], "concept_id"].nunique())
                    io.save_descriptions(method["path"], table)
