"""Reading and writing artifacts: one save/load pair per artifact type.

Every writer goes through a temporary file in the target folder and an atomic rename,
so a job killed mid-write never leaves a file that looks complete. Every loader checks
the keys (columns), shapes and dtypes of what it returns and raises
:class:`~neuron_concepts.errors.InputDataError` naming the file, what it expected, what
it found, and the rule that remakes it, so a stale or foreign file stops a job with a
message instead of a traceback deep inside a method. The workflow scripts read and
write artifacts with these functions; a notebook reads the pipeline's output with the
same ones (paths under ``results/``):

| artifact | path | save / load | content |
|---|---|---|---|
| probe manifest | ``probe/{probe}/manifest.parquet`` | save_manifest / load_manifest | image_id, path, label, label_name, width, height |
| unreadable files | ``probe/{probe}/unreadable.parquet`` | save_unreadable / load_unreadable | image_id, path |
| concept set | ``concepts/{concepts}.parquet`` | save_concepts / load_concepts | concept_id, text, synset (nullable) |
| text embeddings | ``text_emb/{clip}/{concepts}.npz`` | save_text_embeddings / load_text_embeddings | :class:`TextEmbeddings`: prompt ``[C, D]``, base ``[D]``, raw ``[C, D]`` float16; ids ``[C]`` concept ids |
| image embeddings | ``image_emb/{probe}/{clip}/{view}.npz`` | save_image_embeddings / load_image_embeddings | :class:`Embeddings`: emb float16 ``[N, D]``, ids ``[N]`` image ids |
| evaluation embeddings | ``eval_emb/{model}/{concepts}.npz`` | save_eval_embeddings / load_eval_embeddings | :class:`Embeddings`: emb float16 ``[T, D]``, ids ``[T]`` the texts |
| activations | ``activations/{probe}/{target}/{view}/{layer}.npz`` | save_activations / load_activations | :class:`Activations`: values float32 ``[N, K]``, ids ``[N]`` image ids |
| similarity | ``similarity/{probe}/{clip}/{view}/{concepts}/cos.npz`` (``cos-f16.npz``: float16) | save_similarity / load_similarity | :class:`Similarity`: cosines float32 (float16 in ``cos-f16.npz``), prompt ``[N, C]``, base ``[N]``, raw ``[N, C]``, those the file holds |
| Grad-CAM | ``gradcam/{probe}/{target}/cams.npz`` | save_cams / load_cams | :class:`GradCams`: image_id ``[N]``, cams float32 ``[N, h, w]``, predicted int64 ``[N]`` |
| crop boxes | ``gradcam/{probe}/{target}/boxes-f{fraction}.parquet`` | save_boxes / load_boxes | image_id, x0, y0, x1, y1 (original pixels), cam_zero, predicted |
| descriptions | ``descriptions/{probe}/{target}/{layer}/{method}/{concepts}.parquet`` | save_descriptions / load_descriptions | neuron, rank, concept_id, concept, score, selected, fallback |
| evaluation | ``eval/{probe}/{target}/{layer}/{method}/{concepts}.parquet`` | save_evaluation / load_evaluation | neuron, predictions, top1, ``www_*`` and ``cd_*`` metrics (0..1) |
| summary tables | ``tables/{name}.csv`` and ``.md`` | save_summary_table / load_concept_discovery_table, load_ablation_table, load_stability_table, load_ood_table, load_wsol_table | the papers' tables (x100), labels first |
| ConVis vocabulary | ``convis/vocab/{vocab}.parquet`` | save_vocabulary / load_vocabulary | synset, lemma, definition, parents, depth, seed |
| ConVis rank volume | ``convis/{probe}/{clip}/{vocab}/{grid}/ranks/{image}.npz`` | save_rank_volume / load_rank_volume | :class:`~neuron_concepts.convis_grid.RankVolume`, plus the synsets ``[S]`` it ranks |
| ConVis map | ``convis/.../maps/{image}/{synset}.npz`` | save_convis_map / load_convis_map | :class:`ConvisMap`: saliency float32 ``[H, W]``, members, synset, resize |
| ConVis top synsets | ``convis/.../top/{image}.parquet`` | save_top_synsets / load_top_synsets | index, synset, lemma, definition, score |
| weights marker | ``{cache}/markers/{kind}/{tag}.json`` | save_weights_marker / load_weights_marker | spec, path, sha256 |

The npz keys are the names of the fields above except ``emb`` (the text embeddings' prompt
rows) and ``activations`` (:class:`Activations`' values). Loaders of large npz files take
``parts`` and read only those arrays (``np.load`` is lazy per key): CLIP-Dissect reads
only the raw-string cosines of a similarity file. ``save_cams`` and ``load_cams`` are the
Grad-CAM pair above. ``write_npz``, ``read_npz``, ``write_parquet``, ``read_parquet``,
``write_text``, ``write_embeddings`` and ``read_embeddings`` are the unchecked primitives
below the pairs, for other files. ``write_npz`` streams a member given as
:class:`RowBlocks` (shape, dtype, blocks of rows made on demand) into the file, so
:func:`save_similarity` writes ``[N, C]`` cosines without holding them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import tempfile
import time
import zipfile
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterable, Iterator, Mapping, Sequence, TypedDict

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from . import names
from .convis_grid import RankVolume  # numpy only: io stays light for table readers
from .errors import InputDataError, UnreadableArtifactError

PathLike = str | os.PathLike


# ============================================================================ primitives

# A writer's temporary file: ".{name}.{host}.{pid}.{random}.tmp" beside its artifact. Host and
# process say whether its writer still runs (stale_temporaries), so the next run removes
# what a killed job left and never the file of a job that is still writing.
TEMPORARY_SUFFIX = ".tmp"


def _temporary_prefix(path: Path) -> str:
    return f".{path.name}.{socket.gethostname().replace('.', '_')}.{os.getpid()}."


@contextlib.contextmanager
def atomic_path(path: PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success, and
    record its SHA-256 (:func:`recorded_sha256`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=_temporary_prefix(path), suffix=TEMPORARY_SUFFIX,
                               dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes owner-only files; artifacts are shared
    try:
        yield Path(tmp)
        digest = sha256_file(tmp)
        os.replace(tmp, path)
        _record_sha256(path, digest)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


# Hidden folder beside each artifact with the SHA-256 its writer computed: the provenance
# manifest at the end of a run reads these instead of every artifact again (the big ones
# are hashed on the node that wrote them, not on the login node). Hidden entries are not
# artifacts (provenance skips them).
HASH_RECORDS = ".sha256"
HASH_CHUNK_BYTES = 2 ** 20


def sha256_file(path: PathLike) -> str:
    """SHA-256 hex digest of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(HASH_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def _hash_record_path(path: Path) -> Path:
    return path.parent / HASH_RECORDS / f"{path.name}.json"


def _record_sha256(path: Path, digest: str) -> None:
    """Record ``path``'s digest with its size and modification time, which say whether the
    file is still the one that was hashed."""
    stat = path.stat()
    record = _hash_record_path(path)
    record.parent.mkdir(exist_ok=True)
    tmp = record.with_name(f".{record.name}.tmp")
    tmp.write_text(json.dumps({"size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
                               "sha256": digest}))
    os.replace(tmp, record)


def hash_record(path: PathLike) -> dict | None:
    """What the writer of ``path`` recorded (size, mtime_ns, sha256), or None without a
    record (a file not written through :func:`atomic_path`)."""
    try:
        record = json.loads(_hash_record_path(Path(path)).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and "sha256" in record else None


def changed_since_written(path: PathLike) -> str | None:
    """Why ``path``'s bytes are not those its writer recorded, or None when they are (or
    when there is no record to compare with). A file only touched (same bytes, another
    modification time) is unchanged; the digest is computed only when size or time differ."""
    record = hash_record(path)
    if record is None:
        return None
    stat = Path(path).stat()
    if record.get("size") == stat.st_size and record.get("mtime_ns") == stat.st_mtime_ns:
        return None
    digest = sha256_file(path) if record.get("size") == stat.st_size else None
    # A writer renames its file into place, then records it: read the record again, so a
    # file caught between the two is not taken for an edit.
    record = hash_record(path) or record
    now = Path(path).stat()
    if record.get("size") == now.st_size and record.get("mtime_ns") == now.st_mtime_ns:
        return None
    if record.get("size") != now.st_size:
        return f"{record.get('size')} bytes when written, {now.st_size} now"
    if (digest or sha256_file(path)) != record["sha256"]:
        return "same size, other bytes than when written"
    return None


def stale_temporaries(root: PathLike, remove: bool = False) -> list[Path]:
    """Temporary files under ``root`` left by writes that did not finish (a killed job).

    A temporary whose writer runs on this host and is still alive is not stale (another
    Snakemake may be writing it); one from another host counts as stale only when older
    than a day, since its writer cannot be asked. ``remove`` deletes the stale ones.
    """
    host = socket.gethostname().replace(".", "_")
    stale = []
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            if not (name.startswith(".") and name.endswith(TEMPORARY_SUFFIX)):
                continue
            path = Path(dirpath) / name
            parts = name[:-len(TEMPORARY_SUFFIX)].rsplit(".", 3)
            writer_host, pid = (parts[1], parts[2]) if len(parts) == 4 else ("", "")
            if writer_host == host and pid.isdigit() and process_alive(int(pid)):
                continue
            if writer_host and writer_host != host:
                try:
                    if time.time() - path.stat().st_mtime < 86400:
                        continue
                except OSError:
                    continue
            stale.append(path)
    if remove:
        for path in stale:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
    return sorted(stale)


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` of this host still runs."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def recorded_sha256(path: PathLike) -> str | None:
    """The SHA-256 recorded when ``path`` was written, or None if there is no record or the
    file changed since (another size or modification time)."""
    path = Path(path)
    try:
        record = json.loads(_hash_record_path(path).read_text())
        stat = path.stat()
    except (OSError, ValueError):
        return None
    if record.get("size") != stat.st_size or record.get("mtime_ns") != stat.st_mtime_ns:
        return None
    return record.get("sha256")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@dataclass(frozen=True)
class RowBlocks:
    """An array that :func:`write_npz` streams into the file block by block, never whole.

    ``shape`` and ``dtype``: the array's final shape and stored dtype (its ``.npy`` header
    is written first); ``blocks``: consecutive blocks of its rows, in order, each of shape
    ``[rows, *shape[1:]]`` (cast to ``dtype`` as written). The writer holds one block at a
    time, so an iterator that makes each block on demand keeps the whole array out of memory.
    """

    shape: tuple[int, ...]
    dtype: np.dtype
    blocks: Iterable[np.ndarray]

    @property
    def ndim(self) -> int:
        return len(self.shape)


def write_npz(path: PathLike, **arrays: np.ndarray | RowBlocks) -> None:
    """Write arrays to an uncompressed npz, atomically and byte-reproducibly.

    The bytes are those ``np.savez`` writes for the same arrays, in the given key order: a
    zip (stored, zip64 entries with zip's fixed 1980 date) of one ``.npy`` file per key. A
    :class:`RowBlocks` member is streamed: its header with the final shape, then its rows
    block by block, so a file larger than memory can be written.
    """
    with atomic_path(path) as tmp, open(tmp, "wb") as f, \
            zipfile.ZipFile(f, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for key, value in arrays.items():
            # As numpy's _savez: one entry per array, always zip64 (numpy gh-10776).
            with archive.open(f"{key}.npy", "w", force_zip64=True) as member:
                if isinstance(value, RowBlocks):
                    _write_row_blocks(member, value, f"array {key!r} of {path}")
                else:
                    np.lib.format.write_array(member, np.asarray(value), allow_pickle=True)


def _npy_header(shape: tuple[int, ...], dtype: np.dtype) -> bytes:
    """The ``.npy`` header ``np.lib.format.write_array`` writes for a C-ordered array of
    ``shape`` and ``dtype``: version 1.0, or 2.0 when it does not fit in 1.0."""
    header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False,
              "shape": tuple(int(size) for size in shape)}
    buffer = BytesIO()
    try:
        np.lib.format.write_array_header_1_0(buffer, header)
    except ValueError:  # a header over 65,535 bytes (a structured dtype with many fields)
        buffer = BytesIO()
        np.lib.format.write_array_header_2_0(buffer, header)
    return buffer.getvalue()


def _write_row_blocks(member: BinaryIO, rows: RowBlocks, what: str) -> None:
    """Write ``rows`` as a ``.npy`` file into an open zip ``member``: header, then each
    block's bytes; an error naming ``what`` when the blocks do not add up to its shape."""
    shape, dtype = tuple(int(size) for size in rows.shape), np.dtype(rows.dtype)
    if not shape or dtype.hasobject:
        raise ValueError(f"{what}: row blocks make arrays of at least one axis and a plain dtype")
    member.write(_npy_header(shape, dtype))
    written = 0
    for block in rows.blocks:
        block = np.ascontiguousarray(block, dtype=dtype)
        if block.shape[1:] != shape[1:] or written + len(block) > shape[0]:
            raise ValueError(f"{what}: a block of shape {block.shape} after {written} rows does "
                             f"not fit shape {shape}")
        member.write(block.data)
        written += len(block)
        del block  # the next block is made while none is held here
    if written != shape[0]:
        raise ValueError(f"{what}: the blocks hold {written} rows where its shape {shape} says {shape[0]}")


def read_npz(path: PathLike) -> dict[str, np.ndarray]:
    """Read every array of an npz file into a dict (unchecked: artifacts have loaders)."""
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def write_parquet(path: PathLike, table: pd.DataFrame) -> None:
    """Write a DataFrame to Parquet (pyarrow, no index), atomically."""
    with atomic_path(path) as tmp:
        table.to_parquet(tmp, engine="pyarrow", index=False)


def read_parquet(path: PathLike) -> pd.DataFrame:
    """Read a Parquet table written by :func:`write_parquet` (unchecked)."""
    return pd.read_parquet(path, engine="pyarrow")


def write_text(path: PathLike, text: str) -> None:
    """Write a text file atomically."""
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text)


def write_embeddings(path: PathLike, embeddings: np.ndarray, ids: np.ndarray | list,
                     **extra: np.ndarray) -> None:
    """Write any embeddings npz: float16 ``emb``, its row ``ids`` and extras (unchecked).

    The pipeline's embeddings have typed pairs (:func:`save_text_embeddings`,
    :func:`save_image_embeddings`, :func:`save_eval_embeddings`).
    """
    write_npz(path, emb=np.asarray(embeddings, dtype=np.float16), ids=np.asarray(ids), **extra)


def read_embeddings(path: PathLike) -> dict[str, np.ndarray]:
    """Read any embeddings npz into a dict; ``emb`` comes back as float32 (unchecked)."""
    data = read_npz(path)
    data["emb"] = data["emb"].astype(np.float32)
    return data


# ============================================================================ checks

def _fix(path: PathLike, rule: str) -> str:
    # --forcerun, not deleting it: Snakemake does not remake a missing middle artifact whose
    # dependants are up to date.
    return f"remake it with `snakemake --cores all --forcerun {path}` (rule {rule} makes it)"


def _bad(path: PathLike, name: str, rule: str, problem: str) -> InputDataError:
    """The error of a file that is not the artifact a loader expects."""
    return InputDataError(f"{path} is not a valid {name} artifact: {problem}; {_fix(path, rule)}")


@dataclass(frozen=True)
class _Array:
    """What one array of an npz artifact must be.

    ``dtype``: a numpy dtype name, or ``integer``, ``unsigned``, ``str`` (unicode) or
    ``id`` (unicode or integer). ``dims``: one entry per axis, a fixed size or a name;
    axes of the same name have the same size across the file's arrays.
    """

    dtype: str
    dims: tuple[str | int, ...] = ()

    def dtype_ok(self, dtype: np.dtype) -> bool:
        if self.dtype == "integer":
            return np.issubdtype(dtype, np.integer)
        if self.dtype == "unsigned":
            return np.issubdtype(dtype, np.unsignedinteger)
        if self.dtype == "str":
            return dtype.kind == "U"
        if self.dtype == "id":
            return dtype.kind == "U" or np.issubdtype(dtype, np.integer)
        return dtype == np.dtype(self.dtype)

    def __str__(self) -> str:
        return f"{self.dtype} [{', '.join(map(str, self.dims))}]" if self.dims else f"{self.dtype} scalar"


@dataclass(frozen=True)
class _NpzFormat:
    """An npz artifact: its arrays, those older files may lack, and the rule that makes it."""

    name: str
    rule: str
    arrays: dict[str, _Array]
    optional: frozenset[str] = frozenset()


def _array_problem(fmt: _NpzFormat, arrays: Mapping[str, np.ndarray]) -> str | None:
    """What is wrong with ``arrays`` for ``fmt`` (unknown keys aside), or None."""
    sizes: dict[str, tuple[int, str]] = {}  # axis name -> (size, array it was first seen in)
    for key, array in arrays.items():
        spec = fmt.arrays[key]
        if not spec.dtype_ok(array.dtype):
            return f"array {key!r} has dtype {array.dtype} where {spec} is expected"
        if array.ndim != len(spec.dims):
            return f"array {key!r} has shape {array.shape} where {spec} is expected"
        for dim, size in zip(spec.dims, array.shape):
            if isinstance(dim, int) and size != dim:
                return f"array {key!r} has shape {array.shape} where {spec} is expected"
            if isinstance(dim, str):
                seen, other = sizes.setdefault(dim, (size, key))
                if seen != size:
                    return (f"array {key!r} has shape {array.shape} where {spec} is expected "
                            f"with {dim} = {seen} as in {other!r}")
    return None


_READ_ERRORS = (OSError, ValueError, EOFError, zipfile.BadZipFile)  # what a damaged file raises


def _open_npz(path: PathLike, fmt: _NpzFormat) -> np.lib.npyio.NpzFile:
    """The npz archive at ``path`` (arrays are read on access); an error naming the file
    when it is no npz archive. A missing file raises FileNotFoundError as usual."""
    try:
        data = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise
    except _READ_ERRORS as error:
        raise _bad(path, fmt.name, fmt.rule, f"it cannot be read as an npz file ({error})") from error
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise _bad(path, fmt.name, fmt.rule, f"it holds one {data.dtype} array, not an npz archive")
    return data


def _npz_keys(path: PathLike, fmt: _NpzFormat) -> list[str]:
    """The names of the arrays an npz artifact holds (reads its zip directory only)."""
    with _open_npz(path, fmt) as data:
        return list(data.files)


def _load_npz(path: PathLike, fmt: _NpzFormat, keys: Iterable[str] | None = None,
              mmap: bool = False) -> dict[str, np.ndarray]:
    """The arrays ``keys`` (default: all of ``fmt``) of an npz artifact, checked.

    Only the named arrays are read (``mmap``: memory-mapped, see :func:`_map_npz_member`).
    A key in ``fmt.optional`` that the file lacks is left out of the result.
    """
    keys = list(fmt.arrays if keys is None else keys)
    unknown = sorted(set(keys) - set(fmt.arrays))
    if unknown:
        raise ValueError(f"{fmt.name} artifacts have no arrays {unknown}: use {sorted(fmt.arrays)}")
    with _open_npz(path, fmt) as data:
        missing = [k for k in keys if k not in data.files and k not in fmt.optional]
        if missing:
            raise _bad(path, fmt.name, fmt.rule,
                       f"it lacks the array(s) {missing} (it holds {sorted(data.files)})")
        try:
            arrays = {k: _map_npz_member(path, k) if mmap else data[k]
                      for k in keys if k in data.files}
        except _READ_ERRORS as error:  # e.g. an object array, which needs pickle
            raise _bad(path, fmt.name, fmt.rule, f"an array cannot be read ({error})") from error
    problem = _array_problem(fmt, arrays)
    if problem:
        raise _bad(path, fmt.name, fmt.rule, problem)
    return arrays


def _map_npz_member(path: PathLike, key: str) -> np.ndarray:
    """Array ``key`` of an npz file memory-mapped in place (copy-on-write: writes stay in
    memory), or read when it is compressed or empty.

    ``write_npz`` stores members uncompressed, so each is a ``.npy`` file at a fixed offset
    of the archive: past its zip local header, whose name and extra-field lengths sit at
    bytes 26-29 of that header, and past the ``.npy`` header that numpy's format reads.
    """
    import struct

    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(f"{key}.npy")
    with open(path, "rb") as f:
        f.seek(info.header_offset + 26)
        name_length, extra_length = struct.unpack("<HH", f.read(4))
        f.seek(info.header_offset + 30 + name_length + extra_length)
        version = np.lib.format.read_magic(f)
        read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                       else np.lib.format.read_array_header_2_0)
        shape, fortran_order, dtype = read_header(f)
        offset = f.tell()
    if (info.compress_type != zipfile.ZIP_STORED or dtype.hasobject
            or int(np.prod(shape, dtype=np.int64)) == 0):
        with np.load(path, allow_pickle=False) as data:
            return data[key]
    return np.memmap(path, dtype=dtype, mode="c", offset=offset, shape=shape,
                     order="F" if fortran_order else "C")


def npz_shapes(path: PathLike) -> dict[str, tuple[int, ...]]:
    """The shape of every array of an uncompressed npz, read from the headers only (no data):
    what a job's memory declaration needs before the job runs."""
    try:
        with zipfile.ZipFile(path) as archive:
            keys = [name[:-4] for name in archive.namelist() if name.endswith(".npy")]
        return {key: tuple(_map_npz_member(path, key).shape) for key in keys}
    except FileNotFoundError:
        raise
    except _READ_ERRORS as error:  # asked while planning: name the file and the remake
        raise UnreadableArtifactError(path, f"{path} cannot be read as an npz artifact ({error}); "
                                      f"remake it with `snakemake --cores all --forcerun {path}`"
                                      ) from None


def _save_npz(path: PathLike, fmt: _NpzFormat, arrays: dict[str, np.ndarray],
              finite: Iterable[str] = ()) -> None:
    """Write ``arrays`` (in this key order: it decides the bytes) after checking them; the
    arrays named in ``finite`` must hold finite values only."""
    problem = _array_problem(fmt, arrays)
    if problem:
        raise ValueError(f"not writing {path} as a {fmt.name} artifact: {problem}")
    for key in finite:
        check_finite_rows(arrays[key], f"{fmt.name} {path}")
    write_npz(path, **arrays)


MODEL_FIX = ("the model produced them: check its weights, or run it in float32 (device: cpu) "
             "to confirm")


def check_finite_rows(values: np.ndarray, what: str, fix: str = MODEL_FIX) -> None:
    """Stop when ``values`` hold NaN or infinity, naming the columns (neurons, embedding
    dimensions) and rows (images) that do: later stages would describe them as if they were
    fine. A model in float16 that overflows, or damaged weights, give such values."""
    values = np.asarray(values)
    if values.dtype.kind != "f" or values.size == 0:
        return
    bad = ~np.isfinite(values)
    if not bad.any():
        return
    columns = np.flatnonzero(bad.reshape(len(values), -1).any(axis=0)) if values.ndim > 1 else []
    rows = np.flatnonzero(bad.reshape(len(values), -1).any(axis=1))
    raise InputDataError(
        f"not writing {what}: {int(bad.sum())} non-finite value(s) (NaN or infinity) in "
        f"{len(rows)} row(s) {rows[:10].tolist()}" + (f", column(s) {columns[:10].tolist()}"
                                                        if len(columns) else "")
        + f"; {fix}")


# Column kinds of tables: int, float, number (int or float), bool, str (nulls allowed),
# id (str or int), list (sequences: Parquet lists come back as object arrays), any.
def _kind_ok(column: pd.Series, kind: str) -> bool:
    dtype = column.dtype
    if kind == "any":
        return True
    if kind == "int":
        return ptypes.is_integer_dtype(dtype)
    if kind == "float":
        return ptypes.is_float_dtype(dtype)
    if kind == "number":
        return ptypes.is_numeric_dtype(dtype) and not ptypes.is_bool_dtype(dtype)
    if kind == "bool":
        return ptypes.is_bool_dtype(dtype)
    if kind == "list":
        return dtype == object
    if kind == "id" and ptypes.is_integer_dtype(dtype):
        return True
    if kind in ("str", "id"):
        if isinstance(dtype, pd.StringDtype):
            return True
        return dtype == object and pd.api.types.infer_dtype(column, skipna=True) in ("string", "empty")
    raise ValueError(f"unknown column kind {kind!r}")


@dataclass(frozen=True)
class _TableFormat:
    """A table artifact: required columns and their kinds (others may follow), the rule
    that makes it, and whether it must hold rows."""

    name: str
    rule: str
    columns: dict[str, str]
    nonempty: bool = False


def _table_problem(fmt: _TableFormat, table: pd.DataFrame) -> str | None:
    missing = [c for c in fmt.columns if c not in table.columns]
    if missing:
        return f"it lacks the column(s) {missing} (it has {list(table.columns)})"
    if fmt.nonempty and table.empty:
        return "it has no rows"
    if not table.empty:  # an empty column has no value of a wrong kind (CSV reads it as object)
        for column, kind in fmt.columns.items():
            if not _kind_ok(table[column], kind):
                return f"column {column!r} holds {table[column].dtype} where {kind} is expected"
    return None


def _load_table(path: PathLike, fmt: _TableFormat,
                reader: Callable[[PathLike], pd.DataFrame] = read_parquet) -> pd.DataFrame:
    """A table artifact read with ``reader`` (Parquet by default), checked."""
    try:
        table = reader(path)
    except FileNotFoundError:
        raise
    except (OSError, ValueError) as error:  # pyarrow's and pandas' parse errors are ValueErrors
        raise _bad(path, fmt.name, fmt.rule, f"it cannot be read as a table ({error})") from error
    problem = _table_problem(fmt, table)
    if problem:
        raise _bad(path, fmt.name, fmt.rule, problem)
    return table


def _save_table(path: PathLike, fmt: _TableFormat, table: pd.DataFrame) -> None:
    problem = _table_problem(fmt, table)
    if problem:
        raise ValueError(f"not writing {path} as a {fmt.name} artifact: {problem}")
    write_parquet(path, table)


def _ids(ids: Sequence | np.ndarray) -> np.ndarray:
    """Row ids as a plain (non-object) array, so the npz reads without pickle."""
    array = np.asarray(ids)
    return array.astype(str) if array.dtype == object else array


def _str_ids(ids: Sequence | np.ndarray) -> np.ndarray:
    """Row ids as unicode strings (image ids, texts)."""
    return np.asarray(ids).astype(str)


# ============================================================================ probe set

MANIFEST = _TableFormat("probe manifest", "probe_manifest", {
    "image_id": "str", "path": "str", "label": "str", "label_name": "str", "width": "int",
    "height": "int"}, nonempty=True)
UNREADABLE = _TableFormat("unreadable-files list", "probe_manifest", {"image_id": "str", "path": "str"})


def save_manifest(path: PathLike, manifest: pd.DataFrame) -> None:
    """Write a probe manifest (:func:`neuron_concepts.data.build_manifest`)."""
    _save_table(path, MANIFEST, manifest)


def load_manifest(path: PathLike) -> pd.DataFrame:
    """Read a probe manifest: one row per image, in probe-set order."""
    return _load_table(path, MANIFEST)


def save_unreadable(path: PathLike, unreadable: pd.DataFrame) -> None:
    """Write the files a probe set skipped as unreadable (may be empty)."""
    _save_table(path, UNREADABLE, unreadable)


def load_unreadable(path: PathLike) -> pd.DataFrame:
    """Read the files a probe set skipped as unreadable."""
    return _load_table(path, UNREADABLE)


# ============================================================================ concept set

CONCEPTS = _TableFormat("concept set", "concept_set",
                        {"concept_id": "int", "text": "str", "synset": "str"})


def save_concepts(path: PathLike, concepts: pd.DataFrame) -> None:
    """Write a concept set (:func:`neuron_concepts.concepts.concept_set`)."""
    _save_table(path, CONCEPTS, concepts)


def load_concepts(path: PathLike) -> pd.DataFrame:
    """Read a concept set (concept_id, text, synset); an empty one is an error."""
    table = _load_table(path, CONCEPTS)
    if table.empty:
        raise InputDataError(f"concept set {path} is empty: check the concept source it was built from")
    return table


# ============================================================================ embeddings

@dataclass
class TextEmbeddings:
    """A concept set's CLIP text embeddings (float16, normalised), rows in concept order.

    ``prompt``: WWW's prompts (``template.format(concept)``), ``[C, D]`` (npz key ``emb``);
    ``base``: the base template alone, ``[D]``; ``raw``: the plain concept strings
    (CLIP-Dissect, ConVis definitions), ``[C, D]``; ``ids``: the concept ids ``[C]``.
    A part not loaded (``parts``) is None.
    """

    prompt: np.ndarray | None
    base: np.ndarray | None
    raw: np.ndarray | None
    ids: np.ndarray

    def npz_arrays(self) -> dict[str, np.ndarray]:
        """The loaded parts under their npz keys (``emb``, ``base``, ``raw``), as
        :func:`neuron_concepts.similarity.cosine_matrices` takes them."""
        return {key: getattr(self, part) for part, key in TEXT_PARTS.items()
                if getattr(self, part) is not None}


# part of TextEmbeddings -> its npz key (the prompt rows predate the other parts)
TEXT_PARTS = {"prompt": "emb", "base": "base", "raw": "raw"}
TEXT_EMBEDDINGS = _NpzFormat("text embeddings", "text_embeddings", {
    "emb": _Array("float16", ("C", "D")), "ids": _Array("integer", ("C",)),
    "base": _Array("float16", ("D",)), "raw": _Array("float16", ("C", "D"))},
    # The rule embeds only the parts the roles of its CLIP model read (prompts and base for
    # WWW's matching, raw strings for CLIP-Dissect and ConVis definitions).
    optional=frozenset({"emb", "base", "raw"}))


def save_text_embeddings(path: PathLike, ids: Sequence[int] | np.ndarray,
                         prompt: np.ndarray | None = None, base: np.ndarray | None = None,
                         raw: np.ndarray | None = None) -> None:
    """Write a concept set's text embeddings (see :class:`TextEmbeddings`), as float16: the
    parts given (at least one)."""
    if prompt is None and base is None and raw is None:
        raise ValueError(f"not writing {path}: give at least one of prompt, base, raw")
    # In this key order (it decides the bytes), as the files of every earlier version.
    arrays = {"emb": prompt, "ids": _ids(ids), "base": base, "raw": raw}
    _save_npz(path, TEXT_EMBEDDINGS, {
        key: value if key == "ids" else np.asarray(value, dtype=np.float16)
        for key, value in arrays.items() if value is not None},
        finite=[key for key, value in arrays.items() if key != "ids" and value is not None])


def load_text_embeddings(path: PathLike, parts: Iterable[str] = tuple(TEXT_PARTS)) -> TextEmbeddings:
    """Read a concept set's text embeddings: the ``parts`` asked for (of ``prompt``,
    ``base``, ``raw``; the others stay on disk) and the ids, in the stored float16."""
    parts = list(parts)
    unknown = sorted(set(parts) - set(TEXT_PARTS))
    if unknown:
        raise ValueError(f"text embeddings have no parts {unknown}: use {list(TEXT_PARTS)}")
    arrays = _load_npz(path, TEXT_EMBEDDINGS, ["ids"] + [TEXT_PARTS[p] for p in parts])
    missing = [p for p in parts if TEXT_PARTS[p] not in arrays]
    if missing:
        raise _bad(path, TEXT_EMBEDDINGS.name, TEXT_EMBEDDINGS.rule,
                   f"it lacks the part(s) {missing}: the rule embeds only what the roles of its "
                   f"CLIP model read, so a file made before a role changed lacks a new one")
    return TextEmbeddings(ids=arrays["ids"], **{p: arrays.get(k) for p, k in TEXT_PARTS.items()})


@dataclass
class Embeddings:
    """Embeddings of a list of items (float16, normalised): ``emb [N, D]``, ``ids [N]``."""

    emb: np.ndarray
    ids: np.ndarray


IMAGE_EMBEDDINGS = _NpzFormat("image embeddings", "image_embeddings", {
    "emb": _Array("float16", ("N", "D")), "ids": _Array("str", ("N",))})
EVAL_EMBEDDINGS = _NpzFormat("evaluation embeddings", "evaluation_text_embeddings", {
    "emb": _Array("float16", ("T", "D")), "ids": _Array("str", ("T",))})


def save_image_embeddings(path: PathLike, emb: np.ndarray, ids: Sequence[str] | np.ndarray) -> None:
    """Write a probe set's CLIP image embeddings, rows in manifest order (``ids``: image ids)."""
    _save_npz(path, IMAGE_EMBEDDINGS, {"emb": np.asarray(emb, dtype=np.float16), "ids": _str_ids(ids)},
              finite=["emb"])


def load_image_embeddings(path: PathLike) -> Embeddings:
    """Read a probe set's CLIP image embeddings (float16 ``[N, D]``, image ids ``[N]``)."""
    return Embeddings(**_load_npz(path, IMAGE_EMBEDDINGS))


def save_eval_embeddings(path: PathLike, emb: np.ndarray, ids: Sequence[str] | np.ndarray) -> None:
    """Write an evaluation model's embeddings of texts (``ids``: the texts themselves)."""
    _save_npz(path, EVAL_EMBEDDINGS, {"emb": np.asarray(emb, dtype=np.float16), "ids": _str_ids(ids)})


def load_eval_embeddings(path: PathLike) -> Embeddings:
    """Read an evaluation model's text embeddings (float16 ``[T, D]``, the texts ``[T]``);
    :func:`neuron_concepts.metrics.lookup_embedder` looks them up by text."""
    return Embeddings(**_load_npz(path, EVAL_EMBEDDINGS))


# ============================================================================ activations

@dataclass
class Activations:
    """One layer's activations on a probe set through one view: ``values`` float32
    ``[N, K]`` (npz key ``activations``; rows: images in manifest order, columns: neurons)
    and the image ``ids [N]``."""

    values: np.ndarray
    ids: np.ndarray


ACTIVATIONS = _NpzFormat("activations", "activations", {
    "activations": _Array("float32", ("N", "K")), "ids": _Array("str", ("N",))})


def save_activations(path: PathLike, values: np.ndarray, ids: Sequence[str] | np.ndarray) -> None:
    """Write one layer's activations (the activations rule writes one file per layer)."""
    _save_npz(path, ACTIVATIONS, {"activations": np.asarray(values, dtype=np.float32),
                                  "ids": _str_ids(ids)}, finite=["activations"])


def load_activations(path: PathLike) -> Activations:
    """Read one layer's activations (finite values only: a description of a NaN neuron
    would look like any other)."""
    arrays = _load_npz(path, ACTIVATIONS)
    check_finite_rows(arrays["activations"], f"reading activations {path}",
                      f"remake it with `snakemake --cores all --forcerun {path}`")
    return Activations(values=arrays["activations"], ids=arrays["ids"])


# ============================================================================ similarity

@dataclass
class Similarity:
    """Cosines of a probe set's images with a concept set, from one CLIP model: float32, or
    float16 in a file named so (``cos-f16.npz``, :func:`similarity_dtype`).

    ``prompt [N, C]`` with WWW's prompts, ``base [N]`` with the base template, ``raw
    [N, C]`` with the raw concept strings; the similarity rule writes only the matrices
    of the roles that use its model, and a part not in the file or not loaded is None.
    """

    prompt: np.ndarray | None = None
    base: np.ndarray | None = None
    raw: np.ndarray | None = None


def _similarity_format(dtype: str) -> _NpzFormat:
    name = "similarity" if dtype == "float32" else f"similarity ({dtype} cosines, as its name says)"
    return _NpzFormat(name, "similarity", {
        "prompt": _Array(dtype, ("N", "C")), "base": _Array(dtype, ("N",)),
        "raw": _Array(dtype, ("N", "C"))})


SIMILARITY = _similarity_format("float32")


def similarity_dtype(path: PathLike) -> str:
    """The dtype of a similarity file's cosines, which its name says
    (:func:`neuron_concepts.names.cosine_file_name`): ``float16`` for ``cos-f16.npz``,
    ``float32`` for ``cos.npz`` and any name that is no cosine file name."""
    try:
        return names.parse_cosine_file_name(Path(path).name)
    except ValueError:
        return "float32"


def save_similarity(path: PathLike, **matrices: np.ndarray | RowBlocks) -> None:
    """Write the cosine matrices given (``prompt``, ``base``, ``raw``), in the given order,
    as the dtype ``path``'s name says (:func:`similarity_dtype`).

    A matrix given as :class:`RowBlocks` (:func:`neuron_concepts.similarity.cosine_row_blocks`)
    is streamed into the file block by block; the file has the bytes it would have had
    from the whole arrays."""
    unknown = sorted(set(matrices) - set(SIMILARITY.arrays))
    if unknown or not matrices:
        raise ValueError(f"similarity matrices must be some of {list(SIMILARITY.arrays)}, got {list(matrices)}")
    dtype = similarity_dtype(path)
    _save_npz(path, _similarity_format(dtype), {
        key: RowBlocks(tuple(value.shape), np.dtype(dtype), value.blocks)
        if isinstance(value, RowBlocks) else np.asarray(value, dtype=dtype)
        for key, value in matrices.items()})


def load_similarity(path: PathLike, parts: Iterable[str] | None = None,
                    mmap: bool = False) -> Similarity:
    """Read the cosine matrices ``parts`` (default: all the file holds); only those are
    read, so CLIP-Dissect holds one ``[N, C]`` matrix, not the file.

    ``mmap=True`` maps them instead of reading them (the file's arrays are stored
    uncompressed): a method that gathers the rows of its neurons' top images then reads
    only those rows from disk, and a ``[50,000, 82,115]`` matrix never sits in memory."""
    fmt = _similarity_format(similarity_dtype(path))
    held = [k for k in fmt.arrays if k in _npz_keys(path, fmt)]
    parts = held if parts is None else list(parts)
    missing = [k for k in parts if k not in held]
    if missing or not parts:
        # The similarity rule writes only the matrices of the roles that use its model.
        raise _bad(path, fmt.name, fmt.rule,
                   f"it holds the matrices {held}, not {missing or list(fmt.arrays)}; the "
                   "rule writes prompt and base for the CLIP model of clip.match (WWW) and raw for "
                   "clip.dissect (CLIP-Dissect), so a file written before the roles changed lacks "
                   "a new role's matrices")
    return Similarity(**_load_npz(path, fmt, parts, mmap=mmap))


# ============================================================================ Grad-CAM

class GradCams(TypedDict):
    """The Grad-CAM artifact: ``image_id [N]``, ``cams`` float32 ``[N, h, w]`` at the
    layer's resolution, ``predicted`` int64 ``[N]`` (the class each CAM explains)."""

    image_id: np.ndarray
    cams: np.ndarray
    predicted: np.ndarray


GRAD_CAMS = _NpzFormat("Grad-CAM", "grad_cam", {
    "image_id": _Array("id", ("N",)), "cams": _Array("float32", ("N", "h", "w")),
    "predicted": _Array("int64", ("N",))})


def save_cams(path: PathLike, image_ids: Sequence, cams: np.ndarray, predicted: np.ndarray) -> None:
    """Write the ``grad_cam`` artifact: ``image_id [N]``, ``cams`` float32 ``[N, h, w]``,
    ``predicted`` int64 ``[N]`` (atomic, byte-reproducible)."""
    ids = _ids(list(image_ids)) if len(image_ids) else np.zeros(0, str)  # an empty shard's
    if not len(ids) == len(cams) == len(predicted):
        raise ValueError(f"{len(ids)} image ids, {len(cams)} CAMs and {len(predicted)} predictions")
    _save_npz(path, GRAD_CAMS, {"image_id": ids, "cams": np.asarray(cams, dtype=np.float32),
                                "predicted": np.asarray(predicted, dtype=np.int64)})


def load_cams(path: PathLike) -> GradCams:
    """Read a ``grad_cam`` artifact written by :func:`save_cams`."""
    return GradCams(**_load_npz(path, GRAD_CAMS))


BOXES = _TableFormat("crop boxes", "crop_boxes", {
    "image_id": "id", "x0": "int", "y0": "int", "x1": "int", "y1": "int", "cam_zero": "bool",
    "predicted": "int"})


def save_boxes(path: PathLike, boxes: pd.DataFrame) -> None:
    """Write the crop boxes of one crop fraction (:func:`neuron_concepts.gradcam.boxes_for_manifest`)."""
    _save_table(path, BOXES, boxes)


def load_boxes(path: PathLike) -> pd.DataFrame:
    """Read crop boxes: one per manifest image, original pixels, x1/y1 exclusive."""
    return _load_table(path, BOXES)


# ============================================================================ descriptions

#: The descriptions artifact's columns and their dtypes, for every method (WWW,
#: CLIP-Dissect): the one place they are defined (:func:`description_table`).
DESCRIPTION_DTYPES = {"neuron": "int64", "rank": "int64", "concept_id": "int64",
                      "concept": "string", "score": "float32", "selected": "bool",
                      "fallback": "bool"}
DESCRIPTIONS = _TableFormat("descriptions", "www_descriptions or clip_dissect_descriptions", {
    "neuron": "int", "rank": "int", "concept_id": "int", "concept": "str", "score": "float",
    "selected": "bool", "fallback": "bool"})


def description_table(rows: Iterable[tuple]) -> pd.DataFrame:
    """A descriptions table from ``(neuron, rank, concept_id, concept, score, selected,
    fallback)`` tuples, in :data:`DESCRIPTION_DTYPES`: what every method writes."""
    table = pd.DataFrame(list(rows), columns=list(DESCRIPTION_DTYPES))
    return table.astype(DESCRIPTION_DTYPES)


def save_descriptions(path: PathLike, table: pd.DataFrame) -> None:
    """Write a layer's descriptions (:func:`description_table`)."""
    _save_table(path, DESCRIPTIONS, table)


def load_descriptions(path: PathLike) -> pd.DataFrame:
    """Read a layer's descriptions: per neuron its best concepts by rank, the selected ones flagged."""
    return _load_table(path, DESCRIPTIONS)


# ============================================================================ evaluation

EVALUATION = _TableFormat("per-neuron evaluation", "evaluate_descriptions", {
    "neuron": "int", "predictions": "str", "top1": "str",
    **{metric: "number" for metric in (
        "www_hit", "www_f1", "www_clip_cos", "www_mpnet_cos", "cd_clip_cos", "cd_mpnet_cos",
        "cd_top1_acc", "cd_top5_acc", "cd_top1_synonym_acc", "cd_top5_synonym_acc")}},
    nonempty=True)


def save_evaluation(path: PathLike, table: pd.DataFrame) -> None:
    """Write per-neuron metrics (:func:`neuron_concepts.evaluation.evaluate_final_layer`)."""
    _save_table(path, EVALUATION, table)


def load_evaluation(path: PathLike) -> pd.DataFrame:
    """Read per-neuron metrics, fractions 0..1 (NaN where a metric does not apply)."""
    return _load_table(path, EVALUATION)


# Summary tables: CSV for programs and Markdown for people, labels first, metrics x100.
CONCEPT_DISCOVERY_TABLE = _TableFormat("concept-discovery table", "concept_discovery_table", {
    "probe": "any", "method": "any", "concepts": "any", "style": "any", "n_neurons": "int",
    "clip_cos": "number", "mpnet_cos": "number"})
ABLATION_TABLE = _TableFormat("ablation table", "ablation_table", {
    "probe": "any", "concepts": "any", "gradcam": "bool", "tvmf": "bool", "clip_cos": "number",
    "mpnet_cos": "number", "f1": "number", "hit_rate": "number", "n_neurons": "int"})
STABILITY_TABLE = _TableFormat("stability table", "stability_table", {
    "layer": "any", "concepts": "any", "sim": "any", "k_from": "int", "k_to": "int",
    "stability_pct": "number", "top1_agreement_pct": "number", "mean_jaccard": "number",
    "n_neurons": "int"})
OOD_TABLE = _TableFormat("ConVis OOD table", "convis_ood", {
    "positive": "any", "negative": "any", "method": "any", "n_in": "int", "n_out": "int",
    "auroc": "number"})
WSOL_TABLE = _TableFormat("ConVis WSOL table", "convis_wsol", {
    "synset": "any", "n_images": "int", "max_box_acc": "number", "threshold": "number"})


def save_summary_table(csv_path: PathLike, table: pd.DataFrame, md_path: PathLike,
                       markdown: str) -> None:
    """Write a summary table as CSV (no index) and its Markdown rendering beside it
    (e.g. :func:`neuron_concepts.evaluation.table_markdown`)."""
    write_text(csv_path, table.to_csv(index=False))
    write_text(md_path, markdown)


def load_concept_discovery_table(path: PathLike) -> pd.DataFrame:
    """Read ``tables/concept_discovery.csv``: one row per (style, method, probe set, concept set)."""
    return _load_table(path, CONCEPT_DISCOVERY_TABLE, pd.read_csv)


def load_ablation_table(path: PathLike) -> pd.DataFrame:
    """Read ``tables/ablation.csv``: Grad-CAM yes/no x t-vMF yes/no per probe and concept set."""
    return _load_table(path, ABLATION_TABLE, pd.read_csv)


def load_stability_table(path: PathLike) -> pd.DataFrame:
    """Read ``tables/stability.csv``: one row per group and k other than the base k."""
    return _load_table(path, STABILITY_TABLE, pd.read_csv)


def load_ood_table(path: PathLike) -> pd.DataFrame:
    """Read ``tables/convis_ood.csv``: AUROC per OOD pair and method."""
    return _load_table(path, OOD_TABLE, pd.read_csv)


def load_wsol_table(path: PathLike) -> pd.DataFrame:
    """Read ``tables/convis_wsol.csv``: MaxBoxAcc of one synset's maps."""
    return _load_table(path, WSOL_TABLE, pd.read_csv)


# ============================================================================ ConVis

VOCABULARY = _TableFormat("ConVis vocabulary", "convis_vocabulary", {
    "synset": "str", "lemma": "str", "definition": "str", "parents": "list", "depth": "int",
    "seed": "bool"}, nonempty=True)
TOP_SYNSETS = _TableFormat("ConVis top synsets", "convis_top_synsets", {
    "index": "int", "synset": "str", "lemma": "str", "definition": "str", "score": "float"})


def save_vocabulary(path: PathLike, vocab: pd.DataFrame) -> None:
    """Write a ConVis vocabulary (:func:`neuron_concepts.convis_vocabulary.build_vocabulary`)."""
    _save_table(path, VOCABULARY, vocab)


def load_vocabulary(path: PathLike) -> pd.DataFrame:
    """Read a ConVis vocabulary: one synset per row, the row index is the synset's index."""
    return _load_table(path, VOCABULARY)


def save_top_synsets(path: PathLike, top: pd.DataFrame) -> None:
    """Write an image's best synsets (:func:`neuron_concepts.convis_vocabulary.top_synsets`)."""
    _save_table(path, TOP_SYNSETS, top)


def load_top_synsets(path: PathLike) -> pd.DataFrame:
    """Read an image's best synsets, best first."""
    return _load_table(path, TOP_SYNSETS)


# Volumes written before source_shape, resize and padding were stored read as
# RankVolume.from_arrays reads them.
RANK_VOLUME = _NpzFormat("ConVis rank volume", "convis_rank_volume", {
    "rank_counts": _Array("unsigned", ("L", "S")), "boxes": _Array("integer", ("L", "K", 4)),
    "shape": _Array("integer", (2,)), "location_emb": _Array("float16", ("L", "D")),
    "source_shape": _Array("integer", (2,)), "resize": _Array("integer"),
    "padding": _Array("str"), "synsets": _Array("str", ("S",))},
    optional=frozenset({"source_shape", "resize", "padding", "synsets"}))


def save_rank_volume(path: PathLike, volume: RankVolume, synsets: Sequence[str] | np.ndarray) -> None:
    """Write an image's :class:`~neuron_concepts.convis_grid.RankVolume` and the vocabulary
    ``synsets [S]`` (names) its columns rank."""
    _save_npz(path, RANK_VOLUME, {**volume.to_arrays(), "synsets": _str_ids(synsets)})


def load_rank_volume(path: PathLike, vocab: pd.DataFrame | None = None) -> RankVolume:
    """Read an image's rank volume; with ``vocab`` (:func:`load_vocabulary`), check that
    it ranks exactly that vocabulary's synsets, in its order."""
    arrays = _load_npz(path, RANK_VOLUME)
    if vocab is not None:
        expected = vocab["synset"].to_numpy(dtype=str)
        n_ranked = arrays["rank_counts"].shape[1]
        if n_ranked != len(expected) or ("synsets" in arrays
                                         and not np.array_equal(arrays["synsets"], expected)):
            raise _bad(path, RANK_VOLUME.name, RANK_VOLUME.rule,
                       f"it ranks {n_ranked} synsets where the vocabulary has {len(expected)} "
                       "(or the same number in another order): it was made with another vocabulary")
    try:
        return RankVolume.from_arrays(arrays)
    except ValueError as error:  # e.g. an unknown padding name
        raise _bad(path, RANK_VOLUME.name, RANK_VOLUME.rule, str(error)) from error


@dataclass
class ConvisMap:
    """One synset's ConVis map on one image: ``saliency`` float32 ``[H, W]`` in [0, 1),
    the vocabulary rows ``members`` it maximises over, the ``synset`` name, and
    ``resize``: the side of the centre crop the map covers (None: the whole image)."""

    saliency: np.ndarray
    members: np.ndarray
    synset: str
    resize: int | None = None


CONVIS_MAP = _NpzFormat("ConVis map", "convis_saliency", {
    "saliency": _Array("float32", ("H", "W")), "members": _Array("int64", ("M",)),
    "synset": _Array("str"), "resize": _Array("integer")})


def save_convis_map(path: PathLike, saliency: np.ndarray, members: np.ndarray, synset: str,
                    resize: int | None = None) -> None:
    """Write one synset's map (resize None is stored as 0)."""
    _save_npz(path, CONVIS_MAP, {
        "saliency": np.asarray(saliency, dtype=np.float32), "members": np.asarray(members, dtype=np.int64),
        "synset": np.asarray(synset, dtype=str), "resize": np.asarray(resize or 0, dtype=np.int64)})


def load_convis_map(path: PathLike) -> ConvisMap:
    """Read one synset's map."""
    arrays = _load_npz(path, CONVIS_MAP)
    return ConvisMap(saliency=arrays["saliency"], members=arrays["members"],
                     synset=str(arrays["synset"]), resize=int(arrays["resize"]) or None)


# ============================================================================ weights

WEIGHTS_MARKER_KEYS = ("spec", "path", "sha256")


def save_weights_marker(path: PathLike, spec: Mapping[str, Any], weights: PathLike | None,
                        sha256: str | None) -> None:
    """Write a download marker: the model ``spec``, where its ``weights`` are (None: built
    in, e.g. random) and the file's hash (None for a folder or no file)."""
    record = {"spec": dict(spec), "path": str(weights) if weights else None, "sha256": sha256}
    write_text(path, json.dumps(record, indent=2, default=str))


def load_weights_marker(path: PathLike) -> dict[str, Any]:
    """Read a download marker: a dict with ``spec``, ``path`` and ``sha256``."""
    rule = "download_weights"
    try:
        record = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise
    except (OSError, ValueError) as error:
        raise _bad(path, "weights marker", rule, f"it cannot be read as JSON ({error})") from error
    missing = [k for k in WEIGHTS_MARKER_KEYS if not isinstance(record, dict) or k not in record]
    if missing:
        raise _bad(path, "weights marker", rule, f"it lacks {missing}; expected keys {list(WEIGHTS_MARKER_KEYS)}")
    return record
