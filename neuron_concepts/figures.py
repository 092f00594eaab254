"""Figures: the drawing helpers every stage shares, and the improved WWW's figures.

Shared helpers (ConVis's maps, the stability bars and the WWW figures all use them):

- :func:`new_figure`: a ``matplotlib.figure.Figure`` on its own Agg canvas, not through
  pyplot, so it renders whatever the session's backend is and leaves no global state
  behind (a notebook keeps its own backend);
- :func:`overlay`: a heat map (CAM, saliency) over an image, in :data:`HEATMAP_CMAP`;
- :func:`save_figure`: a PNG written atomically with fixed metadata: the same figure gives
  the same bytes (the provenance manifest compares hashes), and no text chunk names the
  matplotlib that wrote it.

The improved WWW's figures (Sannomiya & Hotta): the Grad-CAM crop comparison (Fig. 4) and
neuron panels with the concepts each method assigns (Fig. 3). ``plot_*`` functions return
the figure; ``*_figure`` functions save it.
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.image import AxesImage
from matplotlib.patches import Rectangle
from matplotlib.transforms import offset_copy
from numpy.typing import ArrayLike
from PIL import Image

from . import io

#: Colormap of every heat map drawn over an image (Grad-CAM, ConVis saliency): low blue, high red.
HEATMAP_CMAP = "jet"

#: PNG text chunks of every saved figure. Matplotlib's default names its own version
#: ("Software"), which would make a figure's bytes depend on the environment that drew it.
PNG_METADATA: dict[str, str | None] = {"Software": None}

#: Box colours: the centre crop dashed, the Grad-CAM crop solid.
CENTER_STYLE = {"edgecolor": "#00e5ff", "linestyle": "--", "linewidth": 2.0}
GRADCAM_STYLE = {"edgecolor": "#ff1744", "linestyle": "-", "linewidth": 2.0}

# Thumbnails are downscaled to this many pixels on their long side: a figure never
# needs more, and imshow of full-size photographs is slow.
_THUMBNAIL_PX = 320


# --------------------------------------------------------------------------- shared helpers


def new_figure(width: float, height: float, layout: str | None = "constrained",
               dpi: float = 100) -> Figure:
    """A figure of ``width`` x ``height`` inches on its own Agg canvas (no pyplot).

    ``layout=None`` leaves the axes where they are put (e.g. with ``bbox_inches="tight"``
    at saving).
    """
    fig = Figure(figsize=(width, height), layout=layout, dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Figure, path: str | os.PathLike, dpi: float = 100,
                bbox_inches: str | None = None) -> Path:
    """Save ``fig`` as a PNG on a white background, atomically, with :data:`PNG_METADATA`.

    Without ``bbox_inches`` the PNG is exactly the figure's size in inches x ``dpi``
    pixels; ``"tight"`` crops it to what is drawn.
    """
    with io.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, facecolor="white", bbox_inches=bbox_inches,
                    metadata=PNG_METADATA)
    return Path(path)


def overlay(ax: Axes, image: ArrayLike, heat: ArrayLike | None = None, alpha: float = 0.5,
            cmap: str | None = None, **imshow: object) -> AxesImage | None:
    """Draw ``image`` (``[H, W, 3]``) and, if given, ``heat`` over it in ``cmap``
    (None: :data:`HEATMAP_CMAP`).

    ``imshow`` keywords (``extent``, ``interpolation``, ``vmin``, ``vmax``) go to the heat
    map; ``extent`` and ``interpolation`` to the image too, so both cover the same pixels.
    Returns the heat map's image (for a colour bar), None without one.
    """
    shared = {key: imshow[key] for key in ("extent", "interpolation") if key in imshow}
    ax.imshow(np.asarray(image), **shared)
    if heat is None:
        return None
    return ax.imshow(heat, cmap=cmap or HEATMAP_CMAP, alpha=alpha, **imshow)


# --------------------------------------------------------------------------- WWW figures


def _thumbnail(image: Image.Image) -> Image.Image:
    small = image.convert("RGB")
    small.thumbnail((_THUMBNAIL_PX, _THUMBNAIL_PX))
    return small


def _show(ax: Axes, image: Image.Image, cam: np.ndarray | None = None, title: str = "") -> None:
    """Draw an image (and a CAM over it) in original pixel coordinates.

    ``extent`` maps the (possibly downscaled) pixels onto the original coordinates, so boxes
    drawn afterwards in original pixels land where they belong.
    """
    width, height = image.size
    extent = (-0.5, width - 0.5, height - 0.5, -0.5)
    overlay(ax, _thumbnail(image), cam, alpha=0.45, extent=extent, interpolation="bilinear",
            vmin=0.0, vmax=1.0)
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)


def _box_patch(box: Sequence[int], style: dict) -> Rectangle:
    """A rectangle around the pixels ``x0..x1-1``, ``y0..y1-1`` (pixel edges at +-0.5)."""
    x0, y0, x1, y1 = (int(v) for v in box[:4])
    return Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, **style)


def plot_crop_comparison(images: Sequence[Image.Image], center_boxes: Sequence[Sequence[int]],
                         gradcam_boxes: Sequence[Sequence[int]], cams_full: Sequence[ArrayLike],
                         titles: Sequence[str] | None = None, panel_size: float = 2.4) -> Figure:
    """One row per image: the image with its CAM and both boxes, the centre crop, and the
    Grad-CAM crop with the CAM overlaid. Figure size: ``3 * panel_size`` x ``n * panel_size`` in.

    ``cams_full[i]`` is the image's CAM in ``[0, 1]``, at the image's size ``[H, W]`` or at
    any other size (then upsampled bilinearly to it, as the boxes were computed).
    """
    n = len(images)
    if not n or not n == len(center_boxes) == len(gradcam_boxes) == len(cams_full):
        raise ValueError(f"need one centre box, Grad-CAM box and CAM per image; got {n} images, "
                         f"{len(center_boxes)} centre boxes, {len(gradcam_boxes)} Grad-CAM boxes "
                         f"and {len(cams_full)} CAMs")
    from .gradcam import upsample_cam  # here: the shared helpers above need no torch

    fig = new_figure(3 * panel_size, n * panel_size)
    fig.suptitle("dashed: centre crop, solid: Grad-CAM crop", fontsize=8)
    axes = fig.subplots(n, 3, squeeze=False)
    for row, image in enumerate(images):
        width, height = image.size
        cam = np.asarray(cams_full[row], dtype=np.float32)
        if cam.shape != (height, width):
            cam = upsample_cam(cam, (height, width)).numpy()
        cx0, cy0, cx1, cy1 = (int(v) for v in center_boxes[row][:4])
        gx0, gy0, gx1, gy1 = (int(v) for v in gradcam_boxes[row][:4])
        label = titles[row] if titles else f"image {row}"
        _show(axes[row, 0], image, cam, title=label)
        axes[row, 0].add_patch(_box_patch(center_boxes[row], CENTER_STYLE))
        axes[row, 0].add_patch(_box_patch(gradcam_boxes[row], GRADCAM_STYLE))
        _show(axes[row, 1], image.crop((cx0, cy0, cx1, cy1)), title="centre crop")
        _show(axes[row, 2], image.crop((gx0, gy0, gx1, gy1)), cam[gy0:gy1, gx0:gx1],
              title="Grad-CAM crop")
    return fig


def crop_comparison_figure(images: Sequence[Image.Image], center_boxes: Sequence[Sequence[int]],
                           gradcam_boxes: Sequence[Sequence[int]], cams_full: Sequence[ArrayLike],
                           path: str | os.PathLike, titles: Sequence[str] | None = None,
                           panel_size: float = 2.4, dpi: int = 100) -> Path:
    """Save :func:`plot_crop_comparison` as a PNG (the paper's Figure 4)."""
    fig = plot_crop_comparison(images, center_boxes, gradcam_boxes, cams_full, titles, panel_size)
    return save_figure(fig, path, dpi)


def _concept_lines(concepts: Sequence[str], max_concepts: int, width_chars: int,
                   max_lines: int) -> list[str]:
    """A method's concepts as at most ``max_lines`` wrapped lines ("..." marks a cut)."""
    shown = ", ".join(concepts[:max_concepts]) or "(none)"
    if len(concepts) > max_concepts:
        shown += f" (+{len(concepts) - max_concepts} more)"
    return textwrap.wrap(shown, width=width_chars, max_lines=max_lines, placeholder=" ...")


def plot_neuron_panel(top_images: Mapping[object, Sequence[Image.Image]] | Sequence[Sequence[Image.Image]],
                      concepts_by_method: Mapping[str, Mapping[object, Sequence[str]]],
                      neurons: Sequence | None = None, n_images: int = 5,
                      max_concepts: int = 5, panel_size: float = 1.6, text_width: float = 4.0,
                      fontsize: float = 9.0, title: str | None = None) -> Figure:
    """One row per neuron: its top ``n_images`` images, then each method's concepts.

    ``top_images`` maps a neuron to its top images (most activating first); a list is
    indexed by neuron number. ``concepts_by_method[method][neuron]`` lists that method's
    selected concepts, best first; a neuron a method did not describe shows "(none)".
    The text column is ``text_width`` inches wide; text is wrapped to fit it, and a row
    grows taller when its text needs more lines than ``panel_size`` holds, so text never
    overlaps. Figure width: ``n_images * panel_size + text_width`` inches.
    """
    if neurons is None:
        neurons = list(top_images.keys()) if isinstance(top_images, Mapping) else list(range(len(top_images)))
    if not neurons:
        raise ValueError("no neurons to draw: pass at least one neuron")
    methods = list(concepts_by_method)
    line_pt = fontsize * 1.4                        # one text line, in points
    line_in = line_pt / 72
    # Average glyph width of DejaVu Sans is about 0.55 em; 0.62 leaves a margin.
    width_chars = max(10, int(text_width * 72 / (0.62 * fontsize)))
    max_lines = 3
    blocks = [[(method, _concept_lines(list(concepts_by_method[method].get(neuron, [])),
                                       max_concepts, width_chars, max_lines))
               for method in methods] for neuron in neurons]
    # Each method: a bold name line, its concept lines, a small gap.
    row_heights = [max(panel_size, line_in * sum(len(lines) + 1.4 for _, lines in block) + 0.25)
                   for block in blocks]
    title_in = 0.4 if title else 0.0
    fig = new_figure(n_images * panel_size + text_width, sum(row_heights) + title_in)
    if title:
        fig.suptitle(title, fontsize=fontsize + 2)
    grid = fig.add_gridspec(len(neurons), n_images + 1, height_ratios=row_heights,
                            width_ratios=[panel_size] * n_images + [text_width])
    for row, neuron in enumerate(neurons):
        images = list(top_images[neuron])[:n_images]
        for col in range(n_images):
            ax = fig.add_subplot(grid[row, col])
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if col < len(images):
                ax.imshow(np.asarray(_thumbnail(images[col])))
            if col == 0:
                ax.set_ylabel(f"neuron {neuron}", fontsize=fontsize + 1)
        _draw_concept_text(fig, fig.add_subplot(grid[row, n_images]), blocks[row], fontsize, line_pt)
    return fig


def _draw_concept_text(fig: Figure, text_ax, block: Sequence[tuple[str, list[str]]],
                       fontsize: float, line_pt: float) -> None:
    """Each method's name (bold) and its concept lines, top down in ``text_ax``."""
    text_ax.axis("off")
    # Offsets in points from the axis top: exact whatever height the layout gives the axis.
    offset_pt = 0.0
    for method, lines in block:
        for x, text, weight in ((0.0, method, "bold"), (0.03, "\n".join(lines), "normal")):
            where = offset_copy(text_ax.transAxes, fig=fig, y=-offset_pt, units="points")
            text_ax.text(x, 1.0, text, fontsize=fontsize, fontweight=weight, va="top",
                         linespacing=1.4, transform=where)
            offset_pt += line_pt * (1 if weight == "bold" else len(lines))
        offset_pt += 0.4 * line_pt


def neuron_panel_figure(top_images: Mapping[object, Sequence[Image.Image]] | Sequence[Sequence[Image.Image]],
                        concepts_by_method: Mapping[str, Mapping[object, Sequence[str]]],
                        path: str | os.PathLike, neurons: Sequence | None = None,
                        n_images: int = 5, max_concepts: int = 5, title: str | None = None,
                        dpi: int = 100) -> Path:
    """Save :func:`plot_neuron_panel` as a PNG (the paper's Figure 3)."""
    fig = plot_neuron_panel(top_images, concepts_by_method, neurons=neurons, n_images=n_images,
                            max_concepts=max_concepts, title=title)
    return save_figure(fig, path, dpi)
