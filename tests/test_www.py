import numpy as np
import pytest

from neuron_concepts.activations import top_image_indices
from neuron_concepts.similarity import cosine, tvmf
from neuron_concepts.www import concept_scores, describe_layer, layer_scores, select_concepts


def test_concept_scores_known_answer():
    # Two top images along x and y; concept 0 is x, concept 1 is y, concept 2 is -x.
    images = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    concepts = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]])
    template = np.array([0.0, 0.0, 1.0])  # orthogonal to both images: base similarity 0
    np.testing.assert_allclose(concept_scores(images, concepts, template), [0.5, 0.5, -0.5], atol=1e-6)


def test_concept_scores_normalises_inputs_and_subtracts_template():
    images = np.array([[2.0, 0.0]])
    concepts = np.array([[3.0, 0.0], [0.0, 5.0]])
    template = np.array([1.0, 1.0])  # cos with the image = 1/sqrt(2)
    np.testing.assert_allclose(concept_scores(images, concepts, template),
                               [1 - 2 ** -0.5, -(2 ** -0.5)], atol=1e-6)


def test_concept_scores_tvmf_applies_function_before_mean():
    rng = np.random.default_rng(0)
    images, concepts, template = rng.normal(size=(3, 8)), rng.normal(size=(4, 8)), rng.normal(size=8)
    expected = (np.asarray(tvmf(cosine(images, concepts), 16)) -
                np.asarray(tvmf(cosine(images, template[None]), 16))).mean(0)
    np.testing.assert_allclose(concept_scores(images, concepts, template, sim="tvmf"), expected, atol=1e-6)


def test_select_concepts_threshold_and_order():
    scores = [0.50, 0.10, 0.48, 0.476, 0.474]
    assert select_concepts(scores, alpha=0.95) == [0, 2, 3]  # 0.95 * 0.5 = 0.475
    assert select_concepts(scores, alpha=1.0) == [0]


def test_select_concepts_falls_back_to_argmax_when_all_scores_negative():
    assert select_concepts([-0.3, -0.1, -0.2]) == [1]


def test_layer_scores_equals_per_neuron_concept_scores():
    rng = np.random.default_rng(2)
    n_images, n_neurons, n_images_top = 12, 5, 4
    image_emb = rng.normal(size=(n_images, 16))
    concept_emb, template = rng.normal(size=(6, 16)), rng.normal(size=16)
    acts = rng.normal(size=(n_images, n_neurons))
    sims = np.asarray(cosine(image_emb, concept_emb))
    base = np.asarray(cosine(image_emb, template[None]))[:, 0]
    batched = layer_scores(sims, base, acts, n_images_top, neuron_chunk=2)
    top = top_image_indices(acts, n_images_top)
    for k in range(n_neurons):
        np.testing.assert_allclose(batched[k], concept_scores(image_emb[top[k]], concept_emb, template),
                                   atol=1e-5)


def test_top_images_break_ties_by_lower_index():
    acts = np.array([[1.0, 0.0], [3.0, 2.0], [3.0, 2.0], [0.0, 2.0]])
    np.testing.assert_array_equal(top_image_indices(acts, 2), [[1, 2], [1, 2]])
    with pytest.raises(ValueError, match="at most 4"):
        top_image_indices(acts, 5)


def test_describe_layer_marks_selection_as_prefix():
    scores = np.array([[0.5, 0.1, 0.49], [-0.2, -0.1, -0.3]], dtype=np.float32)
    table = describe_layer(scores, ["a", "b", "c"], alpha=0.95, keep=3)
    first = table[table.neuron == 0]
    assert list(first.concept) == ["a", "c", "b"] and list(first.selected) == [True, True, False]
    second = table[table.neuron == 1]
    assert list(second[second.selected].concept) == ["b"] and second.fallback.all()
