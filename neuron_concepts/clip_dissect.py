"""CLIP-Dissect (Oikarinen & Weng, ICLR 2023): WPMI and soft-WPMI concept scores.

Inputs are the image-concept cosine matrix (``[N, C]``, as the similarity stage stores it)
and the activations of one layer (``[N, K]``). ``P`` is the configured similarity of the
cosines (the cosine itself, or t-vMF applied here in float32 to the rows in use). With
``Q = softmax(a * P)`` over concepts per image and ``x_r`` the ``r``-th top image of neuron
``k``:

- soft-WPMI: ``log p(t_m | B_k) = sum_r log((1 - p_r) + p_r * Q[x_r, m] + 1e-7)``,
  ``p_r = p_start - (r / top_k) * (p_start - p_end)``;
- WPMI: ``log p(t_m | B_k) = sum_{r < top_k} log(Q[x_r, m] + 1e-7)``, which is the soft
  formula with every ``p_r = 1``;
- both: ``score[k, m] = log p(t_m | B_k) - lam * log p(t_m)`` with the prior
  ``log p(t_m) = logsumexp_k log p(t_m | B_k) - log K`` over all neurons passed in.

Memory: only the top images' rows of ``Q`` are ever needed, and each is
``exp(a * P[x] - logsumexp(a * P[x]))``. So the only thing kept per image is that
row's log-normaliser (one float), and ``Q`` rows are rebuilt from ``P`` for one chunk of
neurons at a time. Beyond the inputs, memory is the ``[K, C]`` float32 result plus one
chunk buffer, never a dense ``[N, C]`` float32 matrix.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np
import pandas as pd
import torch
from numpy.typing import ArrayLike

from . import io
from .activations import clip_dissect_top_images
from .errors import ConfigError, InputDataError
from .similarity import gather_row_chunks, similarity_fn

# Elements of float32 in one chunk buffer ([neurons * top_k, C] or [images, C]).
# 2**22 floats = 16 MiB on the CPU keeps the buffer in a small fraction of the result;
# on a GPU larger blocks keep the device busy.
CPU_BLOCK_ELEMENTS = 2 ** 22
GPU_BLOCK_ELEMENTS = 2 ** 27
# Blocks alive at once at most (Q rows, the per-k product, t-vMF's temporaries).
BLOCK_COPIES = 4
# Columns of [K, C] per logsumexp step of the prior (log_prior).
PRIOR_COLUMNS = 4096

# The cosine matrices CLIP-Dissect reads from a similarity artifact (neuron_concepts.describe).
SIMILARITY_PARTS = ("raw",)

# Added inside every logarithm (the reference implementation's constant).
LOG_EPS = 1e-7


def rank_probabilities(top_k: int, p_start: float = 0.998, p_end: float = 0.97) -> np.ndarray:
    """soft-WPMI's probability that the ``r``-th top image belongs to the neuron's set, ``[top_k]``.

    ``p_r = p_start - (r / top_k) * (p_start - p_end)`` for ``r = 0 .. top_k - 1``: a linear
    decay, so lower-ranked images count a little less.
    """
    if top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    for name, value in (("p_start", p_start), ("p_end", p_end)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"soft-WPMI {name} must lie in [0, 1], got {value}")
    ranks = np.arange(top_k, dtype=np.float64)
    return p_start - (ranks / top_k) * (p_start - p_end)


def soft_wpmi(clip_sim: ArrayLike | torch.Tensor, activations: ArrayLike | torch.Tensor,
              top_k: int = 100, a: float = 10.0, lam: float = 1.0, p_start: float = 0.998,
              p_end: float = 0.97, device: str | torch.device | None = None,
              neuron_chunk: int | None = None, sim_rows: ArrayLike | None = None,
              sim: str = "cos", kappa: float = 16.0) -> np.ndarray:
    """soft-WPMI scores of every concept for every neuron: float32 ``[K, C]``.

    ``clip_sim`` is ``[N, C]`` cosines (numpy or torch, float16/32), ``activations``
    ``[N, K]``. ``sim`` (``cos``, or ``tvmf`` with ``kappa``) is applied to the cosines, in
    float32, before the softmax.
    ``device`` picks where the arithmetic runs (``None``: the device of a torch
    ``clip_sim``, else the CPU). ``neuron_chunk`` neurons are scored per step (``None``:
    as many as fit a fixed buffer). ``sim_rows`` gives the image index of each row of
    ``clip_sim`` when it holds only some images (it must hold every top image).
    """
    probs = rank_probabilities(top_k, p_start, p_end)
    return _pmi_scores(clip_sim, activations, probs, a, lam, device, neuron_chunk, sim_rows,
                       similarity_fn(sim, kappa))


def wpmi(clip_sim: ArrayLike | torch.Tensor, activations: ArrayLike | torch.Tensor,
         top_k: int = 28, a: float = 2.0, lam: float = 0.6,
         device: str | torch.device | None = None, neuron_chunk: int | None = None,
         sim_rows: ArrayLike | None = None, sim: str = "cos", kappa: float = 16.0) -> np.ndarray:
    """WPMI scores of every concept for every neuron: float32 ``[K, C]``.

    Arguments as in :func:`soft_wpmi`; each of the ``top_k`` top images counts fully.
    """
    probs = np.ones(top_k, dtype=np.float64)
    return _pmi_scores(clip_sim, activations, probs, a, lam, device, neuron_chunk, sim_rows,
                       similarity_fn(sim, kappa))


VARIANTS = ("softwpmi", "wpmi")


def layer_scores(variant: str, clip_sim: ArrayLike | torch.Tensor,
                 activations: ArrayLike | torch.Tensor, top_k: int, a: float, lam: float,
                 p_start: float | None = None, p_end: float | None = None,
                 device: str | torch.device | None = None, sim: str = "cos",
                 kappa: float = 16.0) -> np.ndarray:
    """Scores ``[K, C]`` of a whole layer by the variant named as in the config and paths.

    ``softwpmi`` uses ``p_start`` and ``p_end``; ``wpmi`` has no such parameters and
    ignores them. ``sim`` and ``kappa``: the similarity applied to the cosines.
    """
    if variant == "softwpmi":
        return soft_wpmi(clip_sim, activations, top_k=top_k, a=a, lam=lam, p_start=p_start,
                         p_end=p_end, device=device, sim=sim, kappa=kappa)
    if variant == "wpmi":
        return wpmi(clip_sim, activations, top_k=top_k, a=a, lam=lam, device=device, sim=sim,
                    kappa=kappa)
    raise ValueError(f"unknown CLIP-Dissect variant {variant!r}: use one of {VARIANTS}")


def layer_scores_over_k(variant: str, clip_sim: ArrayLike | torch.Tensor,
                        activations: ArrayLike | torch.Tensor, ks: Sequence[int], a: float,
                        lam: float, p_start: float | None = None, p_end: float | None = None,
                        device: str | torch.device | None = None, sim: str = "cos",
                        kappa: float = 16.0,
                        memory_budget: int | None = None) -> dict[int, np.ndarray]:
    """:func:`layer_scores` at every ``top_k`` in ``ks`` from one pass: ``{k: [K, C]}``.

    The stability study describes a layer at several k. The expensive part, rebuilding
    ``Q`` from the cosine rows, is shared: each chunk of neurons gathers and softmaxes the
    rows of its top images once, and every k sums its own ``log((1 - p_r) + p_r Q)`` over
    its own ranks (soft-WPMI's ``p_r`` depends on k, so it is a sum per k, not a prefix
    sum). Each k takes the images ``torch.topk`` at that k takes, as a separate official
    run would: usually the first k of the largest k's, but where activations tie at a cut
    (dead channels) topk may choose other tied images, and then every k keeps its own
    ranks (:func:`top_images_over_k`). Equal to :func:`layer_scores` at each k.

    ``memory_budget``: bytes this call may hold on ``device`` (None: no limit). Within it
    the top images' cosine rows are copied per chunk of neurons when their union does not
    fit (:func:`device_plan`); every row's normaliser and every neuron's log-likelihood
    come from the same rows in the same order either way, so the scores are the same.
    """
    ks = sorted(set(int(k) for k in ks))
    if not ks:
        raise ValueError("no top_k given")
    if variant == "softwpmi":
        probs = [rank_probabilities(k, p_start, p_end) for k in ks]
    elif variant == "wpmi":
        probs = [np.ones(k, dtype=np.float64) for k in ks]
    else:
        raise ValueError(f"unknown CLIP-Dissect variant {variant!r}: use one of {VARIANTS}")
    scores = _pmi_scores_over_k(clip_sim, activations, probs, a, lam, device, None, None,
                                similarity_fn(sim, kappa), memory_budget)
    return dict(zip(ks, scores))


def group_by_top_k(scorings: Sequence[dict]) -> list[list[dict]]:
    """Scoring argument dicts (:func:`layer_scores`' keywords) grouped by all but top_k,
    each group in first-seen order: one :func:`layer_scores_over_k` call per group."""
    groups: dict[tuple, list[dict]] = {}
    for scoring in scorings:
        key = tuple(sorted((k, repr(v)) for k, v in scoring.items() if k != "top_k"))
        groups.setdefault(key, []).append(scoring)
    return list(groups.values())


def _pmi_scores(clip_sim, activations, rank_probs: np.ndarray, a: float, lam: float,
                device, neuron_chunk: int | None, sim_rows, sim_fn) -> np.ndarray:
    """Shared body of WPMI and soft-WPMI: conditional log-likelihood minus ``lam`` x prior."""
    return _pmi_scores_over_k(clip_sim, activations, [rank_probs], a, lam, device,
                              neuron_chunk, sim_rows, sim_fn)[0]


def _pmi_scores_over_k(clip_sim, activations, rank_probs: Sequence[np.ndarray], a: float,
                       lam: float, device, neuron_chunk: int | None, sim_rows,
                       sim_fn, memory_budget: int | None = None) -> list[np.ndarray]:
    """:func:`_pmi_scores` for several rank-probability vectors (one per k), one pass."""
    if not (math.isfinite(a) and math.isfinite(lam)):
        raise ValueError(f"CLIP-Dissect a and lambda must be finite, got a={a}, lam={lam}")
    sim = _sim_tensor(clip_sim)
    device = _pick_device(device, clip_sim)
    n_images = _check_shapes(sim, activations, sim_rows)
    top, starts = top_images_over_k(activations, [len(probs) for probs in rank_probs])
    top_k = top.shape[1]
    rows = _rows_of_images(top, n_images, sim.shape[0], sim_rows)
    plan = device_plan(memory_budget, device, top.shape[0], sim.shape[1], len(rank_probs),
                       top.size)
    outs = [torch.empty((top.shape[0], sim.shape[1]), dtype=torch.float32,
                        device=plan.out_device) for _ in rank_probs]
    for neurons, store, positions in gather_row_chunks(sim, rows, device, plan.rows_bytes):
        log_norm = _row_log_normalisers(store, np.unique(positions), a, sim_fn, plan.block)
        concept_log_likelihoods(store, positions, log_norm, rank_probs, a,
                                max(1, plan.block // (top_k * sim.shape[1]))
                                if neuron_chunk is None else neuron_chunk,
                                sim_fn, out=[out[neurons] for out in outs], rank_starts=starts)
        del store, log_norm
    for cond in outs:
        cond.sub_(lam * log_prior(cond))
    return [cond.cpu().numpy() for cond in outs]


def top_images_over_k(activations, ks: Sequence[int]) -> tuple[np.ndarray, list[int]]:
    """Each neuron's top images for every ``k`` of ``ks`` as ``torch.topk`` at that k takes
    them, in one matrix: ``(top [K, W], starts)``, k's ranks being
    ``top[:, starts[i]:starts[i] + ks[i]]``.

    When every k's images are the first k of the largest k's (no tie at any cut), ``top``
    is the largest k's ranking and every start is 0; otherwise the rankings are placed side
    by side (``W = sum(ks)``).
    """
    tops = [clip_dissect_top_images(activations, k) for k in ks]
    widest = tops[int(np.argmax(ks))]
    if all(np.array_equal(t, widest[:, :t.shape[1]]) for t in tops):
        return widest, [0] * len(ks)
    return np.concatenate(tops, axis=1), [int(x) for x in np.cumsum([0, *ks[:-1]])]


@dataclass(frozen=True)
class DevicePlan:
    """How a scoring call uses its device memory (:func:`device_plan`)."""

    block: int                  # float32 elements of one working block ([neurons * k, C])
    rows_bytes: int | None      # bytes for the gathered cosine rows (None: no limit)
    out_device: torch.device    # where the [K, C] log-likelihoods and the prior live


def device_plan(memory_budget: int | None, device: torch.device, n_neurons: int,
                n_concepts: int, n_ks: int, n_top: int) -> DevicePlan:
    """Split ``memory_budget`` bytes of ``device`` for :func:`layer_scores_over_k`.

    The ``n_ks`` float32 ``[K, C]`` log-likelihoods (and the prior's column chunks) stay on
    the device when they take at most half the budget, else on the host (the prior is then
    computed there); a working block and its temporaries (at most 4 blocks) take at most a
    quarter; the top-image indices and row normalisers (``n_top``) are set aside; the rest
    holds cosine rows. ``memory_budget`` None: today's fixed blocks, everything on the device.
    """
    block = GPU_BLOCK_ELEMENTS if device.type != "cpu" else CPU_BLOCK_ELEMENTS
    if memory_budget is None:
        return DevicePlan(block, None, device)
    outs = 4 * n_ks * n_neurons * n_concepts + 4 * n_neurons * PRIOR_COLUMNS * 3
    on_device = outs <= memory_budget // 2
    block = max(1, min(block, memory_budget // (16 * BLOCK_COPIES)))
    rows_bytes = (memory_budget - (outs if on_device else 0) - 4 * BLOCK_COPIES * block
                  - 28 * n_top)
    if rows_bytes <= 0:
        raise ConfigError(f"a GPU memory budget of {memory_budget / 2**20:.0f} MiB leaves no "
                          "room for the cosine rows: raise scale.gpu_mem_mb")
    return DevicePlan(block, rows_bytes, device if on_device else torch.device("cpu"))


def concept_log_likelihood(store: torch.Tensor, positions: np.ndarray, log_norm: torch.Tensor,
                           rank_probs: np.ndarray, a: float,
                           neuron_chunk: int | None = None, sim_fn=None) -> torch.Tensor:
    """``log p(t_m | B_k)`` for every neuron and concept: float32 ``[K, C]`` on ``store``'s device.

    ``store`` holds cosine rows, ``positions[k, r]`` is the row of neuron ``k``'s
    ``r``-th top image and ``log_norm[row]`` that row's ``logsumexp(a * P)``. ``Q`` is
    rebuilt per chunk of neurons as ``exp(a * P - log_norm)``, so no ``Q`` matrix is kept.
    ``P = sim_fn(cos)`` in float32 (``None``: the cosine).
    """
    return concept_log_likelihoods(store, positions, log_norm, [rank_probs], a, neuron_chunk,
                                   sim_fn)[0]


def concept_log_likelihoods(store: torch.Tensor, positions: np.ndarray, log_norm: torch.Tensor,
                            rank_probs: Sequence[np.ndarray], a: float,
                            neuron_chunk: int | None = None, sim_fn=None,
                            out: Sequence[torch.Tensor] | None = None,
                            rank_starts: Sequence[int] | None = None) -> list[torch.Tensor]:
    """:func:`concept_log_likelihood` for each rank-probability vector of ``rank_probs``
    (length k: the k ranks of ``positions`` from ``rank_starts[i]``, None: the first k),
    from one gather of ``Q`` per chunk.

    ``out``: one ``[K, C]`` float32 tensor per vector to write into, on any device (None:
    new ones on ``store``'s device)."""
    device = store.device
    n_neurons, top_k = positions.shape
    n_concepts = store.shape[1]
    starts = list(rank_starts) if rank_starts is not None else [0] * len(rank_probs)
    if any(not 1 <= len(probs) <= top_k - start for probs, start in zip(rank_probs, starts)):
        raise ValueError(f"rank probabilities of lengths {[len(p) for p in rank_probs]} for "
                         f"{top_k} top images")
    if neuron_chunk is None:
        budget = GPU_BLOCK_ELEMENTS if device.type != "cpu" else CPU_BLOCK_ELEMENTS
        neuron_chunk = max(1, budget // (top_k * n_concepts))
    if neuron_chunk < 1:
        raise ValueError(f"neuron_chunk must be >= 1, got {neuron_chunk}")
    terms = [(torch.as_tensor(probs, dtype=torch.float32, device=device),
              # (1 - p_r) + 1e-7 summed in float64 first, as one offset per rank.
              torch.as_tensor((1.0 - probs) + LOG_EPS, dtype=torch.float32, device=device))
             for probs in rank_probs]
    pos = torch.as_tensor(positions, dtype=torch.int64, device=device)
    outs = list(out) if out is not None else [
        torch.empty((n_neurons, n_concepts), dtype=torch.float32, device=device)
        for _ in rank_probs]
    for start in range(0, n_neurons, neuron_chunk):
        idx = pos[start:start + neuron_chunk].reshape(-1)
        n = idx.numel() // top_k
        block = _similarity_rows(store, idx, sim_fn)              # [n * top_k, C]
        block.mul_(a).sub_(log_norm.index_select(0, idx)[:, None]).exp_()  # Q rows
        block = block.view(n, top_k, n_concepts)
        for i, ((probs, offsets), out_k, first) in enumerate(zip(terms, outs, starts)):
            ranks = block[:, first:first + probs.numel()]
            # The last k may work in place: no other k reads Q after it.
            ranks = ranks.mul_(probs[None, :, None]) if i == len(terms) - 1 else \
                ranks.mul(probs[None, :, None])
            out_k[start:start + n] = ranks.add_(offsets[None, :, None]).log_().sum(dim=1)
    return outs


def log_prior(cond: torch.Tensor, column_chunk: int = PRIOR_COLUMNS) -> torch.Tensor:
    """``log p(t_m) = logsumexp_k log p(t_m | B_k) - log K``: ``[C]``, in column chunks."""
    prior = torch.empty(cond.shape[1], dtype=cond.dtype, device=cond.device)
    for start in range(0, cond.shape[1], column_chunk):
        prior[start:start + column_chunk] = torch.logsumexp(
            cond[:, start:start + column_chunk], dim=0)
    return prior.sub_(math.log(cond.shape[0]))


def _sim_tensor(clip_sim: ArrayLike | torch.Tensor) -> torch.Tensor:
    """The similarity matrix as a torch tensor without copying it (float16 stays float16)."""
    if isinstance(clip_sim, torch.Tensor):
        sim = clip_sim.detach()
    else:
        array = np.asarray(clip_sim)
        if array.dtype not in (np.float16, np.float32):
            array = array.astype(np.float32)
        sim = torch.from_numpy(np.ascontiguousarray(array))
    if sim.dtype not in (torch.float16, torch.float32, torch.bfloat16):
        sim = sim.to(torch.float32)
    if sim.ndim != 2:
        raise InputDataError(f"the similarity matrix must be [images, concepts], got shape "
                             f"{tuple(sim.shape)}: pass one layer's probe x concept matrix")
    return sim


def _pick_device(device: str | torch.device | None, clip_sim) -> torch.device:
    """``device`` as given, else where a torch ``clip_sim`` lives, else the CPU."""
    if device is not None:
        return torch.device(device)
    if isinstance(clip_sim, torch.Tensor):
        return clip_sim.device
    return torch.device("cpu")


def _check_shapes(sim: torch.Tensor, activations, sim_rows) -> int:
    """Number of probe images, after checking that the two matrices describe the same images."""
    shape = tuple(np.shape(activations))
    if len(shape) != 2:
        raise InputDataError(f"activations must be [images, neurons], got shape {shape}")
    if sim_rows is None and sim.shape[0] != shape[0]:
        raise InputDataError(
            f"the similarity matrix has {sim.shape[0]} image rows but the activations have "
            f"{shape[0]}: both must come from the same probe set (or pass sim_rows)")
    return shape[0]


def _rows_of_images(top: np.ndarray, n_images: int, n_rows: int, sim_rows) -> np.ndarray:
    """Row of the similarity matrix holding each top image: same shape as ``top``."""
    if sim_rows is None:
        return top
    sim_rows = np.asarray(sim_rows, dtype=np.int64)
    if sim_rows.shape != (n_rows,):
        raise InputDataError(f"sim_rows must give one image index per similarity row "
                             f"({n_rows}), got shape {sim_rows.shape}")
    if sim_rows.size and (sim_rows.min() < 0 or sim_rows.max() >= n_images):
        raise InputDataError(f"sim_rows holds image indices outside 0..{n_images - 1}")
    row_of_image = np.full(n_images, -1, dtype=np.int64)
    row_of_image[sim_rows] = np.arange(n_rows)
    rows = row_of_image[top]
    if (rows < 0).any():
        missing = np.unique(top[rows < 0])
        raise InputDataError(
            f"the similarity matrix lacks the rows of {missing.size} top images (first: "
            f"{missing[:5].tolist()}): rebuild it for at least the top {top.shape[1]} images "
            f"of every neuron")
    return rows


def _similarity_rows(store: torch.Tensor, index: torch.Tensor, sim_fn) -> torch.Tensor:
    """``P`` of the indexed rows in float32: a new block, the stored cosines untouched."""
    block = store.index_select(0, index).to(torch.float32)
    return block if sim_fn is None else sim_fn(block)


def _row_log_normalisers(store: torch.Tensor, needed: np.ndarray, a: float,
                         sim_fn=None, budget: int | None = None) -> torch.Tensor:
    """``logsumexp_m(a * P[row, m])`` for the ``needed`` rows (others stay 0): float32 ``[rows]``,
    ``budget`` float32 elements of rows at a time (None: the device's fixed block)."""
    log_norm = torch.zeros(store.shape[0], dtype=torch.float32, device=store.device)
    if budget is None:
        budget = GPU_BLOCK_ELEMENTS if store.device.type != "cpu" else CPU_BLOCK_ELEMENTS
    step = max(1, budget // max(1, store.shape[1]))
    needed_t = torch.as_tensor(needed, dtype=torch.int64, device=store.device)
    for start in range(0, needed.size, step):
        index = needed_t[start:start + step]
        block = _similarity_rows(store, index, sim_fn).mul_(a)
        log_norm[index] = torch.logsumexp(block, dim=1)
    return log_norm


def describe(scores: ArrayLike | torch.Tensor, n_best: int = 5,
             neuron_chunk: int = 256) -> np.ndarray:
    """Indices of each neuron's ``n_best`` highest-scoring concepts: int64 ``[K, n_best]``.

    Descending score; ties go to the lower concept index (a stable sort), so the
    description does not depend on the sorting backend.
    """
    values = np.asarray(scores.detach().cpu() if isinstance(scores, torch.Tensor) else scores)
    if values.ndim != 2:
        raise ValueError(f"scores must be [neurons, concepts], got shape {values.shape}")
    if not 1 <= n_best <= values.shape[1]:
        raise ValueError(f"cannot take the best {n_best} of {values.shape[1]} concepts")
    best = np.empty((values.shape[0], n_best), dtype=np.int64)
    for start in range(0, values.shape[0], neuron_chunk):
        block = -values[start:start + neuron_chunk].astype(np.float64)
        best[start:start + neuron_chunk] = np.argsort(block, axis=1, kind="stable")[:, :n_best]
    return best


def description_table(scores: ArrayLike | torch.Tensor, concepts: Sequence[str],
                      n_best: int = 5) -> pd.DataFrame:
    """Each neuron's ``n_best`` concepts as a descriptions table.

    The columns and dtypes are every method's descriptions artifact
    (:func:`neuron_concepts.io.description_table`): ``neuron, rank, concept_id, concept,
    score, selected, fallback``. ``concept_id`` is the concept's index in ``concepts`` (the
    concept set's id), ``rank`` 0 is the best, and CLIP-Dissect's description, the argmax,
    is the one row with ``selected``. ``fallback`` is always False: the argmax is the
    method's own answer, not a substitute for an empty selection as in WWW.
    """
    values = np.asarray(scores.detach().cpu() if isinstance(scores, torch.Tensor) else scores)
    texts = np.asarray(list(concepts), dtype=object)
    if values.ndim != 2 or texts.shape[0] != values.shape[1]:
        raise InputDataError(f"scores of shape {values.shape} do not match the "
                             f"{texts.shape[0]} concepts: use the concept set the "
                             f"similarity matrix was built from")
    best = describe(values, n_best)
    n_neurons = values.shape[0]
    ranks = np.tile(np.arange(n_best), n_neurons)
    rows = zip(np.repeat(np.arange(n_neurons), n_best).tolist(), ranks.tolist(),
               best.ravel().tolist(), texts[best.ravel()].tolist(),
               np.take_along_axis(values, best, axis=1).ravel().tolist(),
               (ranks == 0).tolist(), [False] * ranks.size)
    return io.description_table(rows)  # the one home of the artifact's columns


def check_top_k(top_k: int, n_images: int, key: str) -> None:
    """Stop with a message naming the config ``key`` when ``top_k`` exceeds the probe images.

    A neuron cannot have more activating images than the probe set holds; the check runs
    where the probe set's size is first known (the description job).
    """
    if not 1 <= top_k <= n_images:
        raise ConfigError(f"{key}: top_k = {top_k} activating images, but the probe set has "
                          f"only {n_images} images; set {key} to at most {n_images} "
                          f"(the papers' values assume ImageNet-sized probe sets)")


def describe_methods(similarity, activations: np.ndarray, methods: list[dict],
                     concepts: Sequence[str], *, n_best: int,
                     device: str | torch.device = "cpu", memory_budget: int | None = None
                     ) -> Iterator[tuple[dict, pd.DataFrame, str]]:
    """CLIP-Dissect's part of :func:`neuron_concepts.describe.describe_layers`: each method
    of one layer (``{"method", "scoring": layer_scores' keywords, "path"}``) with its
    description table and a log line. Methods that differ only in top_k (the stability
    study's ks) share one pass (:func:`layer_scores_over_k`). ``similarity`` holds the raw
    cosines (:data:`SIMILARITY_PARTS`)."""
    for group in group_by_top_k([method["scoring"] for method in methods]):
        for scoring in group:
            check_top_k(scoring["top_k"], activations.shape[0],
                        f"methods.clip_dissect.{scoring['variant']}.top_k (or stability.ks)")
        shared = {key: value for key, value in group[0].items() if key != "top_k"}
        by_k = layer_scores_over_k(clip_sim=similarity.raw, activations=activations,
                                   ks=[scoring["top_k"] for scoring in group], **shared,
                                   device=device, memory_budget=memory_budget)
        for method in (m for m in methods if m["scoring"] in group):
            scores = by_k[method["scoring"]["top_k"]]
            table = description_table(scores, concepts, min(n_best, scores.shape[1]))
            summary = (f"{scores.shape[0]} neurons x {scores.shape[1]} concepts, "
                       f"{table.loc[table['selected'], 'concept_id'].nunique()} distinct "
                       "descriptions")
            yield method, table, summary
            del scores, table
        del by_k  # before the next group's scores exist
