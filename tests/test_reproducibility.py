"""Regenerating an experiment: provenance, determinism, and recovery from a killed run.

The tiny workflow (tests/data/tiny-config.yaml) runs from scratch in fresh folders; its
artifacts are compared with those of the session's ``finished_workflow`` through the
provenance manifest that run wrote (``results/provenance/manifest.tsv``), the same check a
user runs with ``python -m neuron_concepts.provenance verify results``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import RENDERED, SNAKEMAKE, Workflow, reproducibility_problems
from neuron_concepts import provenance

pytestmark = pytest.mark.workflow

def manifest_of(flow: Workflow) -> pd.DataFrame:
    return provenance.read_manifest(flow.path("results/provenance/manifest.tsv"))


def test_run_records_config_environment_weights_and_manifest(finished_workflow: Workflow) -> None:
    """results/provenance/ holds the resolved config, versions, weights, manifest and run log."""
    prov = finished_workflow.path("results/provenance")
    config = yaml.safe_load((prov / "config.yaml").read_text())
    given = finished_workflow.config["target"]
    assert {key: config["target"][key] for key in given} == given
    assert config["target"]["token_reduction"] == "mean"  # a schema default filled in
    assert config["seed"] == finished_workflow.config["seed"]
    assert "stability" in config  # the resolved config: schema defaults filled in
    env = yaml.safe_load((prov / "environment.yaml").read_text())
    assert env["packages"]["torch"] and env["packages"]["snakemake"]
    weights = yaml.safe_load((prov / "weights.yaml").read_text())
    assert {w["name"].split()[0] for w in weights} == {"target", "clip.match", "clip.eval",
                                                       "sentence_model"}
    assert all(w["sha256"] == "random" for w in weights)  # the tiny config's weights: random
    manifest = manifest_of(finished_workflow)
    listed = set(manifest["path"])
    on_disk = {p.relative_to(prov.parent).as_posix()
               for p in prov.parent.rglob("*") if p.is_file()
               and not p.relative_to(prov.parent).parts[0] in provenance.EXCLUDED
               and not any(part.startswith(".") for part in p.relative_to(prov.parent).parts)}
    assert listed == on_disk
    assert "tables/concept_discovery.csv" in listed
    assert list((prov / "runs").glob("*.snakemake.log"))  # the run's Snakemake log


def test_verify_command_accepts_the_run_and_names_a_changed_artifact(
        finished_workflow: Workflow, tmp_path: Path) -> None:
    """`python -m neuron_concepts.provenance verify results` passes, then names a tampered file."""
    verify = [sys.executable, "-m", "neuron_concepts.provenance", "verify"]
    ok = subprocess.run([*verify, "results"], cwd=finished_workflow.root, capture_output=True,
                        text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.startswith("OK: all ")

    # A copy of the tree with one table changed: the command names it and fails.
    copy = tmp_path / "results"
    subprocess.run(["cp", "-r", str(finished_workflow.path("results")), str(copy)], check=True)
    table = copy / "tables" / "concept_discovery.csv"
    table.write_text(table.read_text().replace(",", ";", 1))
    bad = subprocess.run([*verify, str(copy)], capture_output=True, text=True)
    assert bad.returncode == 1
    assert "changed: tables/concept_discovery.csv" in bad.stdout


def test_two_runs_from_scratch_give_identical_artifacts(finished_workflow: Workflow,
                                                        workflow: Workflow) -> None:
    """A second run in a fresh folder: same files, npz byte for byte, Parquet same tables."""
    workflow.snakemake()
    problems = provenance.verify_manifest(workflow.path("results"), manifest_of(finished_workflow))
    assert reproducibility_problems(problems) == []
    # Parquet equal by bytes too on one environment (verify only needs equal content).
    second = manifest_of(workflow).set_index("path").drop(list(RENDERED))
    first = manifest_of(finished_workflow).set_index("path").drop(list(RENDERED))
    assert second["sha256"].to_dict() == first["sha256"].to_dict()


# Model rules, by the log their script opens first thing and the output that log belongs to.
# (A text_embeddings job writes one file per CLIP model, so its log names no one output.)
MODEL_JOBS = {"logs/image_embeddings/": ("image_embeddings", "results/image_emb/")}


def _running_model_job(root: Path) -> tuple[str, str] | None:
    """(rule, output) of a model job whose script has started (its log exists), or None."""
    for log_dir, (rule, out_dir) in MODEL_JOBS.items():
        for log in sorted(root.joinpath(log_dir).rglob("*.log")):
            relative = log.relative_to(root / log_dir).with_suffix(".npz").as_posix()
            return rule, out_dir + relative
    return None


def _kill_during_model_job(flow: Workflow, target: str, timeout: float = 300.0
                           ) -> tuple[str, str]:
    """Run Snakemake; SIGKILL its whole process group as soon as a model job's script runs."""
    command = [*SNAKEMAKE, "--cores", "2", target]  # as Workflow.snakemake runs it
    proc = subprocess.Popen(command, cwd=flow.root, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = _running_model_job(flow.root)
            if job:
                return job
            if proc.poll() is not None:
                pytest.fail(f"snakemake ended ({proc.returncode}) before a model job ran")
            time.sleep(0.02)
        pytest.fail(f"no model job started within {timeout:.0f} s")
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # Snakemake and the job it runs
        except ProcessLookupError:
            pass
        proc.wait(timeout=30)
        _wait_group_gone(proc.pid)


def _wait_group_gone(pgid: int, timeout: float = 30.0) -> None:
    """Wait until no process of the group is left (the killed job's Python included)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    raise AssertionError(f"processes of group {pgid} survived SIGKILL")


def test_killed_run_leaves_no_complete_artifact_and_resumes_to_the_clean_result(
        finished_workflow: Workflow, workflow: Workflow) -> None:
    """SIGKILL during a model job: Snakemake reruns it, and the resumed run equals a clean one.

    The kill lands while the job's script runs. To pin down the worst case, a truncated
    file then stands at its output path (what a writer without temp-file-and-rename would
    leave, or a kill during the rename-free write of another tool): Snakemake must still
    not take it as complete. The dry run names it incomplete; --rerun-incomplete plans its
    job again, and the resumed run's artifacts equal those of the clean run.
    """
    first = manifest_of(finished_workflow)
    # The similarity of the small concept set needs both embedding jobs (two model jobs).
    target = "results/" + next(p for p in first["path"] if p.startswith("similarity/")
                               and p.endswith("/words/cos.npz"))
    rule, killed = _kill_during_model_job(workflow, target)

    output = workflow.path(killed)
    # Our writers rename a finished temporary file onto the output, so the kill left
    # nothing at the path (at most a hidden temporary beside it).
    assert not output.exists()
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_bytes(b"PK\x03\x04 truncated")

    workflow.snakemake("--unlock")  # the killed Snakemake could not release its lock
    dry = workflow.snakemake("-n", target, check=False)
    assert dry.returncode != 0 and "incomplete" in dry.stdout and killed in dry.stdout
    assert workflow.planned_jobs("--rerun-incomplete", target).get(rule) == 1

    workflow.snakemake("--rerun-incomplete", target)
    made = provenance.artifact_manifest(workflow.path("results"))
    assert target.removeprefix("results/") in set(made["path"])
    clean = first[first["path"].isin(made["path"])]
    assert set(made["path"]) <= set(clean["path"])  # nothing the clean run lacks
    assert provenance.verify_manifest(workflow.path("results"), clean) == []
