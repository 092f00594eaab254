"""Names in artifact paths: each kind round-trips, matches its constraint, and is declared once."""

from __future__ import annotations

import re
import shutil

import pytest

from conftest import REPO, layer_path_name
from neuron_concepts import names
from neuron_concepts.names import (CLIP_DISSECT_METHOD, CONVIS_GRID, COSINE_FILE, SIM, VIEW, WILDCARDS,
                                   WWW_METHOD, cosine_file_name, parse_cosine_file_name,
                                   Family, Param, Variant, clip_dissect_method_name,
                                   convis_grid_name, parse_clip_dissect_method, parse_convis_grid,
                                   parse_sim, parse_view, parse_www_method, sim_name, view_name,
                                   www_method_name)

VIEWS = [("center", {}), ("gradcam", {"crop_fraction": 0.5}), ("gradcam", {"crop_fraction": 1}),
         ("gradcam", {"crop_fraction": 0.125}), ("gradcam", {"crop_fraction": 1e-5})]
SIMS = [("cos", None), ("tvmf", 16), ("tvmf", 0), ("tvmf", 2.5), ("tvmf", 1e-3)]
GRIDS = [([64, 128], 16, "none", None), ([128, 64], 32, "noise", None), ([32], 8, "none", 224),
         ([64, 128], 16, "noise", 224)]


@pytest.mark.parametrize("kind, params", VIEWS)
def test_view_names_round_trip(kind, params):
    name = view_name(kind, **params)
    parsed = parse_view(name)
    assert (parsed.kind, parsed.params) == (kind, {k: float(v) for k, v in params.items()})
    assert view_name(parsed.kind, **parsed.params) == name
    assert re.fullmatch(VIEW, name)


@pytest.mark.parametrize("kind, kappa", SIMS)
def test_similarity_names_round_trip(kind, kappa):
    name = sim_name(kind, kappa)
    parsed = parse_sim(name)
    assert parsed.kind == kind and parsed.kappa == (float(kappa) if kind == "tvmf" else 0.0)
    assert sim_name(*parsed) == name
    assert re.fullmatch(SIM, name)


@pytest.mark.parametrize("dtype, name", [("float32", "cos.npz"), ("float16", "cos-f16.npz")])
def test_cosine_file_names_round_trip(dtype, name):
    assert cosine_file_name(dtype) == name and parse_cosine_file_name(name) == dtype
    assert re.fullmatch(COSINE_FILE, name)
    assert cosine_file_name() == "cos.npz"  # the default: every earlier file's name
    with pytest.raises(ValueError, match="float32 or float16"):
        cosine_file_name("bfloat16")
    with pytest.raises(ValueError, match="no cosine file name"):
        parse_cosine_file_name("cos-f8.npz")


@pytest.mark.parametrize("view", ["center", "gradcam-f0.5"])
@pytest.mark.parametrize("sim", ["cos", "tvmf-k16", "tvmf-k0.5"])
def test_www_method_names_round_trip(view, sim):
    name = www_method_name(view, sim, n_images=40, alpha=0.95)
    parsed = parse_www_method(name)
    assert parsed == {"view": view, "sim": sim, "n_images": 40, "alpha": 0.95}
    assert isinstance(parsed["n_images"], int) and isinstance(parsed["alpha"], float)
    assert www_method_name(**parsed) == name
    assert re.fullmatch(WWW_METHOD, name) and not re.fullmatch(CLIP_DISSECT_METHOD, name)


@pytest.mark.parametrize("variant", ["softwpmi", "wpmi"])
@pytest.mark.parametrize("view, sim", [("center", "cos"), ("gradcam-f0.25", "tvmf-k8")])
def test_clip_dissect_method_names_round_trip(variant, view, sim):
    name = clip_dissect_method_name(variant, view, sim, top_k=100)
    parsed = parse_clip_dissect_method(name)
    assert parsed == {"variant": variant, "view": view, "sim": sim, "top_k": 100}
    assert clip_dissect_method_name(**parsed) == name
    assert re.fullmatch(CLIP_DISSECT_METHOD, name) and not re.fullmatch(WWW_METHOD, name)


@pytest.mark.parametrize("sizes, stride, padding, resize", GRIDS)
def test_convis_grid_names_round_trip(sizes, stride, padding, resize):
    name = convis_grid_name(sizes, stride, padding, resize)
    parsed = parse_convis_grid(name)
    assert parsed == {"sizes": sorted(sizes), "stride": stride, "padding": padding, "resize": resize}
    assert convis_grid_name(parsed["sizes"], parsed["stride"], parsed["padding"], parsed["resize"]) == name
    assert re.fullmatch(CONVIS_GRID, name)


def test_names_keep_the_spelling_of_existing_artifacts():
    assert view_name("gradcam", crop_fraction=0.5) == "gradcam-f0.5"
    assert sim_name("tvmf", 16.0) == "tvmf-k16" and sim_name("cos", 16) == "cos"
    assert www_method_name("gradcam-f0.5", "tvmf-k16", n_images=5, alpha=0.95) == \
        "www-gradcam-f0.5-tvmf-k16-n5-a0.95"
    assert clip_dissect_method_name("wpmi", "center", "cos", top_k=28) == "wpmi-center-cos-k28"
    assert convis_grid_name([128, 64], 16) == "anchored64-128-stride16"
    assert convis_grid_name([64, 128], 32, "noise", 224) == "anchored64-128-stride32-noise-r224"
    assert tuple(parse_sim("cos")) == ("cos", 0.0)  # what the scoring rules pass on, as before


@pytest.mark.parametrize("build", [
    lambda: sim_name("tvmf", -1),  # the regex reads no sign: never written
    lambda: sim_name("tvmf"),  # no kappa
    lambda: sim_name("dot"),
    lambda: view_name("saliency"),
    lambda: view_name("gradcam", crop_fraction=0.5, margin=2),
    lambda: www_method_name("center", "cos", n_images=4.5, alpha=0.95),
    lambda: www_method_name("centre", "cos", n_images=4, alpha=0.95),
    lambda: clip_dissect_method_name("softwpmi", "center", "cos"),  # no top_k
    lambda: convis_grid_name([64], 16, padding="zeros"),
])
def test_builders_refuse_what_their_parser_could_not_read(build):
    with pytest.raises(ValueError):
        build()


@pytest.mark.parametrize("parse, name", [
    (parse_sim, "dot"), (parse_sim, "tvmf-k"), (parse_view, "gradcam-f"), (parse_view, "gradcam-0.5"),
    (parse_www_method, "www-center-cos-n5"), (parse_www_method, "softwpmi-center-cos-k10"),
    (parse_clip_dissect_method, "www-center-cos-n5-a0.95"), (parse_convis_grid, "anchored64-stride"),
])
def test_parsers_refuse_other_names(parse, name):
    with pytest.raises(ValueError):
        parse(name)


def test_wildcard_constraints_compile_without_named_groups():
    """Snakemake wraps each constraint in a named group of its own and reads no braces in it."""
    for wildcard, pattern in WILDCARDS.items():
        assert re.compile(pattern).groupindex == {}, wildcard
        assert "{" not in pattern and "}" not in pattern, wildcard
    method = WILDCARDS["method"]
    assert re.fullmatch(method, "www-center-cos-n5-a0.95") and re.fullmatch(method, "wpmi-center-cos-k5")
    assert re.fullmatch(WILDCARDS["crop"], "f0.5") and not re.fullmatch(WILDCARDS["view"], "f0.5")


def test_a_parameter_added_to_a_registry_entry_reaches_build_parse_and_regex():
    views = Family("view", {**names.VIEWS.variants, "gradcam": Variant(
        "gradcam", (Param("crop_fraction", "f"), Param("margin", "m", default=0.1)))})
    name = views.name("gradcam", {"crop_fraction": 0.5})
    assert name == "gradcam-f0.5-m0.1"
    assert views.parse(name).params == {"crop_fraction": 0.5, "margin": 0.1}
    assert re.fullmatch(views.pattern, name) and not re.fullmatch(views.pattern, "gradcam-f0.5")
    assert views.param_values("gradcam", {"crop_fraction": 0.5, "layer": "layer4"}) == \
        {"crop_fraction": 0.5, "margin": 0.1}


# ---------------------------------------------------------------- one place, end to end
# The workflow copy gets its own copy of the library with one line of names.py changed;
# Snakemake runs from the copy's folder, which Python searches first, so the dry run plans
# with the edited registry and nothing else changed.


def edit_registry(root, old: str, new: str) -> None:
    """Copy neuron_concepts into the workflow folder ``root`` with one edit to names.py."""
    package = root / "neuron_concepts"
    shutil.copytree(REPO / "neuron_concepts", package, ignore=shutil.ignore_patterns("__pycache__"))
    source = (package / "names.py").read_text()
    assert source.count(old) == 1, f"names.py no longer holds {old!r}"
    (package / "names.py").write_text(source.replace(old, new))


@pytest.mark.workflow
def test_a_view_parameter_added_in_names_alone_names_every_path_of_the_view(workflow):
    workflow.config["views"] = ["center", "gradcam"]
    workflow.write_config()
    edit_registry(workflow.root, '"gradcam": Variant("gradcam", (Param("crop_fraction", "f"),)),',
                  '"gradcam": Variant("gradcam", (Param("crop_fraction", "f"), '
                  'Param("margin", "m", default=0.1))),')
    out = workflow.snakemake("-n").stdout
    view, target = "gradcam-f0.5-m0.1", "resnet18-random"
    assert f"results/activations/demo/{target}/{view}/fc.npz" in out
    assert f"results/image_emb/demo/tiny-clip-random/{view}.npz" in out
    assert f"results/gradcam/demo/{target}/boxes-f0.5-m0.1.parquet" in out
    assert f"results/descriptions/demo/{target}/fc/www-{view}-cos-n4-a0.95/words.parquet" in out
    assert "gradcam-f0.5/" not in out and "boxes-f0.5.parquet" not in out
    jobs = workflow.planned_jobs()
    assert jobs["crop_boxes"] == 1 and jobs["activations"] == 2 and jobs["crop_comparison_figure"] == 1


@pytest.mark.workflow
def test_a_method_parameter_added_in_names_alone_names_its_descriptions(workflow):
    edit_registry(workflow.root, 'Param("n_images", "n", int), Param("alpha", "a"),',
                  'Param("n_images", "n", int), Param("alpha", "a"), '
                  'Param("max_concepts", "c", int, default=10),')
    out = workflow.snakemake("-n").stdout
    method = "www-center-cos-n4-a0.95-c10"
    for layer in workflow.config["target"]["layers"]:
        assert f"results/descriptions/demo/resnet18-random/{layer_path_name(layer)}/{method}/words.parquet" in out
    assert f"results/eval/demo/resnet18-random/fc/{method}/imagenet.parquet" in out
    assert "www-center-cos-n4-a0.95/" not in out
    assert workflow.planned_jobs()["www_descriptions"] == len(workflow.config["concept_sets"])


def test_a_targets_view_round_trips_and_keeps_its_crop_and_decode():
    """Several targets: a gradcam view's crops are each target's own, named after the view."""
    view = names.target_view("gradcam-f0.5", "resnet18-random")
    assert view == "gradcam-f0.5@resnet18-random"
    parsed = parse_view(view)
    assert (parsed.kind, parsed.params, parsed.target, parsed.base) == \
        ("gradcam", {"crop_fraction": 0.5}, "resnet18-random", "gradcam-f0.5")
    assert names.gradcam_crop(view) == "f0.5" and names.untargeted_view(view) == "gradcam-f0.5"
    assert parse_view("gradcam-f0.5").target is None  # a single target's view: no target
    # the decode suffix stays before the target, and each round-trips
    gpu = names.decoded_view(view, "gpu")
    assert gpu == "gradcam-f0.5+gpudecode@resnet18-random"
    assert names.view_decode(gpu) == "gpu" and names.view_decode(view) == "pil"
    assert names.decoded_view(gpu, "pil") == view
    assert names.target_view("gradcam-f0.5+gpudecode", "vit_b_16-random") == \
        "gradcam-f0.5+gpudecode@vit_b_16-random"
    assert parse_view("gradcam-f0.5+gpudecode@vit_b_16-random").suffix == names.GPU_DECODE_SUFFIX
    for name in (view, gpu, "center", "gradcam-f0.5"):
        assert re.fullmatch(WILDCARDS["view"], name), name


@pytest.mark.parametrize("build", [
    lambda: names.target_view("gradcam-f0.5@resnet18-random", "resnet50-random"),  # one target
    lambda: names.target_view("gradcam-f0.5", "a/b"),  # a target is one path component
    lambda: names.target_view("gradcam-f0.5", "res@net"),
    lambda: names.target_view("gradcam-f", "resnet18-random"),
    lambda: www_method_name("gradcam-f0.5@resnet18-random", "cos", n_images=4, alpha=0.95),
])
def test_a_targets_view_refuses_what_it_could_not_read(build):
    """Method names stay target-free: a target's descriptions are in its own folder."""
    with pytest.raises(ValueError):
        build()


@pytest.mark.parametrize("name", ["gradcam-f0.5@", "gradcam-f0.5@a@b", "gradcam@resnet18-random",
                                  "gradcam-f0.5+gpudecode+gpudecode@x"])
def test_parse_view_refuses_a_malformed_target(name):
    with pytest.raises(ValueError):
        parse_view(name)
    assert not re.fullmatch(WILDCARDS["view"], name)
