"""Snakemake's SLURM executor on a real single-node SLURM cluster (tests/slurm_cluster.py).

Each job of the throwaway workflows below writes SLURM's own record of itself
(``scontrol show job $SLURM_JOB_ID``) into its output, so the tests read what SLURM
actually granted rather than what we think the plugin asked for.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # importing it here would bypass pytest's assertion rewriting
    from slurm_cluster import SlurmCluster

# The session fixture `slurm_cluster`; registering the same plugin in tests/conftest.py
# too is harmless (pytest loads a plugin module once, so one cluster per session).
pytest_plugins = ["slurm_cluster"]

REPO = Path(__file__).resolve().parents[1]

# A rule records the GPUs SLURM gave its job step (the step runs the rule, inside the
# job's allocation; CUDA_VISIBLE_DEVICES is what torch would see) and the job's record.
RECORD = ('echo "gpus=${{SLURM_STEP_GPUS:-none}} cuda=${{CUDA_VISIBLE_DEVICES:-none}}" '
          '> {output}; scontrol show job "$SLURM_JOB_ID" >> {output}')

# Fails the first attempt of a job (the marker file lives in the shared working folder).
FAIL_ONCE = "if [ ! -e first_attempt_failed ]; then touch first_attempt_failed; exit 1; fi;"


def job_record(path: Path) -> dict[str, str]:
    """Parse ``key=value`` pairs of a job's recorded ``scontrol show job`` output."""
    return dict(re.findall(r"(\w+)=(\S*)", path.read_text()))


def test_missing_binaries_skip_with_install_hint(monkeypatch) -> None:
    """Without slurmd the fixture's reason names the binary and the install script."""
    import slurm_cluster as helper

    monkeypatch.setattr(helper, "binary_path", lambda name: None if name == "slurmd" else name)
    reason = helper.missing_requirements()
    assert reason is not None
    assert "slurmd" in reason and ".ci/setup_slurm.sh" in reason


@pytest.mark.slurm
def test_cluster_stops_every_daemon_it_started(slurm_cluster: SlurmCluster,
                                               tmp_path: Path) -> None:
    """A second cluster beside the session's starts, runs a job, and leaves no process."""
    from slurm_cluster import SlurmCluster as Cluster

    with Cluster(tmp_path / "second") as cluster:
        pids = cluster.pids
        assert sorted(pids) == ["munged", "slurmctld", "slurmd"]
        cluster.run("srun", "true", timeout=60)
    for name, pid in pids.items():
        assert not Path(f"/proc/{pid}").exists() or \
            Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z", f"{name} still running"
    assert slurm_cluster.node_state() == "idle"  # the session's cluster is untouched


@pytest.mark.slurm
def test_cluster_runs_gpu_and_cpu_jobs(slurm_cluster: SlurmCluster, tmp_path: Path) -> None:
    """The fake GPU is schedulable: sbatch --gpus=1 runs and sees GPU 0."""
    script = tmp_path / "job.sh"
    script.write_text('#!/bin/bash\necho "gpus=${SLURM_JOB_GPUS:-none}"\n')
    out = tmp_path / "job.out"
    slurm_cluster.run("sbatch", "--wait", "--gpus=1", "-o", str(out), str(script), timeout=60)
    assert out.read_text().strip() == "gpus=0"  # the batch step sees the job's GPU


@pytest.mark.slurm
def test_snakemake_slurm_requests_gpu_only_for_gpu_rule(slurm_cluster: SlurmCluster,
                                                       tmp_path: Path) -> None:
    """A rule with resources gpu=1 is submitted with a GPU; a rule without, with none."""
    (tmp_path / "Snakefile").write_text(textwrap.dedent(f"""\
        rule all:
            input: "gpu_job.txt", "cpu_job.txt"

        rule gpu_job:
            output: "gpu_job.txt"
            resources: gpu=1, mem_mb=500, runtime=5
            shell: '{RECORD}'

        rule cpu_job:
            output: "cpu_job.txt"
            resources: mem_mb=500, runtime=5
            shell: '{RECORD}'
        """))
    slurm_cluster.run_snakemake(tmp_path, jobs=2)

    gpu, cpu = tmp_path / "gpu_job.txt", tmp_path / "cpu_job.txt"
    assert gpu.read_text().startswith("gpus=0 cuda=0\n")
    assert cpu.read_text().startswith("gpus=none ")
    gpu_rec, cpu_rec = job_record(gpu), job_record(cpu)
    assert gpu_rec["TresPerJob"] == "gres:gpu:1"  # what sbatch --gpus=1 records
    assert "gpu" not in cpu_rec.get("TresPerJob", "") + cpu_rec.get("TresPerNode", "")
    assert gpu_rec["Partition"] == cpu_rec["Partition"] == "debug"
    assert gpu_rec["MinMemoryNode"] == cpu_rec["MinMemoryNode"] == "500M"
    assert gpu_rec["TimeLimit"] == "00:05:00"


@pytest.mark.slurm
def test_slurm_profile_grows_memory_on_retry(slurm_cluster: SlurmCluster,
                                             tmp_path: Path) -> None:
    """profiles/slurm: a failed text_embeddings job is retried with 2x memory and runtime.

    The rule fails on its first attempt; the second attempt's SLURM record must show
    the profile's ``mem_mb: 16000 * attempt`` and the rule's ``runtime`` (60 * attempt) for
    attempt 2, its GPU, and cpus_per_gpu; a CPU rule gets the profile's memory and no GPU
    (evaluate_descriptions, which the profile also groups: a group of one job here).
    """
    (tmp_path / "Snakefile").write_text(textwrap.dedent(f"""\
        rule all:
            input: "text_embeddings.txt", "evaluate_descriptions.txt"

        rule text_embeddings:
            output: "text_embeddings.txt"
            # the real rule computes its runtime from its texts, times attempt
            resources: gpu=1, runtime=lambda wc, attempt: 60 * attempt
            shell: '{FAIL_ONCE} {RECORD}'

        rule evaluate_descriptions:
            output: "evaluate_descriptions.txt"
            shell: '{RECORD}'
        """))
    slurm_cluster.run_snakemake(tmp_path, "--profile", str(REPO / "profiles" / "slurm"),
                                jobs=2, partition=None)

    assert (tmp_path / "text_embeddings.txt").read_text().startswith("gpus=0 cuda=0\n")
    gpu = job_record(tmp_path / "text_embeddings.txt")
    assert (tmp_path / "first_attempt_failed").exists()
    assert gpu["TresPerJob"] == "gres:gpu:1"
    assert gpu["MinMemoryNode"] == "32000M"           # 16000 * attempt, attempt 2
    assert gpu["TimeLimit"] == "02:00:00"             # 60 * attempt minutes
    assert gpu["CpusPerTres"] == "gres:gpu:4"         # cpus_per_gpu: 4
    cpu = job_record(tmp_path / "evaluate_descriptions.txt")
    assert "TresPerJob" not in cpu or "gpu" not in cpu["TresPerJob"]
    assert cpu["MinMemoryNode"] == "8000M"            # 8000 * attempt, attempt 1
