from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from neuron_concepts import concepts, data
from neuron_concepts.errors import InputDataError


def _image(path, size=(20, 10), color=(255, 0, 0)):
    Image.new("RGB", size, color).save(path)


def test_demo_probe_set_has_twenty_rgb_photographs(tmp_path):
    files = data.materialise_demo(tmp_path)
    manifest, unreadable = data.build_manifest(files)
    assert len(manifest) >= 20 and unreadable.empty
    assert list(manifest.columns) == data.MANIFEST_COLUMNS
    cat = manifest.set_index("image_id").loc["chelsea"]
    assert cat.label == "n02123045" and "tabby" in cat.label_name
    with Image.open(cat.path) as image:
        assert image.mode == "RGB" and image.size == (int(cat.width), int(cat.height))


def test_imagefolder_labels_from_synset_folders(tmp_path):
    for wnid in ("n01440764", "n02123045"):
        (tmp_path / wnid).mkdir()
        _image(tmp_path / wnid / "a.png")
    manifest, _ = data.build_manifest(data.scan_imagefolder(tmp_path))
    assert list(manifest.label) == ["n01440764", "n02123045"]
    assert list(manifest.label_name) == ["tench, Tinca tinca", "tabby, tabby cat"]
    assert list(manifest.width) == [20, 20] and list(manifest.height) == [10, 10]


def test_flat_folder_with_label_csv(tmp_path):
    _image(tmp_path / "x.png")
    _image(tmp_path / "y.png")
    csv = tmp_path.parent / "labels.csv"
    csv.write_text("image,label\nx.png,n02123045\n")
    manifest, _ = data.build_manifest(data.scan_flat_folder(tmp_path, csv))
    assert manifest.set_index("image_id").label.to_dict() == {"x": "n02123045", "y": pd.NA} or \
        manifest.label.isna().tolist() == [False, True]


def test_unreadable_files_are_all_listed(tmp_path):
    _image(tmp_path / "good.png")
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    files = data.scan_flat_folder(tmp_path)
    with pytest.raises(InputDataError) as err:
        data.build_manifest(files)
    assert "broken.jpg" in str(err.value) and "notes.txt" in str(err.value)
    assert "skip_unreadable" in str(err.value)
    manifest, unreadable = data.build_manifest(files, skip_unreadable=True)
    assert list(manifest.image_id) == ["good"]
    assert sorted(unreadable.image_id) == ["broken", "notes"]


@pytest.mark.parametrize("width, height, expected", [
    (300, 200, (50, 0, 250, 200)), (5, 9, (0, 2, 5, 7)), (60, 40, (10, 0, 50, 40)),
    (20, 61, (0, 20, 20, 40)), (7, 7, (0, 0, 7, 7)),
    # an odd excess: floor(excess / 2) before, ceil(excess / 2) after (the official ConVis crop)
    (11, 8, (1, 0, 9, 8)), (8, 12, (0, 2, 8, 10)), (5, 5, (0, 0, 5, 5))])
def test_center_box_is_the_largest_centred_square(width, height, expected):
    assert data.center_box(width, height) == expected


def test_normalise_concepts_strips_and_keeps_duplicates_in_order():
    table = concepts.normalise_concepts(["  dog ", "", "cat", "dog", "  ", "hot   dog"])
    assert list(table.text) == ["dog", "cat", "dog", "hot dog"]
    assert list(table.concept_id) == [0, 1, 2, 3]


def test_deduplicate_keeps_the_first_occurrence():
    table = concepts.normalise_concepts(["  dog ", "", "cat", "dog", "Dog", "hot   dog"], deduplicate=True)
    assert list(table.text) == ["dog", "cat", "Dog", "hot dog"]  # exact text: case matters
    assert list(table.concept_id) == [0, 1, 2, 3]


def test_concept_file_keeps_its_lines_unless_deduplicated(tmp_path):
    path = tmp_path / "words.txt"
    path.write_text("dog\n\ncat\n  dog  \n")
    assert list(concepts.concept_set({"type": "file", "path": str(path)}).text) == ["dog", "cat", "dog"]
    deduplicated = concepts.concept_set({"type": "file", "path": str(path), "deduplicate": True})
    assert list(deduplicated.text) == ["dog", "cat"]


def test_empty_concept_file_names_the_file(tmp_path):
    path = tmp_path / "empty.txt"
    path.write_text("\n   \n\n")
    with pytest.raises(InputDataError, match="empty.txt"):
        concepts.file_concepts(path)


def test_imagenet_label_lines_are_timms_with_the_documented_overrides():
    lines = data.imagenet_label_lines()
    assert len(lines) == 1000 and len(set(lines)) == 1000
    # timm names classes 134 and 517 both "crane"; the official lines tell them apart.
    assert len(data.IMAGENET_LABEL_OVERRIDES) == 2
    assert lines[134] == "crane, bird" and lines[517] == "crane, machine"
    assert lines[0] == "tench, Tinca tinca" and lines[281] == "tabby, tabby cat"
    assert lines[638] == "maillot" and lines[639] == "maillot, tank suit"
    assert lines[999] == "toilet tissue, toilet paper, bathroom tissue"
    wnids = data.imagenet_wnids()
    assert {wnids.index(w) for w in data.IMAGENET_LABEL_OVERRIDES} == {134, 517}


def test_imagefolder_label_names_are_the_official_lines(tmp_path):
    (tmp_path / "n02012849").mkdir()
    _image(tmp_path / "n02012849" / "a.png")
    manifest, _ = data.build_manifest(data.scan_imagefolder(tmp_path))
    assert list(manifest.label_name) == ["crane, bird"]


def test_imagenet_concepts_in_class_order_with_duplicates_and_case():
    table = concepts.imagenet_concepts()
    synonyms = concepts.imagenet_class_synonyms()
    assert len(synonyms) == 1000 and synonyms[281] == ["tabby", "tabby cat"]
    assert synonyms[134] == ["crane", "bird"] and synonyms[517] == ["crane", "machine"]
    assert list(table.text[:2]) == ["tench", "Tinca tinca"]  # original case, as WWW embeds it
    assert table.synset.iloc[0] == "n01440764"
    assert len(table) == sum(map(len, synonyms)) == 1862
    assert list(table.concept_id) == list(range(len(table)))
    assert list(table.loc[table.text == "crane", "synset"]) == ["n02012849", "n03126707"]
    deduplicated = concepts.concept_set({"type": "imagenet", "deduplicate": True})
    assert deduplicated.text.is_unique and len(deduplicated) == 1844


def test_imagenet_labels_concept_id_is_the_class_index():
    table = concepts.concept_set({"type": "imagenet_labels"})
    assert list(table.concept_id) == list(range(1000))
    assert list(table.text) == data.imagenet_label_lines()
    assert list(table.synset) == data.imagenet_wnids()


def test_unknown_concept_set_type_lists_the_types():
    from neuron_concepts.errors import ConfigError

    with pytest.raises(ConfigError, match="imagenet_labels"):
        concepts.concept_set({"type": "imagenet_synonyms"})


def test_duplicated_texts_are_embedded_once_and_shared(monkeypatch):
    import numpy as np

    from neuron_concepts import embeddings, models

    clip = models.load_clip("tiny-clip", "random", model_config="tests/data/tiny-clip.json")
    texts = ["dog", "cat", "dog", "hot dog", "cat", "dog"]
    encoded: list[int] = []
    # Either encoder (a template's shared tokens take the prefixed one) counts its rows.
    cut, prefixed = embeddings.encode_tokens_cut, embeddings.encode_tokens_prefixed
    monkeypatch.setattr(embeddings, "encode_tokens_cut",
                        lambda module, tokens: encoded.append(len(tokens)) or cut(module, tokens))
    monkeypatch.setattr(embeddings, "encode_tokens_prefixed", lambda module, tokens, prefix:
                        encoded.append(len(tokens)) or prefixed(module, tokens, prefix))
    for template in (None, "A photo of a {}"):
        encoded.clear()
        emb = embeddings.encode_texts(clip, texts, batch_size=2, template=template, progress=False)
        assert sum(encoded) == 3  # dog, cat, hot dog
        alone = np.concatenate([embeddings.encode_texts(clip, [t], template=template, progress=False)
                                for t in texts])
        np.testing.assert_allclose(emb, alone, atol=1e-5)
        np.testing.assert_array_equal(emb[0], emb[2])
        np.testing.assert_array_equal(emb[0], emb[5])


def test_wordnet_nouns_cover_all_noun_synsets():
    from nltk.corpus import wordnet as wn

    table = concepts.wordnet_noun_concepts()
    assert sum(1 for _ in wn.all_synsets("n")) == len(table) == 82115
    assert not table.text.str.contains("_").any()
    assert table.text.iloc[0] == "entity" and "dog" in set(table.text)


def test_header_sizes_equal_decoded_sizes_in_parallel(tmp_path):
    """The manifest reads headers only; its content is what a full decode gives."""
    import numpy as np

    rng = np.random.default_rng(0)
    for k, (size, suffix, mode) in enumerate([((20, 10), "png", "RGB"), ((7, 31), "jpg", "L"),
                                               ((64, 48), "gif", "P"), ((5, 5), "bmp", "RGB"),
                                               ((33, 17), "webp", "RGB"), ((9, 12), "png", "RGBA")]):
        pixels = rng.integers(0, 256, (size[1], size[0], 4 if mode == "RGBA" else 3), dtype=np.uint8)
        Image.fromarray(pixels).convert(mode).save(tmp_path / f"{k}.{suffix}")
    files = data.scan_flat_folder(tmp_path)
    decoded = []
    for path in files["path"]:
        with Image.open(path) as image:
            image.load()
            decoded.append(image.size)
    for workers in (1, 3):
        manifest, unreadable = data.build_manifest(files, workers=workers)
        assert unreadable.empty
        assert list(zip(manifest.width, manifest.height)) == decoded
        assert list(manifest.image_id) == list(files.image_id)
    pd.testing.assert_frame_equal(data.build_manifest(files, workers=1)[0],
                                  data.build_manifest(files, workers=3)[0])


def test_16_bit_grayscale_is_scaled_to_8_bits_not_clipped_white(tmp_path):
    from PIL import Image

    wide = (np.arange(64 * 64, dtype=np.uint32).reshape(64, 64) * 16).astype(np.uint16)
    Image.fromarray(wide).save(tmp_path / "g16.png")
    rgb = np.asarray(data.load_image(tmp_path / "g16.png"))
    expected = np.clip(np.rint(wide / 257.0), 0, 255).astype(np.uint8)
    assert rgb.shape == (64, 64, 3) and (rgb == expected[..., None]).all()
    assert (rgb == 255).mean() < 0.01  # PIL's convert("RGB") made 99% of it white
    assert np.array_equal(data.read_image(tmp_path / "g16.png").permute(1, 2, 0).numpy(), rgb)


def test_dangling_links_and_extreme_strips_are_listed_as_unreadable(tmp_path):
    import os

    from PIL import Image

    folder = tmp_path / "probe"
    folder.mkdir()
    Image.new("RGB", (50, 40)).save(folder / "ok.png")
    Image.new("RGB", (5000, 1)).save(folder / "strip.png")
    os.symlink("nowhere.png", folder / "dangling.png")
    os.symlink(".", folder / "loop.png")  # a link to its own folder
    files = data.scan_flat_folder(folder)
    assert sorted(Path(p).name for p in files["path"]) == ["dangling.png", "loop.png", "ok.png",
                                                           "strip.png"]
    with pytest.raises(InputDataError, match=r"(?s)3 probe file.*dangling.png \(no image\).*"
                                             r"strip.png \(an aspect ratio over 20:1\)"):
        data.build_manifest(files)
    manifest, unreadable = data.build_manifest(files, skip_unreadable=True)
    assert manifest["path"].map(lambda p: Path(p).name).tolist() == ["ok.png"]
    assert sorted(Path(p).name for p in unreadable["path"]) == ["dangling.png", "loop.png",
                                                                "strip.png"]
