"""What a job needs, computed from its inputs: the memory the description jobs declare.

The formulas count the arrays a job holds at its peak, in bytes, for ``N`` probe images,
``K`` neurons of the widest layer, ``C`` concepts and ``n`` top images per neuron (the
largest top_k or n_images of the job):

- host (CPU or GPU run): ``4 N K`` (one layer's activations) + ``3 x 4 K C`` (the float32
  scores, the prior's and the table's temporaries) + ``4 min(N, K n) C`` (the rows of the
  memory-mapped cosine matrix that the top images touch: page cache, which the kernel can
  drop, but resident while the job reads it) + a fixed 1 GiB (Python, torch, chunk buffers
  of 16 MiB each);
- GPU: ``4 min(N, K n) C`` (the top images' cosine rows, gathered once) + ``2 x 4 K C``.

At the papers' scale (N = 50,000, K = 2,048, C = 82,115, n = 40): 18.6 GiB on the host, of
which 15.3 GiB are mapped cosines, and 16.5 GiB on the GPU. ``benchmarks/bench_pipeline.py
--stages`` prints the host formula next to the measured peaks.

The similarity job streams its cosines into the file one block of ``r`` image rows at a
time (:func:`neuron_concepts.similarity.cosine_row_blocks`), ``r`` the most rows whose
float32 block ``[r, C]`` fits ``B`` = 64 MiB (and, on a GPU, the budget below). For its
largest (model, view) pair, ``N`` images, ``C`` concepts, ``D`` embedding dimensions and
``P`` text parts of ``[C, D]`` in the text embeddings file (1 or 2):

- host: ``2 N D`` (the float16 image embeddings) + ``2 P C D`` (the float16 text
  embeddings) + ``8 C D`` (one part normalised in float32, and its float32 copy while
  normalising) + ``2 B`` (a block of float32 cosines and its float16 cast, or its copy
  back from the GPU) + ``8 min(N, r) D`` (the block's normalised image rows) + a fixed
  1 GiB (Python, torch). No ``N x C`` term: the file is written through the page cache.
- GPU: 1 GiB reserved (CUDA context, cuBLAS workspaces) + ``4 C D`` (the float32 text
  embeddings, there once) + ``4 min(N, r) (C + D)`` (a block and its image rows);
  ``r`` is cut so that this fits ``scale.gpu_mem_mb``.
- runtime: 10 minutes + one per 200 million cosines written (a conservative 3.3 million
  cosines/s, for a CPU run on a shared file system; the benchmark measures the real rate).

At the papers' scale (N = 50,000, C = 82,115, D = 768, P = 2): 1.9 GiB on the host and
1.3 GiB on the GPU, where the matrices alone would be 15.3 GiB each.
"""

from __future__ import annotations

import os
from typing import Iterable

from . import io

MIB = 2 ** 20
FIXED_HOST_BYTES = 2 ** 30


def description_host_bytes(n_images: int, n_neurons: int, n_concepts: int,
                           n_top: int | None = None) -> int:
    """Peak host memory of a description job (see the module docstring), in bytes.

    ``n_top`` None: every image may be a top image (what a job knows before it runs)."""
    touched = n_images if n_top is None else min(n_images, n_neurons * n_top)
    return (4 * n_images * n_neurons + 3 * 4 * n_neurons * n_concepts
            + 4 * touched * n_concepts + FIXED_HOST_BYTES)


def description_gpu_bytes(n_images: int, n_neurons: int, n_concepts: int, n_top: int) -> int:
    """Peak GPU memory of a description job run on CUDA, in bytes."""
    return 4 * min(n_images, n_neurons * n_top) * n_concepts + 2 * 4 * n_neurons * n_concepts


def description_mem_mb(activations: Iterable[str | os.PathLike],
                       similarities: Iterable[str | os.PathLike]) -> int:
    """``mem_mb`` of a description job from the shapes its inputs hold (npz headers only):
    the widest layer of ``activations`` and the most concepts of ``similarities``.

    Raises FileNotFoundError naming a missing input, which Snakemake takes as "not known
    yet" and asks again once the input exists.
    """
    def shapes_of(paths):
        for path in paths:
            if not os.path.exists(path):
                raise FileNotFoundError(2, "input not made yet", str(path))
            yield io.npz_shapes(path)

    n_images, n_neurons = 0, 0
    for held in shapes_of(activations):
        n_images, width = held["activations"]
        n_neurons = max(n_neurons, width)
    n_concepts = max(shape[1] for held in shapes_of(similarities)
                     for shape in held.values() if len(shape) == 2)
    return -(-description_host_bytes(n_images, n_neurons, n_concepts) // MIB)


# ---------------------------------------------------------------- similarity


def similarity_host_bytes(n_images: int, n_concepts: int, dim: int, text_parts: int = 2) -> int:
    """Peak host memory of a similarity job for one (model, view) pair (see the module
    docstring), in bytes: no ``N x C`` term, whatever the sizes."""
    from .similarity import BLOCK_BYTES, block_rows

    rows = min(n_images, block_rows(n_concepts, dim))
    return (2 * n_images * dim + 2 * text_parts * n_concepts * dim + 8 * n_concepts * dim
            + 2 * BLOCK_BYTES + 8 * rows * dim + FIXED_HOST_BYTES)


def similarity_gpu_bytes(n_images: int, n_concepts: int, dim: int, gpu_mem_mb: int) -> int:
    """Peak GPU memory of a similarity job run on CUDA within ``gpu_mem_mb``, in bytes."""
    from .similarity import GPU_RESERVED_BYTES, block_rows

    rows = min(n_images, block_rows(n_concepts, dim, gpu_mem_mb=gpu_mem_mb))
    return GPU_RESERVED_BYTES + 4 * n_concepts * dim + 4 * rows * (n_concepts + dim)


def similarity_runtime_min(n_cosines: int) -> int:
    """Minutes a similarity job that writes ``n_cosines`` cosines may take (module docstring)."""
    return 10 + -(-n_cosines // 200_000_000)


def _shapes(path: str | os.PathLike) -> dict[str, tuple[int, ...]]:
    """The array shapes of an input that exists (npz headers only); FileNotFoundError naming
    it when it does not, which Snakemake takes as "not known yet" and asks again."""
    if not os.path.exists(path):
        raise FileNotFoundError(2, "input not made yet", str(path))
    return io.npz_shapes(path)


def similarity_resources(pairs: Iterable[tuple[str | os.PathLike, str | os.PathLike, list[str]]],
                         gpu_mem_mb: int) -> dict[str, int]:
    """``mem_mb``, ``gpu_mem_mb`` and ``runtime`` (minutes) of one similarity job, before
    ``attempt``, from the shapes its inputs hold: ``pairs`` are its (image embeddings, text
    embeddings, matrices) files, one per (model, view). Memory is the largest pair's
    (the job makes one file at a time); runtime grows with every cosine it writes.
    """
    host = gpu = n_cosines = 0
    for images, texts, matrices in pairs:
        n_images, dim = _shapes(images)["emb"]
        held = _shapes(texts)
        n_concepts = held["ids"][0]
        parts = sum(1 for key, shape in held.items() if key != "ids" and len(shape) == 2)
        host = max(host, similarity_host_bytes(n_images, n_concepts, dim, parts))
        gpu = max(gpu, similarity_gpu_bytes(n_images, n_concepts, dim, gpu_mem_mb))
        n_cosines += n_images * sum(1 if key == "base" else n_concepts for key in matrices)
    return dict(mem_mb=-(-host // MIB), gpu_mem_mb=-(-gpu // MIB),
                runtime=similarity_runtime_min(n_cosines))
