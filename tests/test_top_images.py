"""The top images of each neuron: a partial selection that orders exactly as a stable sort."""

import numpy as np
import pytest

from neuron_concepts.activations import top_image_indices


def stable_sort_top(acts, n):
    """The definition: a stable argsort of the negated activations, first n per neuron."""
    return np.argsort(-np.asarray(acts, dtype=np.float64), axis=0, kind="stable")[:n].T


@pytest.mark.parametrize("seed", range(5))
def test_equals_a_stable_sort_with_many_ties(seed):
    rng = np.random.default_rng(seed)
    for _ in range(60):
        n_images, n_neurons = rng.integers(1, 80), rng.integers(1, 30)
        n = int(rng.integers(1, n_images + 1))
        acts = rng.integers(0, 4, size=(n_images, n_neurons)).astype(np.float32)  # ties everywhere
        np.testing.assert_array_equal(top_image_indices(acts, n, chunk=7), stable_sort_top(acts, n))


def test_ties_at_the_boundary_take_the_lower_image_index():
    acts = np.array([[1.0], [3.0], [2.0], [2.0], [2.0], [0.5]])
    # 3.0 (image 1), then three images tie at 2.0 for two places: images 2 and 3.
    np.testing.assert_array_equal(top_image_indices(acts, 3), [[1, 2, 3]])


def test_continuous_values_integers_and_nan():
    rng = np.random.default_rng(7)
    acts = rng.normal(size=(500, 40)).astype(np.float32)
    np.testing.assert_array_equal(top_image_indices(acts, 25), stable_sort_top(acts, 25))
    counts = rng.integers(0, 10, size=(50, 5)).astype(np.uint8)  # negation must not wrap
    np.testing.assert_array_equal(top_image_indices(counts, 6), stable_sort_top(counts, 6))
    acts[3, 0] = np.nan
    np.testing.assert_array_equal(top_image_indices(acts, 500), stable_sort_top(acts, 500))
    np.testing.assert_array_equal(top_image_indices(acts, 10), stable_sort_top(acts, 10))


def test_rejects_more_images_than_the_probe_set_has():
    with pytest.raises(ValueError, match="at most 3"):
        top_image_indices(np.zeros((3, 2)), 4)
