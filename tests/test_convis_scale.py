"""ConVis at the papers' scale, planned and not run: jobs are sized by work, not by image.

A dry run with the paper's ConVis geometry (64/128-px patches, stride 16, the ImageNet
vocabulary) on placeholder folders: a CUB-200-2011 layout of a few thousand images for WSOL
(every test image, as the paper) and ImageNet-style synset folders for OOD. The rank volumes
come in shards of ``convis.images_per_job`` images and every other ConVis stage is one job,
so the ConVis job count is about the number of images / 64, not the number of images.
"""

from __future__ import annotations

import io as bytes_io
import math
from pathlib import Path

import pytest
import yaml
from PIL import Image

from conftest import REPO, Workflow, copy_workflow, tiny_config

pytestmark = pytest.mark.workflow

N_CLASSES, PER_CLASS = 200, 15  # 3,000 CUB images, 2 of each class for training
N_TRAIN_PER_CLASS = 2
WNIDS = ["n01530575", "n01531178", "n02088364", "n02099601", "n02123045", "n02124075"]


def placeholder_png() -> bytes:
    """A 2 x 2 PNG: the dry run only needs the files to exist."""
    buffer = bytes_io.BytesIO()
    Image.new("RGB", (2, 2)).save(buffer, format="PNG")
    return buffer.getvalue()


def build_placeholders(root: Path) -> list[str]:
    """A CUB layout (images.txt, bounding_boxes.txt, train_test_split.txt, images/) and two
    ImageNet-style folders (ood/, ood_train/) in ``root``; the CUB test image ids."""
    png = placeholder_png()
    cub = root / "cub"
    lines, boxes, split, test_ids = [], [], [], []
    for c in range(N_CLASSES):
        folder = f"{c + 1:03d}.Class_{c + 1}"
        (cub / "images" / folder).mkdir(parents=True)
        for k in range(PER_CLASS):
            index = len(lines) + 1
            name = f"{folder}/Class_{c + 1}_{k:04d}"
            (cub / "images" / f"{name}.jpg").write_bytes(png)
            is_train = k < N_TRAIN_PER_CLASS
            lines.append(f"{index} {name}.jpg\n")
            boxes.append(f"{index} 1.0 1.0 10.0 12.0\n")
            split.append(f"{index} {int(is_train)}\n")
            if not is_train:
                test_ids.append(name)
    (cub / "images.txt").write_text("".join(lines))
    (cub / "bounding_boxes.txt").write_text("".join(boxes))
    (cub / "train_test_split.txt").write_text("".join(split))
    for split_name, count in (("ood", 4), ("ood_train", 2)):
        for wnid in WNIDS:
            (root / split_name / wnid).mkdir(parents=True)
            for k in range(count):
                (root / split_name / wnid / f"{wnid}_{k}.png").write_bytes(png)
    return sorted(test_ids)


def paper_scale_config(figure_images: list[str]) -> dict:
    """The tiny config with ConVis at the paper's geometry: WSOL on every CUB test image, OOD
    on synset folders, and a few figures of CUB images."""
    config = tiny_config()
    config["probe_sets"].update(cub={"type": "imagefolder", "root": "cub/images"},
                                ood={"type": "imagefolder", "root": "ood"},
                                ood_train={"type": "imagefolder", "root": "ood_train"})
    config["convis"] = {
        "probe": "cub", "vocabulary": "imagenet", "vocabularies": {"imagenet": {}},
        "images": figure_images, "pairs": [{"image": figure_images[0], "synset": "bird.n.01"}],
        "patch_sizes": [64, 128], "stride": 16, "images_per_job": 64,
        "ood": {"probe": "ood", "train_probe": "ood_train"},
        "wsol": {"probe": "cub", "cub_root": "cub", "synset": "bird.n.01"},  # every test image
    }
    return config


def convis_jobs(jobs: dict[str, int]) -> dict[str, int]:
    """The planned jobs of ConVis rules (description and core jobs are counted elsewhere;
    the ``convis`` target rule runs nothing)."""
    return {rule: count for rule, count in jobs.items() if rule.startswith("convis_")}


@pytest.fixture(scope="module")
def scale_workflow(tmp_path_factory) -> tuple[Workflow, list[str]]:
    root = tmp_path_factory.mktemp("convis_scale")
    copy_workflow(root)
    test_ids = build_placeholders(root)
    # Figure images: the first test image of three classes, inside the WSOL folder's shards.
    figures = [test_ids[0], test_ids[PER_CLASS * 50], test_ids[-1]]
    return Workflow(root, paper_scale_config(figures)), test_ids


def test_paper_scale_convis_plans_a_job_per_shard_of_64_images(scale_workflow):
    flow, test_ids = scale_workflow
    jobs = convis_jobs(flow.planned_jobs("convis"))
    shards = {rule: count for rule, count in jobs.items() if rule.startswith("convis_rank_volume_")}
    n_images = len(test_ids)  # the figure images are test images: one folder, no extra shard
    assert n_images == N_CLASSES * (PER_CLASS - N_TRAIN_PER_CLASS) == 2600
    assert len(shards) == math.ceil(n_images / 64) == 41 and set(shards.values()) == {1}
    assert all(rule.startswith("convis_rank_volume_cub_imagenet_") for rule in shards)  # OOD: none
    others = {rule: count for rule, count in jobs.items() if rule not in shards}
    # vocabulary (and its definitions' embeddings), maps, top synsets, figures, OOD and WSOL
    # tables: one job each
    assert set(others.values()) == {1} and len(others) <= 8
    assert {"convis_vocabulary", "convis_saliency", "convis_top_synsets", "convis_figures",
            "convis_ood", "convis_wsol"} <= set(others)
    assert sum(jobs.values()) <= n_images / 64 + 8


def test_shards_are_sorted_ids_in_chunks_and_a_chunk_size_change_regroups_them(scale_workflow):
    flow, test_ids = scale_workflow
    out = flow.snakemake("-n", "-p", "convis").stdout
    by_shard = {}
    for block in out.split("\n\n"):
        if "rule convis_rank_volume_cub_imagenet_shard" in block:
            rule = block.split("rule ")[1].split(":")[0]
            line = next(l for l in block.splitlines() if l.strip().startswith("output:"))
            by_shard[rule] = [path.split("/ranks/")[1][:-len(".npz")]
                              for path in line.split("output: ")[1].split(", ")]
    ordered = [by_shard[rule] for rule in sorted(by_shard)]
    assert [image for shard in ordered for image in shard] == test_ids  # sorted, each once
    assert [len(shard) for shard in ordered] == [64] * 40 + [2600 - 40 * 64]
    with flow.changed_config(lambda c: c["convis"].update(images_per_job=500)):
        jobs = convis_jobs(flow.planned_jobs("convis"))
    assert sum(count for rule, count in jobs.items() if rule.startswith("convis_rank_volume_")) == 6


def test_the_demo_config_plans_a_handful_of_convis_jobs(tmp_path):
    copy_workflow(tmp_path)
    flow = Workflow(tmp_path, yaml.safe_load((REPO / "config.yaml").read_text()))
    jobs = convis_jobs(flow.planned_jobs())
    jobs.pop("convis_text_embeddings", None)  # the definitions' embeddings, one job
    assert jobs == {"convis_vocabulary": 1, "convis_rank_volume_demo_demo_shard0000": 1,
                    "convis_saliency": 1, "convis_top_synsets": 1, "convis_figures": 1}
