import numpy as np
import pytest

from neuron_concepts import metrics
from neuron_concepts.evaluation import evaluate_final_layer, evaluation_texts


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


def test_cosine_per_neuron_means_over_pairs():
    vectors = {"a": [1.0, 0.0], "b": [0.0, 1.0], "c": [1.0, 1.0]}
    embed = lambda texts: np.array([vectors[t] for t in texts])
    out = metrics.cosine_per_neuron([["a", "b"]], [["c"]], embed)
    assert out[0] == pytest.approx(2 ** -0.5)
    out = metrics.cosine_per_neuron([["a"]], [["a", "b"]], embed)
    assert out[0] == pytest.approx(0.5)


def test_mpnet_style_metric_with_a_real_sentence_model():
    from neuron_concepts.models import _bundled_minilm, load_sentence_model

    model = load_sentence_model(str(_bundled_minilm()))
    embed = metrics.sentence_embedder(model)
    same = metrics.cosine_per_neuron([["dog"]], [["dog"]], embed)[0]
    near = metrics.cosine_per_neuron([["puppy"]], [["dog"]], embed)[0]
    far = metrics.cosine_per_neuron([["spreadsheet"]], [["dog"]], embed)[0]
    assert same == pytest.approx(1.0, abs=1e-5) and near > far


def test_evaluate_final_layer_both_styles():
    import pandas as pd

    desc = pd.DataFrame({"neuron": [0, 0, 1], "rank": [0, 1, 0], "concept": ["cat", "tabby", "car"],
                         "selected": [True, True, True]})
    synonyms, lines = [["tabby", "tabby cat"], ["sports car"]], ["tabby, tabby cat", "sports car"]
    texts = evaluation_texts(["cat", "tabby", "car"])
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(len(texts), 8))
    lookup = metrics.lookup_embedder(texts, emb)
    table = evaluate_final_layer(desc, synonyms, lines, lookup, lookup, imagenet_concepts=True)
    assert list(table.www_hit) == [1.0, 0.0]
    assert table.www_f1[0] == pytest.approx(0.5)  # P = 1/2, R = 1/2
    assert list(table.cd_top1_acc) == [0.0, 0.0] and list(table.cd_top5_acc) == [1.0, 0.0]
    expected = metrics.cosine_per_neuron([["car"]], [["sports car"]], lookup)[0]
    assert table.cd_clip_cos[1] == pytest.approx(expected)
