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


# ---------------------------------------------------------------- model stages: GPU memory and runtime

# A transformer tower's peak: its float32 weights, the CUDA context, and per item of a batch
# its tokens' hidden states through the layers that autograd-free inference keeps alive at
# once (a few per layer; 32 widths a token covers attention, MLP and the norms' buffers).
CUDA_CONTEXT_BYTES = 512 * MIB


def tower_gpu_bytes(batch_size: int, tokens: int, width: int, params: float) -> int:
    """Peak GPU memory of a batched forward through a transformer tower, in bytes:
    ``4 params + 4 batch tokens width 32 + 512 MiB`` (weights, activations, CUDA context).

    CLIP ViT-B's text tower (77 tokens, width 512, 63 M parameters) at batch 256: 1.9 GiB;
    its image tower (197 tokens, width 768, 86 M) at batch 256: 5.4 GiB."""
    return int(4 * params + 4 * batch_size * tokens * width * 32 + CUDA_CONTEXT_BYTES)


def text_gpu_mem_mb(batch_size: int) -> int:
    """``gpu_mem_mb`` of a text-embedding job (CLIP's text tower or a sentence model, both at
    most ~110 M parameters of width 768 over 77 tokens at ``batch_size``)."""
    return -(-tower_gpu_bytes(batch_size, 77, 768, 110e6) // MIB)


def image_tower_gpu_mem_mb(batch_size: int) -> int:
    """``gpu_mem_mb`` of a job running CLIP's ViT-B image tower (197 tokens, width 768) at
    ``batch_size`` images or patches."""
    return -(-tower_gpu_bytes(batch_size, 197, 768, 150e6) // MIB)


def table_rows(path: str | os.PathLike) -> int:
    """Rows of a parquet table from its footer (no data read); FileNotFoundError when it is
    not made yet (Snakemake then asks again once it exists)."""
    import pyarrow.parquet as pq

    if not os.path.exists(path):
        raise FileNotFoundError(2, "input not made yet", str(path))
    return pq.read_metadata(path).num_rows


def text_runtime_min(n_texts: int, gpu: bool, attempt: int = 1) -> int:
    """``runtime`` (minutes) of a text-embedding job of ``n_texts`` texts through one model:
    10 minutes of start-up and model load, then 7,000 texts a minute on a CPU (124 texts/s
    measured on 2 cores, README Scale) or 60,000 on a GPU (a tenth of an H100's estimated
    rate: benchmarks/throughputs.yaml), times the attempt."""
    per_minute = 60_000 if gpu else 7_000
    return attempt * (10 + -(-n_texts // per_minute))


def thumbnail_runtime_min(n_images: int, n_views: int, threads: int, attempt: int = 1) -> int:
    """``runtime`` (minutes) of the browser: at most one thumbnail per image and view plus its
    Grad-CAM overlay, about 25 ms each (decode, Lanczos resize, WebP) per thread, plus 10
    minutes for the pages, times the attempt."""
    seconds = n_images * (n_views + 1) * 0.025 / max(1, threads)
    return attempt * (10 + -(-int(seconds) // 60))

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
