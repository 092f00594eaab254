"""The improved WWW's figures from pipeline artifacts (Sannomiya & Hotta, Figs. 3 and 4).

:mod:`neuron_concepts.figures` draws from images, boxes and concept lists; this module
reads them out of what the pipeline wrote (manifest, Grad-CAM artifact, boxes,
activations, descriptions), so the figure rules stay a few lines and a notebook can
draw the same figures from a finished run.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from PIL import Image

from . import data, figures
from .activations import www_top_images
from .errors import ConfigError

#: How many sample images the crop comparison shows when the config names none.
DEFAULT_SAMPLES = 4


def image_positions(manifest: pd.DataFrame, image_ids: Sequence | None,
                    default: int = DEFAULT_SAMPLES, key: str = "figures.sample_images") -> np.ndarray:
    """Manifest rows of ``image_ids`` (compared as text), or the first ``default`` rows.

    Unknown ids are an error that names them and the config ``key``.
    """
    if not image_ids:
        return np.arange(min(default, len(manifest)))
    row_of = {str(image_id): row for row, image_id in enumerate(manifest["image_id"])}
    unknown = [image_id for image_id in image_ids if str(image_id) not in row_of]
    if unknown:
        raise ConfigError(f"{key}: no image {unknown[:5]} in the probe set; its ids include "
                          f"{list(row_of)[:5]}")
    return np.array([row_of[str(image_id)] for image_id in image_ids], dtype=np.int64)


def imagenet_class_name(index: int) -> str:
    """Short ImageNet name of a class index (first lemma), or ``class <index>`` outside 0..999."""
    wnids = data.imagenet_wnids()
    if 0 <= index < len(wnids):
        return data.imagenet_lemmas().get(wnids[index], wnids[index]).split(",")[0]
    return f"class {index}"


def crop_comparison_from_artifacts(manifest: pd.DataFrame, cams: Mapping[str, np.ndarray],
                                   boxes: pd.DataFrame, path: str | os.PathLike,
                                   image_ids: Sequence | None = None, dpi: int = 100) -> Path:
    """The centre crop beside the Grad-CAM crop for sample images (the paper's Figure 4).

    ``cams`` is the :func:`neuron_concepts.io.load_cams` dict (its rows follow the
    manifest, which the boxes rule checked); ``boxes`` the crop_boxes table. Titles give
    each image's id and the class the target model predicted (the class the CAM explains).
    """
    rows = image_positions(manifest, image_ids)
    box_of = boxes.assign(key=boxes["image_id"].astype(str)).set_index("key")
    images, center, gradcam, cam_maps, titles = [], [], [], [], []
    for row in rows:
        entry = manifest.iloc[row]
        box = box_of.loc[str(entry["image_id"])]
        images.append(data.load_image(entry["path"]))
        center.append(data.center_box(int(entry["width"]), int(entry["height"])))
        gradcam.append([int(box[c]) for c in ("x0", "y0", "x1", "y1")])
        cam_maps.append(cams["cams"][row])
        note = ", zero CAM" if bool(box["cam_zero"]) else ""
        titles.append(f"{entry['image_id']}\npredicted: "
                      f"{imagenet_class_name(int(cams['predicted'][row]))}{note}")
    return figures.crop_comparison_figure(images, center, gradcam, cam_maps, path, titles=titles,
                                          dpi=dpi)


def view_crops(manifest: pd.DataFrame, rows: Sequence[int],
               boxes: pd.DataFrame | None = None) -> list[Image.Image]:
    """The images at manifest ``rows`` as a view shows them to the models.

    With ``boxes`` (a crop_boxes table) the Grad-CAM crop; without, the square centre crop
    (what resize-shorter-side plus centre-crop preprocessing keeps).
    """
    box_of = None if boxes is None else boxes.assign(
        key=boxes["image_id"].astype(str)).set_index("key")
    crops = []
    for row in rows:
        entry = manifest.iloc[int(row)]
        image = data.load_image(entry["path"])
        if box_of is None:
            box = data.center_box(*image.size)
        else:
            box = tuple(int(box_of.loc[str(entry["image_id"]), c]) for c in ("x0", "y0", "x1", "y1"))
        crops.append(image.crop(box))
    return crops


def selected_concepts(descriptions: pd.DataFrame, neuron: int) -> list[str]:
    """A neuron's selected concepts from a description table, best first."""
    chosen = descriptions[(descriptions["neuron"] == neuron) & descriptions["selected"]]
    return [str(c) for c in chosen.sort_values("rank")["concept"]]


def neuron_panel_from_artifacts(manifest: pd.DataFrame, activations: Mapping[str, np.ndarray],
                                boxes: Mapping[str, pd.DataFrame],
                                descriptions: Mapping[tuple[str, str], pd.DataFrame],
                                neurons: Sequence[int], n_images: int, path: str | os.PathLike,
                                title: str | None = None, dpi: int = 100) -> Path:
    """Top images and assigned concepts of some neurons under each view (the paper's Figure 3).

    The view decides which images are on top and what CLIP saw, so each neuron gets one
    row per view: its top ``n_images`` images under that view (as cropped by it), then the
    concepts WWW selected with each similarity on that view. ``activations[view]`` is the
    layer's ``[N, K]``; ``boxes[view]`` the crop_boxes table of a Grad-CAM view (absent for
    ``center``); ``descriptions[(view, sim)]`` a description table.
    """
    views = list(activations)
    n_neurons = {view: acts.shape[1] for view, acts in activations.items()}
    for neuron in neurons:
        if not 0 <= int(neuron) < min(n_neurons.values()):
            raise ConfigError(f"figures.neurons: neuron {neuron} is not in this layer, which has "
                              f"{min(n_neurons.values())} neurons (0..{min(n_neurons.values()) - 1})")
    n_images = min(int(n_images), len(manifest))
    top_images: dict[str, list[Image.Image]] = {}
    concepts: dict[str, dict[str, list[str]]] = {}
    for neuron in neurons:
        for view in views:
            row = f"{neuron}\n{view}"  # the panel's row label reads "neuron {row}"
            top = www_top_images(activations[view][:, [int(neuron)]], n_images)[0]
            top_images[row] = view_crops(manifest, top, boxes.get(view))
            for (d_view, sim), table in descriptions.items():
                if d_view == view:
                    concepts.setdefault(sim, {})[row] = selected_concepts(table, int(neuron))
    return figures.neuron_panel_figure(top_images, concepts, path, neurons=list(top_images),
                                       n_images=n_images, title=title, dpi=dpi)
