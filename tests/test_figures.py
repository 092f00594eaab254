"""Figures: PNGs of the promised size, with content, boxes where the data put them, and
neuron-panel text that neither overlaps nor leaves the figure."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from PIL import Image

from neuron_concepts.data import center_box
from neuron_concepts.figures import (crop_comparison_figure, neuron_panel_figure, new_figure,
                                     plot_crop_comparison, plot_neuron_panel, save_figure)


def gradient_image(height: int, width: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 255, size=(height, width, 3), dtype=np.uint8)
    return Image.fromarray(pixels)


def png_pixels(path) -> np.ndarray:
    with Image.open(path) as png:
        return np.asarray(png.convert("RGB"))


def test_saved_figures_are_byte_reproducible_and_name_no_software(tmp_path):
    """The same figure drawn twice is the same file; no text chunk names matplotlib's version."""
    paths = []
    for name in ("a.png", "b.png"):
        fig = new_figure(2.0, 1.0)
        fig.add_subplot(1, 1, 1).plot([0, 1], [1, 0])
        paths.append(save_figure(fig, tmp_path / name, dpi=40))
    assert paths[0].read_bytes() == paths[1].read_bytes()
    with Image.open(paths[0]) as png:
        assert png.size == (80, 40) and "Software" not in png.info


def test_crop_comparison_png_has_the_promised_size_and_content(tmp_path):
    images = [gradient_image(40, 60), gradient_image(50, 30, seed=1)]
    centre = [center_box(60, 40), center_box(30, 50)]
    boxes = [(40, 20, 60, 40), (0, 0, 15, 15)]
    cams = [np.random.default_rng(0).random((40, 60)), np.zeros((7, 7))]  # second: CAM-sized
    path = crop_comparison_figure(images, centre, boxes, cams, tmp_path / "crops.png",
                                  panel_size=2.0, dpi=50)
    pixels = png_pixels(path)
    assert pixels.shape == (2 * 2.0 * 50, 3 * 2.0 * 50, 3)
    assert pixels.std() > 10          # not a blank canvas


def test_crop_comparison_draws_boxes_around_the_given_pixels():
    image = gradient_image(40, 60)
    fig = plot_crop_comparison([image], [center_box(60, 40)], [(40, 20, 60, 40)],
                               [np.ones((40, 60))])
    centre_patch, gradcam_patch = fig.axes[0].patches
    assert centre_patch.get_xy() == (9.5, -0.5) and centre_patch.get_width() == 40
    assert gradcam_patch.get_xy() == (39.5, 19.5)
    assert (gradcam_patch.get_width(), gradcam_patch.get_height()) == (20, 20)
    # The crops show exactly the boxes' pixels, in original-pixel coordinates.
    assert fig.axes[1].get_xlim() == (-0.5, 39.5) and fig.axes[2].get_ylim() == (19.5, -0.5)


def test_crop_comparison_refuses_mismatched_inputs():
    with pytest.raises(ValueError, match="one centre box"):
        plot_crop_comparison([gradient_image(4, 4)], [], [(0, 0, 2, 2)], [np.ones((4, 4))])


def test_neuron_panel_png_has_the_promised_width_and_content(tmp_path):
    top = {7: [gradient_image(30, 40, s) for s in range(3)],
           12: [gradient_image(40, 30, s) for s in range(5)]}
    concepts = {"www-cos": {7: ["dog", "puppy"], 12: ["car"]}, "www-tvmf": {7: ["dog"]}}
    path = neuron_panel_figure(top, concepts, tmp_path / "panel.png", n_images=4, dpi=40)
    pixels = png_pixels(path)
    assert pixels.shape[1] == round((4 * 1.6 + 4.0) * 40)
    assert pixels.shape[0] >= 2 * 1.6 * 40
    assert pixels.std() > 10


def test_neuron_panel_text_never_overlaps_or_leaves_the_figure():
    long_names = [f"concept number {i} with a rather long name" for i in range(12)]
    top = [[gradient_image(20, 20, s)] for s in range(3)]
    concepts = {f"method-{m}": {0: long_names, 1: long_names[:1], 2: []} for m in range(4)}
    fig = plot_neuron_panel(top, concepts, n_images=2, title="layer4")
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    figure_box = fig.bbox
    texts = [t for ax in fig.axes for t in ax.texts if t.get_text()]
    assert any("(+7 more)" in t.get_text() or "..." in t.get_text() for t in texts)
    assert any(t.get_text() == "(none)" for t in texts)
    extents = [t.get_window_extent(renderer) for t in texts]
    for box in extents:
        assert figure_box.x0 <= box.x0 and box.x1 <= figure_box.x1
        assert figure_box.y0 <= box.y0 and box.y1 <= figure_box.y1
    for a, b in itertools.combinations(extents, 2):   # touching lines are fine
        overlap_x = min(a.x1, b.x1) - max(a.x0, b.x0)
        overlap_y = min(a.y1, b.y1) - max(a.y0, b.y0)
        assert overlap_x <= 0.5 or overlap_y <= 0.5
