"""Stability, top-1 agreement and Jaccard of top-5 concept lists on hand-checked cases."""

import numpy as np
import pandas as pd
import pytest

from neuron_concepts import stability
from neuron_concepts.errors import InputDataError

BASE = np.array([["a", "b", "c", "d", "e"],
                 ["f", "g", "h", "i", "j"],
                 ["k", "l", "m", "n", "o"],
                 ["p", "q", "r", "s", "t"]], dtype=object)


def descriptions(tops):
    """A descriptions table (neuron, rank, concept, score, selected) for [K, n] concept lists."""
    tops = np.asarray(tops, dtype=object)
    k, n = tops.shape
    return pd.DataFrame({"neuron": np.repeat(np.arange(k), n), "rank": np.tile(np.arange(n), k),
                         "concept": tops.ravel(), "score": -np.tile(np.arange(n), k) * 1.0,
                         "selected": np.tile(np.arange(n), k) == 0})


def test_identical_rankings_are_fully_stable():
    assert stability.stability(BASE, BASE.copy()) == 100.0
    assert stability.top1_agreement(BASE, BASE.copy()) == 100.0
    assert stability.mean_jaccard(BASE, BASE.copy()) == 1.0


def test_swapping_the_fifth_concept_of_one_neuron_drops_stability_by_its_share():
    other = BASE.copy()
    other[1, 4] = "zz"
    assert stability.stability(BASE, other) == 75.0
    assert stability.top1_agreement(BASE, other) == 100.0
    # Neuron 1 shares 4 of 6 concepts: (1 + 1 + 1 + 4/6) / 4.
    assert stability.mean_jaccard(BASE, other) == pytest.approx((3 + 4 / 6) / 4)


def test_order_within_top5_counts_for_top1_but_not_for_the_set():
    reordered = BASE[:, ::-1].copy()
    assert stability.stability(BASE, reordered) == 100.0
    assert stability.mean_jaccard(BASE, reordered) == 1.0
    assert stability.top1_agreement(BASE, reordered) == 0.0


def test_jaccard_by_hand():
    base = np.array([["a", "b", "c", "d", "e"], ["a", "b", "c", "d", "e"]], dtype=object)
    other = np.array([["a", "b", "x", "y", "z"], ["v", "w", "x", "y", "z"]], dtype=object)
    # Neuron 0: |{a,b}| / |{a,b,c,d,e,x,y,z}| = 2/8; neuron 1: disjoint = 0.
    assert stability.mean_jaccard(base, other) == pytest.approx((2 / 8 + 0) / 2)
    assert stability.stability(base, other) == 0.0


def test_integer_concept_ids_work_like_texts():
    base = np.array([[3, 1, 4, 0, 2]])
    assert stability.stability(base, np.array([[0, 1, 2, 3, 4]])) == 100.0
    assert stability.top1_agreement(base, np.array([[0, 1, 2, 3, 4]])) == 0.0


def test_stability_table_rows_per_group_and_k():
    moved = BASE.copy()
    moved[0, 4] = "zz"
    moved[2] = moved[2, ::-1]
    groups = {("layer3", "broden", "cos"): {5: descriptions(BASE), 10: descriptions(BASE),
                                            16: descriptions(moved)},
              ("layer4", "broden", "cos"): {16: BASE, 5: BASE, 10: moved}}
    table = stability.stability_table(groups)
    assert list(table.columns) == stability.TABLE_COLUMNS
    assert table[["layer", "k_from", "k_to"]].values.tolist() == [
        ["layer3", 5, 10], ["layer3", 5, 16], ["layer4", 5, 10], ["layer4", 5, 16]]
    assert table["stability_pct"].tolist() == [100.0, 75.0, 75.0, 100.0]
    assert table["top1_agreement_pct"].tolist() == [100.0, 75.0, 75.0, 100.0]
    assert table["n_neurons"].tolist() == [4, 4, 4, 4]


def test_top_concepts_reads_descriptions_in_rank_order():
    table = descriptions(BASE).sample(frac=1.0, random_state=0)  # rows in any order
    neurons, tops = stability.top_concepts(table)
    assert neurons.tolist() == [0, 1, 2, 3]
    assert tops.tolist() == BASE.tolist()
    with pytest.raises(InputDataError, match="exactly one concept"):
        stability.top_concepts(descriptions(BASE[:, :3]))


def test_different_neurons_at_two_k_are_rejected():
    with pytest.raises(InputDataError, match="other neurons"):
        stability.stability_rows({5: descriptions(BASE), 10: descriptions(BASE[:3])})


def test_stability_figure_writes_a_png(tmp_path):
    table = stability.stability_table({
        ("layer3", "broden", "cos"): {5: BASE, 10: BASE, 16: BASE[:, ::-1]},
        ("layer4", "broden", "cos"): {5: BASE, 10: BASE, 16: BASE},
        ("layer4", "wordnet", "tvmf-k16"): {5: BASE, 10: BASE, 16: BASE}})
    path = tmp_path / "figures" / "stability.png"
    stability.stability_figure(table, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_stability_table_with_more_labels_leads_with_them_and_keeps_the_numbers():
    moved = BASE.copy()
    moved[0, 4] = "zz"
    tops = {5: BASE, 10: BASE, 16: moved}
    plain = stability.stability_table({("layer3", "broden", "cos"): tops})
    labelled = stability.stability_table({("demo", "softwpmi", "layer3", "broden", "cos"): tops},
                                         label_names=["probe", "variant", "layer", "concepts",
                                                      "sim"])
    assert list(labelled.columns) == ["probe", "variant"] + stability.TABLE_COLUMNS
    pd.testing.assert_frame_equal(labelled.drop(columns=["probe", "variant"]), plain)


def test_stability_figure_has_one_panel_per_extra_label(tmp_path):
    tops = {5: BASE, 10: BASE, 16: BASE[:, ::-1]}
    table = stability.stability_table(
        {("softwpmi", "layer3", "broden", "cos"): tops, ("wpmi", "layer3", "broden", "cos"): tops},
        label_names=["variant", "layer", "concepts", "sim"])
    path = tmp_path / "stability.png"
    stability.stability_figure(table, path)
    png = path.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    # Two panels (softwpmi, wpmi) of 3.2 inches each at 120 dpi: the IHDR height.
    assert int.from_bytes(png[20:24], "big") == round(2 * 3.2 * 120)
