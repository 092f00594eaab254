"""ConVis OOD scores, class selection and AUROC against re-derivations of the official code.

Reference: github.com/loris2222/Concept-Visualization at commit 14c7414, files
``build_ood_scores.py`` (the scores) and ``evaluate_ood.py`` (the AUROC). The functions here
are written from reading that code, in plain numpy; none calls the library code it checks.

What the official code does:

- Classes (build_ood_scores.py l. 101-131): the ImageNet class folders, sorted, whose synset
  reaches the target by ``has_path_to`` (l. 107-118), a walk up ``.hypernyms()``.
- Scores (l. 143-158, 212-280): the image embedding and the text embeddings are normalised
  (``load_clip`` l. 148, ``text_clip`` l. 157) and an image scores the largest cosine
  (l. 263-270) to: the definition of ``s+`` alone (``naive_clip_definition``, l. 220-223; our
  ``definition`` baseline), or the definitions of the *leaves* of ``s+``'s subtree in the
  vocabulary graph (``hierarchy_definition``, l. 215-219, ``find_tree_leaves``). The official
  rank of a synset among the whole vocabulary (generate_heatmap.py ``compute_rank``,
  l. 245-248: the best 0-based position over the subtree) is what our ``convis`` score is
  built from, as the paper's ``max_rank_sim``; the OOD script itself does not rank (see
  ``test_the_official_ood_script_scores_cosines_not_ranks``).
- AUROC (evaluate_ood.py l. 78-115, ``thr_performance``/``plot_roc(1000)``): OOD is the
  positive class, flagged when its score is *below* a threshold (l. 80-82), so higher = in
  distribution, as ours. 1,000 thresholds ``linspace(min, max)`` over all scores, the
  trapezoid rule between consecutive (FPR, TPR) points. The curve starts at (0, 0) (nothing
  is below the minimum) but stops at the last threshold, the maximum score, where the
  images *at* the maximum are not yet counted: the official curve never reaches (1, 1).
  Ours is the exact area (Mann-Whitney, ties 0.5), which is the official trapezoid closed to
  (1, 1) whenever the thresholds fall on every distinct score.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from neuron_concepts import convis_eval, data, wordnet

# ----------------------------------------------------------------------------- references


def official_roc(scores_ind: np.ndarray, scores_ood: np.ndarray, segments: int = 1000):
    """evaluate_ood.py l. 78-115: the (FPR, TPR) points and their trapezoid area."""
    everything = np.concatenate([scores_ind, scores_ood])
    points = []
    for threshold in np.linspace(everything.min(), everything.max(), segments, endpoint=True):
        # l. 81-85: an image is flagged OOD when its score is below the threshold
        points.append((np.mean(scores_ind < threshold), np.mean(scores_ood < threshold)))
    area = sum((y1 + y0) * (x1 - x0) / 2 for (x0, y0), (x1, y1) in zip(points[:-1], points[1:]))
    return area, points


def official_cosine_score(image_emb: np.ndarray, text_emb: np.ndarray) -> np.ndarray:
    """build_ood_scores.py l. 148, 157, 263-270: max over texts of normalised dot products."""
    v = image_emb / np.linalg.norm(image_emb, axis=1, keepdims=True)
    t = text_emb / np.linalg.norm(text_emb, axis=1, keepdims=True)
    return (v @ t.T).max(axis=1)


def official_best_position(image_emb: np.ndarray, text_emb: np.ndarray, subtree: list[int]) -> np.ndarray:
    """generate_heatmap.py l. 245-248 for each image: the smallest descending position over the subtree."""
    v = image_emb / np.linalg.norm(image_emb, axis=1, keepdims=True)
    t = text_emb / np.linalg.norm(text_emb, axis=1, keepdims=True)
    out = []
    for sims in v @ t.T:
        position = np.argsort(np.argsort(sims)[::-1])
        out.append(position[subtree].min())
    return np.array(out)


def official_has_path_to(source, target) -> bool:
    """build_ood_scores.py l. 107-118 (a depth-first walk up ``.hypernyms()``)."""
    stack, seen = [source], set()
    while stack:
        node = stack.pop()
        if node == target:
            return True
        if node in seen:
            continue
        seen.add(node)
        stack.extend(node.hypernyms())
    return False


# ----------------------------------------------------------------------------- AUROC

@pytest.mark.parametrize("seed", range(4))
def test_auroc_is_sklearns_with_ties(seed):
    gen = np.random.default_rng(seed)
    n_in, n_out = gen.integers(1, 60, size=2)
    # few distinct values: many ties within and across the classes
    s_in, s_out = gen.integers(0, 6, n_in).astype(float), gen.integers(0, 4, n_out).astype(float)
    labels = np.r_[np.ones(n_in), np.zeros(n_out)]
    assert convis_eval.auroc(s_in, s_out) == pytest.approx(roc_auc_score(labels, np.r_[s_in, s_out]), abs=1e-12)
    f_in, f_out = gen.normal(0.3, 1, 300), gen.normal(0, 1, 200)
    assert convis_eval.auroc(f_in, f_out) == pytest.approx(
        roc_auc_score(np.r_[np.ones(300), np.zeros(200)], np.r_[f_in, f_out]), abs=1e-12)


@pytest.mark.parametrize("seed", range(4))
def test_auroc_is_the_official_trapezoid_closed_to_one_one(seed):
    """On integer scores 0..K with K + 1 thresholds the official thresholds fall on every
    value: its trapezoids then give tied (in, out) pairs half a pair each, like ours, and
    ours is the official area plus the segment from its last point to (1, 1)."""
    gen = np.random.default_rng(10 + seed)
    top = int(gen.integers(3, 12))
    s_in = gen.integers(0, top + 1, 80).astype(float)
    s_out = gen.integers(0, top // 2 + 2, 50).astype(float)
    s_in[0], s_out[0] = top, 0  # the thresholds run from 0 to K exactly
    area, points = official_roc(s_in, s_out, segments=top + 1)
    (x_last, y_last) = points[-1]
    closed = area + (1 - x_last) * (1 + y_last) / 2
    assert convis_eval.auroc(s_in, s_out) == pytest.approx(closed, abs=1e-12)
    # both orientations: higher = in distribution
    assert convis_eval.auroc(s_out, s_in) == pytest.approx(1 - closed, abs=1e-12)


def test_official_auroc_stops_short_of_one_one():
    """Known answer: perfectly separated scores. Ours 1; the official 0.75, since the three
    in-distribution images above the lowest one count and the one at the maximum never does
    (the gap is (1 - FPR_last)(1 + TPR_last) / 2, about 1 / n_in when the maximum is unique)."""
    s_in, s_out = np.array([2.0, 3.0, 4.0, 5.0]), np.array([0.0, 1.0])
    assert convis_eval.auroc(s_in, s_out) == 1.0
    area, points = official_roc(s_in, s_out)
    assert points[0] == (0.0, 0.0) and points[-1] == (0.75, 1.0)
    assert area == pytest.approx(0.75)
    # a tie is half a pair in both
    assert convis_eval.auroc([1.0], [1.0]) == 0.5


# ----------------------------------------------------------------------------- scores

def test_definition_scores_are_the_official_naive_definition_scores():
    gen = np.random.default_rng(3)
    images = gen.standard_normal((25, 32)) * gen.uniform(0.5, 3, (25, 1))  # not normalised
    definition = gen.standard_normal((1, 32)) * 4
    expected = official_cosine_score(images, definition)
    np.testing.assert_allclose(convis_eval.definition_scores(images.astype(np.float32),
                                                             definition.astype(np.float32)),
                               expected, atol=1e-6)


@pytest.mark.parametrize("chunk_size", [1, 4, 1024])
def test_ood_scores_are_the_official_best_rank_of_the_whole_image(chunk_size):
    """Without tied cosines, ``o(x) = (|T| - 1 - best position) / |T|``: the official
    ``compute_rank`` of the whole image, in any chunking."""
    gen = np.random.default_rng(chunk_size)
    images, texts = gen.standard_normal((11, 16)), gen.standard_normal((30, 16))
    subtree = [4, 9, 10, 27]
    position = official_best_position(images, texts, subtree)
    ours = convis_eval.ood_scores(images.astype(np.float32), texts.astype(np.float32), subtree, chunk_size=chunk_size)
    assert ours.dtype == np.float32
    np.testing.assert_allclose(ours, (len(texts) - 1 - position) / len(texts), atol=1e-6)


def test_the_official_ood_script_scores_cosines_not_ranks():
    """A discrepancy, pinned down: build_ood_scores.py (``hierarchy_definition``) scores the
    largest cosine to the leaves' definitions; the paper's (and our) score is a rank among
    the whole vocabulary. Image A is closer to ``s+`` (cosine 0.4 against 0.3) but closer
    still to the two other synsets; B is far from everything but least far from ``s+``."""
    basis = np.eye(4)
    texts = basis[:3]  # s+ (a leaf, row 0) and two other synsets
    a = np.array([0.4, 0.5, 0.6, np.sqrt(1 - 0.77)])
    b = np.array([0.3, 0.1, 0.2, np.sqrt(1 - 0.14)])
    images = np.stack([a, b])
    official = official_cosine_score(images, texts[[0]])
    np.testing.assert_allclose(official, [0.4, 0.3])
    ours = convis_eval.ood_scores(images.astype(np.float32), texts.astype(np.float32), [0])
    np.testing.assert_allclose(ours, [0.0, 2 / 3], atol=1e-6)
    # A in distribution, B out: the official script separates them, our score inverts them.
    assert convis_eval.auroc(official[:1], official[1:]) == 1.0
    assert convis_eval.auroc(ours[:1], ours[1:]) == 0.0


# ----------------------------------------------------------------------------- classes

# evaluate_ood.py l. 18-35: NUM_CLASSES of each pair's in-distribution side (the file gives
# 59 to "garments" and 26 to "birds"; ImageNet has 59 bird and 26 garment classes).
OFFICIAL_CLASS_COUNTS = {"bird.n.01": 59, "garment.n.01": 26, "spider.n.01": 6, "ungulate.n.01": 17,
                         "edible_fruit.n.01": 10, "aircraft.n.01": 4}


def test_ood_classes_are_the_official_has_path_to_selection():
    wn = wordnet.open_wordnet()
    folders = sorted(data.imagenet_wnids())  # build_ood_scores.py l. 101-102
    synsets = {w: wn.synset_from_pos_and_offset(w[0], int(w[1:])) for w in folders}
    for positive, negative in convis_eval.OOD_PAIRS:
        for target in (positive, negative):
            expected = [w for w in folders if official_has_path_to(synsets[w], wn.synset(target))]
            assert sorted(convis_eval.classes_under(target)) == expected, target
        assert len(convis_eval.classes_under(positive)) == OFFICIAL_CLASS_COUNTS[positive]
