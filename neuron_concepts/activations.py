"""Neuron activations of a layer and the images that activate each neuron most."""

from __future__ import annotations

import numpy as np
import torch
from numpy.typing import ArrayLike


def top_image_indices(activations: ArrayLike | torch.Tensor, n: int,
                      chunk: int = 256) -> np.ndarray:
    """Indices of the ``n`` images with the largest activation of each neuron: ``[K, n]``.

    ``activations`` is ``[N, K]`` (images x neurons). Rows are ordered by descending
    activation; ties are broken by the lower image index (a stable sort of the negated
    values), so the result does not depend on the sorting backend.
    """
    acts = np.asarray(activations.detach().cpu() if isinstance(activations, torch.Tensor)
                      else activations)
    if acts.ndim != 2:
        raise ValueError(f"activations must be [N, K], got shape {acts.shape}")
    n_images = acts.shape[0]
    if not 1 <= n <= n_images:
        raise ValueError(f"cannot take the top {n} of {n_images} images: "
                         f"set the number of images to at most {n_images}")
    top = np.empty((acts.shape[1], n), dtype=np.int64)
    # Chunks of neurons bound the sort's index memory at ImageNet scale (50k x 2048).
    for start in range(0, acts.shape[1], chunk):
        block = -acts[:, start:start + chunk].astype(np.float64)
        top[start:start + chunk] = np.argsort(block, axis=0, kind="stable")[:n].T
    return top


def reduce_spatial(output: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """``[B, K, h, w]`` conv maps to ``[B, K]`` by spatial mean or max; ``[B, K]`` stays as is."""
    if output.ndim == 2:
        return output
    if output.ndim != 4:
        raise ValueError(f"cannot reduce a layer output of shape {tuple(output.shape)} to neurons")
    if reduction == "mean":
        return output.mean(dim=(2, 3))
    if reduction == "max":
        return output.amax(dim=(2, 3))
    raise ValueError(f"unknown spatial reduction {reduction!r}: use mean or max")


@torch.inference_mode()
def layer_activations(model: torch.nn.Module, layers: dict[str, torch.nn.Module],
                      batches, device: torch.device | str = "cpu", reduction: str = "mean",
                      total: int | None = None, progress: bool = True) -> dict[str, np.ndarray]:
    """Activations ``[N, K]`` (float32) of several layers in one pass over the image batches.

    Forward hooks reduce each layer's output to one value per channel as it is produced,
    so no full feature map is kept beyond the batch.
    """
    from tqdm.auto import tqdm

    collected: dict[str, list[torch.Tensor]] = {name: [] for name in layers}
    handles = [
        module.register_forward_hook(
            lambda _m, _i, out, name=name: collected[name].append(
                reduce_spatial(out, reduction).float().cpu()))
        for name, module in layers.items()
    ]
    try:
        for batch in tqdm(batches, total=total, desc="activation batches", disable=not progress):
            model(batch.to(device, non_blocking=True))
    finally:
        for handle in handles:
            handle.remove()
    return {name: torch.cat(chunks).numpy() for name, chunks in collected.items()}
