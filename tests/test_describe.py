"""The description driver (neuron_concepts.describe), GPU-budget chunking and the job sizes.

The chunked path is the one a GPU runs when the top images' cosine rows do not fit
scale.gpu_mem_mb: with a tiny budget it runs on the CPU too (rows copied per chunk of
neurons), and must give exactly the unchunked scores: every neuron's score is computed from
the same rows in the same order.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from neuron_concepts import clip_dissect, describe, io, resources, www
from neuron_concepts.activations import www_top_images
from neuron_concepts.errors import ConfigError
from neuron_concepts.similarity import gather_row_chunks, plan_row_chunks

N, C, K = 120, 50, 23


@pytest.fixture(scope="module")
def inputs():
    rng = np.random.default_rng(3)
    cos = rng.normal(0.22, 0.05, (N, C)).astype(np.float32)
    base = rng.normal(0.2, 0.03, N).astype(np.float32)
    acts = rng.standard_normal((N, K)).astype(np.float32)
    acts[:, 5] = 0.0  # a neuron whose top images are all ties
    return cos, base, acts


def test_row_chunks_cover_every_neuron_within_the_row_limit():
    rows = np.array([[0, 1, 2], [2, 3, 4], [4, 5, 6], [0, 1, 2], [7, 7, 8]])
    chunks = plan_row_chunks(rows, max_rows=5)
    assert chunks == [slice(0, 2), slice(2, 3), slice(3, 5)]  # {0..4}, {4..6}, {0..2, 7, 8}
    for chunk in chunks:
        assert np.unique(rows[chunk]).size <= 5


def test_row_chunks_refuse_a_neuron_larger_than_the_limit():
    with pytest.raises(ValueError, match="one neuron needs 3 rows"):
        plan_row_chunks(np.array([[0, 1, 2]]), max_rows=2)


def test_gathered_chunks_hold_each_neurons_rows(inputs):
    cos, _, acts = inputs
    top = np.argsort(-acts, axis=0, kind="stable")[:7].T  # [K, 7]
    budget = 2 * 30 * C * 4  # 30 rows per chunk (half the budget)
    seen = 0
    for neurons, store, positions in gather_row_chunks(cos, top, "cpu", budget):
        assert store.shape[0] <= 30
        np.testing.assert_array_equal(store.numpy()[positions], cos[top[neurons]])
        assert neurons.start == seen
        seen = neurons.stop
    assert seen == K


@pytest.mark.parametrize("sim", ["cos", "tvmf"])
def test_www_chunked_to_a_tiny_budget_equals_unchunked_exactly(inputs, sim):
    cos, base, acts = inputs
    whole = www.layer_scores(cos, base, acts, 7, "cpu", sim=sim)
    budget = 2 * 20 * C * 4 + 4 * www.BLOCK_COPIES * 400 + 8 * N + 16 * K * 7
    block, rows_budget = www.device_plan(budget, False, N, K * 7)
    assert len(plan_row_chunks(www_top_images(acts, 7), rows_budget // 2 // (C * 4))) > 3
    chunked = www.layer_scores(cos, base, acts, 7, "cpu", sim=sim, memory_budget=budget)
    np.testing.assert_array_equal(chunked, whole)


@pytest.mark.parametrize("variant,sim", [("softwpmi", "cos"), ("wpmi", "tvmf")])
def test_clip_dissect_chunked_to_a_tiny_budget_equals_unchunked_exactly(inputs, variant, sim):
    cos, _, acts = inputs
    args = dict(variant=variant, clip_sim=cos, activations=acts, ks=[3, 8, 12], a=10, lam=1,
                p_start=0.998, p_end=0.97, sim=sim, device="cpu")
    whole = clip_dissect.layer_scores_over_k(**args)
    # The dead neuron's ties are cut differently at each k: the ranks of 3, 8 and 12 side by side.
    top, starts = clip_dissect.top_images_over_k(acts, [3, 8, 12])
    assert starts == [0, 3, 11]
    # The log-likelihoods ([3, K, C]) take more than half of it: they stay on the host.
    budget = 3 * 4 * K * C + 2 * 25 * C * 4 + 28 * top.size
    plan = clip_dissect.device_plan(budget, clip_dissect.torch.device("cpu"), K, C, 3, top.size)
    assert plan.out_device.type == "cpu"
    assert len(plan_row_chunks(top, plan.rows_bytes // 2 // (C * 4))) > 3
    chunked = clip_dissect.layer_scores_over_k(**args, memory_budget=budget)
    assert chunked.keys() == whole.keys()
    for k in whole:
        np.testing.assert_array_equal(chunked[k], whole[k])


def test_a_budget_without_room_for_rows_names_the_setting(inputs):
    cos, base, acts = inputs
    with pytest.raises(ConfigError, match="scale.gpu_mem_mb"):
        www.layer_scores(cos, base, acts, 7, "cpu", memory_budget=64)


def test_driver_writes_each_method_as_the_family_scores_it(tmp_path, inputs):
    cos, base, acts = inputs
    io.save_similarity(tmp_path / "cos.npz", prompt=cos, base=base, raw=cos)
    io.save_activations(tmp_path / "acts.npz", acts, ids=[f"i{i}" for i in range(N)])
    texts = pd.Series([f"c{i}" for i in range(C)])
    layer = dict(layer="fc", activations=str(tmp_path / "acts.npz"))
    www_views = [dict(view="center", similarity=str(tmp_path / "cos.npz"), layers=[dict(
        layer, methods=[dict(method=f"www-{s}", sim=[s, 16.0], path=str(tmp_path / f"www-{s}.parquet"))
                        for s in ("cos", "tvmf")])])]
    written = describe.describe_layers("www", www_views, texts, dict(n_images=7, alpha=0.9))
    assert written == [str(tmp_path / "www-cos.parquet"), str(tmp_path / "www-tvmf.parquet")]
    expected = www.describe_layer(www.layer_scores(cos, base, acts, 7, sim="tvmf"), texts, 0.9)
    pd.testing.assert_frame_equal(io.load_descriptions(written[1]), expected)
    assert dict(expected.dtypes.astype(str)) == io.DESCRIPTION_DTYPES

    scoring = dict(variant="softwpmi", a=10, lam=1, p_start=0.998, p_end=0.97, sim="cos",
                   kappa=16.0)
    cd_views = [dict(view="center", similarity=str(tmp_path / "cos.npz"), layers=[dict(
        layer, methods=[dict(method=f"k{k}", scoring=dict(scoring, top_k=k),
                             path=str(tmp_path / f"k{k}.parquet")) for k in (4, 9)])])]
    describe.describe_layers("clip_dissect", cd_views, texts, dict(n_best=3))
    scores = clip_dissect.layer_scores(clip_sim=cos, activations=acts, top_k=9, **scoring)
    pd.testing.assert_frame_equal(io.load_descriptions(tmp_path / "k9.parquet"),
                                  clip_dissect.description_table(scores, texts, 3))


def test_host_formula_counts_one_layer_and_the_scores_of_one_pass():
    one = resources.description_host_bytes(50_000, 2048, 82_115, 40)
    assert one - resources.FIXED_HOST_BYTES == (4 * 50_000 * 2048 + 2 * 4 * 2048 * 82_115
                                                + 4 * 50_000 * 82_115)
    four_ks = resources.description_host_bytes(50_000, 2048, 82_115, 100, n_ks=4)
    assert four_ks - one == 3 * 4 * 2048 * 82_115
    # A layer job touches only its own layer's top images' rows.
    assert (resources.description_host_bytes(50_000, 64, 1000, 40)
            < resources.description_host_bytes(50_000, 64, 1000, 40, all_neurons=5 * 64))


def test_gpu_declaration_is_capped_at_the_card(tmp_path):
    io.save_activations(tmp_path / "acts.npz", np.zeros((50, 8), np.float32),
                        ids=[f"i{i}" for i in range(50)])
    io.save_similarity(tmp_path / "cos.npz", raw=np.zeros((50, 30), np.float32))
    args = ([tmp_path / "acts.npz"], [tmp_path / "cos.npz"], 10, 1)
    need = resources.description_gpu_mem_mb(*args, gpu_mem_mb=10 ** 6)
    assert need == -(-resources.description_gpu_bytes(50, 8, 30, 10, 1) // resources.MIB)
    assert resources.description_gpu_mem_mb(*args, gpu_mem_mb=10 ** 6, attempt=2) == 2 * need
    assert resources.description_gpu_mem_mb(*args, gpu_mem_mb=2000, attempt=3) == 2000
