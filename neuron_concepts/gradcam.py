"""Grad-CAM attention crops: the ``gradcam`` view of Sannomiya & Hotta (2025).

The target model sees the *whole* image (both sides resized to its input size, no
crop). Grad-CAM of the class the model predicts, at the last conv block, says where
the evidence lies; a square crop around the CAM maximum is the image CLIP and the
target model then see (docs/methods.md, "Views of an image").

The pipeline splits the work in two so that a new crop fraction reruns only the cheap part:

- :func:`compute_cams` (rule ``grad_cam``): CAMs at the layer's resolution
  ``[N, h, w]`` and predicted classes, saved with :func:`neuron_concepts.io.save_cams`. Independent of
  the crop fraction.
- :func:`boxes_for_manifest` (rule ``crop_boxes``): one box per image in original
  pixels, from the CAMs and the image sizes of the manifest.

:func:`grad_cam` is the batched core: one forward and one backward per batch.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Callable, NamedTuple, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from numpy.typing import ArrayLike
from PIL import Image
from torch import nn
from torchvision.transforms import InterpolationMode
from tqdm.auto import tqdm

from . import data, models
from .errors import InputDataError
from .layers import LayerNeurons, select_element, to_batch_first, to_map

log = logging.getLogger(__name__)

#: Columns of the boxes table, in order.
BOX_COLUMNS = ["image_id", "x0", "y0", "x1", "y1", "cam_zero", "predicted"]

# Upsampling in crop_boxes works on chunks of at most this many output pixels
# (float32: 64 MiB), so a probe set of large photographs never needs more.
_MAX_CHUNK_PIXELS = 1 << 24


# --------------------------------------------------------------------------------------
# Grad-CAM itself


def grad_cam(model: nn.Module, layer: nn.Module, images: torch.Tensor,
             neurons: LayerNeurons | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Grad-CAM of each image's predicted class at ``layer``: ``(cams [B, h, w], predicted [B])``.

    ``images`` is a normalised batch ``[B, 3, H, W]`` on the model's device. For the class
    ``c`` the model predicts for an image, ``w_k = mean_{x,y} d y_c / d A_k`` over the
    layer's output ``A`` ``[B, K, h, w]``, ``CAM = ReLU(sum_k w_k A_k)``, divided by its
    per-image max (an all-zero CAM stays zero). Returns float32 CAMs and the int64
    predicted classes, both on the images' device.

    ``neurons`` says how the layer's output is a map (:class:`layers.LayerNeurons`; None: a
    channels-first conv map ``[B, K, h, w]``): a channels-last map is permuted, and a
    transformer's tokens ``[B, T, K]`` lose their class and register tokens and are laid
    out on the patch grid (:func:`layers.to_map`), so ``A`` is ``[B, K, h, w]`` for every
    family. The gradient is taken with respect to the layer's raw output and mapped the
    same way (the map is a selection and reshape of it, so this is the gradient with
    respect to ``A``).

    One forward and one backward per batch: the backward differentiates the *sum* of the
    images' predicted-class scores, which gives each image its own gradient as long as
    images do not interact in the forward (true in eval mode; put the model in eval mode,
    this function does not change it).

    How: a forward hook on ``layer`` swaps its output for a fresh leaf tensor that
    requires grad, and gradients are taken with respect to that leaf only. So the
    parameters need not require grad, no parameter gradient is computed or stored, and
    the part of the network before ``layer`` runs without autograd (no saved tensors):
    the cost is one forward plus a backward through the layers *after* ``layer``. The hook
    is removed and the grad mode restored on return, also on errors.
    """
    if images.ndim != 4:
        raise ValueError(f"images must be a batch [B, 3, H, W], got shape {tuple(images.shape)}")
    captured: list[torch.Tensor] = []
    handle = layer.register_forward_hook(_output_to_leaf_hook(captured, neurons))
    try:
        with torch.inference_mode(False), torch.no_grad():
            logits = model(images)
        if not captured:
            raise ValueError(f"layer {type(layer).__name__} did not run in the model's forward: "
                             "pass a submodule of the model (e.g. models.get_layer(model, 'layer4'))")
        if not isinstance(logits, torch.Tensor) or logits.ndim != 2:
            raise ValueError("Grad-CAM needs a classifier whose output is logits [B, classes]")
        activation = captured[0]
        with torch.inference_mode(False), torch.enable_grad():
            predicted = logits.detach().argmax(dim=1)
            score = logits.gather(1, predicted[:, None]).sum()
            if not score.requires_grad:
                raise ValueError(f"the model's output does not depend on layer {type(layer).__name__}")
            (grad,) = torch.autograd.grad(score, activation, allow_unused=True)
        if grad is None:
            raise ValueError(f"the model's output does not depend on layer {type(layer).__name__}")
    finally:
        handle.remove()
    return _cams(activation.detach(), grad, neurons), predicted


def _output_to_leaf_hook(captured: list, neurons: LayerNeurons | None):
    """The forward hook of :func:`grad_cam`: swaps the layer's output (or the element of it
    ``neurons`` names) for a leaf that requires grad, appended to ``captured``."""

    def swap_output_for_leaf(module: nn.Module, inputs: tuple, output):
        if captured:
            raise ValueError(f"layer {type(module).__name__} ran twice in one forward: Grad-CAM "
                             "needs a layer that runs once; pick another layer")
        tensor = output if neurons is None else select_element(output, neurons.element, neurons.layer)
        if not isinstance(tensor, torch.Tensor) or (neurons is None and tensor.ndim != 4):
            shape = tuple(tensor.shape) if isinstance(tensor, torch.Tensor) else type(tensor).__name__
            raise ValueError(f"Grad-CAM needs a conv layer with output [B, K, h, w]; "
                             f"{type(module).__name__} gives {shape}")
        activation = tensor.detach().requires_grad_(True)
        captured.append(activation)
        # Everything after this layer is differentiated; everything before it ran without
        # autograd. The enclosing no_grad block restores the mode when the forward ends.
        torch.set_grad_enabled(True)
        # A clone, so that an in-place op downstream (``out += identity``) never writes
        # into the leaf we differentiate against.
        swapped = activation.clone()
        if tensor is output:
            return swapped
        if isinstance(output, Mapping):
            return {**output, neurons.element: swapped}
        index = int(neurons.element or 0)
        return type(output)([*output[:index], swapped, *output[index + 1:]])

    return swap_output_for_leaf


def _cams(activation: torch.Tensor, grad: torch.Tensor,
          neurons: LayerNeurons | None) -> torch.Tensor:
    """``ReLU(sum_k w_k A_k)`` per image, ``w_k`` the gradient's spatial mean, over its max."""
    if neurons is not None:
        activation = to_map(to_batch_first(activation, neurons), neurons)
        grad = to_map(to_batch_first(grad, neurons), neurons)
    weights = grad.float().mean(dim=(2, 3))                                   # [B, K]
    cams = torch.relu(torch.einsum("bk,bkhw->bhw", weights, activation.float()))
    peak = cams.amax(dim=(1, 2), keepdim=True)
    return cams / torch.where(peak > 0, peak, 1.0)     # an all-zero CAM stays zero


def upsample_cam(cam: torch.Tensor | ArrayLike, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear upsampling of CAMs ``[h, w]`` or ``[B, h, w]`` to ``size = (H, W)``.

    ``align_corners=False``: each CAM cell covers its share of the image, as a conv
    feature map does. Returns float32 with the input's leading shape.
    """
    cam = torch.as_tensor(cam).float()
    if cam.ndim not in (2, 3):
        raise ValueError(f"cam must be [h, w] or [B, h, w], got shape {tuple(cam.shape)}")
    batch = cam if cam.ndim == 3 else cam[None]
    out = F.interpolate(batch[:, None], size=(int(size[0]), int(size[1])), mode="bilinear",
                        align_corners=False)[:, 0]
    return out if cam.ndim == 3 else out[0]


# --------------------------------------------------------------------------------------
# Boxes


class Box(NamedTuple):
    """A crop box in original pixels, ``x1``/``y1`` exclusive (``PIL.Image.crop`` order)."""

    x0: int
    y0: int
    x1: int
    y1: int
    cam_zero: bool


def crop_side(height: ArrayLike, width: ArrayLike, crop_fraction: float) -> np.ndarray:
    """Side of the square crop: ``round(crop_fraction * min(H, W))``, at least 1 px.

    Rounds halves up (``floor(x + 0.5)``), not to even, so the side grows monotonically
    with the image.
    """
    if not 0 < crop_fraction <= 1:
        raise ValueError(f"crop_fraction must be in (0, 1], got {crop_fraction}")
    short = np.minimum(np.asarray(height, dtype=np.int64), np.asarray(width, dtype=np.int64))
    return np.clip(np.floor(crop_fraction * short + 0.5).astype(np.int64), 1, short)


def square_boxes(peak_x: ArrayLike, peak_y: ArrayLike, cam_zero: ArrayLike, height: ArrayLike,
                 width: ArrayLike, crop_fraction: float) -> np.ndarray:
    """Square boxes centred on the peaks, shifted inside the image: int64 ``[N, 4]`` (x0, y0, x1, y1).

    A box of side ``s`` starts ``s // 2`` pixels before its peak (for even ``s`` the peak
    is the pixel just right of / below the middle). Where ``cam_zero`` is true the box is
    the centre crop of the same side (start ``(W - s) // 2``).
    """
    height = np.asarray(height, dtype=np.int64)
    width = np.asarray(width, dtype=np.int64)
    side = crop_side(height, width, crop_fraction)
    zero = np.asarray(cam_zero, dtype=bool)
    x0 = np.where(zero, (width - side) // 2, np.asarray(peak_x, dtype=np.int64) - side // 2)
    y0 = np.where(zero, (height - side) // 2, np.asarray(peak_y, dtype=np.int64) - side // 2)
    x0 = np.clip(x0, 0, width - side)
    y0 = np.clip(y0, 0, height - side)
    return np.stack([x0, y0, x0 + side, y0 + side], axis=-1)


def _peaks(cams_full: torch.Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """First row-major argmax of each map ``[B, H, W]``: (x, y, all_zero)."""
    flat = cams_full.flatten(1)
    top = flat.amax(dim=1)
    # torch.argmax returns the first maximal index; max(dim) does not promise that.
    index = flat.argmax(dim=1).cpu().numpy()
    width = cams_full.shape[2]
    # A map with no positive value (or a NaN) carries no evidence: centre crop.
    zero = ~(top > 0).cpu().numpy()
    return index % width, index // width, zero


def crop_box(cam_full: torch.Tensor | ArrayLike, crop_fraction: float = 0.5) -> Box:
    """The crop box of one CAM already at the image's size ``[H, W]``.

    A square of side ``round(crop_fraction * min(H, W))`` (at least 1 px) centred on the
    CAM maximum (first argmax in row-major order), shifted to lie inside the image. An
    all-zero CAM gives the centre crop and ``cam_zero=True``; the caller logs it.
    """
    cam_full = torch.as_tensor(cam_full).float()
    if cam_full.ndim != 2 or min(cam_full.shape) < 1:
        raise ValueError(f"cam_full must be a non-empty [H, W] map, got shape {tuple(cam_full.shape)}")
    height, width = cam_full.shape
    px, py, zero = _peaks(cam_full[None])
    x0, y0, x1, y1 = square_boxes(px, py, zero, height, width, crop_fraction)[0].tolist()
    return Box(x0, y0, x1, y1, bool(zero[0]))


def crop_boxes(cams: torch.Tensor | ArrayLike, heights: ArrayLike, widths: ArrayLike,
               crop_fraction: float = 0.5) -> pd.DataFrame:
    """Boxes of many CAMs ``[N, h, w]`` for images of sizes ``(heights[i], widths[i])``.

    Equal to :func:`crop_box` of ``upsample_cam(cams[i], (H_i, W_i))`` for every image.
    The argmax is taken at the original resolution, as the method defines it; the
    upsampled maps are never all held at once: images are grouped by size and upsampled
    in chunks of at most ``_MAX_CHUNK_PIXELS`` output pixels, on the CPU (deterministic).
    Returns a DataFrame with columns x0, y0, x1, y1 (int64) and cam_zero (bool).
    """
    cams = torch.as_tensor(cams).float().cpu()
    heights = np.asarray(heights, dtype=np.int64)
    widths = np.asarray(widths, dtype=np.int64)
    n = len(cams)
    if cams.ndim != 3 or heights.shape != (n,) or widths.shape != (n,):
        raise ValueError(f"need cams [N, h, w] and N heights and widths; got cams {tuple(cams.shape)}, "
                         f"{heights.shape[0] if heights.ndim else heights} heights, "
                         f"{widths.shape[0] if widths.ndim else widths} widths")
    if n and (heights.min() < 1 or widths.min() < 1):
        raise ValueError("image heights and widths must be at least 1 px")
    peak_x = np.zeros(n, dtype=np.int64)
    peak_y = np.zeros(n, dtype=np.int64)
    zero = np.zeros(n, dtype=bool)
    sizes = pd.DataFrame({"h": heights, "w": widths})
    for (height, width), rows in sizes.groupby(["h", "w"], sort=False).indices.items():
        chunk = max(1, _MAX_CHUNK_PIXELS // int(height * width))
        for start in range(0, len(rows), chunk):
            idx = rows[start:start + chunk]
            full = upsample_cam(cams[torch.as_tensor(idx)], (height, width))
            peak_x[idx], peak_y[idx], zero[idx] = _peaks(full)
    boxes = square_boxes(peak_x, peak_y, zero, heights, widths, crop_fraction)
    table = pd.DataFrame(boxes, columns=["x0", "y0", "x1", "y1"])
    table["cam_zero"] = zero
    return table


# --------------------------------------------------------------------------------------
# The pipeline stages


def whole_image_transform(input_size: int, mean: Sequence[float],
                          std: Sequence[float]) -> Callable[[Image.Image], torch.Tensor]:
    """PIL image -> normalised tensor ``[3, S, S]`` of the whole image: both sides resized to
    ``input_size`` (bilinear, antialiased), no crop (the aspect ratio is not kept, nothing
    is cut away). A torchvision ``Compose``, so :func:`data.tensor_transform` gives its
    uint8-tensor equivalent for the fast loader."""
    from torchvision import transforms as T

    size = [int(input_size), int(input_size)]
    return T.Compose([T.Resize(size, interpolation=InterpolationMode.BILINEAR, antialias=True),
                      T.ToTensor(), T.Normalize(list(map(float, mean)), list(map(float, std)))])


def compute_cams(model: nn.Module, layer: nn.Module, paths: Sequence[str | os.PathLike], *,
                 input_size: int, mean: Sequence[float], std: Sequence[float],
                 batch_size: int = 32, device: torch.device | str | None = None,
                 num_workers: int | None = None,
                 neurons: LayerNeurons | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Grad-CAMs of the images at ``paths``: ``(cams float32 [N, h, w], predicted int64 [N])``.

    Each image goes to the model whole (see :func:`whole_image_transform`), decoded and
    resized by the probe loader (:func:`data.image_loader`: torchvision decoding, worker
    processes, pinned memory on CUDA; ``num_workers`` None: :func:`data.default_workers`).
    ``model`` should be in eval mode and on ``device`` (default: the device of its first
    parameter); on CUDA the batches go channels-last when the model is. Grad-CAM stays
    float32 on every device: the predicted class and the CAM's argmax make discrete
    boxes, which a float16 rounding could move. The CAMs stay at the layer's resolution;
    boxes come from :func:`crop_boxes`, so changing the crop fraction needs no model run.
    """
    if device is None:
        first = next(model.parameters(), None)
        device = first.device if first is not None else torch.device("cpu")
    device = torch.device(device)
    workers = data.default_workers(device) if num_workers is None else num_workers
    files = pd.DataFrame({"path": [str(p) for p in paths]})
    loader = data.image_loader(files, whole_image_transform(input_size, mean, std), batch_size,
                               workers=workers, device=device)
    channels_last = models.uses_channels_last(model, device)
    cams: list[np.ndarray] = []
    predicted: list[np.ndarray] = []
    with tqdm(total=len(files), desc="Grad-CAM", unit="img") as progress:
        for batch in loader:
            batch_cams, batch_pred = grad_cam(model, layer, models.to_model_input(batch, device, channels_last),
                                              neurons)
            cams.append(batch_cams.cpu().numpy())
            predicted.append(batch_pred.cpu().numpy())
            progress.update(len(batch))
    if not cams:
        raise InputDataError("no images to compute Grad-CAM on: the probe manifest is empty")
    return np.concatenate(cams).astype(np.float32), np.concatenate(predicted).astype(np.int64)


def _ids_array(image_ids: Sequence) -> np.ndarray:
    """Image ids as a plain (non-object) array, so the npz reads without pickle."""
    ids = np.asarray(list(image_ids))
    return ids.astype(str) if ids.dtype == object else ids


def boxes_for_manifest(cams: dict[str, np.ndarray], manifest: pd.DataFrame,
                       crop_fraction: float = 0.5) -> pd.DataFrame:
    """The ``crop_boxes`` table: one box per manifest image, in manifest order.

    ``cams`` is the :func:`neuron_concepts.io.load_cams` dict; the manifest gives image_id, width and height.
    Columns: image_id, x0, y0, x1, y1 (original pixels, x1/y1 exclusive), cam_zero (no
    positive CAM value: centre crop used, logged), predicted (the target model's class).
    """
    # Compared as text: the manifest may hold ids as numbers or strings.
    ids = _ids_array(manifest["image_id"]).astype(str)
    if len(ids) != len(cams["image_id"]) or not np.array_equal(ids, cams["image_id"].astype(str)):
        raise InputDataError("the Grad-CAM artifact's image ids differ from the probe manifest's: "
                             "rerun the grad_cam rule for this probe set")
    table = crop_boxes(cams["cams"], manifest["height"].to_numpy(), manifest["width"].to_numpy(),
                       crop_fraction)
    table.insert(0, "image_id", manifest["image_id"].to_numpy())
    table["predicted"] = np.asarray(cams["predicted"], dtype=np.int64)
    n_zero = int(table["cam_zero"].sum())
    if n_zero:
        log.warning("%d of %d images have an all-zero Grad-CAM; they use the centre crop (first: %s)",
                    n_zero, len(table), ", ".join(map(str, table.loc[table.cam_zero, "image_id"][:5])))
    return table[BOX_COLUMNS]
