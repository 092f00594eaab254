"""Our CLIP-Dissect Table-3 accuracy against a re-derivation of the official notebook.

Reference: github.com/Trustworthy-ML-Lab/CLIP-dissect at commit 21e7697,
``experiments/table3_similarity_comparison.ipynb`` (a JSON notebook; its code cells):

- cell 9: the concept set is ``data/imagenet_labels.txt`` read with ``split('\\n')``, so
  concept ``c`` is label line ``c``, the class index; the scores ``similarities`` ``[1000
  neurons, 1000 concepts]`` of the final layer ``fc`` come from
  ``utils.get_similarity_from_activations`` (utils.py lines 150-173, on ``device='cuda'``,
  cell 3); it prints ``get_topk_acc(similarities, k=1)`` and ``k=5``.
- cell 8, ``get_topk_acc(sim, k)``: for each ``orig_id`` in ``range(1000)``,
  ``vals, ids = torch.topk(sim[orig_id], k=k)``, ``correct += int(idx) == orig_id`` for each
  ``idx`` in ``ids[:k]``; returns ``correct / 1000 * 100``: the percentage of neurons whose
  own class index is among their ``k`` best concepts.

Ours: ``clip_dissect.description_table`` keeps each neuron's ``n_best`` concepts (config
``methods.clip_dissect.n_best``, default 10) in rank order; ``evaluation.evaluate_final_layer``
with ``concept_type="imagenet_labels"`` marks ``cd_top1_acc`` / ``cd_top5_acc`` per neuron
(``class_index_hits``); ``evaluation.summary_row`` averages them x100, Table 3's number.

Ties. ``torch.topk`` does not specify which of several equal scores it returns (the official
run used CUDA's; the CPU one here returns, e.g., indices [8, 6, 7, 5, 9] as the top 5 of ten
equal values). Ours breaks ties by the lower concept index (``clip_dissect.describe``, a
stable sort). So where a neuron's own class ties with another concept at the cut (for the
best concept, or the 5th/6th), the official hit depends on the backend and ours is fixed:
those neurons are tested against the lower-index rule, with the official port's top values
(not its indices) asserted equal to ours; every neuron whose hit does not depend on the
order of ties is compared with the official port exactly. On real scores of the 1,000
distinct label lines exact ties are not expected; the crane lines (classes 134 and 517)
are distinct only thanks to the label overrides (tests/reference/test_concept_sets.py).

The port below uses ``torch.topk`` per row as the notebook does and shares no code with
``neuron_concepts.clip_dissect`` or ``neuron_concepts.evaluation``; CLIP and mpnet (not
part of the accuracy) are a deterministic fake embedder.
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest
import torch

from neuron_concepts import clip_dissect, concepts, data, evaluation, io

N = 1000  # classes = final-layer neurons = concepts (the label lines)


# ----------------------------------------------------------------- the re-derivation


def official_topk_hits(sim: torch.Tensor, k: int) -> list[int]:
    """``get_topk_acc`` (cell 8) per neuron: how many of ``torch.topk``'s ``k`` indices are
    the neuron's own row index (0 or 1)."""
    hits = []
    for orig_id in range(sim.shape[0]):
        _, ids = torch.topk(sim[orig_id], k=k)
        hits.append(sum(int(idx) == orig_id for idx in ids[:k]))
    return hits


def official_topk_acc(sim: torch.Tensor, k: int) -> float:
    """``get_topk_acc``'s return value: ``correct / 1000 * 100``."""
    return sum(official_topk_hits(sim, k)) / 1000 * 100


def official_topk_values(sim: torch.Tensor, k: int) -> np.ndarray:
    """The ``vals`` of ``torch.topk(sim[orig_id], k=k)`` for every row, ``[rows, k]``."""
    return np.stack([torch.topk(sim[i], k=k).values.numpy() for i in range(sim.shape[0])])


def lower_index_first_hits(scores: np.ndarray, k: int) -> list[float]:
    """Our documented tie rule stated directly: the ``k`` best concepts by (score descending,
    index ascending); 1.0 when the row's own index is among them."""
    hits = []
    for i, row in enumerate(scores.tolist()):
        best = sorted(range(len(row)), key=lambda c: (-row[c], c))[:k]
        hits.append(float(i in best))
    return hits


def tie_determined(scores: np.ndarray, k: int) -> np.ndarray:
    """Rows whose own-class hit at ``k`` does not depend on how ties are ordered: at least
    ``k`` concepts score strictly more (a miss) or at most ``k`` score as much (a hit)."""
    own = np.diag(scores)[:, None]
    above = (scores > own).sum(axis=1)
    at_least = (scores >= own).sum(axis=1)
    return (above >= k) | (at_least <= k)


# ----------------------------------------------------------------- ours, as the pipeline runs it


def fake_embed(texts: list[str]) -> np.ndarray:
    """A seeded random vector per string (the cosine columns are not under test here)."""
    return np.stack([np.random.default_rng(zlib.crc32(t.encode())).normal(size=8) for t in texts])


def our_evaluation(scores: np.ndarray, n_best: int, tmp_path) -> tuple[np.ndarray, np.ndarray, dict]:
    """Descriptions of the ``imagenet_labels`` concept set written and read back as the
    pipeline does, evaluated: (top-1 hits, top-5 hits, the Table-1/3 summary row)."""
    texts = list(concepts.concept_set({"type": "imagenet_labels"})["text"])
    path = tmp_path / f"descriptions_{n_best}.parquet"
    io.save_descriptions(path, clip_dissect.description_table(scores, texts, n_best))
    table = evaluation.evaluate_final_layer(
        io.load_descriptions(path), concepts.imagenet_class_synonyms(),
        data.imagenet_label_lines(), fake_embed, fake_embed, concept_type="imagenet_labels")
    row = evaluation.summary_row(table, "clip-dissect")
    return table["cd_top1_acc"].to_numpy(), table["cd_top5_acc"].to_numpy(), row


# ----------------------------------------------------------------- inputs


def planted_scores(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Float32 scores ``[1000, 1000]`` without ties where neuron k's own class sits at a
    chosen rank: 300 neurons at rank 0, 250 at ranks 1-4 (rank 4 included: top-5, not
    top-4), 450 at ranks 5-999. Returns (scores, ranks)."""
    rng = np.random.default_rng(seed)
    ranks = np.concatenate([np.zeros(300, int), 1 + np.arange(250) % 4,
                            5 + rng.integers(0, N - 5, size=450)])
    ranks = ranks[rng.permutation(N)]
    # Each row a permutation of 0..999 (distinct); the own class moved to half-way
    # between the neighbours of its rank (a half-integer, distinct too).
    scores = np.stack([rng.permutation(N) for _ in range(N)]).astype(np.float32)
    for k, r in enumerate(ranks):
        others = np.sort(np.delete(scores[k], k))[::-1]
        upper = others[r - 1] if r > 0 else others[0] + 1.0
        lower = others[r] if r < N - 1 else others[-1] - 1.0
        scores[k, k] = (upper + lower) / 2
    assert all(len(np.unique(row)) == N for row in scores)  # no ties anywhere
    return scores, ranks


def tied_scores() -> np.ndarray:
    """Distinct negative scores, then rows with ties written in (known answers, ours):

    - 10: own class ties with concept 3 for the best -> top-1 miss, top-5 hit;
    - 20: own class ties with concept 900 for the best -> top-1 hit;
    - 500: four concepts above, own class ties with concept 100 for 5th -> top-5 miss;
    - 40: four concepts above, own class ties with concept 41 for 5th -> top-5 hit;
    - 60: own class the unique best, concepts 1-8 tie below it (hit either way);
    - 70: ten concepts tie above the own class (miss either way);
    - 0, 3, 800: every score equal -> hits at 1/5 for 0, at 5 for 3, none for 800.
    """
    rng = np.random.default_rng(7)
    scores = -np.abs(rng.normal(size=(N, N))).astype(np.float32) - 1.0
    scores[10, [3, 10]] = 5.0
    scores[20, [20, 900]] = 5.0
    scores[500, 600:604] = 6.0
    scores[500, [100, 500]] = 5.0
    scores[40, 700:704] = 6.0
    scores[40, [40, 41]] = 5.0
    scores[60, 60] = 7.0
    scores[60, 1:9] = 6.0
    scores[70, 200:210] = 6.0
    scores[70, 70] = 5.0
    scores[[0, 3, 800]] = 0.0
    return scores


# ----------------------------------------------------------------- agreement


@pytest.mark.parametrize("seed,n_best", [(0, 10), (1, 5)])
def test_table3_accuracy_equals_the_official_without_ties(seed, n_best, tmp_path):
    scores, ranks = planted_scores(seed)
    top1, top5, row = our_evaluation(scores, n_best, tmp_path)
    sim = torch.from_numpy(scores)
    np.testing.assert_array_equal(top1, official_topk_hits(sim, 1))
    np.testing.assert_array_equal(top5, official_topk_hits(sim, 5))
    assert row["top1_acc"] == pytest.approx(official_topk_acc(sim, 1), abs=1e-9)
    assert row["top5_acc"] == pytest.approx(official_topk_acc(sim, 5), abs=1e-9)
    # The known answer of the construction: 30.0 % and 55.0 %.
    assert row["top1_acc"] == pytest.approx(30.0) and row["top5_acc"] == pytest.approx(55.0)
    np.testing.assert_array_equal(top5, (ranks < 5).astype(float))


def test_table3_accuracy_with_ties_the_official_order_cannot_change(tmp_path):
    scores = tied_scores()
    top1, top5, _ = our_evaluation(scores, 10, tmp_path)
    sim = torch.from_numpy(scores)
    for k, ours in ((1, top1), (5, top5)):
        determined = tie_determined(scores, k)
        assert determined.sum() > N - 10  # only the constructed rows are open
        np.testing.assert_array_equal(ours[determined],
                                      np.asarray(official_topk_hits(sim, k), float)[determined])
    assert top1[60] == top5[60] == 1.0 and top1[70] == top5[70] == 0.0


def test_table3_ties_at_the_cut_go_to_the_lower_concept_index(tmp_path):
    """Where the official hit depends on ``torch.topk``'s tie order, ours is the lower index
    first (module docstring): asserted here, with the official top scores equal to ours.

    Not asserted (backend-dependent), observed with torch 2.14.1 on CPU: the port's top-5
    takes concept 41 before the own class 40 and the own class 500 before concept 100, so it
    counts neuron 40 a miss and 500 a hit, the opposite of ours; its top-1 (``k=1``) agrees
    with ours on every row here.
    """
    scores = tied_scores()
    top1, top5, _ = our_evaluation(scores, 10, tmp_path)
    np.testing.assert_array_equal(top1, lower_index_first_hits(scores, 1))
    np.testing.assert_array_equal(top5, lower_index_first_hits(scores, 5))
    assert (top1[10], top5[10]) == (0.0, 1.0)  # concept 3 wins the tie for the best
    assert top1[20] == 1.0  # the own class 20 beats concept 900
    assert top5[500] == 0.0 and top5[40] == 1.0  # 100 beats 500 and 40 beats 41 for 5th
    assert (top1[0], top5[0], top1[3], top5[3], top5[800]) == (1.0, 1.0, 0.0, 1.0, 0.0)
    # Whichever tied concepts torch.topk returns, they score what ours kept.
    descriptions = clip_dissect.description_table(scores, [str(c) for c in range(N)], 5)
    ours_values = descriptions.sort_values(["neuron", "rank"])["score"].to_numpy().reshape(N, 5)
    np.testing.assert_array_equal(ours_values, official_topk_values(torch.from_numpy(scores), 5))


def test_top1_description_equals_describe_neurons_argmax_even_with_ties():
    """``describe_neurons.py`` line 62 describes with ``torch.max(similarities, dim=1)``,
    which returns the first maximal index (PyTorch's documented rule), as ours does."""
    scores = tied_scores()
    ours = clip_dissect.describe(scores, 1)[:, 0]
    np.testing.assert_array_equal(ours, torch.max(torch.from_numpy(scores), dim=1).indices.numpy())
