"""Concept sets: the words neurons are described with.

``imagenet`` (the 1,000 classes with their synonyms, in class order), ``wordnet_nouns``
(first lemma of every WordNet 3.0 noun synset) and ``file`` (one concept per line, e.g.
Broden's labels). Every set is normalised the same way: stripped, blank lines dropped,
de-duplicated keeping the first occurrence.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import pandas as pd

from .data import imagenet_lemmas, imagenet_wnids
from .errors import ConfigError, InputDataError

CONCEPT_COLUMNS = ["concept_id", "text", "synset"]


def normalise_concepts(texts: Iterable[str], synsets: Iterable[str | None] | None = None,
                       source: str = "concept set") -> pd.DataFrame:
    """Strip each text, drop blank ones and later duplicates; ``source`` names it in errors."""
    texts = list(texts)
    synsets = list(synsets) if synsets is not None else [None] * len(texts)
    seen: set[str] = set()
    rows = []
    for text, synset in zip(texts, synsets):
        text = " ".join(str(text).split())  # strip, and collapse inner runs of whitespace
        if text and text not in seen:
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
    """The synonyms of each ImageNet class in class order: its label split on ", ", lower-cased."""
    lemmas = imagenet_lemmas()
    return [[s.strip().lower() for s in lemmas[w].split(", ")] for w in imagenet_wnids()]


def imagenet_label_lines() -> list[str]:
    """Each ImageNet class's whole label line ("tabby, tabby cat"), in class order."""
    lemmas = imagenet_lemmas()
    return [lemmas[w] for w in imagenet_wnids()]


def imagenet_concepts() -> pd.DataFrame:
    """The ImageNet classes' synonyms as concepts, in class order, tagged with their wnid."""
    texts, synsets = [], []
    for wnid, synonyms in zip(imagenet_wnids(), imagenet_class_synonyms()):
        texts += synonyms
        synsets += [wnid] * len(synonyms)
    return normalise_concepts(texts, synsets, source="ImageNet labels")


def wordnet_noun_concepts() -> pd.DataFrame:
    """First lemma of each WordNet 3.0 noun synset, underscores to spaces, tagged with the synset."""
    from nltk.corpus import wordnet as wn

    from .wordnet import ensure_wordnet

    ensure_wordnet()
    synsets = list(wn.all_synsets("n"))
    texts = [s.lemma_names()[0].replace("_", " ") for s in synsets]
    return normalise_concepts(texts, [s.name() for s in synsets], source="WordNet nouns")


def file_concepts(path: str | Path) -> pd.DataFrame:
    """One concept per line of a UTF-8 text file."""
    path = Path(path)
    if not path.is_file():
        raise InputDataError(f"concept file {path} does not exist")
    return normalise_concepts(path.read_text(encoding="utf-8").splitlines(), source=f"concept file {path}")


def concept_set(spec: dict) -> pd.DataFrame:
    """A concept set from its config entry (``type``: imagenet, wordnet_nouns or file)."""
    kind = spec.get("type")
    if kind == "imagenet":
        return imagenet_concepts()
    if kind == "wordnet_nouns":
        return wordnet_noun_concepts()
    if kind == "file":
        return file_concepts(spec["path"])
    raise ConfigError(f"concept_sets: unknown type {kind!r}; use imagenet, wordnet_nouns or file")
