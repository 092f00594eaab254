"""Every on/off setting of the schema runs end to end in some test, in both of its states.

:data:`END_TO_END` names, for each (setting, value), a test whose workflow run (Snakemake
without ``-n``) has that value. The schema is walked for its switches: booleans, lists whose
emptiness turns a feature off, and sections whose absence does; the switch-like enums are
listed in :data:`SWITCH_ENUMS` and every other enum in :data:`CHOICE_ENUMS`, so a new switch
(or a new enum nobody has classified) fails here until a test runs it.

A value no machine of the CI can run is in :data:`PLAN_ONLY`, with the test that checks how
it fails or plans instead.
"""

from __future__ import annotations

import importlib
import re

import pytest
import yaml

from conftest import REPO

SCHEMA = yaml.safe_load((REPO / "config.schema.yaml").read_text())

# The runs, by the test that reads them (several tests share each run, conftest.run_workflow).
TINY = "tests/test_workflow.py::test_artifacts_have_the_contracted_shapes_and_types"
SWITCHED = ("tests/test_trust.py::test_evaluation_and_screenshot_off_float16_cosines_"
            "deduplicated_concepts_noise_padded_resized_convis")
CLIP_DISSECT = "tests/test_workflow_clip_dissect.py::test_softwpmi_descriptions_equal_a_recomputation_from_the_artifacts"
STABILITY = "tests/test_workflow_clip_dissect.py::test_stability_table_equals_a_recomputation_from_the_descriptions"
GRADCAM = "tests/test_workflow_gradcam.py::test_gradcam_view_embeddings_are_clip_embeddings_of_the_crops"
CONVIS = "tests/test_workflow_convis.py::test_rank_volume_equals_ranks_of_independently_embedded_patches"
BROWSER = "tests/test_workflow_targets.py::test_the_browser_and_its_screenshot_are_built_only_when_enabled"

#: (setting, value) -> a test whose workflow run has that value. Settings are dotted schema
#: paths, ``*`` for any entry of a named map; list switches take "on" (non-empty) and "off"
#: (empty), optional sections "present" and "absent".
END_TO_END = {
    # lists whose emptiness turns a feature off
    ("methods.clip_dissect.variants", "on"): CLIP_DISSECT,
    ("methods.clip_dissect.variants", "off"): TINY,
    ("stability.variants", "on"): STABILITY,
    ("stability.variants", "off"): TINY,
    ("evaluation.probe_sets", "on"): "tests/test_workflow.py::test_table_equals_independent_recomputation",
    ("evaluation.probe_sets", "off"): SWITCHED,
    ("evaluation.concept_sets", "on"): "tests/test_workflow.py::test_table_equals_independent_recomputation",
    ("evaluation.concept_sets", "off"): SWITCHED,
    # sections whose absence turns a feature off (convis.ood and wsol absent: with ConVis on)
    ("convis", "present"): CONVIS,
    ("convis", "absent"): TINY,
    ("convis.ood", "present"): "tests/test_workflow_convis.py::test_ood_table_equals_a_recomputation_with_sklearn",
    ("convis.ood", "absent"): SWITCHED,
    ("convis.wsol", "present"): "tests/test_workflow_convis.py::test_wsol_table_equals_max_box_acc_of_the_sampled_images",
    ("convis.wsol", "absent"): SWITCHED,
    # booleans
    ("browser.enabled", True): "tests/test_browser.py::test_layer_page_lists_every_neuron_with_its_images_and_concepts",
    ("browser.enabled", False): BROWSER,  # the Swin run
    ("browser.screenshot", True): "tests/test_browser.py::test_index_and_screenshot",
    ("browser.screenshot", False): SWITCHED,
    ("concept_sets.*.deduplicate", True): SWITCHED,
    ("concept_sets.*.deduplicate", False): TINY,
    # the probe stage run to its manifest, failing without the switch, then with it;
    # the image-shard runs describe a folder with unreadable files skipped
    ("probe_sets.*.skip_unreadable", True): "tests/test_workflow_image_shards.py::test_sharded_descriptions_equal_the_unsharded_ones",
    ("probe_sets.*.skip_unreadable", False): "tests/test_workflow.py::test_unreadable_image_stops_the_probe_stage_listing_every_bad_file",
    # switch-like enums and lists
    ("views", "[center]"): TINY,
    ("views", "[center, gradcam]"): GRADCAM,
    ("scale.description_jobs", "concept_set"): TINY,
    # run up to the description rules (--until), then again as concept_set jobs
    ("scale.description_jobs", "layer"): "tests/test_description_jobs.py::test_layer_and_concept_set_jobs_write_identical_descriptions",
    ("scale.cosine_dtype", "float32"): TINY,
    ("scale.cosine_dtype", "float16"): SWITCHED,
    ("scale.image_decode", "pil"): TINY,
    ("convis.padding", "none"): CONVIS,
    ("convis.padding", "noise"): SWITCHED,
    ("convis.resize", None): CONVIS,
    ("convis.resize", "int"): SWITCHED,
    ("weights", "random"): TINY,
}

#: (setting, value) -> (a test that plans it or checks its error, why no CI run has it).
PLAN_ONLY = {
    ("scale.image_decode", "gpu"): (
        "tests/test_loading.py::test_gpu_decoding_without_cuda_says_to_use_pil",
        "nvJPEG decoding needs CUDA; the CI machine has none"),
    ("weights", "pretrained"): (
        "tests/test_workflow.py::test_missing_weights_offline_names_model_cache_and_fix",
        "downloads ResNet and CLIP checkpoints; the tests run offline"),
}

#: Enums whose values switch a feature or a storage format: every value needs a run.
SWITCH_ENUMS = ["weights", "scale.description_jobs", "scale.cosine_dtype", "scale.image_decode",
                "convis.padding"]
#: Switch-like settings that are no boolean or enum: their values as END_TO_END names them.
OTHER_SWITCHES = {"views": ["[center]", "[center, gradcam]"], "convis.resize": [None, "int"]}
#: Enums that choose between alternatives of one computation, not switches (each choice is
#: tested where it is computed).
CHOICE_ENUMS = {
    "target.source", "target.spatial_reduction", "target.token_reduction",
    "target.layer_options.*.reduction", "target.layer_options.*.layout",
    "probe_sets.*.type", "concept_sets.*.type",
    "convis.precision",  # float16 autocast of the rank volumes: tests/test_convis.py
    "convis.ood.reduce", "convis.wsol.cub_split",
}


def text(node: dict) -> str:
    return " ".join(str(node.get("description", "")).split())


def schema_nodes(node: dict = SCHEMA, path: str = "", parent: dict | None = None):
    """(dotted path, node, parent node) of every property of the schema, ``*`` for a map's
    entries."""
    children = dict(node.get("properties") or {})
    if isinstance(node.get("additionalProperties"), dict):
        children["*"] = node["additionalProperties"]
    for key, child in children.items():
        child_path = f"{path}.{key}" if path else key
        yield child_path, child, node
        yield from schema_nodes(child, child_path, node)


def schema_switches() -> dict[str, list]:
    """Setting -> its two states, for every switch the schema documents."""
    found = {}
    for path, node, parent in schema_nodes():
        kind = node.get("type")
        if kind == "boolean":
            found[path] = [True, False]
        elif kind == "array" and (re.search(r"empty list turns .* off", text(node))
                                  or re.search(r"list empty turns .* off", text(parent))):
            found[path] = ["on", "off"]
        elif kind == "object" and re.search(r"\babsent\s*=\s*off\b", text(node), re.I):
            found[path] = ["present", "absent"]
    return found


def schema_enums() -> dict[str, list]:
    return {path: node["enum"] for path, node, _ in schema_nodes() if "enum" in node}


def test_the_schema_walk_finds_the_documented_switches():
    """The walk sees every switch the schema's own description names, so it misses none."""
    found = schema_switches()
    assert {"methods.clip_dissect.variants", "stability.variants", "evaluation.probe_sets",
            "evaluation.concept_sets", "convis", "convis.ood", "convis.wsol", "browser.enabled",
            "browser.screenshot", "concept_sets.*.deduplicate",
            "probe_sets.*.skip_unreadable"} <= set(found)
    named = re.search(r"empty \(([^)]*)\)", text(SCHEMA)).group(1)
    for name in re.findall(r"[a-z_]+(?:\.[a-z_]+)+", named):
        assert name in found, name
    assert "evaluation.concept_sets" in found  # "evaluation.probe_sets or concept_sets"


def test_every_switch_of_the_schema_runs_end_to_end_in_both_states():
    states = {**schema_switches(), **OTHER_SWITCHES}
    enums = schema_enums()
    unclassified = set(enums) - set(SWITCH_ENUMS) - CHOICE_ENUMS
    assert not unclassified, f"classify these enums as SWITCH_ENUMS or CHOICE_ENUMS: {unclassified}"
    for name in SWITCH_ENUMS:
        states[name] = enums[name]
    missing = [(name, value) for name, values in states.items() for value in values
               if (name, value) not in END_TO_END and (name, value) not in PLAN_ONLY]
    assert not missing, f"no test runs these settings end to end: {missing}"
    stale = (set(END_TO_END) | set(PLAN_ONLY)) - {(n, v) for n, vs in states.items() for v in vs}
    assert not stale, f"these entries name no switch of the schema: {stale}"
    assert not set(END_TO_END) & set(PLAN_ONLY)


def test_other_switches_are_settings_of_the_schema():
    paths = {path for path, _, _ in schema_nodes()}
    assert set(OTHER_SWITCHES) <= paths
    assert set(SCHEMA["properties"]["views"]["items"]["enum"]) == {"center", "gradcam"}
    assert SCHEMA["properties"]["convis"]["properties"]["resize"]["type"] == ["integer", "null"]


@pytest.mark.parametrize("test", sorted(set(END_TO_END.values())
                                        | {test for test, _ in PLAN_ONLY.values()}))
def test_every_named_test_exists(test):
    file, name = test.split("::")
    assert file.startswith("tests/") and (REPO / file).is_file(), file
    module = importlib.import_module(file.removeprefix("tests/").removesuffix(".py"))
    assert callable(getattr(module, name, None)), test


def test_every_plan_only_value_says_why():
    for (name, value), (test, why) in PLAN_ONLY.items():
        assert why, (name, value)
