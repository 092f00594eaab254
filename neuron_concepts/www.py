"""WWW concept scores and selection (Ahn et al. 2024), with cosine or t-vMF similarity.

For neuron k with top images o = 1..n, ``S_j = mean_o [sim(v_o, t_j) - sim(v_o, t_tem)]``;
concepts with ``S_j >= alpha * max_j S_j`` are selected. :func:`concept_scores` scores one
neuron from embeddings; :func:`layer_scores` scores every neuron of a layer at once from the
stored cosine matrix, as the pipeline does, applying t-vMF there in float32.

Where this differs from the official code on purpose (docs/methods.md, tests/reference/): the
threshold admits ``S_j >= delta`` (the official ``concept_matching.py`` uses ``>``), and a
neuron whose best score is not positive gets its argmax, flagged ``fallback`` (the official
code selects nothing). Scores are means over the top images; the official code sums them,
which scales every score of a neuron alike and selects the same concepts.
"""

from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np
import pandas as pd
import torch
from numpy.typing import ArrayLike

from . import io
from .activations import www_top_images
from .errors import ConfigError, InputDataError
from .similarity import as_tensor, cosine, gather_row_chunks, similarity_fn

# Elements of float32 in one chunk of gathered rows ([neurons * n, C]); t-vMF makes a few
# temporaries of that size. 2**22 floats = 16 MiB on the CPU; a GPU takes larger blocks.
CPU_BLOCK_ELEMENTS = 2 ** 22
GPU_BLOCK_ELEMENTS = 2 ** 26
# Blocks alive at once at most (the gathered rows, t-vMF's temporaries): the budget share.
BLOCK_COPIES = 4

# The cosine matrices WWW reads from a similarity artifact (neuron_concepts.describe).
SIMILARITY_PARTS = ("prompt", "base")


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


def layer_scores(similarity: ArrayLike | torch.Tensor,
                 template_similarity: ArrayLike | torch.Tensor, activations: ArrayLike,
                 n_images: int, device: str | torch.device = "cpu", sim: str = "cos",
                 kappa: float = 16.0, neuron_chunk: int | None = None,
                 memory_budget: int | None = None) -> np.ndarray:
    """WWW scores ``[K, C]`` (float32) of every neuron of a layer from stored cosines.

    ``similarity`` ``[N, C]`` holds ``cos(v_i, t_j)`` and ``template_similarity`` ``[N]``
    ``cos(v_i, t_tem)``, in any float dtype. The similarity ``sim`` (``cos``, or ``tvmf``
    with ``kappa``) is applied here, in float32, to the rows of each neuron's top images:
    ``S_j = mean_o [f(cos(v_o, t_j)) - f(cos(v_o, t_tem))]``. Rows are gathered for one chunk
    of neurons at a time and converted only then, so no float32 copy of the whole matrix
    exists (``neuron_chunk``: neurons per step; ``None`` fits a fixed buffer).

    ``memory_budget``: bytes this call may hold on ``device`` (None: no limit, the union of
    every neuron's top-image rows is copied there at once). When that union does not fit,
    it is copied per chunk of neurons from the (memory-mapped) matrix
    (:func:`~neuron_concepts.similarity.gather_row_chunks`); each neuron's score is computed
    from the same rows in the same order either way, so the result is the same.
    """
    f = similarity_fn(sim, kappa)
    top = www_top_images(activations, n_images)  # [K, n], ties as WWW's np.argsort
    n_rows, n_acts = np.shape(similarity)[0], np.shape(activations)[0]
    base = as_tensor(template_similarity).reshape(-1)
    if not n_rows == base.shape[0] == n_acts:
        raise InputDataError(
            f"the similarity matrix has {n_rows} image rows, the template similarities "
            f"{base.shape[0]} and the activations {n_acts}: all three must come from the "
            f"same probe set and view")
    n_neurons, n = top.shape
    n_concepts = np.shape(similarity)[1]
    block, rows_budget = device_plan(memory_budget, torch.device(device).type != "cpu",
                                     n_rows, top.size)
    if neuron_chunk is None:
        neuron_chunk = max(1, block // (n * n_concepts))
    if neuron_chunk < 1:
        raise ValueError(f"neuron_chunk must be >= 1, got {neuron_chunk}")
    out = np.empty((n_neurons, n_concepts), dtype=np.float32)
    fbase = top_t = None
    for neurons, store, positions in gather_row_chunks(similarity, top, device, rows_budget):
        if fbase is None:
            fbase = f(base.to(store.device))  # [N] float32: small, converted whole
            top_t = torch.as_tensor(top, dtype=torch.int64, device=store.device)
        pos = torch.as_tensor(positions, dtype=torch.int64, device=store.device)
        for start in range(0, pos.shape[0], neuron_chunk):
            idx = pos[start:start + neuron_chunk].reshape(-1)
            k = idx.numel() // n
            first = neurons.start + start
            # index_select makes a new block: the stored matrix is never converted or changed.
            rows = f(store.index_select(0, idx).to(torch.float32)).view(k, n, n_concepts)
            scores = rows.mean(dim=1).sub_(fbase[top_t[first:first + k]].mean(dim=1)[:, None])
            out[first:first + k] = scores.cpu().numpy()
    return out


def device_plan(memory_budget: int | None, on_gpu: bool, n_rows: int,
                n_top: int) -> tuple[int, int | None]:
    """How :func:`layer_scores` splits ``memory_budget`` bytes of the device: float32
    elements per working block, and bytes for the gathered cosine rows (None: no limit).

    A block and t-vMF's temporaries (at most 4 blocks) take at most a quarter of the budget;
    the template similarities (``n_rows``) and the top-image indices (``n_top``, int64,
    twice) are set aside; the rest holds rows.
    """
    block = GPU_BLOCK_ELEMENTS if on_gpu else CPU_BLOCK_ELEMENTS
    if memory_budget is None:
        return block, None
    block = max(1, min(block, memory_budget // (16 * BLOCK_COPIES)))
    rows_budget = memory_budget - 4 * BLOCK_COPIES * block - 8 * n_rows - 16 * n_top
    if rows_budget <= 0:
        raise ConfigError(f"a GPU memory budget of {memory_budget / 2**20:.0f} MiB leaves no "
                          "room for the cosine rows: raise scale.gpu_mem_mb")
    return block, rows_budget


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
    return io.description_table(rows)


def describe_methods(similarity, activations: np.ndarray, methods: list[dict],
                     concepts: Sequence[str], *, n_images: int, alpha: float,
                     device: str | torch.device = "cpu", memory_budget: int | None = None
                     ) -> Iterator[tuple[dict, pd.DataFrame, str]]:
    """WWW's part of :func:`neuron_concepts.describe.describe_layers`: each method of one
    layer (``{"method", "sim": [kind, kappa], "path"}``) with its description table and a
    log line. ``similarity`` holds the prompt and base cosines (:data:`SIMILARITY_PARTS`)."""
    for method in methods:
        kind, kappa = method["sim"]
        scores = layer_scores(similarity.prompt, similarity.base, activations, n_images,
                              device, sim=kind, kappa=kappa, memory_budget=memory_budget)
        table = describe_layer(scores, concepts, alpha)
        summary = (f"{scores.shape[0]} neurons, "
                   f"{table['selected'].sum() / scores.shape[0]:.2f} concepts selected on "
                   f"average, {table.groupby('neuron')['fallback'].first().sum()} fell back "
                   "to the argmax")
        yield method, table, summary
        del scores, table  # before the next method's scores exist
