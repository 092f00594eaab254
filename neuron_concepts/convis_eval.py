"""Evaluations of ConVis (Giulivi & Boracchi): out-of-distribution detection and WSOL.

OOD: an image is scored by how strongly CLIP ranks the in-distribution synset ``s+`` (or one
of its hyponyms) among the vocabulary, ``o(x) = max_rank_sim(E_I(x), s+)``; AUROC separates
ImageNet classes under ``s+`` from classes under ``s-``. Two baselines: the cosine to the
definition of ``s+`` alone ("definition"), and CLIP image-image similarity to training images
of the in-distribution classes ("image").

WSOL: MaxBoxAcc (Choe et al., CVPR 2020) of saliency maps against ground-truth boxes, as
the official code computes it (wsol_evaluation.py of loris2222/Concept-Visualization).

Boxes are ``(x0, y0, x1, y1)`` with area ``(x1 - x0) * (y1 - y0)``. Ground-truth boxes are
CUB's ``(x, y, x + width, y + height)`` in pixels of the image the map covers. A predicted
box, like the official one (``np_bbox2`` then ``bbox_from_map``), has its corners at the
first and last row and column index of the component: a component spanning columns
``c0..c1`` has ``x0 = c0, x1 = c1`` (one pixel narrower than its pixels' extent).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from numpy.typing import ArrayLike
from scipy import ndimage

from . import wordnet
from .convis_vocabulary import hyponym_members, synset_index
from .convis_volume import max_rank_sim
from .data import imagenet_wnids
from .errors import InputDataError
from .similarity import cosine

# The paper's six (in-distribution s+, out-of-distribution s-) pairs, words mapped to the
# synset of their first (most frequent) noun sense, except vessel whose first sense is the
# container: vessel.n.02 is the craft for water transportation.
OOD_PAIRS: tuple[tuple[str, str], ...] = (
    ("bird.n.01", "hunting_dog.n.01"),
    ("garment.n.01", "furniture.n.01"),
    ("spider.n.01", "butterfly.n.01"),
    ("ungulate.n.01", "bear.n.01"),
    ("edible_fruit.n.01", "musical_instrument.n.01"),
    ("aircraft.n.01", "vessel.n.02"),
)

# scipy.ndimage.label's structure for 4-connectivity: diagonal neighbours are not connected.
FOUR_CONNECTED = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], dtype=bool)

DEFAULT_THRESHOLDS = np.arange(0.0, 1.0, 0.01)


# ----------------------------------------------------------------------------- OOD

def classes_under(synset: str, wnids: Sequence[str] | None = None) -> list[str]:
    """The ids among ``wnids`` (default: ImageNet-1k) whose synset is ``synset`` or a hyponym.

    Hyponymy follows hypernym and instance-hypernym links transitively
    (:func:`neuron_concepts.wordnet.self_and_hypernym_names`). Order of ``wnids``.
    """
    target = wordnet.open_wordnet().synset(synset).name()  # validates the name
    return [wnid for wnid in (imagenet_wnids() if wnids is None else wnids)
            if target in wordnet.self_and_hypernym_names(wnid)]


def _rows(x: ArrayLike | torch.Tensor) -> np.ndarray | torch.Tensor:
    """``x`` as a 2-D array or tensor (a tensor stays on its device), for chunked slicing."""
    return torch.atleast_2d(x) if isinstance(x, torch.Tensor) else np.atleast_2d(np.asarray(x))


def ood_scores(image_emb: ArrayLike | torch.Tensor, synset_emb: ArrayLike | torch.Tensor,
               members_pos: ArrayLike, chunk_size: int = 1024) -> np.ndarray:
    """ConVis OOD score ``o(x) = max_rank_sim(E_I(x), s+)``: float32 ``[N]``, higher = in-distribution.

    ``members_pos``: vocabulary rows of ``s+`` and its hyponyms. Images are ranked in
    chunks so ``[chunk, S]`` is the largest array held.
    """
    images = _rows(image_emb)
    parts = [max_rank_sim(images[i:i + chunk_size], synset_emb, members_pos).cpu().numpy()
             for i in range(0, len(images), chunk_size)]
    return np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, np.float32)


def definition_scores(image_emb: ArrayLike | torch.Tensor,
                      definition_emb: ArrayLike | torch.Tensor) -> np.ndarray:
    """Naive baseline: cosine of each image to the single definition embedding of ``s+``: ``[N]``."""
    return cosine(image_emb, definition_emb)[:, 0].cpu().numpy()


def image_similarity_scores(image_emb: ArrayLike | torch.Tensor,
                            reference_emb: ArrayLike | torch.Tensor,
                            reduce: str = "max", chunk_size: int = 1024) -> np.ndarray:
    """CLIP image-image baseline: similarity of each image to in-distribution training images.

    ``reduce="max"``: cosine to the nearest reference image (1-NN, as in KNN OOD detection);
    ``"mean"``: mean cosine to the references (= cosine to their mean embedding, scaled).
    The references must not include the scored images. Float32 ``[N]``.
    """
    if reduce not in ("max", "mean"):
        raise ValueError(f"reduce must be 'max' or 'mean', got {reduce!r}")
    images = _rows(image_emb)
    parts = []
    for i in range(0, len(images), chunk_size):
        cos = cosine(images[i:i + chunk_size], reference_emb)
        parts.append((cos.max(dim=1).values if reduce == "max" else cos.mean(dim=1)).cpu().numpy())
    return np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, np.float32)


def auroc(scores_in: ArrayLike, scores_out: ArrayLike) -> float:
    """Area under the ROC curve, in-distribution as the positive class (higher = more "in").

    The Mann-Whitney statistic: the fraction of (in, out) pairs with ``s_in > s_out``, ties
    counting 0.5. One sort and two binary searches, no ``N_in x N_out`` matrix.
    """
    s_in = np.asarray(scores_in, dtype=np.float64).ravel()
    s_out = np.sort(np.asarray(scores_out, dtype=np.float64).ravel())
    if len(s_in) == 0 or len(s_out) == 0:
        raise ValueError(f"AUROC needs both classes: got {len(s_in)} in and {len(s_out)} out scores")
    below = np.searchsorted(s_out, s_in, side="left")
    tied = np.searchsorted(s_out, s_in, side="right") - below
    return float((below.sum() + 0.5 * tied.sum()) / (len(s_in) * len(s_out)))


def ood_evaluation(image_emb: ArrayLike, image_wnids: Sequence[str], synset_emb: ArrayLike,
                   vocab: pd.DataFrame, pairs: Sequence[tuple[str, str]] = OOD_PAIRS,
                   reference_emb: ArrayLike | None = None,
                   reference_wnids: Sequence[str] | None = None,
                   reduce: str = "max") -> pd.DataFrame:
    """AUROC of every OOD pair and method: one row per (pair, method).

    ``image_emb`` ``[N, D]`` with each image's ImageNet id ``image_wnids``; ``synset_emb``
    ``[S, D]`` the definitions of ``vocab``'s rows. In-distribution = images of classes
    under ``s+``, out = under ``s-``. Methods: ``convis`` (:func:`ood_scores`),
    ``definition`` (:func:`definition_scores` with ``s+``'s row of ``synset_emb``) and,
    when training ``reference_emb``/``reference_wnids`` are given, ``image``
    (:func:`image_similarity_scores` against the references under ``s+``). AUROC is NaN
    where a side has no images. Columns: positive, negative, method, n_in, n_out, auroc.
    """
    image_emb = np.asarray(image_emb, dtype=np.float32)
    labels = np.asarray(image_wnids)
    classes = sorted(set(labels.tolist()) | set(reference_wnids or []))
    rows = []
    for positive, negative in pairs:
        under_pos, under_neg = set(classes_under(positive, classes)), set(classes_under(negative, classes))
        if under_pos & under_neg:
            raise InputDataError(f"OOD pair {positive}/{negative} shares classes {sorted(under_pos & under_neg)}")
        is_in, is_out = np.isin(labels, list(under_pos)), np.isin(labels, list(under_neg))
        scored = image_emb[is_in | is_out]
        ins = is_in[is_in | is_out]
        scores = {
            "convis": ood_scores(scored, synset_emb, hyponym_members(vocab, positive)),
            "definition": definition_scores(scored, np.asarray(synset_emb)[synset_index(vocab, positive)]),
        }
        if reference_emb is not None:
            refs = np.asarray(reference_emb)[np.isin(np.asarray(reference_wnids), list(under_pos))]
            scores["image"] = (image_similarity_scores(scored, refs, reduce) if len(refs)
                               else np.full(len(scored), np.nan, np.float32))
        for method, s in scores.items():
            both = ins.any() and (~ins).any() and not np.isnan(s).any()
            rows.append({"positive": positive, "negative": negative, "method": method,
                         "n_in": int(ins.sum()), "n_out": int((~ins).sum()),
                         "auroc": auroc(s[ins], s[~ins]) if both else float("nan")})
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- WSOL

def normalize_map(saliency: ArrayLike) -> np.ndarray:
    """Min-max normalise a map to [0, 1] (float64), as the official maps are (generate_heatmap.py).

    A constant map becomes all ones: the official division by zero gives NaN, which every
    threshold keeps as foreground, so its box is the whole image at every threshold.
    """
    m = np.asarray(saliency, dtype=np.float64)
    low, high = m.min(), m.max()
    return (m - low) / (high - low) if high > low else np.ones_like(m)


def largest_component_box(mask: np.ndarray) -> np.ndarray | None:
    """Box ``(c0, r0, c1, r1)`` of the largest 4-connected component of ``mask``, or None.

    The official ``getLargestCC`` labels with skimage's ``connectivity=1`` (4-connected:
    diagonal neighbours are separate components). The corners are the first and last
    column and row index of the component, as official ``np_bbox2``/``bbox_from_map``.
    Equal sizes: the component whose first pixel comes first in row-major order wins.
    """
    labels, n = ndimage.label(mask, structure=FOUR_CONNECTED)
    if n == 0:
        return None
    largest = int(np.argmax(np.bincount(labels.ravel())[1:])) + 1
    rows, cols = ndimage.find_objects(labels)[largest - 1]
    return np.array([cols.start, rows.start, cols.stop - 1, rows.stop - 1], dtype=np.float64)


def boxes_in_frame(boxes: ArrayLike, source_shape: tuple[int, int], resize: int | None) -> np.ndarray:
    """Ground-truth boxes ``[n, 4]`` of an original image in the frame its map covers.

    ``resize=None``: the map covers the original image, boxes unchanged. Otherwise the map
    covers the centred square crop resized to ``resize`` px (:func:`convis_volume.frame_image`),
    and each box is moved as the official ``correct_bbox`` does (wsol_evaluation.py): shift
    by the crop offset, cut to the square, scale by ``resize / side`` and truncate x, y,
    width and height to integers each.
    """
    boxes = np.atleast_2d(np.asarray(boxes, dtype=np.float64))
    if not resize:
        return boxes
    height, width = source_shape
    side = min(height, width)
    x_shift, y_shift = max(width - height, 0) // 2, max(height - width, 0) // 2
    out = np.empty_like(boxes)
    for k, (x0, y0, x1, y1) in enumerate(boxes):
        corner = []
        for start, extent in ((x0 - x_shift, x1 - x0), (y0 - y_shift, y1 - y0)):
            extent = extent + min(start, 0)  # what the crop cut off before the square
            start = max(start, 0)
            extent = min(side - start, extent)  # ... and after it
            corner.append((int(start * resize / side), int(extent * resize / side)))
        (x, w), (y, h) = corner
        out[k] = (x, y, x + w, y + h)
    return out


def box_iou(box: ArrayLike, others: ArrayLike) -> np.ndarray:
    """IoU of one box with each of ``others`` ``[n, 4]`` (continuous coordinates): ``[n]``."""
    a = np.asarray(box, dtype=np.float64)
    b = np.atleast_2d(np.asarray(others, dtype=np.float64))
    width = np.clip(np.minimum(a[2], b[:, 2]) - np.maximum(a[0], b[:, 0]), 0, None)
    height = np.clip(np.minimum(a[3], b[:, 3]) - np.maximum(a[1], b[:, 1]), 0, None)
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def box_hits(saliency: ArrayLike, gt_boxes: ArrayLike, thresholds: ArrayLike = DEFAULT_THRESHOLDS,
             iou_threshold: float = 0.5) -> np.ndarray:
    """Per threshold, whether the box of the largest component of ``map >= tau`` hits: bool ``[T]``.

    The map is min-max normalised first (:func:`normalize_map`); a hit is IoU >=
    ``iou_threshold`` with the best of the image's ground-truth boxes ``[n, 4]`` (CUB has
    one). ``>=`` is the contract (Choe et al.); the official loop counts ``IoU > 0.5``
    (wsol_evaluation.py), which differs only where an IoU is exactly the threshold.
    """
    m = normalize_map(saliency)
    gt = np.atleast_2d(np.asarray(gt_boxes, dtype=np.float64))
    hits = np.zeros(len(np.atleast_1d(thresholds)), dtype=bool)
    for t, tau in enumerate(np.atleast_1d(thresholds)):
        box = largest_component_box(m >= tau)
        hits[t] = box is not None and len(gt) > 0 and box_iou(box, gt).max() >= iou_threshold
    return hits


def box_accuracy_curve(maps: Sequence[ArrayLike], gt_boxes: Sequence[ArrayLike],
                       thresholds: ArrayLike = DEFAULT_THRESHOLDS,
                       iou_threshold: float = 0.5) -> np.ndarray:
    """BoxAcc (%) at every threshold over a set of images: float64 ``[T]``.

    ``maps[i]``: image i's saliency; ``gt_boxes[i]``: its ground-truth boxes ``[n_i, 4]`` in
    the map's pixels (:func:`boxes_in_frame`).
    """
    if len(maps) != len(gt_boxes):
        raise ValueError(f"{len(maps)} maps but {len(gt_boxes)} lists of ground-truth boxes")
    if len(maps) == 0:
        raise ValueError("BoxAcc needs at least one image")
    hits = np.stack([box_hits(m, b, thresholds, iou_threshold) for m, b in zip(maps, gt_boxes)])
    return 100.0 * hits.mean(axis=0)


def max_box_acc(maps: Sequence[ArrayLike], gt_boxes: Sequence[ArrayLike],
                thresholds: ArrayLike = DEFAULT_THRESHOLDS, iou_threshold: float = 0.5) -> float:
    """MaxBoxAcc (%): the best over thresholds of :func:`box_accuracy_curve`."""
    return float(box_accuracy_curve(maps, gt_boxes, thresholds, iou_threshold).max())


# ----------------------------------------------------------------------------- box files

def _read_table(path: Path, names: list[str]) -> pd.DataFrame:
    if not path.exists():
        raise InputDataError(f"{path} does not exist: point at a CUB-200-2011 folder "
                             "holding images.txt, bounding_boxes.txt and train_test_split.txt")
    table = pd.read_csv(path, sep=r"\s+", header=None, names=names)
    if table.empty or table.isna().any().any():
        raise InputDataError(f"{path} is empty or has rows without {len(names)} fields")
    return table


def read_cub_boxes(root: str | os.PathLike, split: str = "test") -> pd.DataFrame:
    """Ground-truth boxes of CUB-200-2011 (one per image) from its own files.

    ``root`` holds ``images.txt`` (id, path under ``images/``), ``bounding_boxes.txt`` (id,
    x, y, width, height in pixels) and, unless ``split="all"``, ``train_test_split.txt``
    (id, 1 = train); WSOL evaluates ``split="test"``. Columns: image_id, path (absolute),
    x0, y0, x1, y1 with ``x1 = x + width``, ``y1 = y + height``.
    """
    if split not in ("test", "train", "all"):
        raise ValueError(f"split must be 'test', 'train' or 'all', got {split!r}")
    root = Path(root)
    images = _read_table(root / "images.txt", ["image_id", "path"])
    boxes = _read_table(root / "bounding_boxes.txt", ["image_id", "x", "y", "width", "height"])
    table = images.merge(boxes, on="image_id", how="inner", validate="one_to_one")
    if split != "all":
        flags = _read_table(root / "train_test_split.txt", ["image_id", "is_train"])
        table = table.merge(flags, on="image_id", how="inner")
        table = table[table["is_train"] == (1 if split == "train" else 0)]
    return pd.DataFrame({
        "image_id": table["image_id"].to_numpy(),
        "path": [str(root / "images" / p) for p in table["path"]],
        "x0": table["x"].to_numpy(float), "y0": table["y"].to_numpy(float),
        "x1": (table["x"] + table["width"]).to_numpy(float),
        "y1": (table["y"] + table["height"]).to_numpy(float),
    }).reset_index(drop=True)


BOX_COLUMNS = ["image", "x0", "y0", "x1", "y1"]


def read_box_csv(path: str | os.PathLike) -> pd.DataFrame:
    """Boxes from a CSV with header ``image,x0,y0,x1,y1`` (pixels; several rows per image allowed)."""
    path = Path(path)
    if not path.exists():
        raise InputDataError(f"box file {path} does not exist")
    table = pd.read_csv(path)
    missing = [c for c in BOX_COLUMNS if c not in table.columns]
    if missing:
        raise InputDataError(f"box file {path} lacks columns {missing}: expected header {','.join(BOX_COLUMNS)}")
    table = table[BOX_COLUMNS].copy()
    table["image"] = table["image"].astype(str)
    bad = (table["x1"] <= table["x0"]) | (table["y1"] <= table["y0"])
    if bad.any():
        raise InputDataError(f"box file {path} has boxes with x1 <= x0 or y1 <= y0 on rows "
                             f"{list(np.flatnonzero(bad.to_numpy())[:10] + 2)}")
    return table


def group_boxes(table: pd.DataFrame, key: str = "image") -> dict[str, np.ndarray]:
    """Boxes ``[n, 4]`` per image, keyed by ``table[key]``, in order of first appearance."""
    coords = table[["x0", "y0", "x1", "y1"]].to_numpy(np.float64)
    keys = table[key].astype(str).to_numpy()
    grouped: dict[str, list[np.ndarray]] = {}
    for k, box in zip(keys, coords):
        grouped.setdefault(k, []).append(box)
    return {k: np.stack(v) for k, v in grouped.items()}


# ----------------------------------------------------------------------------- WSOL image selection

def cub_probe_ids(table: pd.DataFrame, root: str | os.PathLike) -> list[str]:
    """Probe image ids of :func:`read_cub_boxes` rows: the path under ``root/images`` without
    its suffix (``001.Black_footed_Albatross/Black_Footed_Albatross_0001_796111``), which is
    the id an ``imagefolder`` probe set rooted at ``root/images`` gives the image."""
    images = Path(root) / "images"
    return [Path(p).relative_to(images).with_suffix("").as_posix() for p in table["path"]]


def sample_ids(ids: Sequence[str], n: int | None, seed: int) -> list[str]:
    """``n`` of ``ids`` drawn without replacement by a seeded generator, sorted; all when
    ``n`` is None or not smaller. The draw depends only on the sorted ids, ``n`` and ``seed``."""
    ids = sorted(set(map(str, ids)))
    if n is None or n >= len(ids):
        return ids
    chosen = np.random.default_rng(seed).choice(len(ids), size=n, replace=False)
    return [ids[i] for i in sorted(chosen)]


def wsol_ground_truth(cub_root: str | os.PathLike | None = None, boxes_csv: str | os.PathLike | None = None,
                      split: str = "test", n_images: int | None = None,
                      seed: int = 0) -> dict[str, np.ndarray]:
    """Ground-truth boxes ``[n, 4]`` of the WSOL images, keyed by probe image id, sorted by id.

    From CUB-200-2011's files under ``cub_root`` (the ``split`` images; ids as
    :func:`cub_probe_ids`) or from ``boxes_csv`` (:func:`read_box_csv`; its ``image``
    column holds the probe ids). ``n_images`` of them are sampled with ``seed``
    (:func:`sample_ids`); None keeps all.
    """
    if (cub_root is None) == (boxes_csv is None):
        raise ValueError("give exactly one of cub_root and boxes_csv")
    if cub_root is not None:
        table = read_cub_boxes(cub_root, split)
        table["image"] = cub_probe_ids(table, cub_root)
    else:
        table = read_box_csv(boxes_csv)
    boxes = group_boxes(table)
    if not boxes:
        raise InputDataError(f"no ground-truth boxes in {cub_root or boxes_csv}")
    return {image: boxes[image] for image in sample_ids(list(boxes), n_images, seed)}


def wsol_evaluation(maps: Iterable[ArrayLike], gt_boxes: Iterable[ArrayLike],
                    thresholds: ArrayLike = DEFAULT_THRESHOLDS,
                    iou_threshold: float = 0.5) -> dict[str, float]:
    """MaxBoxAcc (%) of a stream of maps, with the threshold that attains it and the image count.

    Same numbers as :func:`max_box_acc`, but ``maps`` may be a generator: only the
    ``[images, thresholds]`` hits are kept, so a thousand full-size maps never sit in memory.
    Ties between thresholds go to the lowest.
    """
    thresholds = np.atleast_1d(np.asarray(thresholds, dtype=np.float64))
    hits = [box_hits(m, b, thresholds, iou_threshold) for m, b in zip(maps, gt_boxes, strict=True)]
    return _best_threshold(hits, thresholds)


def wsol_of_volumes(volumes: Iterable, gt_boxes: Iterable[ArrayLike], members: ArrayLike,
                    thresholds: ArrayLike = DEFAULT_THRESHOLDS,
                    iou_threshold: float = 0.5) -> dict[str, float]:
    """:func:`wsol_evaluation` of one synset's maps (rows ``members``) from a stream of
    :class:`convis_grid.RankVolume`, each image's original-pixel ``gt_boxes`` moved into the frame
    its map covers (:func:`boxes_in_frame`). One volume and one map in memory at a time."""
    thresholds = np.atleast_1d(np.asarray(thresholds, dtype=np.float64))
    hits = [box_hits(volume.saliency(members), boxes_in_frame(boxes, volume.source_shape, volume.resize),
                     thresholds, iou_threshold)
            for volume, boxes in zip(volumes, gt_boxes, strict=True)]
    return _best_threshold(hits, thresholds)


def _best_threshold(hits: list[np.ndarray], thresholds: np.ndarray) -> dict[str, float]:
    """MaxBoxAcc, its (lowest) threshold and the image count from per-image hits ``[T]``."""
    if not hits:
        raise ValueError("BoxAcc needs at least one image")
    curve = 100.0 * np.stack(hits).mean(axis=0)
    best = int(np.argmax(curve))
    return {"n_images": len(hits), "max_box_acc": float(curve[best]),
            "threshold": float(thresholds[best])}
