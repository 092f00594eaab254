"""Provenance: manifest hashes, verification messages, weights identities, the CLI."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from neuron_concepts import io, provenance
from neuron_concepts.errors import InputDataError, WeightsError

TABLE = pd.DataFrame({"neuron": [0, 0, 1], "concept": ["dog", "cat", None],
                      "score": np.array([0.5, 0.25, -1.0], dtype=np.float32),
                      "selected": [True, False, True]})


@pytest.fixture
def results(tmp_path: Path) -> Path:
    """A small results tree: an npz, a Parquet table, a CSV, provenance and report files."""
    root = tmp_path / "results"
    io.write_npz(root / "activations" / "probe" / "layer4.npz", acts=np.arange(12.0).reshape(3, 4))
    io.write_parquet(root / "descriptions" / "www.parquet", TABLE)
    io.write_text(root / "tables" / "hit_rate.csv", "method,hit_rate\nwww,0.5\n")
    io.write_text(root / "summary.md", "# demo\n")  # top-level files sort among folders
    io.write_text(root / "report.html", "<html></html>")  # the report is no artifact
    (root / "tables" / ".hit_rate.csv.x.tmp").write_text("partial")  # atomic-write leftover
    return root


def test_sha256_file_equals_hashlib_on_whole_file(tmp_path: Path) -> None:
    """Streamed hashing over several 1 MiB chunks equals hashlib on the whole content."""
    data = np.random.default_rng(0).integers(0, 256, 3 * provenance.CHUNK_BYTES + 17,
                                             dtype=np.uint8).tobytes()
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    assert io.sha256_file(path) == hashlib.sha256(data).hexdigest()


def test_manifest_lists_artifacts_with_size_and_hash(results: Path) -> None:
    """Every artifact, sorted; provenance, report and hidden temporaries left out."""
    manifest = provenance.artifact_manifest(results)
    assert list(manifest["path"]) == ["activations/probe/layer4.npz", "descriptions/www.parquet",
                                      "summary.md", "tables/hit_rate.csv"]
    for row in manifest.itertuples():
        data = (results / row.path).read_bytes()
        assert row.size == len(data)
        assert row.sha256 == hashlib.sha256(data).hexdigest()
    assert manifest["content_sha256"].tolist()[0] == ""
    assert len(manifest["content_sha256"].tolist()[1]) == 64  # the Parquet table


def test_verify_reports_tampered_and_deleted_artifacts(results: Path) -> None:
    """A changed byte, a deleted file and a new file each give one line naming the file."""
    provenance.write_provenance(results, {"seed": 0}, [])
    assert provenance.verify_manifest(results) == []

    csv = results / "tables" / "hit_rate.csv"
    csv.write_text(csv.read_text().replace("0.5", "0.7"))  # same size, other bytes
    (results / "activations" / "probe" / "layer4.npz").unlink()
    io.write_text(results / "tables" / "new.csv", "x\n")

    problems = provenance.verify_manifest(results)
    assert problems[0] == ("missing: activations/probe/layer4.npz "
                           f"(in the manifest, not under {results})")
    assert problems[1].startswith("changed: tables/hit_rate.csv (sha256 ")
    assert problems[1].endswith(f"same size); remake it with `snakemake --cores all "
                                f"--forcerun {results.as_posix()}/tables/hit_rate.csv`")
    assert problems[2] == f"extra: tables/new.csv (under {results}, not in the manifest)"
    assert len(problems) == 3
    assert len(provenance.verify_manifest(results, check_extra=False)) == 2


def test_verify_names_size_change(results: Path) -> None:
    """A file that grew is reported with both sizes."""
    provenance.write_provenance(results, {}, [])
    csv = results / "tables" / "hit_rate.csv"
    size = csv.stat().st_size
    csv.write_text(csv.read_text() + "clip,0.25\n")
    assert provenance.verify_manifest(results) == [
        f"changed: tables/hit_rate.csv (size {size} -> {size + 10} bytes); remake it with "
        f"`snakemake --cores all --forcerun {results.as_posix()}/tables/hit_rate.csv`"]


def test_parquet_same_table_other_writer_metadata_passes_unless_strict(results: Path) -> None:
    """Only the footer's writer metadata differs: equal content, accepted unless strict."""
    provenance.write_provenance(results, {}, [])
    path = results / "descriptions" / "www.parquet"
    table = pa.Table.from_pandas(TABLE, preserve_index=False).replace_schema_metadata(
        {"pandas": "written by another pandas version"})
    with io.atomic_path(path) as tmp:  # written by a job, as in a regenerated results tree
        pq.write_table(table, tmp, row_group_size=2)  # other metadata and row groups
    assert provenance.verify_manifest(results) == []
    assert provenance.verify_manifest(results, strict=True)[0].startswith(
        "changed: descriptions/www.parquet")


def test_content_hash_parquet_sees_value_and_null_changes(tmp_path: Path) -> None:
    """One changed score, or a null turned into a string, changes the content hash."""
    paths = {}
    for name, table in {"a": TABLE,
                        "b": TABLE.assign(score=np.array([0.5, 0.25, -0.5], dtype=np.float32)),
                        "c": TABLE.assign(concept=["dog", "cat", "None"])}.items():
        paths[name] = tmp_path / f"{name}.parquet"
        io.write_parquet(paths[name], table)
    hashes = {name: provenance.content_hash_parquet(p) for name, p in paths.items()}
    assert len(set(hashes.values())) == 3


def test_parquet_and_npz_writers_are_byte_reproducible(tmp_path: Path) -> None:
    """Writing the same data twice gives identical bytes, so byte hashes can be compared."""
    for name in ("a", "b"):
        io.write_parquet(tmp_path / f"{name}.parquet", TABLE)
        io.write_npz(tmp_path / f"{name}.npz", x=np.arange(5, dtype=np.float16))
    for ext in ("parquet", "npz"):
        assert (tmp_path / f"a.{ext}").read_bytes() == (tmp_path / f"b.{ext}").read_bytes()


def test_write_provenance_records_config_versions_and_weights(results: Path,
                                                              tmp_path: Path) -> None:
    """config.yaml round-trips; versions come from importlib.metadata; weights are hashed."""
    weight_file = tmp_path / "resnet.pth"
    weight_file.write_bytes(b"weights")
    model_dir = tmp_path / "mpnet"
    (model_dir / "sub").mkdir(parents=True)
    (model_dir / "config.json").write_text("{}")
    (model_dir / "sub" / "model.bin").write_bytes(b"\x00\x01")
    config = {"probe": {"name": "demo", "size": 8}, "layers": ["layer4"], "root": Path("/data")}
    out = provenance.write_provenance(results, config, [
        {"name": "resnet50", "tag": "IMAGENET1K_V1", "path": weight_file},
        {"name": "ViT-B-32", "tag": "random"},
        {"name": "all-mpnet-base-v2", "path": model_dir},
        {"name": "ViT-B-16", "tag": "openai"},
    ])
    assert out == results / "provenance"
    assert yaml.safe_load((out / "config.yaml").read_text()) == {
        "probe": {"name": "demo", "size": 8}, "layers": ["layer4"], "root": "/data"}

    env = yaml.safe_load((out / "environment.yaml").read_text())
    assert env["python"] == ".".join(map(str, sys.version_info[:3]))
    assert env["packages"]["numpy"] == np.__version__
    assert env["packages"]["pandas"] == pd.__version__

    weights = yaml.safe_load((out / "weights.yaml").read_text())
    assert weights[0]["sha256"] == hashlib.sha256(b"weights").hexdigest()
    assert weights[0]["size"] == 7
    assert weights[1] == {"name": "ViT-B-32", "tag": "random", "path": None,
                          "sha256": "random", "size": None}
    tree = hashlib.sha256(
        f"config.json\t{hashlib.sha256(b'{}').hexdigest()}\n"
        f"sub/model.bin\t{hashlib.sha256(bytes([0, 1])).hexdigest()}\n".encode()).hexdigest()
    assert weights[2]["sha256"] == tree and weights[2]["size"] == 4
    assert weights[3]["tag"] == "openai" and weights[3]["sha256"] is None

    manifest = provenance.read_manifest(out / "manifest.tsv")
    assert not any(p.startswith("provenance/") for p in manifest["path"])
    assert len(manifest) == 4


def test_missing_weight_file_names_model_and_path(tmp_path: Path) -> None:
    """A weights path that does not exist is an error naming the model and the path."""
    with pytest.raises(WeightsError, match=r"resnet50 not found at .*missing\.pth"):
        provenance.weights_identity([{"name": "resnet50", "path": tmp_path / "missing.pth"}])


def test_cli_verify_exits_nonzero_with_readable_list(results: Path) -> None:
    """`python -m neuron_concepts.provenance verify` prints OK, or the problems and exits 1."""
    provenance.write_provenance(results, {}, [])
    cmd = [sys.executable, "-m", "neuron_concepts.provenance", "verify", str(results)]
    ok = subprocess.run(cmd, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("OK: all 4 artifacts")

    (results / "descriptions" / "www.parquet").unlink()
    bad = subprocess.run(cmd, capture_output=True, text=True)
    assert bad.returncode == 1
    assert "  missing: descriptions/www.parquet" in bad.stdout


def test_weights_from_markers_reads_the_downloaded_path(tmp_path: Path) -> None:
    """A marker's path is hashed; random weights (no marker) stay random; a bad marker is named."""
    weights_file = tmp_path / "resnet.pth"
    weights_file.write_bytes(b"weights")
    marker = tmp_path / "markers" / "target" / "resnet50-IMAGENET1K_V1.json"
    io.write_text(marker, json.dumps({"spec": {}, "path": str(weights_file), "sha256": None}))
    entries = provenance.weights_from_markers([
        {"name": "target resnet50", "tag": "IMAGENET1K_V1", "marker": str(marker)},
        {"name": "clip.match ViT-B-32", "tag": "random", "marker": None}])
    assert entries == [{"name": "target resnet50", "tag": "IMAGENET1K_V1",
                        "path": str(weights_file)},
                       {"name": "clip.match ViT-B-32", "tag": "random"}]
    target, clip = provenance.weights_identity(entries)
    assert target["sha256"] == hashlib.sha256(b"weights").hexdigest() and target["size"] == 7
    assert clip["sha256"] == "random"

    marker.write_text("{not json")
    with pytest.raises(WeightsError, match=str(marker)):
        provenance.weights_from_markers([{"name": "t", "tag": "x", "marker": str(marker)}])


def test_writers_record_the_hash_and_the_manifest_trusts_it_only_while_unchanged(tmp_path):
    import os

    results = tmp_path / "results"
    io.write_npz(results / "a" / "x.npz", v=np.arange(10))
    artifact = results / "a" / "x.npz"
    assert io.recorded_sha256(artifact) == io.sha256_file(artifact)
    # The manifest takes the record (a forged one proves it is read, not recomputed) ...
    record = artifact.parent / io.HASH_RECORDS / "x.npz.json"
    stat = artifact.stat()
    record.write_text(record.read_text().replace(io.recorded_sha256(artifact), "f" * 64))
    assert provenance.artifact_manifest(results)["sha256"].tolist() == ["f" * 64]
    # ... and the hidden record is no artifact.
    assert provenance.artifact_manifest(results)["path"].tolist() == ["a/x.npz"]
    # A file only touched (same bytes, new mtime) is hashed again and accepted ...
    record.write_text(record.read_text().replace("f" * 64, io.sha256_file(artifact)))
    os.utime(artifact, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10 ** 9))
    assert io.recorded_sha256(artifact) is None
    assert io.changed_since_written(artifact) is None
    assert provenance.artifact_manifest(results)["sha256"].tolist() == [io.sha256_file(artifact)]
    # ... but other bytes than its writer's are never blessed: named, with the remake command.
    artifact.write_bytes(artifact.read_bytes() + b"\0")
    with pytest.raises(InputDataError, match=r"changed by hand: .*a/x\.npz .*bytes when written.*"
                                             r"snakemake --cores all --forcerun .*a/x\.npz"):
        provenance.artifact_manifest(results)


def test_same_size_edit_is_found_by_hash_and_verify_names_it_after_a_new_manifest(results):
    provenance.write_provenance(results, {}, [])
    csv = results / "tables" / "hit_rate.csv"
    csv.write_text(csv.read_text().replace("0.5", "0.7"))
    assert "same size, other bytes" in io.changed_since_written(csv)
    # A manifest written by an older version (hashing what is there) does not hide the edit.
    table = pd.read_csv(results / "provenance" / "manifest.tsv", sep="\t", keep_default_na=False)
    table.loc[table["path"] == "tables/hit_rate.csv", "sha256"] = io.sha256_file(csv)
    problems = provenance.verify_manifest(results, table)
    assert problems == [f"changed by hand: {results.as_posix()}/tables/hit_rate.csv (same size, "
                        "other bytes than when written); remake it with `snakemake --cores all "
                        f"--forcerun {results.as_posix()}/tables/hit_rate.csv`"]


def test_unfinished_writes_are_reported_and_removed_only_when_their_writer_is_gone(tmp_path):
    import socket

    folder = tmp_path / "results" / "x"
    folder.mkdir(parents=True)
    host = socket.gethostname().replace(".", "_")
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True).stdout.strip()
    dead = folder / f".cos.npz.{host}.{ended}.ab12cd34.tmp"
    alive = folder / f".cos.npz.{host}.{__import__('os').getpid()}.ef56gh78.tmp"
    dead.write_bytes(b"partial")
    alive.write_bytes(b"being written")
    assert io.stale_temporaries(tmp_path / "results") == [dead]
    assert provenance.verify_manifest(tmp_path / "results", pd.DataFrame(
        columns=provenance.MANIFEST_COLUMNS)) == [
        f"unfinished write: {dead} (a temporary file of a killed job; the next snakemake run "
        "removes it)"]
    io.stale_temporaries(tmp_path / "results", remove=True)
    assert not dead.exists() and alive.exists()
