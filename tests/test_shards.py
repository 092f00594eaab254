"""Image-stage shards: row ranges, their names and paths, the join, the file count."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from neuron_concepts import data, io, names, paths, shards
from neuron_concepts.errors import InputDataError


def test_shards_hold_whole_batches_and_cover_every_row_once():
    assert shards.shard_ranges(22, 8, 4) == [(0, 8), (8, 16), (16, 22)]
    # 10 images a job in batches of 4: shards of 12, so their batches are the unsharded ones
    assert shards.shard_ranges(30, 10, 4) == [(0, 12), (12, 24), (24, 30)]
    assert shards.shard_ranges(22, 0, 4) == [(0, 22)]      # 0: one job
    assert shards.shard_ranges(22, 100, 4) == [(0, 22)]    # fits one job
    assert shards.shard_ranges(0, 8, 4) == [(0, 0)]        # a missing folder: one (failing) job
    for n, per_job, batch in [(1000, 64, 32), (999, 7, 3), (5, 1, 1)]:
        ranges = shards.shard_ranges(n, per_job, batch)
        assert [start for start, _ in ranges] == [0] + [stop for _, stop in ranges[:-1]]
        assert ranges[-1][1] == n and all((stop - start) % batch == 0 for start, stop in ranges[:-1])


def test_shard_names_and_paths_round_trip():
    assert names.image_shard_name(8, 16) == "rows8-16"
    assert names.parse_image_shard("rows8-16") == (8, 16)
    assert paths.image_shard(paths.image_embeddings("demo", "clip", "center"), "rows0-8") == \
        "results/image_emb/demo/clip/shards/rows0-8/center.npz"
    with pytest.raises(ValueError):
        names.image_shard_name(9, 8)
    with pytest.raises(ValueError):
        names.parse_image_shard("shard0001")


def test_a_shard_past_the_manifest_end_is_empty_and_the_join_leaves_it_out(tmp_path):
    manifest = pd.DataFrame({"image_id": [f"im{i}" for i in range(5)]})
    assert shards.manifest_rows(manifest, [4, 8])["image_id"].tolist() == ["im4"]
    assert shards.manifest_rows(manifest, [8, 10]).empty
    values = np.arange(10, dtype=np.float32).reshape(5, 2)
    paths = []
    for k, (start, stop) in enumerate([(0, 3), (3, 6), (6, 9)]):
        rows = shards.manifest_rows(manifest, [start, stop])
        part = values[start:stop] if len(rows) else shards.empty_rows(2, "float32")
        paths.append(str(tmp_path / f"{k}.npz"))
        io.save_activations(paths[-1], part, ids=rows["image_id"])
    shards.join_activations([paths], [str(tmp_path / "joined.npz")], manifest["image_id"])
    joined = io.load_activations(tmp_path / "joined.npz")
    assert joined.values.tobytes() == values.tobytes() and joined.ids.tolist() == manifest["image_id"].tolist()
    # cams: an empty shard has no rows and no map size
    io.save_cams(tmp_path / "c0.npz", ["im0"], np.ones((1, 2, 2), np.float32), np.array([3]))
    io.save_cams(tmp_path / "c1.npz", [], shards.empty_rows(3, "float32"), shards.empty_rows(1, "int64"))
    shards.join_cams([str(tmp_path / "c0.npz"), str(tmp_path / "c1.npz")], str(tmp_path / "c.npz"), ["im0"])
    assert io.load_cams(tmp_path / "c.npz")["predicted"].tolist() == [3]


def test_the_join_refuses_shards_that_miss_manifest_rows(tmp_path):
    io.save_image_embeddings(tmp_path / "0.npz", np.ones((2, 3), np.float16), ids=["a", "b"])
    with pytest.raises(InputDataError, match="probe set changed"):
        shards.join_image_embeddings([str(tmp_path / "0.npz")], str(tmp_path / "j.npz"), ["a", "b", "c"])


def test_the_file_count_is_the_manifest_listing(tmp_path):
    for wnid, n in (("n01440764", 3), ("n01530575", 2), ("n02123045", 1)):
        (tmp_path / wnid).mkdir()
        for k in range(n):
            (tmp_path / wnid / f"{k}.png").write_bytes(b"x")
    (tmp_path / "n01440764" / ".hidden").write_bytes(b"x")
    spec = {"type": "imagefolder", "root": str(tmp_path)}
    assert data.count_probe_files(spec) == len(data.probe_files(spec, tmp_path)) == 6
    some = {**spec, "classes": ["n01530575", "n02123045"]}
    files = data.probe_files(some, tmp_path)
    assert data.count_probe_files(some) == len(files) == 3
    assert set(files["label"]) == {"n01530575", "n02123045"}
    assert files["image_id"].tolist() == ["n01530575/0", "n01530575/1", "n02123045/0"]
    assert data.count_probe_files({"type": "demo"}) == len(data.DEMO_IMAGES)
    assert data.count_probe_files({"type": "imagefolder", "root": str(tmp_path / "missing")}) == 0
