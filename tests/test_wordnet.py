"""The WordNet helpers every module shares: ids, what a word names, and the hypernym hierarchy."""

from __future__ import annotations

import pytest

from neuron_concepts import wordnet


@pytest.fixture(scope="module")
def wn():
    return wordnet.open_wordnet()


def test_wnids_are_n_and_eight_digits():
    assert wordnet.is_wnid("n02084071")
    assert not wordnet.is_wnid("dog.n.01") and not wordnet.is_wnid("n0208407") and not wordnet.is_wnid("x02084071")


def test_a_wnid_is_the_noun_synset_at_its_offset(wn):
    assert wordnet.synset_of_wnid("n02084071") == wn.synset("dog.n.01")


def test_noun_senses_of_a_name_an_id_a_word_and_nothing(wn):
    assert wordnet.noun_senses("dog.n.01") == [wn.synset("dog.n.01")]
    assert wordnet.noun_senses("n02084071") == [wn.synset("dog.n.01")]
    assert wordnet.noun_senses(" hot dog ") == wn.synsets("hot_dog", pos=wn.NOUN)
    assert len(wordnet.noun_senses("dog")) > 1  # every noun sense of a plain word
    assert wordnet.noun_senses("qwertyuiop") == [] and wordnet.noun_senses("n99999999") == []


def test_hypernyms_include_instance_hypernyms(wn):
    paris = wn.synset("paris.n.01")  # an instance of national_capital.n.01
    assert wn.synset("national_capital.n.01") in wordnet.hypernyms(paris)
    assert not paris.hypernyms()  # what NLTK's plain hypernyms() would miss


def test_hypernym_closure_is_closed_upwards_and_keeps_its_seeds(wn):
    dog = wn.synset("dog.n.01")
    closed = wordnet.hypernym_closure([dog])
    assert dog in closed and wn.synset("entity.n.01") in closed
    assert all(set(wordnet.hypernyms(s)) <= closed for s in closed)
    names = wordnet.self_and_hypernym_names("n02084071")
    assert names == frozenset(s.name() for s in closed)
    assert {"dog.n.01", "canine.n.02", "entity.n.01"} <= names
