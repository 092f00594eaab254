"""WordNet 3.0 through NLTK: the one place the package opens it and walks its hierarchy.

Installation: ``nltk.download`` needs a server that may be unreachable. Debian's
``wordnet-base`` and ``wordnet-sense-index`` put the same database in ``/usr/share/wordnet``;
NLTK reads it once the files sit in ``<nltk_data>/corpora/wordnet/`` beside a ``lexnames``
file (:func:`ensure_wordnet`).

Use: :func:`open_wordnet` (installed on first use), ImageNet ids as synsets
(:func:`synset_of_wnid`), what a user's word names (:func:`noun_senses`) and the hypernym
hierarchy (:func:`hypernyms`, :func:`hypernym_closure`, :func:`self_and_hypernym_names`).
Hypernyms always include instance hypernyms, as NLTK's ``hypernym_paths()`` does, so every
module walks the same hierarchy. NLTK is imported inside the functions: importing this
module costs nothing.
"""

from __future__ import annotations

import functools
import shutil
import sys
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .errors import InputDataError

DEBIAN_WORDNET = Path("/usr/share/wordnet")

# The 45 lexicographer files of WordNet 3.0, numbered as in lexnames(5WN).
LEXNAMES = [
    ("adj.all", 3), ("adj.pert", 3), ("adv.all", 4), ("noun.Tops", 1), ("noun.act", 1),
    ("noun.animal", 1), ("noun.artifact", 1), ("noun.attribute", 1), ("noun.body", 1),
    ("noun.cognition", 1), ("noun.communication", 1), ("noun.event", 1), ("noun.feeling", 1),
    ("noun.food", 1), ("noun.group", 1), ("noun.location", 1), ("noun.motive", 1),
    ("noun.object", 1), ("noun.person", 1), ("noun.phenomenon", 1), ("noun.plant", 1),
    ("noun.possession", 1), ("noun.process", 1), ("noun.quantity", 1), ("noun.relation", 1),
    ("noun.shape", 1), ("noun.state", 1), ("noun.substance", 1), ("noun.time", 1),
    ("verb.body", 2), ("verb.change", 2), ("verb.cognition", 2), ("verb.communication", 2),
    ("verb.competition", 2), ("verb.consumption", 2), ("verb.contact", 2), ("verb.creation", 2),
    ("verb.emotion", 2), ("verb.motion", 2), ("verb.perception", 2), ("verb.possession", 2),
    ("verb.social", 2), ("verb.stative", 2), ("verb.weather", 2), ("adj.ppl", 3),
]

WORDNET_FILES = [
    "adj.exc", "adv.exc", "noun.exc", "verb.exc", "cntlist.rev", "data.adj", "data.adv",
    "data.noun", "data.verb", "index.adj", "index.adv", "index.noun", "index.verb",
    "index.sense",
]


def default_nltk_data() -> Path:
    """The ``nltk_data`` folder inside the running Python environment (NLTK searches it)."""
    return Path(sys.prefix) / "nltk_data"


def wordnet_available() -> bool:
    """Whether NLTK can open WordNet now."""
    try:
        from nltk.corpus import wordnet as wn

        wn.ensure_loaded()
        return True
    except LookupError:
        return False


def install_from_debian(nltk_data: str | Path | None = None,
                        source: str | Path = DEBIAN_WORDNET) -> Path:
    """Copy Debian's WordNet database to ``<nltk_data>/corpora/wordnet`` with a lexnames file."""
    source = Path(source)
    missing = [name for name in WORDNET_FILES if not (source / name).exists()]
    if missing:
        raise InputDataError(
            f"WordNet is not available to NLTK and {source} lacks {', '.join(missing)}. "
            "Install it with `apt-get install wordnet-base wordnet-sense-index` "
            "(or `python -m nltk.downloader wordnet` where the NLTK server is reachable).")
    target = Path(nltk_data or default_nltk_data()) / "corpora" / "wordnet"
    target.mkdir(parents=True, exist_ok=True)
    for name in WORDNET_FILES:
        shutil.copyfile(source / name, target / name)
    (target / "lexnames").write_text(
        "".join(f"{i:02d}\t{name}\t{pos}\n" for i, (name, pos) in enumerate(LEXNAMES)))
    return target


def ensure_wordnet(nltk_data: str | Path | None = None) -> None:
    """Make WordNet 3.0 loadable by NLTK: already there, downloaded, or from Debian's files."""
    if wordnet_available():
        return
    if DEBIAN_WORDNET.exists():
        install_from_debian(nltk_data)
    else:
        import nltk

        nltk.download("wordnet", download_dir=str(nltk_data or default_nltk_data()), quiet=True)
    if not wordnet_available():
        raise InputDataError(
            "WordNet could not be installed for NLTK. Install Debian's wordnet-base and "
            "wordnet-sense-index, or run `python -m nltk.downloader wordnet`.")


@functools.lru_cache(maxsize=1)
def open_wordnet() -> Any:
    """NLTK's WordNet corpus reader (``nltk.corpus.wordnet``), installed first if needed.

    Cached: once WordNet loads, later calls (one per ImageNet class in some loops) skip the
    availability check. A failure raises and is not cached.
    """
    ensure_wordnet()
    from nltk.corpus import wordnet as wn

    return wn


def is_wnid(text: str) -> bool:
    """Whether ``text`` looks like an ImageNet/WordNet noun id (``n02084071``)."""
    return len(text) == 9 and text[0] == "n" and text[1:].isdigit()


def synset_of_wnid(wnid: str) -> Any:
    """The WordNet 3.0 noun synset of an ImageNet id ``n<8-digit offset>``.

    An id at no synset's offset is an :class:`InputDataError` (NLTK only warns and gives None).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # NLTK's "No WordNet synset found": raised below
        synset = open_wordnet().synset_from_pos_and_offset("n", int(wnid[1:]))
    if synset is None:
        raise InputDataError(f"{wnid} names no WordNet 3.0 noun synset: an ImageNet id is 'n' "
                             "and the 8-digit offset of a noun synset")
    return synset


def noun_senses(text: str) -> list:
    """The noun synsets ``text`` names; empty when it names none.

    A synset name (``dog.n.01``) names that synset only, an ImageNet id (``n02084071``) its
    synset, a plain word (``dog``, ``hot dog``) all its noun senses, most frequent first.
    """
    wn = open_wordnet()
    text = str(text).strip()
    try:
        if is_wnid(text):
            return [synset_of_wnid(text)]
        if text.count(".") >= 2 and text.rsplit(".", 2)[1] == "n":
            return [wn.synset(text)]
        return wn.synsets(text.replace(" ", "_"), pos=wn.NOUN)
    except Exception:  # nltk raises WordNetError / ValueError for unknown names and offsets
        return []


def noun_synsets() -> list:
    """Every WordNet 3.0 noun synset, in ``wn.all_synsets("n")`` order (82,115)."""
    return list(open_wordnet().all_synsets("n"))


def hypernyms(synset: Any) -> list:
    """The direct hypernyms of ``synset``, instance hypernyms included."""
    # Instance hypernyms count as hypernyms: NLTK's hypernym_paths() follows both.
    return synset.hypernyms() + synset.instance_hypernyms()


def hypernym_closure(synsets: Iterable[Any]) -> set:
    """``synsets`` and every synset on a hypernym path above them (closed upwards)."""
    closed = set(synsets)
    stack = list(closed)
    while stack:
        for parent in hypernyms(stack.pop()):
            if parent not in closed:
                closed.add(parent)
                stack.append(parent)
    return closed


@functools.lru_cache(maxsize=None)
def self_and_hypernym_names(wnid: str) -> frozenset[str]:
    """Names of an ImageNet class's synset and all its (instance) hypernyms, cached across calls."""
    return frozenset(s.name() for s in hypernym_closure([synset_of_wnid(wnid)]))


if __name__ == "__main__":
    wn = open_wordnet()
    print(f"WordNet {wn.get_version()}: {sum(1 for _ in wn.all_synsets('n'))} noun synsets")
