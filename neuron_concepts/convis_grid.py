"""ConVis patch grids, the coverage average that turns location scores into a map, and
the :class:`RankVolume` format.

Saliency (the paper's Algorithm 1): at every location ``(i, j)`` of a grid of stride 16, a
64-px patch ``S`` and a 128-px patch ``L`` share the top-left corner ``(i, j)``; the
location's score is ``r_ij = max_rank_sim(e_ij, s)`` (:mod:`neuron_concepts.convis_volume`).
A pixel's value is the mean of ``r`` over the patches that contain it. Two grids
(``padding``):

- ``"none"`` (default, the paper): every valid location, corners ``0, stride, 2 stride, ...``
  up to ``side - largest`` and that last corner itself when the stride does not land on it
  (the last row and column), so every patch lies inside the image, which must be at least
  as large as the largest patch;
- ``"noise"`` (the official code, generate_heatmap.py ``grid_heatmap``/``pad_opt_image``):
  the image padded by the largest patch with uniform noise on every side, and every
  location whose large patch reaches into the image; at stride 16, 2.5 to 4.5 times the
  CLIP work at native resolution (9 times at 224 px), and many patches mostly noise.

The rank of every synset at every location is stored once (:class:`RankVolume`); the map of
any synset is then a max over its members' columns and a coverage average
(:func:`saliency_map`), with no CLIP call. Numpy only (a tensor argument is accepted, torch
is never imported), so :mod:`neuron_concepts.io` reads and writes volumes without torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

from . import lazy
from .errors import InputDataError

if TYPE_CHECKING:
    import torch

DEFAULT_SIZES = (64, 128)
DEFAULT_STRIDE = 16
DEFAULT_PADDING = "none"
PADDINGS = ("none", "noise")  # the paper's valid locations; the official noise-padded grid


def check_padding(padding: str) -> str:
    """``padding`` itself when it names a grid (:data:`PADDINGS`); a ValueError otherwise."""
    if padding not in PADDINGS:
        raise ValueError(f"padding must be one of {PADDINGS} (convis.padding), got {padding!r}")
    return padding


def check_fits(height: int, width: int, largest: int) -> None:
    """An :class:`InputDataError` when an image is smaller than the largest patch.

    The default grid (``padding="none"``) holds only patches inside the image, so an image
    side shorter than the largest patch leaves no location at all.
    """
    if min(height, width) < largest:
        raise InputDataError(
            f"image of {width} x {height} px (width x height) is smaller than the largest patch "
            f"({largest} px), so no {largest}-px patch fits inside it (convis.padding: none): "
            f"set convis.resize to a side of at least {largest}, use convis.patch_sizes of at "
            f"most {min(height, width)} px, or set convis.padding: noise (the official code's "
            "noise-padded grid)")


def grid_starts(length: int, largest: int, stride: int, padding: str = DEFAULT_PADDING) -> np.ndarray:
    """Top-left offsets of the grid along one image side of ``length`` px: int64 ``[n]``.

    ``padding="none"`` (the paper's Algorithm 1): every offset whose ``largest``-px patch
    lies inside the side, ``0, stride, 2 stride, ...`` up to ``length - largest``, plus
    ``length - largest`` itself when the stride does not land on it (the last row or
    column); e.g. ``length=100, largest=64, stride=16``: 0, 16, 32, 36. A side shorter than
    ``largest`` is an :class:`InputDataError`.

    ``padding="noise"`` (the official code): the image is padded by ``largest`` px on every
    side and the grid slides from the padded corner at ``stride`` (generate_heatmap.py,
    ``grid_heatmap``), so the offsets in image coordinates are ``-largest + k * stride``.
    Kept: every offset whose ``largest``-px patch reaches into the image (``-largest <
    start < length``), the last row and column included; the others see only padding.
    """
    check_padding(padding)
    if stride < 1 or largest < 1:
        raise ValueError(f"patch size {largest} and stride {stride} must be positive")
    if stride > largest:
        raise ValueError(f"stride {stride} exceeds the largest patch ({largest} px), which would "
                         "leave pixels no patch covers: use a stride of at most the largest patch")
    if padding == "noise":
        return np.arange(-largest + stride, length, stride, dtype=np.int64)
    if length < largest:
        raise InputDataError(f"an image side of {length} px is shorter than the largest patch "
                             f"({largest} px): no patch fits inside it (convis.padding: none)")
    last = length - largest
    starts = np.arange(0, last + 1, stride, dtype=np.int64)
    # The last row/column: without it the far edge would be covered by fewer patches, or none.
    return starts if starts[-1] == last else np.append(starts, last)


def patch_grid(height: int, width: int, sizes: Sequence[int] = DEFAULT_SIZES,
               stride: int = DEFAULT_STRIDE, padding: str = DEFAULT_PADDING) -> np.ndarray:
    """Patch boxes of every grid location: int64 ``[L, len(sizes), 4]`` as ``(x0, y0, x1, y1)``.

    Boxes are half-open pixel ranges (``x0 <= x < x1``) in image coordinates. Every patch of
    a location shares its top-left corner ``(x0, y0)`` = ``(i, j)``, so the small patch is
    the top-left part of the large one (the paper's ``S(i, j)`` and ``L(i, j)``). Corners
    come from :func:`grid_starts` along both sides: with ``padding="none"`` every box lies
    inside the image (an image smaller than the largest patch is an
    :class:`InputDataError`, :func:`check_fits`); with ``"noise"`` boxes may reach past any
    image edge (by less than the largest side) and
    :func:`neuron_concepts.convis_volume.rank_volume` fills the outside with noise.
    Locations are in row-major order (y, then x).
    """
    check_padding(padding)
    if min(sizes) < 1:
        raise ValueError(f"patch sizes {tuple(sizes)} must be positive")
    largest = max(sizes)
    if padding == "none":
        check_fits(height, width, largest)
    ys = grid_starts(height, largest, stride, padding)
    xs = grid_starts(width, largest, stride, padding)
    y0, x0 = (a.ravel() for a in np.meshgrid(ys, xs, indexing="ij"))
    boxes = np.empty((len(y0), len(sizes), 4), dtype=np.int64)
    for k, size in enumerate(sizes):
        boxes[:, k] = np.stack([x0, y0, x0 + size, y0 + size], 1)
    return boxes


def inside_locations(boxes: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Whether every patch of a location lies inside an image of ``shape`` = (H, W): bool ``[L]``."""
    boxes = np.asarray(boxes).reshape(len(boxes), -1, 4)
    height, width = shape
    return ((boxes[..., 0] >= 0) & (boxes[..., 1] >= 0)
            & (boxes[..., 2] <= width) & (boxes[..., 3] <= height)).all(axis=1)


def coverage_average(values: ArrayLike, boxes: np.ndarray, shape: tuple[int, int],
                     divisor: float = 1.0) -> np.ndarray:
    """Per pixel, the mean of ``values`` over exactly the patches that cover it: float32 ``[H, W]``.

    ``values[l]`` belongs to location ``l``, whose patches are ``boxes[l]`` (``[L, K, 4]``,
    or ``[L, 4]`` for one patch per location; parts outside the image are ignored). Every
    patch counts once, so a pixel inside both patches of a location counts that location
    twice: the official code adds the score over the large patch and again over the small
    one (generate_heatmap.py, ``grid_heatmap``). Built from 2-D difference arrays (a
    summed-area table), no loop over pixels. Integer values (rank counts) are summed exactly
    in int64, so equal inputs give exactly equal pixels; floats leave ~1e-16 residues. The
    means are divided by ``divisor`` (``S``, to turn counts into ranks) before the float32
    cast. Pixels no patch covers are 0.
    """
    height, width = shape
    boxes = np.asarray(boxes, dtype=np.int64)
    per_location = boxes.shape[1] if boxes.ndim == 3 else 1
    flat = boxes.reshape(-1, 4)
    # Clip to the image: a patch's score lands only on the pixels of the image it holds.
    flat = np.stack([flat[:, 0].clip(0, width), flat[:, 1].clip(0, height),
                     flat[:, 2].clip(0, width), flat[:, 3].clip(0, height)], axis=1)
    values = np.asarray(values).ravel()
    exact = np.issubdtype(values.dtype, np.integer) or values.dtype == bool
    weights = np.repeat(values.astype(np.int64 if exact else np.float64), per_location)

    def box_sum(w: np.ndarray) -> np.ndarray:
        diff = np.zeros((height + 1, width + 1), dtype=w.dtype)
        x0, y0, x1, y1 = flat.T
        np.add.at(diff, (y0, x0), w)
        np.add.at(diff, (y0, x1), -w)
        np.add.at(diff, (y1, x0), -w)
        np.add.at(diff, (y1, x1), w)
        return diff.cumsum(0).cumsum(1)[:height, :width]

    sums = box_sum(weights)
    counts = box_sum(np.ones(len(weights), dtype=np.int64))
    out = np.divide(sums, counts * float(divisor), out=np.zeros(sums.shape), where=counts > 0)
    return out.astype(np.float32)


def saliency_map(ranks: ArrayLike | torch.Tensor, boxes: np.ndarray, members: ArrayLike,
                 shape: tuple[int, int]) -> np.ndarray:
    """ConVis map of one synset: float32 ``[H, W]`` in ``[0, 1)``, ``shape = (H, W)``.

    ``ranks``: ``[L, S]`` ranks (float) or rank counts (integer, divided by ``S``) of every
    location; ``members``: the synset's rows (:func:`neuron_concepts.convis_vocabulary.hyponym_members`). ``r_l`` = max over
    members of the location's ranks = ``max_rank_sim(e_l, s)``; each pixel gets the mean
    of ``r`` over the patches that cover it (:func:`coverage_average`).
    """
    index = np.asarray(members, dtype=np.int64)
    ranks = ranks.cpu().numpy() if lazy.is_tensor(ranks) else np.asarray(ranks)
    best = ranks[:, index].max(axis=1)
    if np.issubdtype(ranks.dtype, np.integer):  # exact sums of counts, one division at the end
        return coverage_average(best, boxes, shape, divisor=ranks.shape[1])
    return coverage_average(best, boxes, shape)


@dataclass
class RankVolume:
    """Ranks of every vocabulary synset at every patch location of one image.

    ``rank_counts``: ``[L, S]`` unsigned ints, ``|{s' : z < z(e_l, s)}|`` (exact; the rank
    is ``count / S``; uint16 is the size of float16 without its rounding). ``boxes``:
    ``[L, K, 4]`` from :func:`patch_grid`. ``shape``: (height, width) of the image the grid
    covers, which is the map's shape. ``location_emb``: float16 ``[L, D]`` normalised
    ``e_l``, to re-rank against another vocabulary without CLIP. ``source_shape``: (height,
    width) of the original image; ``resize``: the side of the centre crop the grid covers
    (:func:`neuron_concepts.convis_volume.frame_image`), None when it covers the original image. ``padding``: the grid
    (:func:`grid_starts`), ``"none"`` or ``"noise"``; None = read from the boxes (a noise
    grid always has boxes outside the image), which is also how volumes written before
    the field existed are read.
    """

    rank_counts: np.ndarray
    boxes: np.ndarray
    shape: tuple[int, int]
    location_emb: np.ndarray
    source_shape: tuple[int, int] | None = None
    resize: int | None = None
    padding: str | None = None

    def __post_init__(self) -> None:
        if self.source_shape is None:
            self.source_shape = tuple(self.shape)
        if self.padding is None:
            self.padding = "none" if self.inside().all() else "noise"
        check_padding(self.padding)

    @property
    def ranks(self) -> np.ndarray:
        """Float32 ranks ``[L, S]`` in [0, 1)."""
        return (self.rank_counts.astype(np.float64) / self.rank_counts.shape[1]).astype(np.float32)

    def saliency(self, members: ArrayLike) -> np.ndarray:
        """:func:`saliency_map` of the synset whose rows are ``members``."""
        return saliency_map(self.rank_counts, self.boxes, members, self.shape)

    def inside(self) -> np.ndarray:
        """:func:`inside_locations`: the locations whose patches hold no padding (all of
        them with ``padding="none"``)."""
        return inside_locations(self.boxes, self.shape)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The rank-volume artifact's arrays (``resize`` 0 = none); written by
        :func:`neuron_concepts.io.save_rank_volume`."""
        return {"rank_counts": self.rank_counts, "boxes": self.boxes,
                "shape": np.asarray(self.shape, dtype=np.int64), "location_emb": self.location_emb,
                "source_shape": np.asarray(self.source_shape, dtype=np.int64),
                "resize": np.asarray(self.resize or 0, dtype=np.int64),
                "padding": np.asarray(self.padding, dtype=str)}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> "RankVolume":
        """Inverse of :meth:`to_arrays`; :func:`neuron_concepts.io.load_rank_volume` reads
        and checks the file."""
        shape = tuple(int(v) for v in arrays["shape"])
        source = arrays.get("source_shape")
        resize = int(arrays["resize"]) if "resize" in arrays else 0
        # No "padding" array (volumes written before it): __post_init__ reads it from the boxes.
        padding = str(arrays["padding"]) if "padding" in arrays else None
        return cls(rank_counts=arrays["rank_counts"], boxes=arrays["boxes"], shape=shape,
                   location_emb=arrays["location_emb"],
                   source_shape=shape if source is None else tuple(int(v) for v in source),
                   resize=resize or None, padding=padding)
