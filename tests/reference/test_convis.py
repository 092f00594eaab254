"""ConVis ranks and maps against re-derivations of the official code.

Reference: github.com/loris2222/Concept-Visualization at commit 14c7414 (files named below).
The functions here are written from reading that code, step by step, in plain numpy loops;
none of them calls the library code they check.

What the official map does (generate_heatmap.py):

- ``load_opt_image`` (l. 131-137): centre crop (``pil_centercrop``, l. 38-45: the longer
  side loses floor(excess/2) before, ceil(excess/2) after), then ``resize((224, 224))``.
- ``grid_heatmap`` (l. 256-313): ``pad_opt_image(128, noise_image=True)`` (l. 139-146) puts
  the image on a canvas of uniform noise 128 px wider on every side; for the large (128)
  and then the small (64) side, every canvas position ``x, y in range(0, side_of_canvas,
  16)`` is a patch with top-left ``(x, y)``; its rank (``compute_rank``) is added to
  ``accumulator[y:y+size, x:x+size]`` (l. 289, 303). The map is the accumulator cut back to
  the image (l. 307), min-max normalised (l. 308) and flipped (l. 310: a rank is a
  position, 0 = best).
- ``compute_rank`` (l. 238-248): the similarities to *every* vocabulary definition, the
  0-based position of each in descending order (``argsort(flip(argsort(sim)))``), and the
  smallest position over the concept's subtree (``leaves_idxs``, l. 446-448: the synset
  and all its hyponyms in the vocabulary).

The library's ``padding="noise"`` grid is this official grid. Two differences are by design
(docs/methods.md): the official code ranks each patch on its own, where the contract ranks the
mean of a location's two patch embeddings; the official sum equals the contract's mean
because every image pixel is covered by the same number of patches when the stride divides
both sides. The checks below therefore give every patch of a location the location's rank,
which is exactly the contract's ``r_ij``.

The library's default grid (``padding="none"``) is the paper's Algorithm 1 as docs/methods.md
states it, re-derived below in a plain loop (``paper_heatmap``): every location ``(i, j)`` on
a grid of the stride, the last row and column included, the patches ``x[j:j+s, i:i+s]`` of
every size ``s`` sharing the top-left corner, all inside the image, and each pixel the mean
of ``r`` over the patches that contain it.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neuron_concepts import convis_eval, convis_grid, convis_volume, data

# ----------------------------------------------------------------------------- references


def official_position(similarities: np.ndarray) -> np.ndarray:
    """generate_heatmap.py l. 246: each synset's 0-based position in descending order."""
    descending = np.argsort(similarities)[::-1]
    return np.argsort(descending)


def official_rank(similarities: np.ndarray, subtree: list[int]) -> int:
    """generate_heatmap.py l. 247-248: the best (smallest) position over the subtree."""
    return int(official_position(similarities)[subtree].min())


def cosines(images: np.ndarray, texts: np.ndarray) -> np.ndarray:
    """Both normalised (l. 35, 97, 170), then dot products: ``[N, S]``."""
    a = images / np.linalg.norm(images, axis=-1, keepdims=True)
    b = texts / np.linalg.norm(texts, axis=-1, keepdims=True)
    return a @ b.T


def official_grid_heatmap(rank_at, height: int, width: int, sizes=(128, 64), stride: int = 16) -> np.ndarray:
    """generate_heatmap.py l. 256-313 for an image of ``height x width``.

    ``rank_at(x, y, size)``: the rank (a position, lower = better) of the patch whose
    top-left corner is ``(x, y)`` on the padded canvas. Padding = the first (largest) size.
    """
    pad = sizes[0]
    accumulator = np.zeros((height + 2 * pad, width + 2 * pad))
    for size in sizes:
        for y in range(0, accumulator.shape[0], stride):
            for x in range(0, accumulator.shape[1], stride):
                accumulator[y:y + size, x:x + size] += rank_at(x, y, size)
    cut = accumulator[pad:-pad, pad:-pad]
    cut = (cut - cut.min()) / (cut.max() - cut.min())
    return 1 - cut


def paper_heatmap(rank_at, height: int, width: int, sizes=(64, 128), stride: int = 16) -> np.ndarray:
    """The paper's Algorithm 1 (docs/methods.md) for an image of ``height x width``.

    ``rank_at(i, j)``: ``r_ij`` of the location whose patches have the top-left corner
    ``(i, j)`` (column, row) in image coordinates.
    """
    largest = max(sizes)

    def corners(side: int) -> list[int]:
        # stride 16 up to the last corner that keeps the patch inside, then that corner itself
        found = list(range(0, side - largest + 1, stride))
        return found if found[-1] == side - largest else found + [side - largest]

    total = np.zeros((height, width))
    count = np.zeros((height, width))
    for j in corners(height):
        for i in corners(width):
            r = rank_at(i, j)
            for size in sizes:
                total[j:j + size, i:i + size] += r  # x[j:j+size, i:i+size]
                count[j:j + size, i:i + size] += 1
    assert count.min() > 0
    return total / count


def location_of(boxes: np.ndarray) -> dict[tuple[int, int], int]:
    """Our locations keyed by their top-left corner (image coordinates)."""
    return {(int(b[0, 0]), int(b[0, 1])): k for k, b in enumerate(boxes)}


# ----------------------------------------------------------------------------- ranks


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_max_rank_sim_is_the_official_best_position_without_ties(seed):
    gen = np.random.default_rng(seed)
    images, texts = gen.standard_normal((6, 16)), gen.standard_normal((40, 16))
    subtree = sorted(gen.choice(40, size=5, replace=False).tolist())
    z = cosines(images, texts)
    ours = convis_volume.max_rank_sim(images, texts, subtree).numpy()
    # No ties: |{s' : z(s') < z(s)}| = |T| - 1 - position(s), so the best rank is the
    # smallest position.
    expected = [(len(texts) - 1 - official_rank(z[n], subtree)) / len(texts) for n in range(len(images))]
    np.testing.assert_allclose(ours, expected, atol=1e-6)
    np.testing.assert_allclose(convis_volume.rank_sim(images[0], texts).numpy(),
                               (len(texts) - 1 - official_position(z[0])) / len(texts), atol=1e-6)


def test_tied_synsets_get_the_lower_rank_the_official_order_may_not():
    # Three definitions at the same cosine: the official argsort puts them in some order;
    # the paper's strict count gives all three the lowest of their positions.
    texts = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 2.0], [0.0, 3.0], [-1.0, 0.0]])
    image = np.array([0.6, 0.8])
    z = cosines(image[None], texts)[0]
    positions = official_position(z)[[1, 2, 3]]
    assert sorted(positions.tolist()) == [0, 1, 2]  # tied on top, in argsort's order
    ours = convis_volume.rank_sim(image, texts).numpy()
    np.testing.assert_allclose(ours[[1, 2, 3]], 2 / 5)  # above s0 and s4 only
    # = the official value for the worst of the tied positions
    assert ours[1] == pytest.approx((len(texts) - 1 - positions.max()) / len(texts))
    assert convis_volume.max_rank_sim(image, texts, [0, 2]) == pytest.approx(2 / 5)


# ----------------------------------------------------------------------------- maps


@pytest.mark.parametrize("height, width, sizes, stride", [
    (224, 224, (64, 128), 16),  # the official configuration
    (37, 52, (8, 16), 4),       # native sizes that are no multiple of the stride
    (20, 20, (8, 16), 8),
    (9, 30, (4, 16), 4),        # an image smaller than the large patch
])
def test_map_equals_the_official_accumulation_of_location_ranks(height, width, sizes, stride):
    """Our grid, aggregation and edges against the official loop, with one rank per location."""
    gen = np.random.default_rng(height * width)
    boxes = convis_grid.patch_grid(height, width, sizes, stride, padding="noise")
    n_synsets = 50
    counts = gen.integers(0, n_synsets, size=(len(boxes), n_synsets)).astype(np.uint16)
    members = [3, 7, 11]
    where = location_of(boxes)
    pad = max(sizes)
    best = counts[:, members].max(axis=1)

    def rank_at(x: int, y: int, size: int) -> float:
        # A canvas position our grid leaves out must not touch the image; give it a rank
        # that would show if it did.
        k = where.get((x - pad, y - pad))
        if k is None:
            assert x - pad >= width or y - pad >= height or x - pad + size <= 0 or y - pad + size <= 0
            return 1e9
        return n_synsets - 1 - best[k]  # a position: lower is better

    reference = official_grid_heatmap(rank_at, height, width, sizes=tuple(sorted(sizes, reverse=True)),
                                      stride=stride)
    ours = convis_eval.normalize_map(convis_grid.saliency_map(counts, boxes, members, (height, width)))
    np.testing.assert_allclose(ours, reference, atol=1e-5)


def test_official_sum_is_not_a_mean_when_the_stride_does_not_divide_the_sides():
    """Why the contract averages: with sides that are no multiple of the stride the official
    sum weighs pixels by how many patches cover them, which the mean does not."""
    height, width, sizes, stride = 30, 30, (6, 16), 4
    boxes = convis_grid.patch_grid(height, width, sizes, stride, padding="noise")
    ones = convis_grid.saliency_map(np.ones((len(boxes), 2), np.uint16), boxes, [0], (height, width))
    assert np.ptp(ones) == 0  # the mean of a constant is that constant everywhere
    covering = np.zeros((height, width))
    for x0, y0, x1, y1 in boxes.reshape(-1, 4):
        covering[max(y0, 0):max(y1, 0), max(x0, 0):max(x1, 0)] += 1
    assert np.ptp(covering) > 0  # ... while the official sum of ones is not flat


def test_rank_volume_map_equals_the_official_map_of_its_location_embeddings():
    """End to end from stored location embeddings: official positions of every location
    against the full vocabulary, the official loop, and our volume's map."""
    gen = np.random.default_rng(7)
    height, width, sizes, stride = 48, 40, (16, 32), 8
    boxes = convis_grid.patch_grid(height, width, sizes, stride, padding="noise")
    location_emb = gen.standard_normal((len(boxes), 12)).astype(np.float32)
    texts = gen.standard_normal((30, 12)).astype(np.float32)
    volume = convis_grid.RankVolume(convis_volume.rank_counts(torch.from_numpy(location_emb), texts).numpy().astype(np.uint16),
                               boxes, (height, width), location_emb.astype(np.float16))
    assert volume.padding == "noise"  # read from the boxes
    subtree = [2, 9, 21]
    z = cosines(location_emb.astype(np.float64), texts.astype(np.float64))
    where = location_of(boxes)

    def rank_at(x: int, y: int, size: int) -> float:
        k = where.get((x - 32, y - 32))
        return 1e9 if k is None else official_rank(z[k], subtree)

    reference = official_grid_heatmap(rank_at, height, width, sizes=(32, 16), stride=stride)
    np.testing.assert_allclose(convis_eval.normalize_map(volume.saliency(subtree)), reference, atol=1e-5)


@pytest.mark.parametrize("height, width, sizes, stride", [
    (224, 224, (64, 128), 16),  # the stride lands on the last corner (96)
    (300, 451, (64, 128), 16),  # chelsea: last corners 172 and 323, off the stride
    (300, 451, (64, 128), 32),
    (37, 52, (8, 16), 4),
    (16, 30, (4, 16), 8),       # one row of locations: the image is exactly one large patch high
])
def test_map_equals_the_papers_algorithm_on_the_valid_grid(height, width, sizes, stride):
    """The default grid: exactly the paper's locations, and its map the paper's pixel means."""
    gen = np.random.default_rng(height + width)
    boxes = convis_grid.patch_grid(height, width, sizes, stride)
    n_synsets = 40
    counts = gen.integers(0, n_synsets, size=(len(boxes), n_synsets)).astype(np.uint16)
    members = [0, 5, 17]
    where = location_of(boxes)
    best = counts[:, members].max(axis=1) / n_synsets
    seen = []

    def rank_at(i: int, j: int) -> float:
        seen.append((i, j))
        return best[where[(i, j)]]  # a KeyError: the paper's location is missing

    reference = paper_heatmap(rank_at, height, width, sizes, stride)
    assert sorted(seen) == sorted(where)  # no location beyond the paper's
    ours = convis_grid.saliency_map(counts, boxes, members, (height, width))
    np.testing.assert_allclose(ours, reference, rtol=1e-6)
    assert convis_grid.inside_locations(boxes, (height, width)).all()


def test_centre_crop_matches_the_official_pil_centercrop():
    def official_crop(w: int, h: int) -> tuple[int, int, int, int]:
        # generate_heatmap.py l. 38-45
        cx = w - h if w > h else 0
        cy = h - w if h > w else 0
        return (int(np.floor(cx / 2)), int(np.floor(cy / 2)), w - int(np.ceil(cx / 2)), h - int(np.ceil(cy / 2)))

    for w, h in [(500, 375), (375, 500), (224, 224), (301, 200), (200, 301), (1, 2)]:
        assert data.center_box(w, h) == official_crop(w, h)
