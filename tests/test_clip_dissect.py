"""CLIP-Dissect WPMI / soft-WPMI against an independent float64 computation."""

import numpy as np
import pandas as pd
import pytest
import torch

from neuron_concepts import clip_dissect, www
from neuron_concepts.errors import ConfigError, InputDataError


def reference_scores(sim, acts, top_k, a, lam, probs, top=None):
    """docs/methods.md's formulas in float64 with plain loops (``probs``: p_r per rank).

    ``top`` [K, top_k]: each neuron's top images in rank order; None: by descending
    activation, the lower image index first among ties."""
    sim = np.asarray(sim, dtype=np.float64)
    acts = np.asarray(acts, dtype=np.float64)
    n_images, n_neurons = acts.shape
    logits = a * sim
    q = np.exp(logits - logits.max(axis=1, keepdims=True))
    q /= q.sum(axis=1, keepdims=True)
    cond = np.zeros((n_neurons, sim.shape[1]))
    for k in range(n_neurons):
        order = (sorted(range(n_images), key=lambda i: (-acts[i, k], i))[:top_k] if top is None
                 else top[k])
        for r, image in enumerate(order):
            cond[k] += np.log((1 - probs[r]) + probs[r] * q[image] + 1e-7)
    top = cond.max(axis=0)
    prior = top + np.log(np.exp(cond - top).sum(axis=0)) - np.log(n_neurons)
    return cond - lam * prior


def soft_probs(top_k, p_start=0.998, p_end=0.97):
    return [p_start - (r / top_k) * (p_start - p_end) for r in range(top_k)]


def assert_scores_close(actual, expected):
    """1e-4 relative, with the score scale as the floor (scores near 0 are differences)."""
    assert actual.dtype == np.float32 and actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, rtol=1e-4,
                               atol=1e-4 * np.abs(expected).max())


def random_inputs(seed, n_images=40, n_concepts=17, n_neurons=6):
    rng = np.random.default_rng(seed)
    sim = rng.uniform(-0.1, 0.4, size=(n_images, n_concepts)).astype(np.float32)
    acts = rng.normal(size=(n_images, n_neurons)).astype(np.float32)
    return sim, acts


def tied_activations(n_images=30, n_neurons=5, seed=1):
    """Few distinct values, so ties decide both which images are on top and their ranks."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 4, size=(n_images, n_neurons)).astype(np.float32)


def test_soft_wpmi_matches_float64_reference():
    sim, acts = random_inputs(0)
    got = clip_dissect.soft_wpmi(sim, acts, top_k=9, a=10, lam=1)
    assert_scores_close(got, reference_scores(sim, acts, 9, 10, 1, soft_probs(9)))


def test_soft_wpmi_matches_reference_at_other_parameters():
    sim, acts = random_inputs(1)
    got = clip_dissect.soft_wpmi(sim, acts, top_k=12, a=7.5, lam=0.3, p_start=0.9, p_end=0.5)
    want = reference_scores(sim, acts, 12, 7.5, 0.3, soft_probs(12, 0.9, 0.5))
    assert_scores_close(got, want)


def test_wpmi_matches_float64_reference():
    sim, acts = random_inputs(2)
    got = clip_dissect.wpmi(sim, acts, top_k=8, a=2, lam=0.6)
    assert_scores_close(got, reference_scores(sim, acts, 8, 2, 0.6, [1.0] * 8))


@pytest.mark.parametrize("method", ["soft_wpmi", "wpmi"])
def test_tied_activations_are_ranked_as_torch_topk_on_the_cpu_ranks_them(method):
    sim, _ = random_inputs(3, n_images=30)
    sim *= 4  # sharper softmax, so swapping images moves the scores visibly
    acts = tied_activations()
    top_k = 7
    probs = soft_probs(top_k) if method == "soft_wpmi" else [1.0] * top_k
    params = dict(a=10, lam=1) if method == "soft_wpmi" else dict(a=2, lam=0.6)
    got = getattr(clip_dissect, method)(sim, acts, top_k=top_k, **params)
    lower_first = reference_scores(sim, acts, top_k, params["a"], params["lam"], probs)
    topk = torch.topk(torch.from_numpy(np.asarray(acts, dtype=np.float32)), k=top_k, dim=0)
    as_topk = reference_scores(sim, acts, top_k, params["a"], params["lam"], probs,
                               top=topk.indices.T.numpy())
    # The construction must make the tie rule matter, or this test pins down nothing.
    assert np.abs(lower_first - as_topk).max() > 1e-2 * np.abs(lower_first).max()
    assert_scores_close(got, as_topk)


@pytest.mark.parametrize("method", ["soft_wpmi", "wpmi"])
def test_neuron_whose_top_images_match_one_concept_is_described_by_it(method):
    rng = np.random.default_rng(4)
    n_concepts, per_concept = 6, 10
    image_concept = np.repeat(np.arange(n_concepts), per_concept)
    sim = rng.uniform(0.15, 0.2, size=(image_concept.size, n_concepts)).astype(np.float32)
    sim[np.arange(image_concept.size), image_concept] = 0.3
    neuron_concept = np.array([3, 0, 5, 1, 4, 2])
    acts = rng.uniform(0, 1, size=(image_concept.size, n_concepts)).astype(np.float32)
    acts += 5 * (image_concept[:, None] == neuron_concept[None, :])
    scores = getattr(clip_dissect, method)(sim, acts, top_k=per_concept)
    assert clip_dissect.describe(scores, n_best=1)[:, 0].tolist() == neuron_concept.tolist()


def test_neuron_chunk_does_not_change_scores():
    sim, acts = random_inputs(5, n_neurons=7)
    results = [clip_dissect.soft_wpmi(sim, acts, top_k=10, neuron_chunk=chunk)
               for chunk in (1, 3, 7, None)]
    for other in results[1:]:
        np.testing.assert_array_equal(results[0], other)


def test_torch_and_numpy_inputs_give_the_same_scores():
    sim, acts = random_inputs(6)
    from_numpy = clip_dissect.soft_wpmi(sim, acts, top_k=10)
    from_torch = clip_dissect.soft_wpmi(torch.from_numpy(sim), torch.from_numpy(acts), top_k=10)
    assert isinstance(from_torch, np.ndarray)
    np.testing.assert_array_equal(from_numpy, from_torch)


def test_float16_similarities_match_reference_on_their_values():
    sim, acts = random_inputs(7)
    sim16 = sim.astype(np.float16)
    got = clip_dissect.soft_wpmi(sim16, acts, top_k=10)
    assert_scores_close(got, reference_scores(sim16, acts, 10, 10, 1, soft_probs(10)))
    got_torch = clip_dissect.wpmi(torch.from_numpy(sim16), acts, top_k=5)
    assert_scores_close(got_torch, reference_scores(sim16, acts, 5, 2, 0.6, [1.0] * 5))


def test_similarity_rows_of_only_the_top_images_give_the_same_scores():
    sim, acts = random_inputs(8, n_images=50)
    full = clip_dissect.soft_wpmi(sim, acts, top_k=6)
    from neuron_concepts.activations import clip_dissect_top_images
    needed = np.unique(clip_dissect_top_images(acts, 6))[::-1]  # any row order
    partial = clip_dissect.soft_wpmi(sim[needed], acts, top_k=6, sim_rows=needed)
    np.testing.assert_array_equal(full, partial)
    with pytest.raises(InputDataError, match="lacks the rows"):
        clip_dissect.soft_wpmi(sim[needed[1:]], acts, top_k=6, sim_rows=needed[1:])


def test_mismatched_image_counts_are_rejected():
    sim, acts = random_inputs(9)
    with pytest.raises(InputDataError, match="same probe set"):
        clip_dissect.soft_wpmi(sim[:-1], acts, top_k=5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_scores_match_cpu_scores():
    sim, acts = random_inputs(10, n_images=200, n_concepts=300, n_neurons=20)
    sim16 = sim.astype(np.float16)
    cpu = clip_dissect.soft_wpmi(sim16, acts, top_k=50)
    cuda = clip_dissect.soft_wpmi(sim16, acts, top_k=50, device="cuda")
    np.testing.assert_allclose(cuda, cpu, rtol=1e-5, atol=1e-5 * np.abs(cpu).max())
    on_device = clip_dissect.wpmi(torch.from_numpy(sim16).cuda(), acts, top_k=20)
    np.testing.assert_allclose(on_device, clip_dissect.wpmi(sim16, acts, top_k=20),
                               rtol=1e-5, atol=1e-5)


def test_describe_orders_by_score_and_breaks_ties_by_lower_index():
    scores = np.array([[0.1, 0.5, 0.5, 0.9, 0.5],
                       [2.0, 2.0, 2.0, 2.0, 2.0]], dtype=np.float32)
    assert clip_dissect.describe(scores, n_best=3).tolist() == [[3, 1, 2], [0, 1, 2]]


def test_description_table_has_descriptions_format_with_top1_selected():
    scores = np.array([[0.1, 0.9, 0.4], [0.7, 0.2, 0.3]], dtype=np.float32)
    table = clip_dissect.description_table(scores, ["cat", "dog", "car"], n_best=2)
    expected = pd.DataFrame({"neuron": [0, 0, 1, 1], "rank": [0, 1, 0, 1],
                             "concept_id": [1, 2, 0, 2],
                             "concept": ["dog", "car", "cat", "car"],
                             "score": np.float32([0.9, 0.4, 0.7, 0.3]),
                             "selected": [True, False, True, False],
                             "fallback": [False] * 4})
    pd.testing.assert_frame_equal(table, expected, check_dtype=False)
    # The same columns and dtypes as WWW's descriptions: one artifact format for all methods.
    www_table = www.describe_layer(scores, ["cat", "dog", "car"], alpha=0.95, keep=2)
    assert list(table.columns) == list(www_table.columns)
    assert table.dtypes.to_dict() == www_table.dtypes.to_dict()


def test_top_k_above_the_probe_set_names_the_config_key():
    clip_dissect.check_top_k(22, 22, "methods.clip_dissect.softwpmi.top_k")
    with pytest.raises(ConfigError, match=r"methods\.clip_dissect\.softwpmi\.top_k.*at most 22"):
        clip_dissect.check_top_k(100, 22, "methods.clip_dissect.softwpmi.top_k")


def test_layer_scores_dispatches_on_the_variant_name():
    rng = np.random.default_rng(3)
    sim = rng.uniform(-0.2, 0.4, size=(30, 7)).astype(np.float32)
    acts = rng.normal(size=(30, 4)).astype(np.float32)
    np.testing.assert_array_equal(
        clip_dissect.layer_scores("softwpmi", sim, acts, top_k=6, a=10, lam=1, p_start=0.99,
                                  p_end=0.9),
        clip_dissect.soft_wpmi(sim, acts, top_k=6, a=10, lam=1, p_start=0.99, p_end=0.9))
    np.testing.assert_array_equal(
        clip_dissect.layer_scores("wpmi", sim, acts, top_k=5, a=2, lam=0.6),
        clip_dissect.wpmi(sim, acts, top_k=5, a=2, lam=0.6))
    with pytest.raises(ValueError, match="unknown CLIP-Dissect variant"):
        clip_dissect.layer_scores("pmi", sim, acts, top_k=5, a=2, lam=0.6)


@pytest.mark.parametrize("method", ["soft_wpmi", "wpmi"])
def test_tvmf_is_applied_to_the_cosines_before_the_softmax(method):
    sim, acts = random_inputs(11)
    cos16 = sim.astype(np.float16)  # as the similarity artifact may store cosines
    tvmf16 = ((1 + cos16.astype(np.float64)) / (1 + 16 * (1 - cos16.astype(np.float64))) - 1)
    top_k = 8
    probs = soft_probs(top_k) if method == "soft_wpmi" else [1.0] * top_k
    a, lam = (10, 1) if method == "soft_wpmi" else (2, 0.6)
    got = getattr(clip_dissect, method)(cos16, acts, top_k=top_k, a=a, lam=lam, sim="tvmf",
                                        kappa=16)
    assert_scores_close(got, reference_scores(tvmf16, acts, top_k, a, lam, probs))
    np.testing.assert_array_equal(
        clip_dissect.layer_scores(method.replace("_", ""), cos16, acts, top_k=top_k, a=a,
                                  lam=lam, p_start=0.998, p_end=0.97, sim="tvmf", kappa=16),
        got)


@pytest.mark.parametrize("variant", ["softwpmi", "wpmi"])
def test_all_ks_from_one_pass_equal_one_run_per_k(variant):
    rng = np.random.default_rng(3)
    sim = rng.normal(0.2, 0.05, size=(40, 30)).astype(np.float32)
    acts = rng.integers(0, 5, size=(40, 12)).astype(np.float32)  # ties between images
    kwargs = dict(a=10.0, lam=1.0, p_start=0.998, p_end=0.97, sim="tvmf", kappa=16.0)
    # Ties cut differently at each k: topk at 5 is not the first 5 of topk at 16.
    assert clip_dissect.top_images_over_k(acts, [5, 10, 16])[1] == [0, 5, 15]
    together = clip_dissect.layer_scores_over_k(variant, sim, acts, [16, 5, 10], **kwargs)
    assert sorted(together) == [5, 10, 16]
    for k, scores in together.items():
        alone = clip_dissect.layer_scores(variant, sim, acts, top_k=k, **kwargs)
        np.testing.assert_allclose(scores, alone, rtol=0, atol=1e-6)
