import numpy as np
import pytest
import torch

from neuron_concepts import io, resources
from neuron_concepts.errors import InputDataError
from neuron_concepts.similarity import (BLOCK_BYTES, GPU_RESERVED_BYTES, block_rows, cosine,
                                       cosine_matrices, cosine_row_blocks, gather_rows,
                                       similarity_fn, similarity_matrix, tvmf)


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


@pytest.mark.parametrize("rows", [1, 3, 10, None])  # 7 images: 7 blocks, 3 (the last short), 1
def test_similarity_matrix_stores_cosines_only_in_blocks_of_images(rows):
    rng = np.random.default_rng(1)
    images, texts = rng.normal(size=(7, 16)), rng.normal(size=(11, 16))
    out = similarity_matrix(images, texts, rows=rows)
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


# ---------------------------------------------------------------- streamed similarity files


def clip_like(n_images=7, n_concepts=11, dim=16, seed=3):
    """float16 unit image embeddings and text embeddings with the three parts."""
    rng = np.random.default_rng(seed)

    def unit(*shape):
        x = rng.normal(size=shape)
        return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float16)

    return unit(n_images, dim), {"emb": unit(n_concepts, dim), "base": unit(dim),
                                 "raw": unit(n_concepts, dim)}


@pytest.mark.parametrize("rows", [1, 3, 10])  # one row a block; 7 rows in 3s; N < rows
def test_streamed_similarity_file_is_what_savez_writes_of_the_matrices(tmp_path, rows):
    images, texts = clip_like()
    keys = ["prompt", "base", "raw"]
    blocks = cosine_row_blocks(images, texts, keys, rows=rows)
    io.save_similarity(tmp_path / "cos.npz", **blocks)
    matrices = cosine_matrices(images, texts, keys, rows=rows)  # the same blocks, in memory
    with open(tmp_path / "savez.npz", "wb") as f:
        np.savez(f, **matrices)
    assert (tmp_path / "cos.npz").read_bytes() == (tmp_path / "savez.npz").read_bytes()
    assert io.recorded_sha256(tmp_path / "cos.npz") == io.sha256_file(tmp_path / "savez.npz")
    mapped = io.load_similarity(tmp_path / "cos.npz", mmap=True)
    assert isinstance(mapped.prompt, np.memmap) and isinstance(mapped.raw, np.memmap)
    for key in keys:
        np.testing.assert_array_equal(getattr(mapped, key), matrices[key])
    np.testing.assert_allclose(matrices["prompt"], np.asarray(cosine(images, texts["emb"])), atol=1e-6)
    np.testing.assert_allclose(matrices["base"], np.asarray(cosine(images, texts["base"]))[:, 0],
                               atol=1e-6)


def test_blocks_are_made_on_demand_one_at_a_time():
    images, texts = clip_like(n_images=5)
    matrix = cosine_row_blocks(images, texts, ["raw"], rows=2)["raw"]
    assert matrix.shape == (5, 11) and matrix.dtype == np.float32
    assert [len(block) for block in matrix.blocks] == [2, 2, 1]


def test_float16_cosines_live_in_a_file_named_so(tmp_path):
    images, texts = clip_like()
    matrices = cosine_matrices(images, texts, ["prompt", "base"])
    io.save_similarity(tmp_path / "cos-f16.npz", **cosine_row_blocks(images, texts, ["prompt", "base"]))
    half = io.load_similarity(tmp_path / "cos-f16.npz", mmap=True)
    assert half.prompt.dtype == np.float16 and half.base.dtype == np.float16
    np.testing.assert_array_equal(half.prompt, matrices["prompt"].astype(np.float16))
    np.testing.assert_array_equal(half.base, matrices["base"].astype(np.float16))
    # A float32 file under the float16 name, and the other way round, are refused by name.
    (tmp_path / "f32").mkdir(), (tmp_path / "f16").mkdir()
    io.write_npz(tmp_path / "f32" / "cos-f16.npz", **matrices)
    (tmp_path / "cos-f16.npz").rename(tmp_path / "f16" / "cos.npz")
    for path, found, expected in [(tmp_path / "f32" / "cos-f16.npz", "float32", "float16"),
                                  (tmp_path / "f16" / "cos.npz", "float16", "float32")]:
        with pytest.raises(InputDataError) as error:
            io.load_similarity(path)
        assert str(path) in str(error.value)
        assert f"dtype {found} where {expected}" in str(error.value)


def test_blocks_that_do_not_make_the_shape_leave_no_file(tmp_path):
    short = io.RowBlocks((4, 3), np.float32, iter([np.zeros((3, 3), np.float32)]))
    with pytest.raises(ValueError, match="hold 3 rows where its shape"):
        io.save_similarity(tmp_path / "cos.npz", raw=short)
    long = io.RowBlocks((2, 3), np.float32, iter([np.zeros((3, 3), np.float32)]))
    with pytest.raises(ValueError, match="does not fit shape"):
        io.save_similarity(tmp_path / "cos.npz", raw=long)
    assert list(tmp_path.iterdir()) == []


def test_block_rows_fit_the_host_block_and_the_gpu_budget():
    assert block_rows(1000, 512) == BLOCK_BYTES // 4000
    assert block_rows(10 ** 9, 512) == 1  # at least one row
    rows = block_rows(82_115, 768, gpu_mem_mb=1300)
    gpu = GPU_RESERVED_BYTES + 4 * 82_115 * 768 + 4 * rows * (82_115 + 768)
    assert rows < block_rows(82_115, 768) and gpu <= 1300 * 2 ** 20
    assert gpu + 4 * (82_115 + 768) > 1300 * 2 ** 20  # the most rows that fit
    with pytest.raises(ValueError, match="scale.gpu_mem_mb"):
        block_rows(82_115, 768, gpu_mem_mb=1200)


def test_similarity_resources_come_from_the_input_headers(tmp_path):
    n_images, n_concepts, dim = 30, 50, 8
    images, texts = clip_like(n_images, n_concepts, dim)
    io.save_image_embeddings(tmp_path / "img.npz", images, ids=[f"i{i}" for i in range(n_images)])
    io.save_text_embeddings(tmp_path / "txt.npz", ids=np.arange(n_concepts), prompt=texts["emb"],
                            base=texts["base"], raw=texts["raw"])
    needs = resources.similarity_resources(
        [(tmp_path / "img.npz", tmp_path / "txt.npz", ["prompt", "base"])], gpu_mem_mb=16000)
    host = (2 * n_images * dim + 2 * 2 * n_concepts * dim + 8 * n_concepts * dim + 2 * BLOCK_BYTES
            + 8 * n_images * dim + resources.FIXED_HOST_BYTES)
    gpu = GPU_RESERVED_BYTES + 4 * n_concepts * dim + 4 * n_images * (n_concepts + dim)
    assert needs == dict(mem_mb=-(-host // 2 ** 20), gpu_mem_mb=-(-gpu // 2 ** 20), runtime=11)
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        resources.similarity_resources([(tmp_path / "missing.npz", tmp_path / "txt.npz", ["raw"])], 16000)


@pytest.mark.parametrize("dim", [512, 768])
def test_the_papers_similarity_job_declares_well_under_16_gb(dim):
    host = resources.similarity_host_bytes(50_000, 82_115, dim, text_parts=2)
    assert host < 4 * 2 ** 30 and host < 4 * 50_000 * 82_115 / 4  # a quarter of one matrix
    assert resources.similarity_gpu_bytes(50_000, 82_115, dim, gpu_mem_mb=16_000) < 16_000 * 2 ** 20
