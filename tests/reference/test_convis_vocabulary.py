"""The ConVis vocabulary and hyponym sets against a re-derivation of the official hierarchy.

Reference: github.com/loris2222/Concept-Visualization at commit 14c7414. Written from reading
that code; nothing here calls the library's WordNet walks (``neuron_concepts.wordnet``), only
NLTK's reader (the library's ``open_wordnet`` is used to get it installed) and networkx.

How the official code builds the vocabulary (``T``) and a synset's subtree:

- ``language_utils.py`` ``ConceptModel.__init__`` (l. 15-30): the dictionary's words are kept
  when ``wn.synsets(word, pos=wn.NOUN)`` is not empty (``wordnet_utils.is_word_in_wordnet``,
  l. 100-105; the raw word: no space-to-underscore, so "creme brulee" names nothing), then
  ``create_graph_to(words, entity.n.01, filter=False, with_repeats=True)``.
- ``wordnet_utils.create_graph_to`` (l. 60-97): for every noun sense of every word, every
  hypernym path up to ``entity.n.01`` (``find_hypernym_paths``, l. 7-32, which climbs
  ``synset.hypernyms()`` only: an instance synset such as ``paris.n.01``, whose parents are
  *instance* hypernyms, has no path and is left out); an edge hypernym -> hyponym for every
  step of every path (l. 92-94); isolated nodes removed (l. 96).
- ``generate_heatmap.py`` l. 401-403: the vocabulary is every node under ``entity.n.01``
  (``get_subtree_set``), each embedded by its definition; l. 446-448: a concept's members
  (``leaves_idxs``) are ``get_subtree_set(hierarchy, synset)``: the synset and everything
  below it in the graph (``wordnet_utils.py`` l. 184-202, a walk along out-edges).

The library leaves instance senses out as well (``convis_vocabulary.build_vocabulary``), so the two
vocabularies are equal, words with instance senses included.
"""

from __future__ import annotations

import networkx as nx
import pytest

from neuron_concepts import convis_vocabulary, wordnet


@pytest.fixture(scope="module")
def wn():
    return wordnet.open_wordnet()


# ----------------------------------------------------------------------------- references

def official_paths_to_entity(synset, root) -> list[list]:
    """``find_hypernym_paths(synset, root, with_repeats=True)``: every path ``[synset, ...,
    root]`` that climbs ``.hypernyms()`` (never ``.instance_hypernyms()``)."""
    found = []

    def climb(path: list) -> None:
        for parent in path[-1].hypernyms():
            if parent == root:
                found.append(path + [parent])
            else:
                climb(path + [parent])

    climb([synset])
    return found


def official_hierarchy_of_senses(senses, wn) -> nx.DiGraph:
    """``create_graph_to`` for given noun senses: edges hypernym -> hyponym on every path."""
    root = wn.synsets("entity", pos=wn.NOUN)[0]
    graph = nx.DiGraph()
    for sense in senses:
        for path in official_paths_to_entity(sense, root):
            for lower, upper in zip(path[:-1], path[1:]):
                graph.add_edge(upper, lower)
    graph.remove_nodes_from(list(nx.isolates(graph)))
    return graph


def official_hierarchy(words, wn) -> nx.DiGraph:
    """``ConceptModel(..., filter_dict=True).wn_hierarchy`` of a word list."""
    kept = [w for w in words if wn.synsets(w, pos=wn.NOUN)]
    return official_hierarchy_of_senses([s for w in kept for s in wn.synsets(w, pos=wn.NOUN)], wn)


def official_vocabulary(graph: nx.DiGraph, wn) -> set[str]:
    """generate_heatmap.py l. 401-402: every node reachable from ``entity.n.01``."""
    root = wn.synsets("entity", pos=wn.NOUN)[0]
    return {s.name() for s in official_subtree(graph, root)}


def official_subtree(graph: nx.DiGraph, synset) -> set:
    """``get_subtree_set``: ``synset`` and every node below it, breadth first along out-edges."""
    seen, queue = [], [synset]
    while queue:
        node = queue.pop(0)
        if node in seen:
            continue
        seen.append(node)
        queue.extend(child for _, child in graph.out_edges(node))
    return set(seen)


def members_of(vocab, synset: str) -> set[str]:
    return {vocab["synset"].iloc[i] for i in convis_vocabulary.hyponym_members(vocab, synset)}


def instance_senses(words, wn) -> list:
    return [s for w in words for s in wn.synsets(w, pos=wn.NOUN) if s.instance_hypernyms()]


# ----------------------------------------------------------------------------- tests

COMMON_NOUNS = ["dog", "poodle", "cat", "tiger", "river", "city", "oak", "violin", "spider", "garment"]


def test_common_nouns_give_the_official_vocabulary_and_hierarchy(wn):
    assert instance_senses(COMMON_NOUNS, wn) == []  # the case where both must agree
    graph = official_hierarchy(COMMON_NOUNS, wn)
    vocab = convis_vocabulary.build_vocabulary(COMMON_NOUNS)
    assert set(vocab["synset"]) == official_vocabulary(graph, wn)
    assert len(vocab) == graph.number_of_nodes() > 100
    # Every official edge is a parent link of ours and no other: the same hierarchy.
    ours = {(parent, child) for child, parents in zip(vocab["synset"], vocab["parents"]) for parent in parents}
    assert ours == {(a.name(), b.name()) for a, b in graph.edges}


@pytest.mark.parametrize("synset, size", [
    ("dog.n.01", 2),        # dog and poodle: the hyponyms that made it into T
    ("canine.n.02", 3),     # a hypernym above them: dog.n.01, poodle.n.01 and itself
    ("city.n.01", 1),       # its 661 instance hyponyms are not words here
    ("poodle.n.01", 1),     # a leaf of T (WordNet's own hyponyms of poodle are not in T)
    ("garment.n.01", 1),
    ("carnivore.n.01", None),
    ("entity.n.01", None),  # the root: the whole vocabulary
])
def test_hyponym_members_are_the_official_subtree(wn, synset, size):
    graph = official_hierarchy(COMMON_NOUNS, wn)
    vocab = convis_vocabulary.build_vocabulary(COMMON_NOUNS)
    expected = {s.name() for s in official_subtree(graph, wn.synset(synset))}
    assert members_of(vocab, synset) == expected
    if size is not None:
        assert len(expected) == size


INSTANCE_WORDS = ["city", "river", "paris", "nile", "lincoln"]


def test_instance_senses_are_left_out_as_the_official_vocabulary_leaves_them(wn):
    """The official graph climbs ``.hypernyms()`` only and loses every instance sense
    (paris.n.01, the capital; nile.n.01; lincoln.n.01, the president); so does ours."""
    instances = instance_senses(INSTANCE_WORDS, wn)
    assert {s.name() for s in instances} >= {"paris.n.01", "nile.n.01", "lincoln.n.01"}
    graph = official_hierarchy(INSTANCE_WORDS, wn)
    vocab = convis_vocabulary.build_vocabulary(INSTANCE_WORDS)
    assert set(vocab["synset"]) == official_vocabulary(graph, wn)
    assert not set(vocab["synset"]) & {s.name() for s in instances}
    for synset in ("river.n.01", "city.n.01", "entity.n.01"):
        assert members_of(vocab, synset) == {s.name() for s in official_subtree(graph, wn.synset(synset))}


def test_words_with_a_space_name_nothing_in_the_official_dictionary(wn):
    """``wn.synsets("creme brulee")`` is empty, so the official filter drops the word (the
    official dictionary's "creme brulee" and "dune buggy"); ours reads it as creme_brulee."""
    assert wn.synsets("creme brulee", pos=wn.NOUN) == []
    assert official_hierarchy(["creme brulee"], wn).number_of_nodes() == 0
    assert "creme_brulee.n.01" in set(convis_vocabulary.build_vocabulary(["creme brulee"])["synset"])
