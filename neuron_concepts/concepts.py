"""Concept sets: the words neurons are described with.

Types, as the reference implementations build them:

- ``imagenet``: every ", "-split word of the 1,000 official label lines, in class order,
  original case, duplicates kept (WWW's ``concept_matching.py``, ``data == 1``).
- ``imagenet_labels``: the 1,000 whole label lines, ``concept_id`` = class index
  (CLIP-Dissect's ``data/imagenet_labels.txt``).
- ``wordnet_nouns``: the first lemma of every WordNet 3.0 noun synset, underscores to
  spaces, duplicates kept: 82,115 rows, 67,893 distinct (WWW, ``data == 80``).
- ``file``: one concept per line (e.g. Broden's labels), duplicates kept as in the file.

Every text is stripped with inner whitespace collapsed, and blank ones are dropped. The
option ``deduplicate: true`` (ours) keeps only the first occurrence of each text. Duplicates
matter: WWW selects each copy of a concept, and its F1 divides by the number of selected
entries. ``concept_id`` is always the row index.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import pandas as pd

from . import data, wordnet
from .errors import ConfigError, InputDataError

CONCEPT_COLUMNS = ["concept_id", "text", "synset"]
CONCEPT_SET_TYPES = ("imagenet", "imagenet_labels", "wordnet_nouns", "file")


def normalise_concepts(texts: Iterable[str], synsets: Iterable[str | None] | None = None,
                       source: str = "concept set", deduplicate: bool = False) -> pd.DataFrame:
    """Strip each text and collapse inner whitespace, drop blank ones, keep the order.

    With ``deduplicate`` only the first occurrence of each text stays (exact, case-sensitive
    match). ``source`` names the set in errors.
    """
    texts = list(texts)
    synsets = list(synsets) if synsets is not None else [None] * len(texts)
    if len(synsets) != len(texts):
        raise ValueError(f"{source}: {len(texts)} texts but {len(synsets)} synsets")
    seen: set[str] = set()
    rows = []
    for text, synset in zip(texts, synsets):
        text = " ".join(str(text).split())  # strip, and collapse inner runs of whitespace
        if not text or (deduplicate and text in seen):
            continue
        seen.add(text)
        rows.append((text, synset))
    if not rows:
        raise InputDataError(f"{source} holds no concept after removing blank lines: "
                             "give one concept per line")
    table = pd.DataFrame(rows, columns=["text", "synset"])
    table.insert(0, "concept_id", range(len(table)))
    table["concept_id"] = table["concept_id"].astype("int64")
    table["text"] = table["text"].astype("string")
    table["synset"] = table["synset"].astype("string")
    return table


def imagenet_class_synonyms() -> list[list[str]]:
    """The synonyms of each ImageNet class in class order: its label split on ", ", lower-cased.

    This is the ground truth of WWW's metric (``utils/metric_utils.py``, ``load_files``).
    """
    return [[s.lower() for s in line.split(", ")] for line in data.imagenet_label_lines()]


def imagenet_concepts(deduplicate: bool = False) -> pd.DataFrame:
    """Every ", "-split word of the official label lines, class order, original case, tagged with the wnid.

    Duplicates (e.g. "crane" of classes 134 and 517) stay unless ``deduplicate``.
    """
    texts, synsets = [], []
    for wnid, line in zip(data.imagenet_wnids(), data.imagenet_label_lines()):
        words = line.split(", ")
        texts += words
        synsets += [wnid] * len(words)
    return normalise_concepts(texts, synsets, source="ImageNet labels", deduplicate=deduplicate)


def imagenet_label_concepts() -> pd.DataFrame:
    """The 1,000 whole official label lines as concepts: ``concept_id`` is the class index.

    CLIP-Dissect's concept set ``data/imagenet_labels.txt``; its final-layer accuracy counts
    a neuron as a hit when its own class index is among its best concepts.
    """
    table = normalise_concepts(data.imagenet_label_lines(), data.imagenet_wnids(), source="ImageNet label lines")
    if len(table) != 1000 or not table["text"].is_unique:
        raise InputDataError("the ImageNet label lines are not 1,000 distinct lines: "
                             "check timm's imagenet_synset_to_lemma.txt")
    return table


def wordnet_noun_concepts(deduplicate: bool = False) -> pd.DataFrame:
    """First lemma of each WordNet 3.0 noun synset, underscores to spaces, tagged with the synset.

    In ``wn.all_synsets("n")`` order: 82,115 rows, 67,893 distinct texts with ``deduplicate``.
    """
    synsets = wordnet.noun_synsets()
    texts = [s.lemma_names()[0].replace("_", " ") for s in synsets]
    return normalise_concepts(texts, [s.name() for s in synsets], source="WordNet nouns",
                              deduplicate=deduplicate)


def file_concepts(path: str | Path, deduplicate: bool = False) -> pd.DataFrame:
    """One concept per line of a UTF-8 text file, in file order (duplicates kept unless ``deduplicate``)."""
    path = Path(path)
    if not path.is_file():
        raise InputDataError(f"concept file {path} does not exist")
    return normalise_concepts(read_utf8_lines(path), source=f"concept file {path}",
                              deduplicate=deduplicate)


def read_utf8_lines(path: Path) -> list[str]:
    """The lines of a UTF-8 text file, a leading byte-order mark dropped (Windows editors
    write one; it would otherwise stick to the first concept). Another encoding stops with
    the line and byte at fault and the command that converts the file."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw[:error.start].count(b"\n") + 1
        raise InputDataError(
            f"concept file {path} is not UTF-8: byte 0x{raw[error.start]:02x} on line {line} "
            f"({raw.splitlines()[line - 1][:60]!r}); save it as UTF-8, e.g. `iconv -f latin1 "
            f"-t utf-8 {path} > {path.with_suffix('.utf8' + path.suffix)}` and point the "
            "concept set's path at the new file") from None
    return text.splitlines()


def concept_set(spec: dict) -> pd.DataFrame:
    """A concept set from its config entry (``type``, ``path`` for files, ``deduplicate``)."""
    kind = spec.get("type")
    deduplicate = bool(spec.get("deduplicate", False))
    if kind == "imagenet":
        return imagenet_concepts(deduplicate)
    if kind == "imagenet_labels":
        return imagenet_label_concepts()  # 1,000 distinct lines: deduplicate changes nothing
    if kind == "wordnet_nouns":
        return wordnet_noun_concepts(deduplicate)
    if kind == "file":
        if "path" not in spec:
            raise ConfigError("concept_sets: a set of type file needs a path (one concept per line)")
        return file_concepts(spec["path"], deduplicate)
    raise ConfigError(f"concept_sets: unknown type {kind!r}; use one of {', '.join(CONCEPT_SET_TYPES)}")
