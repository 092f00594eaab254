"""Figures from pipeline artifacts: sample choice, view crops, concepts and top images per row."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from neuron_concepts import www_figures
from neuron_concepts.errors import ConfigError


@pytest.fixture
def probe(tmp_path) -> pd.DataFrame:
    """Four images whose pixel value encodes their index, of different sizes."""
    rows = []
    for i, (width, height) in enumerate([(60, 40), (30, 50), (20, 20), (45, 45)]):
        path = tmp_path / f"img{i}.png"
        Image.new("RGB", (width, height), (10 * i, 0, 0)).save(path)
        rows.append({"image_id": f"img{i}", "path": str(path), "width": width, "height": height})
    return pd.DataFrame(rows)


def test_image_positions_default_to_the_first_images_and_follow_given_ids(probe):
    assert www_figures.image_positions(probe, None, default=3).tolist() == [0, 1, 2]
    assert www_figures.image_positions(probe, ["img3", "img0"]).tolist() == [3, 0]


def test_unknown_sample_image_is_a_config_error_naming_it(probe):
    with pytest.raises(ConfigError, match="figures.sample_images.*nope"):
        www_figures.image_positions(probe, ["img1", "nope"])


def test_view_crops_are_the_centre_square_or_the_box(probe):
    boxes = pd.DataFrame({"image_id": [f"img{i}" for i in range(4)], "x0": [5, 0, 0, 1],
                          "y0": [2, 3, 0, 1], "x1": [25, 10, 20, 2], "y1": [22, 13, 20, 2]})
    center = www_figures.view_crops(probe, [0, 1])
    assert [c.size for c in center] == [(40, 40), (30, 30)]
    cropped = www_figures.view_crops(probe, [1, 0], boxes)
    assert [c.size for c in cropped] == [(10, 10), (20, 20)]
    assert cropped[0].getpixel((0, 0)) == (10, 0, 0)   # image 1, in the order asked for


def test_selected_concepts_are_the_neurons_selected_ones_by_rank():
    table = pd.DataFrame({"neuron": [0, 0, 0, 1], "rank": [1, 0, 2, 0],
                          "concept": ["b", "a", "c", "z"], "selected": [True, True, False, True]})
    assert www_figures.selected_concepts(table, 0) == ["a", "b"]
    assert www_figures.selected_concepts(table, 2) == []


def test_neuron_panel_rows_show_each_views_top_images_and_concepts(probe, tmp_path, monkeypatch):
    drawn = {}

    def capture(top_images, concepts, path, neurons, n_images, title, dpi):
        drawn.update(top=top_images, concepts=concepts, neurons=neurons)

    monkeypatch.setattr(www_figures.figures, "neuron_panel_figure", capture)
    # Neuron 1 prefers image 3 then 0 under the center view, image 2 then 1 under gradcam.
    acts = {"center": np.array([[0, 2], [0, 0], [0, 1], [0, 3]], dtype=np.float32),
            "gradcam-f0.5": np.array([[0, 0], [0, 2], [0, 3], [0, 1]], dtype=np.float32)}
    boxes = {"gradcam-f0.5": pd.DataFrame({"image_id": [f"img{i}" for i in range(4)],
                                           "x0": 0, "y0": 0, "x1": 5, "y1": 5})}
    desc = lambda concept: pd.DataFrame({"neuron": [1], "rank": [0], "concept": [concept],
                                         "selected": [True]})
    descriptions = {("center", "cos"): desc("c-cos"), ("gradcam-f0.5", "cos"): desc("g-cos"),
                    ("gradcam-f0.5", "tvmf-k16"): desc("g-tvmf")}
    www_figures.neuron_panel_from_artifacts(probe, acts, boxes, descriptions, [1], 2,
                                            tmp_path / "p.png")
    assert drawn["neurons"] == ["1\ncenter", "1\ngradcam-f0.5"]
    assert [im.getpixel((0, 0))[0] for im in drawn["top"]["1\ncenter"]] == [30, 0]
    assert [im.size for im in drawn["top"]["1\ngradcam-f0.5"]] == [(5, 5), (5, 5)]
    assert [im.getpixel((0, 0))[0] for im in drawn["top"]["1\ngradcam-f0.5"]] == [20, 10]
    assert drawn["concepts"] == {"cos": {"1\ncenter": ["c-cos"], "1\ngradcam-f0.5": ["g-cos"]},
                                 "tvmf-k16": {"1\ngradcam-f0.5": ["g-tvmf"]}}


def test_neuron_outside_the_layer_is_a_config_error(probe, tmp_path):
    acts = {"center": np.zeros((4, 3), dtype=np.float32)}
    with pytest.raises(ConfigError, match="figures.neurons: neuron 3"):
        www_figures.neuron_panel_from_artifacts(probe, acts, {}, {}, [3], 2, tmp_path / "p.png")
