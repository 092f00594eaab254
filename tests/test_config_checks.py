"""Config cross-checks and the settings resolved from a config, without starting Snakemake."""

from __future__ import annotations

import copy
import re

import pytest
import yaml
from snakemake.utils import validate

from conftest import REPO
from neuron_concepts import settings
from neuron_concepts.errors import ConfigError


def validated(config: dict) -> dict:
    """``config`` with the schema's defaults filled in, as the Snakefile sees it."""
    validate(config, str(REPO / "config.schema.yaml"))
    return config


@pytest.fixture
def demo(monkeypatch) -> dict:
    """The bundled demo config, validated; file checks resolve against the repository."""
    monkeypatch.chdir(REPO)
    return validated(yaml.safe_load((REPO / "config.yaml").read_text()))


def test_the_demo_config_passes_every_check(demo):
    settings.check(demo)


def change(config: dict, path: str, value) -> None:
    """Set the dotted ``path`` of ``config`` to ``value``."""
    *parents, key = path.split(".")
    for parent in parents:
        config = config[parent]
    config[key] = value


@pytest.mark.parametrize("path, value, message", [
    ("target.final_layer", "layer9", "target.final_layer 'layer9' is not in target.layers"),
    ("evaluation.probe_sets", ["imagenet_val"], "evaluation.probe_sets names 'imagenet_val'"),
    ("evaluation.concept_sets", ["nouns"], "evaluation.concept_sets names 'nouns'"),
    ("probe_sets.photos", {"type": "folder", "root": "no/such/folder"},
     "probe_sets.photos.root: folder no/such/folder does not exist"),
    ("probe_sets.photos", {"type": "imagefolder"}, "probe_sets.photos.root is required"),
    ("probe_sets.demo.labels_csv", "no/labels.csv", "probe_sets.demo.labels_csv: file no/labels.csv"),
    ("concept_sets.demo_words.path", "no/words.txt", "concept_sets.demo_words.path: file no/words.txt"),
])
def test_core_checks_name_the_key(demo, path, value, message):
    change(demo, path, value)
    with pytest.raises(ConfigError, match=message):
        settings.check_core(demo)


@pytest.mark.parametrize("path, value, message", [
    ("views", ["center"], "methods.clip_dissect.views names 'gradcam', which is not under views"),
    ("stability.base_k", 7, "stability.base_k 7 is not in stability.ks"),
    ("stability.n_best", 12, "stability.n_best 12 exceeds methods.clip_dissect.n_best"),
    ("methods.clip_dissect.n_best", 3, "methods.clip_dissect.n_best 3 keeps fewer concepts than "
                                       "the evaluation's top-5 accuracy reads"),
    ("stability.layers", ["layer9"], "stability.layers names 'layer9'"),
    ("stability.probe_sets", ["nope"], "stability.probe_sets names 'nope'"),
    ("stability.concept_sets", ["nope"], "stability.concept_sets names 'nope'"),
])
def test_clip_dissect_checks_name_the_key(demo, path, value, message):
    demo["methods"]["clip_dissect"]["views"] = ["center", "gradcam"]
    change(demo, path, value)
    with pytest.raises(ConfigError, match=message):
        settings.check_clip_dissect(demo)


def test_an_inconsistent_stability_study_that_is_off_is_not_checked(demo):
    demo["stability"].update(variants=[], base_k=7)
    settings.check_clip_dissect(demo)


@pytest.mark.parametrize("path, value, message", [
    ("figures.probe_set", "nope", "figures.probe_set names 'nope'"),
    ("figures.concept_set", "nope", "figures.concept_set names 'nope'"),
    ("figures.layers", ["layer9"], "figures.layers names 'layer9', which is not in target.layers"),
])
def test_figure_checks_name_the_key(demo, path, value, message):
    change(demo, path, value)
    with pytest.raises(ConfigError, match=message):
        settings.check_figures(demo)


@pytest.mark.parametrize("path, value, message", [
    ("convis.probe", "nope", "convis.probe names 'nope', which is not defined under probe_sets"),
    ("convis.vocabulary", "nope", "convis.vocabulary names 'nope'"),
    ("convis.stride", 256, "convis.stride 256 exceeds the largest of convis.patch_sizes"),
    ("convis.vocabularies.demo", {"words_file": "no/words.txt"},
     "convis.vocabularies.demo.words_file: file no/words.txt does not exist"),
    ("convis.ood", {"probe": "nope"}, "convis.ood.probe names 'nope'"),
    ("convis.ood", {"probe": "demo", "train_probe": "nope"}, "convis.ood.train_probe names 'nope'"),
    ("convis.ood", {"probe": "demo", "vocabulary": "nope"}, "convis.ood.vocabulary names 'nope'"),
    ("convis.wsol", {"probe": "demo"}, "convis.wsol needs exactly one of cub_root"),
    ("convis.wsol", {"probe": "demo", "cub_root": "a", "boxes_csv": "b.csv"},
     "convis.wsol needs exactly one of cub_root"),
    ("convis.wsol", {"probe": "demo", "boxes_csv": "no/boxes.csv"}, "convis.wsol: no/boxes.csv does not exist"),
])
def test_convis_checks_name_the_key(demo, path, value, message):
    change(demo, path, value)
    with pytest.raises(ConfigError, match=message):
        settings.check_convis(demo)


def test_check_runs_every_check(demo):
    demo["figures"]["layers"] = ["layer9"]
    with pytest.raises(ConfigError, match="figures.layers"):
        settings.check(demo)


# ---------------------------------------------------------------- resolved settings


def test_demo_settings_name_views_and_methods(demo):
    resolved = settings.resolve(demo)
    assert resolved.views == ["center", "gradcam-f0.5"]
    assert [m.name for m in resolved.www] == [
        "www-center-cos-n5-a0.95", "www-center-tvmf-k16-n5-a0.95",
        "www-gradcam-f0.5-cos-n5-a0.95", "www-gradcam-f0.5-tvmf-k16-n5-a0.95"]
    assert [m.name for m in resolved.clip_dissect] == ["softwpmi-center-cos-k10", "wpmi-center-cos-k5"]
    assert resolved.clip_dissect[1].top_k == 5 and resolved.www[3].view == "gradcam-f0.5"


def test_resolving_leaves_the_config_as_it_was(demo):
    """The provenance rule records the config itself: resolving must not add to it."""
    before = copy.deepcopy(demo)
    settings.resolve(demo)
    assert demo == before


def test_empty_selections_mean_every_configured_one(demo):
    resolved = settings.resolve(demo)
    assert resolved.stability.layers == demo["target"]["layers"]
    assert resolved.stability.probe_sets == ["demo"]
    assert resolved.stability.concept_sets == ["imagenet", "demo_words"]
    assert resolved.figures.layers == ["layer4", "fc"]  # set in the demo
    demo["figures"]["layers"] = []
    demo["stability"]["layers"] = ["layer2"]
    resolved = settings.resolve(demo)
    assert resolved.figures.layers == demo["target"]["layers"]
    assert resolved.stability.layers == ["layer2"]


def test_figures_default_to_the_first_evaluated_sets_else_the_first_configured(demo):
    assert (settings.resolve(demo).figures.probe, settings.resolve(demo).figures.concepts) == \
        ("demo", "imagenet")
    demo["evaluation"] = {"probe_sets": [], "concept_sets": []}
    demo["concept_sets"] = {"demo_words": demo["concept_sets"]["demo_words"], **demo["concept_sets"]}
    assert settings.resolve(demo).figures.concepts == "demo_words"


@pytest.mark.parametrize("switch_off, feature, off", [
    (lambda c: c["methods"]["clip_dissect"].update(variants=[]), "clip_dissect", []),
    (lambda c: c["stability"].update(variants=[]), "stability", None),
    (lambda c: c.pop("convis"), "convis", None),
    (lambda c: c["evaluation"].update(probe_sets=[]), "evaluation_probe_sets", []),
])
def test_a_feature_is_off_when_its_list_is_empty_or_its_section_absent(demo, switch_off, feature, off):
    assert getattr(settings.resolve(demo), feature)
    switch_off(demo)
    assert getattr(settings.resolve(demo), feature) == off


@pytest.mark.parametrize("feature, switch_off", [
    ("www", lambda c: c["methods"]["www"].update(similarities=[])),
    ("clip_dissect", lambda c: c["methods"]["clip_dissect"].update(variants=[])),
    ("stability", lambda c: c["stability"].update(variants=[])),
    ("evaluation", lambda c: c["evaluation"].update(concept_sets=[])),
    ("ablation", lambda c: c["methods"]["www"].update(similarities=["cos"])),
    ("ablation", lambda c: c.update(views=["center"])),
    ("crop_comparison", lambda c: c.update(views=["center"])),
    ("convis", lambda c: c.pop("convis")),
    ("convis_images", lambda c: c["convis"].update(images=[])),
    ("convis_pairs", lambda c: c["convis"].update(pairs=[])),
    ("browser", lambda c: c["browser"].update(enabled=False)),
    ("browser_screenshot", lambda c: c["browser"].update(screenshot=False)),
    ("browser_screenshot", lambda c: c["browser"].update(enabled=False)),
])
def test_one_switch_says_whether_each_feature_runs(demo, feature, switch_off):
    assert settings.resolve(demo).on(feature)
    switch_off(demo)
    assert not settings.resolve(demo).on(feature)
    with pytest.raises(KeyError, match="unknown feature 'convis_map'"):
        settings.resolve(demo).on("convis_map")


def test_every_feature_has_an_answer(demo):
    resolved = settings.resolve(demo)
    assert {feature: resolved.on(feature) for feature in settings.FEATURES}
    assert not resolved.on("convis_ood") and not resolved.on("convis_wsol")  # not in the demo


def test_convis_and_browser_sections_are_typed_with_their_defaults_resolved(demo):
    demo["convis"]["pairs"] = demo["convis"]["pairs"] * 2  # a repeated pair is one map
    demo["convis"]["wsol"] = {"probe": "demo", "boxes_csv": "boxes.csv", "cub_split": "test",
                              "seed": 3, "synset": "bird.n.01"}
    resolved = settings.resolve(demo)
    cv = resolved.convis
    assert cv.grid == "anchored64-128-stride32" and cv.vocabulary == "demo"
    assert len(cv.pairs) == len(set(cv.pairs)) == len({(p["image"], p["synset"]) for p in demo["convis"]["pairs"]})
    assert cv.wsol.vocabulary == cv.vocabulary and cv.wsol.seed == 3 and cv.ood is None
    assert resolved.on("convis_wsol")
    assert resolved.browser.n_images == demo["methods"]["www"]["n_images"]  # browser.n_images: null
    demo["browser"]["n_images"] = 3
    assert settings.resolve(demo).browser.n_images == 3


def test_existing_off_spellings_still_turn_features_off(monkeypatch):
    """The test config's clip_dissect: {variants: []} and stability: {variants: []}, no convis."""
    monkeypatch.chdir(REPO)
    config = validated(yaml.safe_load((REPO / "tests" / "data" / "tiny-config.yaml").read_text()))
    settings.check(config)
    resolved = settings.resolve(config)
    assert resolved.clip_dissect == [] and resolved.stability is None and resolved.convis is None


def test_schema_defaults_are_read_not_repeated(demo):
    """kappa comes from the validated config: the schema's 16 when tvmf is left out, else the set value."""
    del demo["tvmf"]
    demo["methods"]["clip_dissect"]["similarities"] = ["tvmf"]
    demo = validated(demo)
    resolved = settings.resolve(demo)
    assert resolved.www[1].sim == "tvmf-k16" and resolved.clip_dissect[0].sim == "tvmf-k16"
    demo["tvmf"]["kappa"] = 8
    resolved = settings.resolve(demo)
    assert resolved.www[1].sim == "tvmf-k8" and resolved.stability.sims == ["cos"]
    assert resolved.clip_dissect[0].name == "softwpmi-center-tvmf-k8-k10"


# ---------------------------------------------------------------- several targets


def with_targets(demo: dict, *entries: dict) -> dict:
    """The demo with ``targets:`` (validated through settings.validate, which fills each
    entry's defaults and makes the first the primary ``target``), one job per layer, center view."""
    config = copy.deepcopy(demo)
    del config["target"]
    config["targets"] = [dict(entry) for entry in entries]
    config["views"] = ["center"]
    config["scale"]["description_jobs"] = "layer"
    settings.validate(config, REPO / "config.schema.yaml")
    return config


RESNET18 = {"name": "resnet18", "weights": "random", "layers": ["layer4", "fc"]}


def test_targets_resolve_the_first_as_primary_with_defaults(demo):
    config = with_targets(demo, demo["target"], RESNET18)
    settings.check(config)
    assert config["target"] is config["targets"][0]
    assert config["targets"][1]["source"] == "torchvision" and config["targets"][1]["final_layer"] == "auto"
    resolved = settings.resolve(config)
    assert resolved.targets == ("resnet50-IMAGENET1K_V1", "resnet18-random")
    assert resolved.on("compare") and not resolved.on("compare_checkpoints")


def test_checkpoints_are_targets_of_one_architecture(demo):
    config = with_targets(demo, demo["target"], {**demo["target"], "weights": "ckpt/epoch10.pth"},
                          RESNET18, {**demo["target"], "weights": "runs/b/epoch90.pt"})
    settings.check(config)
    assert settings.checkpoint_groups(config) == [
        ["resnet50-IMAGENET1K_V1", "resnet50-ckpt-epoch10", "resnet50-ckpt-epoch90"]]
    assert settings.resolve(config).on("compare_checkpoints")


@pytest.mark.parametrize("second, named", [
    ({"weights": "IMAGENET1K_V1"}, "resnet50-IMAGENET1K_V1"),
    ({"weights": "a/epoch1.pth", "first": "b/epoch1.pt"}, "resnet50-ckpt-epoch1"),
])
def test_two_targets_with_one_tag_are_rejected_naming_both(demo, second, named):
    first = {**demo["target"], "weights": second.pop("first", demo["target"]["weights"])}
    config = with_targets(demo, first, {**demo["target"], **second})
    with pytest.raises(ConfigError, match=rf"targets\[0\] .*targets\[1\] .*{re.escape(named)}"):
        settings.check(config)


def test_global_random_weights_name_every_checkpoint_random(demo):
    config = with_targets(demo, demo["target"], {**demo["target"], "weights": "a/epoch1.pth"})
    config["weights"] = "random"
    with pytest.raises(ConfigError, match="resnet50-random"):
        settings.check(config)


def test_several_targets_need_jobs_per_layer(demo):
    config = with_targets(demo, demo["target"], RESNET18)
    config["scale"]["description_jobs"] = "concept_set"
    with pytest.raises(ConfigError, match="scale.description_jobs"):
        settings.check(config)


def test_several_targets_take_the_gradcam_view(demo):
    """Each target's crops are its own (names.target_view in the CLIP stages' paths)."""
    config = with_targets(demo, demo["target"], RESNET18)
    config["views"] = ["center", "gradcam"]
    settings.check(config)
    assert settings.resolve(config).views == ["center", "gradcam-f0.5"]


def test_one_target_is_unchanged_and_compares_nothing(demo):
    before = copy.deepcopy(demo)
    settings.check(demo)
    assert "targets" not in demo and demo == before
    resolved = settings.resolve(demo)
    assert resolved.targets == ("resnet50-IMAGENET1K_V1",)
    assert not resolved.on("compare") and not resolved.on("compare_checkpoints")
    assert settings.target_entries(demo) == [demo["target"]]


def test_no_target_at_all_is_named(demo):
    del demo["target"]
    with pytest.raises(ConfigError, match="target: required"):
        settings.validate(demo, REPO / "config.schema.yaml")
