"""The improved WWW (Grad-CAM crop, t-vMF) run through Snakemake on the tiny workflow.

One run (module fixture) of the tiny config over the 2 x 2 grid (views center and gradcam,
similarities cos and tvmf). The tests recompute its Grad-CAM artifacts, the gradcam view's
activations and CLIP embeddings and the ablation table independently, and check what a
change of kappa, crop fraction or Grad-CAM layer reruns through Snakemake's own dry run.
"""

from __future__ import annotations


import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from conftest import Workflow, tiny_config
from neuron_concepts import embeddings, gradcam, io, models, names, paths, www

pytestmark = pytest.mark.workflow

LAYERS = ["layer4", "fc"]
FRACTION = 0.5
KAPPA = 16
TARGET = "resnet18-random"
CLIP = "tiny-clip-random"
GRADCAM_VIEW = names.view_name("gradcam", crop_fraction=FRACTION)
N_IMAGES = 4  # methods.www.n_images of the tiny config


def gradcam_config() -> dict:
    config = tiny_config(layers=LAYERS, concept_set="words")
    config["views"] = ["center", "gradcam"]
    config["methods"]["www"]["similarities"] = ["cos", "tvmf"]
    config["gradcam"] = {"layer": "layer4", "crop_fraction": FRACTION, "batch_size": 8}
    config["tvmf"] = {"kappa": KAPPA}
    config["figures"] = {"sample_images": ["chelsea", "rocket"], "neurons": [0, 3],
                         "layers": ["layer4"], "n_images": 3}
    return config


@pytest.fixture(scope="module")
def run(run_workflow) -> Workflow:
    return run_workflow(gradcam_config())


def manifest(flow: Workflow) -> pd.DataFrame:
    return io.read_parquet(flow.path(paths.probe_manifest("demo")))


def boxes(flow: Workflow) -> pd.DataFrame:
    return io.read_parquet(flow.path(paths.crop_boxes("demo", TARGET, names.gradcam_crop(GRADCAM_VIEW))))


def cams(flow: Workflow) -> dict:
    return io.load_cams(flow.path(paths.gradcam_cams("demo", TARGET)))


def load_target(flow: Workflow) -> models.TargetModel:
    spec = flow.config["target"]
    return models.load_target(spec["name"], "random", spec["source"],
                              cache_dir=flow.path("resources/weights"), seed=flow.config["seed"])


def crops_of(flow: Workflow, rows: list[int]) -> list[Image.Image]:
    """Images at manifest rows cropped to their boxes by hand (PIL), outside the pipeline."""
    table, box_table = manifest(flow), boxes(flow).set_index("image_id")
    out = []
    for row in rows:
        x0, y0, x1, y1 = box_table.loc[table["image_id"][row], ["x0", "y0", "x1", "y1"]]
        out.append(Image.open(flow.path(table["path"][row])).convert("RGB").crop((x0, y0, x1, y1)))
    return out


# ---------------------------------------------------------------- Grad-CAM artifacts


def test_cams_equal_grad_cam_of_the_target_on_whole_images(run):
    saved = cams(run)
    table = manifest(run)
    assert list(saved["image_id"]) == list(table["image_id"])
    target = load_target(run)
    transform = gradcam.whole_image_transform(target.input_size, target.mean, target.std)
    batch = torch.stack([transform(Image.open(run.path(p)).convert("RGB")) for p in table["path"][:3]])
    expected, predicted = gradcam.grad_cam(target.module, target.module.layer4, batch)
    np.testing.assert_allclose(saved["cams"][:3], expected.numpy(), atol=1e-4)
    assert saved["predicted"][:3].tolist() == predicted.tolist()


def test_boxes_equal_single_image_boxes_of_the_saved_cams(run):
    saved, table, box_table = cams(run), manifest(run), boxes(run)
    assert list(box_table["image_id"]) == list(table["image_id"])
    for i, (height, width) in enumerate(zip(table["height"], table["width"])):
        box = gradcam.crop_box(gradcam.upsample_cam(saved["cams"][i], (height, width)), FRACTION)
        assert tuple(box_table.loc[i, ["x0", "y0", "x1", "y1", "cam_zero"]]) == tuple(box)
        assert box.x1 - box.x0 == box.y1 - box.y0 == int(np.floor(FRACTION * min(height, width) + 0.5))


def test_crop_boxes_log_names_the_images_with_an_all_zero_cam(run):
    text = run.path(f"logs/crop_boxes/demo/{TARGET}/f{FRACTION:g}.log").read_text()
    zero = boxes(run).query("cam_zero")["image_id"].tolist()
    assert f"{len(zero)} image(s) with an all-zero Grad-CAM use the centre crop: " \
           f"{', '.join(zero) or 'none'}" in text


# ---------------------------------------------------------------- the gradcam view


def test_gradcam_view_embeddings_are_clip_embeddings_of_the_crops(run):
    spec = run.config["clip"]["match"]
    clip = models.load_clip(spec["model"], "random", cache_dir=run.path("resources/weights"),
                            model_config=str(run.path(spec["model_config"])),
                            seed=run.config["seed"])
    rows = [1, 3]
    batch = torch.stack([clip.preprocess(crop) for crop in crops_of(run, rows)])
    expected = embeddings.encode_images(clip, [batch], progress=False)
    stored = io.read_embeddings(run.path(f"results/image_emb/demo/{CLIP}/{GRADCAM_VIEW}.npz"))
    center = io.read_embeddings(run.path(f"results/image_emb/demo/{CLIP}/center.npz"))
    np.testing.assert_allclose(stored["emb"][rows].astype(np.float32), expected, atol=2e-3)
    # The crop changed what CLIP saw.
    assert np.abs(stored["emb"][rows].astype(np.float32) - center["emb"][rows]).max() > 1e-2


def test_gradcam_view_activations_are_target_outputs_on_the_crops(run):
    target = load_target(run)
    rows = [0, 2]
    batch = torch.stack([target.preprocess(crop) for crop in crops_of(run, rows)])
    with torch.no_grad():
        expected = target.module(batch).numpy()
    stored = io.read_npz(run.path(f"results/activations/demo/{TARGET}/{GRADCAM_VIEW}/fc.npz"))
    np.testing.assert_allclose(stored["activations"][rows], expected, rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------- t-vMF at scoring time


def test_similarity_artifacts_hold_only_cosines(run):
    files = sorted(p.relative_to(run.path("results/similarity")).as_posix()
                   for p in run.path("results/similarity").rglob("*.npz"))
    assert files == [f"demo/{CLIP}/{view}/words/cos.npz" for view in ("center", GRADCAM_VIEW)]


@pytest.mark.parametrize("view", ["center", GRADCAM_VIEW])
def test_tvmf_descriptions_equal_scores_of_the_stored_cosines(run, view):
    """t-vMF applied in float32 to the stored cosines, then averaged (docs/methods.md)."""
    sims = io.read_npz(run.path(f"results/similarity/demo/{CLIP}/{view}/words/cos.npz"))
    acts = io.read_npz(run.path(f"results/activations/demo/{TARGET}/{view}/layer4-mean.npz"))
    scores = www.layer_scores(sims["prompt"], sims["base"], acts["activations"], N_IMAGES,
                              sim="tvmf", kappa=KAPPA)
    method = f"www-{view}-tvmf-k{KAPPA}-n{N_IMAGES}-a0.95"
    table = io.read_parquet(run.path(f"results/descriptions/demo/{TARGET}/layer4-mean/{method}/words.parquet"))
    for neuron in range(scores.shape[0]):
        chosen = table[(table["neuron"] == neuron) & table["selected"]].sort_values("rank")
        assert chosen["concept_id"].tolist() == www.select_concepts(scores[neuron])
        np.testing.assert_array_equal(chosen["score"].to_numpy(),
                                      scores[neuron, chosen["concept_id"].to_numpy()])


# ---------------------------------------------------------------- ablation table and figures


def test_ablation_numbers_equal_means_of_the_evaluations(run):
    table = pd.read_csv(run.path("results/tables/ablation.csv"))
    assert [(row.gradcam, row.tvmf) for row in table.itertuples()] == [
        (False, False), (True, False), (False, True), (True, True)]
    for row in table.itertuples():
        view = GRADCAM_VIEW if row.gradcam else "center"
        sim = f"tvmf-k{KAPPA}" if row.tvmf else "cos"
        method = f"www-{view}-{sim}-n{N_IMAGES}-a0.95"
        assert row.method == method
        per_neuron = io.read_parquet(run.path(f"results/eval/demo/{TARGET}/fc/{method}/words.parquet"))
        expected = {"clip_cos": per_neuron["www_clip_cos"].mean() * 100,
                    "mpnet_cos": per_neuron["www_mpnet_cos"].mean() * 100,
                    "f1": per_neuron["www_f1"].mean() * 100,
                    "hit_rate": per_neuron["www_hit"].mean() * 100}
        for column, value in expected.items():
            assert getattr(row, column) == pytest.approx(value, abs=1e-9)
        assert row.n_neurons == len(per_neuron) == 1000
    markdown = run.path("results/tables/ablation.md").read_text()
    assert "## probe set demo, concept set words" in markdown and markdown.count("| yes ") >= 2


def test_concept_discovery_table_gains_the_improved_methods_rows(run):
    table = pd.read_csv(run.path("results/tables/concept_discovery.csv"))
    assert f"www-{GRADCAM_VIEW}-tvmf-k{KAPPA}-n{N_IMAGES}-a0.95" in set(table["method"])


@pytest.mark.parametrize("name", ["crop_comparison.png", "neuron_panels/layer4-mean.png"])
def test_figures_are_nonblank_pngs(run, name):
    with Image.open(run.path(f"results/figures/{name}")) as png:
        pixels = np.asarray(png.convert("RGB"))
    assert pixels.shape[0] > 100 and pixels.shape[1] > 100 and pixels.std() > 10


# ---------------------------------------------------------------- what a change reruns


def test_kappa_change_reruns_only_the_tvmf_descriptions_and_evaluations(run):
    with run.changed_config(lambda c: c["tvmf"].update(kappa=8)):
        jobs = run.planned_jobs()
    assert "similarity" not in jobs                       # t-vMF is applied when scoring
    assert jobs["www_descriptions"] == 1   # one job per concept set: every view and layer
    assert jobs["evaluate_descriptions"] == 1   # one job per concept set, every method in it
    # Besides: the tables and figures that join them, and the record of the run's config.
    assert set(jobs) <= {"www_descriptions", "evaluate_descriptions",
                         "concept_discovery_table", "ablation_table", "neuron_panel_figure",
                         "browser", "browser_screenshot", "provenance", "all"}


def test_crop_fraction_change_reruns_the_gradcam_view_but_not_grad_cam_or_center(run):
    with run.changed_config(lambda c: c["gradcam"].update(crop_fraction=0.4)):
        jobs = run.planned_jobs()
    # The model jobs of the Grad-CAM view only, never the center view's.
    assert jobs["crop_boxes"] == jobs["activations"] == jobs["image_embeddings"] == 1
    # The concept set's one similarity job writes every view's cosines and its one WWW job
    # describes every view, so both follow (arithmetic on stored embeddings, no model).
    assert jobs["similarity"] == 1 and jobs["www_descriptions"] == 1
    assert not {"grad_cam", "text_embeddings", "probe_manifest", "concept_set",
                "evaluation_class_embeddings", "evaluation_text_embeddings"} & set(jobs)


def test_gradcam_layer_change_reruns_grad_cam_but_not_the_center_view(run):
    with run.changed_config(lambda c: c["gradcam"].update(layer="layer3")):
        jobs = run.planned_jobs()
    assert jobs["grad_cam"] == jobs["crop_boxes"] == jobs["activations"] == 1
    assert "text_embeddings" not in jobs
