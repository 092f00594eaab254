"""Several targets in one run (config ``targets:``), and checkpoints of one architecture.

Two tiny runs of two targets (a random ResNet-18 and a random MobileNetV3-small; two
checkpoint files of one random ResNet-18) and one single-target run per target: the shared
stages run once however many targets there are, each target's descriptions equal its own
single-target run's, and the comparison tables' numbers are recomputed here from the
description and evaluation parquets with plain pandas (not neuron_concepts.compare). With the
gradcam view, the center view's CLIP stages run once and the gradcam view's once per target,
each from its own crops, as in the target's single-target run.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torchvision

from conftest import Workflow, tiny_config
from neuron_concepts import names, paths

pytestmark = pytest.mark.workflow

RESNET = {"name": "resnet18", "source": "torchvision", "weights": "IMAGENET1K_V1",
          "layers": ["layer4", "fc"], "final_layer": "fc"}
MOBILENET = {"name": "mobilenet_v3_small", "source": "torchvision", "weights": "random",
             "layers": ["features.3", "classifier.3"]}
TAGS = {"resnet18": "resnet18-random", "mobilenet_v3_small": "mobilenet_v3_small-random"}
LAYERS = {"resnet18-random": ["layer4-mean", "fc"],
          "mobilenet_v3_small-random": ["features.3-mean", "classifier.3"]}
METHODS = ["www-center-cos-n4-a0.95", "www-center-tvmf-k16-n4-a0.95"]


def base_config() -> dict:
    """The tiny config, one concept set, two WWW methods (so methods can agree), one job per
    layer (several targets need it), no browser."""
    config = tiny_config(concept_set="words")
    config["methods"]["www"]["similarities"] = ["cos", "tvmf"]
    config["scale"]["description_jobs"] = "layer"
    config["browser"] = {"enabled": False}
    return config


def two_targets() -> dict:
    config = base_config()
    del config["target"]
    config["targets"] = [copy.deepcopy(RESNET), copy.deepcopy(MOBILENET)]
    return config


def single_target(target: dict) -> dict:
    config = base_config()
    config["target"] = copy.deepcopy(target)
    return config


def executed_jobs(flow: Workflow) -> dict[str, int]:
    """Rule -> jobs the run executed, from the job stats of Snakemake's own log of the run."""
    logs = sorted((flow.root / ".snakemake" / "log").glob("*.snakemake.log"))
    text = logs[-1].read_text()
    stats = text.split("Job stats:")[1].split("\n\n")[0].splitlines()[3:]
    jobs = dict(line.split() for line in stats if line.strip())
    jobs.pop("total", None)
    return {rule: int(count) for rule, count in jobs.items()}


def descriptions(flow: Workflow, target: str, layer: str, method: str) -> pd.DataFrame:
    return pd.read_parquet(flow.path(f"results/descriptions/demo/{target}/{layer}/{method}/words.parquet"))


def top(table: pd.DataFrame) -> pd.Series:
    return table[table["rank"] == 0].set_index("neuron")["concept_id"].sort_index()


@pytest.fixture(scope="module")
def compared(run_workflow) -> Workflow:
    return run_workflow(two_targets())


def test_shared_stages_run_once_and_each_target_its_own(compared):
    jobs = executed_jobs(compared)
    # no target in their paths: once for both targets
    for rule in ("probe_manifest", "text_embeddings", "image_embeddings", "similarity",
                 "evaluation_text_embeddings", "compare_targets"):
        assert jobs[rule] == 1, (rule, jobs)
    # one activations job per target (its own rule), one description job per target layer
    assert jobs["activations"] == 1 and jobs["activations_mobilenet_v3_small_random"] == 1
    assert jobs["www_descriptions"] == 2 * 2
    assert jobs["evaluate_descriptions"] == 2  # each target's final layer
    assert "compare_checkpoints" not in jobs  # two architectures: no checkpoints


@pytest.mark.parametrize("entry", [RESNET, MOBILENET], ids=["primary", "second"])
def test_each_targets_descriptions_equal_its_single_target_run(compared, run_workflow, entry):
    single = run_workflow(single_target(entry))
    tag = TAGS[entry["name"]]
    for layer in LAYERS[tag]:
        for method in METHODS:
            pd.testing.assert_frame_equal(descriptions(compared, tag, layer, method),
                                          descriptions(single, tag, layer, method))


def test_comparison_table_recomputed_from_the_descriptions(compared):
    table = pd.read_csv(compared.path("results/tables/compare_targets.csv"))
    expected_rows = [(t, l, m) for t, layers in LAYERS.items() for l in layers for m in METHODS]
    assert list(zip(table["target"], table["layer"], table["method"])) == expected_rows
    final = {"resnet18-random": "fc", "mobilenet_v3_small-random": "classifier.3"}
    for row in table.itertuples():
        d = descriptions(compared, row.target, row.layer, row.method)
        neurons = d["neuron"].nunique()
        best = top(d)
        assert row.n_neurons == neurons
        assert row.n_distinct_top == len(set(best.tolist()))
        assert row.distinct_top_pct == pytest.approx(100 * len(set(best.tolist())) / neurons)
        flags = d.groupby("neuron").agg(selected=("selected", "max"), fallback=("fallback", "max"))
        described = [bool(s) and not bool(f) for s, f in zip(flags["selected"], flags["fallback"])]
        assert row.described_pct == pytest.approx(100 * sum(described) / neurons)
        if row.layer == final[row.target]:
            per_neuron = pd.read_parquet(compared.path(
                f"results/eval/demo/{row.target}/{row.layer}/{row.method}/words.parquet"))
            assert row.www_f1 == pytest.approx(100 * per_neuron["www_f1"].mean())
            assert row.www_clip_cos == pytest.approx(100 * per_neuron["www_clip_cos"].mean())
        else:
            assert np.isnan(row.www_f1)
    assert compared.path("results/figures/compare_distinct_concepts.png").stat().st_size > 0
    assert "| resnet18-random " in compared.path("results/tables/compare_targets.md").read_text()


def test_agreement_table_recomputed_from_the_descriptions(compared):
    table = pd.read_csv(compared.path("results/tables/compare_agreement.csv"))
    assert len(table) == sum(len(layers) for layers in LAYERS.values())  # one method pair each
    for row in table.itertuples():
        a = top(descriptions(compared, row.target, row.layer, row.method_a))
        b = top(descriptions(compared, row.target, row.layer, row.method_b))
        assert row.n_neurons == len(a)
        assert row.agreement_pct == pytest.approx(100 * float((a.to_numpy() == b.to_numpy()).mean()))


def test_a_single_target_run_has_no_comparison(run_workflow):
    single = run_workflow(single_target(MOBILENET))
    assert not list(single.path("results/tables").glob("compare_*"))
    assert not single.path("results/figures/compare_distinct_concepts.png").exists()


# ---------------------------------------------------------------- checkpoints


def write_checkpoints(root: Path) -> None:
    """Two state dicts of a ResNet-18, random with seeds 1 and 2 (an "early" and a "late" checkpoint)."""
    for seed, name in ((1, "early"), (2, "late")):
        torch.manual_seed(seed)
        model = torchvision.models.resnet18(weights=None)
        (root / "checkpoints").mkdir(exist_ok=True)
        torch.save(model.state_dict(), root / "checkpoints" / f"{name}.pth")


def checkpoints_config() -> dict:
    config = base_config()
    del config["target"]
    config["weights"] = "pretrained"  # the checkpoint files are the weights (CLIP: random)
    config["evaluation"]["probe_sets"] = []  # no sentence model to fetch
    config["targets"] = [{**copy.deepcopy(RESNET), "weights": f"checkpoints/{name}.pth"}
                         for name in ("early", "late")]
    return config


CKPT_TAGS = ("resnet18-ckpt-early", "resnet18-ckpt-late")


@pytest.fixture(scope="module")
def checkpoints(run_workflow) -> Workflow:
    return run_workflow(checkpoints_config(), prepare=write_checkpoints)


def test_checkpoint_table_recomputed_from_the_descriptions(checkpoints):
    jobs = executed_jobs(checkpoints)
    assert jobs["similarity"] == 1 and jobs["image_embeddings"] == 1
    assert jobs["activations"] == 1 and jobs["activations_resnet18_ckpt_late"] == 1
    table = pd.read_csv(checkpoints.path("results/tables/compare_checkpoints.csv"))
    assert list(zip(table["layer"], table["method"])) == [(l, m) for l in ("layer4-mean", "fc")
                                                           for m in METHODS]
    assert set(table["before"]) == {CKPT_TAGS[0]} and set(table["after"]) == {CKPT_TAGS[1]}
    for row in table.itertuples():
        before = descriptions(checkpoints, CKPT_TAGS[0], row.layer, row.method)
        after = descriptions(checkpoints, CKPT_TAGS[1], row.layer, row.method)
        changed = int((top(before).to_numpy() != top(after).to_numpy()).sum())
        assert (row.n_neurons, row.n_changed) == (before["neuron"].nunique(), changed)
        assert row.changed_pct == pytest.approx(100 * changed / row.n_neurons)
        jaccards = []
        for neuron in sorted(before["neuron"].unique()):
            a = set(before[(before.neuron == neuron) & (before["rank"] < 5)]["concept_id"])
            b = set(after[(after.neuron == neuron) & (after["rank"] < 5)]["concept_id"])
            jaccards.append(len(a & b) / len(a | b))
        assert row.mean_jaccard == pytest.approx(float(np.mean(jaccards)))
    # different random weights: some top concept changed somewhere
    assert table["n_changed"].sum() > 0


def test_most_changed_neurons_are_those_whose_concepts_changed_most(checkpoints):
    table = pd.read_csv(checkpoints.path("results/tables/compare_checkpoints_most_changed.csv"))
    assert not table.empty
    for (layer, method), rows in table.groupby(["layer", "method"], sort=False):
        assert len(rows) <= 10
        assert list(rows["jaccard_distance"]) == sorted(rows["jaccard_distance"], reverse=True)
        before = descriptions(checkpoints, CKPT_TAGS[0], layer, method)
        after = descriptions(checkpoints, CKPT_TAGS[1], layer, method)
        for row in rows.itertuples():
            texts = lambda d: d[(d.neuron == row.neuron) & (d["rank"] == 0)]["concept"].iloc[0]
            assert (row.top_before, row.top_after) == (texts(before), texts(after))
    assert checkpoints.path("results/figures/compare_checkpoints.png").stat().st_size > 0
    # the checkpoints are also compared as targets
    compared = pd.read_csv(checkpoints.path("results/tables/compare_targets.csv"))
    assert list(dict.fromkeys(compared["target"])) == list(CKPT_TAGS)


def test_each_checkpoint_has_a_browser_with_a_switcher_and_the_others_concepts(checkpoints):
    """With the browser on, each checkpoint has its site (the second in targets/<tag>/): its
    pages link the other's, and each neuron's data holds the other checkpoint's top concept
    per method, as its description parquet has it."""
    import json

    def browser_on(config):
        config["browser"] = {"enabled": True, "screenshot": False}

    early, late = CKPT_TAGS
    with checkpoints.changed_config(browser_on):
        checkpoints.snakemake("browser", "browser_" + late.replace("-", "_"))
    primary = checkpoints.path("results/browser")
    other = primary / "targets" / late
    assert f'<a href="../../index.html" class="" data-target="{early}">{early}</a>' in (
        other / "index.html").read_text()
    assert f'<a href="targets/{late}/index.html" class="" data-target="{late}">' in (
        primary / "layer-fc.html").read_text()
    for site, shown in ((other, early), (primary, late)):
        script = (site / "data" / "fc.js").read_text().splitlines()[1]
        data = json.loads(script.split("] = ", 1)[1].rstrip(";"))
        for method in METHODS:
            table = descriptions(checkpoints, shown, "fc", method)
            expected = table[table["rank"] == 0].set_index("neuron")["concept"]
            assert {n["id"]: n["cs"]["words"]["ckpt"][shown][method] for n in data["neurons"]} == \
                expected.to_dict()


# ---------------------------------------------------------------- the gradcam view, per target


GRADCAM_VIEW = names.view_name("gradcam", crop_fraction=0.5)
GRADCAM_METHODS = [names.www_method_name(view, "cos", n_images=4, alpha=0.95)
                   for view in ("center", GRADCAM_VIEW)]
CLIP_TAG = "tiny-clip-random"


def with_gradcam(config: dict) -> dict:
    """Both views, one similarity; no evaluation (the views are what is compared)."""
    config["views"] = ["center", "gradcam"]
    config["methods"]["www"]["similarities"] = ["cos"]
    config["evaluation"]["probe_sets"] = []
    return config


@pytest.fixture(scope="module")
def compared_gradcam(run_workflow) -> Workflow:
    return run_workflow(with_gradcam(two_targets()))


def embeddings(flow: Workflow, view: str) -> dict[str, np.ndarray]:
    with np.load(flow.path(paths.image_embeddings("demo", CLIP_TAG, view))) as stored:
        return {key: stored[key] for key in stored.files}


def test_gradcam_view_is_each_targets_own_and_center_is_shared(compared_gradcam, run_workflow):
    flow = compared_gradcam
    jobs = executed_jobs(flow)
    # center once for both targets; the gradcam view's crops, embeddings, cosines per target
    assert jobs["image_embeddings"] == 1 + 2, jobs
    assert jobs["grad_cam"] == 2 and jobs["crop_boxes"] == 2
    assert jobs["similarity"] == 1  # one job writes every (model, view) file of a concept set
    assert jobs["www_descriptions"] == 2 * 2
    own = {tag: names.target_view(GRADCAM_VIEW, tag) for tag in TAGS.values()}
    stored = sorted(p.name for p in flow.path(paths.image_embeddings("demo", CLIP_TAG, "x")).parent.glob("*.npz"))
    assert stored == sorted(f"{view}.npz" for view in ["center", *own.values()])
    cosines = flow.path(paths.similarity("demo", CLIP_TAG, "center", "words", "cos.npz")).parents[2]
    assert sorted(p.name for p in cosines.iterdir()) == sorted(["center", *own.values()])
    # each target's crops are its own: other boxes, other CLIP embeddings
    boxes = {tag: pd.read_parquet(flow.path(paths.crop_boxes("demo", tag, "f0.5"))) for tag in TAGS.values()}
    first, second = boxes.values()
    assert list(first["image_id"]) == list(second["image_id"]) and not first.equals(second)
    assert not np.array_equal(embeddings(flow, own["resnet18-random"])["emb"],
                              embeddings(flow, own["mobilenet_v3_small-random"])["emb"])
    # ... the same as a single-target run's (named gradcam-f0.5 there), descriptions included
    for entry in (RESNET, MOBILENET):
        tag = TAGS[entry["name"]]
        single = run_workflow(with_gradcam(single_target(entry)))
        assert not single.path(paths.image_embeddings("demo", CLIP_TAG, own[tag])).exists()
        pd.testing.assert_frame_equal(boxes[tag], pd.read_parquet(
            single.path(paths.crop_boxes("demo", tag, "f0.5"))))
        for key, values in embeddings(single, GRADCAM_VIEW).items():
            np.testing.assert_array_equal(embeddings(flow, own[tag])[key], values)
        for layer in LAYERS[tag]:
            for method in GRADCAM_METHODS:
                pd.testing.assert_frame_equal(descriptions(flow, tag, layer, method),
                                              descriptions(single, tag, layer, method))
