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
