import numpy as np
import pytest
import torch

from neuron_concepts.similarity import (cosine, cosine_matrices, gather_rows, similarity_fn,
                                       similarity_matrix, tvmf)


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


def test_tvmf_widens_float16_and_keeps_float64():
    c16 = torch.tensor([0.25, 0.3], dtype=torch.float16)
    assert tvmf(c16).dtype == torch.float32  # float16 steps near -0.9 are too coarse
    assert tvmf(np.array([0.25, 0.3])).dtype == torch.float64
    assert tvmf(np.array([0.25], dtype=np.float32)).dtype == torch.float32


def test_similarity_fn_names_the_kinds():
    c = torch.tensor([0.0, 0.5])
    assert torch.equal(similarity_fn("cos")(c), c)
    torch.testing.assert_close(similarity_fn("tvmf", 16)(c), tvmf(c, 16))
    with pytest.raises(ValueError, match="tvmf.kappa"):
        similarity_fn("tvmf", -1)
    with pytest.raises(ValueError, match="unknown similarity"):
        similarity_fn("dot")


def test_similarity_matrix_stores_cosines_only_in_chunks():
    rng = np.random.default_rng(1)
    images, texts = rng.normal(size=(7, 16)), rng.normal(size=(11, 16))
    out = similarity_matrix(images, texts, chunk=3)
    assert out.dtype == np.float32 and out.shape == (7, 11)
    np.testing.assert_allclose(out, np.asarray(cosine(images, texts)), atol=1e-6)


def test_cosine_matrices_hold_the_requested_keys():
    rng = np.random.default_rng(2)
    images = rng.normal(size=(5, 8))
    texts = {"emb": rng.normal(size=(3, 8)), "base": rng.normal(size=8),
             "raw": rng.normal(size=(4, 8))}
    out = cosine_matrices(images, texts, ["prompt", "base"])
    assert sorted(out) == ["base", "prompt"]
    assert out["prompt"].shape == (5, 3) and out["base"].shape == (5,)
    np.testing.assert_allclose(out["base"], np.asarray(cosine(images, texts["base"][None]))[:, 0],
                               atol=1e-6)
    assert cosine_matrices(images, texts, ["raw"])["raw"].shape == (5, 4)
    with pytest.raises(ValueError, match="unknown similarity matrices"):
        cosine_matrices(images, texts, ["tvmf"])


def test_gather_rows_uses_a_cpu_matrix_in_place():
    matrix = np.arange(12, dtype=np.float16).reshape(4, 3)
    rows = np.array([[3, 1], [1, 0]])
    store, positions = gather_rows(matrix, rows)
    assert store.dtype == torch.float16  # nothing converted here
    np.testing.assert_array_equal(store[torch.as_tensor(positions)].numpy(), matrix[rows])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gather_rows_copies_only_the_named_rows_to_a_gpu():
    matrix = np.arange(12, dtype=np.float16).reshape(4, 3)
    rows = np.array([[3, 1], [1, 3]])
    store, positions = gather_rows(matrix, rows, "cuda")
    assert store.shape == (2, 3) and store.dtype == torch.float16 and store.is_cuda
    np.testing.assert_array_equal(store[torch.as_tensor(positions, device="cuda")].cpu().numpy(),
                                  matrix[rows])
