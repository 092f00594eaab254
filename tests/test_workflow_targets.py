"""Any vision model as the target: the whole DAG with a tiny timm ViT and a tiny
channels-last Swin, configured through the keys a user writes (target.source, kwargs,
layers, layer_options, gradcam.layer: auto).

Each run's activations are recomputed with plain forward hooks on the model, its Grad-CAMs
with textbook autograd, its WWW descriptions from the stored embeddings, and its table's
final-layer metrics from its descriptions: independent computations from the artifacts.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from PIL import Image

from conftest import Workflow, tiny_config
from neuron_concepts import concepts, evaluation, gradcam, io, metrics, models, names, paths, provenance, www
from neuron_concepts.activations import www_top_images
from test_layers import TINY_SWIN, TINY_VIT, explicit_grad_cam

pytestmark = pytest.mark.workflow

CLIP = "tiny-clip-random"
N_IMAGES = 4  # methods.www.n_images of the tiny config

# Per run: the target section, each layer's name in paths with how its value is computed
# from the raw hook output (batch first), and how the Grad-CAM layer's output is a grid.
VIT = dict(
    target={**TINY_VIT, "weights": "random", "layers": ["blocks.0", "blocks.1", "head"],
            "layer_options": {"blocks.1": {"reduction": "cls"}}},
    expected={"blocks.0-mean": ("blocks.0", lambda t: t[:, 1:].mean(1)),
              "blocks.1-cls": ("blocks.1", lambda t: t[:, 0]),
              "head": ("head", lambda t: t)},
    final="head", gradcam="blocks.1.norm1",
    grid=lambda t: t[:, 1:].reshape(t.shape[0], 4, 4, t.shape[2]))
SWIN = dict(
    target={**TINY_SWIN, "weights": "random", "layers": ["layers.0", "layers.1", "head.fc"],
            "layer_options": {"layers.0": {"reduction": "max"}}},
    expected={"layers.0-max": ("layers.0", lambda t: t.amax(dim=(1, 2))),  # [B, h, w, K]
              "layers.1-mean": ("layers.1", lambda t: t.mean(dim=(1, 2))),
              "head.fc": ("head.fc", lambda t: t)},
    final="head.fc", gradcam="layers.1.blocks.0.norm1",
    grid=lambda t: t,
    # browser.enabled false runs here (tests/test_switches.py): no browser, no screenshot.
    browser={"enabled": False})
RUNS = {"vit": VIT, "swin": SWIN}


def target_config(run: dict) -> dict:
    config = tiny_config(concept_set="words")
    config["target"] = {k: (list(v) if isinstance(v, tuple) else v) for k, v in run["target"].items()}
    config["target"]["kwargs"] = {k: (list(v) if isinstance(v, tuple) else v)
                                  for k, v in run["target"]["kwargs"].items()}
    config["views"] = ["center", "gradcam"]
    config["gradcam"] = {"layer": "auto", "crop_fraction": 0.5, "batch_size": 8}
    if "browser" in run:
        config["browser"] = dict(run["browser"])
    return config


@pytest.fixture(scope="module", params=list(RUNS))
def flow(request, run_workflow) -> tuple[Workflow, dict]:
    run = RUNS[request.param]
    return run_workflow(target_config(run)), run


def target_tag(run: dict) -> str:
    return names.model_tag(run["target"]["name"], "random")


def load_target(flow: Workflow) -> models.TargetModel:
    spec = flow.config["target"]
    return models.load_target(spec["name"], "random", spec["source"], seed=flow.config["seed"],
                              kwargs=spec["kwargs"], cache_dir=flow.path("resources/weights"))


def manifest(flow: Workflow) -> pd.DataFrame:
    return io.read_parquet(flow.path(paths.probe_manifest("demo")))


def hooked_outputs(model: torch.nn.Module, paths: list[str], images: torch.Tensor) -> dict:
    """Each module's raw output for ``images``, by plain forward hooks."""
    kept = {}
    handles = [model.get_submodule(p).register_forward_hook(
        lambda _m, _i, out, p=p: kept.__setitem__(p, out)) for p in paths]
    try:
        with torch.no_grad():
            model(images)
    finally:
        for handle in handles:
            handle.remove()
    return kept


def test_activations_equal_forward_hooks_on_the_model(flow):
    flow, run = flow
    target = load_target(flow)
    table = manifest(flow)
    images = torch.stack([target.preprocess(Image.open(flow.path(p)).convert("RGB")) for p in table["path"]])
    raw = hooked_outputs(target.module, [path for path, _ in run["expected"].values()], images)
    for name, (path, reduce) in run["expected"].items():
        stored = io.read_npz(flow.path(f"results/activations/demo/{target_tag(run)}/center/{name}.npz"))
        expected = reduce(raw[path]).numpy()
        assert stored["activations"].shape == expected.shape
        np.testing.assert_allclose(stored["activations"], expected, atol=1e-5, rtol=1e-5)


def test_cams_equal_textbook_grad_cam_on_whole_images(flow):
    flow, run = flow
    target = load_target(flow)
    table = manifest(flow)
    saved = io.load_cams(flow.path(f"results/gradcam/demo/{target_tag(run)}/cams.npz"))
    transform = gradcam.whole_image_transform(target.input_size, target.mean, target.std)
    batch = torch.stack([transform(Image.open(flow.path(p)).convert("RGB")) for p in table["path"][:3]])
    layer = target.module.get_submodule(run["gradcam"])
    expected, predicted = explicit_grad_cam(target.module, layer, batch, run["grid"])
    np.testing.assert_allclose(saved["cams"][:3], expected.numpy(), atol=1e-4)
    assert saved["predicted"][:3].tolist() == predicted.tolist()


def test_www_descriptions_of_every_layer_equal_recomputation(flow):
    flow, run = flow
    text = io.read_embeddings(flow.path(f"results/text_emb/{CLIP}/words.npz"))
    images = io.read_embeddings(flow.path(f"results/image_emb/demo/{CLIP}/center.npz"))["emb"]
    method = "www-center-cos-n4-a0.95"
    for name in run["expected"]:
        acts = io.read_npz(flow.path(f"results/activations/demo/{target_tag(run)}/center/{name}.npz"))
        table = io.read_parquet(flow.path(
            f"results/descriptions/demo/{target_tag(run)}/{name}/{method}/words.parquet"))
        top = www_top_images(acts["activations"], N_IMAGES)
        assert table.neuron.nunique() == acts["activations"].shape[1]
        for neuron in (0, acts["activations"].shape[1] - 1):
            scores = www.concept_scores(images[top[neuron]], text["emb"], text["base"].astype(np.float32))
            chosen = table[(table.neuron == neuron) & table.selected].sort_values("rank")
            np.testing.assert_allclose(chosen.score.to_numpy(), scores[chosen.concept_id.to_numpy()],
                                       atol=3e-3)


def test_table_evaluates_the_classifier_found_for_the_source(flow):
    flow, run = flow
    assert "final_layer" not in flow.config["target"]  # found (auto), not configured
    table = pd.read_csv(flow.path("results/tables/concept_discovery.csv"))
    synonyms = concepts.imagenet_class_synonyms()
    for method in ("www-center-cos-n4-a0.95", "www-gradcam-f0.5-cos-n4-a0.95"):
        desc = io.read_parquet(flow.path(
            f"results/descriptions/demo/{target_tag(run)}/{run['final']}/{method}/words.parquet"))
        preds = evaluation.selected_predictions(desc, 1000)
        row = table[(table["style"] == "www") & (table["method"] == method)].iloc[0]
        assert row.n_neurons == 1000
        assert row.f1 == pytest.approx(metrics.f1_score(preds, synonyms), abs=1e-9)
        assert row.hit_rate == pytest.approx(metrics.hit_rate(preds, synonyms), abs=1e-9)
    kept = yaml.safe_load(flow.path("results/provenance/config.yaml").read_text())
    assert kept["target"]["final_layer"] == run["final"]  # the run's config says which
    assert kept["gradcam"]["layer"] == run["gradcam"]


def test_the_browser_and_its_screenshot_are_built_only_when_enabled(flow):
    flow, run = flow
    enabled = run.get("browser", {}).get("enabled", True)
    assert flow.path("results/browser/index.html").is_file() == enabled
    assert flow.path("results/figures/browser_panel.png").is_file() == enabled
    if not enabled:
        assert not flow.path("results/browser").exists() and not flow.path("logs/browser").exists()
        manifest = provenance.read_manifest(flow.path("results/provenance/manifest.tsv"))
        assert not [path for path in manifest["path"] if "browser" in path]


@pytest.mark.parametrize("run, layers, options, message", [
    ("vit", ["blocks.9"], {}, r"target\.layers: the model has no layer 'blocks\.9'.*top-level layers are"),
    ("swin", ["layers.0.blocks.0.attn"], {},  # window attention: windows on the batch axis
     r"layer 'layers\.0\.blocks\.0\.attn' gives an output of shape \(48, 16, 24\) for a batch of 3.*"
     r"target\.layer_options\.layers\.0\.blocks\.0\.attn\.layout"),
    ("vit", ["blocks.1", "head"], {"head": {"reduction": "max"}},
     r"target\.layer_options\.head\.reduction: 'max' does not apply to layer 'head'"),
])
def test_a_layer_that_cannot_become_neurons_stops_the_plan(workflow, run, layers, options, message):
    """Before any job runs, naming the layer, its output and the key to change."""
    workflow.config = target_config(RUNS[run])
    workflow.config["target"].update(layers=layers, layer_options=options)
    workflow.config["evaluation"]["probe_sets"] = []
    workflow.write_config()
    result = workflow.snakemake("-n", check=False)
    assert result.returncode != 0 and "Invalid configuration" in result.stdout
    assert re.search(message, " ".join(result.stdout.split()), re.S), result.stdout[-2000:]
    assert not workflow.path("results").exists()
