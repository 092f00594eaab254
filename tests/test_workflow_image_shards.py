"""The image stages in shards (scale.images_per_job) give the unsharded run's artifacts.

Two runs of the tiny workflow with both views on a flat folder of the demo photographs
and four files that are not images (skipped, listed last): one job per image stage
(images_per_job 0), and shards of 8 rows (batches of 4). The folder's 26 files make four
shards: two full, one partial (rows 16-22) and one past the manifest's end (the unreadable
files), which reads no image. Activations, Grad-CAMs, crop boxes and image embeddings are
byte-equal arrays, and the description tables are identical.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import Workflow, tiny_config
from neuron_concepts import data, io, names, paths

pytestmark = pytest.mark.workflow

LAYERS = ["layer4", "fc"]
TARGET = "resnet18-random"
CLIP = "tiny-clip-random"
VIEWS = ["center", "gradcam-f0.5"]
N_BROKEN = 4
SHARDS = ["rows0-8", "rows8-16", "rows16-24", "rows24-26"]
# The descriptions of both views: every image stage runs for them, and nothing after them
# (evaluation, figures, browser) is needed to compare the two runs.
TARGETS = tuple(paths.descriptions("demo", TARGET, layer, names.www_method_name(view, "cos", n_images=4, alpha=0.95),
                                  "words")
                for layer in ("layer4-mean", "fc") for view in VIEWS)


def build_probe_folder(root: Path) -> None:
    """The demo photographs as PNGs in ``root/probe``, four non-images after them, labels."""
    folder = root / "probe"
    files = data.materialise_demo(folder)
    for k in range(N_BROKEN):
        (folder / f"zz_broken{k}.png").write_bytes(b"not an image")
    labels = files.dropna(subset=["label"])
    pd.DataFrame({"image": [Path(p).name for p in labels["path"]], "label": labels["label"]}).to_csv(
        root / "probe_labels.csv", index=False)


def shard_config(images_per_job: int) -> dict:
    config = tiny_config(layers=LAYERS, concept_set="words")
    config["probe_sets"] = {"demo": {"type": "folder", "root": "probe", "labels_csv": "probe_labels.csv",
                                     "skip_unreadable": True}}
    config["views"] = ["center", "gradcam"]
    config["gradcam"] = {"layer": "layer4", "crop_fraction": 0.5, "batch_size": 4}
    config["batch_size"]["image"] = 4
    config["scale"] = {"images_per_job": images_per_job}
    return config


@pytest.fixture(scope="module")
def runs(run_workflow) -> tuple[Workflow, Workflow]:
    return (run_workflow(shard_config(0), *TARGETS, prepare=build_probe_folder),
            run_workflow(shard_config(8), *TARGETS, prepare=build_probe_folder))


def test_every_image_stage_runs_in_four_shards_and_a_join(runs):
    whole, sharded = runs
    assert len(io.load_manifest(sharded.path(paths.probe_manifest("demo")))) == 22
    for view in VIEWS:
        for shard in SHARDS:
            assert sharded.path(paths.image_shard(paths.image_embeddings("demo", CLIP, view), shard)).exists()
            assert sharded.path(paths.image_shard(paths.activations("demo", TARGET, view, "fc"), shard)).exists()
    empty = io.load_cams(sharded.path(paths.image_shard(paths.gradcam_cams("demo", TARGET), "rows24-26")))
    assert empty["cams"].shape[0] == 0  # past the manifest's end: no image read
    assert not whole.path(f"results/image_emb/demo/{CLIP}/shards").exists()
    # A rerun plans nothing: the joins' outputs are the artifacts at their usual paths.
    assert sharded.planned_jobs(*TARGETS) == {}


def assert_same_npz(a: Path, b: Path) -> None:
    with np.load(a) as x, np.load(b) as y:
        assert sorted(x.files) == sorted(y.files), a
        for key in x.files:
            assert x[key].dtype == y[key].dtype and x[key].shape == y[key].shape, (a, key)
            assert x[key].tobytes() == y[key].tobytes(), (a, key)


def test_sharded_arrays_equal_the_unsharded_ones_to_the_byte(runs):
    whole, sharded = runs
    arrays = [paths.gradcam_cams("demo", TARGET)]
    for view in VIEWS:
        arrays.append(paths.image_embeddings("demo", CLIP, view))
        arrays += [paths.activations("demo", TARGET, view, layer) for layer in ("layer4-mean", "fc")]
    for path in arrays:
        assert_same_npz(whole.path(path), sharded.path(path))
    boxes = paths.crop_boxes("demo", TARGET, names.gradcam_crop(VIEWS[1]))
    pd.testing.assert_frame_equal(io.read_parquet(whole.path(boxes)), io.read_parquet(sharded.path(boxes)))


def test_sharded_descriptions_equal_the_unsharded_ones(runs):
    whole, sharded = runs
    tables = sorted(p.relative_to(whole.root) for p in whole.path("results/descriptions").rglob("*.parquet"))
    assert len(tables) == len(TARGETS)
    for table in tables:
        pd.testing.assert_frame_equal(io.read_parquet(whole.root / table), io.read_parquet(sharded.root / table))
