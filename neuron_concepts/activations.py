"""Neuron activations of a layer and the images that activate each neuron most."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

from . import lazy

if TYPE_CHECKING:
    from .layers import LayerNeurons

# Imported on first use: figure and browser jobs take top_image_indices alone.
torch = lazy.module("torch")


def top_image_indices(activations: ArrayLike | torch.Tensor, n: int,
                      chunk: int = 256) -> np.ndarray:
    """Indices of the ``n`` images with the largest activation of each neuron: ``[K, n]``.

    ``activations`` is ``[N, K]`` (images x neurons). Rows are ordered by descending
    activation; ties are broken by the lower image index, exactly as a stable sort of the
    negated values would order them, so the result does not depend on the backend.

    A partial selection, not a full sort: per neuron, ``np.partition`` finds the ``n``-th
    largest value, every image above it is taken, then the lowest-indexed images equal to
    it fill the remaining places, and only those ``n`` are sorted (a full stable argsort of
    50,000 values per neuron costs ~6x more).
    """
    acts = np.asarray(activations.detach().cpu() if lazy.is_tensor(activations)
                      else activations)
    if acts.ndim != 2:
        raise ValueError(f"activations must be [N, K], got shape {acts.shape}")
    n_images = acts.shape[0]
    if not 1 <= n <= n_images:
        raise ValueError(f"cannot take the top {n} of {n_images} images: "
                         f"set the number of images to at most {n_images}")
    top = np.empty((acts.shape[1], n), dtype=np.int64)
    # Chunks of neurons bound the temporaries at ImageNet scale (50k x 2048).
    for start in range(0, acts.shape[1], chunk):
        block = acts[:, start:start + chunk]
        if not np.issubdtype(block.dtype, np.floating):
            block = block.astype(np.float64)  # negating unsigned integers would wrap
        block = -block  # [N, c]: ascending = best first (negation is exact)
        top[start:start + chunk] = _smallest_stable(block, n)
    return top


def _smallest_stable(block: np.ndarray, n: int) -> np.ndarray:
    """``np.argsort(block, axis=0, kind="stable")[:n].T`` without sorting whole columns."""
    if n == block.shape[0] or np.isnan(block).any():
        return np.argsort(block, axis=0, kind="stable")[:n].T  # NaN order: as the full sort
    rows = np.argpartition(block, n - 1, axis=0)[:n].T  # [c, n]: the n smallest, any order
    values = np.take_along_axis(block.T, rows, axis=1)
    threshold = values.max(axis=1)  # the n-th smallest value of each column
    # Where more images equal the threshold than were taken, argpartition chose among them
    # arbitrarily: those columns take the full stable sort (rare with real activations).
    taken = (values == threshold[:, None]).sum(axis=1)
    ties = np.flatnonzero((block == threshold).sum(axis=0) > taken)
    if ties.size:
        rows[ties] = np.argsort(block[:, ties], axis=0, kind="stable")[:n].T
        values[ties] = np.take_along_axis(block[:, ties].T, rows[ties], axis=1)
    order = np.lexsort((rows, values), axis=1)  # by value, equal values by lower index
    return np.take_along_axis(rows, order, axis=1)


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
