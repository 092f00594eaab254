import numpy as np
import pytest
import torch

from neuron_concepts import io
from neuron_concepts.activations import www_top_images
from neuron_concepts.errors import InputDataError
from neuron_concepts.similarity import cosine, cosine_matrices, tvmf
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
    top = www_top_images(acts, n_images_top)
    for k in range(n_neurons):
        np.testing.assert_allclose(batched[k], concept_scores(image_emb[top[k]], concept_emb, template),
                                   atol=1e-5)


def test_describe_layer_marks_selection_as_prefix():
    scores = np.array([[0.5, 0.1, 0.49], [-0.2, -0.1, -0.3]], dtype=np.float32)
    table = describe_layer(scores, ["a", "b", "c"], alpha=0.95, keep=3)
    first = table[table.neuron == 0]
    assert list(first.concept) == ["a", "c", "b"] and list(first.selected) == [True, True, False]
    second = table[table.neuron == 1]
    assert list(second[second.selected].concept) == ["b"] and second.fallback.all()


def test_layer_scores_applies_tvmf_to_the_cosines_before_the_mean():
    rng = np.random.default_rng(3)
    image_emb = rng.normal(size=(15, 16))
    concept_emb, template = rng.normal(size=(6, 16)), rng.normal(size=16)
    acts = rng.normal(size=(15, 4))
    cos = np.asarray(cosine(image_emb, concept_emb))
    base = np.asarray(cosine(image_emb, template[None]))[:, 0]
    batched = layer_scores(cos, base, acts, 5, sim="tvmf", kappa=16, neuron_chunk=3)
    top = www_top_images(acts, 5)
    for k in range(4):
        np.testing.assert_allclose(
            batched[k], concept_scores(image_emb[top[k]], concept_emb, template, sim="tvmf"),
            atol=1e-6)


def test_layer_scores_of_float16_cosines_equal_those_of_their_float32_values():
    rng = np.random.default_rng(4)
    cos16 = rng.uniform(0.15, 0.35, size=(20, 9)).astype(np.float16)
    base16 = rng.uniform(0.15, 0.35, size=20).astype(np.float16)
    acts = rng.normal(size=(20, 6))
    for sim in ("cos", "tvmf"):
        np.testing.assert_array_equal(
            layer_scores(cos16, base16, acts, 4, sim=sim),
            layer_scores(cos16.astype(np.float32), base16.astype(np.float32), acts, 4, sim=sim))
    assert cos16.dtype == np.float16  # the stored matrix is read, not converted in place


def test_layer_scores_names_mismatched_inputs():
    with pytest.raises(InputDataError, match="same probe set"):
        layer_scores(np.zeros((5, 3)), np.zeros(4), np.zeros((5, 2)), 2)


# ---------------------------------------------------------------- CLIP-like fidelity


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def clip_like(seed: int, n_images: int = 500, n_concepts: int = 2000, n_neurons: int = 400,
              dim: int = 512, n_groups: int = 50):
    """Unit image and text embeddings whose cosines lie in about 0.15-0.35, like real CLIP's.

    CLIP's embeddings share a large common direction (so every image-text cosine is about
    0.25) and differ by a small content part: concepts come in related groups, an image
    mixes a few concepts, and a neuron responds to a direction near one concept.
    """
    rng = np.random.default_rng(seed)
    shared = unit(rng.normal(size=dim))
    groups = unit(rng.normal(size=(n_groups, dim)))
    concepts = unit(groups[rng.integers(0, n_groups, n_concepts)]
                    + 0.8 * unit(rng.normal(size=(n_concepts, dim))))
    template = unit(rng.normal(size=dim))
    mixture = rng.dirichlet(np.full(n_concepts, 0.02), size=n_images)
    content = unit(mixture @ concepts + 0.08 * unit(rng.normal(size=(n_images, dim))))

    def embed(part, n):
        return unit(0.3 * shared + 0.2 * part + 0.45 * unit(rng.normal(size=(n, dim))))

    images = embed(content, n_images)
    prompts = embed(unit(0.5 * template + concepts), n_concepts)
    base = embed(template[None], 1)[0]
    directions = unit(rng.normal(size=(n_neurons, dim))
                      + 2 * concepts[rng.integers(0, n_concepts, n_neurons)])
    return images, prompts, base, (content @ directions.T).astype(np.float32)


def selected_sets(table) -> list[frozenset]:
    chosen = table[table["selected"]]
    return [frozenset(chosen.loc[chosen["neuron"] == k, "concept_id"])
            for k in range(table["neuron"].max() + 1)]


def float64_selection(images, prompts, base, acts, n, alpha, kappa) -> list[frozenset]:
    """docs/methods.md's WWW selection computed in float64 from the stored embeddings."""
    images, prompts, base = (unit(np.asarray(x, dtype=np.float64)) for x in (images, prompts, base))
    f = lambda c: (1 + c) / (1 + kappa * (1 - c)) - 1  # noqa: E731
    to_prompts, to_base = f(images @ prompts.T), f(images @ base)
    out = []
    order = np.argsort(-acts.astype(np.float64), axis=0, kind="stable")[:n].T
    for rows in order:
        scores = to_prompts[rows].mean(0) - to_base[rows].mean()
        best = scores.max()
        out.append(frozenset([int(np.argmax(scores))]) if best <= 0
                   else frozenset(np.flatnonzero(scores >= alpha * best).tolist()))
    return out


def test_tvmf_selection_from_stored_artifacts_equals_float64_on_clip_like_embeddings(tmp_path):
    """The pipeline's own path (float16 embeddings, stored cosines, t-vMF in float32 at
    scoring) selects, for every neuron, what a float64 recomputation selects; t-vMF values
    stored as float16 (the old artifacts) did not."""
    images, prompts, base, acts = clip_like(0)
    names = [f"c{j}" for j in range(len(prompts))]
    io.write_embeddings(tmp_path / "image.npz", images, ids=np.arange(len(images)))
    io.write_embeddings(tmp_path / "text.npz", prompts, ids=np.arange(len(prompts)),
                        base=base.astype(np.float16))
    stored_images = io.read_embeddings(tmp_path / "image.npz")
    stored_texts = io.read_embeddings(tmp_path / "text.npz")
    io.write_npz(tmp_path / "cos.npz",
                 **cosine_matrices(stored_images["emb"], stored_texts, ["prompt", "base"]))
    sims = io.read_npz(tmp_path / "cos.npz")
    assert 0.1 < np.percentile(sims["prompt"], 1) and np.percentile(sims["prompt"], 99) < 0.4

    scores = layer_scores(sims["prompt"], sims["base"], acts, 40, sim="tvmf", kappa=16)
    ours = selected_sets(describe_layer(scores, names, alpha=0.95))
    reference = float64_selection(stored_images["emb"], stored_texts["emb"], stored_texts["base"],
                                  acts, 40, 0.95, 16)
    assert ours == reference

    # The old artifacts: t-vMF values (near -0.9) rounded to float16, averaged as they were.
    old = {key: np.asarray(tvmf(value, 16)).astype(np.float16) for key, value in sims.items()}
    old_sets = selected_sets(describe_layer(layer_scores(old["prompt"], old["base"], acts, 40),
                                            names, alpha=0.95))
    changed = np.mean([a != b for a, b in zip(old_sets, reference)])
    assert changed > 0.01  # the test can tell the two apart


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_layer_scores_equal_cpu_layer_scores():
    rng = np.random.default_rng(5)
    cos16 = rng.uniform(0.15, 0.35, size=(200, 300)).astype(np.float16)
    base16 = rng.uniform(0.15, 0.35, size=200).astype(np.float16)
    acts = rng.normal(size=(200, 30))
    for sim in ("cos", "tvmf"):
        np.testing.assert_allclose(layer_scores(cos16, base16, acts, 10, device="cuda", sim=sim),
                                   layer_scores(cos16, base16, acts, 10, sim=sim), atol=1e-6)
