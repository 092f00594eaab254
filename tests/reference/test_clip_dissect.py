"""Our CLIP-Dissect soft-WPMI and WPMI against a re-derivation of the official code.

Reference: github.com/Trustworthy-ML-Lab/CLIP-dissect at commit 21e7697 (``similarity.py``
and ``utils.py`` unchanged since c1565e1, "initial code release"; ``describe_neurons.py``
last changed in bcf4b10):

- ``utils.py``, ``get_similarity_from_activations`` (lines 150-163): CLIP image and text
  features in float32, each row L2-normalised, ``clip_feats = image @ text.T`` (cosines),
  passed with the activations ``[N, K]`` to the similarity function.
- ``similarity.py``, ``soft_wpmi`` (lines 49-75): ``Q = softmax(a * clip_feats, dim=1)``
  (line 54); each neuron's top images ``torch.topk(acts, dim=0, k=top_k)`` (line 56);
  ``p_r = p_start - r / top_k * (p_start - p_end)`` (line 59); per neuron
  ``sum_r log(1 + p_r * (Q[x_r] - 1) + 1e-7)`` (lines 62-65); the prior
  ``logsumexp`` over neurons minus ``log K`` (lines 72-73); score = cond - lam * prior
  (line 74). Defaults ``top_k=100, a=10, lam=1, p_start=0.998, p_end=0.97``.
- ``similarity.py``, ``wpmi`` (lines 77-99): ``sum_r log(Q[x_r] + 1e-7)`` over the top_k
  images (line 90), same prior and score. Defaults ``top_k=28, a=2, lam=0.6``.
- ``describe_neurons.py`` line 62: a neuron's description is ``torch.max(scores, dim=1)``.

The functions below are written from that description, not sharing a code path with
``neuron_concepts.clip_dissect``. They run in float32 as the official code does, or in
float64: scores are compared with the float64 evaluation of the official formulas, to 1e-5
of the layer's score scale, or 1e-6 of the scale of the conditional log-likelihoods when
that is larger: a score is ``log p(t_m | B_k) - lam * log p(t_m)`` with each term a sum of
``top_k`` logarithms, several hundred in size, whose float32 rounding (about 2e-7 of that
size) is what the official float32 run, and ours, lie from the float64 evaluation.
Descriptions (argmaxes) are compared with the official float32 run.

Images tied at the top_k-th activation: the official ``torch.topk`` runs on the CPU (line
162 of ``utils.py`` loads the float32 activations with ``map_location='cpu'``), and so does
ours, whatever device scores; tied images with different similarity rows are therefore the
official's (tested below).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neuron_concepts import clip_dissect

TOL = 1e-5


# ----------------------------------------------------------------- the re-derivation


def official_cosines(image_features: np.ndarray, text_features: np.ndarray) -> torch.Tensor:
    """``get_similarity_from_activations`` lines 153-158: float32 cosines ``[N, C]``.

    Every official function below computes in the dtype of these cosines.
    """
    images = torch.tensor(image_features, dtype=torch.float32)
    texts = torch.tensor(text_features, dtype=torch.float32)
    images = images / images.norm(dim=-1, keepdim=True)
    texts = texts / texts.norm(dim=-1, keepdim=True)
    return images @ texts.T


def official_conditional(cosines: torch.Tensor, acts: torch.Tensor, top_k: int, a: float,
                         probs: torch.Tensor | None) -> torch.Tensor:
    """``log p(t_m | B_k)`` ``[K, C]``: soft (``probs`` ``[top_k]``) or plain (``None``)."""
    q = torch.softmax(a * cosines, dim=1)
    top = torch.topk(acts, k=top_k, dim=0).indices  # [top_k, K], on the float32 activations
    rows = []
    for k in range(acts.shape[1]):
        q_top = q[top[:, k]]  # [top_k, C], rank order
        if probs is None:
            rows.append(torch.log(q_top + 1e-7).sum(dim=0))
        else:
            p = probs.to(cosines.dtype)[:, None]
            rows.append(torch.log(1 + p * (q_top - 1) + 1e-7).sum(dim=0))
    return torch.stack(rows)


def official_score(cond: torch.Tensor, lam: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Lines 72-74 / 95-98: minus ``lam`` times the log prior over all neurons.

    Returns (scores, conditional log-likelihoods), the latter for the tolerance.
    """
    prior = torch.logsumexp(cond, dim=0, keepdim=True) - torch.log(
        cond.shape[0] * torch.ones(1, dtype=cond.dtype))
    return cond - lam * prior, cond


def official_soft_wpmi(cosines, acts, top_k=100, a=10, lam=1, p_start=0.998, p_end=0.97):
    # Line 59: an int64 arange divided by an int is float32 in torch (float64 here when the
    # cosines are float64).
    probs = p_start - (torch.arange(0, top_k, dtype=cosines.dtype) / top_k * (p_start - p_end))
    return official_score(official_conditional(cosines, acts, top_k, a, probs), lam)


def official_wpmi(cosines, acts, top_k=28, a=2, lam=0.6):
    return official_score(official_conditional(cosines, acts, top_k, a, None), lam)


def official_description(official: tuple[torch.Tensor, torch.Tensor]) -> np.ndarray:
    """``describe_neurons.py`` line 62, on the scores of an official run."""
    return torch.max(official[0], dim=1).indices.numpy()


# ----------------------------------------------------------------- inputs


def clip_like_inputs(seed: int, n_images=150, n_concepts=40, n_neurons=8, dim=64):
    """Raw CLIP-like features (a shared direction: cosines about 0.1-0.5) and activations
    without ties."""
    rng = np.random.default_rng(seed)
    shared = rng.normal(size=dim)
    shared /= np.linalg.norm(shared)
    images = 0.4 * shared + rng.normal(size=(n_images, dim)) / np.sqrt(dim) * 0.6
    texts = 0.4 * shared + rng.normal(size=(n_concepts, dim)) / np.sqrt(dim) * 0.6
    acts = rng.normal(size=(n_images, n_neurons)).astype(np.float32)
    return images.astype(np.float32), texts.astype(np.float32), acts


def assert_close(ours: np.ndarray, official: tuple[torch.Tensor, torch.Tensor]) -> None:
    """Ours within 1e-5 of the official scores' scale, or 1e-6 of the conditional
    log-likelihoods' scale when larger (float32's rounding of them; module docstring)."""
    scores, cond = (x.numpy() for x in official)
    assert ours.dtype == np.float32 and ours.shape == scores.shape
    atol = max(TOL * np.abs(scores).max(), 1e-6 * np.abs(cond).max())
    np.testing.assert_allclose(ours, scores, rtol=TOL, atol=atol)


def f64(x: torch.Tensor) -> torch.Tensor:
    return x.to(torch.float64)


SOFT = dict(top_k=100, a=10, lam=1, p_start=0.998, p_end=0.97)  # the papers' defaults
WPMI = dict(top_k=28, a=2, lam=0.6)


# ----------------------------------------------------------------- agreement


def acts_t(acts: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(acts)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_soft_wpmi_equals_the_official(seed):
    images, texts, acts = clip_like_inputs(seed)
    cosines = official_cosines(images, texts)
    ours = clip_dissect.soft_wpmi(cosines.numpy(), acts, **SOFT)
    assert_close(ours, official_soft_wpmi(f64(cosines), acts_t(acts), **SOFT))
    np.testing.assert_array_equal(
        clip_dissect.describe(ours, 1)[:, 0],
        official_description(official_soft_wpmi(cosines, acts_t(acts), **SOFT)))
    np.testing.assert_array_equal(
        clip_dissect.layer_scores("softwpmi", cosines.numpy(), acts, **SOFT), ours)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_wpmi_equals_the_official(seed):
    images, texts, acts = clip_like_inputs(seed)
    cosines = official_cosines(images, texts)
    ours = clip_dissect.wpmi(cosines.numpy(), acts, **WPMI)
    assert_close(ours, official_wpmi(f64(cosines), acts_t(acts), **WPMI))
    np.testing.assert_array_equal(
        clip_dissect.describe(ours, 1)[:, 0],
        official_description(official_wpmi(cosines, acts_t(acts), **WPMI)))
    np.testing.assert_array_equal(clip_dissect.layer_scores("wpmi", cosines.numpy(), acts, **WPMI),
                                  ours)


def test_other_parameters_equal_the_official():
    images, texts, acts = clip_like_inputs(3)
    cosines = official_cosines(images, texts)
    soft = dict(top_k=17, a=5.5, lam=0.3, p_start=0.9, p_end=0.6)
    plain = dict(top_k=9, a=7, lam=1.2)
    assert_close(clip_dissect.soft_wpmi(cosines.numpy(), acts, **soft),
                 official_soft_wpmi(f64(cosines), acts_t(acts), **soft))
    assert_close(clip_dissect.wpmi(cosines.numpy(), acts, **plain),
                 official_wpmi(f64(cosines), acts_t(acts), **plain))


def test_float16_stored_cosines_give_the_official_scores_of_their_values():
    images, texts, acts = clip_like_inputs(4)
    cos16 = official_cosines(images, texts).half()
    assert_close(clip_dissect.soft_wpmi(cos16.numpy(), acts, **SOFT),
                 official_soft_wpmi(f64(cos16), acts_t(acts), **SOFT))


# ----------------------------------------------------------------- edge cases


def test_one_neuron_scores_are_the_conditional_times_one_minus_lambda():
    images, texts, acts = clip_like_inputs(5, n_neurons=1)
    cosines = f64(official_cosines(images, texts))
    soft = {**SOFT, "lam": 0.4}
    ours = clip_dissect.soft_wpmi(cosines.float().numpy(), acts, **soft)
    official = official_soft_wpmi(cosines, acts_t(acts), **soft)
    assert_close(ours, official)
    probs = 0.998 - torch.arange(100, dtype=torch.float64) / 100 * (0.998 - 0.97)
    cond = official_conditional(cosines, acts_t(acts), 100, 10, probs)
    np.testing.assert_allclose(official[0].numpy(), (1 - 0.4) * cond.numpy(), rtol=1e-12)
    assert_close(clip_dissect.wpmi(cosines.float().numpy(), acts, **WPMI),
                 official_wpmi(cosines, acts_t(acts), **WPMI))


def test_top_k_equal_to_the_number_of_images():
    images, texts, acts = clip_like_inputs(6, n_images=30)
    cosines = official_cosines(images, texts)
    soft, plain = {**SOFT, "top_k": 30}, {**WPMI, "top_k": 30}
    assert_close(clip_dissect.soft_wpmi(cosines.numpy(), acts, **soft),
                 official_soft_wpmi(f64(cosines), acts_t(acts), **soft))
    assert_close(clip_dissect.wpmi(cosines.numpy(), acts, **plain),
                 official_wpmi(f64(cosines), acts_t(acts), **plain))


def test_tied_activations_of_images_with_equal_cosines_agree_whatever_the_tie_order():
    """Ties in activations; tied images carry equal similarity rows (duplicated images), so
    the official topk's unspecified tie order cannot change the official scores."""
    images, texts, acts = clip_like_inputs(7, n_images=40)
    groups = np.random.default_rng(7).integers(0, 8, size=40)  # 8 images, each repeated
    images, acts = images[groups], acts[groups]  # ties, also at the top_k boundary
    cosines = official_cosines(images, texts)
    for top_k in (5, 12, 40):
        soft, plain = {**SOFT, "top_k": top_k}, {**WPMI, "top_k": top_k}
        assert_close(clip_dissect.soft_wpmi(cosines.numpy(), acts, **soft),
                     official_soft_wpmi(f64(cosines), acts_t(acts), **soft))
        assert_close(clip_dissect.wpmi(cosines.numpy(), acts, **plain),
                     official_wpmi(f64(cosines), acts_t(acts), **plain))


def test_tied_activations_with_different_images_at_the_cut_are_the_officials():
    """Dead channels, a few levels and ties straddling the cut, tied images all different:
    which of them topk keeps moves a neuron's scores and, through the prior, every other
    neuron's."""
    images, texts, acts = clip_like_inputs(9, n_images=120, n_neurons=12)
    rng = np.random.default_rng(9)
    acts[:, 0] = 0.0
    acts[:, 1] = rng.integers(0, 3, size=120)
    for j in range(2, 12):
        order = np.argsort(-acts[:, j], kind="stable")
        acts[order[3:40], j] = acts[order[3], j]
    acts = np.maximum(acts, 0.0).astype(np.float32)
    cosines = official_cosines(images, texts)
    for top_k in (5, 28, 100):
        soft, plain = {**SOFT, "top_k": top_k}, {**WPMI, "top_k": top_k}
        assert_close(clip_dissect.soft_wpmi(cosines.numpy(), acts, device="cpu", **soft),
                     official_soft_wpmi(f64(cosines), acts_t(acts), **soft))
        assert_close(clip_dissect.wpmi(cosines.numpy(), acts, device="cpu", **plain),
                     official_wpmi(f64(cosines), acts_t(acts), **plain))


# ----------------------------------------------------------------- t-vMF (ours)


def tvmf(cos: torch.Tensor, kappa: float) -> torch.Tensor:
    """github.com/tk1980/tvMF ``models/Loss.py`` line 36 (commit 6252b8d)."""
    return (1.0 + cos).div(1.0 + (1.0 - cos).mul(kappa)) - 1.0


def test_tvmf_option_equals_the_official_scores_of_tvmf_similarities():
    """The official code has no t-vMF. Configured for CLIP-Dissect, ours applies it to the
    stored cosines before the softmax: the official computation on t-vMF values."""
    images, texts, acts = clip_like_inputs(8)
    cos16 = official_cosines(images, texts).half()  # a float16 cosine artifact
    assert_close(clip_dissect.soft_wpmi(cos16.numpy(), acts, **SOFT, sim="tvmf", kappa=16),
                 official_soft_wpmi(tvmf(f64(cos16), 16), acts_t(acts), **SOFT))
    cosines = official_cosines(images, texts)
    assert_close(clip_dissect.wpmi(cosines.numpy(), acts, **WPMI, sim="tvmf", kappa=16),
                 official_wpmi(tvmf(f64(cosines), 16), acts_t(acts), **WPMI))
