"""Our WWW metrics against an independent re-derivation of WWW's official metric code.

Reference: github.com/ailab-kyunghee/WWW, ``utils/metric_utils.py`` at commit c43715b
(file last changed in 55b3a32, "Camera-ready"), driven by ``compute_score.py``:

- ``load_files`` (lines 35-81): predictions lower-cased, an empty selection becomes
  ``['none']`` (line 72), kept as lists with duplicates; ground truth = the label line
  split on ", " and lower-cased (lines 76-79).
- ``ours_accuracy`` (lines 83-95): a neuron is a hit when any prediction is in its
  ground-truth list.
- ``compute_sim`` (lines 97-125) and ``similarities`` (lines 127-155): CLIP cosine of every
  (prediction, synonym) pair, values above 1 set to 1 (line 106), averaged over all pairs
  of the neuron; mpnet: per prediction the mean dot product with the synonyms' (normalised)
  embeddings, then the mean over predictions; both then averaged over neurons.
- ``intersection`` / ``compute_pr`` / ``pr`` (lines 157-192): ``P = |set(G) & set(Pr)| /
  len(Pr)``, ``R = |set(G) & set(Pr)| / len(G)`` with list lengths, F1 = 2PR/(P+R), 0 when
  P + R == 0; each averaged over neurons.

The functions below are written from that description with plain loops, on purpose not
sharing any code path with ``neuron_concepts.metrics``; CLIP and mpnet are replaced by a
deterministic fake embedder (a seeded random vector per string).
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from neuron_concepts import concepts, data, metrics

TOL = 1e-5


# ----------------------------------------------------------------- the re-derivation


def official_load(predictions: list[list[str]], label_lines: list[str]) -> tuple[list[list[str]], list[list[str]]]:
    """``load_files``: (ground truth, predictions), both lower-cased lists."""
    ours = [["none"] if p == [] else [s.lower() for s in p] for p in predictions]
    gt = [[s.lower() for s in line.split(", ")] for line in label_lines]
    return gt, ours


def official_accuracy(ours: list[list[str]], gt: list[list[str]]) -> list[float]:
    """``ours_accuracy`` per neuron: 1 when some prediction is in the ground-truth list."""
    hits = []
    for pred, truth in zip(ours, gt):
        hit = 0.0
        for word in pred:
            if word in truth:
                hit = 1.0
                break
        hits.append(hit)
    return hits


def official_pr(ours: list[list[str]], gt: list[list[str]]) -> tuple[list[float], list[float], list[float]]:
    """``compute_pr`` / ``pr`` per neuron: (precision, recall, F1)."""
    precision, recall, f1 = [], [], []
    for pred, truth in zip(ours, gt):
        common = 0
        for word in set(truth):
            if word in set(pred):
                common += 1
        p, r = common / len(pred), common / len(truth)
        precision.append(p)
        recall.append(r)
        f1.append(0.0 if p + r == 0 else 2 * p * r / (p + r))
    return precision, recall, f1


def fake_vector(text: str, dim: int = 16, normalised: bool = False) -> np.ndarray:
    """A deterministic embedding of a string; CLIP's are not normalised, mpnet's are."""
    vector = np.random.default_rng(zlib.crc32(text.encode())).normal(size=dim)
    return vector / np.linalg.norm(vector) if normalised else vector


def fake_embedder(normalised: bool):
    return lambda texts: np.stack([fake_vector(t, normalised=normalised) for t in texts])


def official_clip_cos(ours: list[list[str]], gt: list[list[str]]) -> list[float]:
    """``compute_sim``'s CLIP part with ``similarities``' per-neuron mean over all pairs."""
    per_neuron = []
    for pred, truth in zip(ours, gt):
        values = []
        for p in pred:
            a = fake_vector(p)
            for g in truth:
                b = fake_vector(g)
                cos = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
                values.append(1.0 if cos > 1 else cos)
        per_neuron.append(float(np.mean(values)))
    return per_neuron


def official_mpnet_cos(ours: list[list[str]], gt: list[list[str]]) -> list[float]:
    """``compute_sim``'s mpnet part: mean over predictions of the mean dot product with the synonyms."""
    per_neuron = []
    for pred, truth in zip(ours, gt):
        truth_emb = np.stack([fake_vector(g, normalised=True) for g in truth])
        per_prediction = [float(np.mean(np.sum(fake_vector(p, normalised=True) * truth_emb, axis=1)))
                          for p in pred]
        per_neuron.append(float(np.mean(per_prediction)))
    return per_neuron


# ----------------------------------------------------------------- comparison


def ours_all(predictions: list[list[str]], label_lines: list[str]) -> dict[str, np.ndarray]:
    synonyms = [line.split(", ") for line in label_lines]
    precision, recall = metrics.precision_recall_per_neuron(predictions, synonyms)
    return {
        "hit": metrics.hits_per_neuron(predictions, synonyms),
        "precision": precision,
        "recall": recall,
        "f1": metrics.f1_per_neuron(predictions, synonyms),
        "clip_cos": metrics.cosine_per_neuron(predictions, synonyms, fake_embedder(False)),
        "mpnet_cos": metrics.cosine_per_neuron(predictions, synonyms, fake_embedder(True)),
    }


def official_all(predictions: list[list[str]], label_lines: list[str]) -> dict[str, list[float]]:
    gt, ours = official_load(predictions, label_lines)
    precision, recall, f1 = official_pr(ours, gt)
    return {"hit": official_accuracy(ours, gt), "precision": precision, "recall": recall,
            "f1": f1, "clip_cos": official_clip_cos(ours, gt), "mpnet_cos": official_mpnet_cos(ours, gt)}


def assert_same(predictions: list[list[str]], label_lines: list[str]) -> None:
    ours, official = ours_all(predictions, label_lines), official_all(predictions, label_lines)
    for name in official:
        np.testing.assert_allclose(ours[name], official[name], atol=TOL, err_msg=name)
        assert float(np.mean(ours[name])) == pytest.approx(float(np.mean(official[name])), abs=TOL)
    synonyms = [line.split(", ") for line in label_lines]
    assert metrics.f1_score(predictions, synonyms) == pytest.approx(100 * np.mean(official["f1"]), abs=1e-3)
    assert metrics.hit_rate(predictions, synonyms) == pytest.approx(100 * np.mean(official["hit"]), abs=1e-3)


VOCAB = ["crane", "bird", "Tabby", "tabby cat", "tench", "Tinca tinca", "machine", "dog",
         "hot dog", "car", "sports car", "Maltese", "none"]


@pytest.mark.parametrize("seed", range(5))
def test_random_neurons_match_the_official_metrics(seed):
    rng = np.random.default_rng(seed)
    n = 60
    lines = [", ".join(rng.choice(VOCAB[:-1], size=rng.integers(1, 5), replace=False)) for _ in range(n)]
    # With replacement: duplicated predictions, as a concept set with duplicates selects them.
    predictions = [list(rng.choice(VOCAB, size=rng.integers(0, 7))) for _ in range(n)]
    assert any(len(set(p)) < len(p) for p in predictions) and any(p == [] for p in predictions)
    assert_same(predictions, lines)


def test_duplicated_predictions_use_the_official_list_formula():
    predictions, lines = [["crane", "crane"]], ["crane, bird"]
    assert_same(predictions, lines)
    # P = 1 match / 2 predictions, R = 1 / 2 synonyms: F1 = 0.5 (a set-based F1 gives 2/3).
    assert metrics.f1_per_neuron(predictions, [["crane", "bird"]])[0] == pytest.approx(0.5)
    gt, ours = official_load(predictions, lines)
    assert official_pr(ours, gt)[2] == [pytest.approx(0.5)]


@pytest.mark.parametrize("predictions, lines", [
    ([[]], ["tench, Tinca tinca"]),                                    # empty selection -> ["none"]
    ([["Tench"]], ["tench, Tinca tinca"]),                              # one neuron, case
    ([["tench", "Tinca tinca"], ["crane", "bird"]], ["tench, Tinca tinca", "crane, bird"]),  # = GT
    ([["dog", "car"], ["hot dog"]], ["tench, Tinca tinca", "crane, bird"]),  # no overlap
    ([["crane", "crane", "bird", "crane"], ["car"] * 5], ["crane, bird", "car, sports car"]),
])
def test_edge_cases_match_the_official_metrics(predictions, lines):
    assert_same(predictions, lines)


def test_predictions_equal_to_ground_truth_score_one():
    lines = ["tench, Tinca tinca", "crane, bird", "stingray"]
    predictions = [line.split(", ") for line in lines]
    assert_same(predictions, lines)
    ours = ours_all(predictions, lines)
    for name in ("hit", "precision", "recall", "f1"):
        np.testing.assert_allclose(ours[name], 1.0)
    assert ours["clip_cos"][2] == pytest.approx(1.0)  # one synonym: the pair with itself


# ----------------------------------------------------------------- concept lists (concept_matching.py)
# WWW's concept_matching.py (same commit, lines 229-249): data == 80 takes every noun synset's
# first lemma in wn.all_synsets('n') order, duplicates kept; data == 1 every ", "-split word of
# the label lines.


def test_wordnet_nouns_keep_duplicates_unless_deduplicated():
    table = concepts.concept_set({"type": "wordnet_nouns"})
    assert len(table) == 82115 and not table.text.is_unique
    assert list(table.concept_id) == list(range(82115))
    assert table.text.iloc[0] == "entity" and not table.text.str.contains("_").any()
    distinct = concepts.concept_set({"type": "wordnet_nouns", "deduplicate": True})
    assert len(distinct) == 67893 and distinct.text.is_unique
    assert list(distinct.text) == list(dict.fromkeys(table.text))


def test_imagenet_concepts_are_the_split_label_lines():
    lines = data.imagenet_label_lines()
    expected = [word for line in lines for word in line.split(", ")]
    table = concepts.concept_set({"type": "imagenet"})
    assert list(table.text) == expected
    assert (table.text == "crane").sum() == 2
