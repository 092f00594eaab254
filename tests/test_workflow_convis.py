"""ConVis run through Snakemake on the tiny workflow: rank volumes, maps, figures, OOD and WSOL.

One run (module fixture) of the tiny config with ConVis on one demo photograph, an OOD
evaluation on a tiny ImageNet-style synset folder built from the demo photographs, and a
WSOL evaluation on a tiny CUB-200-2011 layout. The tests recompute each artifact from the
ones before it (or from an independent CLIP call) and compare.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from sklearn.metrics import roc_auc_score

from conftest import Workflow, assert_same_volume_arrays, tiny_config
from neuron_concepts import convis_eval, convis_grid, convis_vocabulary, data, embeddings, io, models, names, paths, wordnet
from neuron_concepts.similarity import normalize

pytestmark = pytest.mark.workflow

CLIP = "tiny-clip-random"
SIZES, STRIDE = [32, 64], 32
GRID = "anchored32-64-stride32"  # the default padding: none, the paper's valid locations
IMAGE, SYNSET = "chelsea", "cat.n.01"
BIRDS, DOGS = ["n01530575", "n01531178"], ["n02088364", "n02099601"]  # brambling, goldfinch; beagle, golden retriever
WORDS = BIRDS + DOGS + ["cat", "cup", "spider", "butterfly"]
OOD_PAIRS = [["bird.n.01", "hunting_dog.n.01"], ["spider.n.01", "butterfly.n.01"]]
CUB_TEST = ["001.Black_footed_Albatross/a_1", "001.Black_footed_Albatross/a_2",
            "002.Laysan_Albatross/b_1", "002.Laysan_Albatross/b_3", "003.Sooty_Albatross/c_1"]
CUB_TRAIN = ["002.Laysan_Albatross/b_2"]
CUB_BOXES = {1: (10, 12, 40, 30), 2: (0, 0, 64, 60), 3: (30, 20, 90, 70), 4: (2, 4, 50, 40),
             5: (40, 30, 95, 79), 6: (5, 5, 20, 20)}
WSOL_N, WSOL_SEED = 3, 3
# Rank volumes in shards of 3 images, CLIP forwards of 6 patches (the WSOL images hold 8
# each, so batches straddle images): a volume does not depend on either.
IMAGES_PER_JOB, BATCH_SIZE = 3, 6


def photo(name: str, size: tuple[int, int]) -> Image.Image:
    """A demo photograph resized to ``size`` (width, height)."""
    source = dict((i, s) for i, s, _ in data.DEMO_IMAGES)[name]
    return data.load_image(data.demo_source(source)).resize(size)


def build_inputs(root: Path) -> None:
    """Word list, ImageNet-style synset folders (test and train) and a CUB layout in ``root``."""
    (root / "convis-words.txt").write_text("# test vocabulary\n" + "\n".join(WORDS) + "\n")
    names = ["astronaut", "coffee", "rocket", "china", "flower", "camera", "coins", "moon"]
    for k, wnid in enumerate(BIRDS + DOGS):
        for j in range(2):
            path = root / "ood" / wnid / f"img{j}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            photo(names[(2 * k + j) % len(names)], (48, 40)).save(path)
        if wnid in (BIRDS[0], DOGS[0]):
            path = root / "ood_train" / wnid / "train0.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            photo(names[(k + 5) % len(names)], (48, 40)).save(path)
    cub = root / "cub"
    files = CUB_TEST + CUB_TRAIN
    for k, name in enumerate(files):
        path = cub / "images" / f"{name}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        photo(names[k], (96, 80)).save(path)
    (cub / "images.txt").write_text("".join(f"{i + 1} {name}.jpg\n" for i, name in enumerate(files)))
    (cub / "bounding_boxes.txt").write_text("".join(
        f"{i} {x0}.0 {y0}.0 {x1 - x0}.0 {y1 - y0}.0\n" for i, (x0, y0, x1, y1) in CUB_BOXES.items()))
    (cub / "train_test_split.txt").write_text("".join(f"{i + 1} {int(name in CUB_TRAIN)}\n"
                                                      for i, name in enumerate(files)))


def convis_config() -> dict:
    config = tiny_config()
    config["probe_sets"].update(ood={"type": "imagefolder", "root": "ood"},
                                ood_train={"type": "imagefolder", "root": "ood_train"},
                                cub={"type": "imagefolder", "root": "cub/images"})
    config["convis"] = {
        "probe": "demo", "vocabulary": "words",
        "vocabularies": {"words": {"words_file": "convis-words.txt"}},
        "images": [IMAGE], "pairs": [{"image": IMAGE, "synset": SYNSET}],
        "patch_sizes": SIZES, "stride": STRIDE, "top_n": 3,
        "images_per_job": IMAGES_PER_JOB, "batch_size": BATCH_SIZE,
        "ood": {"probe": "ood", "train_probe": "ood_train", "pairs": OOD_PAIRS},
        "wsol": {"probe": "cub", "cub_root": "cub", "n_images": WSOL_N, "seed": WSOL_SEED,
                 "synset": "bird.n.01"},
    }
    return config


@pytest.fixture(scope="module")
def run(run_workflow) -> Workflow:
    return run_workflow(convis_config(), "convis", prepare=build_inputs)


def folder(probe: str = "demo") -> str:
    return paths.convis_dir(probe, CLIP, "words", GRID)


def vocabulary(flow: Workflow):
    return io.read_parquet(flow.path(paths.convis_vocab("words")))


def synset_emb(flow: Workflow) -> np.ndarray:
    return io.read_npz(flow.path(paths.convis_text_embeddings(CLIP, "words")))["raw"].astype(np.float32)


def volume(flow: Workflow, image: str = IMAGE, probe: str = "demo") -> convis_grid.RankVolume:
    return convis_grid.RankVolume.from_arrays(io.read_npz(flow.path(f"{folder(probe)}/ranks/{image}.npz")))


def load_clip(flow: Workflow) -> models.ClipModel:
    spec = flow.config["clip"]["match"]
    return models.load_clip(spec["model"], "random", cache_dir=flow.path("resources/weights"),
                            model_config=str(flow.path(spec["model_config"])), seed=flow.config["seed"])


def numpy_ranks(images: np.ndarray, synsets: np.ndarray) -> np.ndarray:
    """rank_sim by its definition: the fraction of synsets strictly less similar. ``[N, S]``."""
    a = images / np.linalg.norm(images, axis=1, keepdims=True)
    b = synsets / np.linalg.norm(synsets, axis=1, keepdims=True)
    z = a.astype(np.float64) @ b.T.astype(np.float64)
    return (z[:, None, :] < z[:, :, None]).sum(axis=2) / z.shape[1]


# ---------------------------------------------------------------- vocabulary


def test_vocabulary_definitions_are_a_row_aligned_concept_set(run):
    vocab = vocabulary(run)
    concepts = io.read_parquet(run.path(paths.convis_concepts("words")))
    assert list(concepts["concept_id"]) == list(range(len(vocab)))
    assert list(concepts["text"]) == list(vocab["definition"])
    assert list(concepts["synset"]) == list(vocab["synset"])
    assert len(synset_emb(run)) == len(vocab)
    expected = convis_vocabulary.build_vocabulary(WORDS)
    assert list(vocab["synset"]) == list(expected["synset"])
    assert {"bird.n.01", "hunting_dog.n.01", "cat.n.01", "entity.n.01"} <= set(vocab["synset"])


# ---------------------------------------------------------------- rank volumes and maps


def test_rank_volume_grid_covers_the_original_image(run):
    vol = volume(run)
    manifest = io.read_parquet(run.path(paths.probe_manifest("demo"))).set_index("image_id")
    shape = (int(manifest.loc[IMAGE, "height"]), int(manifest.loc[IMAGE, "width"]))
    assert vol.shape == shape and vol.padding == "none"
    np.testing.assert_array_equal(vol.boxes, convis_grid.patch_grid(*shape, SIZES, STRIDE))
    # the paper's grid: every patch inside the image, the last row and column at the far edges
    assert vol.inside().all() and vol.boxes[..., :2].min() == 0
    assert vol.boxes[:, -1, 2].max() == shape[1] and vol.boxes[:, -1, 3].max() == shape[0]
    assert vol.rank_counts.shape == (len(vol.boxes), len(vocabulary(run)))
    stored = io.read_npz(run.path(f"{folder()}/ranks/{IMAGE}.npz"))
    assert list(stored["synsets"]) == list(vocabulary(run)["synset"])


def test_rank_volume_equals_ranks_of_independently_embedded_patches(run):
    """Patches cut and preprocessed by PIL + CLIP's own transform, one CLIP call, numpy ranks."""
    vol, synsets = volume(run), synset_emb(run)
    manifest = io.read_parquet(run.path(paths.probe_manifest("demo"))).set_index("image_id")
    image = data.load_image(run.path(manifest.loc[IMAGE, "path"]))  # paths are relative to the workflow
    clip = load_clip(run)
    # The top-left location at the image corner, the middle one, the last at the far corner.
    locations = [0, len(vol.boxes) // 2, len(vol.boxes) - 1]
    assert vol.boxes[0, -1].tolist() == [0, 0, max(SIZES), max(SIZES)]
    assert vol.boxes[-1, -1, 2:].tolist() == [image.width, image.height]
    crops = [image.crop(tuple(int(v) for v in vol.boxes[loc, k]))
             for loc in locations for k in range(len(SIZES))]
    emb = embeddings.encode_image_batch(clip, torch.stack([clip.preprocess(c) for c in crops]))
    location_emb = normalize(emb.view(len(locations), len(SIZES), -1).mean(dim=1)).numpy()
    # PIL's uint8 resize of the small patch differs from the on-device resize by rounding only.
    np.testing.assert_allclose(vol.location_emb[locations].astype(np.float32), location_emb, atol=2e-2)
    expected = numpy_ranks(location_emb, synsets)
    stored = vol.rank_counts[locations] / vol.rank_counts.shape[1]
    assert np.corrcoef(expected.ravel(), stored.ravel())[0, 1] > 0.99
    # Exactly the definition on the stored location embeddings (float16 rounding aside).
    exact = numpy_ranks(vol.location_emb[locations].astype(np.float32), synsets)
    assert np.abs(exact - stored).max() <= 3 / synsets.shape[0]


def test_saliency_artifact_equals_saliency_map_of_the_stored_volume(run):
    vol, vocab = volume(run), vocabulary(run)
    stored = io.read_npz(run.path(f"{folder()}/maps/{IMAGE}/{SYNSET}.npz"))
    members = convis_vocabulary.hyponym_members(vocab, SYNSET)
    np.testing.assert_array_equal(stored["members"], members)
    expected = convis_grid.saliency_map(vol.rank_counts, vol.boxes, members, vol.shape)
    np.testing.assert_array_equal(stored["saliency"], expected)
    # One pixel by hand: the mean over the patches covering it of the location's best member rank.
    y, x = vol.shape[0] // 2, vol.shape[1] // 3
    best = vol.rank_counts[:, members].max(axis=1) / vol.rank_counts.shape[1]
    covering = [best[loc] for loc in range(len(vol.boxes)) for x0, y0, x1, y1 in vol.boxes[loc]
                if x0 <= x < x1 and y0 <= y < y1]
    assert stored["saliency"][y, x] == pytest.approx(np.mean(covering), abs=1e-6)


def test_top_synsets_and_figures(run):
    vol, vocab = volume(run), vocabulary(run)
    top = io.read_parquet(run.path(f"{folder()}/top/{IMAGE}.parquet"))
    assert vol.inside().all()  # no padding: every location names the image
    expected = convis_vocabulary.top_synsets(vol.rank_counts, vocab, n=3)
    assert list(top["synset"]) == list(expected["synset"])
    # scores: the best location
    np.testing.assert_allclose(top["score"], vol.ranks.max(axis=0)[top["index"]], atol=1e-6)
    for name in (f"{IMAGE}__top", f"{IMAGE}__{SYNSET}"):
        with Image.open(run.path(f"results/figures/convis/{name}.png")) as figure:
            assert figure.format == "PNG" and min(figure.size) > 100


# ---------------------------------------------------------------- OOD and WSOL


def wordnet_under(synset: str, wnid: str) -> bool:
    """Whether ImageNet class ``wnid`` is ``synset`` or one of its hyponyms, through NLTK."""
    wn = wordnet.open_wordnet()
    node = wn.synset_from_pos_and_offset("n", int(wnid[1:]))
    return synset in {node.name()} | {h.name() for h in node.closure(lambda s: s.hypernyms())}


def test_ood_table_equals_a_recomputation_with_sklearn(run):
    table = pd.read_csv(run.path("results/tables/convis_ood.csv"))
    vocab, synsets = vocabulary(run), synset_emb(run)
    emb = io.read_embeddings(run.path(f"results/image_emb/ood/{CLIP}/center.npz"))
    wnids = [image.split("/")[0] for image in emb["ids"]]
    # Only the training classes under an in-distribution synset are embedded (the image
    # baseline reads no other): ood_train's bird, not its dog.
    train = io.read_embeddings(run.path(f"results/image_emb/ood_train.ood_classes/{CLIP}/center.npz"))
    train_wnids = [image.split("/")[0] for image in train["ids"]]
    assert train_wnids and all(any(wordnet_under(p, w) for p, _ in OOD_PAIRS) for w in train_wnids)
    assert not run.path(f"results/image_emb/ood_train/{CLIP}/center.npz").exists()
    ranks = numpy_ranks(emb["emb"], synsets)
    images = emb["emb"] / np.linalg.norm(emb["emb"], axis=1, keepdims=True)
    refs = train["emb"] / np.linalg.norm(train["emb"], axis=1, keepdims=True)
    assert len(table) == 3 * len(OOD_PAIRS)
    assert set(table["probe"]) == {"ood"} and set(table["vocabulary"]) == {"words"}
    for positive, negative in OOD_PAIRS:
        rows = table[(table["positive"] == positive) & (table["negative"] == negative)].set_index("method")
        is_in = np.array([wordnet_under(positive, w) for w in wnids])
        is_out = np.array([wordnet_under(negative, w) for w in wnids])
        if not is_in.any() or not is_out.any():
            assert rows["auroc"].isna().all()
            continue
        keep = is_in | is_out
        members = convis_vocabulary.hyponym_members(vocab, positive)
        definition = synsets[list(vocab["synset"]).index(positive)]
        definition = definition / np.linalg.norm(definition)
        in_refs = refs[[wordnet_under(positive, w) for w in train_wnids]]
        scores = {"convis": ranks[:, members].max(axis=1), "definition": images @ definition,
                  "image": (images @ in_refs.T).max(axis=1)}
        assert set(rows.index) == set(scores)
        for method, score in scores.items():
            assert rows.loc[method, "n_in"] == is_in.sum() and rows.loc[method, "n_out"] == is_out.sum()
            assert rows.loc[method, "auroc"] == pytest.approx(
                roc_auc_score(is_in[keep], score[keep]), abs=1e-6), method
    assert run.path("results/tables/convis_ood.md").read_text().startswith("# ConVis OOD")


def test_wsol_table_equals_max_box_acc_of_the_sampled_images(run):
    sampled = convis_eval.sample_ids(CUB_TEST, WSOL_N, WSOL_SEED)
    made = sorted(str(p.relative_to(run.path(f"{folder('cub')}/ranks")).with_suffix(""))
                  for p in run.path(f"{folder('cub')}/ranks").rglob("*.npz"))
    assert made == sampled  # rank volumes only for the sampled test images
    members = convis_vocabulary.hyponym_members(vocabulary(run), "bird.n.01")
    maps = [volume(run, image, "cub").saliency(members) for image in sampled]
    boxes = [np.array([CUB_BOXES[CUB_TEST.index(image) + 1]], dtype=float) for image in sampled]
    table = pd.read_csv(run.path("results/tables/convis_wsol.csv"))
    assert len(table) == 1
    row = table.iloc[0]
    assert row["max_box_acc"] == pytest.approx(convis_eval.max_box_acc(maps, boxes))
    assert row["n_images"] == WSOL_N and row["seed"] == WSOL_SEED and row["grid"] == GRID


# ---------------------------------------------------------------- reruns and configuration


def planned_volumes(flow: Workflow, target: str = "convis") -> set[str]:
    """The rank volumes a dry run of ``target`` would make (a shard job lists several)."""
    out = flow.snakemake("-n", "-p", target).stdout
    return {path for line in out.splitlines() if line.strip().startswith("output:")
            for path in line.split("output: ")[1].split(", ") if "/ranks/" in path}


def rank_volume_jobs(jobs: dict[str, int]) -> int:
    """Planned rank-volume jobs: one rule per shard (convis_rank_volume_{probe}_{vocab}_shardNNNN)."""
    return sum(count for rule, count in jobs.items() if rule.startswith("convis_rank_volume_"))


def test_a_stride_change_reruns_rank_volumes_but_not_the_vocabulary(run):
    with run.changed_config(lambda c: c["convis"].update(stride=16)):
        jobs = run.planned_jobs("convis")
        made = planned_volumes(run)
    # one shard for chelsea (demo), ceil(3 / 3) for the WSOL sample (cub)
    assert rank_volume_jobs(jobs) == 1 + -(-WSOL_N // IMAGES_PER_JOB) and len(made) == 1 + WSOL_N
    assert set(jobs) >= {f"convis_rank_volume_demo_words_{names.convis_shard_name(0)}",
                         f"convis_rank_volume_cub_words_{names.convis_shard_name(0)}"}
    assert "convis_vocabulary" not in jobs and "text_embeddings" not in jobs
    assert "image_embeddings" not in jobs and "convis_ood" not in jobs  # OOD uses whole images
    # maps, top synsets and figures of the configured images: one job each
    assert jobs["convis_saliency"] == jobs["convis_top_synsets"] == jobs["convis_figures"] == 1


def test_a_resize_makes_volumes_of_its_own_geometry_folder(run):
    with run.changed_config(lambda c: c["convis"].update(resize=64)):
        jobs = run.planned_jobs("convis")
        made = planned_volumes(run)
    assert rank_volume_jobs(jobs) == 2 and "convis_vocabulary" not in jobs
    assert f"results/convis/demo/{CLIP}/words/{GRID}-r64/ranks/{IMAGE}.npz" in made
    assert len(made) == 1 + WSOL_N and all(f"/{GRID}-r64/" in path for path in made), made


@pytest.mark.parametrize("change, grid", [({"padding": "noise"}, f"{GRID}-noise"),
                                          ({"padding": "noise", "resize": 64}, f"{GRID}-noise-r64")])
def test_noise_padding_makes_volumes_of_its_own_geometry_folder(run, change, grid):
    with run.changed_config(lambda c: c["convis"].update(change)):
        made = planned_volumes(run)
    assert f"results/convis/demo/{CLIP}/words/{grid}/ranks/{IMAGE}.npz" in made
    assert len(made) == 1 + WSOL_N and all(f"/{grid}/ranks/" in path for path in made), made


def test_a_box_csv_selects_sampled_images_of_any_probe_set(run):
    csv = run.path("boxes.csv")
    csv.write_text("image,x0,y0,x1,y1\nastronaut,0,0,10,10\ncoffee,1,1,5,5\nrocket,2,2,9,9\n"
                   "coffee,3,3,8,8\n")

    def use_csv(config):
        config["convis"]["wsol"] = {"probe": "demo", "boxes_csv": "boxes.csv", "n_images": 2, "seed": 1}
    with run.changed_config(use_csv):
        made = planned_volumes(run, "results/tables/convis_wsol.csv")
    planned = {paths.parse_convis_volume(path)["image"] for path in made}
    sampled = set(convis_eval.sample_ids(["astronaut", "coffee", "rocket"], 2, 1))
    # The sample shares the demo folder with convis.images: chelsea's volume exists, but the
    # three images are one shard, one job, which remakes every volume it holds.
    assert len(sampled | {IMAGE}) == IMAGES_PER_JOB and planned == sampled | {IMAGE}


def test_wsol_with_two_box_sources_is_a_configuration_error(run):
    def both(config):
        config["convis"]["wsol"]["boxes_csv"] = "cub/images.txt"
    with run.changed_config(both):
        result = run.snakemake("-n", "convis", check=False)
    assert result.returncode != 0
    assert "convis.wsol needs exactly one of cub_root" in result.stdout


def test_volumes_of_shards_of_one_image_equal_those_of_a_shard_of_three(run):
    """The shard layout is invisible: the WSOL volumes made in one job of 3 images are remade
    by 3 jobs of one image each (images_per_job: 1) with equal arrays, and so equal maps."""
    paths = sorted(run.path(f"{folder('cub')}/ranks").rglob("*.npz"))
    assert len(paths) == WSOL_N == IMAGES_PER_JOB
    before = {path: io.read_npz(path) for path in paths}
    for path in paths:
        path.unlink()
    relative = [str(path.relative_to(run.root)) for path in paths]
    with run.changed_config(lambda c: c["convis"].update(images_per_job=1)):
        assert rank_volume_jobs(run.planned_jobs(*relative)) == WSOL_N  # one job per image
        run.snakemake(*relative)
    members = convis_vocabulary.hyponym_members(vocabulary(run), "bird.n.01")
    for path, arrays in before.items():
        after = io.read_npz(path)
        assert_same_volume_arrays(after, arrays, f"{path.name}: ")
        np.testing.assert_array_equal(convis_grid.RankVolume.from_arrays(after).saliency(members),
                                      convis_grid.RankVolume.from_arrays(arrays).saliency(members))
