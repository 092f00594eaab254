"""Shared fixtures: a copy of the workflow in a temporary folder, and a Snakemake runner."""

from __future__ import annotations

import contextlib
import copy
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
WORKFLOW_FILES = ["Snakefile", "config.schema.yaml", "config.yaml", "rules", "workflow_scripts",
                  "envs", "resources/concepts", "tests/data", "report", "profiles"]


class Workflow:
    """A copy of the workflow in a folder, run through Snakemake's command line."""

    def __init__(self, root: Path, config: dict):
        self.root = root
        self.config = config
        self.write_config()

    @property
    def config_path(self) -> Path:
        # The copy's own config.yaml: a --configfile would be merged into the default
        # config's dictionaries (its concept sets, its ConVis section) rather than replace it.
        return self.root / "config.yaml"

    def write_config(self) -> None:
        self.config_path.write_text(yaml.safe_dump(self.config, sort_keys=False))

    @contextlib.contextmanager
    def changed_config(self, change):
        """The workflow with ``change(config)`` applied to its config file, restored afterwards."""
        original = copy.deepcopy(self.config)
        change(self.config)
        self.write_config()
        try:
            yield self
        finally:
            self.config = original
            self.write_config()

    def snakemake(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """Run Snakemake with the test config; output (stdout + stderr) in ``.stdout``."""
        command = [*SNAKEMAKE, "--cores", "2", *args]
        result = subprocess.run(command, cwd=self.root, capture_output=True, text=True)
        result.stdout = result.stdout + result.stderr
        if check and result.returncode != 0:
            raise AssertionError(f"snakemake {' '.join(args)} failed:\n{result.stdout[-6000:]}")
        return result

    def planned_jobs(self, *args: str) -> dict[str, int]:
        """Rule -> number of jobs a dry run would run (from Snakemake's own job stats)."""
        out = self.snakemake("-n", *args).stdout
        if "Nothing to be done" in out:
            return {}
        stats = out.split("Job stats:")[1].split("\n\n")[0].splitlines()[3:]
        jobs = dict(line.split() for line in stats if line.strip())
        jobs.pop("total", None)
        return {rule: int(count) for rule, count in jobs.items()}

    def path(self, relative: str) -> Path:
        return self.root / relative


def copy_workflow(dest: Path) -> None:
    for name in WORKFLOW_FILES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, dest / name, dirs_exist_ok=True)
        elif source.exists():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)


def tiny_config() -> dict:
    return yaml.safe_load((REPO / "tests" / "data" / "tiny-config.yaml").read_text())


@pytest.fixture
def workflow(tmp_path: Path) -> Workflow:
    """A fresh copy of the workflow with the tiny test config (nothing run yet)."""
    copy_workflow(tmp_path)
    return Workflow(tmp_path, tiny_config())


@pytest.fixture(scope="session")
def finished_workflow(tmp_path_factory: pytest.TempPathFactory) -> Workflow:
    """The tiny workflow run once to the end, shared by the tests that read its artifacts."""
    root = tmp_path_factory.mktemp("finished")
    copy_workflow(root)
    flow = Workflow(root, tiny_config())
    flow.snakemake()
    return flow
