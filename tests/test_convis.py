"""ConVis library: vocabulary closure, rank similarities, patch geometry and saliency aggregation."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torchvision import transforms as T

from conftest import assert_same_volume_arrays
from neuron_concepts import convis_figures, convis_grid, convis_vocabulary, convis_volume, io, models, wordnet
from neuron_concepts.errors import InputDataError

# ----------------------------------------------------------------------------- vocabulary


@pytest.fixture(scope="module")
def wn():
    return wordnet.open_wordnet()


def test_vocabulary_of_a_synset_is_its_hypernym_closure(wn):
    vocab = convis_vocabulary.build_vocabulary(["dog.n.01"])
    expected = {s.name() for path in wn.synset("dog.n.01").hypernym_paths() for s in path}
    assert set(vocab["synset"]) == expected
    for name in ["dog.n.01", "canine.n.02", "carnivore.n.01", "placental.n.01", "mammal.n.01",
                 "domestic_animal.n.01", "animal.n.01", "entity.n.01"]:
        assert name in expected
    assert "frump.n.01" not in expected  # only the named sense
    assert list(vocab["synset"]) == sorted(vocab["synset"])
    dog = vocab.set_index("synset").loc["dog.n.01"]
    assert list(dog["parents"]) == ["canine.n.02", "domestic_animal.n.01"]
    assert dog["seed"] and not vocab.set_index("synset").loc["canine.n.02", "seed"]
    assert vocab.set_index("synset").loc["entity.n.01", "depth"] == 0
    assert len(vocab.set_index("synset").loc["entity.n.01", "parents"]) == 0


def test_plain_word_takes_every_noun_sense_and_wnid_names_one_synset():
    word = set(convis_vocabulary.build_vocabulary(["dog"])["synset"])
    assert {"dog.n.01", "frump.n.01", "frank.n.02", "andiron.n.01", "pawl.n.01"} <= word
    assert set(convis_vocabulary.build_vocabulary(["n02084071"])["synset"]) == \
        set(convis_vocabulary.build_vocabulary(["dog.n.01"])["synset"])


def test_every_parent_is_inside_the_vocabulary():
    vocab = convis_vocabulary.build_vocabulary(["dog", "violin", "hot dog"])
    names = set(vocab["synset"])
    assert all(set(parents) <= names for parents in vocab["parents"])


def test_default_vocabulary_is_the_imagenet_closure():
    vocab = convis_vocabulary.build_vocabulary()
    assert len(vocab) == 1860 and vocab["seed"].sum() == 1000


def test_unknown_words_are_reported_together():
    with pytest.raises(InputDataError, match="'qwzxv'.*'dog.n.99'"):
        convis_vocabulary.build_vocabulary(["dog", "qwzxv", "dog.n.99"])


def test_hyponym_members_are_the_transitive_hyponyms_in_the_vocabulary(wn):
    vocab = convis_vocabulary.build_vocabulary(["dog.n.01", "cat.n.01", "violin.n.01"])
    members = convis_vocabulary.hyponym_members(vocab, "carnivore.n.01")
    assert set(vocab["synset"].iloc[members]) == {
        "carnivore.n.01", "canine.n.02", "dog.n.01", "feline.n.01", "cat.n.01"}
    # independent: the vocabulary synsets with carnivore.n.01 on a hypernym path
    carnivore = wn.synset("carnivore.n.01")
    expected = [i for i, name in enumerate(vocab["synset"])
                if any(carnivore in path for path in wn.synset(name).hypernym_paths())]
    assert members.tolist() == expected
    assert convis_vocabulary.hyponym_members(vocab, "dog.n.01").tolist() == [convis_vocabulary.synset_index(vocab, "dog.n.01")]
    assert len(convis_vocabulary.hyponym_members(vocab, "entity.n.01")) == len(vocab)
    with pytest.raises(InputDataError, match="bear.n.01"):
        convis_vocabulary.hyponym_members(vocab, "bear.n.01")


# ----------------------------------------------------------------------------- ranks

# Four synsets with cosines 1, 0, -1 and 0 to the image [1, 0]; lengths differ on purpose.
IMAGE = np.array([2.0, 0.0])
SYNSETS = np.array([[3.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, 5.0]])


def test_rank_sim_counts_strictly_less_similar_synsets():
    ranks = convis_volume.rank_sim(IMAGE, SYNSETS)
    # s0 beats 3; s1 and s3 tie at cos 0 and each beat only s2; s2 beats none
    assert ranks.tolist() == [3 / 4, 1 / 4, 0.0, 1 / 4]


def test_rank_sim_agrees_with_pairwise_count_on_tied_data():
    gen = np.random.default_rng(0)
    images = gen.standard_normal((5, 3))
    synsets = gen.standard_normal((6, 3))[gen.integers(0, 6, size=40)]  # repeated rows: exact ties
    ranks = convis_volume.rank_sim(torch.tensor(images), synsets).numpy()
    z = images @ synsets.T / np.linalg.norm(images, axis=1)[:, None] / np.linalg.norm(synsets, axis=1)
    brute = (z[:, None, :] < z[:, :, None]).sum(axis=2) / synsets.shape[0]
    np.testing.assert_allclose(ranks, brute)
    np.testing.assert_allclose(convis_volume.rank_sim(images[2], synsets).numpy(), brute[2])


def test_max_rank_sim_takes_the_best_member():
    assert convis_volume.max_rank_sim(IMAGE, SYNSETS, [1, 2]) == pytest.approx(1 / 4)
    assert convis_volume.max_rank_sim(IMAGE, SYNSETS, [2, 0]) == pytest.approx(3 / 4)
    batched = convis_volume.max_rank_sim(np.stack([IMAGE, [0.0, 1.0]]), SYNSETS, [1, 2])
    # second image [0, 1]: cosines 0, 1, 0, 1 -> s1 and s3 tie on top with rank 2/4
    assert batched.tolist() == [1 / 4, 2 / 4]


def test_top_synsets_ranks_by_own_rank_and_best_location():
    vocab = convis_vocabulary.build_vocabulary(["dog.n.01"]).iloc[:4].reset_index(drop=True)
    top = convis_vocabulary.top_synsets(convis_volume.rank_sim(IMAGE, SYNSETS), vocab, n=2)
    assert top["index"].tolist() == [0, 1] and top["score"].tolist() == [0.75, 0.25]
    counts = np.array([[0, 3, 1, 2], [2, 0, 3, 1]], dtype=np.uint16)  # best per column: 2, 3, 3, 2
    top = convis_vocabulary.top_synsets(counts, vocab, n=4)
    assert top["index"].tolist() == [1, 2, 0, 3]
    assert top["synset"].tolist() == vocab["synset"].iloc[[1, 2, 0, 3]].tolist()


# ----------------------------------------------------------------------------- patches

def test_valid_grid_starts_at_zero_and_includes_the_last_row_and_column():
    assert convis_grid.grid_starts(100, 64, 16).tolist() == [0, 16, 32, 36]  # 36 = 100 - 64
    assert convis_grid.grid_starts(96, 64, 16).tolist() == [0, 16, 32]  # the stride lands on 32
    assert convis_grid.grid_starts(64, 64, 16).tolist() == [0]
    assert convis_grid.grid_starts(451, 128, 32).tolist() == list(range(0, 321, 32)) + [323]


def test_patch_grid_anchors_every_size_at_one_top_left_corner():
    boxes = convis_grid.patch_grid(4, 11, sizes=(2, 4), stride=3)
    # valid corners: x 0, 3, 6 and the last column 7 = 11 - 4; y 0 = 4 - 4
    assert boxes.shape == (4, 2, 4)
    assert boxes[:, 1].tolist() == [[0, 0, 4, 4], [3, 0, 7, 4], [6, 0, 10, 4], [7, 0, 11, 4]]
    assert boxes[:, 0].tolist() == [[0, 0, 2, 2], [3, 0, 5, 2], [6, 0, 8, 2], [7, 0, 9, 2]]
    assert (boxes[:, 0, :2] == boxes[:, 1, :2]).all()  # S(i, j) and L(i, j) share (i, j)
    assert convis_grid.inside_locations(boxes, (4, 11)).all()


def test_noise_grid_anchors_every_size_at_one_top_left_corner():
    boxes = convis_grid.patch_grid(4, 11, sizes=(2, 4), stride=3, padding="noise")
    # corners -4 + 3k inside (-4, side): x -1, 2, 5, 8 (the last column included); y -1, 2
    assert boxes.shape == (8, 2, 4)
    assert boxes[:4, 1].tolist() == [[-1, -1, 3, 3], [2, -1, 6, 3], [5, -1, 9, 3], [8, -1, 12, 3]]
    assert boxes[:4, 0].tolist() == [[-1, -1, 1, 1], [2, -1, 4, 1], [5, -1, 7, 1], [8, -1, 10, 1]]
    assert boxes[4:, :, 1].min() == 2  # second row of locations
    assert (boxes[:, 0, :2] == boxes[:, 1, :2]).all()


def test_grid_sizes_at_224_and_at_a_native_resolution():
    # 224 px: valid corners 0, 16, ..., 96 = 7 per side, the noise grid's inside locations
    assert convis_grid.patch_grid(224, 224).shape == (49, 2, 4)
    assert convis_grid.grid_starts(224, 128, 16).tolist() == list(range(0, 97, 16))
    np.testing.assert_array_equal(
        convis_grid.patch_grid(224, 224),
        convis_grid.patch_grid(224, 224, padding="noise")[convis_grid.inside_locations(
            convis_grid.patch_grid(224, 224, padding="noise"), (224, 224))])
    # 375 x 500: corners 0..240 and 247 (17) down, 0..368 and 372 (25) across
    boxes = convis_grid.patch_grid(375, 500)
    assert boxes.shape == (17 * 25, 2, 4)
    assert boxes[..., :2].min() == 0 and boxes[:, 1, 2].max() == 500 and boxes[:, 1, 3].max() == 375
    assert boxes[:, 0, 0].max() == 372 and boxes[:, 0, 1].max() == 247


def test_noise_grid_sizes_at_224_and_at_a_native_resolution():
    # 224 px (the official crop): corners -112, -96, ..., 208 = 21 per side
    assert convis_grid.patch_grid(224, 224, padding="noise").shape == (441, 2, 4)
    assert convis_grid.grid_starts(224, 128, 16, padding="noise").tolist() == list(range(-112, 224, 16))
    # 375 x 500: corners -112..368 (31) down and -112..496 (39) across
    boxes = convis_grid.patch_grid(375, 500, padding="noise")
    assert boxes.shape == (31 * 39, 2, 4)
    assert boxes[..., :2].min() == -112 and boxes[:, 0, 0].max() == 496 and boxes[:, 0, 1].max() == 368
    assert convis_grid.inside_locations(convis_grid.patch_grid(224, 224, padding="noise"), (224, 224)).sum() == 7 * 7


def covering_counts(boxes: np.ndarray, height: int, width: int) -> np.ndarray:
    """How many patches cover each pixel, by a loop over the patches."""
    covering = np.zeros((height, width), dtype=int)
    for x0, y0, x1, y1 in boxes.reshape(-1, 4):
        covering[max(y0, 0):max(y1, 0), max(x0, 0):max(x1, 0)] += 1
    return covering


def test_every_pixel_is_covered_by_the_same_number_of_noise_grid_patches():
    # Sizes that are multiples of the stride: (128/16)^2 large + (64/16)^2 small patches per
    # pixel, which is why the official code can sum instead of averaging.
    assert (covering_counts(convis_grid.patch_grid(100, 150, padding="noise"), 100, 150) == 64 + 16).all()


def test_the_valid_grid_covers_every_pixel_from_inside_the_image():
    # 130 x 150 with sizes 64, 128: corners 0 and 2 down, 0, 16 and 22 across
    boxes = convis_grid.patch_grid(130, 150)
    assert sorted({int(v) for v in boxes[:, 0, 1]}) == [0, 2]
    assert sorted({int(v) for v in boxes[:, 0, 0]}) == [0, 16, 22]
    assert convis_grid.inside_locations(boxes, (130, 150)).all()
    covering = covering_counts(boxes, 130, 150)
    assert covering.min() >= 1 and covering[-1, -1] == 1  # the far corner: the last large patch


def test_stride_beyond_the_largest_patch_is_an_error():
    for padding in convis_grid.PADDINGS:
        with pytest.raises(ValueError, match="stride 200 exceeds the largest patch"):
            convis_grid.patch_grid(300, 300, stride=200, padding=padding)
    with pytest.raises(ValueError, match="convis.padding"):
        convis_grid.patch_grid(300, 300, padding="zeros")


def test_an_image_smaller_than_the_largest_patch_is_an_input_error():
    with pytest.raises(InputDataError, match=r"30 x 140 px.*\(128 px\).*convis.resize.*"
                                             r"convis.patch_sizes.*convis.padding: noise"):
        convis_grid.patch_grid(140, 30)
    with pytest.raises(InputDataError, match="side of 30 px"):
        convis_grid.grid_starts(30, 128, 16)
    image = Image.fromarray(np.zeros((12, 40, 3), dtype=np.uint8))
    with pytest.raises(InputDataError, match="40 x 12 px"):
        convis_volume.rank_volume(fake_clip(), image, np.ones((3, 192)), sizes=(4, 16), stride=4)


def test_small_images_get_a_noise_grid():
    boxes = convis_grid.patch_grid(40, 30, padding="noise")  # smaller than one patch: the padding holds the rest
    assert convis_grid.grid_starts(30, 128, 16, padding="noise").tolist() == list(range(-112, 30, 16))
    assert len(boxes) == 10 * 9 and not convis_grid.inside_locations(boxes, (40, 30)).any()


@pytest.mark.parametrize("padding", convis_grid.PADDINGS)
def test_every_pixel_is_the_mean_over_exactly_the_patches_covering_it(padding):
    height, width = 9, 11
    boxes = convis_grid.patch_grid(height, width, sizes=(2, 5), stride=2, padding=padding)
    values = np.random.default_rng(1).random(len(boxes))
    fast = convis_grid.coverage_average(values, boxes, (height, width))
    brute = np.zeros((height, width))
    for y in range(height):
        for x in range(width):
            covering = [values[l] for l in range(len(boxes)) for x0, y0, x1, y1 in boxes[l]
                        if x0 <= x < x1 and y0 <= y < y1]
            assert covering, "the grid leaves a pixel uncovered"
            brute[y, x] = np.mean(covering)
    np.testing.assert_allclose(fast, brute, rtol=1e-6, atol=1e-12)


def test_coverage_average_by_hand():
    # 1 x 4 image, two locations of one 1x2 and one 1x3 patch each; the second leaves the image
    boxes = np.array([[[0, 0, 2, 1], [0, 0, 3, 1]], [[2, 0, 4, 1], [2, 0, 5, 1]]])
    out = convis_grid.coverage_average([1.0, 4.0], boxes, (1, 4))
    # pixel 0: patches 1, 1; pixel 1: 1, 1; pixel 2: 1, 4, 4; pixel 3: 4, 4
    np.testing.assert_allclose(out[0], [1.0, 1.0, 3.0, 4.0])


def test_saliency_map_is_member_max_then_coverage_average():
    boxes = convis_grid.patch_grid(6, 8, sizes=(2, 4), stride=2)
    gen = np.random.default_rng(2)
    counts = gen.integers(0, 7, size=(len(boxes), 7)).astype(np.uint16)
    members = [1, 4, 5]
    expected = convis_grid.coverage_average(counts[:, members].max(axis=1) / 7, boxes, (6, 8))
    np.testing.assert_allclose(convis_grid.saliency_map(counts, boxes, members, (6, 8)), expected, rtol=1e-6)
    np.testing.assert_allclose(convis_grid.saliency_map(counts / 7.0, boxes, members, (6, 8)), expected, rtol=1e-6)


# ----------------------------------------------------------------------------- image frame
# (the centre square itself: tests/test_data.py, test_center_box_is_the_largest_centred_square)

def test_frame_image_is_native_or_a_resized_centre_crop():
    pixels = np.zeros((20, 30, 3), dtype=np.uint8)
    pixels[:, 5:25] = 200  # the centre square is flat
    image = Image.fromarray(pixels)
    assert convis_volume.frame_image(image).size == (30, 20)
    framed = convis_volume.frame_image(image, 8)
    assert framed.size == (8, 8) and (np.asarray(framed) == 200).all()
    with pytest.raises(ValueError, match="resize"):
        convis_volume.frame_image(image, -3)


def test_noise_padding_keeps_the_image_and_is_seeded():
    pixels = torch.full((3, 4, 5), 255, dtype=torch.uint8)
    padded = convis_volume.noise_padded(pixels, 3, seed=1)
    assert padded.shape == (3, 10, 11)
    assert (padded[:, 3:7, 3:8] == 255).all()
    border = padded.clone()
    border[:, 3:7, 3:8] = 0
    assert border.max() <= 254  # np.random.randint(0, 255): 255 never occurs
    assert torch.equal(padded, convis_volume.noise_padded(pixels, 3, seed=1))
    assert not torch.equal(padded, convis_volume.noise_padded(pixels, 3, seed=2))


# ----------------------------------------------------------------------------- rank volume

class PixelEncoder(torch.nn.Module):
    """A CLIP stand-in whose image embedding is its input, flattened (or its channel means)."""

    def __init__(self, channel_means: bool = False):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(()))
        self.channel_means = channel_means

    def encode_image(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * (x.mean(dim=(2, 3)) if self.channel_means else x.flatten(1))


def fake_clip(channel_means: bool = False, size: int = 8, module: torch.nn.Module | None = None,
              interpolation=T.InterpolationMode.BICUBIC) -> SimpleNamespace:
    preprocess = T.Compose([T.Resize(size, interpolation=interpolation),
                            T.CenterCrop(size), T.ToTensor(), T.Normalize([0.5] * 3, [0.25] * 3)])
    return SimpleNamespace(module=module or PixelEncoder(channel_means), preprocess=preprocess,
                           device=torch.device("cpu"))


@pytest.mark.parametrize("padding", convis_grid.PADDINGS)
def test_rank_volume_matches_a_patch_by_patch_computation(padding):
    gen = np.random.default_rng(3)
    image = Image.fromarray(gen.integers(0, 256, size=(12, 14, 3), dtype=np.uint8))
    clip = fake_clip()
    synsets = gen.standard_normal((9, 3 * 8 * 8))
    volume = convis_volume.rank_volume(clip, image, synsets, sizes=(4, 8), stride=3, batch_size=4, seed=5,
                                padding=padding)
    assert volume.shape == volume.source_shape == (12, 14) and volume.resize is None
    assert volume.rank_counts.dtype == np.uint16 and volume.padding == padding
    assert volume.boxes.tolist() == convis_grid.patch_grid(12, 14, (4, 8), 3, padding).tolist()
    assert volume.inside().all() == (padding == "none")
    # Patches cut by PIL from the image itself, or from it on its noise canvas (8 px each side).
    pad = 8 if padding == "noise" else 0
    canvas = convis_volume.noise_padded(convis_volume.image_pixels(image), 8, seed=5).permute(1, 2, 0).numpy()
    canvas = Image.fromarray(canvas) if pad else image
    embeddings = []
    for location in volume.boxes:
        patches = []
        for box in location:
            crop = T.functional.to_tensor(canvas.crop(tuple(int(v) + pad for v in box)))[None]
            crop = F.interpolate(crop, size=(8, 8), mode="bicubic", align_corners=False,
                                 antialias=True).clamp(0, 1)
            patches.append(F.normalize(((crop - 0.5) / 0.25).flatten(1), dim=1))
        embeddings.append(torch.cat(patches).mean(dim=0))  # mean of normalised embeddings
    expected = torch.stack(embeddings)
    np.testing.assert_allclose(volume.location_emb, F.normalize(expected, dim=1).numpy(), atol=2e-3)
    z = (F.normalize(expected, dim=1) @ F.normalize(torch.tensor(synsets, dtype=torch.float32), dim=1).T).numpy()
    np.testing.assert_array_equal(volume.rank_counts, (z[:, None, :] < z[:, :, None]).sum(axis=2))


def test_rank_volume_of_a_resized_centre_crop():
    gen = np.random.default_rng(6)
    image = Image.fromarray(gen.integers(0, 256, size=(10, 16, 3), dtype=np.uint8))
    volume = convis_volume.rank_volume(fake_clip(), image, gen.standard_normal((5, 192)), sizes=(4, 8),
                                stride=4, resize=8)
    assert volume.shape == (8, 8) and volume.source_shape == (10, 16) and volume.resize == 8
    assert volume.boxes.tolist() == convis_grid.patch_grid(8, 8, (4, 8), 4).tolist() == [[[0, 0, 4, 4], [0, 0, 8, 8]]]
    assert volume.saliency([0]).shape == (8, 8)


# ----------------------------------------------------------------------------- shards and batches

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny_clip():
    """The tests' tiny open_clip ViT (tests/data/tiny-clip.json), random weights, on the CPU."""
    return models.load_clip("tiny-clip", "random", model_config=str(REPO / "tests/data/tiny-clip.json"))


def photos(n: int, seed: int = 0) -> list[tuple[str, Image.Image]]:
    """``n`` random-noise images of different sizes (so images hold different patch counts)."""
    gen = np.random.default_rng(seed)
    return [(f"img{k}", Image.fromarray(gen.integers(0, 256, size=(70 + 20 * k, 66 + 25 * k, 3), dtype=np.uint8)))
            for k in range(n)]


def assert_same_volume(a: convis_grid.RankVolume, b: convis_grid.RankVolume) -> None:
    assert_same_volume_arrays(a.to_arrays(), b.to_arrays())


@pytest.mark.parametrize("padding", convis_grid.PADDINGS)
def test_a_volume_does_not_depend_on_the_images_sharing_its_call_or_batches(tiny_clip, padding):
    """Shards of 1 and 3 images: equal arrays, with batches (7 patches) that straddle images."""
    images = photos(3)
    synsets = np.random.default_rng(1).standard_normal((50, 64))
    kwargs = dict(sizes=(32, 64), stride=16, batch_size=7, seed=4, padding=padding)
    together = list(convis_volume.rank_volumes(tiny_clip, images, synsets, **kwargs))
    assert [key for key, _ in together] == [key for key, _ in images]  # input order
    patches = [len(volume.boxes) * 2 for _, volume in together]
    assert len(set(patches)) == 3 and all(n % 7 for n in patches)  # batches mix images
    for (key, image), (_, volume) in zip(images, together):
        [(alone_key, alone)] = convis_volume.rank_volumes(tiny_clip, [(key, image)], synsets, **kwargs)
        assert alone_key == key
        assert_same_volume(volume, alone)
    # and equal to the one-image function
    assert_same_volume(together[1][1], convis_volume.rank_volume(tiny_clip, images[1][1], synsets, **kwargs))


def test_every_clip_forward_has_the_batch_size(tiny_clip):
    shapes = []
    hook = tiny_clip.module.visual.register_forward_hook(lambda module, args, out: shapes.append(args[0].shape[0]))
    try:
        volumes = list(convis_volume.rank_volumes(tiny_clip, photos(2), np.ones((5, 64)), sizes=(32, 64),
                                           stride=16, batch_size=256))
    finally:
        hook.remove()
    n_patches = sum(2 * len(volume.boxes) for _, volume in volumes)
    assert shapes == [256] * -(-n_patches // 256)  # patches of both images share forwards


def test_a_too_small_image_is_named_in_the_error(tiny_clip):
    images = photos(1) + [("tiny/one", Image.new("RGB", (40, 90)))]
    with pytest.raises(InputDataError, match="image 'tiny/one'.*smaller than the largest patch"):
        list(convis_volume.rank_volumes(tiny_clip, images, np.ones((5, 64)), sizes=(32, 64), stride=16))


def test_float16_forward_keeps_the_ranks_that_maps_and_top_synsets_read(tiny_clip):
    """float16 autocast (CUDA's default, convis.precision: auto) against float32, run on the CPU.

    What the outputs read: rank counts (a map is a max over members then a mean over
    patches; top synsets are the best location's ranks). float16 keeps ~3 decimal digits
    of each patch embedding, so synsets whose cosines differ by less than that may swap:
    ranks move by a few counts out of S, never by a large amount, and the maps and top
    synsets the pipeline draws stay the same to within that."""
    (_, image), = photos(1, seed=5)
    synsets = np.random.default_rng(2).standard_normal((400, 64))
    kwargs = dict(sizes=(32, 64), stride=16)
    full = convis_volume.rank_volume(tiny_clip, image, synsets, precision="float32", **kwargs)
    half = convis_volume.rank_volume(tiny_clip, image, synsets, precision="float16", **kwargs)
    emb_full, emb_half = (v.location_emb.astype(np.float32) for v in (full, half))
    assert (emb_full * emb_half).sum(axis=1).min() > 0.999  # the same directions
    moved = np.abs(full.rank_counts.astype(int) - half.rank_counts.astype(int))
    assert moved.max() <= 0.02 * len(synsets) and moved.mean() < 0.5
    for a, b in zip(full.rank_counts, half.rank_counts):
        assert np.corrcoef(np.argsort(np.argsort(a)), np.argsort(np.argsort(b)))[0, 1] > 0.999
    vocab = pd.DataFrame({"synset": [f"s{k}.n.01" for k in range(400)], "lemma": "x", "definition": "y"})
    top_full, top_half = (convis_vocabulary.top_synsets(v.rank_counts, vocab, n=8) for v in (full, half))
    assert len(set(top_full["synset"]) & set(top_half["synset"])) >= 7
    np.testing.assert_allclose(top_full["score"], top_half["score"], atol=0.01)
    members = np.arange(0, 400, 37)
    np.testing.assert_allclose(full.saliency(members), half.saliency(members), atol=0.01)
    assert not np.array_equal(full.rank_counts, half.rank_counts)  # float16 did run


def test_shard_names_and_volume_paths_round_trip():
    from neuron_concepts import names, paths

    assert names.convis_shard_name(3) == "shard0003" and names.parse_convis_shard("shard0003") == 3
    assert names.parse_convis_shard(names.convis_shard_name(12345)) == 12345
    with pytest.raises(ValueError, match="no ConVis shard"):
        names.parse_convis_shard("shard3")
    folder = "results/convis/cub/ViT-B-32-openai/imagenet/anchored64-128-stride16-noise-r224"
    parts = dict(probe="cub", clip="ViT-B-32-openai", vocab="imagenet",
                 convis_grid="anchored64-128-stride16-noise-r224",
                 image="001.Black_footed_Albatross/a_1")
    path = paths.convis_volume(**parts)
    assert path == f"{folder}/ranks/001.Black_footed_Albatross/a_1.npz"
    assert paths.parse_convis_volume(path) == parts
    with pytest.raises(ValueError, match="no ConVis rank volume"):
        paths.parse_convis_volume(f"{folder}/maps/a_1/bird.n.01.npz")


def test_precision_auto_is_float16_on_cuda_only():
    assert convis_volume.forward_dtype("auto", "cuda") == torch.float16
    assert convis_volume.forward_dtype("auto", "cpu") is None
    assert convis_volume.forward_dtype("float32", "cuda") is None
    assert convis_volume.forward_dtype("float16", "cpu") == torch.float16
    with pytest.raises(ValueError, match="convis.precision"):
        convis_volume.forward_dtype("bfloat8", "cpu")


def test_crops_match_clip_preprocessing_of_the_cropped_image():
    image = Image.fromarray(np.tile(np.linspace(0, 255, 32, dtype=np.uint8), (32, 1))[..., None].repeat(3, 2))
    clip = fake_clip(size=16)
    box = np.array([[4, 8, 12, 16]])
    ours = convis_volume.crop_batch(convis_volume.image_pixels(image), box, convis_volume.clip_input_spec(clip))[0]
    theirs = clip.preprocess(image.crop((4, 8, 12, 16)))
    # torch's antialiased bicubic uses PIL's kernel; PIL rounds to uint8 on the way (2 / 255 / 0.25)
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), atol=0.032)


@pytest.mark.parametrize("padding", convis_grid.PADDINGS)
def test_saliency_of_a_colour_lies_where_the_colour_is(padding):
    pixels = np.zeros((16, 32, 3), dtype=np.uint8)
    pixels[:, :16, 0] = 255  # left half red
    pixels[:, 16:, 2] = 255  # right half blue
    # channel means of normalised input: red -> (2, -2, -2), blue -> (-2, -2, 2)
    synsets = np.array([[1.0, -1, -1], [-1, -1, 1], [-1, 1, -1]])  # red, blue, green
    volume = convis_volume.rank_volume(fake_clip(channel_means=True), Image.fromarray(pixels), synsets,
                                sizes=(4, 8), stride=2, batch_size=16, padding=padding)
    red, blue = volume.saliency([0]), volume.saliency([1])
    assert red.shape == (16, 32) and red.dtype == np.float32
    # Rows and columns 7..8 of each half: every patch covering them is pure red (pure blue),
    # no padding. There red ranks above blue and green: 2/3; on pure blue, red ties green at
    # the bottom: 0, exactly (counts are summed exactly).
    np.testing.assert_allclose(red[7:9, 7:9], 2 / 3, rtol=1e-6)
    np.testing.assert_allclose(blue[7:9, 23:25], 2 / 3, rtol=1e-6)
    assert (red[7:9, 23:25] == 0.0).all()
    assert red[:, :16].mean() > red[:, 16:].mean() + 0.3 and blue[:, 16:].mean() > blue[:, :16].mean() + 0.3
    # a max over members before averaging is at least either member's map
    assert (volume.saliency([0, 1]) >= np.maximum(red, blue) - 1e-6).all()


class SquareFraction(torch.nn.Module):
    """A constructed CLIP: the embedding of a patch is ``(cos, sin)(pi/2 * f)`` with ``f``
    the fraction of its (resized) pixels that are pure white, i.e. of the bright square.

    Padding noise never reaches 255 and the background is grey, so only the square counts.
    """

    def __init__(self):
        super().__init__()
        self.dummy = torch.nn.Parameter(torch.zeros(()))

    def encode_image(self, x: torch.Tensor) -> torch.Tensor:
        white = (x > 1.99).all(dim=1).float().mean(dim=(1, 2))  # normalised 255 = 2.0
        angle = white * torch.pi / 2
        return torch.stack([angle.cos(), angle.sin()], dim=1) + self.dummy


@pytest.mark.parametrize("padding", convis_grid.PADDINGS)
def test_constructed_square_map_peaks_on_the_square_and_equals_the_per_pixel_formula(padding):
    # 46 x 58: the stride 4 does not land on the last valid corners 30 and 42, so the valid
    # grid has an extra last row and column. Square (x0, y0, x1, y1) with even edges, at
    # least a large patch from the bottom and right edges: patches share their top-left
    # corner, so a pixel near those edges is covered only by locations above and left of it.
    height, width, square = 46, 58, (16, 12, 32, 28)
    pixels = np.full((height, width, 3), 128, dtype=np.uint8)
    pixels[square[1]:square[3], square[0]:square[2]] = 255
    sizes, stride = (8, 16), 4
    # CLIP input 8 px: the small patch goes in as it is, the large one by nearest resizing,
    # which picks one pixel of each aligned 2x2 block. Corners, square edges and the noise
    # padding (16 px) are even, so the white fraction of either input is exactly
    # area(patch & square) / area(patch).
    clip = fake_clip(size=8, module=SquareFraction(), interpolation=T.InterpolationMode.NEAREST)
    angles = np.pi / 2 * np.array([1.0, 0.8, 0.55, 0.3, 0.0, -0.2])  # synset directions
    synsets = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    members = [0, 1]  # "square" and one hyponym, the two closest to a white patch
    volume = convis_volume.rank_volume(clip, Image.fromarray(pixels), synsets, sizes=sizes, stride=stride,
                                batch_size=7, padding=padding)
    ours = volume.saliency(members)

    # The paper's formula, written out. Its grid: corners 0, 4, 8, ... up to side - 16 and
    # side - 16 itself (the last row and column); the official grid: -16 + 4k within the image.
    def corners(side: int) -> list[int]:
        if padding == "noise":
            return list(range(-16 + stride, side, stride))
        return sorted(set(range(0, side - 16 + 1, stride)) | {side - 16})

    def white_fraction(x0: int, y0: int, side: int) -> float:
        ix = max(0, min(x0 + side, square[2]) - max(x0, square[0]))
        iy = max(0, min(y0 + side, square[3]) - max(y0, square[1]))
        return ix * iy / side**2

    def unit(f: float) -> np.ndarray:
        return np.array([np.cos(np.pi / 2 * f), np.sin(np.pi / 2 * f)])

    locations = [(i, j) for j in corners(height) for i in corners(width)]
    if padding == "none":
        assert corners(height)[-2:] == [28, 30] and corners(width)[-2:] == [40, 42]
        assert all(0 <= i <= width - 16 and 0 <= j <= height - 16 for i, j in locations)
    assert len(locations) == len(volume.boxes)
    r = {}
    for i, j in locations:
        e = (unit(white_fraction(i, j, sizes[0])) + unit(white_fraction(i, j, sizes[1]))) / 2
        z = synsets @ e / np.linalg.norm(e)
        r[i, j] = max((z < z[m]).sum() / len(synsets) for m in members)  # max_rank_sim
    expected = np.zeros((height, width))
    for y in range(height):
        for x in range(width):
            covering = [r[i, j] for i, j in locations for side in sizes
                        if i <= x < i + side and j <= y < j + side]
            expected[y, x] = np.mean(covering)
    np.testing.assert_allclose(ours, expected, atol=1e-6)
    peak = np.unravel_index(np.argmax(ours), ours.shape)
    assert square[1] <= peak[0] < square[3] and square[0] <= peak[1] < square[2]
    inside = ours[square[1]:square[3], square[0]:square[2]].mean()
    assert inside > ours.mean() + 0.1 and max(ours[:4, :4].max(), ours[-4:, -4:].max()) < inside


def test_top_synsets_skip_locations_holding_padding():
    counts = np.array([[3, 0, 1, 2], [0, 1, 2, 3]], dtype=np.uint16)
    vocab = convis_vocabulary.build_vocabulary(["dog.n.01"]).iloc[:4].reset_index(drop=True)
    assert convis_vocabulary.top_synsets(counts, vocab, n=1)["index"].tolist() == [0]  # first one wins the tie
    assert convis_vocabulary.top_synsets(counts, vocab, n=1, locations=[False, True])["index"].tolist() == [3]
    assert convis_vocabulary.top_synsets(counts, vocab, n=1, locations=[False, False])["index"].tolist() == [0]


@pytest.mark.parametrize("padding", convis_grid.PADDINGS)
def test_rank_volume_round_trips_through_npz(tmp_path, padding):
    gen = np.random.default_rng(4)
    image = Image.fromarray(gen.integers(0, 256, size=(10, 12, 3), dtype=np.uint8))
    volume = convis_volume.rank_volume(fake_clip(), image, gen.standard_normal((5, 192)), sizes=(4, 8),
                                stride=2, resize=10, padding=padding)
    io.write_npz(tmp_path / "v.npz", **volume.to_arrays())
    back = convis_grid.RankVolume.from_arrays(io.read_npz(tmp_path / "v.npz"))
    assert back.shape == (10, 10) and back.source_shape == (10, 12) and back.resize == 10
    assert back.padding == padding
    # A volume written before the padding was stored: read from its boxes.
    old = {k: v for k, v in volume.to_arrays().items() if k != "padding"}
    assert convis_grid.RankVolume.from_arrays(old).padding == padding
    np.testing.assert_array_equal(back.rank_counts, volume.rank_counts)
    np.testing.assert_array_equal(back.saliency([1, 3]), volume.saliency([1, 3]))
    assert back.ranks.max() < 1.0


def test_overlay_figure_writes_a_png(tmp_path):
    image = Image.fromarray(np.full((20, 30, 3), 128, dtype=np.uint8))
    saliency = np.linspace(0, 1, 600, dtype=np.float32).reshape(20, 30)
    convis_figures.overlay_figure(image, saliency, tmp_path / "fig" / "map.png", title="dog.n.01")
    assert (tmp_path / "fig" / "map.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="differ in size"):
        convis_figures.overlay_figure(image, saliency.T, tmp_path / "bad.png")
