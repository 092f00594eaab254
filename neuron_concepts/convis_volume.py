"""ConVis (Giulivi & Boracchi) rank volumes: CLIP ranks of every vocabulary synset at every
patch location of an image.

A vocabulary ``T`` of noun synsets (:mod:`neuron_concepts.convis_vocabulary`) is embedded
once, each synset by the CLIP text embedding of its WordNet definition. For an image
embedding ``x``:

- ``z(x, s) = cos(x, E_T(def(s)))``;
- ``rank_sim(x, s) = |{s' in T : z(x, s') < z(x, s)}| / |T|`` (strictly less: ties share
  the lower rank);
- ``max_rank_sim(x, s)`` = the largest ``rank_sim(x, s')`` over ``s`` and its hyponyms in ``T``.

At every location ``(i, j)`` of a patch grid (:mod:`neuron_concepts.convis_grid`) a 64-px
patch ``S`` and a 128-px patch ``L`` share the top-left corner; the location's embedding is
``e_ij = (E_I(S) + E_I(L)) / 2``. (The official loop ranks ``S`` and ``L`` on their own and
adds both ranks; here, as in the paper's formula, their embeddings are averaged.) The rank
of every synset at every location is computed once (:func:`rank_volume`), patches of many
images sharing CLIP forwards (:func:`rank_volumes`); maps are drawn from the volume
(:func:`neuron_concepts.convis_grid.saliency_map`) with no further CLIP call.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from PIL import Image

from . import lazy
from .convis_grid import (DEFAULT_PADDING, DEFAULT_SIZES, DEFAULT_STRIDE, RankVolume, check_padding,
                          patch_grid)
from .data import center_box
from .errors import InputDataError
from .similarity import as_tensor, normalize

# Imported on first use: importing this module (e.g. for rank_sim's docs) does not load torch.
torch = lazy.module("torch")
F = lazy.module("torch.nn.functional")

PRECISIONS = ("auto", "float32", "float16")  # the CLIP forward of the rank volumes (convis.precision)
DEFAULT_BATCH_SIZE = 256  # patches per CLIP forward (convis.batch_size)
RANK_CHUNK = 512  # locations ranked at a time: bounds the [locations, S] similarity block


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


# ----------------------------------------------------------------------------- image frame and batches

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
