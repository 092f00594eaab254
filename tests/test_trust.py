"""Bad input named, damage detected, nothing silently wrong: each case run through Snakemake.

The damage cases work on a copy of the shared tiny run (file times kept), so the edit is the
only difference Snakemake sees.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import Workflow
from neuron_concepts import io, provenance

pytestmark = pytest.mark.workflow


def copy_of(flow: Workflow, dest: Path) -> Workflow:
    """A copy of a finished workflow folder, modification times kept (shutil.copy2)."""
    shutil.copytree(flow.root, dest, symlinks=True)
    return Workflow(dest, flow.config)


def test_a_table_edited_by_hand_is_named_never_blessed_and_the_named_command_remakes_it(
        finished_workflow, tmp_path):
    flow = copy_of(finished_workflow, tmp_path / "flow")
    table = flow.path("results/tables/concept_discovery.md")
    original = table.read_bytes()
    table.write_bytes(original[: len(original) // 2])  # truncated

    failed = flow.snakemake(check=False)
    assert failed.returncode != 0
    command = "snakemake --cores all --forcerun results/tables/concept_discovery.md"
    assert "changed by hand: results/tables/concept_discovery.md" in failed.stdout
    assert command in failed.stdout
    assert "localrule provenance:" not in failed.stdout  # stopped before any job
    # The manifest of the finished run still stands and names the damage too.
    problems = provenance.verify_manifest(flow.path("results"))
    assert any(p.startswith("changed: tables/concept_discovery.md") for p in problems)

    # The command it names remakes the table (and the manifest after it).
    flow.snakemake(*command.split()[3:])
    assert table.read_bytes() == original
    assert provenance.verify_manifest(flow.path("results")) == []


def test_an_unfinished_write_is_reported_then_removed_by_the_next_run(finished_workflow, tmp_path):
    flow = copy_of(finished_workflow, tmp_path / "flow")
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True).stdout.strip()
    host = socket.gethostname().replace(".", "_")
    table = flow.path("results/tables/concept_discovery.csv")
    leftover = table.parent / f".{table.name}.{host}.{ended}.k1ll3d00.tmp"
    leftover.write_bytes(b"half a table")
    table.unlink()  # the killed job's output never arrived

    assert provenance.verify_manifest(flow.path("results"), check_extra=False) == [
        "missing: tables/concept_discovery.csv (in the manifest, not under "
        f"{flow.path('results')})",
        f"unfinished write: {leftover} (a temporary file of a killed job; the next snakemake "
        "run removes it)"]
    run = flow.snakemake()
    assert not leftover.exists()
    assert f"removed {leftover.relative_to(flow.root)}" in run.stdout
    assert provenance.verify_manifest(flow.path("results")) == []


def test_a_latin1_concept_file_stops_with_the_line_and_the_command_that_converts_it(workflow):
    concepts = workflow.path("resources/concepts/demo_words.txt")
    concepts.write_bytes("cat\ncaf\xe9 au lait\ndog\n".encode("latin-1"))
    failed = workflow.snakemake("results/concepts/words.parquet", check=False)
    assert failed.returncode != 0
    assert "resources/concepts/demo_words.txt is not UTF-8: byte 0xe9 on line 2" in failed.stdout
    assert "iconv -f latin1 -t utf-8 resources/concepts/demo_words.txt" in failed.stdout


def test_a_byte_order_mark_does_not_stick_to_the_first_concept(workflow):
    concepts = workflow.path("resources/concepts/demo_words.txt")
    concepts.write_bytes("\ufeffcat\ndog\n".encode("utf-8"))
    workflow.snakemake("results/concepts/words.parquet")
    assert io.load_concepts(workflow.path("results/concepts/words.parquet"))["text"].tolist() == [
        "cat", "dog"]


@pytest.mark.parametrize("change, key, says", [
    (lambda c: c.update(bogus_key=1), "(top level)", "'bogus_key' was unexpected"),
    (lambda c: c["methods"]["www"].update(alpha=-3), "methods.www.alpha",
     "less than or equal to the minimum of 0"),
    (lambda c: c.update(tvmf={"kappa": float("inf")}), "tvmf.kappa", "inf is not a finite number"),
    (lambda c: c["methods"]["www"].update(alpha=float("nan")), "methods.www.alpha",
     "nan is not a finite number"),
])
def test_a_config_error_is_a_few_lines_naming_the_key(workflow, change, key, says):
    with workflow.changed_config(change):
        failed = workflow.snakemake("-n", check=False)
    assert failed.returncode != 0
    message = failed.stdout[failed.stdout.index("Invalid configuration:"):]
    assert message.startswith(f"Invalid configuration: {key}: ") and says in message
    assert len(message.splitlines()) <= 6, message  # no schema or config dump
    assert "config.schema.yaml" in message or "finite" in message


#: The run of the "off" and alternative switch values that no other run covers
#: (tests/test_switches.py holds the table): the evaluation off, the browser without its
#: screenshot, float16 cosines, a deduplicated concept set, and ConVis without OOD and WSOL
#: on a noise-padded grid of a resized image.
CONVIS_GRID = {"patch_sizes": [32, 64], "stride": 32, "padding": "noise", "resize": 64}


def awkward_probe_folder(root: Path) -> None:
    """The demo photographs in ``root/probe``, plus what a real folder holds: a 16-bit
    grayscale PNG with its 8-bit twin (what a viewer shows), a 5000 x 1 strip, a dangling
    link and a link to its own folder."""
    import os

    import numpy as np
    from PIL import Image

    from neuron_concepts import data

    folder = root / "probe"
    data.materialise_demo(folder)
    wide = (np.arange(96 * 128, dtype=np.uint32).reshape(96, 128) * 5).astype(np.uint16)
    Image.fromarray(wide).save(folder / "gray16.png")
    Image.fromarray(np.rint(wide / 257.0).astype(np.uint8), mode="L").save(folder / "gray8.png")
    Image.new("RGB", (5000, 1)).save(folder / "strip.png")
    os.symlink("nowhere.png", folder / "dangling.png")
    os.symlink(".", folder / "loop.png")


def switched_config(config: dict) -> None:
    # A folder probe set that skips what is unreadable (skip_unreadable true)
    config["probe_sets"] = {"demo": {"type": "folder", "root": "probe", "skip_unreadable": True}}
    config["evaluation"] = {"probe_sets": [], "concept_sets": []}
    config["browser"] = {"enabled": True, "screenshot": False}
    config["scale"]["cosine_dtype"] = "float16"
    config["concept_sets"]["imagenet"]["deduplicate"] = True
    config["convis"] = {
        "probe": "demo", "vocabulary": "demo",
        "vocabularies": {"demo": {"words_file": "resources/concepts/convis_demo_words.txt"}},
        "images": ["chelsea"], "pairs": [{"image": "chelsea", "synset": "cat.n.01"}],
        "top_n": 3, **CONVIS_GRID}


def test_evaluation_and_screenshot_off_float16_cosines_deduplicated_concepts_noise_padded_resized_convis(
        run_workflow):
    import numpy as np

    from neuron_concepts import concepts, names

    flow = run_workflow(switched_config, prepare=awkward_probe_folder)
    # A 16-bit PNG reads as its 8-bit twin (not clipped white); the strip and both links are
    # listed as unreadable, nothing dropped unseen.
    manifest = io.load_manifest(flow.path("results/probe/demo/manifest.parquet"))
    unreadable = io.load_unreadable(flow.path("results/probe/demo/unreadable.parquet"))
    assert sorted(unreadable["image_id"]) == ["dangling", "loop", "strip"]
    acts = io.load_activations(next(flow.path("results/activations/demo").rglob("center/fc.npz")))
    row = {image: k for k, image in enumerate(acts.ids)}
    assert {"gray16", "gray8"} <= set(manifest["image_id"])
    assert acts.values[row["gray16"]].tobytes() == acts.values[row["gray8"]].tobytes()
    # evaluation.probe_sets / concept_sets empty: either list empty turns the evaluation off.
    table = io.load_concept_discovery_table(flow.path("results/tables/concept_discovery.csv"))
    assert table.empty
    assert "the evaluation is off" in flow.path("results/tables/concept_discovery.md").read_text()
    assert not flow.path("results/eval").exists()

    # browser.screenshot false: the browser is built, its screenshot is not.
    assert flow.path("results/browser/index.html").is_file()
    assert not flow.path("results/figures/browser_panel.png").exists()
    assert not list(flow.path(".").glob("logs/browser/screenshot*"))

    # scale.cosine_dtype float16: every cosine file is named cos-f16.npz and holds float16.
    cosines = sorted(flow.path("results/similarity").rglob("*.npz"))
    assert cosines and {p.name for p in cosines} == {names.cosine_file_name("float16")}
    for path in cosines:
        arrays = io.read_npz(path)
        assert arrays and {a.dtype for a in arrays.values()} == {np.dtype(np.float16)}, path
    assert list(flow.path("results/descriptions").rglob("*.parquet"))  # WWW read them

    # concept_sets.imagenet.deduplicate true: each text once, the first occurrence kept.
    kept = io.load_concepts(flow.path("results/concepts/imagenet.parquet"))
    expected = concepts.concept_set({"type": "imagenet", "deduplicate": True})
    assert kept["text"].is_unique and kept["text"].tolist() == expected["text"].tolist()
    assert len(kept) < len(concepts.concept_set({"type": "imagenet"}))
    # deduplicate false (the default) keeps the file's lines
    words = io.load_concepts(flow.path("results/concepts/words.parquet"))
    assert len(words) == len(concepts.concept_set({"type": "file", "path": str(flow.path(
        "resources/concepts/demo_words.txt"))}))

    # convis without ood and wsol, padding noise and resize 64: the grid's own folder, a
    # volume of the resized frame with noise locations, its maps and figures, no OOD/WSOL table.
    grid = names.convis_grid_name(CONVIS_GRID["patch_sizes"], CONVIS_GRID["stride"],
                                  CONVIS_GRID["padding"], CONVIS_GRID["resize"])
    assert grid.endswith("-noise-r64")
    (volume_path,) = flow.path("results/convis/demo").rglob("ranks/chelsea.npz")
    assert volume_path.parent.parent.name == grid
    volume = io.load_rank_volume(volume_path)
    assert volume.padding == "noise" and volume.resize == 64 and volume.shape == (64, 64)
    assert not volume.inside().all()  # some locations hold padding noise
    for name in ("chelsea__top", "chelsea__cat.n.01"):
        assert flow.path(f"results/figures/convis/{name}.png").read_bytes()[:4] == b"\x89PNG"
    assert not list(flow.path("results/tables").glob("convis_*"))

    assert provenance.verify_manifest(flow.path("results")) == []


def test_non_finite_activations_stop_the_description_job_naming_file_and_neurons(
        finished_workflow, tmp_path):
    import numpy as np

    flow = copy_of(finished_workflow, tmp_path / "flow")
    path = next(flow.path("results/activations").rglob("center/layer4-mean.npz"))
    acts = io.load_activations(path)
    values = acts.values.copy()
    values[:, 3] = np.nan
    values[:, 5] = -np.inf
    # Written as a job writes (a write-time record), so only the values are wrong.
    io.write_npz(path, activations=values, ids=acts.ids)
    failed = flow.snakemake(check=False)
    assert failed.returncode != 0
    relative = path.relative_to(flow.root).as_posix()
    assert f"reading activations {relative}" in failed.stdout
    assert "column(s) [3, 5]" in failed.stdout
    assert f"snakemake --cores all --forcerun {relative}" in failed.stdout


def test_a_second_snakemake_is_warned_while_another_runs_in_the_folder(workflow):
    import json
    import time

    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        marker = workflow.path(".snakemake/neuron_concepts_run.json")
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(json.dumps({"host": socket.gethostname(), "pid": sleeper.pid}))
        out = workflow.snakemake("-n").stdout
        assert f"another Snakemake (process {sleeper.pid}) is running in this folder" in out
        assert "do not follow advice to use --rerun-incomplete" in out
    finally:
        sleeper.kill()
        sleeper.wait()
    time.sleep(0.1)
    assert "another Snakemake" not in workflow.snakemake("-n").stdout  # its process is gone
