"""Artifact save/load pairs: a round trip keeps values and dtypes, the files keep their
format, and a file with a wrong key, shape or dtype is an InputDataError that names the
file and the problem."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pandas as pd
import pytest

from neuron_concepts import concepts, convis_grid, data, evaluation, gradcam, io, stability
from neuron_concepts.errors import InputDataError

rng = np.random.default_rng(0)


def unit_rows(n: int, d: int, dtype=np.float16) -> np.ndarray:
    x = rng.standard_normal((n, d))
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(dtype)


# ---------------------------------------------------------------------------- npz artifacts

@dataclass
class NpzCase:
    """An npz artifact type: its pair, the fields of a small example, and one key to drop,
    one to give a wrong shape and one to give a wrong dtype (npz keys)."""

    save: Callable[..., None]
    load: Callable[[Any], Any]
    fields: dict[str, Any]
    drop: str
    reshape: str
    recast: tuple[str, Callable[[np.ndarray], np.ndarray]]
    renames: dict[str, str] = field(default_factory=dict)  # save argument -> loaded field


NPZ_CASES = {
    "text embeddings": NpzCase(
        io.save_text_embeddings, io.load_text_embeddings,
        dict(prompt=unit_rows(3, 4), base=unit_rows(1, 4)[0], raw=unit_rows(3, 4),
             ids=np.arange(3, dtype=np.int64)),
        drop="raw", reshape="base", recast=("emb", lambda a: a.astype(np.float32))),
    "image embeddings": NpzCase(
        io.save_image_embeddings, io.load_image_embeddings,
        dict(emb=unit_rows(2, 4), ids=np.array(["chelsea", "coffee"])),
        drop="ids", reshape="emb", recast=("emb", lambda a: a.astype(np.float32))),
    "evaluation embeddings": NpzCase(
        io.save_eval_embeddings, io.load_eval_embeddings,
        dict(emb=unit_rows(3, 5), ids=np.array(["cat", "tabby cat", "none"])),
        drop="emb", reshape="ids", recast=("ids", lambda a: np.arange(len(a)))),
    "activations": NpzCase(
        io.save_activations, io.load_activations,
        dict(values=rng.standard_normal((2, 6)).astype(np.float32), ids=np.array(["a", "b"])),
        drop="activations", reshape="ids", recast=("activations", lambda a: a.astype(np.float16))),
    "similarity": NpzCase(
        io.save_similarity, lambda path: io.load_similarity(path, parts=["prompt", "base", "raw"]),
        dict(prompt=rng.uniform(-1, 1, (2, 3)).astype(np.float32),
             base=rng.uniform(-1, 1, 2).astype(np.float32),
             raw=rng.uniform(-1, 1, (2, 3)).astype(np.float32)),
        # float16 cosines only in a file named so (cos-f16.npz): their steps change WWW's selection
        drop="prompt", reshape="base", recast=("raw", lambda a: a.astype(np.float16))),
    "Grad-CAM": NpzCase(
        io.save_cams, io.load_cams,
        dict(image_ids=np.array(["a", "b"]), cams=rng.uniform(0, 1, (2, 3, 3)).astype(np.float32),
             predicted=np.array([3, 7], dtype=np.int64)),
        drop="predicted", reshape="cams", recast=("predicted", lambda a: a.astype(np.float64)),
        renames={"image_ids": "image_id"}),
    "ConVis map": NpzCase(
        io.save_convis_map, io.load_convis_map,
        dict(saliency=rng.uniform(0, 1, (4, 5)).astype(np.float32),
             members=np.array([0, 2], dtype=np.int64), synset="dog.n.01", resize=224),
        drop="members", reshape="synset", recast=("saliency", lambda a: a.astype(np.float64))),
}


def loaded_field(loaded: Any, name: str) -> Any:
    return loaded[name] if isinstance(loaded, dict) else getattr(loaded, name)


def assert_same(got: Any, expected: Any) -> None:
    if isinstance(expected, np.ndarray):
        assert isinstance(got, np.ndarray) and got.dtype == expected.dtype
        np.testing.assert_array_equal(got, expected)
    else:
        assert got == expected and type(got) is type(expected)


@pytest.mark.parametrize("name", NPZ_CASES)
def test_npz_artifact_round_trips_with_its_dtypes(tmp_path, name):
    case = NPZ_CASES[name]
    case.save(tmp_path / "a.npz", **case.fields)
    loaded = case.load(tmp_path / "a.npz")
    for arg, value in case.fields.items():
        assert_same(loaded_field(loaded, case.renames.get(arg, arg)), value)


def rewrite(path, change: Callable[[dict[str, np.ndarray]], None]) -> None:
    arrays = io.read_npz(path)
    change(arrays)
    io.write_npz(path, **arrays)


def add_axis(arrays: dict, key: str) -> None:
    arrays[key] = arrays[key][..., None]


@pytest.mark.parametrize("problem", ["key", "shape", "dtype"])
@pytest.mark.parametrize("name", NPZ_CASES)
def test_npz_loader_names_the_file_and_the_wrong_array(tmp_path, name, problem):
    case = NPZ_CASES[name]
    path = tmp_path / "bad.npz"
    case.save(path, **case.fields)
    key, recast = case.recast
    change = {"key": lambda a: a.pop(case.drop),
              "shape": lambda a: add_axis(a, case.reshape),
              "dtype": lambda a: a.update({key: recast(a[key])})}[problem]
    rewrite(path, change)
    with pytest.raises(InputDataError) as error:
        case.load(path)
    message = str(error.value)
    assert str(path) in message
    assert {"key": case.drop, "shape": case.reshape, "dtype": key}[problem] in message
    assert {"key": "lacks", "shape": "shape", "dtype": "dtype"}[problem] in message
    assert f"snakemake --cores all --forcerun {path}" in message


def test_arrays_of_one_file_must_agree_on_shared_sizes(tmp_path):
    case = NPZ_CASES["text embeddings"]
    io.save_text_embeddings(tmp_path / "t.npz", **case.fields)
    rewrite(tmp_path / "t.npz", lambda a: a.update(raw=a["raw"][:2]))
    with pytest.raises(InputDataError, match=r"'raw' has shape \(2, 4\).*C = 3 as in '"):
        io.load_text_embeddings(tmp_path / "t.npz")


@pytest.mark.parametrize("content", [b"not an archive", b""])
def test_a_file_that_is_no_npz_is_named(tmp_path, content):
    path = tmp_path / "cos.npz"
    path.write_bytes(content)
    with pytest.raises(InputDataError, match=f"{path}.*cannot be read as an npz"):
        io.load_similarity(path)


def test_a_lone_npy_array_is_no_npz(tmp_path):
    path = tmp_path / "acts.npz"
    with open(path, "wb") as f:
        np.save(f, np.zeros(3, np.float32))
    with pytest.raises(InputDataError, match="not an npz archive"):
        io.load_activations(path)


def test_a_missing_file_is_a_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        io.load_activations(tmp_path / "none.npz")
    with pytest.raises(FileNotFoundError):
        io.load_manifest(tmp_path / "none.parquet")


# ---------------------------------------------------------------------------- the file formats

def test_npz_files_keep_their_keys_order_and_dtypes(tmp_path):
    """The formats the pipeline has always written: same keys, in the same order (it
    decides the bytes), same dtypes."""
    expected = {
        "text embeddings": [("emb", "float16"), ("ids", "int64"), ("base", "float16"), ("raw", "float16")],
        "image embeddings": [("emb", "float16"), ("ids", "<U7")],
        "evaluation embeddings": [("emb", "float16"), ("ids", "<U9")],
        "activations": [("activations", "float32"), ("ids", "<U1")],
        "similarity": [("prompt", "float32"), ("base", "float32"), ("raw", "float32")],
        "Grad-CAM": [("image_id", "<U1"), ("cams", "float32"), ("predicted", "int64")],
        "ConVis map": [("saliency", "float32"), ("members", "int64"), ("synset", "<U8"), ("resize", "int64")],
    }
    for name, keys in expected.items():
        case = NPZ_CASES[name]
        case.save(tmp_path / "a.npz", **case.fields)
        with np.load(tmp_path / "a.npz") as stored:
            assert [(k, str(stored[k].dtype)) for k in stored.files] == keys, name


def test_save_casts_to_the_stored_dtypes_as_the_scripts_did(tmp_path):
    emb = unit_rows(3, 4, np.float32)
    io.save_text_embeddings(tmp_path / "new.npz", prompt=emb, base=emb[0], raw=emb,
                            ids=pd.Series([0, 1, 2]))
    io.write_npz(tmp_path / "old.npz", emb=emb.astype(np.float16), ids=np.arange(3),
                 base=emb[0].astype("float16"), raw=emb.astype("float16"))
    assert (tmp_path / "new.npz").read_bytes() == (tmp_path / "old.npz").read_bytes()
    ids = pd.Series(["chelsea", "coffee", "rocket"])
    io.save_image_embeddings(tmp_path / "new.npz", emb, ids=ids)
    io.write_embeddings(tmp_path / "old.npz", emb, ids=ids.to_numpy(dtype=str))
    assert (tmp_path / "new.npz").read_bytes() == (tmp_path / "old.npz").read_bytes()


def savez_bytes(tmp_path, **arrays) -> bytes:
    with open(tmp_path / "savez.npz", "wb") as f:
        np.savez(f, **arrays)
    return (tmp_path / "savez.npz").read_bytes()


def test_write_npz_writes_the_bytes_of_np_savez(tmp_path):
    arrays = dict(matrix=rng.standard_normal((5, 3)).astype(np.float32),
                  fortran=np.asfortranarray(rng.standard_normal((3, 4))), ids=np.array(["a", "bc"]),
                  scalar=np.asarray(7), empty=np.zeros((0, 3), np.float16),
                  half=rng.standard_normal(9).astype(np.float16))
    io.write_npz(tmp_path / "a.npz", **arrays)
    assert (tmp_path / "a.npz").read_bytes() == savez_bytes(tmp_path, **arrays)
    assert io.recorded_sha256(tmp_path / "a.npz") == io.sha256_file(tmp_path / "a.npz")


@pytest.mark.parametrize("sizes", [[5], [1] * 5, [2, 2, 1], [0, 3, 0, 2]])
def test_row_blocks_stream_the_bytes_of_the_whole_array(tmp_path, sizes):
    matrix = rng.standard_normal((5, 3)).astype(np.float32)
    ids = np.array(["x", "y"])
    ends = np.cumsum([0] + sizes)
    blocks = (matrix[a:b].astype(np.float64) for a, b in zip(ends[:-1], ends[1:]))  # cast as written
    io.write_npz(tmp_path / "a.npz", ids=ids, matrix=io.RowBlocks((5, 3), np.float32, blocks))
    assert (tmp_path / "a.npz").read_bytes() == savez_bytes(tmp_path, ids=ids, matrix=matrix)
    np.testing.assert_array_equal(io._map_npz_member(tmp_path / "a.npz", "matrix"), matrix)
    assert io.npz_shapes(tmp_path / "a.npz") == {"ids": (2,), "matrix": (5, 3)}


def test_a_stream_that_fails_leaves_the_old_file(tmp_path):
    io.write_npz(tmp_path / "a.npz", x=np.arange(3))
    before = (tmp_path / "a.npz").read_bytes()

    def failing():
        yield np.zeros((1, 2))
        raise RuntimeError("out of memory")

    with pytest.raises(RuntimeError, match="out of memory"):
        io.write_npz(tmp_path / "a.npz", x=io.RowBlocks((2, 2), np.float64, failing()))
    assert (tmp_path / "a.npz").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [".sha256", "a.npz"]


# ---------------------------------------------------------------------------- selective loading

def test_loaders_read_only_the_parts_asked_for(tmp_path):
    case = NPZ_CASES["similarity"]
    io.save_similarity(tmp_path / "cos.npz", **case.fields)
    # A damaged prompt matrix does not stop a reader of raw: it is never read.
    rewrite(tmp_path / "cos.npz", lambda a: a.update(prompt=a["prompt"].astype(np.float64)))
    sims = io.load_similarity(tmp_path / "cos.npz", parts=["raw"])
    assert sims.prompt is None and sims.base is None
    np.testing.assert_array_equal(sims.raw, case.fields["raw"])
    texts = NPZ_CASES["text embeddings"].fields
    io.save_text_embeddings(tmp_path / "t.npz", **texts)
    raw_only = io.load_text_embeddings(tmp_path / "t.npz", parts=["raw"])
    assert raw_only.prompt is None and raw_only.base is None
    assert list(raw_only.npz_arrays()) == ["raw"]


def test_similarity_default_reads_what_the_file_holds(tmp_path):
    raw = NPZ_CASES["similarity"].fields["raw"]
    io.save_similarity(tmp_path / "cos.npz", raw=raw)  # CLIP-Dissect's model only
    sims = io.load_similarity(tmp_path / "cos.npz")
    assert sims.prompt is None and sims.base is None
    np.testing.assert_array_equal(sims.raw, raw)
    with pytest.raises(InputDataError, match=r"holds the matrices \['raw'\], not \['prompt'\].*clip.match"):
        io.load_similarity(tmp_path / "cos.npz", parts=["prompt"])


def test_similarity_is_memory_mapped_in_place(tmp_path):
    rng = np.random.default_rng(0)
    prompt, raw = (rng.normal(size=(300, 70)).astype(np.float32) for _ in range(2))
    base = rng.normal(size=300).astype(np.float32)
    io.save_similarity(tmp_path / "cos.npz", prompt=prompt, base=base, raw=raw)
    mapped = io.load_similarity(tmp_path / "cos.npz", mmap=True)
    for name, expected in (("prompt", prompt), ("base", base), ("raw", raw)):
        array = getattr(mapped, name)
        assert isinstance(array, np.memmap) and str(array.filename) == str(tmp_path / "cos.npz")
        np.testing.assert_array_equal(array, expected)
    # Copy-on-write: changing the mapped array leaves the artifact as written.
    mapped.raw[0, 0] = 1e6
    np.testing.assert_array_equal(io.load_similarity(tmp_path / "cos.npz").raw, raw)
    # Gathering rows reads exactly those rows.
    rows = [299, 3, 150]
    np.testing.assert_array_equal(mapped.prompt[rows], prompt[rows])


def test_text_embeddings_hold_the_parts_their_roles_read(tmp_path):
    texts = NPZ_CASES["text embeddings"].fields
    io.save_text_embeddings(tmp_path / "raw.npz", ids=texts["ids"], raw=texts["raw"])
    np.testing.assert_array_equal(io.load_text_embeddings(tmp_path / "raw.npz", parts=["raw"]).raw,
                                  np.asarray(texts["raw"], dtype=np.float16))
    with pytest.raises(InputDataError, match=r"raw.npz.*lacks the part\(s\) \['prompt'\]"):
        io.load_text_embeddings(tmp_path / "raw.npz", parts=["prompt", "raw"])
    with pytest.raises(ValueError, match="at least one"):
        io.save_text_embeddings(tmp_path / "none.npz", ids=texts["ids"])


def test_unknown_parts_are_a_caller_error(tmp_path):
    io.save_text_embeddings(tmp_path / "t.npz", **NPZ_CASES["text embeddings"].fields)
    with pytest.raises(ValueError, match="no parts"):
        io.load_text_embeddings(tmp_path / "t.npz", parts=["emb"])
    with pytest.raises(ValueError, match="must be some of"):
        io.save_similarity(tmp_path / "cos.npz", cos=np.zeros((2, 2), np.float32))


# ---------------------------------------------------------------------------- ConVis rank volume

def small_volume(resize: int | None = 8) -> convis_grid.RankVolume:
    boxes = np.array([[[0, 0, 2, 2]], [[1, 1, 3, 3]]], dtype=np.int64)
    return convis_grid.RankVolume(rank_counts=np.array([[0, 2, 1], [1, 0, 2]], dtype=np.uint16),
                             boxes=boxes, shape=(4, 4), location_emb=unit_rows(2, 5),
                             source_shape=(6, 4), resize=resize, padding="none")


SYNSETS = np.array(["animal.n.01", "cat.n.01", "dog.n.01"])


def test_rank_volume_round_trips(tmp_path):
    volume = small_volume()
    io.save_rank_volume(tmp_path / "v.npz", volume, SYNSETS)
    back = io.load_rank_volume(tmp_path / "v.npz", vocab=pd.DataFrame({"synset": SYNSETS}))
    for name in ("rank_counts", "boxes", "location_emb"):
        assert_same(getattr(back, name), getattr(volume, name))
    assert (back.shape, back.source_shape, back.resize, back.padding) == ((4, 4), (6, 4), 8, "none")
    with np.load(tmp_path / "v.npz") as stored:
        assert stored.files == ["rank_counts", "boxes", "shape", "location_emb", "source_shape",
                                "resize", "padding", "synsets"]


@pytest.mark.parametrize("problem, change, named", [
    ("key", lambda a: a.pop("rank_counts"), "rank_counts"),
    ("shape", lambda a: a.update(boxes=a["boxes"][..., :3]), "boxes"),
    ("dtype", lambda a: a.update(rank_counts=a["rank_counts"].astype(np.float32)), "rank_counts"),
])
def test_rank_volume_loader_names_the_wrong_array(tmp_path, problem, change, named):
    io.save_rank_volume(tmp_path / "v.npz", small_volume(), SYNSETS)
    rewrite(tmp_path / "v.npz", change)
    with pytest.raises(InputDataError, match=f"{tmp_path / 'v.npz'}.*'{named}'"):
        io.load_rank_volume(tmp_path / "v.npz")


def test_rank_volume_of_another_vocabulary_is_refused(tmp_path):
    io.save_rank_volume(tmp_path / "v.npz", small_volume(), SYNSETS)
    other = pd.DataFrame({"synset": SYNSETS[::-1]})
    with pytest.raises(InputDataError, match="another vocabulary"):
        io.load_rank_volume(tmp_path / "v.npz", vocab=other)


def test_rank_volume_written_before_the_optional_arrays_still_loads(tmp_path):
    arrays = small_volume(resize=None).to_arrays()
    io.write_npz(tmp_path / "v.npz", **{k: arrays[k] for k in ("rank_counts", "boxes", "shape", "location_emb")})
    back = io.load_rank_volume(tmp_path / "v.npz", vocab=pd.DataFrame({"synset": SYNSETS}))
    assert back.padding == "none" and back.resize is None and back.source_shape == (4, 4)


# ---------------------------------------------------------------------------- Parquet artifacts

@dataclass
class TableCase:
    save: Callable[[Any, pd.DataFrame], None]
    load: Callable[[Any], pd.DataFrame]
    table: pd.DataFrame
    drop: str
    recast: tuple[str, list]  # a column and values of the wrong kind


def manifest_table() -> pd.DataFrame:
    table = pd.DataFrame({"image_id": ["chelsea", "coffee"], "path": ["a.png", "b.png"],
                          "label": ["n02123045", None], "label_name": ["tabby, tabby cat", None],
                          "width": np.array([451, 400]), "height": np.array([300, 400])})
    return table.astype({"label": "string", "label_name": "string"})


TABLE_CASES = {
    "manifest": TableCase(io.save_manifest, io.load_manifest, manifest_table(),
                          drop="width", recast=("width", ["wide", "narrow"])),
    "unreadable": TableCase(io.save_unreadable, io.load_unreadable,
                            pd.DataFrame({"image_id": ["x"], "path": ["x.png"]}),
                            drop="path", recast=("path", [3])),
    "concepts": TableCase(io.save_concepts, io.load_concepts,
                          concepts.normalise_concepts(["cat", "dog"], ["cat.n.01", None]),
                          drop="text", recast=("concept_id", [0.5, 1.5])),
    "boxes": TableCase(io.save_boxes, io.load_boxes,
                       pd.DataFrame({"image_id": ["a"], "x0": [0], "y0": [1], "x1": [5], "y1": [6],
                                     "cam_zero": [False], "predicted": np.array([281])}),
                       drop="cam_zero", recast=("x0", [0.5])),
    "descriptions": TableCase(io.save_descriptions, io.load_descriptions,
                              io.description_table([(0, 0, 1, "cat", 0.3, True, False),
                                                     (0, 1, 0, "dog", 0.2, False, False)]),
                              drop="selected", recast=("score", ["high", "low"])),
    "evaluation": TableCase(io.save_evaluation, io.load_evaluation,
                            pd.DataFrame({"neuron": np.arange(2), "predictions": ["cat; dog", ""],
                                          "top1": ["cat", "none"],
                                          **{c: [1.0, np.nan] for c in io.EVALUATION.columns
                                             if c not in ("neuron", "predictions", "top1")}}),
                            drop="www_f1", recast=("www_f1", ["good", "bad"])),
    "vocabulary": TableCase(io.save_vocabulary, io.load_vocabulary,
                            pd.DataFrame({"synset": ["animal.n.01", "cat.n.01"], "lemma": ["animal", "cat"],
                                          "definition": ["a living thing", "a feline"],
                                          "parents": [[], ["animal.n.01"]], "depth": np.array([0, 1]),
                                          "seed": [False, True]}),
                            drop="parents", recast=("depth", ["deep", "shallow"])),
    "top synsets": TableCase(io.save_top_synsets, io.load_top_synsets,
                             pd.DataFrame({"index": np.array([1, 0]), "synset": ["cat.n.01", "animal.n.01"],
                                           "lemma": ["cat", "animal"], "definition": ["a feline", "a living thing"],
                                           "score": [0.9, 0.5]}),
                             drop="score", recast=("index", ["first", "second"])),
}


def assert_tables_equal(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    # Parquet gives lists back as arrays; every other column keeps its values and dtype.
    lists = [c for c in expected if expected[c].map(lambda v: isinstance(v, list)).any()]
    pd.testing.assert_frame_equal(got.drop(columns=lists), expected.drop(columns=lists))
    for column in lists:
        assert [list(v) for v in got[column]] == list(expected[column])


@pytest.mark.parametrize("name", TABLE_CASES)
def test_table_artifact_round_trips_with_its_dtypes(tmp_path, name):
    case = TABLE_CASES[name]
    case.save(tmp_path / "t.parquet", case.table)
    assert_tables_equal(case.load(tmp_path / "t.parquet"), case.table)


@pytest.mark.parametrize("problem", ["key", "dtype", "not a table"])
@pytest.mark.parametrize("name", TABLE_CASES)
def test_table_loader_names_the_file_and_the_wrong_column(tmp_path, name, problem):
    case = TABLE_CASES[name]
    path = tmp_path / "bad.parquet"
    column, values = case.recast
    if problem == "not a table":
        path.write_bytes(b"PAR1 but no more")
        named = "cannot be read as a table"
    elif problem == "key":
        io.write_parquet(path, case.table.drop(columns=case.drop))
        named = f"lacks the column(s) ['{case.drop}']"
    else:
        io.write_parquet(path, case.table.assign(**{column: values}))
        named = f"column '{column}'"
    with pytest.raises(InputDataError) as error:
        case.load(path)
    assert str(path) in str(error.value) and named in str(error.value)
    assert "--forcerun" in str(error.value)


def test_a_table_that_must_hold_rows_is_refused_empty(tmp_path):
    io.write_parquet(tmp_path / "manifest.parquet", manifest_table().iloc[:0])
    with pytest.raises(InputDataError, match="manifest.parquet.*no rows"):
        io.load_manifest(tmp_path / "manifest.parquet")
    io.write_parquet(tmp_path / "concepts.parquet", TABLE_CASES["concepts"].table.iloc[:0])
    with pytest.raises(InputDataError, match="concepts.parquet is empty"):
        io.load_concepts(tmp_path / "concepts.parquet")


def test_an_empty_unreadable_list_round_trips(tmp_path):
    empty = pd.DataFrame({"image_id": pd.Series([], dtype=object), "path": pd.Series([], dtype=object)})
    io.save_unreadable(tmp_path / "u.parquet", empty)
    assert io.load_unreadable(tmp_path / "u.parquet").empty


def test_save_refuses_a_table_of_the_wrong_format(tmp_path):
    with pytest.raises(ValueError, match="not writing .*d.parquet.*lacks the column"):
        io.save_descriptions(tmp_path / "d.parquet", TABLE_CASES["descriptions"].table.drop(columns="score"))
    assert not (tmp_path / "d.parquet").exists()


def test_table_formats_match_the_modules_that_build_the_tables():
    """io checks the columns these modules write: the two cannot drift apart."""
    assert list(io.MANIFEST.columns) == data.MANIFEST_COLUMNS
    assert list(io.CONCEPTS.columns) == concepts.CONCEPT_COLUMNS
    assert list(io.BOXES.columns) == gradcam.BOX_COLUMNS
    assert list(io.DESCRIPTIONS.columns) == list(io.description_table([]).columns)
    assert list(io.STABILITY_TABLE.columns) == stability.TABLE_COLUMNS
    assert list(io.ABLATION_TABLE.columns) == evaluation.ABLATION_KEYS + evaluation.ABLATION_METRICS


# ---------------------------------------------------------------------------- summary tables (CSV)

SUMMARY_CASES = {
    "concept discovery": (io.load_concept_discovery_table, pd.DataFrame({
        "probe": ["demo"], "method": ["www-center-cos-n4-a0.95"], "concepts": ["words"],
        "style": ["www"], "n_neurons": [1000], "clip_cos": [17.5], "mpnet_cos": [18.7]}), "clip_cos"),
    "ablation": (io.load_ablation_table, pd.DataFrame({
        "probe": ["demo"], "concepts": ["words"], "gradcam": [True], "tvmf": [False],
        "clip_cos": [17.5], "mpnet_cos": [18.7], "f1": [0.0], "hit_rate": [10.0], "n_neurons": [1000]}),
        "hit_rate"),
    "stability": (io.load_stability_table, pd.DataFrame({
        "layer": ["fc"], "concepts": ["words"], "sim": ["cos"], "k_from": [5], "k_to": [10],
        "stability_pct": [40.0], "top1_agreement_pct": [80.0], "mean_jaccard": [0.7],
        "n_neurons": [1000]}), "mean_jaccard"),
    "OOD": (io.load_ood_table, pd.DataFrame({
        "probe": ["ood"], "positive": ["bird.n.01"], "negative": ["hunting_dog.n.01"],
        "method": ["convis"], "n_in": [4], "n_out": [4], "auroc": [0.25]}), "auroc"),
    "WSOL": (io.load_wsol_table, pd.DataFrame({
        "probe": ["cub"], "synset": ["bird.n.01"], "n_images": [2], "max_box_acc": [50.0],
        "threshold": [0.0]}), "max_box_acc"),
}


@pytest.mark.parametrize("name", SUMMARY_CASES)
def test_summary_table_round_trips(tmp_path, name):
    load, table, _ = SUMMARY_CASES[name]
    io.save_summary_table(tmp_path / "t.csv", table, tmp_path / "t.md", "# table\n")
    assert (tmp_path / "t.csv").read_text() == table.to_csv(index=False)
    assert (tmp_path / "t.md").read_text() == "# table\n"
    pd.testing.assert_frame_equal(load(tmp_path / "t.csv"), table)


@pytest.mark.parametrize("problem", ["key", "dtype"])
@pytest.mark.parametrize("name", SUMMARY_CASES)
def test_summary_table_loader_names_the_file_and_the_wrong_column(tmp_path, name, problem):
    load, table, metric = SUMMARY_CASES[name]
    path = tmp_path / "t.csv"
    bad = table.drop(columns=metric) if problem == "key" else table.assign(**{metric: ["high"]})
    io.write_text(path, bad.to_csv(index=False))
    with pytest.raises(InputDataError, match=f"{path}.*'{metric}'"):
        load(path)


# ---------------------------------------------------------------------------- weights marker

def test_weights_marker_round_trips_as_the_json_it_always_was(tmp_path):
    spec = {"kind": "clip", "name": "ViT-B-32", "pretrained": "openai"}
    io.save_weights_marker(tmp_path / "m.json", spec, tmp_path / "w.pt", "abc")
    expected = {"spec": spec, "path": str(tmp_path / "w.pt"), "sha256": "abc"}
    assert (tmp_path / "m.json").read_text() == json.dumps(expected, indent=2, default=str)
    assert io.load_weights_marker(tmp_path / "m.json") == expected


@pytest.mark.parametrize("content, problem", [("{not json", "cannot be read as JSON"),
                                              ('{"spec": {}}', "lacks ['path', 'sha256']")])
def test_weights_marker_loader_names_the_problem(tmp_path, content, problem):
    (tmp_path / "m.json").write_text(content)
    with pytest.raises(InputDataError) as error:
        io.load_weights_marker(tmp_path / "m.json")
    assert str(tmp_path / "m.json") in str(error.value) and problem in str(error.value)
