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
