"""Image stages in shards: ranges of a probe manifest's rows, and the join of their artifacts.

Activations, Grad-CAM and image embeddings of a large probe set run as several jobs, each
over ``images_per_job`` consecutive manifest rows (rounded up to whole batches, so every
shard's batches are the very batches an unsharded job forms and the arrays agree to the
byte on the CPU); a join concatenates the shards into the artifact at its usual path.

The number of shards is fixed when the workflow is planned, from the probe set's file
count (:func:`neuron_concepts.data.count_probe_files`), an upper bound of the manifest's
rows: a shard past the manifest's end (unreadable files skipped) reads no image and
writes empty arrays, which the join leaves out. No torch here: the rule files plan with it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from . import io
from .errors import InputDataError


def shard_size(images_per_job: int, batch_size: int) -> int:
    """Rows per shard: ``images_per_job`` rounded up to whole batches of ``batch_size``
    (0, one job for everything, stays 0)."""
    if images_per_job <= 0:
        return 0
    batch_size = max(1, int(batch_size))
    return -(-int(images_per_job) // batch_size) * batch_size


def shard_ranges(n_files: int, images_per_job: int, batch_size: int) -> list[tuple[int, int]]:
    """The (start, stop) manifest rows of each shard of ``n_files`` images; one range
    (``(0, n_files)``) when they fit one job or ``images_per_job`` is 0."""
    size = shard_size(images_per_job, batch_size)
    if size == 0 or n_files <= size:
        return [(0, max(0, int(n_files)))]
    return [(start, min(start + size, n_files)) for start in range(0, n_files, size)]


def manifest_rows(manifest: pd.DataFrame, rows: Sequence[int] | None) -> pd.DataFrame:
    """The manifest rows ``[start, stop)`` of a shard (``rows`` None: all of them); past
    the end (skipped unreadable files) the slice is short or empty."""
    if rows is None:
        return manifest
    start, stop = rows
    return manifest.iloc[int(start):int(stop)].reset_index(drop=True)


def empty_rows(ndim: int, dtype: str) -> np.ndarray:
    """The array an empty shard writes: no rows, and no columns either (nothing knows
    them without a model run); :func:`join_rows` leaves it out."""
    return np.zeros((0,) * ndim, dtype=dtype)


def join_rows(parts: Sequence[np.ndarray], part_ids: Sequence[np.ndarray],
              ids: Sequence[str], what: str) -> np.ndarray:
    """The shards' rows, in order, as one array, checked against the manifest's ``ids``:
    every image once, in manifest order. Empty shards are left out."""
    kept = [(part, np.asarray(pid).astype(str)) for part, pid in zip(parts, part_ids) if len(part)]
    joined_ids = np.concatenate([pid for _, pid in kept]) if kept else np.zeros(0, str)
    expected = np.asarray(ids).astype(str)
    if len(joined_ids) != len(expected) or (joined_ids != expected).any():
        raise InputDataError(f"the {what} shards hold {len(joined_ids)} images where the manifest "
                             f"lists {len(expected)} (or in another order): the probe set changed "
                             "after the workflow was planned; run snakemake again")
    if not kept:
        raise InputDataError(f"the {what} shards hold no images")
    return np.concatenate([part for part, _ in kept])


def join_activations(shards: Sequence[Sequence[str]], outputs: Sequence[str],
                     ids: Sequence[str]) -> None:
    """Join each layer's activation shards (``shards[i]``: the shards of ``outputs[i]``)."""
    for paths, output in zip(shards, outputs):
        loaded = [io.load_activations(path) for path in paths]
        values = join_rows([a.values for a in loaded], [a.ids for a in loaded], ids, "activations")
        io.save_activations(output, values, ids=ids)


def join_image_embeddings(paths: Sequence[str], output: str, ids: Sequence[str]) -> None:
    """Join the image-embedding shards of one CLIP model and view."""
    loaded = [io.load_image_embeddings(path) for path in paths]
    emb = join_rows([e.emb for e in loaded], [e.ids for e in loaded], ids, "image embeddings")
    io.save_image_embeddings(output, emb, ids=ids)


def join_cams(paths: Sequence[str], output: str, ids: Sequence[str]) -> None:
    """Join the Grad-CAM shards of one probe set and target."""
    loaded = [io.load_cams(path) for path in paths]
    part_ids = [c["image_id"] for c in loaded]
    cams = join_rows([c["cams"] for c in loaded], part_ids, ids, "Grad-CAM")
    predicted = join_rows([c["predicted"] for c in loaded], part_ids, ids, "Grad-CAM")
    io.save_cams(output, np.asarray(ids), cams, predicted)
