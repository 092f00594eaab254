"""Metrics of neuron descriptions against ground-truth labels (docs/methods.md, "Evaluation").

Predictions and ground truth are lists (one per neuron) of lists of strings. Scores are
per neuron first (the ``*_per_neuron`` functions, kept in the evaluation artifact) and
the public metrics are their means in percent. They follow WWW's official
``utils/metric_utils.py`` (ailab-kyunghee/WWW): strings are compared lower-cased (and
stripped); a neuron with no prediction counts as predicting ``["none"]``; predictions
are lists, not sets, so a concept selected twice (a concept set with duplicates) counts
twice in precision and in the cosine means.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

Labels = Sequence[Sequence[str]]


def _clean(labels: Sequence[str]) -> list[str]:
    """Lower-cased, stripped strings in order, duplicates kept; ``["none"]`` when none is left."""
    cleaned = [str(s).strip().lower() for s in labels]
    return [s for s in cleaned if s] or ["none"]


def _check_lengths(predictions: Labels, ground_truth: Labels) -> None:
    if len(predictions) != len(ground_truth):
        raise ValueError(f"{len(predictions)} predictions but {len(ground_truth)} ground truths")


def hits_per_neuron(predictions: Labels, ground_truth: Labels) -> np.ndarray:
    """1.0 where any prediction equals any ground-truth synonym exactly, else 0.0."""
    _check_lengths(predictions, ground_truth)
    return np.array([float(bool(set(_clean(p)) & set(_clean(g))))
                     for p, g in zip(predictions, ground_truth)])


def precision_recall_per_neuron(predictions: Labels, ground_truth: Labels) -> tuple[np.ndarray, np.ndarray]:
    """WWW's precision and recall of each neuron (``compute_pr``).

    ``P = |set(G) & set(Pr)| / len(Pr)`` and ``R = |set(G) & set(Pr)| / len(G)``: the
    matches are counted once, the denominators are list lengths with duplicates, so
    selecting "crane" twice against {crane, bird} gives P = 1/2, not 1.
    """
    _check_lengths(predictions, ground_truth)
    precision, recall = [], []
    for p, g in zip(predictions, ground_truth):
        pred, truth = _clean(p), _clean(g)
        common = len(set(pred) & set(truth))
        precision.append(common / len(pred))
        recall.append(common / len(truth))
    return np.array(precision), np.array(recall)


def f1_per_neuron(predictions: Labels, ground_truth: Labels) -> np.ndarray:
    """WWW's F1 of each neuron, ``2PR / (P + R)`` (0 when both are 0); see :func:`precision_recall_per_neuron`."""
    precision, recall = precision_recall_per_neuron(predictions, ground_truth)
    total = precision + recall
    return np.divide(2 * precision * recall, total, out=np.zeros_like(total), where=total > 0)


def hit_rate(predictions: Labels, ground_truth: Labels) -> float:
    """Percentage of neurons with at least one exact match between prediction and synonyms."""
    return float(100 * hits_per_neuron(predictions, ground_truth).mean())


def f1_score(predictions: Labels, ground_truth: Labels) -> float:
    """Mean per-neuron WWW F1 (predictions as a list, duplicates kept), in percent."""
    return float(100 * f1_per_neuron(predictions, ground_truth).mean())


def cosine_per_neuron(predictions: Labels, ground_truth: Labels,
                      embed: Callable[[list[str]], np.ndarray]) -> np.ndarray:
    """Per neuron, the mean cosine over all (prediction, synonym) pairs of text embeddings.

    As WWW's ``compute_sim`` / ``similarities``: every prediction in the list, duplicates
    included, pairs with every synonym, and cosines above 1 (rounding) count as 1. The mean
    over all pairs equals the mean over predictions of each prediction's mean cosine to the
    synonyms (every prediction has the same synonyms), so this serves the CLIP and the
    mpnet metric. ``embed`` maps a list of strings to embeddings ``[n, D]``; each distinct
    string is embedded once.
    """
    _check_lengths(predictions, ground_truth)
    cleaned_p = [_clean(p) for p in predictions]
    cleaned_g = [_clean(g) for g in ground_truth]
    vocab = sorted({s for group in cleaned_p + cleaned_g for s in group})
    index = {s: i for i, s in enumerate(vocab)}
    emb = np.asarray(embed(vocab), dtype=np.float64)
    emb /= np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    return np.array([
        np.minimum(emb[[index[s] for s in p]] @ emb[[index[s] for s in g]].T, 1.0).mean()
        for p, g in zip(cleaned_p, cleaned_g)])


def clip_embedder(clip, batch_size: int = 256) -> Callable[[list[str]], np.ndarray]:
    """Raw-string CLIP text embedder (no template) for :func:`cosine_per_neuron`."""
    from .embeddings import encode_texts

    return lambda texts: encode_texts(clip, texts, batch_size=batch_size, progress=False)


def sentence_embedder(model, batch_size: int = 256) -> Callable[[list[str]], np.ndarray]:
    """sentence-transformers embedder (e.g. all-mpnet-base-v2) for :func:`cosine_per_neuron`."""
    return lambda texts: model.encode(list(texts), batch_size=batch_size,
                                      convert_to_numpy=True, normalize_embeddings=True)


def lookup_embedder(texts, embeddings: np.ndarray) -> Callable[[list[str]], np.ndarray]:
    """An embedder that looks precomputed embeddings up by text (see ``evaluation_texts``)."""
    index = {str(t): i for i, t in enumerate(texts)}

    def embed(queries: list[str]) -> np.ndarray:
        missing = [q for q in queries if q not in index]
        if missing:
            raise KeyError(f"no precomputed embedding for {missing[:5]}: the evaluation "
                           "embeddings were built for another concept set")
        return embeddings[[index[q] for q in queries]]

    return embed
