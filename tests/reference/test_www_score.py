"""Our WWW concept score and selection against a re-derivation of WWW's official code.

Reference: github.com/ailab-kyunghee/WWW at commit c43715b (the files below last changed
in 55b3a32, "Camera-ready"):

- ``concept_matching.py``, ``compute_concept_similarity`` with ``adaptive=True`` (lines
  78-111): for every top image, one at a time, ``torch.nn.functional.cosine_similarity``
  of its CLIP feature with every prompt "A photo of a {word}" minus its cosine with the
  base template "A photo of a" (lines 99-101); the rows are stored in float32.
- ``concept_matching.py``, ``concept_discovery`` (lines 135-183): the rows of each
  consecutive block of ``num_example`` images (one neuron's top images; default 40) are
  summed into a float64 weight vector (lines 155-161); ``threshold = max * alpha / 100``
  with ``alpha = 95`` (line 168); selected: ``np.where(weights > threshold)`` (line 169,
  strict), ordered by ``np.argsort(...)[::-1]`` (line 171), i.e. descending.
- ``example_selection.py`` (lines 121-125): a neuron's top images are
  ``np.flip(np.argsort(acts[:, j])[-num_example:])`` with numpy's default sort, their
  activations kept in a float64 matrix; the merge step (lines 150-153) sorts those values
  the same way and flips again (one activation file, ``num_act=1``, the default).
- The Grad-CAM / t-vMF variant (Sannomiya & Hotta 2025) replaces both cosines of line
  99-100 by t-vMF, as in github.com/tk1980/tvMF ``models/Loss.py`` line 36 (commit 6252b8d):
  ``(1 + cos) / (1 + (1 - cos) * kappa) - 1``.

The official code splits the image rows over ``concept_sim_num`` files (lines 90-98); one
file here, which is the same arithmetic. The functions below are written from that
description, not sharing a code path with ``neuron_concepts.www``.

Where ours differs on purpose (docs/methods.md), each asserted below:
- the threshold admits ``S_j >= delta`` (official: ``>``), so a score exactly on the
  threshold is selected by ours only;
- when ``max_j S_j <= 0`` ours selects the argmax and flags the neuron ``fallback``; the
  official selection is empty;
- our scores are means over the top images (docs/methods.md), the official weights sums: every
  score of a neuron scaled by ``1 / n``, the same selection;
- ties: among exactly equal scores ours orders the lower concept index first (a stable
  sort), the official reversed ascending sort the higher one first (same set).

Images tied at the n-th activation are chosen as the official code chooses them (the same
numpy calls), asserted below on activations with ties at the cut.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from neuron_concepts import www
from neuron_concepts.activations import www_top_images
from neuron_concepts.similarity import cosine_matrices

TOL = 1e-5
KAPPA = 16.0


# ----------------------------------------------------------------- the re-derivation


def official_tvmf(cos: torch.Tensor, kappa: float) -> torch.Tensor:
    """tvMF ``models/Loss.py`` line 36, on cosine values."""
    return (1.0 + cos).div(1.0 + (1.0 - cos).mul(kappa)) - 1.0


def official_rows(image_features: np.ndarray, word_features: np.ndarray,
                  template_feature: np.ndarray, kappa: float | None = None) -> np.ndarray:
    """``compute_concept_similarity(adaptive=True)``: one float32 row per image, in order.

    ``kappa``: the t-vMF variant (both cosines replaced); ``None``: the cosine (WWW).
    """
    images = torch.tensor(image_features, dtype=torch.float32)
    words = torch.tensor(word_features, dtype=torch.float32)
    template = torch.tensor(template_feature, dtype=torch.float32).reshape(-1)
    rows = []
    for i in range(len(images)):
        image = images[i].reshape(1, -1)
        to_words = F.cosine_similarity(image, words)
        to_template = F.cosine_similarity(image, template)
        if kappa is not None:
            to_words, to_template = official_tvmf(to_words, kappa), official_tvmf(to_template, kappa)
        rows.append((to_words - to_template).numpy())
    return np.stack(rows)


def official_weights(rows: np.ndarray, num_example: int) -> list[np.ndarray]:
    """``concept_discovery`` lines 155-161: float64 sums of consecutive blocks of rows."""
    weights, current = [], np.zeros(rows.shape[1])
    for i in range(len(rows)):
        if i != 0 and i % num_example == 0:
            weights.append(current)
            current = np.zeros(rows.shape[1])
        current += rows[i]
    weights.append(current)
    return weights


def official_selection(weights: np.ndarray, alpha: int = 95) -> list[int]:
    """``concept_discovery`` lines 167-171: indices above the threshold, descending."""
    threshold = np.max(weights) * (alpha / 100)
    chosen = np.where(weights > threshold)[0]
    return [int(chosen[j]) for j in np.argsort(weights[chosen])[::-1]]


def official_top_images(acts: np.ndarray, num_example: int) -> np.ndarray:
    """``example_selection.py`` lines 118-153 (``num_act=1``): top images ``[K, n]``, best first."""
    idx_matrix = np.zeros((num_example, acts.shape[1]))  # float64, as there
    feat_matrix = np.zeros((num_example, acts.shape[1]))
    for j in range(acts.shape[1]):  # lines 121-124
        sorted_idx = np.argsort(acts[:, j])
        top_idx = np.flip(sorted_idx[-num_example:])
        idx_matrix[:, j] = top_idx
        feat_matrix[:, j] = acts[top_idx, j]
    merged = np.zeros((num_example, acts.shape[1]))
    for j in range(acts.shape[1]):  # lines 150-153: the merge of the (one) activation file
        sorted_idx = np.argsort(feat_matrix[:, j])
        top_idx = np.flip(sorted_idx[-num_example:])
        merged[:, j] = idx_matrix[top_idx, j]
    return merged.T.astype(np.int64)


def official_www(images, prompts, template, acts, num_example, kappa=None):
    """The official pipeline end to end: (weights, selection) per neuron."""
    top = official_top_images(acts, num_example)
    rows = official_rows(images[top.reshape(-1)], prompts, template, kappa)
    weights = official_weights(rows, num_example)
    return weights, [official_selection(w) for w in weights]


# ----------------------------------------------------------------- inputs


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def clip_like_inputs(seed: int, n_images=60, n_concepts=50, n_neurons=12, dim=128):
    """Embeddings with CLIP's shared direction (image-text cosines about 0.15-0.45) and
    activations that favour images near a neuron's direction; no ties."""
    rng = np.random.default_rng(seed)
    shared = unit(rng.normal(size=dim))
    images = unit(0.3 * shared + 0.45 * unit(rng.normal(size=(n_images, dim))))
    prompts = unit(0.3 * shared + 0.45 * unit(rng.normal(size=(n_concepts, dim))))
    template = unit(0.3 * shared + 0.45 * unit(rng.normal(size=dim)))
    acts = images @ unit(rng.normal(size=(n_neurons, dim))).T + 1e-3 * rng.normal(
        size=(n_images, n_neurons))
    # Lengths other than 1, as raw encoder outputs: cosines must normalise.
    images = images * rng.uniform(0.5, 3.0, size=(n_images, 1))
    prompts = prompts * rng.uniform(0.5, 3.0, size=(n_concepts, 1))
    return images, prompts, template * 2.5, acts.astype(np.float32)


def ours_from_cosines(images, prompts, template, acts, n, sim):
    """Our pipeline path: stored cosines, then layer_scores and describe_layer."""
    sims = cosine_matrices(images, {"emb": prompts, "base": template}, ["prompt", "base"])
    scores = www.layer_scores(sims["prompt"], sims["base"], acts, n, sim=sim, kappa=KAPPA)
    return scores, www.describe_layer(scores, [str(j) for j in range(len(prompts))],
                                      alpha=0.95, keep=len(prompts))


def selected(table, neuron: int) -> list[int]:
    rows = table[(table["neuron"] == neuron) & table["selected"]].sort_values("rank")
    return rows["concept_id"].tolist()


# ----------------------------------------------------------------- agreement


@pytest.mark.parametrize("sim", ["cos", "tvmf"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_scores_and_selection_equal_the_official_ones(seed, sim):
    images, prompts, template, acts = clip_like_inputs(seed)
    n = 10
    kappa = KAPPA if sim == "tvmf" else None
    weights, official = official_www(images, prompts, template, acts, n, kappa)
    scores, table = ours_from_cosines(images, prompts, template, acts, n, sim)
    for k in range(acts.shape[1]):
        # Our scores are the official sums divided by n (means).
        np.testing.assert_allclose(scores[k], weights[k] / n, atol=TOL, rtol=0)
        fallback = table.loc[table["neuron"] == k, "fallback"].all()
        if weights[k].max() > 0:
            assert selected(table, k) == official[k] == www.select_concepts(scores[k])
            assert not fallback
        else:  # documented: the official selects nothing, ours the flagged argmax
            assert official[k] == [] and selected(table, k) == [int(np.argmax(weights[k]))]
            assert fallback


@pytest.mark.parametrize("sim", ["cos", "tvmf"])
def test_one_neurons_concept_scores_equal_the_official_weights(sim):
    images, prompts, template, acts = clip_like_inputs(3)
    top = official_top_images(acts, 8)[0]
    kappa = KAPPA if sim == "tvmf" else None
    (weights,) = official_weights(official_rows(images[top], prompts, template, kappa), 8)
    ours = www.concept_scores(images[top], prompts, template, sim=sim, kappa=KAPPA)
    np.testing.assert_allclose(ours, weights / 8, atol=TOL, rtol=0)


def test_one_image_per_neuron():
    images, prompts, template, acts = clip_like_inputs(4)
    for sim, kappa in (("cos", None), ("tvmf", KAPPA)):
        weights, official = official_www(images, prompts, template, acts, 1, kappa)
        scores, table = ours_from_cosines(images, prompts, template, acts, 1, sim)
        for k in range(acts.shape[1]):
            np.testing.assert_allclose(scores[k], weights[k], atol=TOL, rtol=0)
            if weights[k].max() > 0:
                assert selected(table, k) == official[k]


def test_duplicate_concepts_tie_and_are_selected_together():
    images, prompts, template, acts = clip_like_inputs(5)
    weights, _ = official_www(images, prompts, template, acts, 10)
    best = int(np.argmax(weights[0]))
    doubled = np.concatenate([prompts, prompts[best:best + 1]])  # the best concept, twice
    twin = len(prompts)
    weights, official = official_www(images, doubled, template, acts, 10)
    scores, table = ours_from_cosines(images, doubled, template, acts, 10, "cos")
    assert scores[0, best] == scores[0, twin]
    assert set(selected(table, 0)) == set(official[0]) >= {best, twin}
    # Documented: exact ties in order. Ours: lower concept index first; the official
    # reversed ascending argsort puts the higher one first.
    ours = selected(table, 0)
    assert ours.index(best) < ours.index(twin)
    assert official[0].index(twin) < official[0].index(best)


def test_tied_activations_inside_the_top_images_change_nothing():
    images, prompts, template, acts = clip_like_inputs(6, n_images=12, n_neurons=3)
    order = np.argsort(-acts[:, 0], kind="stable")
    acts[order[1:4], 0] = acts[order[1], 0]  # ranks 1-3 tie, well inside the top 6
    weights, official = official_www(images, prompts, template, acts, 6)
    scores, table = ours_from_cosines(images, prompts, template, acts, 6, "cos")
    np.testing.assert_allclose(scores[0], weights[0] / 6, atol=TOL, rtol=0)
    assert selected(table, 0) == official[0]


def tied_activations(seed: int, n_images: int, n_neurons: int) -> np.ndarray:
    """float32 activations with ties everywhere: dead (all-zero) channels, a few levels, and
    continuous channels whose top values are repeated across the top-n cut."""
    rng = np.random.default_rng(seed)
    acts = rng.normal(size=(n_images, n_neurons)).astype(np.float32)
    acts[:, 0] = 0.0  # a dead channel: every image ties
    acts[:, 1] = rng.integers(0, 3, size=n_images)  # three levels
    for j in range(2, n_neurons):
        order = np.argsort(-acts[:, j], kind="stable")
        cut = int(rng.integers(1, 12))
        acts[order[cut - 1:cut + 6], j] = acts[order[cut - 1], j]  # a tie straddling rank `cut`
    return np.maximum(acts, 0.0)  # after a ReLU: many exact zeros


@pytest.mark.parametrize("n_images", [40, 300, 3000])
@pytest.mark.parametrize("n", [1, 5, 10, 16, 40])
def test_top_images_with_ties_at_the_cut_are_the_officials(n_images, n):
    acts = tied_activations(n_images + n, n_images, 24)
    np.testing.assert_array_equal(www_top_images(acts, n, chunk=5), official_top_images(acts, n))


@pytest.mark.parametrize("sim", ["cos", "tvmf"])
def test_scores_and_selection_with_ties_at_the_cut_are_the_officials(sim):
    """Tied images carry different embeddings, so which of them is taken moves the scores."""
    images, prompts, template, _ = clip_like_inputs(11, n_images=80, n_neurons=10)
    acts = tied_activations(11, 80, 10)
    kappa = KAPPA if sim == "tvmf" else None
    for n in (5, 16):
        weights, official = official_www(images, prompts, template, acts, n, kappa)
        scores, table = ours_from_cosines(images, prompts, template, acts, n, sim)
        np.testing.assert_allclose(scores, np.stack(weights) / n, atol=TOL, rtol=0)
        for neuron in range(10):
            assert set(selected(table, neuron)) == set(official[neuron])


# ----------------------------------------------------------------- the documented differences


def test_a_score_exactly_on_the_threshold_is_selected_by_ours_only():
    # 19 is 0.95 * 20 in float64 and exact in float32 (the dtype of our scores).
    scores = np.array([20.0, 19.0, 18.5, 1.0])
    assert 20.0 * (95 / 100) == 0.95 * 20.0 == 19.0
    assert official_selection(scores) == [0]
    assert www.select_concepts(scores, alpha=0.95) == [0, 1]
    table = www.describe_layer(scores[None].astype(np.float32), ["a", "b", "c", "d"], keep=4)
    assert table.loc[table["selected"], "concept"].tolist() == ["a", "b"]


@pytest.mark.parametrize("scores", [[-0.3, -0.1, -0.2], [0.0, -0.1, 0.0]],
                         ids=["all negative", "max zero"])
def test_non_positive_best_score_official_selects_nothing_ours_the_flagged_argmax(scores):
    scores = np.array(scores)
    assert official_selection(scores) == []
    assert www.select_concepts(scores) == [int(np.argmax(scores))]
    table = www.describe_layer(scores[None].astype(np.float32), ["a", "b", "c"], keep=3)
    assert table.loc[table["selected"], "concept"].tolist() == [["a", "b", "c"][np.argmax(scores)]]
    assert table["fallback"].all()


def test_all_negative_neurons_from_embeddings_differ_only_by_the_fallback():
    """A template closer to every image than any prompt: every score negative."""
    images, prompts, template, acts = clip_like_inputs(7)
    template = unit(images.mean(0))  # the centre of the images
    prompts = unit(prompts - 0.6 * template)
    weights, official = official_www(images, prompts, template, acts, 10)
    scores, table = ours_from_cosines(images, prompts, template, acts, 10, "cos")
    for k in range(acts.shape[1]):
        assert weights[k].max() < 0 and official[k] == []
        np.testing.assert_allclose(scores[k], weights[k] / 10, atol=TOL, rtol=0)
        assert selected(table, k) == [int(np.argmax(weights[k]))]
        assert table.loc[table["neuron"] == k, "fallback"].all()
