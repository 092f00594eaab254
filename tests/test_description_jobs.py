"""scale.description_jobs through Snakemake: one description job per layer (the default) or
per concept set writes the same description files, and each job its own log.

One tiny run (WWW, CLIP-Dissect and the stability study's ks, two layers) split by layer;
the same copy then reruns its description jobs as one job per concept set, and every
description file must be byte-identical.
"""

from __future__ import annotations

import pytest

from conftest import Workflow, tiny_config

pytestmark = pytest.mark.workflow

LAYERS = ["layer4", "fc"]
UNTIL = ["--until", "www_descriptions", "clip_dissect_descriptions"]
FORCE = ["--forcerun", "www_descriptions", "clip_dissect_descriptions"]


def split_config(split: str) -> dict:
    config = tiny_config(layers=LAYERS, concept_set="words")
    config["methods"]["www"]["similarities"] = ["cos", "tvmf"]
    config["methods"]["clip_dissect"] = {
        "variants": ["softwpmi", "wpmi"], "similarities": ["cos"], "n_best": 5,
        "softwpmi": {"top_k": 10, "a": 10, "lam": 1, "p_start": 0.998, "p_end": 0.97},
        "wpmi": {"top_k": 4, "a": 2, "lam": 0.6}}
    config["stability"] = {"variants": ["softwpmi"], "similarities": ["cos"], "ks": [5, 16],
                           "base_k": 5, "n_best": 5}
    config["scale"] = {"description_jobs": split}
    return config


@pytest.fixture(scope="module")
def by_layer(run_workflow) -> Workflow:
    return run_workflow(split_config("layer"), *UNTIL)


def descriptions(flow: Workflow) -> dict[str, bytes]:
    root = flow.path("results/descriptions")
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.parquet"))}


def test_split_by_layer_plans_one_job_per_layer_and_family(by_layer):
    jobs = by_layer.planned_jobs(*FORCE, *UNTIL)
    assert jobs == {"www_descriptions": 2, "clip_dissect_descriptions": 2}
    for rule in ("www_descriptions", "clip_dissect_descriptions"):
        logs = sorted(p.relative_to(by_layer.path("logs")).as_posix()
                      for p in by_layer.path(f"logs/{rule}").rglob("*.log"))
        assert logs == [f"{rule}/demo/{layer}/words.log" for layer in ("fc", "layer4-mean")]


def test_layer_and_concept_set_jobs_write_identical_descriptions(by_layer):
    per_layer = descriptions(by_layer)
    # 2 layers x (2 WWW sims + softwpmi k5, k10, k16 + wpmi k4).
    assert len(per_layer) == 2 * (2 + 4)
    with by_layer.changed_config(lambda c: c["scale"].update(description_jobs="concept_set")):
        jobs = by_layer.planned_jobs(*FORCE, *UNTIL)
        assert jobs == {"www_descriptions": 1, "clip_dissect_descriptions": 1}
        by_layer.snakemake(*FORCE, *UNTIL)
        assert by_layer.path("logs/www_descriptions/demo/words.log").exists()
        per_concept_set = descriptions(by_layer)
    assert per_concept_set.keys() == per_layer.keys()
    for name, content in per_layer.items():
        assert per_concept_set[name] == content, name
