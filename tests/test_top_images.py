"""The top images of each neuron, as each method's official code selects them.

The exact tie rules are compared with ports of the official code in tests/reference
(test_www_score.py, test_clip_dissect.py); these tests hold the invariants both share.
"""

import numpy as np
import pytest
import torch

from neuron_concepts.activations import clip_dissect_top_images, www_top_images

SELECTIONS = [www_top_images, clip_dissect_top_images]


def assert_a_top_n(acts: np.ndarray, top: np.ndarray, n: int) -> None:
    """``top`` [K, n]: distinct images, best first, none left out that is larger."""
    assert top.shape == (acts.shape[1], n) and top.dtype == np.int64
    for neuron, rows in enumerate(top):
        values = acts[rows, neuron]
        assert len(set(rows.tolist())) == n
        assert np.all(np.diff(values) <= 0), "not best first"
        rest = np.delete(acts[:, neuron], rows)
        assert rest.size == 0 or rest.max() <= values[-1], "a larger activation left out"


@pytest.mark.parametrize("select", SELECTIONS)
@pytest.mark.parametrize("seed", range(3))
def test_a_top_n_with_many_ties_and_the_same_in_chunks(select, seed):
    rng = np.random.default_rng(seed)
    for _ in range(30):
        n_images, n_neurons = int(rng.integers(1, 80)), int(rng.integers(1, 30))
        n = int(rng.integers(1, n_images + 1))
        acts = rng.integers(0, 4, size=(n_images, n_neurons)).astype(np.float32)  # ties everywhere
        top = select(acts, n, chunk=7)
        assert_a_top_n(acts, top, n)
        np.testing.assert_array_equal(top, select(acts, n, chunk=1000))  # chunks change nothing


@pytest.mark.parametrize("select", SELECTIONS)
def test_without_ties_the_rules_agree_with_a_plain_descending_order(select):
    acts = np.random.default_rng(7).normal(size=(500, 40)).astype(np.float32)
    expected = np.argsort(-acts, axis=0)[:25].T
    np.testing.assert_array_equal(select(acts, 25), expected)
    np.testing.assert_array_equal(select(torch.from_numpy(acts), 25), expected)


def test_ties_at_the_cut_do_not_follow_the_lower_image_index_in_general():
    """A dead channel: every image ties. The official rules are not a stable sort, so the
    selections differ from the lower-index rule the project used before (docs/fidelity.md)."""
    acts = np.zeros((3000, 1), dtype=np.float32)
    stable = np.arange(16)
    assert not np.array_equal(np.sort(www_top_images(acts, 16)[0]), stable)
    assert_a_top_n(acts, clip_dissect_top_images(acts, 16), 16)


@pytest.mark.parametrize("select", SELECTIONS)
def test_rejects_more_images_than_the_probe_set_has(select):
    with pytest.raises(ValueError, match="at most 3"):
        select(np.zeros((3, 2)), 4)
    with pytest.raises(ValueError, match=r"\[N, K\]"):
        select(np.zeros(3), 1)
