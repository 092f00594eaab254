"""The crops that ``rank_volume`` feeds to CLIP against a re-derivation of the official crop.

Reference: github.com/loris2222/Concept-Visualization at commit 14c7414,
``generate_heatmap.py``. Written from reading that code with PIL and numpy; nothing here
calls the library's grid or crop functions. The tensors are captured from a recording
CLIP stand-in passed to ``rank_volume``.

The official patch at canvas position ``(x, y)`` of side ``s`` (``grid_heatmap`` l. 278-303
calls ``compute_rank([x, y, s, s], crop_mask=True, brightness=0.0, noise_image=True)``,
l. 238-248 -> ``raw_similarity`` l. 156-168 -> ``load_clip_mask_filtered`` l. 58-97):

- ``mask[y:y+s, x:x+s] = 1`` on the canvas (l. 162-163);
- everything outside the mask is replaced by black (noise at brightness 0, blurred), pasted
  through the inverted mask blurred by ``GaussianBlur(radius=0.5)`` (l. 72-86), so the blur
  also darkens the mask's rim;
- the crop box is ``np_bbox2`` of the mask (l. 50-56: the first and *last* row and column
  index) given to ``PIL.crop`` as ``(cmin, rmin, cmax, rmax)`` (l. 89), which excludes
  ``cmax`` and ``rmax``: an ``(s - 1) x (s - 1)`` crop with its top-left at ``(x, y)``;
- ``clip_model[1]`` (CLIP's preprocess: bicubic resize of the shorter side, centre crop,
  ToTensor, Normalize) makes the encoder input (l. 94).

Ours cuts the whole ``s x s`` box (the paper's ``x[j:j+s, i:i+s]``) and resizes it as CLIP's
preprocess does. So: every pixel the official crop leaves untouched is ours at the same
place, exactly; the official crop lacks our last row and column and darkens a rim.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter
from torchvision import transforms as T

from neuron_concepts import convis_volume

MEAN, STD = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)  # CLIP's


class Recorder(torch.nn.Module):
    """A CLIP stand-in that keeps every batch it encodes; its embedding: channel means."""

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(()))
        self.batches: list[torch.Tensor] = []

    def encode_image(self, x: torch.Tensor) -> torch.Tensor:
        self.batches.append(x.detach().clone())
        return self.scale * x.mean(dim=(2, 3)) + 3.0


def recording_clip(size: int) -> SimpleNamespace:
    preprocess = T.Compose([T.Resize(size, interpolation=T.InterpolationMode.BICUBIC), T.CenterCrop(size),
                            T.ToTensor(), T.Normalize(MEAN, STD)])
    return SimpleNamespace(module=Recorder(), preprocess=preprocess, device=torch.device("cpu"))


def captured_inputs(clip, image: Image.Image, sizes, stride, padding, seed=0):
    """The encoder inputs of every (location, size), and the volume: ``[L, K, 3, h, w]``."""
    volume = convis_volume.rank_volume(clip, image, np.eye(3), sizes=sizes, stride=stride, batch_size=7,
                                seed=seed, padding=padding)
    rows = torch.cat(clip.module.batches)
    n_locations = volume.boxes.shape[0]
    # batches are padded with copies of their last patch; rows are location-major
    return rows[:n_locations * len(sizes)].view(n_locations, len(sizes), *rows.shape[1:]), volume


def distinct_image(height: int, width: int) -> np.ndarray:
    """Every pixel a different (R, G) pair, B varying too: a shifted crop cannot match."""
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x * 5 % 251, y * 7 % 253, (x + 3 * y) % 256], -1).astype(np.uint8)


def official_canvas(pixels: np.ndarray, pad: int, seed: int) -> np.ndarray:
    """``pad_opt_image(pad, noise_image=True)`` (l. 139-146): the image on uniform noise
    0..254. The official noise is unseeded; this draws ours (seeded) so the canvases agree."""
    height, width, _ = pixels.shape
    canvas = np.random.default_rng(seed).integers(0, 255, size=(height + 2 * pad, width + 2 * pad, 3), dtype=np.uint8)
    canvas[pad:pad + height, pad:pad + width] = pixels
    return canvas


def official_patch(canvas: np.ndarray, x: int, y: int, side: int) -> tuple[np.ndarray, np.ndarray]:
    """``load_clip_mask_filtered(canvas, mask, crop_to_mask=True, brightness=0, noise_image=True)``
    before CLIP's preprocess: the cropped pixels, and where the black paste touched them."""
    mask = np.zeros(canvas.shape[:2])
    mask[y:y + side, x:x + side] = 1
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    rmin, rmax, cmin, cmax = rows[0], rows[-1], cols[0], cols[-1]  # np_bbox2
    paste_mask = Image.fromarray(((1.0 - mask) * 255).astype(np.uint8), "L").filter(ImageFilter.GaussianBlur(radius=0.5))
    img = Image.fromarray(canvas)
    img.paste(Image.new("RGB", img.size), (0, 0), mask=paste_mask)  # black where the mask is 0
    box = (cmin, rmin, cmax, rmax)
    return np.asarray(img.crop(box)), np.asarray(paste_mask.crop(box)) > 0


def as_pixels(inputs: torch.Tensor) -> np.ndarray:
    """Normalised encoder inputs ``[3, h, w]`` back to uint8 ``[h, w, 3]``."""
    x = inputs * torch.tensor(STD).view(3, 1, 1) + torch.tensor(MEAN).view(3, 1, 1)
    return np.rint(x.permute(1, 2, 0).numpy() * 255).astype(np.int64)


def official_positions(length: int, pad: int, stride: int) -> range:
    """``range(0, accumulator.shape[i], stride)`` on the padded canvas (l. 278-279)."""
    return range(0, length + 2 * pad, stride)


# ----------------------------------------------------------------------------- tests

@pytest.mark.parametrize("padding, height, width, side, stride", [
    ("noise", 40, 36, 16, 4),
    ("noise", 33, 27, 12, 8),
    ("none", 40, 36, 16, 4),
])
def test_crops_are_the_official_patch_pixels_box_for_box(padding, height, width, side, stride):
    """One patch size equal to CLIP's input, so nothing is resized: the encoder sees our
    pixels, which must be the official crop's untouched pixels at the same place."""
    pixels = distinct_image(height, width)
    clip = recording_clip(side)
    inputs, volume = captured_inputs(clip, Image.fromarray(pixels), (side,), stride, padding, seed=4)
    pad = side  # the official code always pads; our "none" boxes lie inside the image
    canvas = official_canvas(pixels, pad, seed=4)
    # Our locations, in canvas coordinates: the official grid positions whose patch
    # reaches into the image (noise), or the paper's valid corners (none).
    corners = [(int(b[0, 0]) + pad, int(b[0, 1]) + pad) for b in volume.boxes]
    if padding == "noise":
        official = {(x, y) for y in official_positions(height, pad, stride) for x in official_positions(width, pad, stride)
                    if x < width + pad and y < height + pad and x + side > pad and y + side > pad}
        assert set(corners) == official
    checked = 0
    for k, (x, y) in enumerate(corners):
        ours = as_pixels(inputs[k, 0])
        assert ours.shape == (side, side, 3)
        np.testing.assert_array_equal(ours, canvas[y:y + side, x:x + side])  # the whole box
        theirs, touched = official_patch(canvas, x, y, side)
        assert theirs.shape == (side - 1, side - 1, 3)  # np_bbox2 + PIL.crop drop a row and column
        kept = ~touched
        assert kept.sum() == (side - 4) ** 2  # the blur reaches 2 px in at the top left, 1 px at the far side
        np.testing.assert_array_equal(ours[:side - 1, :side - 1][kept], theirs[kept])
        checked += 1
    assert checked == len(volume.boxes) > 4


def test_resized_crops_are_clips_preprocess_of_the_box():
    """Two patch sizes resized to CLIP's input (24 px here): each is ``clip_model[1]`` (l. 94)
    of the box's pixels, up to PIL's uint8 rounding. A smooth image with distinct pixels:
    where bicubic overshoots (sharp edges, noise) PIL clips each of its two passes to uint8
    and torch clamps once, which differs by more (see the module's report)."""
    y, x = np.mgrid[0:30, 0:26]
    pixels = np.stack([3 * x + 40, 4 * y + 20, x + 2 * y + 60], -1).astype(np.uint8)
    clip = recording_clip(24)
    sizes = (8, 16)
    inputs, volume = captured_inputs(clip, Image.fromarray(pixels), sizes, 6, "none")
    image = Image.fromarray(pixels)
    assert len(volume.boxes) == 3 * 4
    for k, boxes in enumerate(volume.boxes):
        for j, size in enumerate(sizes):
            x0, y0 = int(boxes[j, 0]), int(boxes[j, 1])
            theirs = clip.preprocess(image.crop((x0, y0, x0 + size, y0 + size)))
            # torch's antialiased bicubic is PIL's kernel; PIL rounds to uint8 (1 / 255 / std)
            np.testing.assert_allclose(inputs[k, j].numpy(), theirs.numpy(), atol=1 / 255 / min(STD) + 1e-6)


def test_the_official_crop_darkens_its_rim_and_drops_a_row_and_column():
    """What separates the two crops, pinned on a flat grey patch: the official crop of a
    64-px patch is 63 x 63 and the blurred paste darkens its first row and column (and its
    last, which are the mask's second-to-last); ours is the 64 x 64 box, untouched."""
    canvas = np.full((100, 100, 3), 200, np.uint8)
    theirs, touched = official_patch(canvas, 10, 20, 64)
    assert theirs.shape == (63, 63, 3)
    assert touched[0].all() and touched[:, 0].all() and not touched[2:-2, 2:-2].any()
    assert (theirs[0, 5] < 200).all() and (theirs[30, 30] == 200).all()
