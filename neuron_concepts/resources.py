"""What a job needs, computed from its inputs: the memory and time the description jobs declare.

A description job (rules www_descriptions, clip_dissect_descriptions) describes the layers
of one probe set and concept set (``scale.description_jobs: concept_set``) or one layer of
them (``layer``). For ``N`` probe images, ``K`` neurons of the job's widest layer, ``K_sum``
neurons of all its layers, ``C`` concepts, ``n`` top images per neuron (the largest
n_images or top_k of the job) and ``n_k`` the most ks scored in one pass (CLIP-Dissect's
methods that differ only in top_k, the stability study's; 1 for WWW), in bytes:

- host (CPU or GPU run): ``4 N K`` (one layer's activations) + ``(n_k + 1) x 4 K C`` (the
  float32 scores of one pass, and the prior's / table's temporaries) + ``4 min(N, K_sum n)
  C`` (the rows of the memory-mapped cosine matrix that the top images touch: page cache,
  which the kernel can drop, but resident while the job reads it) + a fixed 1.25 GiB
  (Python, torch's libraries, pandas, pyarrow, the 16 MiB chunk buffers);
- GPU (declared ``gpu_mem_mb``, the most the job holds there): the top images' cosine rows
  ``4 min(N, K n) C`` + CLIP-Dissect's ``n_k`` log-likelihoods ``4 n_k K C`` + the working
  blocks (2 GiB) + the CUDA context (1 GiB), capped at ``scale.gpu_mem_mb``: a job whose
  rows do not fit copies them per chunk of neurons within that budget
  (:func:`neuron_concepts.similarity.gather_row_chunks`, :func:`gpu_work_bytes`).
- runtime (minutes): 10 + (``4 min(N, K_sum n) C`` bytes read at 100 MB/s + ``K_sum n C
  x passes`` float32 elements scored at 1e7 /s, a CPU's pace) / 60, so it grows with the
  probe set, the layer widths and the concept set.

Each is multiplied by the attempt (a retried job gets twice, then three times as much; the
GPU declaration never beyond ``scale.gpu_mem_mb``). At the papers' scale (N = 50,000,
K = 2,048, C = 82,115, n = 40, per layer job): 16.4 GiB of cosine rows, more than a 16 GB
card's budget, so a WWW job copies them in chunks. ``benchmarks/bench_pipeline.py
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
from typing import Iterable, NamedTuple

from . import io

MIB = 2 ** 20
# Python, torch's libraries (about 0.7 GiB resident on import), pandas, pyarrow and the
# 16 MiB chunk buffers: 1.0 GiB measured (benchmarks/bench_pipeline.py --stages), plus a margin.
FIXED_HOST_BYTES = 1280 * MIB
# The CUDA context and the caching allocator's slack: the part of a card's memory a job
# cannot fill with arrays.
GPU_RESERVE_BYTES = 2 ** 30
# The working blocks of a scoring pass on a GPU at most (4 blocks of 2**27 float32).
GPU_BLOCK_BYTES = 2 * 2 ** 30
READ_BYTES_PER_S = 100e6
# Cosine elements scored per second on a CPU (2 cores: WWW 3e7, CLIP-Dissect 1.5e7 measured
# by benchmarks/bench_pipeline.py --stages 20000 8000), so a CPU run fits; a GPU is faster.
SCORED_ELEMENTS_PER_S = 1e7


class JobShape(NamedTuple):
    """The sizes a description job's inputs hold (npz headers), see the module docstring."""

    n_images: int
    widest: int       # K: neurons of the widest layer
    neurons: int      # K_sum: neurons of every layer of the job
    n_concepts: int


def description_host_bytes(n_images: int, n_neurons: int, n_concepts: int,
                           n_top: int | None = None, n_ks: int = 1,
                           all_neurons: int | None = None) -> int:
    """Peak host memory of a description job (see the module docstring), in bytes.

    ``n_top`` None: every image may be a top image. ``all_neurons``: K_sum (default K)."""
    all_neurons = n_neurons if all_neurons is None else all_neurons
    touched = n_images if n_top is None else min(n_images, all_neurons * n_top)
    return (4 * n_images * n_neurons + (n_ks + 1) * 4 * n_neurons * n_concepts
            + 4 * touched * n_concepts + FIXED_HOST_BYTES)


def description_gpu_bytes(n_images: int, n_neurons: int, n_concepts: int, n_top: int,
                          n_ks: int = 0) -> int:
    """GPU memory a description job holds on CUDA when nothing is chunked, in bytes
    (``n_ks``: CLIP-Dissect's log-likelihoods, 0 for WWW)."""
    return (4 * min(n_images, n_neurons * n_top) * n_concepts + 4 * n_ks * n_neurons * n_concepts
            + GPU_BLOCK_BYTES + GPU_RESERVE_BYTES)


def gpu_work_bytes(gpu_mem_mb: int) -> int:
    """The bytes a job may fill with arrays on a card of ``gpu_mem_mb`` MB (less the reserve)."""
    work = gpu_mem_mb * MIB - GPU_RESERVE_BYTES
    if work <= 0:
        raise ValueError(f"scale.gpu_mem_mb = {gpu_mem_mb} leaves no GPU memory for arrays")
    return work


def description_runtime_min(shape: JobShape, n_top: int, passes: int) -> int:
    """Minutes a description job runs at most on one attempt (see the module docstring)."""
    touched = min(shape.n_images, shape.neurons * n_top) * shape.n_concepts
    seconds = (4 * touched / READ_BYTES_PER_S
               + shape.neurons * n_top * shape.n_concepts * passes / SCORED_ELEMENTS_PER_S)
    return 10 + -(-int(seconds) // 60)


def description_job_shape(activations: Iterable[str | os.PathLike],
                          similarities: Iterable[str | os.PathLike]) -> JobShape:
    """The sizes a description job reads, from its inputs' npz headers only.

    Raises FileNotFoundError naming a missing input, which Snakemake takes as "not known
    yet" and asks again once the input exists. Layers seen under several views count once.
    """
    def shapes_of(paths):
        for path in paths:
            if not os.path.exists(path):
                raise FileNotFoundError(2, "input not made yet", str(path))
            yield io.npz_shapes(path)

    n_images, widths = 0, []
    for held in shapes_of(activations):
        n_images, width = held["activations"]
        widths.append(width)
    n_concepts = max(shape[1] for held in shapes_of(similarities)
                     for shape in held.values() if len(shape) == 2)
    return JobShape(n_images, max(widths), sum(widths), n_concepts)


def description_mem_mb(activations: Iterable[str | os.PathLike],
                       similarities: Iterable[str | os.PathLike],
                       n_top: int | None = None, n_ks: int = 1) -> int:
    """``mem_mb`` of a description job from the shapes its inputs hold (npz headers only)."""
    shape = description_job_shape(activations, similarities)
    return -(-description_host_bytes(shape.n_images, shape.widest, shape.n_concepts, n_top,
                                     n_ks, shape.neurons) // MIB)


def description_gpu_mem_mb(activations: Iterable[str | os.PathLike],
                           similarities: Iterable[str | os.PathLike], n_top: int,
                           n_ks: int, gpu_mem_mb: int, attempt: int = 1) -> int:
    """``gpu_mem_mb`` of a description job: its unchunked need times ``attempt``, at most
    the card's ``gpu_mem_mb`` (within which the job chunks its rows)."""
    shape = description_job_shape(activations, similarities)
    need = description_gpu_bytes(shape.n_images, shape.widest, shape.n_concepts, n_top, n_ks)
    return min(gpu_mem_mb, attempt * -(-need // MIB))


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
    measured on 2 cores, docs/performance.md) or 60,000 on a GPU (a tenth of an H100's estimated
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


# ---------------------------------------------------------------- image stages
# A job that runs a model over ``n`` probe images (activations, Grad-CAM, image embeddings;
# one shard of them or all) holds: the Python process with torch and the model (a fixed
# 3 GiB), its output rows twice (the per-batch chunks and their concatenation: ``2 n
# row_bytes``), and the DataLoader's prefetched batches (``workers x 4 x batch`` float32
# images of ``side x side`` pixels). On the
# GPU: the model (``model_bytes``) and one batch's forward (``batch x per_image`` bytes,
# Grad-CAM's backward included in its ``per_image``).

FIXED_IMAGE_JOB_BYTES = 3 * 2 ** 30
PREFETCH = 4  # batches per DataLoader worker (neuron_concepts.data.image_loader)


def image_job_host_bytes(n_images: int, row_bytes: int, batch_size: int, workers: int,
                         side: int = 224) -> int:
    """Peak host memory of an image-stage job over ``n_images`` images, in bytes."""
    batch = 4 * 3 * side * side * batch_size
    return FIXED_IMAGE_JOB_BYTES + 2 * n_images * row_bytes + max(1, workers) * PREFETCH * batch


def image_job_gpu_bytes(batch_size: int, per_image_bytes: int, model_bytes: int = 2 ** 30) -> int:
    """Peak GPU memory of an image-stage job on CUDA, in bytes: the model and one batch."""
    return model_bytes + batch_size * per_image_bytes


def image_job_runtime(n_images: int, gpu: bool, images_per_minute: tuple[int, int] = (6000, 300)) -> int:
    """Minutes an image-stage job over ``n_images`` images may take: 10 to start (model
    load, worker start) plus the images at a conservative rate, (GPU, CPU) images per
    minute: a GPU fed by 8 PIL workers does ~25,000 a minute, a CPU core ResNet-50 ~300."""
    rate = images_per_minute[0] if gpu else images_per_minute[1]
    return 10 + -(-int(n_images) // rate)


def mib(n_bytes: int) -> int:
    """Bytes as whole MiB, rounded up (what ``mem_mb`` and ``gpu_mem_mb`` declare)."""
    return -(-int(n_bytes) // MIB)
