import numpy as np
import pytest
import torch

from neuron_concepts.similarity import cosine, parse_sim, sim_name, similarity_matrix, tvmf


def test_cosine_of_known_vectors():
    a = np.array([[1.0, 0.0], [3.0, 4.0]])
    b = np.array([[0.0, 2.0], [1.0, 0.0], [-1.0, 0.0]])
    expected = np.array([[0.0, 1.0, -1.0], [0.8, 0.6, -0.6]])
    np.testing.assert_allclose(np.asarray(cosine(a, b)), expected, atol=1e-6)


def test_cosine_accepts_torch_and_numpy_alike():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(4, 8)), rng.normal(size=(5, 8))
    np.testing.assert_allclose(np.asarray(cosine(torch.tensor(a), b)), np.asarray(cosine(a, b)), atol=1e-6)


def test_tvmf_known_points():
    c = np.array([-1.0, 0.0, 0.5, 1.0])
    np.testing.assert_allclose(np.asarray(tvmf(c, 0.0)), c, atol=1e-7)  # kappa 0 is the cosine
    out = np.asarray(tvmf(c, 16.0))
    assert out[-1] == pytest.approx(1.0) and out[0] == pytest.approx(-1.0)
    assert out[1] == pytest.approx(1 / 17 - 1)  # (1 + 0) / (1 + 16) - 1
    assert out[2] == pytest.approx(1.5 / 9 - 1)  # (1.5) / (1 + 16 * 0.5) - 1


def test_tvmf_is_monotonic_and_narrower_than_cosine():
    c = torch.linspace(-1, 1, 201)
    f = tvmf(c, 16.0)
    assert torch.all(f[1:] > f[:-1])
    assert torch.all(f[1:-1] <= c[1:-1])


def test_sim_names_round_trip():
    assert sim_name("tvmf", 16) == "tvmf-k16"
    assert parse_sim("tvmf-k16") == ("tvmf", 16.0)
    assert parse_sim("cos") == ("cos", 0.0)
    with pytest.raises(ValueError, match="unknown similarity"):
        parse_sim("dot")


def test_similarity_matrix_equals_tvmf_of_cosine_in_chunks():
    rng = np.random.default_rng(1)
    images, texts = rng.normal(size=(7, 16)), rng.normal(size=(11, 16))
    expected = np.asarray(tvmf(cosine(images, texts), 4.0))
    out = similarity_matrix(images, texts, "tvmf", 4.0, chunk=3)
    assert out.dtype == np.float16 and out.shape == (7, 11)
    np.testing.assert_allclose(out.astype(np.float32), expected, atol=2e-3)
