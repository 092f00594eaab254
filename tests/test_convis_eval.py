"""ConVis evaluations: AUROC, the OOD pairs and scores, MaxBoxAcc, the box readers and the
WSOL image selection."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from sklearn.metrics import roc_auc_score

from neuron_concepts import convis_eval as ev, convis_grid, convis_vocabulary, convis_volume, data
from neuron_concepts.errors import InputDataError

# ----------------------------------------------------------------------------- AUROC


def test_auroc_by_hand_with_a_tie():
    # pairs (in, out): (1, 0) win, (1, 1) tie, (2, 0) win, (2, 1) win -> 3.5 / 4
    assert ev.auroc([1, 2], [0, 1]) == 0.875


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auroc_equals_sklearn_including_ties(seed):
    gen = np.random.default_rng(seed)
    s_in, s_out = gen.integers(0, 5, size=37), gen.integers(-1, 4, size=23)  # many ties
    labels = np.r_[np.ones(len(s_in)), np.zeros(len(s_out))]
    assert ev.auroc(s_in, s_out) == pytest.approx(roc_auc_score(labels, np.r_[s_in, s_out]), abs=1e-12)
    s_in, s_out = gen.random(50), gen.random(70) - 0.2
    labels = np.r_[np.ones(50), np.zeros(70)]
    assert ev.auroc(s_in, s_out) == pytest.approx(roc_auc_score(labels, np.r_[s_in, s_out]), abs=1e-12)


def test_auroc_needs_both_classes():
    with pytest.raises(ValueError, match="both classes"):
        ev.auroc([], [1.0])


# ----------------------------------------------------------------------------- OOD

def test_ood_pairs_name_disjoint_imagenet_class_sets():
    for positive, negative in ev.OOD_PAIRS:
        pos, neg = ev.classes_under(positive), ev.classes_under(negative)
        assert pos and neg and not set(pos) & set(neg)
    assert ev.classes_under("bear.n.01") == ["n02132136", "n02133161", "n02134084", "n02134418"]
    assert len(ev.classes_under("bird.n.01")) == 59


def test_classes_under_includes_the_synset_itself_and_keeps_wnid_order():
    wnids = ["n02088364", "n02084071", "n01530575"]  # beagle, dog, brambling
    assert ev.classes_under("dog.n.01", wnids) == ["n02088364", "n02084071"]
    assert ev.classes_under("beagle.n.01", wnids) == ["n02088364"]


def test_ood_scores_are_max_rank_sim_per_image():
    gen = np.random.default_rng(5)
    images, synsets, members = gen.standard_normal((7, 4)), gen.standard_normal((9, 4)), [2, 5]
    expected = [convis_volume.max_rank_sim(x, synsets, members) for x in images]
    np.testing.assert_allclose(ev.ood_scores(images, synsets, members, chunk_size=3), expected)


def test_image_baselines_by_hand():
    images = np.array([[1.0, 0.0], [0.0, 2.0]])
    references = np.array([[1.0, 0.0], [1.0, 1.0]])
    r = np.sqrt(0.5)
    np.testing.assert_allclose(ev.image_similarity_scores(images, references, "max"), [1.0, r], rtol=1e-6)
    np.testing.assert_allclose(ev.image_similarity_scores(images, references, "mean"), [(1 + r) / 2, r / 2],
                               rtol=1e-6)
    np.testing.assert_allclose(ev.definition_scores(images, np.array([0.0, 3.0])), [0.0, 1.0], atol=1e-7)


def test_ood_evaluation_on_one_hot_embeddings():
    brambling, beagle, violin = "n01530575", "n02088364", "n04536866"
    vocab = convis_vocabulary.build_vocabulary([brambling, beagle, violin])
    synset_emb = np.eye(len(vocab), len(vocab) + 3)  # every definition orthogonal to the others
    row = {name: convis_vocabulary.synset_index(vocab, name) for name in ["brambling.n.01", "beagle.n.01", "violin.n.01"]}
    image_emb = synset_emb[[row["brambling.n.01"]] * 3 + [row["beagle.n.01"]] * 2 + [row["violin.n.01"]]]
    labels = [brambling] * 3 + [beagle] * 2 + [violin]
    table = ev.ood_evaluation(image_emb, labels, synset_emb, vocab, pairs=[("bird.n.01", "hunting_dog.n.01")],
                              reference_emb=image_emb[:1], reference_wnids=[brambling])
    table = table.set_index("method")
    assert table.loc["convis", "n_in"] == 3 and table.loc["convis", "n_out"] == 2  # the violin is in neither
    # brambling images rank brambling.n.01 on top (a hyponym of bird); beagle images rank all birds last
    assert table.loc["convis", "auroc"] == 1.0
    assert table.loc["definition", "auroc"] == 0.5  # every image is orthogonal to bird's definition
    assert table.loc["image", "auroc"] == 1.0


# ----------------------------------------------------------------------------- WSOL

def test_component_box_corners_are_its_first_and_last_indices():
    mask = np.zeros((5, 6), dtype=bool)
    mask[1:3, 2:5] = True  # rows 1..2, columns 2..4
    assert ev.largest_component_box(mask).tolist() == [2, 1, 4, 2]  # as the official np_bbox2
    assert ev.largest_component_box(np.zeros((3, 3), bool)) is None


def test_diagonal_pixels_are_not_connected():
    mask = np.zeros((8, 8), dtype=bool)
    for i in range(5):
        mask[i, i] = True  # a diagonal of 5 pixels: one component under 8-connectivity
    mask[7, 5:7] = True    # a horizontal pair: the largest 4-connected component
    assert ev.largest_component_box(mask).tolist() == [5, 7, 6, 7]


def test_box_iou_by_hand():
    np.testing.assert_allclose(ev.box_iou([0, 0, 2, 2], [[1, 1, 3, 3], [0, 0, 2, 2], [5, 5, 6, 6]]),
                               [1 / 7, 1.0, 0.0])


def two_blob_map() -> tuple[np.ndarray, list[float], list[float]]:
    """A large dim blob and a small bright one, disjoint: their boxes."""
    saliency = np.zeros((40, 40))
    saliency[2:22, 2:22] = 0.5   # 400 pixels, value 0.5
    saliency[30:36, 30:36] = 1.0  # 36 pixels, value 1.0
    return saliency, [2, 2, 22, 22], [30, 30, 36, 36]


def test_largest_component_decides_the_box():
    saliency, large, small = two_blob_map()
    taus = np.arange(0, 1, 0.01)
    right_small = ev.box_hits(saliency, [small], taus)
    # tau <= 0.5: both blobs pass, the large (wrong) one is the box; above: only the small one
    assert not right_small[taus <= 0.5].any() and right_small[taus > 0.5].all()
    right_large = ev.box_hits(saliency, [large], taus)
    assert not right_large[0] and right_large[(taus > 0) & (taus <= 0.5)].all() and not right_large[taus > 0.5].any()
    assert ev.max_box_acc([saliency], [[small]]) == 100.0


def test_max_box_acc_known_answer_over_images():
    saliency, large, small = two_blob_map()
    wrong = np.zeros((40, 40))
    wrong[0:5, 35:40] = 1.0
    curve = ev.box_accuracy_curve([saliency, saliency * 7 + 3, wrong], [[small], [large], [small]])
    taus = np.arange(0, 1, 0.01)
    # tau = 0: whole-image boxes miss everywhere; (0, 0.5]: image 2 hits; above: image 1 hits
    assert curve[0] == 0.0
    np.testing.assert_allclose(curve[(taus > 0) & (taus <= 0.5)], 100 / 3)
    np.testing.assert_allclose(curve[taus > 0.5], 100 / 3)
    assert ev.max_box_acc([saliency, saliency * 7 + 3, wrong], [[small], [large], [small]]) == pytest.approx(100 / 3)


def test_best_ground_truth_box_counts():
    saliency, large, small = two_blob_map()
    assert ev.max_box_acc([saliency], [[[0, 0, 1, 1], small]]) == 100.0
    assert ev.max_box_acc([saliency], [[[0, 0, 1, 1]]]) == 0.0


def test_constant_map_gives_the_whole_image_at_every_threshold():
    # The official min-max division gives NaN, kept by every threshold: the whole image.
    np.testing.assert_array_equal(ev.normalize_map(np.full((3, 4), 0.3)), np.ones((3, 4)))
    hits = ev.box_hits(np.full((10, 10), 0.3), [[0, 0, 10, 10]], [0.0, 0.5, 0.99])
    assert hits.tolist() == [True, True, True]  # box (0, 0, 9, 9): IoU 0.81


def test_boxes_in_frame_follow_the_official_crop_and_scale():
    boxes = np.array([[10.0, 5.0, 60.0, 45.0], [0.0, 0.0, 30.0, 20.0]])
    np.testing.assert_array_equal(ev.boxes_in_frame(boxes, (50, 80), None), boxes)
    # 80 x 50: the square is x 15..65; scale 224 / 50 = 4.48; x, y, w, h truncated each
    # box 1: x 10 -> -5 (cut: w 50 -> 45), x 0, w 45; y 5, h 40 -> x 0, w 201, y 22, h 179
    # box 2: x 0 -> -15, w 30 -> 15; y 0, h 20 -> x 0, w 67, y 0, h 89
    np.testing.assert_array_equal(ev.boxes_in_frame(boxes, (50, 80), 224),
                                  [[0, 22, 201, 201], [0, 0, 67, 89]])
    # a box past the right side is cut there: x 60..90 of a 50 x 100 image -> 35..50 of 25..75
    np.testing.assert_array_equal(ev.boxes_in_frame([[60, 0, 90, 10]], (50, 100), 50), [[35, 0, 50, 10]])


def test_wsol_of_volumes_moves_boxes_into_each_map_frame():
    counts = np.array([[0, 3], [3, 0], [1, 1]], dtype=np.uint16)  # 3 locations, 2 synsets
    boxes = np.array([[[0, 0, 4, 4]], [[4, 0, 8, 4]], [[0, 4, 8, 8]]])
    native = convis_grid.RankVolume(counts, boxes, (8, 8), np.zeros((3, 2), np.float16))
    framed = convis_grid.RankVolume(counts, boxes, (8, 8), np.zeros((3, 2), np.float16),
                               source_shape=(16, 20), resize=8)
    gt = [np.array([[4.0, 0.0, 8.0, 4.0]]), np.array([[4.0, 0.0, 20.0, 8.0]])]
    result = ev.wsol_of_volumes(iter([native, framed]), gt, [0])
    frames = [gt[0], ev.boxes_in_frame(gt[1], (16, 20), 8)]
    maps = [native.saliency([0]), framed.saliency([0])]
    assert result["max_box_acc"] == ev.max_box_acc(maps, frames)
    assert result["n_images"] == 2


# ----------------------------------------------------------------------------- readers

def test_read_cub_boxes_converts_width_height_and_splits(tmp_path):
    (tmp_path / "images.txt").write_text("1 001.A/a_1.jpg\n2 001.A/a_2.jpg\n3 002.B/b_1.jpg\n")
    (tmp_path / "bounding_boxes.txt").write_text("1 60.0 27.0 325.0 304.0\n2 1 2 3 4\n3 0 0 10 10\n")
    (tmp_path / "train_test_split.txt").write_text("1 0\n2 1\n3 0\n")
    test = ev.read_cub_boxes(tmp_path)
    assert test["image_id"].tolist() == [1, 3]
    assert test.iloc[0][["x0", "y0", "x1", "y1"]].tolist() == [60.0, 27.0, 385.0, 331.0]
    assert test.iloc[0]["path"] == str(tmp_path / "images" / "001.A" / "a_1.jpg")
    assert ev.read_cub_boxes(tmp_path, split="train")["image_id"].tolist() == [2]
    assert len(ev.read_cub_boxes(tmp_path, split="all")) == 3
    (tmp_path / "train_test_split.txt").unlink()
    with pytest.raises(InputDataError, match="train_test_split.txt"):
        ev.read_cub_boxes(tmp_path)


def test_read_box_csv_groups_several_boxes_per_image(tmp_path):
    path = tmp_path / "boxes.csv"
    path.write_text("image,x0,y0,x1,y1\nb.jpg,0,0,5,5\na.jpg,1,1,2,2\nb.jpg,3,3,9,9\n")
    grouped = ev.group_boxes(ev.read_box_csv(path))
    assert list(grouped) == ["b.jpg", "a.jpg"]
    assert grouped["b.jpg"].tolist() == [[0, 0, 5, 5], [3, 3, 9, 9]]
    path.write_text("image,x0,y0,x1\na.jpg,1,1,2\n")
    with pytest.raises(InputDataError, match="lacks columns \\['y1'\\]"):
        ev.read_box_csv(path)


# ----------------------------------------------------------------------------- WSOL image selection

def test_sample_ids_is_a_seeded_sorted_subset_independent_of_input_order():
    ids = [f"img{i}" for i in range(10)]
    first = ev.sample_ids(ids, 4, seed=7)
    assert first == sorted(first) and len(set(first)) == 4 and set(first) <= set(ids)
    assert ev.sample_ids(list(reversed(ids)), 4, seed=7) == first
    assert ev.sample_ids(ids, None, seed=7) == sorted(ids)
    assert ev.sample_ids(ids, 20, seed=7) == sorted(ids)


def test_wsol_evaluation_of_a_map_stream_equals_max_box_acc():
    rng = np.random.default_rng(0)
    maps = [rng.random((20, 30)) for _ in range(4)]
    boxes = [np.array([[2.0, 3.0, 12.0, 15.0]]), np.array([[0.0, 0.0, 30.0, 20.0]]),
             np.array([[5.0, 5.0, 9.0, 9.0], [10.0, 2.0, 28.0, 18.0]]), np.array([[1.0, 1.0, 4.0, 4.0]])]
    result = ev.wsol_evaluation(iter(maps), boxes)
    assert result["max_box_acc"] == ev.max_box_acc(maps, boxes)
    curve = ev.box_accuracy_curve(maps, boxes)
    assert result["threshold"] == ev.DEFAULT_THRESHOLDS[int(np.argmax(curve))]
    assert result["n_images"] == 4


def test_wsol_ground_truth_maps_cub_rows_to_imagefolder_ids(tmp_path):
    cub_test = ["001.Black_footed_Albatross/a_1", "001.Black_footed_Albatross/a_2",
                "002.Laysan_Albatross/b_1"]
    files = cub_test + ["002.Laysan_Albatross/b_2"]  # the last one is a training image
    cub_boxes = {1: (10, 12, 40, 30), 2: (0, 0, 64, 60), 3: (30, 20, 90, 70), 4: (5, 5, 20, 20)}
    for name in files:
        path = tmp_path / "cub" / "images" / f"{name}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (96, 80)).save(path)
    (tmp_path / "cub" / "images.txt").write_text("".join(f"{i + 1} {name}.jpg\n" for i, name in enumerate(files)))
    (tmp_path / "cub" / "bounding_boxes.txt").write_text("".join(
        f"{i} {x0}.0 {y0}.0 {x1 - x0}.0 {y1 - y0}.0\n" for i, (x0, y0, x1, y1) in cub_boxes.items()))
    (tmp_path / "cub" / "train_test_split.txt").write_text("1 0\n2 0\n3 0\n4 1\n")

    truth = ev.wsol_ground_truth(cub_root=tmp_path / "cub", n_images=None)
    assert list(truth) == cub_test  # the test split only, by id
    np.testing.assert_array_equal(truth["002.Laysan_Albatross/b_1"], [cub_boxes[3]])
    # The id is what an imagefolder probe set rooted at cub/images calls the file.
    scanned = set(data.scan_imagefolder(tmp_path / "cub" / "images")["image_id"])
    assert set(truth) <= scanned
    sampled = ev.wsol_ground_truth(cub_root=tmp_path / "cub", n_images=2, seed=3)
    assert list(sampled) == ev.sample_ids(cub_test, 2, 3)
