"""Comparison of targets, methods and checkpoints on description tables with known answers."""

from __future__ import annotations

import itertools
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from neuron_concepts import browser, compare, compare_figures, io
from neuron_concepts.errors import InputDataError

WWW = "www-center-cos-n40-a0.95"
CD = "softwpmi-center-cos-k100"


def descriptions(ranked: list[list[int]], selected: list[int] | None = None,
                 fallback: set[int] = frozenset()) -> pd.DataFrame:
    """A descriptions table: neuron k's concepts ``ranked[k]`` (ids; text ``c<id>``), its first
    ``selected[k]`` (default 1) selected, the neurons in ``fallback`` flagged."""
    rows = []
    for k, ids in enumerate(ranked):
        n_selected = 1 if selected is None else selected[k]
        rows += [(k, rank, cid, f"c{cid}", 1.0 - 0.1 * rank, rank < n_selected, k in fallback)
                 for rank, cid in enumerate(ids)]
    return io.description_table(rows)


def tops(ids: list[int]) -> pd.DataFrame:
    """Descriptions whose neuron k has top concept ``ids[k]`` and three more below it."""
    return descriptions([[cid] + [c for c in range(100, 103)] for cid in ids])


def labels(target="resnet", layer="layer4", method=WWW, concepts="broden", **more):
    return dict(target=target, layer=layer, method=method, concepts=concepts, **more)


def random_tops(rng, n_neurons, n_concepts):
    return rng.integers(0, n_concepts, size=n_neurons).tolist()


def test_the_tables_need_neither_torch_nor_matplotlib():
    code = ("import sys\nfrom neuron_concepts import compare\n"
            "assert 'torch' not in sys.modules and 'matplotlib' not in sys.modules\n"
            "from neuron_concepts import compare_figures\nassert 'torch' not in sys.modules\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# ---------------------------------------------------------------- per layer


def test_distinct_top_concepts_and_described_share_by_hand():
    # Tops 1, 1, 2, 3: three distinct; neuron 3 fell back, neuron 2 selected two concepts.
    www = descriptions([[1, 5], [1, 6], [2, 1], [3, 4]], selected=[1, 1, 2, 1], fallback={3})
    cd = descriptions([[1, 5], [2, 6], [2, 1], [3, 4]])  # CLIP-Dissect: argmax selected, no fallback
    table = compare.comparison_table([compare.Entry(labels(), www), compare.Entry(labels(method=CD), cd)])
    assert table["method"].tolist() == [WWW, CD]
    assert table["n_neurons"].tolist() == [4, 4]
    assert table["n_distinct_top"].tolist() == [3, 3]
    assert table["distinct_top_pct"].tolist() == [75.0, 75.0]
    assert table["described_pct"].tolist() == [75.0, 100.0]


def test_a_neuron_with_nothing_selected_is_not_described():
    table = descriptions([[1, 2], [3, 4]], selected=[0, 1])
    assert compare.described(table).tolist() == [False, True]
    assert compare.layer_summary(table)["described_pct"] == 50.0


def test_distinct_counts_match_plain_python_on_random_tables():
    rng = np.random.default_rng(0)
    entries, expected = [], []
    for layer in ("layer1", "layer2", "layer3"):
        ids = random_tops(rng, 40, 9)
        entries.append(compare.Entry(labels(layer=layer), tops(ids)))
        expected.append(len(set(ids)))
    table = compare.comparison_table(entries)
    assert table["layer"].tolist() == ["layer1", "layer2", "layer3"]  # the entries' order
    assert table["n_distinct_top"].tolist() == expected


def test_top_concept_is_rank_zero_not_first_row():
    table = descriptions([[7, 8], [9, 10]]).iloc[::-1].reset_index(drop=True)
    assert compare.top_concepts(table).tolist() == [7, 9]


def test_a_neuron_without_rank_zero_is_an_error():
    table = descriptions([[7, 8], [9, 10]])
    with pytest.raises(InputDataError, match="rank-0"):
        compare.top_concepts(table[~((table["neuron"] == 1) & (table["rank"] == 0))])


def test_labels_must_name_target_layer_method_and_concepts():
    with pytest.raises(ValueError, match="target"):
        compare.comparison_table([compare.Entry(dict(layer="fc", method=WWW, concepts="c"), tops([1]))])


def test_other_labels_are_kept_after_the_required_ones():
    table = compare.comparison_table([compare.Entry(dict(probe="val", **labels()), tops([1, 2]))])
    assert list(table.columns[:5]) == ["target", "layer", "method", "concepts", "probe"]


# ---------------------------------------------------------------- evaluation


def evaluation_table(n: int, **metrics: list[float]) -> pd.DataFrame:
    table = pd.DataFrame({"neuron": np.arange(n), "predictions": ["x"] * n, "top1": ["x"] * n})
    for name in compare.METRICS:
        table[name] = metrics.get(name, [np.nan] * n)
    return table


def test_evaluation_metrics_are_means_x100_and_nan_where_absent():
    per_neuron = evaluation_table(4, www_f1=[1.0, 0.5, 0.0, 0.5], www_hit=[1, 1, 0, 0],
                                  cd_clip_cos=[0.9, 0.8, 0.7, 0.6])
    table = compare.comparison_table([
        compare.Entry(labels(layer="fc"), tops([1, 2, 3, 4]), per_neuron),
        compare.Entry(labels(layer="layer4"), tops([1, 2, 3, 4]))])
    final, inner = table.iloc[0], table.iloc[1]
    assert final["www_f1"] == pytest.approx(50.0)
    assert final["www_hit"] == pytest.approx(50.0)
    assert final["cd_clip_cos"] == pytest.approx(75.0)
    assert np.isnan(final["cd_top1_acc"])  # not this concept set's metric
    assert all(np.isnan(inner[name]) for name in compare.METRICS)


# ---------------------------------------------------------------- agreement


def test_agreement_by_hand():
    entries = [compare.Entry(labels(method=WWW), tops([1, 1, 2, 3])),
               compare.Entry(labels(method=CD), tops([1, 2, 2, 3]))]
    table = compare.agreement_table(entries)
    assert table[["method_a", "method_b"]].values.tolist() == [[WWW, CD]]
    assert table["agreement_pct"].tolist() == [75.0]
    assert table["n_neurons"].tolist() == [4]


def test_agreement_equals_plain_python_and_the_browser_on_random_tables():
    rng = np.random.default_rng(1)
    methods = ["m0", "m1", "m2", "m3"]
    entries, top_ids = [], {}
    for layer, concepts in itertools.product(("layer3", "fc"), ("broden", "imagenet")):
        for method in methods:
            ids = random_tops(rng, 30, 4)
            top_ids[(layer, concepts, method)] = ids
            entries.append(compare.Entry(labels(layer=layer, concepts=concepts, method=method), tops(ids)))
    table = compare.agreement_table(entries)
    assert len(table) == 4 * 6  # four groups, six pairs each
    for row in table.itertuples():
        a, b = top_ids[(row.layer, row.concepts, row.method_a)], top_ids[(row.layer, row.concepts, row.method_b)]
        assert row.agreement_pct == pytest.approx(100 * sum(x == y for x, y in zip(a, b)) / len(a))
        matrix = np.array([top_ids[(row.layer, row.concepts, m)] for m in methods]).T
        i, j = methods.index(row.method_a), methods.index(row.method_b)
        assert row.agreement_pct == pytest.approx(100 * browser.pairwise_agreement(matrix)[i, j])


def test_agreement_pairs_only_methods_of_one_target_layer_and_concept_set():
    entries = [compare.Entry(labels(target="resnet", method=WWW), tops([1, 2])),
               compare.Entry(labels(target="vit", method=WWW), tops([1, 2])),
               compare.Entry(labels(target="vit", method=CD), tops([1, 3]))]
    table = compare.agreement_table(entries)
    assert table[["target", "method_a", "method_b", "agreement_pct"]].values.tolist() == [
        ["vit", WWW, CD, 50.0]]


def test_one_method_gives_an_empty_agreement_table_with_its_columns():
    table = compare.agreement_table([compare.Entry(labels(), tops([1, 2]))])
    assert table.empty
    assert list(table.columns) == ["target", "layer", "concepts"] + list(compare.AGREEMENT_COLUMNS)


def test_agreement_of_different_neurons_is_an_error():
    with pytest.raises(InputDataError, match="different neurons"):
        compare.agreement_table([compare.Entry(labels(method=WWW), tops([1, 2])),
                                 compare.Entry(labels(method=CD), tops([1, 2, 3]))])


# ---------------------------------------------------------------- checkpoints

# Neuron 0 unchanged; 1 reordered (top changed, same set); 2 keeps its top, 2 of 3 replaced
# (Jaccard 1/5); 3 all replaced.
BEFORE = [[1, 2, 3], [1, 2, 3], [1, 2, 3], [1, 2, 3]]
AFTER = [[1, 2, 3], [2, 1, 3], [1, 4, 5], [4, 5, 6]]


def pair(layer="layer4", before=BEFORE, after=AFTER, **more):
    return compare.CheckpointPair(dict(layer=layer, method=WWW, concepts="broden", before="ep1",
                                       after="ep90", **more), descriptions(before), descriptions(after))


def test_checkpoint_change_share_and_mean_jaccard_by_hand():
    table = compare.checkpoint_table([pair(), pair(layer="fc", after=BEFORE)], n=3)
    assert table["layer"].tolist() == ["layer4", "fc"]
    assert table["n_neurons"].tolist() == [4, 4]
    assert table["n_changed"].tolist() == [2, 0]
    assert table["changed_pct"].tolist() == [50.0, 0.0]
    assert table["mean_jaccard"].tolist() == pytest.approx([(1 + 1 + 1 / 5 + 0) / 4, 1.0])


def test_most_changed_neurons_by_hand():
    table = compare.most_changed([pair()], n_neurons=10, n=3)
    assert table["neuron"].tolist() == [3, 2, 1]  # distance 1.0, 0.8, then the top-only change
    assert table["jaccard_distance"].tolist() == pytest.approx([1.0, 0.8, 0.0])
    assert table["top_changed"].tolist() == [True, False, True]
    first = table.iloc[0]
    assert (first["top_before"], first["top_after"]) == ("c1", "c4")
    assert (first["concepts_before"], first["concepts_after"]) == ("c1, c2, c3", "c4, c5, c6")
    assert (table["layer"] == "layer4").all() and (table["after"] == "ep90").all()
    assert compare.most_changed([pair()], n_neurons=2, n=3)["neuron"].tolist() == [3, 2]


def test_most_changed_lists_no_unchanged_neuron():
    assert compare.most_changed([pair(after=BEFORE)], n=3).empty


def test_jaccard_over_top_n_only():
    # Beyond rank n nothing counts: n=1 sees only the top concepts.
    table = compare.checkpoint_table([pair()], n=1)
    assert table["mean_jaccard"].tolist() == [pytest.approx(0.5)]


def test_checkpoints_with_other_neurons_are_an_error():
    with pytest.raises(InputDataError, match="different neurons"):
        compare.checkpoint_table([pair(after=AFTER[:3])])


# ---------------------------------------------------------------- markdown


def test_markdown_leaves_out_metrics_no_row_has():
    table = compare.comparison_table([compare.Entry(labels(), tops([1, 2]))])
    text = compare.table_markdown(table, "Comparison")
    assert text.startswith("# Comparison")
    assert WWW in text and "n_distinct_top" in text and "www_f1" not in text


def test_markdown_of_an_empty_table_says_so():
    assert "No rows" in compare.table_markdown(compare.agreement_table([]), "Agreement")


# ---------------------------------------------------------------- figures


def two_targets() -> pd.DataFrame:
    entries = []
    for target, layers in (("resnet", ["layer2", "layer3", "layer4"]), ("vit", ["blocks.5", "blocks.11"])):
        for depth, layer in enumerate(layers):
            for method in (WWW, CD):
                n_distinct = depth + 1 + (method == CD) + (target == "vit")
                entries.append(compare.Entry(labels(target, layer, method), tops(list(range(n_distinct)) * 2)))
    return compare.comparison_table(entries)


def test_distinct_concepts_figure_draws_a_line_per_target(tmp_path):
    table = two_targets()
    path = tmp_path / "figures" / "distinct.png"
    fig = compare_figures.distinct_concepts_figure(table, path)
    with Image.open(path) as image:
        width, height = image.size
    assert (width, height) == tuple(round(v * compare_figures.DPI) for v in fig.get_size_inches())
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert len(panels) == 2  # one per method
    for ax in panels:
        lines = {line.get_label(): line for line in ax.get_lines()}
        assert set(lines) == {"resnet", "vit"}
        method = WWW if WWW in ax.get_title() else CD
        for target, line in lines.items():
            expected = table[(table["target"] == target) & (table["method"] == method)]["n_distinct_top"]
            assert line.get_ydata().tolist() == expected.tolist()
            assert line.get_xdata().tolist() == list(range(1, len(expected) + 1))
        assert "depth" in ax.get_xlabel()  # the targets' layers differ


def test_distinct_concepts_follow_the_configured_layer_order():
    table = two_targets()
    order = {"resnet": ["layer4", "layer3", "layer2"], "vit": ["blocks.11", "blocks.5"]}
    fig = compare_figures.plot_distinct_concepts(table[table["method"] == WWW], order)
    lines = {line.get_label(): line for line in fig.axes[0].get_lines()}
    assert lines["resnet"].get_ydata().tolist() == [3, 2, 1]
    assert lines["vit"].get_ydata().tolist() == [3, 2]


def test_shared_layers_name_the_ticks():
    table = two_targets()
    table = table[table["target"] == "resnet"]
    ax = compare_figures.plot_distinct_concepts(table).axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["layer2", "layer3", "layer4"]


def test_checkpoint_figure_draws_the_changed_share_per_layer(tmp_path):
    pairs = [pair(layer=layer, after=after) for layer, after in (("layer3", BEFORE), ("layer4", AFTER))]
    table = compare.checkpoint_table(pairs, n=3)
    path = tmp_path / "changes.png"
    fig = compare_figures.checkpoint_changes_figure(table, path)
    with Image.open(path) as image:
        assert image.size == tuple(round(v * compare_figures.DPI) for v in fig.get_size_inches())
    ax = fig.axes[0]
    assert [bar.get_height() for bar in ax.patches] == [0.0, 50.0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["layer3", "layer4"]
    assert "ep1" in ax.get_title() and "ep90" in ax.get_title()
