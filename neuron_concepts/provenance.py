"""Provenance of a run: the resolved config, package versions, weights, and a manifest.

``write_provenance`` records, under ``results/provenance/``, everything needed to say
what produced the artifacts of ``results/``:

- ``config.yaml``: the resolved configuration the workflow ran with;
- ``environment.yaml``: Python, platform, versions of the packages that shape the numbers,
  and torch's CUDA/cuDNN build;
- ``weights.yaml``: each model's name, tag and the SHA-256 of its weight file(s), or
  ``random`` for randomly initialised weights;
- ``manifest.tsv``: every artifact under ``results/`` (but provenance itself and the
  report) with its size and SHA-256.

``verify_manifest`` (and ``python -m neuron_concepts.provenance verify results/``) checks a
regenerated ``results/`` against the manifest and names each artifact that is missing,
changed, or not in the manifest.

Byte hashes are the right test on one environment: our Parquet writer (pyarrow) and npz
writer (numpy) give byte-identical files for equal data. Across environments they do not
quite: a Parquet footer names the pyarrow version (``created_by``) and the pandas
version. Parquet rows of the manifest therefore also carry ``content_sha256``, a hash of
the table's columns and values only, and ``verify_manifest`` accepts a Parquet file whose
bytes differ but whose content is equal (``strict=True`` turns that off).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from . import io
from .errors import InputDataError, WeightsError

CHUNK_BYTES = 1 << 20
"""Files are hashed in 1 MiB chunks, so a multi-gigabyte artifact never sits in memory."""

PACKAGES = ("neuron-concepts", "torch", "torchvision", "open_clip_torch", "timm",
            "sentence-transformers", "snakemake", "snakemake-executor-plugin-slurm",
            "numpy", "pandas", "pyarrow", "nltk", "scikit-learn", "scikit-image", "pillow",
            "pyyaml")
"""Distributions whose versions can change the numbers or the files of a run."""

EXCLUDED = ("provenance", "report", "report.html", "report.zip")
"""Top-level entries of results/ that are not artifacts: provenance itself, the report."""

MANIFEST_COLUMNS = ["path", "size", "sha256", "content_sha256"]


# ---------------------------------------------------------------------------- hashing


def sha256_tree(root: str | os.PathLike) -> str:
    """SHA-256 of a directory: of its files' relative paths and hashes, in sorted order.

    Identifies a model stored as a folder (a sentence-transformers model, a Hugging Face
    snapshot) by content, independent of where it lies and of file dates.
    """
    root = Path(root)
    digest = hashlib.sha256()
    for rel in _walk_files(root, exclude=()):
        digest.update(f"{rel}\t{io.sha256_file(root / rel)}\n".encode())
    return digest.hexdigest()


def content_hash_parquet(path: str | os.PathLike) -> str:
    """SHA-256 of a Parquet table's column names, types and values, not of its bytes.

    Equal for equal tables written by different pyarrow/pandas versions (whose version
    strings and pandas metadata end up in the file footer), and independent of row-group
    layout. Nulls count as values: a null and a zero differ.
    """
    table = pq.read_table(path).replace_schema_metadata(None)
    digest = hashlib.sha256()
    digest.update(f"rows={table.num_rows}\n".encode())
    for name, column in zip(table.column_names, table.columns):
        array = column.combine_chunks()
        digest.update(f"column={name}\ttype={array.type}\n".encode())
        digest.update(np.packbits(array.is_null().to_numpy(zero_copy_only=False)).tobytes())
        if pa.types.is_integer(array.type) or pa.types.is_floating(array.type) \
                or pa.types.is_boolean(array.type):
            values = array.fill_null(False if pa.types.is_boolean(array.type) else 0)
            digest.update(np.ascontiguousarray(values.to_numpy(zero_copy_only=False)).tobytes())
        else:  # strings, lists, structs, dates: their Python values as canonical JSON
            digest.update(json.dumps(array.to_pylist(), sort_keys=True, default=str).encode())
    return digest.hexdigest()


# ---------------------------------------------------------------------------- manifest
def _walk_files(root: Path, exclude: Iterable[str]) -> list[str]:
    """Relative POSIX paths of the files under ``root``, sorted, skipping ``exclude``
    (top-level names) and hidden entries (temporary files of atomic writes)."""
    excluded = set(exclude)
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = Path(dirpath).relative_to(root)
        top = rel_dir == Path(".")
        dirnames[:] = [d for d in dirnames if not d.startswith(".")
                       and not (top and d in excluded)]
        found += [(rel_dir / name).as_posix() for name in filenames
                  if not name.startswith(".") and not (top and name in excluded)]
    return sorted(found)


def artifact_manifest(results_dir: str | os.PathLike,
                      exclude: Iterable[str] = EXCLUDED) -> pd.DataFrame:
    """Every artifact under ``results_dir`` with size, SHA-256 and, for Parquet, content hash.

    Columns: path (relative, POSIX), size (bytes), sha256, content_sha256 ("" but for
    ``.parquet``). Rows sorted by path, so equal trees give equal manifests.
    """
    root = Path(results_dir)
    if not root.is_dir():
        raise InputDataError(f"results folder {root} does not exist; run the workflow first")
    edited = edited_by_hand(root, exclude)
    if edited:
        # A manifest hashes what is there: it must never bless bytes no rule wrote.
        raise InputDataError(
            f"{len(edited)} artifact(s) under {root} are not the bytes their rule wrote, so no "
            "manifest is written for them:\n" + "\n".join(f"  {line}" for line in edited))
    rows = []
    for rel in _walk_files(root, exclude):
        path = root / rel
        # The digest its job recorded when it wrote the file, if the file is unchanged since:
        # the run's end then reads no artifact again.
        digest = io.recorded_sha256(path) or io.sha256_file(path)
        rows.append({"path": rel, "size": path.stat().st_size, "sha256": digest,
                     "content_sha256": content_hash_parquet(path)
                     if rel.endswith(".parquet") else ""})
    return pd.DataFrame(rows, columns=MANIFEST_COLUMNS).astype({"size": "int64"})


def remake_command(path: str | os.PathLike) -> str:
    """The command that remakes one artifact and everything that depends on it."""
    return f"snakemake --cores all --forcerun {path}"


def edited_by_hand(results_dir: str | os.PathLike,
                   exclude: Iterable[str] = EXCLUDED) -> list[str]:
    """One line for each artifact whose bytes differ from those its job wrote (the write-time
    record beside it, :func:`neuron_concepts.io.changed_since_written`): what changed, and
    the command that remakes it. Paths are as Snakemake names them (results/...)."""
    root = Path(results_dir)
    lines = []
    for rel in _walk_files(root, exclude):
        why = io.changed_since_written(root / rel)
        if why:
            target = (root / rel).as_posix()
            lines.append(f"changed by hand: {target} ({why}); remake it with "
                         f"`{remake_command(target)}`")
    return lines


def write_manifest(path: str | os.PathLike, manifest: pd.DataFrame) -> None:
    """Write a manifest as tab-separated text (diffable, readable without Python)."""
    io.write_text(path, manifest[MANIFEST_COLUMNS].to_csv(sep="\t", index=False,
                                                          lineterminator="\n"))


def read_manifest(path: str | os.PathLike) -> pd.DataFrame:
    """Read a manifest written by :func:`write_manifest`."""
    path = Path(path)
    if not path.is_file():
        raise InputDataError(f"manifest {path} not found; write it with write_provenance "
                             "(the workflow's provenance rule) first")
    table = pd.read_csv(path, sep="\t", dtype={"path": str, "size": "int64", "sha256": str,
                                               "content_sha256": str}, keep_default_na=False)
    missing = set(MANIFEST_COLUMNS) - set(table.columns)
    if missing:
        raise InputDataError(f"manifest {path} lacks the columns {sorted(missing)}")
    return table


def verify_manifest(results_dir: str | os.PathLike,
                    manifest: str | os.PathLike | pd.DataFrame | None = None,
                    check_extra: bool = True, strict: bool = False,
                    exclude: Iterable[str] = EXCLUDED) -> list[str]:
    """Compare the artifacts under ``results_dir`` with a manifest; return the problems.

    ``manifest`` is a path, a DataFrame, or None for ``results_dir/provenance/manifest.tsv``.
    Each problem is one line naming the artifact: ``missing: <path> ...``,
    ``changed: <path> ...`` and, with ``check_extra``, ``extra: <path> ...``. A Parquet
    file whose bytes differ but whose table is equal is accepted unless ``strict``. An
    empty list means every artifact matches.
    """
    root = Path(results_dir)
    if manifest is None:
        manifest = root / "provenance" / "manifest.tsv"
    expected = manifest if isinstance(manifest, pd.DataFrame) else read_manifest(manifest)
    present = set(_walk_files(root, exclude)) if root.is_dir() else set()
    problems = []
    for row in expected.itertuples(index=False):
        path = root / row.path
        if row.path not in present:
            problems.append(f"missing: {row.path} (in the manifest, not under {root})")
            continue
        size = path.stat().st_size
        digest = io.sha256_file(path)
        if digest == row.sha256:
            continue
        if not strict and row.content_sha256 and row.path.endswith(".parquet") \
                and content_hash_parquet(path) == row.content_sha256:
            continue  # same table, other writer metadata (pyarrow/pandas version)
        detail = (f"size {row.size} -> {size} bytes" if size != row.size
                  else f"sha256 {row.sha256[:12]}... -> {digest[:12]}..., same size")
        problems.append(f"changed: {row.path} ({detail}); remake it with "
                        f"`{remake_command((root / row.path).as_posix())}`")
    if check_extra:
        for rel in sorted(present - set(expected["path"])):
            problems.append(f"extra: {rel} (under {root}, not in the manifest)")
    if root.is_dir():
        # Against its own write-time record too: a manifest written after an edit (by hand,
        # or by an older version) does not make the edit right.
        reported = {p.split()[1] for p in problems}
        problems += [line for line in edited_by_hand(root, exclude)
                     if Path(line.split()[3]).relative_to(root).as_posix() not in reported]
        problems += [f"unfinished write: {path} (a temporary file of a killed job; the next "
                     "snakemake run removes it)" for path in io.stale_temporaries(root)]
    return problems


# ---------------------------------------------------------------------------- environment
def package_versions(packages: Sequence[str] = PACKAGES) -> dict[str, str]:
    """Installed version of each distribution, or ``not installed``."""
    versions = {}
    for name in packages:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def environment() -> dict[str, Any]:
    """Python, platform, package versions and torch's CUDA build and visible devices."""
    env: dict[str, Any] = {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "packages": package_versions(),
    }
    try:
        import torch
    except ImportError:
        return env
    env["torch_build"] = {
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "cuda_devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        if torch.cuda.is_available() else [],
    }
    return env


def weights_identity(weights: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Identify each model's weights: name, tag, path and SHA-256 (``random`` for random).

    Each entry names the model (``name``) and gives a ``tag`` (e.g. ``IMAGENET1K_V1``,
    ``openai``, ``random``), a ``path`` (file or folder of the weights), or both. A file
    is hashed, a folder through :func:`sha256_tree`; a tag without a path is recorded as
    it is (the library resolved it, e.g. from a hub cache that is not ours to hash).
    """
    identities = []
    for entry in weights:
        if "name" not in entry:
            raise WeightsError(f"weights entry {dict(entry)} has no 'name'")
        tag, path = entry.get("tag"), entry.get("path")
        ident: dict[str, Any] = {"name": str(entry["name"]),
                                 "tag": None if tag is None else str(tag),
                                 "path": None if path is None else str(path)}
        if tag == "random" or path == "random":
            ident.update(tag="random", path=None, sha256="random", size=None)
        elif path is not None:
            p = Path(path)
            if p.is_file():
                ident.update(sha256=io.sha256_file(p), size=p.stat().st_size)
            elif p.is_dir():
                ident.update(sha256=sha256_tree(p), size=sum(
                    (p / rel).stat().st_size for rel in _walk_files(p, exclude=())))
            else:
                raise WeightsError(f"weights of {entry['name']} not found at {p}; "
                                   "point the config at the downloaded file or folder")
        else:
            ident.update(sha256=None, size=None)
        identities.append(ident)
    return identities


def weights_from_markers(models: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Entries for :func:`weights_identity` from the workflow's download markers.

    Each model names ``name``, ``tag`` and ``marker``: the JSON file the download_weights
    rule wrote (``{"path": ...}``: where the weights were put), or None for random weights.
    """
    entries = []
    for model in models:
        entry = {"name": model["name"], "tag": model["tag"]}
        marker = model.get("marker")
        if marker:
            try:
                path = json.loads(Path(marker).read_text())["path"]
            except (OSError, ValueError, KeyError) as exc:
                raise WeightsError(f"download marker {marker} of {model['name']} is unreadable "
                                   f"({exc}); delete it and rerun to fetch the weights again"
                                   ) from exc
            if path is not None:
                entry["path"] = path
        entries.append(entry)
    return entries


def _plain(value: Any) -> Any:
    """Config values as plain YAML types (Snakemake configs may hold Paths, tuples)."""
    return json.loads(json.dumps(value, default=str))


def _write_yaml(path: Path, data: Any) -> None:
    io.write_text(path, yaml.safe_dump(_plain(data), sort_keys=False, allow_unicode=True))


def write_provenance(results_dir: str | os.PathLike, config: Mapping[str, Any],
                     weights: Iterable[Mapping[str, Any]],
                     out_dir: str | os.PathLike | None = None) -> Path:
    """Write config.yaml, environment.yaml, weights.yaml and manifest.tsv; return out_dir.

    ``out_dir`` defaults to ``results_dir/provenance``. The manifest lists the artifacts
    under ``results_dir`` at call time, so call this after every artifact is written
    (in the workflow: a rule whose inputs are all final artifacts).
    """
    out = Path(out_dir) if out_dir is not None else Path(results_dir) / "provenance"
    out.mkdir(parents=True, exist_ok=True)
    _write_yaml(out / "config.yaml", dict(config))
    _write_yaml(out / "environment.yaml", environment())
    _write_yaml(out / "weights.yaml", weights_identity(weights))
    exclude = list(EXCLUDED)
    if out.resolve().parent == Path(results_dir).resolve():  # a custom folder in results/
        exclude.append(out.name)
    write_manifest(out / "manifest.tsv", artifact_manifest(results_dir, exclude))
    return out


# ---------------------------------------------------------------------------- CLI
def main(argv: Sequence[str] | None = None) -> int:
    """``verify RESULTS [--manifest M] [--ignore-extra] [--strict]`` or ``manifest RESULTS``."""
    parser = argparse.ArgumentParser(prog="python -m neuron_concepts.provenance",
                                     description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    verify = sub.add_parser("verify", help="check RESULTS against its manifest")
    verify.add_argument("results", type=Path)
    verify.add_argument("--manifest", type=Path, default=None,
                        help="default: RESULTS/provenance/manifest.tsv")
    verify.add_argument("--ignore-extra", action="store_true",
                        help="do not report files missing from the manifest")
    verify.add_argument("--strict", action="store_true",
                        help="compare Parquet files by bytes only")
    manifest = sub.add_parser("manifest", help="write RESULTS/provenance/manifest.tsv")
    manifest.add_argument("results", type=Path)
    args = parser.parse_args(argv)

    try:
        if args.command == "manifest":
            table = artifact_manifest(args.results)
            write_manifest(args.results / "provenance" / "manifest.tsv", table)
            print(f"wrote {args.results / 'provenance' / 'manifest.tsv'}: {len(table)} artifacts")
            return 0
        source = args.manifest or args.results / "provenance" / "manifest.tsv"
        expected = read_manifest(source)
        problems = verify_manifest(args.results, expected, check_extra=not args.ignore_extra,
                                   strict=args.strict)
    except InputDataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if problems:
        print(f"{len(problems)} problem(s): {args.results} does not match {source}")
        print("\n".join(f"  {p}" for p in problems))
        return 1
    print(f"OK: all {len(expected)} artifacts under {args.results} match {source}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
