"""The tiny workflow through ``--profile profiles/slurm`` on a real SLURM cluster.

The cluster (tests/slurm_cluster.py) has one fake GPU. The config says ``device: auto``,
so the model rules declare ``gpu=1`` as on a real GPU cluster (torch sees no CUDA here and
runs them on the CPU). SLURM's own record of every job says what was requested.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import TYPE_CHECKING

import pytest
import yaml

from conftest import REPO, Workflow, copy_workflow, reproducibility_problems
from neuron_concepts import provenance

if TYPE_CHECKING:  # importing it here would bypass pytest's assertion rewriting
    from slurm_cluster import SlurmCluster

pytest_plugins = ["slurm_cluster"]

# Every test runs Snakemake on the workflow (dry runs, or the whole run on SLURM).
pytestmark = pytest.mark.workflow

# Rules of the tiny workflow that load a model: each of their jobs must get a GPU.
MODEL_RULES = {"activations", "text_embeddings", "image_embeddings",
               "evaluation_class_embeddings", "evaluation_text_embeddings"}


def job_blocks(log: str) -> list[dict]:
    """Each job Snakemake's output announces: rule, local or not, and its GPUs.

    A dry run says which rules ask for GPUs; the output of a real run says, in addition,
    which jobs ran on the machine of Snakemake itself (``localrule``).
    """
    jobs = []
    # The jobs of a group job are listed indented under "Group job <name>".
    for block in re.split(r"\n(?=[ ]*(?:local)?rule \w+:)", log)[1:]:
        head = re.match(r"[ ]*(local)?rule (\w+):", block)
        gpus = re.search(r"resources:.*\bgpu=(\d+)", block)
        jobs.append(dict(rule=head.group(2), local=bool(head.group(1)),
                         gpu=int(gpus.group(1)) if gpus else 0))
    return jobs


def planned_jobs(flow: Workflow) -> list[dict]:
    """Each job a dry run plans (Snakemake's view of its resources)."""
    return job_blocks(flow.snakemake("-n").stdout)


def requested_gpus(record: dict[str, str]) -> int:
    """GPUs a job asked SLURM for (``--gpus`` or ``--gres``), from its scontrol record."""
    tres = ",".join(record.get(key, "") for key in ("TresPerJob", "TresPerNode", "TresPerTask"))
    found = re.search(r"gres[/:]gpu(?::[\w-]+)?:(\d+)", tres)
    return int(found.group(1)) if found else 0


def record_rule(record: dict[str, str]) -> str:
    """The rule of a job submitted by the SLURM executor (``--comment rule_<name>_wildcards_...``)."""
    return re.match(r"rule_(.+?)(?:_wildcards_|$)", record["Comment"]).group(1)


def test_slurm_profile_sets_resources_of_every_gpu_rule_and_only_of_real_rules(
        tmp_path) -> None:
    """profiles/slurm names only existing rules, and every rule that asks for a GPU.

    The default experiment (config.yaml, every method on) with ``device: auto``, planned
    with random weights: Snakemake's dry run says which rules ask for a GPU.
    """
    copy_workflow(tmp_path)
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    flow = Workflow(tmp_path, {**config, "weights": "random", "device": "auto"})
    rules = set(flow.snakemake("--list-rules").stdout.split())
    profile = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
    # The image stages' rules size themselves from their image count; the profile sets their threads.
    configured = set(profile["set-resources"]) | set(profile["set-threads"])
    assert configured <= rules, f"not rules: {configured - rules}"
    gpu_rules = {job["rule"] for job in planned_jobs(flow) if job["gpu"]}
    assert MODEL_RULES <= gpu_rules
    # ConVis's rank-volume rules are generated, one per shard of images, so the profile
    # cannot name them: they declare their own mem_mb, runtime and cpus_per_gpu.
    shards = {rule for rule in gpu_rules if rule.startswith("convis_rank_volume_")}
    assert shards
    unset = gpu_rules - shards - configured
    assert not unset, f"GPU rules without resources: {unset}"


@pytest.mark.slurm
def test_pipeline_on_slurm_asks_gpus_for_model_jobs_only_and_equals_a_local_run(
        slurm_cluster: SlurmCluster, finished_workflow: Workflow, workflow: Workflow) -> None:
    workflow.config["device"] = "auto"
    workflow.write_config()
    planned = planned_jobs(workflow)
    gpu_rules = {job["rule"] for job in planned if job["gpu"]}
    assert MODEL_RULES <= gpu_rules
    assert not {job["rule"] for job in planned if not job["gpu"]} & gpu_rules

    run = slurm_cluster.run_snakemake(workflow.root, "--profile", "profiles/slurm", jobs=2,
                                      partition=None)

    ran = job_blocks(run.stdout + run.stderr)
    assert Counter(job["rule"] for job in ran) == Counter(job["rule"] for job in planned)
    local = {job["rule"] for job in ran if job["local"]}
    assert {"all", "provenance", "concept_discovery_table"} <= local
    assert not local & gpu_rules
    records = slurm_cluster.job_records(workflow.root)
    profile = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
    grouped, groups = set(profile["groups"]), set(profile["groups"].values())
    remote = [job["rule"] for job in ran if not job["local"]]

    def group_of(record):  # a group job's comment: rule_<group>_<its rules>
        return next((g for g in groups if record_rule(record).startswith(f"{g}_")), None)

    # Every job but the local ones (tables, figures, provenance, all) went through sbatch:
    # one submission each, but the small jobs of a group share one per group.
    assert Counter(record_rule(r) for r in records if not group_of(r)) == \
        Counter(rule for rule in remote if rule not in grouped)
    group_submissions = Counter(group_of(r) for r in records if group_of(r))
    assert set(group_submissions) == {profile["groups"][rule] for rule in remote if rule in grouped}
    assert all(count == 1 for count in group_submissions.values()), group_submissions
    assert len(records) == len(remote) - sum(rule in grouped for rule in remote) + len(group_submissions)
    assert len(records) < len(remote)
    for record in records:
        rule = group_of(record) or record_rule(record)
        assert record["JobState"] == "COMPLETED", (rule, record["JobState"])
        assert requested_gpus(record) == (1 if rule in gpu_rules else 0), (rule, record)

    # Same artifacts as the local run of the same tiny config (on the CPU there).
    local = provenance.read_manifest(finished_workflow.path("results/provenance/manifest.tsv"))
    assert reproducibility_problems(provenance.verify_manifest(workflow.path("results"), local)) == []
