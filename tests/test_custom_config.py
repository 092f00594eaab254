"""Running one's own experiment: ``--configfile mine.yaml`` alone merges config.yaml's demo
probe and concept sets into it (nested dicts merge); with ``--replace-workflow-config``
(`make run CONFIG=mine.yaml`) nothing of the demo is planned. And GPU jobs ask SLURM for a
card their declared GPU memory fits (scale.gpu_constraints -> sbatch --constraint)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
import yaml

from conftest import REPO

pytestmark = pytest.mark.workflow


def user_config(tmp_path):
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    folder = tmp_path / "photos"
    folder.mkdir()
    config.update(weights="random", probe_sets={"photos": {"type": "imagefolder", "root": str(folder)}},
                  concept_sets={"mine": {"type": "imagenet"}},
                  evaluation={"probe_sets": ["photos"], "concept_sets": ["mine"]})
    config["figures"]["sample_images"] = []
    del config["convis"]  # ConVis off: no section
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def dry_run(tmp_path, *args):
    return subprocess.run([sys.executable, "-m", "snakemake", "-n", "--forceall", "--cores", "1",
                           "--snakefile", str(REPO / "Snakefile"), "--directory", str(REPO), *args],
                          text=True, capture_output=True, check=True, cwd=tmp_path).stdout


def test_a_replacing_configfile_plans_no_demo_probe_or_concept_set(tmp_path):
    path = user_config(tmp_path)
    merged = dry_run(tmp_path, "--configfile", str(path))
    assert re.search(r"results/(probe|similarity)/demo/", merged)  # merged: the demo comes along
    assert "results/concepts/demo_words.parquet" in merged
    replaced = dry_run(tmp_path, "--configfile", str(path), "--replace-workflow-config")
    assert "results/probe/photos/" in replaced and "results/concepts/mine.parquet" in replaced
    assert not re.search(r"results/\w+/demo/|demo_words|convis", replaced)


def test_gpu_jobs_ask_for_a_card_their_gpu_memory_fits(tmp_path):
    path = user_config(tmp_path)
    config = yaml.safe_load(path.read_text())
    config["scale"]["gpu_constraints"] = {"small": 1000, "v100": 16000, "h100": 80000}
    path.write_text(yaml.safe_dump(config))
    out = dry_run(tmp_path, "--configfile", str(path), "--replace-workflow-config")
    blocks = re.split(r"\n(?=(?:local)?rule \w+:)", out)
    text = [b for b in blocks if b.startswith("rule text_embeddings:")]
    assert text and all("constraint=v100|h100" in b for b in text)  # 2,780 MB: not the 1 GB card
    cpu = [b for b in blocks if b.startswith("rule evaluate_descriptions:")]
    assert cpu and not any("constraint" in b for b in cpu)
    config["scale"]["gpu_constraints"] = {"small": 1000}
    path.write_text(yaml.safe_dump(config))
    failed = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--cores", "1", "--snakefile",
                             str(REPO / "Snakefile"), "--directory", str(REPO), "--configfile",
                             str(path), "--replace-workflow-config"],
                            text=True, capture_output=True, cwd=tmp_path)
    assert failed.returncode != 0 and "more than any card" in failed.stdout + failed.stderr


def job_counts(plan: str) -> dict[str, int]:
    """Jobs per rule from a dry run's "Job stats" table."""
    table = plan[plan.index("Job stats:"):].split("\n\n")[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\S+)\s+(\d+)$", table, re.M)
            if m.group(1) != "total"}


def test_the_compare_example_plans_the_shared_stages_once(tmp_path):
    """resources/examples/compare.yaml (README): ResNet-50 with two weights and ResNet-18.
    The probe manifest, text embeddings and the center view's image embeddings are planned once
    for the three targets; activations, Grad-CAM and descriptions per target; both comparisons."""
    plan = dry_run(tmp_path, "--configfile", str(REPO / "resources/examples/compare.yaml"),
                   "--replace-workflow-config")
    jobs = job_counts(plan)
    assert jobs["probe_manifest"] == 1 and jobs["text_embeddings"] == 2  # imagenet, demo_words
    centers = set(re.findall(r"results/image_emb/demo/([^/\s]+)/center\.npz", plan))
    assert centers == {"ViT-B-32-openai", "ViT-B-16-openai"}  # one per CLIP model, none per target
    activations = {rule for rule in jobs if rule.startswith("activations")}
    assert len(activations) == 3 and all(jobs[rule] == 2 for rule in activations)  # 2 views each
    assert jobs["grad_cam"] == 3
    assert jobs["compare_targets"] == jobs["compare_checkpoints"] == 1
    tags = {"resnet50-IMAGENET1K_V1", "resnet50-IMAGENET1K_V2", "resnet18-IMAGENET1K_V1"}
    assert set(re.findall(r"results/descriptions/demo/([^/]+)/", plan)) == tags
