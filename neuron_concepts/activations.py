"""Neuron activations of a layer and the images that activate each neuron most."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

from . import lazy

if TYPE_CHECKING:
    from .layers import LayerNeurons

# Imported on first use: figure and browser jobs take www_top_images alone.
torch = lazy.module("torch")


def www_top_images(activations: ArrayLike | torch.Tensor, n: int,
                   chunk: int = 256) -> np.ndarray:
    """Indices of each neuron's ``n`` most activating images as WWW selects them: ``[K, n]``.

    ``activations`` is ``[N, K]`` (images x neurons). WWW's ``example_selection.py`` (lines
    121-124) sorts each neuron's column with ``np.argsort`` (numpy's default kind, not
    stable), keeps the last ``n`` and flips them; its merge step (lines 150-153) sorts those
    ``n`` values (a float64 array there) the same way and flips again. Both calls are made
    here as there, one neuron per row, so images tied at the cut are the official code's.
    Their order is numpy's: the same numpy on the same CPU family gives the same images
    (numpy picks an AVX2 or AVX-512 sort kernel at run time).

    One full sort per neuron: a few seconds per layer at 50,000 images. Chunks of
    neurons bound the temporaries at ImageNet scale (50k x 2048).
    """
    acts = _activation_matrix(activations, n)
    top = np.empty((acts.shape[1], n), dtype=np.int64)
    for start in range(0, acts.shape[1], chunk):
        columns = np.ascontiguousarray(acts[:, start:start + chunk].T)  # [c, N]: one neuron a row
        chosen = np.flip(np.argsort(columns, axis=1)[:, -n:], axis=1)
        values = np.take_along_axis(columns, chosen, axis=1).astype(np.float64)
        resorted = np.flip(np.argsort(values, axis=1), axis=1)
        top[start:start + chunk] = np.take_along_axis(chosen, resorted, axis=1)
    return top


def clip_dissect_top_images(activations: ArrayLike | torch.Tensor, n: int,
                            chunk: int = 256) -> np.ndarray:
    """Indices of each neuron's ``n`` most activating images as CLIP-Dissect selects them.

    ``[K, n]`` from ``torch.topk(activations, dim=0, k=n)`` (``similarity.py`` lines 56 and
    84), on the CPU as there: ``utils.py`` line 162 loads the activations with
    ``map_location='cpu'``, whatever device scores them. Ties at the cut are therefore
    torch's CPU kernel's, which treats each neuron's column alone, so chunks of neurons
    (bounding the copy at 50k x 2048) give the same images; on CUDA, topk orders ties
    differently.
    """
    acts = _activation_matrix(activations, n)
    top = np.empty((acts.shape[1], n), dtype=np.int64)
    for start in range(0, acts.shape[1], chunk):
        block = torch.from_numpy(np.ascontiguousarray(acts[:, start:start + chunk]))
        top[start:start + chunk] = torch.topk(block, dim=0, k=n).indices.T.numpy()
    return top


def _activation_matrix(activations: ArrayLike | torch.Tensor, n: int) -> np.ndarray:
    """``activations`` as a numpy ``[N, K]`` matrix from which ``n`` top images can be taken."""
    acts = np.asarray(activations.detach().cpu() if lazy.is_tensor(activations)
                      else activations)
    if acts.ndim != 2:
        raise ValueError(f"activations must be [N, K], got shape {acts.shape}")
    if not 1 <= n <= acts.shape[0]:
        raise ValueError(f"cannot take the top {n} of {acts.shape[0]} images: "
                         f"set the number of images to at most {acts.shape[0]}")
    return acts


def layer_activations(model: torch.nn.Module, layers: Sequence[LayerNeurons], batches,
                      device: torch.device | str = "cpu", total: int | None = None,
                      progress: bool = True, autocast: bool | None = None) -> dict[str, np.ndarray]:
    """Activations ``[N, K]`` (float32) of several layers in one pass over the image batches,
    keyed by each layer's name in paths (``LayerNeurons.name``: ``layer4-mean``, ``fc``).

    Forward hooks reduce each layer's output to one value per neuron as it is produced
    (:func:`layers.reduce_output`: conv maps, channels first or last, by mean or max over
    positions; token sequences by their class token or patch tokens' mean or max), so no
    full feature map is kept beyond the batch. On CUDA, inputs go channels-last
    when the model is (``models.uses_channels_last``) and float16 autocast is used when
    ``autocast`` is True or (None) when the first batch's activations of every layer lie
    within ``models.AUTOCAST_ATOL`` of float32 (``models.choose_autocast``). On the CPU
    the forward is float32, as it always was.
    """
    with torch.inference_mode():
        return _layer_activations(model, layers, batches, device, total, progress, autocast)


def _layer_activations(model, layers, batches, device, total, progress,
                       autocast) -> dict[str, np.ndarray]:
    """The body of :func:`layer_activations`, run under inference mode."""
    from tqdm.auto import tqdm

    from . import models
    from .layers import reduce_output

    device = torch.device(device)
    channels_last = models.uses_channels_last(model, device)
    names = [spec.name for spec in layers]
    current: dict[str, torch.Tensor] = {}
    handles = [
        models.get_layer(model, spec.layer).register_forward_hook(
            lambda _m, _i, out, spec=spec: current.__setitem__(spec.name, reduce_output(out, spec).float()))
        for spec in layers
    ]

    def forward(batch: torch.Tensor) -> list[torch.Tensor]:
        current.clear()
        model(models.to_model_input(batch, device, channels_last))
        return [current[name] for name in names]

    collected: dict[str, list[torch.Tensor]] = {name: [] for name in names}
    use_autocast: bool | None = None
    try:
        for batch in tqdm(batches, total=total, desc="activation batches", disable=not progress):
            if use_autocast is None:
                use_autocast, outputs = models.choose_autocast(lambda: forward(batch), device, autocast)
            else:
                with models.autocast(device, use_autocast):
                    outputs = forward(batch)
            for name, out in zip(names, outputs):
                collected[name].append(out.float().cpu())
    finally:
        for handle in handles:
            handle.remove()
    return {name: torch.cat(chunks).numpy() for name, chunks in collected.items()}
