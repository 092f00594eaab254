"""ConVis library: vocabulary closure, rank similarities, patch geometry and saliency aggregation."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torchvision import transforms as T

from neuron_concepts import convis, io
from neuron_concepts.errors import InputDataError

# ----------------------------------------------------------------------------- vocabulary


@pytest.fixture(scope="module")
def wn():
    from neuron_concepts.wordnet import ensure_wordnet

    ensure_wordnet()
    from nltk.corpus import wordnet

    return wordnet


def test_vocabulary_of_a_synset_is_its_hypernym_closure(wn):
    vocab = convis.build_vocabulary(["dog.n.01"])
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
    word = set(convis.build_vocabulary(["dog"])["synset"])
    assert {"dog.n.01", "frump.n.01", "frank.n.02", "andiron.n.01", "pawl.n.01"} <= word
    assert set(convis.build_vocabulary(["n02084071"])["synset"]) == \
        set(convis.build_vocabulary(["dog.n.01"])["synset"])


def test_every_parent_is_inside_the_vocabulary():
    vocab = convis.build_vocabulary(["dog", "violin", "hot dog"])
    names = set(vocab["synset"])
    assert all(set(parents) <= names for parents in vocab["parents"])


def test_default_vocabulary_is_the_imagenet_closure():
    vocab = convis.build_vocabulary()
    assert len(vocab) == 1860 and vocab["seed"].sum() == 1000


def test_unknown_words_are_reported_together():
    with pytest.raises(InputDataError, match="'qwzxv'.*'dog.n.99'"):
        convis.build_vocabulary(["dog", "qwzxv", "dog.n.99"])


def test_hyponym_members_are_the_transitive_hyponyms_in_the_vocabulary(wn):
    vocab = convis.build_vocabulary(["dog.n.01", "cat.n.01", "violin.n.01"])
    members = convis.hyponym_members(vocab, "carnivore.n.01")
    assert set(vocab["synset"].iloc[members]) == {
        "carnivore.n.01", "canine.n.02", "dog.n.01", "feline.n.01", "cat.n.01"}
    # independent: the vocabulary synsets with carnivore.n.01 on a hypernym path
    carnivore = wn.synset("carnivore.n.01")
    expected = [i for i, name in enumerate(vocab["synset"])
                if any(carnivore in path for path in wn.synset(name).hypernym_paths())]
    assert members.tolist() == expected
    assert convis.hyponym_members(vocab, "dog.n.01").tolist() == [convis.synset_index(vocab, "dog.n.01")]
    assert len(convis.hyponym_members(vocab, "entity.n.01")) == len(vocab)
    with pytest.raises(InputDataError, match="bear.n.01"):
        convis.hyponym_members(vocab, "bear.n.01")


# ----------------------------------------------------------------------------- ranks

# Four synsets with cosines 1, 0, -1 and 0 to the image [1, 0]; lengths differ on purpose.
IMAGE = np.array([2.0, 0.0])
SYNSETS = np.array([[3.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, 5.0]])


def test_rank_sim_counts_strictly_less_similar_synsets():
    ranks = convis.rank_sim(IMAGE, SYNSETS)
    # s0 beats 3; s1 and s3 tie at cos 0 and each beat only s2; s2 beats none
    assert ranks.tolist() == [3 / 4, 1 / 4, 0.0, 1 / 4]


def test_rank_sim_agrees_with_pairwise_count_on_tied_data():
    gen = np.random.default_rng(0)
    images = gen.standard_normal((5, 3))
    synsets = gen.standard_normal((6, 3))[gen.integers(0, 6, size=40)]  # repeated rows: exact ties
    ranks = convis.rank_sim(torch.tensor(images), synsets).numpy()
    z = images @ synsets.T / np.linalg.norm(images, axis=1)[:, None] / np.linalg.norm(synsets, axis=1)
    brute = (z[:, None, :] < z[:, :, None]).sum(axis=2) / synsets.shape[0]
    np.testing.assert_allclose(ranks, brute)
    np.testing.assert_allclose(convis.rank_sim(images[2], synsets).numpy(), brute[2])


def test_max_rank_sim_takes_the_best_member():
    assert convis.max_rank_sim(IMAGE, SYNSETS, [1, 2]) == pytest.approx(1 / 4)
    assert convis.max_rank_sim(IMAGE, SYNSETS, [2, 0]) == pytest.approx(3 / 4)
    batched = convis.max_rank_sim(np.stack([IMAGE, [0.0, 1.0]]), SYNSETS, [1, 2])
    # second image [0, 1]: cosines 0, 1, 0, 1 -> s1 and s3 tie on top with rank 2/4
    assert batched.tolist() == [1 / 4, 2 / 4]


def test_top_synsets_ranks_by_own_rank_and_best_location():
    vocab = convis.build_vocabulary(["dog.n.01"]).iloc[:4].reset_index(drop=True)
    top = convis.top_synsets(convis.rank_sim(IMAGE, SYNSETS), vocab, n=2)
    assert top["index"].tolist() == [0, 1] and top["score"].tolist() == [0.75, 0.25]
    counts = np.array([[0, 3, 1, 2], [2, 0, 3, 1]], dtype=np.uint16)  # best per column: 2, 3, 3, 2
    top = convis.top_synsets(counts, vocab, n=4)
    assert top["index"].tolist() == [1, 2, 0, 3]
    assert top["synset"].tolist() == vocab["synset"].iloc[[1, 2, 0, 3]].tolist()


# ----------------------------------------------------------------------------- patches

def test_patch_grid_is_concentric_and_ends_flush_with_the_image():
    boxes = convis.patch_grid(4, 11, sizes=(2, 4), stride=3)
    # largest (4 px) starts along x: 0, 3, 6 and a last one flush at 7; along y only 0
    assert boxes.shape == (4, 2, 4)
    assert boxes[:, 1].tolist() == [[0, 0, 4, 4], [3, 0, 7, 4], [6, 0, 10, 4], [7, 0, 11, 4]]
    assert boxes[:, 0].tolist() == [[1, 1, 3, 3], [4, 1, 6, 3], [7, 1, 9, 3], [8, 1, 10, 3]]


def test_default_grid_size_on_a_typical_image():
    boxes = convis.patch_grid(375, 500)
    assert boxes.shape == (17 * 25, 2, 4)
    assert boxes[..., [0, 1]].min() >= 0 and boxes[..., 2].max() == 500 and boxes[..., 3].max() == 375
    assert convis.patch_grid(224, 224).shape == (49, 2, 4)


def test_patch_larger_than_image_is_an_error():
    with pytest.raises(ValueError, match="128-px patch.*100 px"):
        convis.patch_grid(100, 300)


def test_every_pixel_is_the_mean_over_exactly_the_patches_covering_it():
    height, width = 9, 11
    boxes = convis.patch_grid(height, width, sizes=(2, 5), stride=2)
    values = np.random.default_rng(1).random(len(boxes))
    fast = convis.coverage_average(values, boxes, (height, width))
    brute = np.zeros((height, width))
    for y in range(height):
        for x in range(width):
            covering = [values[l] for l in range(len(boxes)) for x0, y0, x1, y1 in boxes[l]
                        if x0 <= x < x1 and y0 <= y < y1]
            assert covering, "the grid leaves a pixel uncovered"
            brute[y, x] = np.mean(covering)
    np.testing.assert_allclose(fast, brute, rtol=1e-6, atol=1e-12)


def test_coverage_average_by_hand():
    # 1 x 4 image, two locations of one 1x2 and one 1x3 patch each
    boxes = np.array([[[0, 0, 2, 1], [0, 0, 3, 1]], [[2, 0, 4, 1], [1, 0, 4, 1]]])
    out = convis.coverage_average([1.0, 4.0], boxes, (1, 4))
    # pixel 0: patches 1, 1; pixel 1: 1, 1, 4; pixel 2: 1, 4, 4; pixel 3: 4, 4
    np.testing.assert_allclose(out[0], [1.0, 2.0, 3.0, 4.0])


def test_saliency_map_is_member_max_then_coverage_average():
    boxes = convis.patch_grid(6, 8, sizes=(2, 4), stride=2)
    gen = np.random.default_rng(2)
    counts = gen.integers(0, 7, size=(len(boxes), 7)).astype(np.uint16)
    members = [1, 4, 5]
    expected = convis.coverage_average(counts[:, members].max(axis=1) / 7, boxes, (6, 8))
    np.testing.assert_allclose(convis.saliency_map(counts, boxes, members, (6, 8)), expected, rtol=1e-6)
    np.testing.assert_allclose(convis.saliency_map(counts / 7.0, boxes, members, (6, 8)), expected, rtol=1e-6)


# ----------------------------------------------------------------------------- rank volume

class PixelEncoder(torch.nn.Module):
    """A CLIP stand-in whose image embedding is its input, flattened (or its channel means)."""

    def __init__(self, channel_means: bool = False):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(()))
        self.channel_means = channel_means

    def encode_image(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * (x.mean(dim=(2, 3)) if self.channel_means else x.flatten(1))


def fake_clip(channel_means: bool = False, size: int = 8) -> SimpleNamespace:
    preprocess = T.Compose([T.Resize(size, interpolation=T.InterpolationMode.BICUBIC),
                            T.CenterCrop(size), T.ToTensor(), T.Normalize([0.5] * 3, [0.25] * 3)])
    return SimpleNamespace(module=PixelEncoder(channel_means), preprocess=preprocess,
                           device=torch.device("cpu"))


def test_rank_volume_matches_a_patch_by_patch_computation():
    gen = np.random.default_rng(3)
    image = Image.fromarray(gen.integers(0, 256, size=(12, 14, 3), dtype=np.uint8))
    clip = fake_clip()
    synsets = gen.standard_normal((9, 3 * 8 * 8))
    volume = convis.rank_volume(clip, image, synsets, sizes=(4, 8), stride=3, batch_size=4)
    assert volume.shape == (12, 14) and volume.rank_counts.dtype == np.uint16
    assert volume.boxes.tolist() == convis.patch_grid(12, 14, (4, 8), 3).tolist()
    embeddings = []
    for location in volume.boxes:
        patches = []
        for box in location:
            crop = T.functional.to_tensor(image.crop(tuple(int(v) for v in box)))[None]
            crop = F.interpolate(crop, size=(8, 8), mode="bicubic", align_corners=False,
                                 antialias=True).clamp(0, 1)
            patches.append(F.normalize(((crop - 0.5) / 0.25).flatten(1), dim=1))
        embeddings.append(torch.cat(patches).mean(dim=0))
    expected = torch.stack(embeddings)
    np.testing.assert_allclose(volume.location_emb, F.normalize(expected, dim=1).numpy(), atol=2e-3)
    z = (F.normalize(expected, dim=1) @ F.normalize(torch.tensor(synsets, dtype=torch.float32), dim=1).T).numpy()
    np.testing.assert_array_equal(volume.rank_counts, (z[:, None, :] < z[:, :, None]).sum(axis=2))


def test_crops_match_clip_preprocessing_of_the_cropped_image():
    image = Image.fromarray(np.tile(np.linspace(0, 255, 32, dtype=np.uint8), (32, 1))[..., None].repeat(3, 2))
    clip = fake_clip(size=16)
    box = np.array([[4, 8, 12, 16]])
    ours = convis.crop_batch(convis.image_pixels(image), box, convis.clip_input_spec(clip))[0]
    theirs = clip.preprocess(image.crop((4, 8, 12, 16)))
    # torch's antialiased bicubic uses PIL's kernel; PIL rounds to uint8 on the way (2 / 255 / 0.25)
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), atol=0.032)


def test_saliency_of_a_colour_lies_where_the_colour_is():
    pixels = np.zeros((16, 32, 3), dtype=np.uint8)
    pixels[:, :16, 0] = 255  # left half red
    pixels[:, 16:, 2] = 255  # right half blue
    # channel means of normalised input: red -> (2, -2, -2), blue -> (-2, -2, 2)
    synsets = np.array([[1.0, -1, -1], [-1, -1, 1], [-1, 1, -1]])  # red, blue, green
    volume = convis.rank_volume(fake_clip(channel_means=True), Image.fromarray(pixels), synsets,
                                sizes=(4, 8), stride=2, batch_size=16)
    red = volume.saliency([0])
    assert red.shape == (16, 32) and red.dtype == np.float32
    # pure red patches: red ranks above blue and green (tied at cos -1/3): 2/3; pure blue: 0
    np.testing.assert_allclose(red[:, :4], 2 / 3, rtol=1e-6)
    assert (red[:, -4:] == 0.0).all()  # counts are summed exactly
    blue = volume.saliency([1])
    np.testing.assert_allclose(blue[:, -4:], 2 / 3, rtol=1e-6)
    # a max over members before averaging is at least either member's map
    assert (volume.saliency([0, 1]) >= np.maximum(red, blue) - 1e-6).all()


def test_rank_volume_round_trips_through_npz(tmp_path):
    gen = np.random.default_rng(4)
    image = Image.fromarray(gen.integers(0, 256, size=(10, 10, 3), dtype=np.uint8))
    volume = convis.rank_volume(fake_clip(), image, gen.standard_normal((5, 192)), sizes=(4, 8), stride=2)
    io.write_npz(tmp_path / "v.npz", **volume.to_arrays())
    back = convis.RankVolume.from_arrays(io.read_npz(tmp_path / "v.npz"))
    assert back.shape == (10, 10)
    np.testing.assert_array_equal(back.rank_counts, volume.rank_counts)
    np.testing.assert_array_equal(back.saliency([1, 3]), volume.saliency([1, 3]))
    assert back.ranks.max() < 1.0


def test_overlay_figure_writes_a_png(tmp_path):
    image = Image.fromarray(np.full((20, 30, 3), 128, dtype=np.uint8))
    saliency = np.linspace(0, 1, 600, dtype=np.float32).reshape(20, 30)
    convis.overlay_figure(image, saliency, tmp_path / "fig" / "map.png", title="dog.n.01")
    assert (tmp_path / "fig" / "map.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="differ in size"):
        convis.overlay_figure(image, saliency.T, tmp_path / "bad.png")
