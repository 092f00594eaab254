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


def test_center_box_is_centred_square():
    assert data.center_box(300, 200) == (50, 0, 250, 200)
    assert data.center_box(5, 9) == (0, 2, 5, 7)


def test_normalise_concepts_strips_dedups_and_keeps_order():
    table = concepts.normalise_concepts(["  dog ", "", "cat", "dog", "  ", "hot   dog"])
    assert list(table.text) == ["dog", "cat", "hot dog"]
    assert list(table.concept_id) == [0, 1, 2]


def test_empty_concept_file_names_the_file(tmp_path):
    path = tmp_path / "empty.txt"
    path.write_text("\n   \n\n")
    with pytest.raises(InputDataError, match="empty.txt"):
        concepts.file_concepts(path)


def test_imagenet_concepts_in_class_order_with_synonyms():
    table = concepts.imagenet_concepts()
    synonyms = concepts.imagenet_class_synonyms()
    assert len(synonyms) == 1000 and synonyms[281] == ["tabby", "tabby cat"]
    assert list(table.text[:2]) == ["tench", "tinca tinca"]
    assert table.synset.iloc[0] == "n01440764"
    assert table.text.is_unique


def test_wordnet_nouns_cover_all_noun_synsets():
    from nltk.corpus import wordnet as wn

    table = concepts.wordnet_noun_concepts()
    assert sum(1 for _ in wn.all_synsets("n")) == 82115
    assert table.text.is_unique and not table.text.str.contains("_").any()
    assert table.text.iloc[0] == "entity" and "dog" in set(table.text)
