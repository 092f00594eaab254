"""WordNet 3.0 through NLTK, installed from Debian's packages when NLTK cannot download it.

``nltk.download`` needs a server that may be unreachable. Debian's ``wordnet-base`` and
``wordnet-sense-index`` put the same database in ``/usr/share/wordnet``; NLTK reads it
once the files sit in ``<nltk_data>/corpora/wordnet/`` beside a ``lexnames`` file.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

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


if __name__ == "__main__":
    ensure_wordnet()
    from nltk.corpus import wordnet as wn

    print(f"WordNet {wn.get_version()}: {sum(1 for _ in wn.all_synsets('n'))} noun synsets")
