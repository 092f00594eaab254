"""Describe every neuron of a layer with CLIP-Dissect (soft-WPMI or WPMI)."""
from neuron_concepts import clip_dissect, io, models
from neuron_concepts.logs import to_file

with to_file(snakemake.log[0]) as log:
    p = snakemake.params
    acts = io.load_activations(snakemake.input.activations).values
    variant = p.scoring["variant"]
    clip_dissect.check_top_k(p.scoring["top_k"], acts.shape[0],
                             f"methods.clip_dissect.{variant}.top_k (or stability.ks)")
    # Only the raw-string cosines: one [N, C] matrix in memory, not the whole file.
    # The configured similarity (p.scoring's sim, kappa) is applied to its rows in float32.
    raw = io.load_similarity(snakemake.input.similarity, parts=["raw"]).raw
    concepts = io.load_concepts(snakemake.input.concepts)
    scores = clip_dissect.layer_scores(clip_sim=raw, activations=acts, **p.scoring,
                                       device=models.resolve_device(p.device))
    table = clip_dissect.description_table(scores, concepts["text"],
                                           min(p.n_best, scores.shape[1]))
    log.info("%s: %d neurons x %d concepts, %d distinct descriptions", p.scoring,
             scores.shape[0], scores.shape[1],
             table.loc[table["selected"], "concept_id"].nunique())
    io.save_descriptions(snakemake.output[0], table)
