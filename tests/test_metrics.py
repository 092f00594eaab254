import numpy as np
import pytest

from neuron_concepts import metrics
from neuron_concepts.embeddings import embed_with_known
from neuron_concepts.evaluation import (class_texts, evaluate_final_layer, evaluation_texts,
                                        summary_row, table_markdown)


def test_hit_rate_exact_match_any_synonym():
    preds = [["Tabby", "dog"], ["car"], []]
    truth = [["tabby", "tabby cat"], ["sports car"], ["none"]]
    # Neuron 3 predicts nothing, which counts as "none".
    assert metrics.hit_rate(preds, truth) == pytest.approx(200 / 3)


def test_f1_known_values():
    preds = [["a", "b"], ["x"], ["a", "b", "c", "d"]]
    truth = [["a", "c"], ["y"], ["a"]]
    # neuron 1: P = 1/2, R = 1/2 -> 0.5; neuron 2: 0; neuron 3: P = 1/4, R = 1 -> 0.4
    assert metrics.f1_score(preds, truth) == pytest.approx(100 * (0.5 + 0 + 0.4) / 3)


def test_f1_counts_duplicated_predictions_as_www_does():
    # WWW's compute_pr: P = |set(G) & set(Pr)| / len(Pr), duplicates in Pr kept.
    preds, truth = [["crane", "crane"], ["Crane", "bird", "crane"]], [["crane", "bird"]] * 2
    precision, recall = metrics.precision_recall_per_neuron(preds, truth)
    np.testing.assert_allclose(precision, [0.5, 2 / 3])
    np.testing.assert_allclose(recall, [0.5, 1.0])
    np.testing.assert_allclose(metrics.f1_per_neuron(preds, truth), [0.5, 0.8])


def test_cosine_per_neuron_counts_duplicated_predictions():
    vectors = {"a": [1.0, 0.0], "b": [0.0, 1.0]}
    embed = lambda texts: np.array([vectors[t] for t in texts])
    out = metrics.cosine_per_neuron([["a", "a", "b"]], [["a"]], embed)
    assert out[0] == pytest.approx(2 / 3)


def test_cosine_per_neuron_means_over_pairs():
    vectors = {"a": [1.0, 0.0], "b": [0.0, 1.0], "c": [1.0, 1.0]}
    embed = lambda texts: np.array([vectors[t] for t in texts])
    out = metrics.cosine_per_neuron([["a", "b"]], [["c"]], embed)
    assert out[0] == pytest.approx(2 ** -0.5)
    out = metrics.cosine_per_neuron([["a"]], [["a", "b"]], embed)
    assert out[0] == pytest.approx(0.5)


def test_mpnet_style_metric_with_a_real_sentence_model():
    from neuron_concepts.models import bundled_minilm, load_sentence_model

    model = load_sentence_model(str(bundled_minilm()))
    embed = metrics.sentence_embedder(model)
    same = metrics.cosine_per_neuron([["dog"]], [["dog"]], embed)[0]
    near = metrics.cosine_per_neuron([["puppy"]], [["dog"]], embed)[0]
    far = metrics.cosine_per_neuron([["spreadsheet"]], [["dog"]], embed)[0]
    assert same == pytest.approx(1.0, abs=1e-5) and near > far


def _tiny_evaluation(desc, concept_type):
    synonyms, lines = [["tabby", "tabby cat"], ["sports car"]], ["tabby, tabby cat", "sports car"]
    texts = evaluation_texts(list(desc.concept))
    emb = np.random.default_rng(0).normal(size=(len(texts), 8))
    lookup = metrics.lookup_embedder(texts, emb)
    return evaluate_final_layer(desc, synonyms, lines, lookup, lookup, concept_type=concept_type), lookup


def test_evaluate_final_layer_both_styles():
    import pandas as pd

    desc = pd.DataFrame({"neuron": [0, 0, 1], "rank": [0, 1, 0], "concept_id": [5, 0, 7],
                         "concept": ["cat", "tabby", "car"], "selected": [True, True, True]})
    table, lookup = _tiny_evaluation(desc, "imagenet")
    assert list(table.www_hit) == [1.0, 0.0]
    assert table.www_f1[0] == pytest.approx(0.5)  # P = 1/2, R = 1/2
    assert list(table.cd_top1_synonym_acc) == [0.0, 0.0]
    assert list(table.cd_top5_synonym_acc) == [1.0, 0.0]
    assert table.cd_top1_acc.isna().all() and table.cd_top5_acc.isna().all()
    expected = metrics.cosine_per_neuron([["car"]], [["sports car"]], lookup)[0]
    assert table.cd_clip_cos[1] == pytest.approx(expected)
    other, _ = _tiny_evaluation(desc, "file")
    assert other[["cd_top1_acc", "cd_top5_acc", "cd_top1_synonym_acc", "cd_top5_synonym_acc"]].isna().all().all()


def test_clip_dissect_accuracy_on_label_lines_is_the_class_index():
    import pandas as pd

    # imagenet_labels: concept_id is the class index; neuron 0 has class 0 second, neuron 1 first.
    desc = pd.DataFrame({"neuron": [0, 0, 1, 1], "rank": [0, 1, 0, 1], "concept_id": [1, 0, 1, 0],
                         "concept": ["sports car", "tabby, tabby cat", "sports car", "tabby, tabby cat"],
                         "selected": [True, False, True, False]})
    table, _ = _tiny_evaluation(desc, "imagenet_labels")
    assert list(table.cd_top1_acc) == [0.0, 1.0] and list(table.cd_top5_acc) == [1.0, 1.0]
    assert table.cd_top1_synonym_acc.isna().all()
    row = summary_row(table, "clip-dissect")
    assert row["top1_acc"] == pytest.approx(50.0) and np.isnan(row["top1_synonym_acc"])
    markdown = table_markdown(pd.DataFrame([row]), "t")
    assert "top5_acc" in markdown and "synonym" not in markdown


def test_evaluation_texts_are_the_concepts_and_every_class_name_once():
    names = class_texts()
    assert {"tabby", "tabby cat", "tabby, tabby cat", "crane, bird", "none"} <= set(names)
    assert names == sorted(set(names))
    texts = evaluation_texts(["Zebra", "tabby", " zebra "])
    assert texts == sorted(set(names) | {"zebra"})


def test_embed_with_known_copies_known_rows_and_embeds_only_new_texts():
    known_ids, known = ["a", "b"], np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float16)
    asked = []

    def load():
        def embed(texts):
            asked.extend(texts)
            return np.full((len(texts), 2), 0.5)
        return embed

    out = embed_with_known(["b", "x", "a", "y"], known_ids, known, load)
    np.testing.assert_array_equal(out, [[0, 1], [0.5, 0.5], [1, 0], [0.5, 0.5]])
    assert asked == ["x", "y"]  # each new text once, in order

    def unexpected_load():
        raise AssertionError("no model is needed when every text is known")

    np.testing.assert_array_equal(embed_with_known(["a"], known_ids, known, unexpected_load), [[1, 0]])
