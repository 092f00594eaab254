"""Our ImageNet label lines and concept sets against the official files and constructions.

The official label file is not vendored: it is recorded here by its SHA-256, its length and
the SHA-256 of each block of 100 lines (so a failure names the block), computed from:

- github.com/Trustworthy-ML-Lab/CLIP-dissect ``data/imagenet_labels.txt`` (added in c1565e1,
  "initial code release", unchanged at 21e7697), and
- github.com/ailab-kyunghee/WWW ``utils/imagenet_labels.txt`` (added in 55b3a32,
  "Camera-ready", unchanged at c43715b),

byte-identical: 1,000 lines, 999 newlines (no newline after the last line), ASCII, no
leading, trailing or doubled spaces. Lines the library has to get right on its own (timm's
list names both cranes "crane"): line 135 "crane, bird" and line 518 "crane, machine";
lines 639 "maillot" and 640 "maillot, tank suit" (two classes sharing a word).

Constructions ported (our own code, no code shared with ``neuron_concepts.concepts`` /
``data`` / ``wordnet``):

- CLIP-Dissect ``utils.py`` lines 132-135 (``save_activations``; describe_neurons.py lines
  49-50 and the Table-3 notebook, cell 9, read the same way): ``f.read().split('\\n')``,
  empty strings dropped; concept ``c`` is line ``c``.
- WWW ``concept_matching.py`` lines 229-240 (``data == 1``): each line split on ``", "``,
  every word kept in order (duplicates too); lines 241-249 (``data == 80``): for each
  ``synset`` of ``wn.all_synsets('n')``, ``synset.lemma_names()[0].replace('_', ' ')``.
  The concept texts are the template-free ``all_words_wotem`` (line 238 / 246).

Our concept sets strip texts and collapse inner whitespace (``normalise_concepts``); no
official text has any such whitespace, so the texts are compared exactly.
"""

from __future__ import annotations

import hashlib

import pytest

from neuron_concepts import concepts, data

OFFICIAL_LABELS_SHA256 = "8b243a5b56f530010b42d64d8ef33c2660224447aded823f4d9de2cb1902a70e"
OFFICIAL_LABELS_LINES = 1000
# sha256("\n".join(lines[100 b : 100 (b + 1)]))[:16] for b = 0..9.
OFFICIAL_LABELS_BLOCKS = [
    "7ea27ac787df7031", "1612e10c35830fc1", "bd07c2a32a60c55e", "ee2d91b01db29f96",
    "3633f9905e3d1269", "0ba1e5585f19c134", "2ad24a3a2de1cbdd", "8827c70dc65fac47",
    "73871ca6b4807d33", "750fb8e9edbc1d37",
]
# 1-based line numbers of the official file.
OFFICIAL_LABELS_SOME_LINES = {
    1: "tench, Tinca tinca",
    135: "crane, bird",
    518: "crane, machine",
    639: "maillot",
    640: "maillot, tank suit",
    1000: "toilet tissue, toilet paper, bathroom tissue",
}
WORDNET_NOUN_SYNSETS = 82115  # WordNet 3.0; 67,893 distinct first lemmas


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def official_file_text() -> str:
    """Our label lines written as the official file is: joined by newlines, none at the end
    (checked against the recorded SHA-256 below)."""
    return "\n".join(data.imagenet_label_lines())


def clip_dissect_words(file_text: str) -> list[str]:
    """``utils.py`` lines 132-135: the file split on newlines, empty strings dropped."""
    return [word for word in file_text.split("\n") if word != ""]


def www_imagenet_words(file_text: str) -> list[str]:
    """``concept_matching.py`` lines 229-240 (``data == 1``, template-free words)."""
    words = []
    for line in file_text.split("\n"):
        for word in line.split(", "):
            words.append(word)
    return words


# ----------------------------------------------------------------- ImageNet label lines


def test_label_lines_are_the_official_file():
    lines = data.imagenet_label_lines()
    assert len(lines) == OFFICIAL_LABELS_LINES
    blocks = [sha256("\n".join(lines[100 * b:100 * (b + 1)]))[:16] for b in range(10)]
    assert blocks == OFFICIAL_LABELS_BLOCKS  # a mismatch names the block of 100 lines
    assert {n: lines[n - 1] for n in OFFICIAL_LABELS_SOME_LINES} == OFFICIAL_LABELS_SOME_LINES
    assert sha256(official_file_text()) == OFFICIAL_LABELS_SHA256


def test_imagenet_labels_concept_set_is_clip_dissects_reading_of_the_file():
    words = clip_dissect_words(official_file_text())
    table = concepts.concept_set({"type": "imagenet_labels"})
    assert list(table["text"]) == words
    assert list(table["concept_id"]) == list(range(len(words)))  # concept c is class c
    assert list(table["synset"]) == data.imagenet_wnids()


def test_imagenet_concepts_are_wwws_split_words():
    words = www_imagenet_words(official_file_text())
    table = concepts.concept_set({"type": "imagenet"})
    assert list(table["text"]) == words
    assert len(words) == 1862 and words.count("crane") == 2  # duplicates kept, as WWW does
    assert list(table["concept_id"]) == list(range(len(words)))


# ----------------------------------------------------------------- WordNet nouns


@pytest.fixture(scope="module")
def official_wordnet():
    """``from nltk.corpus import wordnet as wn``, as ``concept_matching.py`` line 6 opens it
    (NLTK's WordNet 3.0). ``ensure_wordnet`` only installs the database files when NLTK
    lacks them."""
    from neuron_concepts.wordnet import ensure_wordnet

    ensure_wordnet()
    from nltk.corpus import wordnet as wn

    assert wn.get_version() == "3.0"
    return wn


def test_wordnet_nouns_are_wwws_80k_construction(official_wordnet):
    wn = official_wordnet
    words, names = [], []
    for synset in wn.all_synsets("n"):  # concept_matching.py lines 242-249
        words.append(synset.lemma_names()[0].replace("_", " "))
        names.append(synset.name())
    assert len(words) == WORDNET_NOUN_SYNSETS and len(set(words)) == 67893
    table = concepts.concept_set({"type": "wordnet_nouns"})
    assert list(table["text"]) == words  # same texts, same order, duplicates kept
    assert list(table["synset"]) == names
    assert list(table["concept_id"]) == list(range(len(words)))
