"""Describe every neuron of a layer with CLIP-Dissect (soft-WPMI or WPMI)."""
import numpy as np

from neuron_concepts import clip_dissect, io, models
from neuron_concepts.logs import to_file

with to_file(snakemake.log[0]) as log:
    p = snakemake.params
    acts = io.read_npz(snakemake.input.activations)["activations"]
    variant = p.scoring["variant"]
    clip_dissect.check_top_k(p.scoring["top_k"], acts.shape[0],
                             f"methods.clip_dissect.{variant}.top_k (or stability.ks)")
    # Only the raw-string cosines: one [N, C] matrix in memory, not the whole file.
    # The configured similarity (p.scoring's sim, kappa) is applied to its rows in float32.
    with np.load(snakemake.input.similarity, allow_pickle=False) as arrays:
        raw = arrays["raw"]
    concepts = io.read_concepts(snakemake.input.concepts)
    scores = clip_dissect.layer_scores(clip_sim=raw, activations=acts, **p.scoring,
                                       device=models.resolve_device(p.device))
    table = clip_dissect.description_table(scores, concepts["text"],
                                           min(p.n_best, scores.shape[1]))
    log.info("%s: %d neurons x %d concepts, %d distinct descriptions", p.scoring,
             scores.shape[0], scores.shape[1],
             table.loc[table["selected"], "concept_id"].nunique())
    io.write_parquet(snakemake.output[0], table)
