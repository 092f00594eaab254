"""neuron_concepts.paths: one function per artifact, its wildcards by default, the one place
that writes a path (the rule files, scripts and browser only call it)."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys

import pytest

from conftest import REPO
from neuron_concepts import names, paths

WILDCARD = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def artifact_functions():
    """Every public function of paths whose parameters all default to their wildcard."""
    found = []
    for name, function in inspect.getmembers(paths, inspect.isfunction):
        if function.__module__ != paths.__name__ or name.startswith("_"):
            continue
        parameters = inspect.signature(function).parameters.values()
        if all(p.default is not inspect.Parameter.empty for p in parameters):
            found.append(pytest.param(function, id=name))
    return found


@pytest.mark.parametrize("function", artifact_functions())
def test_the_default_call_is_a_pattern_whose_wildcards_are_the_parameters(function):
    parameters = inspect.signature(function).parameters
    assert all(p.default == f"{{{name}}}" for name, p in parameters.items()), \
        "every parameter defaults to the wildcard of its own name"
    pattern = function()
    assert set(WILDCARD.findall(pattern)) == set(parameters)
    assert len(WILDCARD.findall(pattern)) == len(parameters), "each wildcard once"


def test_every_function_but_the_shard_and_the_parsers_is_a_pattern_function():
    covered = {p.id for p in artifact_functions()}
    public = {name for name, f in inspect.getmembers(paths, inspect.isfunction)
              if f.__module__ == paths.__name__ and not name.startswith("_")}
    assert public - covered == {"image_shard", "parse_convis_volume", "table_files"}


def test_no_two_artifacts_share_a_pattern():
    patterns = [p.values[0]() for p in artifact_functions()]
    assert len(set(patterns)) == len(patterns)


def test_all_artifacts_but_the_weights_markers_live_under_results():
    for p in artifact_functions():
        if p.id != "weights_marker":
            assert p.values[0]().startswith(paths.RESULTS + "/"), p.id
    assert not paths.weights_marker().startswith(paths.RESULTS)


def pattern_regex(pattern: str) -> re.Pattern:
    """The pattern as the workflow matches it: each wildcard under its constraint
    (names.WILDCARDS; any text for the rest), like Snakemake's own matching."""
    parts, last = [], 0
    for match in WILDCARD.finditer(pattern):
        parts.append(re.escape(pattern[last:match.start()]))
        wildcard = match[1]
        parts.append(f"(?P<{wildcard}>{names.WILDCARDS.get(wildcard, '.+')})")
        last = match.end()
    parts.append(re.escape(pattern[last:]))
    return re.compile("".join(parts))


VIEW = names.view_name("gradcam", crop_fraction=0.5)
SIM = names.sim_name("tvmf", 16)
CONCRETE = {
    "probe": "imagenet_val", "target": names.model_tag("resnet50", "IMAGENET1K_V1"),
    "clip": names.model_tag("ViT-B-32", "openai"), "view": VIEW,
    "layer": names.layer_name("layer4", "mean"), "concepts": "demo_words",
    "method": names.www_method_name(VIEW, SIM, n_images=40, alpha=0.95),
    "crop": names.gradcam_crop(VIEW), "cosine_file": names.cosine_file_name("float16"),
    "vocab": "imagenet", "convis_grid": names.convis_grid_name([64, 128], 16, "noise", 224),
    "image": "n01440764/ILSVRC2012_val_00000293", "synset": "hunting_dog.n.01",
    "eval_model": names.sentence_model_tag("all-mpnet-base-v2"), "texts": "imagenet-classes",
    "table": "ablation", "ext": "csv", "figure": "stability", "file": "data/fc.js",
    "cache": "resources/weights", "kind": "clip", "tag": names.model_tag("ViT-B-16", "openai"),
}


@pytest.mark.parametrize("function", artifact_functions())
def test_a_concrete_path_matches_the_pattern_with_its_values_back(function):
    """Values in the call give the path whose match against the default pattern, under the
    workflow's wildcard constraints, gives the values back: a job finds its wildcards."""
    values = {name: CONCRETE[name] for name in inspect.signature(function).parameters}
    path = function(**values)
    assert not WILDCARD.search(path)
    match = pattern_regex(function()).fullmatch(path)
    assert match is not None and match.groupdict() == values


def test_names_in_paths_parse_back():
    view_path = paths.image_embeddings("demo", CONCRETE["clip"], VIEW)
    assert names.parse_view(view_path.rsplit("/", 1)[1].removesuffix(".npz")).params == {"crop_fraction": 0.5}
    boxes = paths.crop_boxes("demo", CONCRETE["target"], names.gradcam_crop(VIEW))
    crop = re.fullmatch(r".*/boxes-(.+)\.parquet", boxes)[1]
    assert names.parse_gradcam_crop(crop) == {"crop_fraction": 0.5}
    assert names.gradcam_crop("center") is None
    cosines = paths.similarity("demo", CONCRETE["clip"], "center", "imagenet", names.cosine_file_name("float16"))
    assert names.parse_cosine_file_name(cosines.rsplit("/", 1)[1]) == "float16"
    described = paths.descriptions("demo", CONCRETE["target"], CONCRETE["layer"], CONCRETE["method"], "imagenet")
    _, _, _, _, layer, method, _ = described.split("/")
    assert names.parse_layer_name(layer) == ("layer4", "mean")
    assert names.parse_www_method(method) == dict(view=VIEW, sim=SIM, n_images=40, alpha=0.95)
    definitions = paths.convis_concepts("imagenet")
    assert definitions == paths.concepts("convis-imagenet")
    assert names.parse_convis_concept_set_name(definitions.rsplit("/", 1)[1].removesuffix(".parquet")) == "imagenet"
    assert paths.convis_text_embeddings("clip", "demo") == paths.text_embeddings("clip", "convis-demo")


def test_rank_volumes_round_trip_under_any_folder():
    values = {name: CONCRETE[name] for name in ("probe", "clip", "vocab", "convis_grid", "image")}
    volume = paths.convis_volume(**values)
    assert paths.parse_convis_volume(volume) == values
    assert paths.parse_convis_volume(f"/tmp/run/{volume}") == values
    with pytest.raises(ValueError, match="no ConVis rank volume"):
        paths.parse_convis_volume(paths.convis_top(**values))


def test_an_image_shard_lies_beside_its_artifact_and_keeps_a_pattern_a_pattern():
    shard = names.image_shard_name(0, 10000)
    path = paths.image_shard(paths.gradcam_cams("demo", "resnet50-random"), shard)
    assert path == "results/gradcam/demo/resnet50-random/shards/rows0-10000/cams.npz"
    assert names.parse_image_shard(path.split("/")[-2]) == (0, 10000)
    pattern = paths.image_shard(paths.activations())
    assert set(WILDCARD.findall(pattern)) == {"probe", "target", "view", "layer", "shard"}
    assert paths.image_shard("cams.npz", shard) == "shards/rows0-10000/cams.npz"


def test_table_files_are_the_csv_then_the_markdown():
    assert paths.table_files("stability") == ["results/tables/stability.csv", "results/tables/stability.md"]


def test_model_and_sentence_tags():
    assert names.model_tag("resnet50", "/ckpts/my_run.pth") == "resnet50-ckpt-my_run"
    assert names.sentence_model_tag("all-mpnet-base-v2") == "all-mpnet-base-v2"
    assert names.sentence_model_tag("/models/my model/") == "my--model"
    assert names.sentence_model_tag(names.RANDOM) == "random"


def test_importing_paths_loads_nothing_heavy():
    code = ("import sys; import neuron_concepts.paths\n"
            "heavy = [m for m in ('torch', 'numpy', 'pandas', 'PIL') if m in sys.modules]\n"
            "assert not heavy, heavy\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


# A string literal that starts a path under results/: only neuron_concepts.paths writes one.
HAND_WRITTEN = re.compile(r"""(?<![\w.])[rRfFbBuU]{0,2}(["'])results/""")


def hand_written_paths(files):
    return [f"{file.relative_to(REPO)}:{number}: {line.strip()}"
            for file in files for number, line in enumerate(file.read_text().splitlines(), 1)
            if HAND_WRITTEN.search(line)]


def test_no_rule_file_writes_an_artifact_path_by_hand():
    """A new rule names its paths through neuron_concepts.paths (add a function there)."""
    files = sorted((REPO / "rules").rglob("*.smk")) + [REPO / "Snakefile"]
    assert len(files) > 10
    assert hand_written_paths(files) == []


def test_no_script_or_library_module_writes_an_artifact_path_by_hand():
    files = sorted((REPO / "workflow_scripts").glob("*.py")) + sorted(
        f for f in (REPO / "neuron_concepts").glob("*.py") if f.name != "paths.py")
    assert hand_written_paths(files) == []


def test_the_scan_finds_a_hand_written_path(tmp_path):
    rule = tmp_path / "new.smk"
    rule.write_text('rule x:\n    output:\n        "results/new/{probe}.npz",\n'
                    '    input:\n        lambda wc: f"results/probe/{wc.probe}/manifest.parquet",\n'
                    '# what made results/ (prose is fine)\n')
    found = [line for file in [rule] for line in file.read_text().splitlines() if HAND_WRITTEN.search(line)]
    assert len(found) == 2


@pytest.mark.parametrize("function", [paths.image_embeddings, paths.similarity])
def test_a_targets_view_in_a_clip_path_gives_its_target_back(function):
    """Several targets: the CLIP stages' paths of a gradcam view name its target
    (names.target_view), matched by the view's wildcard constraint and parsed back."""
    view = names.target_view(VIEW, CONCRETE["target"])
    values = {name: CONCRETE[name] for name in inspect.signature(function).parameters}
    path = function(**{**values, "view": view})
    assert f"/{VIEW}@{CONCRETE['target']}" in path
    match = pattern_regex(function()).fullmatch(path)
    assert match is not None and match["view"] == view
    parsed = names.parse_view(match["view"])
    assert (parsed.target, names.gradcam_crop(match["view"])) == (CONCRETE["target"], "f0.5")
