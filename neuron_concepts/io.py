"""Reading and writing artifacts: npz arrays and Parquet tables, written atomically.

Every writer goes through a temporary file in the target folder and an atomic rename,
so a job killed mid-write never leaves a file that looks complete.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd

from .errors import InputDataError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes owner-only files; artifacts are shared
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_npz(path: str | os.PathLike, **arrays: np.ndarray) -> None:
    """Write arrays to an uncompressed npz, atomically and byte-reproducibly.

    ``np.savez`` stamps zip entries with a fixed date, so equal arrays give equal bytes.
    """
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **{k: np.asarray(v) for k, v in arrays.items()})


def read_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read every array of an npz file into a dict."""
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def write_parquet(path: str | os.PathLike, table: pd.DataFrame) -> None:
    """Write a DataFrame to Parquet (pyarrow, no index), atomically."""
    with atomic_path(path) as tmp:
        table.to_parquet(tmp, engine="pyarrow", index=False)


def read_parquet(path: str | os.PathLike) -> pd.DataFrame:
    """Read a Parquet table written by :func:`write_parquet`."""
    return pd.read_parquet(path, engine="pyarrow")


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write a text file atomically."""
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text)


def write_embeddings(path: str | os.PathLike, embeddings: np.ndarray, ids: np.ndarray | list,
                     **extra: np.ndarray) -> None:
    """Write normalised embeddings as float16 ``emb`` with their row ``ids`` and extras."""
    write_npz(path, emb=np.asarray(embeddings, dtype=np.float16), ids=np.asarray(ids), **extra)


def read_embeddings(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read an embeddings npz; ``emb`` comes back as float32."""
    data = read_npz(path)
    data["emb"] = data["emb"].astype(np.float32)
    return data


def read_concepts(path: str | os.PathLike) -> pd.DataFrame:
    """Read a concept-set artifact (concept_id, text, synset)."""
    table = read_parquet(path)
    if table.empty:
        raise InputDataError(f"concept set {path} is empty: check the concept source it was built from")
    return table
