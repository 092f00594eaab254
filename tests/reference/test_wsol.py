"""WSOL MaxBoxAcc against a re-derivation of the official evaluation.

Reference: github.com/loris2222/Concept-Visualization at commit 14c7414, wsol_evaluation.py
and the helpers it imports from generate_heatmap.py. Written from reading that code, in
plain loops; nothing here calls the library code it checks. What the official code does:

- maps are min-max normalised where they are made (generate_heatmap.py l. 308, 369);
- ``bbox_from_map`` (wsol_evaluation.py l. 131-143): ``map >= t`` (l. 133-134), the
  largest connected component (``getLargestCC``, generate_heatmap.py l. 250-254: skimage
  ``label(..., connectivity=1)``, i.e. 4-connected, the first label on equal sizes), its
  first/last row and column (``np_bbox2``, l. 50-56) mapped by ``int((i + 0.5) * ratio)``
  with ``ratio = 224 / side`` = 1 for the 224-px maps, as ``(x, y, w = c1 - c0, h = r1 - r0)``;
- ``correct_bbox`` (l. 46-69) moves the CUB box ``(x, y, w, h)`` into the centre crop
  and scales it to 224 px, truncating x, y, w and h to integers each;
- ``bb_intersection_over_union`` (l. 74-98): continuous-coordinate IoU, 0 without overlap;
- the loop (l. 192-203): ``t in np.arange(0, 1, 0.01)``, a hit when IoU ``> 0.5``, BoxAcc
  the hit fraction, MaxBoxAcc the largest. One ground-truth box per image (CUB).

Our ``box_hits`` counts IoU ``>= 0.5`` (docs/methods.md); the checks below keep IoUs away from
exactly 0.5 and one test pins that single difference.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage
from skimage.measure import label

from neuron_concepts import convis_eval as ev

THRESHOLDS = np.arange(0, 1, 0.01)


# ----------------------------------------------------------------------------- references


def official_normalise(saliency: np.ndarray) -> np.ndarray:
    """generate_heatmap.py l. 308: min-max; a constant map divides 0 by 0 (NaN)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return (saliency - saliency.min()) / (saliency.max() - saliency.min())


def official_box(saliency: np.ndarray, threshold: float) -> tuple[float, float, float, float]:
    """wsol_evaluation.py l. 131-143 (with getLargestCC and np_bbox2): ``(x, y, w, h)``."""
    binary = saliency.copy()
    binary[binary < threshold] = 0
    binary[binary >= threshold] = 1
    # NaN (a constant map) survives both assignments and is nonzero: foreground.
    foreground = np.where(np.isnan(binary), 1, binary).astype(int)
    labels = label(foreground, connectivity=1)
    assert labels.max() != 0
    largest = labels == np.argmax(np.bincount(labels.flat)[1:]) + 1
    rows, cols = np.any(largest, axis=1), np.any(largest, axis=0)
    rmin, rmax = np.where(rows)[0][[0, -1]]
    cmin, cmax = np.where(cols)[0][[0, -1]]
    ratio = 224 / largest.shape[0] if largest.shape[0] == 224 else 1.0  # 1 for the official maps
    rmin, rmax, cmin, cmax = (int((v + 0.5) * ratio) for v in (rmin, rmax, cmin, cmax))
    return cmin, rmin, cmax - cmin, rmax - rmin


def official_iou(a: tuple, b: tuple) -> float:
    """wsol_evaluation.py l. 74-98 on ``(x, y, w, h)`` boxes."""
    ax0, ay0, ax1, ay1 = a[0], a[1], a[0] + a[2], a[1] + a[3]
    bx0, by0, bx1, by1 = b[0], b[1], b[0] + b[2], b[1] + b[3]
    inter = abs(max(min(ax1, bx1) - max(ax0, bx0), 0) * max(min(ay1, by1) - max(ay0, by0), 0))
    if inter == 0:
        return 0.0
    return inter / float(abs((ax1 - ax0) * (ay1 - ay0)) + abs((bx1 - bx0) * (by1 - by0)) - inter)


def official_correct_bbox(bbox: tuple, size: tuple[int, int], side: int = 224) -> list[int]:
    """wsol_evaluation.py l. 46-69: CUB ``(x, y, w, h)`` of a ``(w, h)`` image into the crop."""
    w, h = size
    shortest = min(w, h)
    excess_x, excess_y = (w - h if w > h else 0), (h - w if h > w else 0)
    out = [0.0, 0.0, 0.0, 0.0]
    for start, extent, excess in ((0, 2, excess_x), (1, 3, excess_y)):
        out[start] = bbox[start] - np.floor(excess / 2)
        out[extent] = bbox[extent] + (out[start] if out[start] < 0 else 0)
        out[start] = max(0, out[start])
        out[extent] = min(shortest - out[start], out[extent])
    return [int(v * side / shortest) for v in out]


def official_max_box_acc(maps: list[np.ndarray], gt_xywh: list[tuple]) -> tuple[float, np.ndarray]:
    """wsol_evaluation.py l. 192-203: MaxBoxAcc (a fraction) and the BoxAcc curve."""
    curve = []
    for t in THRESHOLDS:
        ok = sum(official_iou(gt, official_box(official_normalise(m), t)) > 0.5
                 for m, gt in zip(maps, gt_xywh))
        curve.append(ok / len(maps))
    return max(curve), np.array(curve)


# ----------------------------------------------------------------------------- inputs


def smooth_maps(seed: int, n: int, shape=(224, 224), sigma: float = 12.0) -> list[np.ndarray]:
    """Blobby random maps: thresholds cut them into several components."""
    gen = np.random.default_rng(seed)
    return [ndimage.gaussian_filter(gen.standard_normal(shape), sigma) for _ in range(n)]


def random_boxes(seed: int, n: int, side: int = 224) -> list[tuple[float, float, float, float]]:
    """CUB-like ``(x, y, w, h)`` with fractional corners, so no IoU is exactly 0.5."""
    gen = np.random.default_rng(seed)
    boxes = []
    for _ in range(n):
        w, h = gen.uniform(20, side * 0.8, size=2)
        x, y = gen.uniform(0, side - w), gen.uniform(0, side - h)
        boxes.append((x + 0.37, y + 0.29, w, h))
    return boxes


def xyxy(box: tuple) -> list[float]:
    return [box[0], box[1], box[0] + box[2], box[1] + box[3]]


# ----------------------------------------------------------------------------- checks


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_max_box_acc_equals_the_official_loop(seed):
    maps = smooth_maps(seed, 12)
    gt = random_boxes(seed + 100, 12)
    # Aim half the boxes at each map's own largest blob so hits happen at some thresholds.
    for k in range(0, 12, 2):
        x, y, w, h = official_box(official_normalise(maps[k]), 0.6)
        gt[k] = (x + 0.4, y - 0.3, w * 1.1 + 1, h * 0.95 + 1)
    reference, curve = official_max_box_acc(maps, gt)
    ours = ev.box_accuracy_curve(maps, [[xyxy(b)] for b in gt]) / 100
    np.testing.assert_allclose(ours, curve, atol=1e-5)
    assert ev.max_box_acc(maps, [[xyxy(b)] for b in gt]) / 100 == pytest.approx(reference, abs=1e-5)
    assert 0 < reference < 1  # a non-trivial case


def test_one_image_and_the_box_at_every_threshold():
    saliency = smooth_maps(5, 1)[0]
    normalised = official_normalise(saliency)
    for t in THRESHOLDS:
        x, y, w, h = official_box(normalised, t)
        assert ev.largest_component_box(ev.normalize_map(saliency) >= t).tolist() == [x, y, x + w, y + h]
    gt = random_boxes(9, 1)
    assert ev.max_box_acc([saliency], [[xyxy(gt[0])]]) / 100 == official_max_box_acc([saliency], gt)[0]


def test_several_components_equal_sizes_and_diagonals():
    saliency = np.zeros((224, 224))
    saliency[10:30, 10:30] = 0.9      # 400 px
    saliency[100:120, 150:170] = 0.9  # 400 px, same size, later in raster order
    saliency[200:205, 0:100] = 0.93   # 500 px, brighter
    for i in range(30):
        saliency[130 + i, 30 + i] = 1.0  # a diagonal: 30 px under 8-connectivity, 30 x 1 px under 4
    saliency[180:182, 150:155] = 1.0     # 10 px
    for t in [0.5, 0.92, 0.95]:
        x, y, w, h = official_box(official_normalise(saliency), t)
        assert ev.largest_component_box(ev.normalize_map(saliency) >= t).tolist() == [x, y, x + w, y + h]
    # at 0.92 the 500-px bar; at 0.95 the 10-px block, since diagonal pixels do not connect
    assert official_box(official_normalise(saliency), 0.92) == (0, 200, 99, 4)
    assert official_box(official_normalise(saliency), 0.95) == (150, 180, 4, 1)
    # without the bar and above the diagonal's level, the tie goes to the first square in raster order
    saliency[200:205, 0:100] = 0
    saliency[saliency == 1.0] = 0.5
    assert official_box(official_normalise(saliency), 0.95) == (10, 10, 19, 19)
    assert ev.largest_component_box(ev.normalize_map(saliency) >= 0.95).tolist() == [10, 10, 29, 29]
    gt = [(10.2, 10.1, 19.0, 19.5)]
    assert ev.max_box_acc([saliency], [[xyxy(gt[0])]]) / 100 == official_max_box_acc([saliency], gt)[0]


def test_all_equal_maps_box_the_whole_image_at_every_threshold():
    flat = np.full((224, 224), 0.25)
    assert official_box(official_normalise(flat), 0.7) == (0, 0, 223, 223)
    whole, part = (0.0, 0.0, 224.0, 224.0), (0.0, 0.0, 100.0, 224.0)
    for gt in (whole, part):
        reference, curve = official_max_box_acc([flat], [gt])
        np.testing.assert_allclose(ev.box_accuracy_curve([flat], [[xyxy(gt)]]) / 100, curve)
    assert official_max_box_acc([flat], [whole])[1].all()  # a hit at every threshold


def test_iou_exactly_one_half_is_the_one_difference():
    saliency = np.zeros((224, 224))
    saliency[0:101, 0:101] = 1.0  # box (0, 0, 100, 100): area 10,000
    gt = (0.0, 0.0, 100.0, 200.0)  # area 20,000, containing it: IoU exactly 0.5
    assert official_iou(gt, official_box(official_normalise(saliency), 0.5)) == 0.5
    assert official_max_box_acc([saliency], [gt])[0] == 0.0  # official: IoU > 0.5
    assert ev.max_box_acc([saliency], [[xyxy(gt)]]) == 100.0  # ours: IoU >= 0.5 (docs/methods.md)


@pytest.mark.parametrize("seed", [0, 1])
def test_boxes_in_frame_equal_the_official_correct_bbox(seed):
    gen = np.random.default_rng(seed)
    for _ in range(200):
        w, h = (int(v) for v in gen.integers(50, 600, size=2))
        bw, bh = gen.uniform(1, w), gen.uniform(1, h)
        bbox = (gen.uniform(0, w - bw), gen.uniform(0, h - bh), bw, bh)
        x, y, cw, ch = official_correct_bbox(bbox, (w, h))
        ours = ev.boxes_in_frame([xyxy(bbox)], (h, w), 224)[0]
        assert ours.tolist() == [x, y, x + cw, y + ch], (w, h, bbox)


def test_iou_equals_the_official_formula():
    gen = np.random.default_rng(3)
    for _ in range(300):
        a = (*gen.uniform(0, 100, 2), *gen.uniform(0, 60, 2))
        b = (*gen.uniform(0, 100, 2), *gen.uniform(0, 60, 2))
        assert ev.box_iou(xyxy(a), [xyxy(b)])[0] == pytest.approx(official_iou(b, a), abs=1e-12)
