"""ConVis figures: saliency maps drawn over their image, one map or a grid of them.

Drawn and saved with the shared helpers of :mod:`neuron_concepts.figures` (Agg canvas, no
pyplot state, atomic write, fixed PNG metadata). The rank-volume jobs never import this
module, so they load no matplotlib.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
from mpl_toolkits.axes_grid1 import make_axes_locatable

from . import figures


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
    rgb = np.asarray(image.convert("RGB"))
    _check_same_size(saliency, rgb)
    height, width = rgb.shape[:2]
    figure = figures.new_figure(6.0, 6.0 * height / width + 0.6, layout=None)
    axes = figure.add_subplot(1, 1, 1)
    shown = figures.overlay(axes, rgb, saliency, alpha=alpha, cmap=cmap)
    axes.set_axis_off()
    if title:
        axes.set_title(title, fontsize=10)
    # a colour bar axis cut from the image axis, so it is exactly as tall as the image
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
