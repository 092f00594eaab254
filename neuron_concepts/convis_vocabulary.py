"""ConVis vocabularies: the WordNet noun synsets a map can be drawn for, and lookups in them.

A vocabulary ``T`` is every noun synset on every hypernym path of some words' senses, one
row per synset (:func:`build_vocabulary`); a synset's map maximises over its own row and its
hyponyms' rows (:func:`hyponym_members`); :func:`top_synsets` names the synsets an image
ranks highest. Numpy, pandas and NLTK only: the vocabulary, map and top-synset jobs never
load torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from . import lazy, wordnet
from .data import imagenet_wnids
from .errors import InputDataError

if TYPE_CHECKING:
    import torch


def resolve_synsets(words: Sequence[str]) -> list:
    """NLTK noun synsets named by ``words``, in order, without repeats.

    Each entry is a synset name (``dog.n.01``: that synset only), an ImageNet id
    (``n02084071``: its synset) or a plain word (``dog``, ``hot dog``: all its noun senses),
    as :func:`neuron_concepts.wordnet.noun_senses` reads it. Raises
    :class:`InputDataError` listing every entry that names no noun synset.
    """
    found, unknown = [], []
    for word in words:
        senses = wordnet.noun_senses(word)
        if not senses:
            unknown.append(str(word).strip())
        found.extend(senses)
    if unknown:
        raise InputDataError(
            f"{len(unknown)} ConVis vocabulary entries name no WordNet noun synset: "
            f"{', '.join(map(repr, unknown[:20]))}{' ...' if len(unknown) > 20 else ''}. "
            "Use nouns, synset names like 'dog.n.01' or ImageNet ids like 'n02084071'.")
    return list(dict.fromkeys(found))


def build_vocabulary(words: Sequence[str] | None = None) -> pd.DataFrame:
    """The ConVis vocabulary: every noun synset on every hypernym path of ``words``' senses
    (instance senses left out, as the official code leaves them).

    ``words`` as in :func:`resolve_synsets`; default: the 1,000 ImageNet classes (1,860
    synsets). Columns: ``synset`` (name), ``lemma`` (first lemma, spaces for underscores),
    ``definition`` (the text CLIP embeds), ``parents`` (hypernym names, all inside the
    vocabulary since it is closed upwards), ``depth`` (shortest path to ``entity.n.01``),
    ``seed`` (whether ``words`` named the synset itself). Rows sorted by synset name, so
    the row index is a stable synset index.
    """
    # Instance senses (paris.n.01, nile.n.01) are left out, as the official graph leaves
    # them: it climbs .hypernyms() only, and they have instance hypernyms alone.
    seeds = [s for s in resolve_synsets(imagenet_wnids() if words is None else words)
             if not s.instance_hypernyms()]
    seed_set = set(seeds)
    rows = sorted(wordnet.hypernym_closure(seeds), key=lambda s: s.name())
    return pd.DataFrame({
        "synset": [s.name() for s in rows],
        "lemma": [s.lemma_names()[0].replace("_", " ") for s in rows],
        "definition": [s.definition() for s in rows],
        "parents": [sorted(p.name() for p in wordnet.hypernyms(s)) for s in rows],
        "depth": np.array([s.min_depth() for s in rows], dtype=np.int64),
        "seed": np.array([s in seed_set for s in rows]),
    })


def synset_index(vocab: pd.DataFrame, synset: str) -> int:
    """Row of ``synset`` (a name) in ``vocab``; a clear error when it is not there."""
    hits = np.flatnonzero(vocab["synset"].to_numpy() == synset)
    if len(hits) == 0:
        raise InputDataError(
            f"synset {synset!r} is not in the ConVis vocabulary ({len(vocab)} synsets): "
            "add a word under it to the vocabulary words")
    return int(hits[0])


def hyponym_members(vocab: pd.DataFrame, synset: str) -> np.ndarray:
    """Sorted vocabulary rows of ``synset`` and all its hyponyms (transitively) in ``vocab``.

    Follows the ``parents`` column downwards, so it sees exactly the hyponyms that made it
    into the vocabulary: the set ``max_rank_sim`` maximises over.
    """
    root = synset_index(vocab, synset)
    index = {name: i for i, name in enumerate(vocab["synset"])}
    children: list[list[int]] = [[] for _ in range(len(vocab))]
    for child, parents in enumerate(vocab["parents"]):
        for parent in parents:
            if parent in index:
                children[index[parent]].append(child)
    members, stack = {root}, [root]
    while stack:
        for child in children[stack.pop()]:
            if child not in members:
                members.add(child)
                stack.append(child)
    return np.array(sorted(members), dtype=np.int64)


def _as_ranks(ranks: ArrayLike | torch.Tensor) -> np.ndarray:
    """Ranks in [0, 1) as float64 from float ranks or integer rank counts ``[..., S]``."""
    ranks = ranks.cpu().numpy() if lazy.is_tensor(ranks) else np.asarray(ranks)
    if np.issubdtype(ranks.dtype, np.integer):
        return ranks.astype(np.float64) / ranks.shape[-1]
    return ranks.astype(np.float64)


def top_synsets(ranks: ArrayLike | torch.Tensor, vocab: pd.DataFrame, n: int = 10,
                locations: ArrayLike | None = None) -> pd.DataFrame:
    """The ``n`` synsets an image scores highest on, by their own ``rank_sim``.

    ``ranks``: ``[S]`` of one image embedding, or ``[L, S]`` of its patch locations (then
    a synset's score is its best location: it is visible somewhere in the image). Integer
    rank counts are accepted. ``locations``: a bool ``[L]`` mask of the locations to
    consider (e.g. :meth:`neuron_concepts.convis_grid.RankVolume.inside`, so on a ``noise`` grid patches half made of
    padding do not name the image; on the default grid every location is inside); all when
    None or when it selects none. The synset's own rank is used, not ``max_rank_sim``, which
    is largest at the root of the hierarchy for every image. Ties keep vocabulary order.
    """
    scores = _as_ranks(ranks)
    if scores.ndim == 2:
        if locations is not None and np.asarray(locations, dtype=bool).any():
            scores = scores[np.asarray(locations, dtype=bool)]
        scores = scores.max(axis=0)
    if len(scores) != len(vocab):
        raise ValueError(f"ranks cover {len(scores)} synsets but the vocabulary has {len(vocab)}")
    order = np.argsort(-scores, kind="stable")[:n]
    table = vocab.iloc[order][["synset", "lemma", "definition"]].reset_index(drop=True)
    table.insert(0, "index", order)
    table["score"] = scores[order]
    return table
