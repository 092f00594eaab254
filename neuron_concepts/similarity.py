"""Similarity functions between embeddings: cosine and t-vMF.

The similarity artifacts hold cosines only. Every non-linear similarity (t-vMF) is applied
in float32 where scores are computed (:mod:`neuron_concepts.www`,
:mod:`neuron_concepts.clip_dissect`): t-vMF values sit near -0.9, where a stored float16
step is large enough to change which concepts WWW selects.
"""

from __future__ import annotations

from typing import Callable, Iterator

import numpy as np
from numpy.typing import ArrayLike

from . import io, lazy

# Similarity names in paths (cos, tvmf-k16) are built and parsed with every other name.

# Imported on first use: the ConVis map jobs import this module for numpy helpers only.
torch = lazy.module("torch")

# dtype of the stored cosine matrices. On CLIP-like data (tests/test_www.py, 5 seeds x 400
# neurons, t-vMF kappa 16, n 40) the WWW selection of a neuron differed from a float64
# recomputation from the same float16 embeddings for: 0.25-7.25% of neurons with float16
# t-vMF values (the old artifacts), 0-1% with float16 cosines (steps of 1.2e-4 to 2.4e-4 at
# CLIP's 0.15-0.35), none with float32 cosines. float32 costs twice the disk and memory.
# The cosines are always computed in float32; scale.cosine_dtype float16 stores them as
# float16 in a file named so (cos-f16.npz, io.save_similarity casts each block as written).
SIMILARITY_DTYPE = np.float32


def as_tensor(x: ArrayLike | torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    """Return ``x`` as a torch tensor of ``dtype`` (default float32; no copy when it already
    is one)."""
    dtype = torch.float32 if dtype is None else dtype
    if isinstance(x, torch.Tensor):
        return x.to(dtype)
    return torch.as_tensor(np.asarray(x), dtype=dtype)


def normalize(x: ArrayLike | torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """L2-normalise the rows of ``x`` (a zero row stays zero)."""
    x = as_tensor(x)
    return x / x.norm(dim=-1, keepdim=True).clamp_min(eps)


def cosine(a: ArrayLike | torch.Tensor, b: ArrayLike | torch.Tensor) -> torch.Tensor:
    """Cosine similarity of every row of ``a`` with every row of ``b``: ``[len(a), len(b)]``.

    Inputs need not be normalised; numpy arrays and torch tensors are both accepted.
    """
    a = normalize(torch.atleast_2d(as_tensor(a)))
    b = normalize(torch.atleast_2d(as_tensor(b)))
    return a @ b.T


def tvmf(cos: ArrayLike | torch.Tensor, kappa: float = 16.0) -> torch.Tensor:
    """t-vMF similarity (Kobayashi, CVPR 2021) of cosine values, elementwise.

    ``(1 + cos) / (1 + kappa * (1 - cos)) - 1``. ``kappa = 0`` gives the cosine back;
    larger ``kappa`` narrows the similarity around ``cos = 1``. f(1) = 1, f(-1) = -1.
    """
    if kappa < 0:
        raise ValueError(f"t-vMF kappa must be >= 0, got {kappa}")
    # float16 goes up to float32 (its steps near -0.9 are too coarse); float64 stays float64.
    wide = (cos.dtype if isinstance(cos, torch.Tensor) else np.asarray(cos).dtype) in (
        torch.float64, np.float64)
    cos = as_tensor(cos, torch.float64 if wide else torch.float32)
    return (1 + cos) / (1 + kappa * (1 - cos)) - 1


def similarity_fn(sim: str, kappa: float = 16.0) -> Callable[[torch.Tensor], torch.Tensor]:
    """The elementwise function applied to cosines for a similarity kind ``cos`` or ``tvmf``.

    Apply it to float32 (or wider) cosines: its values are what scores average.
    """
    if sim == "cos":
        return lambda c: c
    if sim == "tvmf":
        if kappa < 0:
            raise ValueError(f"t-vMF kappa must be >= 0, got {kappa}: set tvmf.kappa to 0 or more")
        return lambda c: tvmf(c, kappa)
    raise ValueError(f"unknown similarity {sim!r}: use 'cos' or 'tvmf'")


# Host bytes of one block of float32 cosine rows ``[rows, C]``: the similarity job computes,
# writes and drops one block at a time, so its memory beyond the embeddings is about this
# (neuron_concepts.resources.similarity_host_bytes), whatever N and C are.
BLOCK_BYTES = 64 * 2 ** 20
# GPU memory no block may use: the CUDA context, cuBLAS workspaces, the allocator's slack.
GPU_RESERVED_BYTES = 2 ** 30


def block_rows(n_concepts: int, dim: int, block_bytes: int = BLOCK_BYTES,
               gpu_mem_mb: int | None = None) -> int:
    """Image rows per block of cosines with ``n_concepts`` texts of ``dim`` dimensions.

    The most rows whose float32 block ``[rows, C]`` fits ``block_bytes`` (at least one);
    with ``gpu_mem_mb`` (a GPU job's budget), also the most whose block and float32 image
    rows fit on the GPU beside the ``[C, D]`` float32 text embeddings, which stay there,
    and :data:`GPU_RESERVED_BYTES`.
    """
    rows = block_bytes // (4 * n_concepts)
    if gpu_mem_mb is not None:
        free = gpu_mem_mb * 2 ** 20 - GPU_RESERVED_BYTES - 4 * n_concepts * dim
        if free < 4 * (n_concepts + dim):
            raise ValueError(f"the float32 embeddings of {n_concepts} texts ({dim} dimensions) and "
                             f"one row of cosines do not fit a GPU budget of {gpu_mem_mb} MB "
                             "(scale.gpu_mem_mb): raise it or run the similarity on the CPU")
        rows = min(rows, free // (4 * (n_concepts + dim)))
    return max(1, int(rows))


def cosine_blocks(image_emb: ArrayLike, text_emb: ArrayLike, device: str | torch.device = "cpu",
                  rows: int | None = None, gpu_mem_mb: int | None = None) -> Iterator[np.ndarray]:
    """Cosine of every image with every text, ``[N, C]`` float32, in blocks of image rows.

    Embeddings are normalised here, on the host, and multiplied in float32 on ``device``:
    the texts go there once and stay; each block of ``rows`` images (default
    :func:`block_rows`, from :data:`BLOCK_BYTES` and ``gpu_mem_mb`` on a GPU) goes there,
    and its cosines come back as a numpy block. Made on demand: one block is held at a time.
    Cosines only, never a non-linear similarity of them.
    """
    device = torch.device(device)
    texts = normalize(torch.atleast_2d(as_tensor(text_emb))).to(device)
    if rows is None:
        rows = block_rows(texts.shape[0], texts.shape[1],
                          gpu_mem_mb=gpu_mem_mb if device.type == "cuda" else None)
    for start in range(0, len(image_emb), rows):
        images = normalize(image_emb[start:start + rows]).to(device)
        block = (images @ texts.T).cpu().numpy()
        del images
        yield block
        del block  # freed before the next block is made


def similarity_matrix(image_emb: ArrayLike, text_emb: ArrayLike,
                      device: str | torch.device = "cpu", rows: int | None = None) -> np.ndarray:
    """Cosine of every image with every text, ``[N, C]`` of :data:`SIMILARITY_DTYPE`, in
    memory: the blocks of :func:`cosine_blocks` put together (for small sets and tests)."""
    n_texts = len(torch.atleast_2d(as_tensor(text_emb)))
    return in_memory(io.RowBlocks((len(image_emb), n_texts), SIMILARITY_DTYPE,
                                  cosine_blocks(image_emb, text_emb, device, rows)))


def in_memory(matrix: io.RowBlocks) -> np.ndarray:
    """The array that ``matrix``'s blocks make up, put together in memory."""
    out = np.empty(matrix.shape, dtype=matrix.dtype)
    start = 0
    for block in matrix.blocks:
        out[start:start + len(block)] = block
        start += len(block)
    return out


def _as_source(matrix: ArrayLike | torch.Tensor) -> torch.Tensor:
    """``matrix`` as a tensor without a copy where possible (float16/32/64 kept as they are)."""
    if isinstance(matrix, torch.Tensor):
        return matrix.detach()
    array = np.asarray(matrix)
    if array.dtype not in (np.float16, np.float32, np.float64):
        array = array.astype(np.float32)
    return torch.from_numpy(np.ascontiguousarray(array))


def _copy_rows(source: torch.Tensor, rows: np.ndarray,
               device: torch.device) -> tuple[torch.Tensor, np.ndarray]:
    """The union of the named rows, copied to ``device``, and each name's position in it."""
    union, positions = np.unique(rows, return_inverse=True)
    store = torch.empty((union.size, *source.shape[1:]), dtype=source.dtype, device=device)
    # Copied in blocks of rows, so the host never holds a second copy of the union.
    step = max(1, 2 ** 22 // max(1, int(np.prod(source.shape[1:], dtype=np.int64))))
    for start in range(0, union.size, step):
        index = torch.as_tensor(union[start:start + step], device=source.device)
        store[start:start + step] = source.index_select(0, index).to(device)
    return store, positions.reshape(rows.shape)


def gather_rows(matrix: ArrayLike | torch.Tensor, rows: np.ndarray,
                device: str | torch.device = "cpu") -> tuple[torch.Tensor, np.ndarray]:
    """The rows of ``matrix`` that ``rows`` names, on ``device`` in the matrix's own dtype.

    Returns ``(store, positions)``: ``store[positions[...]]`` is ``matrix[rows[...]]``.
    On the CPU a numpy or CPU-tensor matrix is used in place (``positions`` is ``rows``);
    elsewhere only the union of the named rows is copied there. Nothing is converted to
    float32 here: callers convert the few rows they use at a time.
    """
    rows = np.asarray(rows, dtype=np.int64)
    source = _as_source(matrix)
    device = torch.device(device)
    if source.device.type == device.type and (device.index is None
                                              or source.device.index == device.index):
        return source, rows
    return _copy_rows(source, rows, device)


def row_bytes(matrix: ArrayLike | torch.Tensor) -> int:
    """Bytes of one row of ``matrix`` in its own dtype."""
    shape = tuple(matrix.shape)
    itemsize = (matrix.element_size() if isinstance(matrix, torch.Tensor)
                else np.dtype(matrix.dtype).itemsize)
    return int(np.prod(shape[1:], dtype=np.int64)) * itemsize


def plan_row_chunks(rows: np.ndarray, max_rows: int) -> list[slice]:
    """Consecutive ranges of neurons (rows ``[K, n]``: neuron k's row indices) whose union
    of rows holds at most ``max_rows`` rows each, greedily: as many neurons per range as fit.

    Raises ValueError when one neuron alone names more than ``max_rows`` distinct rows.
    """
    rows = np.asarray(rows, dtype=np.int64)
    chunks, start, held = [], 0, 0
    seen = np.zeros(int(rows.max()) + 1 if rows.size else 0, dtype=bool)
    for k in range(rows.shape[0]):
        mine = np.unique(rows[k])
        if mine.size > max_rows:
            raise ValueError(f"one neuron needs {mine.size} rows, more than the {max_rows} "
                             "that fit the memory budget")
        new = int((~seen[mine]).sum())
        if held + new > max_rows:
            chunks.append(slice(start, k))
            seen[:] = False
            start, new = k, mine.size
            held = 0
        seen[mine] = True
        held += new
    if rows.shape[0]:
        chunks.append(slice(start, rows.shape[0]))
    return chunks


def gather_row_chunks(matrix: ArrayLike | torch.Tensor, rows: np.ndarray,
                      device: str | torch.device = "cpu", budget_bytes: int | None = None
                      ) -> Iterator[tuple[slice, torch.Tensor, np.ndarray]]:
    """:func:`gather_rows` for chunks of neurons whose rows fit ``budget_bytes`` on ``device``.

    ``rows`` ``[K, n]`` names the rows of each neuron's top images. Yields ``(neurons,
    store, positions)``: ``store[positions[i, r]]`` is ``matrix[rows[neurons][i, r]]``.
    ``budget_bytes`` None, or a union of every neuron's rows that fits it: one chunk,
    :func:`gather_rows` (copied once, or used in place on the matrix's own device).
    Otherwise each chunk's union (at most half the budget: the caller's chunk is still
    alive while the next one is copied) is copied to ``device`` from the (memory-mapped)
    matrix in turn, so the device never holds more than the budget of rows, whatever the
    device (on the CPU too, which is how the chunked path is tested without a GPU).
    """
    rows = np.asarray(rows, dtype=np.int64)
    device = torch.device(device)
    union = np.unique(rows).size
    if budget_bytes is None or union * row_bytes(matrix) <= budget_bytes:
        store, positions = gather_rows(matrix, rows, device)
        yield slice(0, rows.shape[0]), store, positions
        return
    source = _as_source(matrix)
    for neurons in plan_row_chunks(rows, max(0, budget_bytes // 2 // max(1, row_bytes(matrix)))):
        store, positions = _copy_rows(source, rows[neurons], device)
        yield neurons, store, positions
        del store


# The matrices a similarity artifact can hold, and the text embeddings (keys of a text
# embeddings artifact) each compares the images with.
MATRIX_TEXTS = {"prompt": "emb", "base": "base", "raw": "raw"}


def cosine_row_blocks(image_emb: ArrayLike, texts: dict[str, np.ndarray], keys: list[str],
                      device: str | torch.device = "cpu", rows: int | None = None,
                      gpu_mem_mb: int | None = None) -> dict[str, io.RowBlocks]:
    """The similarity artifact's matrices named by ``keys``, from one CLIP model's
    embeddings, as :class:`~neuron_concepts.io.RowBlocks` that
    :func:`neuron_concepts.io.save_similarity` streams into the file (:func:`cosine_blocks`):
    no matrix is ever held whole.

    ``prompt`` ``[N, C]``: cosines with WWW's prompts ("A photo of a {concept}"); ``base``
    ``[N]``: with the base template; ``raw`` ``[N, C]``: with the raw concept strings
    (CLIP-Dissect). ``texts`` is a text embeddings artifact (keys ``emb``, ``base``, ``raw``).
    A matrix's text embeddings are normalised and moved to ``device`` when its first block
    is asked for, and dropped after its last.
    """
    unknown = sorted(set(keys) - set(MATRIX_TEXTS))
    if unknown:
        raise ValueError(f"unknown similarity matrices {unknown}: use {sorted(MATRIX_TEXTS)}")
    n_images = len(image_emb)
    out = {}
    for key in keys:
        text_emb = np.atleast_2d(np.asarray(texts[MATRIX_TEXTS[key]]))
        blocks = cosine_blocks(image_emb, text_emb, device, rows, gpu_mem_mb)
        if key == "base":  # one template: a vector
            out[key] = io.RowBlocks((n_images,), SIMILARITY_DTYPE, (b[:, 0] for b in blocks))
        else:
            out[key] = io.RowBlocks((n_images, len(text_emb)), SIMILARITY_DTYPE, blocks)
    return out


def cosine_matrices(image_emb: ArrayLike, texts: dict[str, np.ndarray], keys: list[str],
                    device: str | torch.device = "cpu", rows: int | None = None) -> dict[str, np.ndarray]:
    """The matrices of :func:`cosine_row_blocks`, in memory (for small sets and tests; the
    similarity rule streams them into its file instead)."""
    return {key: in_memory(matrix)
            for key, matrix in cosine_row_blocks(image_emb, texts, keys, device, rows).items()}
