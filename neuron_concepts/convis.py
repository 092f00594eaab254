"""ConVis (Giulivi & Boracchi): saliency maps for any WordNet synset through CLIP ranks.

A vocabulary ``T`` of noun synsets is embedded once, each synset by the CLIP text embedding
of its WordNet definition. For an image embedding ``x``:

- ``z(x, s) = cos(x, E_T(def(s)))``;
- ``rank_sim(x, s) = |{s' in T : z(x, s') < z(x, s)}| / |T|`` (strictly less: ties share
  the lower rank);
- ``max_rank_sim(x, s)`` = the largest ``rank_sim(x, s')`` over ``s`` and its hyponyms in ``T``.

Saliency (the paper's Algorithm 1): at every location ``(i, j)`` of a grid of stride 16, a
64-px patch ``S`` and a 128-px patch ``L`` share the top-left corner ``(i, j)``; the
location's embedding is ``e_ij = (E_I(S) + E_I(L)) / 2`` and its score
``r_ij = max_rank_sim(e_ij, s)``. A pixel's value is the mean of ``r`` over the patches that
contain it. Two grids (``padding``):

- ``"none"`` (default, the paper): every valid location, corners ``0, stride, 2 stride, ...``
  up to ``side - largest`` and that last corner itself when the stride does not land on it
  (the last row and column), so every patch lies inside the image, which must be at least
  as large as the largest patch;
- ``"noise"`` (the official code, generate_heatmap.py ``grid_heatmap``/``pad_opt_image``):
  the image padded by the largest patch with uniform noise on every side, and every
  location whose large patch reaches into the image; at stride 16, 2.5 to 4.5 times the
  CLIP work at native resolution (9 times at 224 px), and many patches mostly noise.

(The official loop ranks ``S`` and ``L`` on their own and adds both ranks; here, as in the
paper's formula, their embeddings are averaged.) The rank of every synset at every location
is computed once (:func:`rank_volume`); the map of any synset is then a max over its
members' columns and a coverage average (:func:`saliency_map`), with no further CLIP call.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from PIL import Image

from . import lazy, wordnet
from .data import center_box, imagenet_wnids
from .errors import InputDataError
from .similarity import as_tensor, normalize

# Imported on first use: the vocabulary, map and top-synset jobs never load torch.
torch = lazy.module("torch")
F = lazy.module("torch.nn.functional")
from .wordnet import is_wnid  # noqa: F401  (re-exported: the OOD stage checks its labels with convis.is_wnid)

DEFAULT_SIZES = (64, 128)
DEFAULT_STRIDE = 16
DEFAULT_PADDING = "none"
PADDINGS = ("none", "noise")  # the paper's valid locations; the official noise-padded grid
PRECISIONS = ("auto", "float32", "float16")  # the CLIP forward of the rank volumes (convis.precision)
DEFAULT_BATCH_SIZE = 256  # patches per CLIP forward (convis.batch_size)
RANK_CHUNK = 512  # locations ranked at a time: bounds the [locations, S] similarity block


# ----------------------------------------------------------------------------- vocabulary

def resolve_synsets(words: Sequence[str]) -> list:
    """NLTK noun synsets named by ``words``, in order, without repeats.

    Each entry is a synset name (``dog.n.01``: that synset only), an ImageNet id
    (``n02084071``: its synset) or a plain word (``dog``, ``hot dog``: all its noun senses),
    as :func:`neuron_concepts.wordnet.noun_senses` reads it. Raises
    :class:`InputDataError` listing every entry that names no noun synset.
    """
    found, unknown = [], []
    for word in words:
        senses = wordnet.noun_senses(word)
        if not senses:
            unknown.append(str(word).strip())
        found.extend(senses)
    if unknown:
        raise InputDataError(
            f"{len(unknown)} ConVis vocabulary entries name no WordNet noun synset: "
            f"{', '.join(map(repr, unknown[:20]))}{' ...' if len(unknown) > 20 else ''}. "
            "Use nouns, synset names like 'dog.n.01' or ImageNet ids like 'n02084071'.")
    return list(dict.fromkeys(found))


def build_vocabulary(words: Sequence[str] | None = None) -> pd.DataFrame:
    """The ConVis vocabulary: every noun synset on every hypernym path of ``words``' senses
    (instance senses left out, as the official code leaves them).

    ``words`` as in :func:`resolve_synsets`; default: the 1,000 ImageNet classes (1,860
    synsets). Columns: ``synset`` (name), ``lemma`` (first lemma, spaces for underscores),
    ``definition`` (the text CLIP embeds), ``parents`` (hypernym names, all inside the
    vocabulary since it is closed upwards), ``depth`` (shortest path to ``entity.n.01``),
    ``seed`` (whether ``words`` named the synset itself). Rows sorted by synset name, so
    the row index is a stable synset index.
    """
    # Instance senses (paris.n.01, nile.n.01) are left out, as the official graph leaves
    # them: it climbs .hypernyms() only, and they have instance hypernyms alone.
    seeds = [s for s in resolve_synsets(imagenet_wnids() if words is None else words)
             if not s.instance_hypernyms()]
    seed_set = set(seeds)
    rows = sorted(wordnet.hypernym_closure(seeds), key=lambda s: s.name())
    return pd.DataFrame({
        "synset": [s.name() for s in rows],
        "lemma": [s.lemma_names()[0].replace("_", " ") for s in rows],
        "definition": [s.definition() for s in rows],
        "parents": [sorted(p.name() for p in wordnet.hypernyms(s)) for s in rows],
        "depth": np.array([s.min_depth() for s in rows], dtype=np.int64),
        "seed": np.array([s in seed_set for s in rows]),
    })


def synset_index(vocab: pd.DataFrame, synset: str) -> int:
    """Row of ``synset`` (a name) in ``vocab``; a clear error when it is not there."""
    hits = np.flatnonzero(vocab["synset"].to_numpy() == synset)
    if len(hits) == 0:
        raise InputDataError(
            f"synset {synset!r} is not in the ConVis vocabulary ({len(vocab)} synsets): "
            "add a word under it to the vocabulary words")
    return int(hits[0])


def hyponym_members(vocab: pd.DataFrame, synset: str) -> np.ndarray:
    """Sorted vocabulary rows of ``synset`` and all its hyponyms (transitively) in ``vocab``.

    Follows the ``parents`` column downwards, so it sees exactly the hyponyms that made it
    into the vocabulary: the set ``max_rank_sim`` maximises over.
    """
    root = synset_index(vocab, synset)
    index = {name: i for i, name in enumerate(vocab["synset"])}
    children: list[list[int]] = [[] for _ in range(len(vocab))]
    for child, parents in enumerate(vocab["parents"]):
        for parent in parents:
            if parent in index:
                children[index[parent]].append(child)
    members, stack = {root}, [root]
    while stack:
        for child in children[stack.pop()]:
            if child not in members:
                members.add(child)
                stack.append(child)
    return np.array(sorted(members), dtype=np.int64)


# ----------------------------------------------------------------------------- ranks

def _on_device(x: ArrayLike | torch.Tensor, device: torch.device) -> torch.Tensor:
    return as_tensor(x).to(device)


def rank_counts(image_emb: ArrayLike | torch.Tensor,
                synset_emb: ArrayLike | torch.Tensor) -> torch.Tensor:
    """``|{s' : z(x, s') < z(x, s)}|`` for every image row and synset: int64 ``[B, S]``.

    One sort per row and a binary search (``O(S log S)``), not an ``S x S`` comparison.
    Inputs need not be normalised; the synsets move to the images' device.
    """
    images = normalize(torch.atleast_2d(as_tensor(image_emb)))
    synsets = normalize(torch.atleast_2d(_on_device(synset_emb, images.device)))
    z = images @ synsets.T
    ascending = z.sort(dim=1).values
    # side="left": the number of entries strictly below each value (ties share it).
    return torch.searchsorted(ascending, z.contiguous(), side="left")


def rank_sim(image_emb: ArrayLike | torch.Tensor,
             synset_emb: ArrayLike | torch.Tensor) -> torch.Tensor:
    """ConVis rank similarity: float32 ``[S]`` for one image ``[D]``, ``[B, S]`` for ``[B, D]``.

    ``rank_sim(x, s) = |{s' in T : z(x, s') < z(x, s)}| / |T|``, in ``[0, 1)``.
    """
    counts = rank_counts(image_emb, synset_emb)
    ranks = counts.to(torch.float32) / counts.shape[1]
    return ranks[0] if as_tensor(image_emb).dim() == 1 else ranks


def max_rank_sim(image_emb: ArrayLike | torch.Tensor, synset_emb: ArrayLike | torch.Tensor,
                 members: ArrayLike) -> float | torch.Tensor:
    """Max of :func:`rank_sim` over ``members`` (rows of a synset and its hyponyms).

    A float for one image ``[D]``; float32 ``[B]`` for ``[B, D]``.
    """
    ranks = torch.atleast_2d(rank_sim(image_emb, synset_emb))
    index = torch.as_tensor(np.asarray(members, dtype=np.int64), device=ranks.device)
    best = ranks[:, index].max(dim=1).values
    return float(best[0]) if as_tensor(image_emb).dim() == 1 else best


def _as_ranks(ranks: ArrayLike | torch.Tensor) -> np.ndarray:
    """Ranks in [0, 1) as float64 from float ranks or integer rank counts ``[..., S]``."""
    ranks = ranks.cpu().numpy() if lazy.is_tensor(ranks) else np.asarray(ranks)
    if np.issubdtype(ranks.dtype, np.integer):
        return ranks.astype(np.float64) / ranks.shape[-1]
    return ranks.astype(np.float64)


def top_synsets(ranks: ArrayLike | torch.Tensor, vocab: pd.DataFrame, n: int = 10,
                locations: ArrayLike | None = None) -> pd.DataFrame:
    """The ``n`` synsets an image scores highest on, by their own ``rank_sim``.

    ``ranks``: ``[S]`` of one image embedding, or ``[L, S]`` of its patch locations (then
    a synset's score is its best location: it is visible somewhere in the image). Integer
    rank counts are accepted. ``locations``: a bool ``[L]`` mask of the locations to
    consider (e.g. :meth:`RankVolume.inside`, so on a ``noise`` grid patches half made of
    padding do not name the image; on the default grid every location is inside); all when
    None or when it selects none. The synset's own rank is used, not ``max_rank_sim``, which
    is largest at the root of the hierarchy for every image. Ties keep vocabulary order.
    """
    scores = _as_ranks(ranks)
    if scores.ndim == 2:
        if locations is not None and np.asarray(locations, dtype=bool).any():
            scores = scores[np.asarray(locations, dtype=bool)]
        scores = scores.max(axis=0)
    if len(scores) != len(vocab):
        raise ValueError(f"ranks cover {len(scores)} synsets but the vocabulary has {len(vocab)}")
    order = np.argsort(-scores, kind="stable")[:n]
    table = vocab.iloc[order][["synset", "lemma", "definition"]].reset_index(drop=True)
    table.insert(0, "index", order)
    table["score"] = scores[order]
    return table


# ----------------------------------------------------------------------------- patches

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
    image edge (by less than the largest side) and :func:`rank_volume` fills the outside
    with noise. Locations are in row-major order (y, then x).
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
    location; ``members``: the synset's rows (:func:`hyponym_members`). ``r_l`` = max over
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
    (:func:`frame_image`), None when it covers the original image. ``padding``: the grid
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


# ----------------------------------------------------------------------------- image frame

def frame_image(image, resize: int | None = None):
    """The image (PIL, RGB) that the grid covers: ``image`` itself, or with ``resize`` its
    centred square crop resized to ``resize x resize`` (PIL bicubic).

    The official code maps a centre crop at 224 px (generate_heatmap.py, ``load_opt_image``:
    ``pil_centercrop`` then ``resize((224, 224))``, whose default filter is bicubic since
    Pillow 7); ``resize=None`` keeps the native resolution. The crop is
    :func:`neuron_concepts.data.center_box`, which splits the excess of the longer side as
    ``pil_centercrop`` does: ``floor(excess / 2)`` px before, ``ceil(excess / 2)`` after.
    """
    image = image.convert("RGB")
    if not resize:
        return image
    if resize < 1:
        raise ValueError(f"resize must be a positive side in pixels or None, got {resize}")
    crop = image.crop(center_box(image.width, image.height))
    return crop.resize((resize, resize), resample=Image.Resampling.BICUBIC)


def noise_padded(pixels: torch.Tensor, pad: int, seed: int = 0) -> torch.Tensor:
    """A uint8 ``[3, H, W]`` image inside a ``pad``-px border of uniform noise: ``[3, H + 2 pad, W + 2 pad]``.

    The official code pastes the image into a canvas of ``np.random.randint(0, 255)`` noise
    (values 0..254; generate_heatmap.py, ``pad_opt_image``), so what a patch holds outside
    the image is noise. Seeded, drawn on the CPU, so a volume is reproducible on any device.
    """
    channels, height, width = pixels.shape
    noise = np.random.default_rng(seed).integers(0, 255, size=(height + 2 * pad, width + 2 * pad, channels),
                                                 dtype=np.uint8)
    canvas = torch.from_numpy(noise).permute(2, 0, 1).contiguous().to(pixels.device)
    canvas[:, pad:pad + height, pad:pad + width] = pixels
    return canvas


@dataclass(frozen=True)
class InputSpec:
    """What CLIP's preprocessing does to a square crop: resize to ``size``, then normalise."""

    size: tuple[int, int]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: str = "bicubic"


def clip_input_spec(clip) -> InputSpec:
    """Input size, mean and std read from ``clip.preprocess`` (a torchvision Compose).

    For a square patch, CLIP's resize-shorter-side + center-crop is a plain resize to the
    input size, which :func:`rank_volume` does on the device for a whole batch at once.
    """
    from torchvision import transforms as T

    steps = getattr(clip.preprocess, "transforms", [clip.preprocess])
    size = mean = std = None
    interpolation = "bicubic"
    for step in steps:
        if isinstance(step, T.Resize):
            interpolation = step.interpolation.value
            if size is None:
                size = step.size
        elif isinstance(step, T.CenterCrop):
            size = step.size
        elif isinstance(step, T.Normalize):
            mean, std = tuple(step.mean), tuple(step.std)
    if size is None or mean is None:
        raise ValueError(f"cannot read input size and Normalize from CLIP preprocess {clip.preprocess}")
    size = (size, size) if isinstance(size, int) else tuple(size)
    if len(size) == 1:
        size = (size[0], size[0])
    if interpolation not in ("bilinear", "bicubic", "nearest"):
        interpolation = "bicubic"
    return InputSpec(size=(int(size[0]), int(size[1])), mean=mean, std=std,
                     interpolation=interpolation)


def crop_batch(pixels: torch.Tensor, boxes: np.ndarray, spec: InputSpec) -> torch.Tensor:
    """Square crops of one size from a uint8 ``[3, H, W]`` image, resized and normalised
    like CLIP's preprocessing: float32 ``[B, 3, h, w]`` on the image's device.

    ``boxes``: ``[B, 4]`` patches of equal side. One gather for the whole batch.
    """
    device = pixels.device
    side = int(boxes[0, 2] - boxes[0, 0])
    offsets = torch.arange(side, device=device)
    x0 = torch.as_tensor(boxes[:, 0], device=device)
    y0 = torch.as_tensor(boxes[:, 1], device=device)
    rows = (y0[:, None] + offsets)[:, :, None]      # [B, side, 1]
    cols = (x0[:, None] + offsets)[:, None, :]      # [B, 1, side]
    crops = pixels[:, rows, cols].permute(1, 0, 2, 3).float() / 255.0  # [B, 3, side, side]
    if tuple(crops.shape[-2:]) != spec.size:
        crops = F.interpolate(crops, size=spec.size, mode=spec.interpolation,
                              align_corners=False if spec.interpolation != "nearest" else None,
                              antialias=spec.interpolation != "nearest")
        # antialias=True selects torch's separable kernel (bicubic a = -0.5), PIL's kernel;
        # clamp because PIL's resize saturates to uint8 while bicubic can overshoot.
        crops = crops.clamp(0.0, 1.0)
    mean = torch.tensor(spec.mean, device=device).view(1, 3, 1, 1)
    std = torch.tensor(spec.std, device=device).view(1, 3, 1, 1)
    return (crops - mean) / std


def image_pixels(image) -> torch.Tensor:
    """A PIL image as a uint8 ``[3, H, W]`` tensor (RGB)."""
    array = np.asarray(image.convert("RGB"), dtype=np.uint8)
    return torch.from_numpy(array.copy()).permute(2, 0, 1)


def forward_dtype(precision: str, device: torch.device | str) -> torch.dtype | None:
    """The autocast dtype of CLIP's image forward: None = float32.

    ``"auto"``: float16 on CUDA (tensor cores, half the memory), float32 elsewhere (CPU
    float16 matmuls are slow); ``"float32"`` or ``"float16"`` as named, on any device.
    Embeddings are cast back to float32 before they are normalised, averaged and ranked.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS} (convis.precision), got {precision!r}")
    if precision == "auto":
        return torch.float16 if torch.device(device).type == "cuda" else None
    return torch.float16 if precision == "float16" else None


@dataclass
class _Frame:
    """One image on its way through :func:`rank_volumes`: its grid, canvas and patch embeddings."""

    key: str
    boxes: np.ndarray              # [L, K, 4] in image coordinates
    canvas: torch.Tensor           # uint8 [3, H', W'] on the device (the image, or it on noise)
    pad: int                       # image -> canvas offset
    shape: tuple[int, int]         # the framed image (the map's shape)
    source_shape: tuple[int, int]  # the original image
    emb: torch.Tensor | None = None  # float32 [L * K, D], rows filled as their batches return
    left: int = 0                  # patches not embedded yet

    def patches(self, spec: InputSpec, rows: int) -> Iterator[tuple[int, torch.Tensor]]:
        """(first patch row, crops) pieces of at most ``rows`` patches, location-major (row
        ``l * K + k`` is size ``k`` of location ``l``): cut only when the batcher needs them."""
        n_sizes = self.boxes.shape[1]
        per_piece = max(1, rows // n_sizes)
        for start in range(0, len(self.boxes), per_piece):
            chunk = self.boxes[start:start + per_piece] + self.pad  # canvas coordinates
            crops = torch.stack([crop_batch(self.canvas, chunk[:, k], spec) for k in range(n_sizes)], 1)
            yield start * n_sizes, crops.flatten(0, 1)


def _prepare_frame(key: str, image, sizes: Sequence[int], stride: int, padding: str,
                   resize: int | None, seed: int, device: torch.device) -> _Frame:
    """The grid and canvas of one image (:func:`rank_volumes`); a too-small image's error names it."""
    source = image.convert("RGB")
    pixels = image_pixels(frame_image(source, resize))
    height, width = (int(v) for v in pixels.shape[1:])
    try:
        boxes = patch_grid(height, width, sizes, stride, padding)
    except InputDataError as error:
        raise InputDataError(f"image {key!r}: {error}") from error
    if padding == "noise":
        pad = max(sizes)  # every box lies within pad px of the image (grid_starts)
        canvas = noise_padded(pixels, pad, seed).to(device)
    else:
        pad, canvas = 0, pixels.to(device)  # every box lies inside the image
    return _Frame(key=key, boxes=boxes, canvas=canvas, pad=pad, shape=(height, width),
                  source_shape=(source.height, source.width), left=boxes.shape[0] * boxes.shape[1])


class _PatchQueue:
    """Patches of consecutive images waiting for a CLIP forward, with the frame rows they fill."""

    def __init__(self) -> None:
        self.pieces: list[tuple[_Frame, int, torch.Tensor]] = []
        self.rows = 0

    def push(self, frame: _Frame, first_row: int, crops: torch.Tensor) -> None:
        self.pieces.append((frame, first_row, crops))
        self.rows += len(crops)

    def pop(self, n: int) -> tuple[torch.Tensor, list[tuple[_Frame, int, int]]]:
        """The first ``n`` queued patches (or all, when fewer) and their (frame, first row,
        count) segments; a piece longer than what is left is split."""
        taken, segments = [], []
        while n > 0 and self.pieces:
            frame, first, crops = self.pieces[0]
            if len(crops) > n:
                self.pieces[0] = (frame, first + n, crops[n:])
                crops = crops[:n]
            else:
                self.pieces.pop(0)
            taken.append(crops)
            segments.append((frame, first, len(crops)))
            n -= len(crops)
            self.rows -= len(crops)
        return torch.cat(taken), segments


def _embed_fixed(clip, batch: torch.Tensor, batch_size: int, dtype: torch.dtype | None) -> torch.Tensor:
    """Normalised float32 embeddings of ``batch`` (at most ``batch_size`` patches) from a
    forward of exactly ``batch_size`` rows: the last batch is padded with copies of its last
    patch. One input shape for every forward, so the kernels (and their rounding) that embed
    a patch do not depend on how many patches, or which images, share its batch."""
    n = len(batch)
    if n < batch_size:
        batch = torch.cat([batch, batch[-1:].expand(batch_size - n, *batch.shape[1:])])
    autocast = (torch.autocast(torch.device(clip.device).type, dtype=dtype) if dtype is not None
                else contextlib.nullcontext())
    from .embeddings import encode_image_batch  # the model side: torch and open_clip

    with autocast:
        return encode_image_batch(clip, batch)[:n]


def _finish(frame: _Frame, synsets: torch.Tensor, resize: int | None, padding: str) -> RankVolume:
    """The :class:`RankVolume` of a frame whose patches are all embedded.

    Location embeddings are the mean of the patches' normalised embeddings; they are ranked
    :data:`RANK_CHUNK` locations at a time, a split fixed by the image alone."""
    n_locations, n_sizes = frame.boxes.shape[:2]
    emb = frame.emb.view(n_locations, n_sizes, -1).mean(dim=1)
    count_dtype = np.uint16 if len(synsets) <= np.iinfo(np.uint16).max else np.uint32
    counts = np.empty((n_locations, len(synsets)), dtype=count_dtype)
    location_emb = np.empty((n_locations, emb.shape[1]), dtype=np.float16)
    for start in range(0, n_locations, RANK_CHUNK):
        chunk = emb[start:start + RANK_CHUNK]
        counts[start:start + len(chunk)] = rank_counts(chunk, synsets).cpu().numpy()
        location_emb[start:start + len(chunk)] = normalize(chunk).cpu().numpy()
    frame.emb = frame.canvas = None  # free the device memory before the next image
    return RankVolume(rank_counts=counts, boxes=frame.boxes, shape=frame.shape,
                      location_emb=location_emb, source_shape=frame.source_shape,
                      resize=resize or None, padding=padding)


def rank_volumes(clip, images: Iterable[tuple[str, object]], synset_emb: ArrayLike | torch.Tensor,
                 sizes: Sequence[int] = DEFAULT_SIZES, stride: int = DEFAULT_STRIDE,
                 batch_size: int = DEFAULT_BATCH_SIZE, resize: int | None = None, seed: int = 0,
                 padding: str = DEFAULT_PADDING,
                 precision: str = "float32") -> Iterator[tuple[str, RankVolume]]:
    """Rank volumes of many images with one CLIP: ``(key, RankVolume)`` in the order of ``images``.

    ``images``: ``(key, PIL image)`` pairs, read lazily (a generator keeps one image, plus the
    patches of a batch, in memory). ``clip``: a loaded CLIP (``.module``, ``.preprocess``,
    ``.device``). ``synset_emb``: ``[S, D]`` text embeddings of the vocabulary's definitions.
    The grid covers :func:`frame_image` of each image (native resolution, or its centre crop
    at ``resize`` px). ``padding="none"`` (the paper): valid locations only, patches cut from
    the image itself; an image smaller than the largest patch is an :class:`InputDataError`
    naming its key. ``"noise"`` (the official code): each image on a canvas of noise drawn
    from ``seed`` (:func:`noise_padded`; the same seed for every image, so a volume does not
    depend on the images before it).

    Patches of consecutive images share CLIP forwards of exactly ``batch_size`` patches (the
    last one padded, :func:`_embed_fixed`), cut on the device, resized to CLIP's input size
    and, with ``precision`` (:func:`forward_dtype`) float16, embedded under autocast. A
    location's embedding is the mean of its patches' normalised embeddings, as the paper's
    ``e_ij = (E_I(S) + E_I(L)) / 2`` with the official ``E_I``, which normalises
    (generate_heatmap.py ``load_clip_mask_filtered``); ranks do not depend on the mean's
    length. (The official loop itself ranks each patch on its own and adds both ranks.) Only
    the ``[L, S]`` counts and the renormalised ``[L, D]`` embeddings are kept. An image's
    volume depends on that image alone: which images share its call or its batches does not
    change it.
    """
    # torch.inference_mode wraps each step of the generator (decorated here, at call time,
    # so that importing this module does not import torch).
    return torch.inference_mode()(_rank_volumes)(clip, images, synset_emb, sizes, stride,
                                                 batch_size, resize, seed, padding, precision)


def _rank_volumes(clip, images, synset_emb, sizes, stride, batch_size, resize, seed, padding,
                  precision) -> Iterator[tuple[str, RankVolume]]:
    """The body of :func:`rank_volumes`, run under inference mode."""
    check_padding(padding)
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive (convis.batch_size), got {batch_size}")
    device = torch.device(clip.device)
    dtype = forward_dtype(precision, device)
    spec = clip_input_spec(clip)
    synsets = normalize(_on_device(synset_emb, device))
    queue, in_flight = _PatchQueue(), []

    def embed(n: int) -> None:
        batch, segments = queue.pop(n)
        emb = _embed_fixed(clip, batch, batch_size, dtype)
        offset = 0
        for frame, first, count in segments:
            if frame.emb is None:
                frame.emb = torch.empty((frame.left, emb.shape[1]), dtype=torch.float32, device=device)
            frame.emb[first:first + count] = emb[offset:offset + count]
            frame.left -= count
            offset += count

    def finished() -> Iterator[tuple[str, RankVolume]]:
        while in_flight and in_flight[0].left == 0:
            frame = in_flight.pop(0)
            yield frame.key, _finish(frame, synsets, resize, padding)

    for key, image in images:
        frame = _prepare_frame(str(key), image, sizes, stride, padding, resize, seed, device)
        in_flight.append(frame)
        for first, crops in frame.patches(spec, batch_size):
            queue.push(frame, first, crops)
            while queue.rows >= batch_size:
                embed(batch_size)
        yield from finished()
    while queue.rows:
        embed(batch_size)
    yield from finished()


def rank_volume(clip, image, synset_emb: ArrayLike | torch.Tensor,
                sizes: Sequence[int] = DEFAULT_SIZES, stride: int = DEFAULT_STRIDE,
                batch_size: int = DEFAULT_BATCH_SIZE, resize: int | None = None, seed: int = 0,
                padding: str = DEFAULT_PADDING, precision: str = "float32") -> RankVolume:
    """Ranks of every synset at every patch location of one ``image`` (PIL): a :class:`RankVolume`.

    :func:`rank_volumes` of that image alone (the same volume as in any shard of images).
    """
    [(_, volume)] = rank_volumes(clip, [("image", image)], synset_emb, sizes=sizes, stride=stride,
                                 batch_size=batch_size, resize=resize, seed=seed, padding=padding,
                                 precision=precision)
    return volume


# ----------------------------------------------------------------------------- figures

def _check_same_size(saliency: np.ndarray, rgb: np.ndarray) -> None:
    """A ValueError unless a map ``[H, W]`` covers the image ``[H, W, 3]`` pixel for pixel."""
    if saliency.shape != rgb.shape[:2]:
        raise ValueError(f"saliency map {saliency.shape} and image {rgb.shape[:2]} differ in size")


def overlay_figure(image, saliency: np.ndarray, path: str | os.PathLike,
                   title: str | None = None, alpha: float = 0.5, cmap: str | None = None) -> None:
    """Write a PNG of ``saliency`` (``[H, W]``) over ``image`` (PIL), with a colour bar.

    ``cmap`` None: :data:`neuron_concepts.figures.HEATMAP_CMAP`. Drawn and saved with the
    shared helpers of :mod:`neuron_concepts.figures` (Agg canvas, no pyplot state, atomic
    write, fixed PNG metadata).
    """
    # a colour bar axis cut from the image axis, so it is exactly as tall as the image
    from mpl_toolkits.axes_grid1 import make_axes_locatable

    from . import figures  # here: the rank-volume jobs import this module and draw nothing

    rgb = np.asarray(image.convert("RGB"))
    _check_same_size(saliency, rgb)
    height, width = rgb.shape[:2]
    figure = figures.new_figure(6.0, 6.0 * height / width + 0.6, layout=None)
    axes = figure.add_subplot(1, 1, 1)
    shown = figures.overlay(axes, rgb, saliency, alpha=alpha, cmap=cmap)
    axes.set_axis_off()
    if title:
        axes.set_title(title, fontsize=10)
    figure.colorbar(shown, cax=make_axes_locatable(axes).append_axes("right", size="4%", pad=0.08))
    figures.save_figure(figure, path, bbox_inches="tight")


def overlay_grid(image, maps: Sequence[np.ndarray], titles: Sequence[str],
                 path: str | os.PathLike, columns: int = 4, alpha: float = 0.5,
                 cmap: str | None = None, suptitle: str | None = None) -> None:
    """Write a PNG grid of saliency ``maps`` (each ``[H, W]``) over the same ``image`` (PIL).

    One panel per map, titled by ``titles``. Each panel spans its own map's range (maps of
    broad synsets sit close to 1 everywhere, so a shared scale would hide where they peak);
    the titles carry the scores. The pipeline's figure of an image's top-scoring synsets.
    ``cmap`` None: :data:`neuron_concepts.figures.HEATMAP_CMAP`.
    """
    from . import figures  # here: the rank-volume jobs import this module and draw nothing

    if len(maps) != len(titles) or not maps:
        raise ValueError(f"need one title per map and at least one map: {len(maps)} maps, "
                         f"{len(titles)} titles")
    rgb = np.asarray(image.convert("RGB"))
    for saliency in maps:
        _check_same_size(saliency, rgb)
    columns = max(1, min(columns, len(maps)))
    rows = -(-len(maps) // columns)
    height, width = rgb.shape[:2]
    panel = 3.0
    figure = figures.new_figure(panel * columns + 0.8, (panel * height / width + 0.5) * rows + 0.4,
                                layout=None)
    grid = figure.subplots(rows, columns, squeeze=False)
    for axes, saliency, title in zip(grid.ravel(), maps, titles):
        figures.overlay(axes, rgb, saliency, alpha=alpha, cmap=cmap)  # its own min..max
        axes.set_title(title, fontsize=8)
    for axes in grid.ravel():
        axes.set_axis_off()
    figure.suptitle(f"{suptitle + chr(10) if suptitle else ''}each map on its own scale, "
                    f"low (blue) to high (red)", fontsize=9)
    figures.save_figure(figure, path, bbox_inches="tight")
