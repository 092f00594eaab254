"""WWW concept scores and selection (Ahn et al. 2024), with cosine or t-vMF similarity.

For neuron k with top images o = 1..n, ``S_j = mean_o [sim(v_o, t_j) - sim(v_o, t_tem)]``;
concepts with ``S_j >= alpha * max_j S_j`` are selected. :func:`concept_scores` scores one
neuron from embeddings; :func:`layer_scores` scores every neuron of a layer at once from a
precomputed similarity matrix, as the pipeline does.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from numpy.typing import ArrayLike

from .activations import top_image_indices
from .similarity import as_tensor, cosine, similarity_fn


def concept_scores(image_emb: ArrayLike, concept_emb: ArrayLike, template_emb: ArrayLike,
                   sim: str = "cos", kappa: float = 16.0) -> np.ndarray:
    """WWW scores ``[C]`` of one neuron from the embeddings of its top images ``[n, D]``.

    ``concept_emb`` ``[C, D]`` embeds "A photo of a {concept}", ``template_emb`` ``[D]`` the
    base template "A photo of a". Inputs are normalised here; ``sim`` is ``cos`` or ``tvmf``.
    """
    f = similarity_fn(sim, kappa)
    to_concepts = f(cosine(image_emb, concept_emb))  # [n, C]
    to_template = f(cosine(image_emb, as_tensor(template_emb).reshape(1, -1)))  # [n, 1]
    return (to_concepts - to_template).mean(0).numpy()


def select_concepts(scores: ArrayLike, alpha: float = 0.95) -> list[int]:
    """Indices of the concepts with ``S_j >= alpha * max S``, by descending score.

    If the best score is not positive the threshold is meaningless (it would admit every
    concept above a negative value), so the argmax alone is selected.
    """
    scores = np.asarray(scores, dtype=np.float64)
    best = scores.max()
    if best <= 0:
        return [int(np.argmax(scores))]
    chosen = np.flatnonzero(scores >= alpha * best)
    return [int(i) for i in chosen[np.argsort(-scores[chosen], kind="stable")]]


def layer_scores(similarity: ArrayLike, template_similarity: ArrayLike, activations: ArrayLike,
                 n_images: int, device: str | torch.device = "cpu",
                 neuron_chunk: int = 512) -> np.ndarray:
    """WWW scores ``[K, C]`` of every neuron of a layer.

    ``similarity`` ``[N, C]`` holds ``sim(v_i, t_j)`` and ``template_similarity`` ``[N]``
    ``sim(v_i, t_tem)``, already passed through the similarity function (so cosine and t-vMF
    share this code). Each neuron's score is a mean of rows over its top images: a sparse
    selection matrix times the dense similarity, in chunks of neurons.
    """
    top = top_image_indices(activations, n_images)  # [K, n]
    sims = as_tensor(similarity).to(device)
    base = as_tensor(template_similarity).reshape(-1).to(device)
    n_total = sims.shape[0]
    out = np.empty((top.shape[0], sims.shape[1]), dtype=np.float32)
    for start in range(0, top.shape[0], neuron_chunk):
        rows = torch.as_tensor(top[start:start + neuron_chunk], device=device)
        k = rows.shape[0]
        select = torch.zeros((k, n_total), device=device)
        select.scatter_(1, rows, 1.0 / n_images)
        out[start:start + k] = (select @ sims - (select @ base)[:, None]).cpu().numpy()
    return out


def describe_layer(scores: np.ndarray, concepts: pd.Series | list[str], alpha: float = 0.95,
                   keep: int = 10) -> pd.DataFrame:
    """Description table of a layer: for each neuron its ``keep`` best concepts and the selected ones.

    Columns: neuron, rank, concept_id, concept, score, selected, fallback (the best score
    was not positive, so only the argmax is selected).
    """
    texts = np.asarray(list(concepts), dtype=object)
    rows = []
    for neuron, neuron_scores in enumerate(scores):
        n_selected = len(select_concepts(neuron_scores, alpha))
        # The selection is a prefix of the stable descending order, so one sort serves both.
        shown = np.argsort(-neuron_scores, kind="stable")[:max(keep, n_selected)]
        fallback = bool(neuron_scores.max() <= 0)
        for rank, j in enumerate(shown):
            rows.append((neuron, rank, int(j), texts[j], float(neuron_scores[j]),
                         rank < n_selected, fallback))
    return description_table(rows)


def description_table(rows: list[tuple]) -> pd.DataFrame:
    """The description artifact's columns and dtypes, shared by every method."""
    table = pd.DataFrame(rows, columns=["neuron", "rank", "concept_id", "concept", "score",
                                        "selected", "fallback"])
    return table.astype({"neuron": "int64", "rank": "int64", "concept_id": "int64",
                         "concept": "string", "score": "float32", "selected": "bool",
                         "fallback": "bool"})
