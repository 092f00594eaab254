"""Shared fixtures: a copy of the workflow in a temporary folder, and a Snakemake runner.

- ``workflow``: a fresh copy with the tiny test config, nothing run (for failing runs and
  runs a test must make itself);
- ``run_workflow(config, *targets, prepare=None)``: a copy run to the end, shared by every
  test of the session that asks for the same config, targets and inputs;
- ``finished_workflow``: ``run_workflow()``, the tiny config run to the end.
"""

from __future__ import annotations

import contextlib
import copy
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable, Union

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
# Artifacts drawn by a headless browser: Chromium's rasteriser is not byte-reproducible
# between runs (a few bytes of the PNG differ), unlike every computed artifact.
RENDERED = ("figures/browser_panel.png",)


def reproducibility_problems(problems: list[str]) -> list[str]:
    """``provenance.verify_manifest``'s problems, but those of :data:`RENDERED` artifacts."""
    return [p for p in problems if not any(p.split(" ")[1] == path for path in RENDERED)]
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


def assert_same_volume_arrays(a: dict, b: dict, label: str = "") -> None:
    """Two ConVis rank volumes' arrays: equal rank counts, boxes and sizes, and embeddings
    equal to one float16 step.

    A volume must not depend on the images that share its CLIP batches, but CPU GEMM kernels
    may round a row differently by its position in the batch (torch 2.14's oneDNN does in
    CLIP's last projection, ~4e-7 in float32), and one float16 step of a stored embedding can
    follow; the exact counts have not moved.
    """
    import numpy as np

    assert a.keys() == b.keys()
    for key in a:
        if np.issubdtype(a[key].dtype, np.floating):
            np.testing.assert_allclose(a[key].astype(np.float32), b[key].astype(np.float32),
                                       rtol=1e-3, atol=1e-6, err_msg=f"{label}{key}")
        else:
            np.testing.assert_array_equal(a[key], b[key], err_msg=f"{label}{key}")


def layer_path_name(layer: str) -> str:
    """A ResNet test layer's name in artifact paths: a conv stage's spatial mean
    (``layer4`` -> ``layer4-mean``); ``fc`` gives one value per neuron already."""
    return layer if layer == "fc" else f"{layer}-mean"


def tiny_config(layers: list[str] | None = None, concept_set: str | None = None) -> dict:
    """The tiny test config (tests/data/tiny-config.yaml), a new dict each call.

    ``layers``: the target layers to describe instead. ``concept_set``: keep only this
    concept set and evaluate on it, which keeps a run short (evaluation still reads the
    final layer).
    """
    config = yaml.safe_load((REPO / "tests" / "data" / "tiny-config.yaml").read_text())
    if layers is not None:
        config["target"]["layers"] = list(layers)
    if concept_set is not None:
        config["concept_sets"] = {concept_set: config["concept_sets"][concept_set]}
        config["evaluation"]["concept_sets"] = [concept_set]
    return config


@pytest.fixture
def workflow(tmp_path: Path) -> Workflow:
    """A fresh copy of the workflow with the tiny test config (nothing run yet)."""
    copy_workflow(tmp_path)
    return Workflow(tmp_path, tiny_config())


#: What ``run_workflow`` takes as config: the whole config, a change applied to a copy of
#: the tiny config, or None for the tiny config itself.
ConfigChange = Union[dict, Callable[[dict], None], None]


def resolve_config(config: ConfigChange) -> dict:
    """The whole config a :data:`ConfigChange` stands for (a new dict, never the argument)."""
    if config is None:
        return tiny_config()
    if callable(config):
        changed = tiny_config()
        config(changed)
        return changed
    return copy.deepcopy(config)


def run_key(config: dict, targets: tuple[str, ...],
            prepare: Callable[[Path], None] | None) -> str:
    """What makes two runs the same run: the config, the targets and the inputs' builder."""
    builder = None if prepare is None else f"{prepare.__module__}.{prepare.__qualname__}"
    return json.dumps([config, list(targets), builder], sort_keys=True, default=str)


@pytest.fixture(scope="session")
def run_workflow(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Workflow]:
    """``run_workflow(config, *targets, prepare=None)``: a copy of the workflow run to the end.

    ``config`` as :data:`ConfigChange`; ``targets`` as Snakemake's (none: the default
    target); ``prepare(root)`` writes input files into the copy before the run. The first
    call with a given config, targets and ``prepare`` runs Snakemake; later calls, from any
    module, get the same finished Workflow, so a tiny workflow is never run twice. A failed
    run fails every test that asks for it, without running again. Tests may change the
    Workflow only temporarily (``changed_config`` restores the config).
    """
    runs: dict[str, Workflow | AssertionError] = {}

    def run(config: ConfigChange = None, *targets: str,
            prepare: Callable[[Path], None] | None = None) -> Workflow:
        resolved = resolve_config(config)
        key = run_key(resolved, targets, prepare)
        if key not in runs:
            root = tmp_path_factory.mktemp("workflow")
            copy_workflow(root)
            if prepare is not None:
                prepare(root)
            flow = Workflow(root, resolved)
            try:
                flow.snakemake(*targets)
                runs[key] = flow
            except AssertionError as failure:
                runs[key] = failure
        if isinstance(runs[key], AssertionError):
            raise runs[key]
        return runs[key]

    return run


@pytest.fixture(scope="session")
def finished_workflow(run_workflow: Callable[..., Workflow]) -> Workflow:
    """The tiny workflow run once to the end, shared by the tests that read its artifacts."""
    return run_workflow()
