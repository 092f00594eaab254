"""The papers' experiment, planned (dry runs on placeholder folders, nothing computed).

ImageNet val as the probe set, WordNet's nouns, Broden-style and ImageNet concept sets,
ResNet-50 layer1-fc, both views and both similarities, every CLIP-Dissect variant and the
stability study: the job count stays small (a description job per layer and family,
scale.description_jobs' default, with every view, method and k of the layer inside; no job
per method), a probe set that only ConVis reads gets no description job, and every job that
can pick CUDA asks for a GPU, the description jobs with their GPU memory (gpu_mem_mb).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from conftest import REPO, Workflow, copy_workflow

pytestmark = pytest.mark.workflow

# A few dozen plus a description job per layer: the core experiment plans 79 (39 of them
# the 5 layers x 4 concept sets x 2 families of description jobs; 47 with one description
# job per concept set), the full experiment with ConVis a few more.
MAX_JOBS = 100


def paper_config(root: Path) -> dict:
    """config.yaml at the papers' scale, its folders placeholders under ``root``."""
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    for name in ("imagenet_val", "imagenet_train"):
        (root / name / "n01440764").mkdir(parents=True)
    (root / "broden.txt").write_text("striped\nwood\nsky\n")
    config.update(
        weights="random", device="auto",
        probe_sets={"imagenet_val": {"type": "imagefolder", "root": str(root / "imagenet_val")},
                    "imagenet_train": {"type": "imagefolder", "root": str(root / "imagenet_train")}},
        concept_sets={"imagenet": {"type": "imagenet"},
                      "imagenet_labels": {"type": "imagenet_labels"},
                      "wordnet_nouns": {"type": "wordnet_nouns"},
                      "broden": {"type": "file", "path": str(root / "broden.txt")}},
        evaluation={"probe_sets": ["imagenet_val"],
                    "concept_sets": ["imagenet", "imagenet_labels", "wordnet_nouns", "broden"]},
    )
    config["figures"]["sample_images"] = []
    # The papers' scale: the schema's default, one description job per layer (the demo
    # keeps one per concept set).
    config["scale"].pop("description_jobs")
    config["methods"]["www"]["n_images"] = 40
    config["methods"]["clip_dissect"]["softwpmi"]["top_k"] = 100
    config["methods"]["clip_dissect"]["wpmi"]["top_k"] = 28
    # ConVis's OOD evaluation reads ImageNet-train too; ConVis itself is checked at scale
    # in tests/test_convis_scale.py.
    config["convis"] = {**config["convis"], "probe": "imagenet_val", "images": [], "pairs": []}
    return config


def ood_reference_wnids() -> list[str]:
    """The ImageNet-1k classes ConVis OOD's image baseline reads from ImageNet-train: those
    under an in-distribution synset of the paper's pairs (rules/common.smk,
    convis_ood_reference_classes; 122 of the 1,000)."""
    from neuron_concepts import data, wordnet
    from neuron_concepts.convis_eval import OOD_PAIRS

    net = wordnet.open_wordnet()
    positives = {net.synset(positive).name() for positive, _ in OOD_PAIRS}
    return [wnid for wnid in data.imagenet_wnids() if positives & wordnet.self_and_hypernym_names(wnid)]


def imagenet_placeholders(root: Path, val_per_class: int = 50,
                          train_per_class: int = 1300) -> dict[str, int]:
    """ImageNet's layout in empty files (planning counts files and never opens one): val in
    the 1,000 class folders, ``val_per_class`` each (50: the 50,000 of the real split), and
    train's 1,000 class folders, of which the classes ConVis OOD reads
    (:func:`ood_reference_wnids`) hold ``train_per_class`` files (about the real ~1,280; the
    others stay empty, never listed). Replaces the one-folder placeholders of
    :func:`paper_config`. Returns the files per probe set, ``imagenet_train.ood_classes``
    the part ConVis OOD reads: 50,000 and 158,600 by default, about 12 s for the files."""
    import shutil

    from neuron_concepts import data

    used = set(ood_reference_wnids())
    for name in ("imagenet_val", "imagenet_train"):
        shutil.rmtree(root / name, ignore_errors=True)
    for index, wnid in enumerate(data.imagenet_wnids()):
        val, train = root / "imagenet_val" / wnid, root / "imagenet_train" / wnid
        val.mkdir(parents=True)
        train.mkdir(parents=True)
        for i in range(val_per_class):
            (val / f"ILSVRC2012_val_{index * val_per_class + i + 1:08d}.JPEG").touch()
        if wnid in used:
            for i in range(train_per_class):
                (train / f"{wnid}_{i}.JPEG").touch()
    return {"imagenet_val": 1000 * val_per_class,
            "imagenet_train.ood_classes": len(used) * train_per_class}


def cub_placeholders(root: Path) -> int:
    """CUB-200-2011's layout at its size (tests/test_convis_scale.py's builder: 200 classes
    of 59 images, 30 for training, so 5,800 test images; the real split has 5,794) under
    ``root / "cub"``; the number of its images (11,800)."""
    import test_convis_scale as placeholders

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(placeholders, "PER_CLASS", 59)
        patch.setattr(placeholders, "N_TRAIN_PER_CLASS", 30)
        test_ids = placeholders.build_placeholders(root)
    assert len(test_ids) == 5800
    return 200 * 59


def with_convis_ood_and_wsol(config: dict, root: Path) -> dict:
    """The papers' config with ConVis's OOD table (ImageNet val against ImageNet-train's
    reference classes) and WSOL on every CUB test image (:func:`cub_placeholders` in
    ``root``), the ImageNet vocabulary at stride 16."""
    config["probe_sets"]["cub"] = {"type": "imagefolder", "root": str(root / "cub" / "images")}
    config["convis"].update(
        vocabulary="imagenet", stride=16,
        ood={"probe": "imagenet_val", "train_probe": "imagenet_train"},
        wsol={"probe": "cub", "cub_root": str(root / "cub"), "synset": "bird.n.01"})
    return config


def plan(tmp_path: Path, config: dict) -> tuple[dict[str, int], str]:
    copy_workflow(tmp_path / "flow")
    flow = Workflow(tmp_path / "flow", config)
    out = flow.snakemake("-n").stdout
    return flow.planned_jobs(), out


def test_the_core_experiment_is_a_few_dozen_jobs(tmp_path):
    jobs, out = plan(tmp_path, paper_config(tmp_path))
    total = sum(jobs.values())
    assert total < MAX_JOBS, jobs
    # One description job per (probe set, concept set, layer) and family, whatever the number
    # of views, similarities and ks (the stability study's ks inside CLIP-Dissect's).
    assert jobs["www_descriptions"] == 4 * 5 and jobs["clip_dissect_descriptions"] == 4 * 5
    assert jobs["similarity"] == 4
    assert jobs["evaluate_descriptions"] == 4


def test_with_convis_ood_and_wsol_on_all_of_cub_it_stays_a_few_dozen_jobs(tmp_path):
    # CUB-200-2011's size: 200 classes, 5,800 test images (the real split has 5,794).
    cub_placeholders(tmp_path)
    config = with_convis_ood_and_wsol(paper_config(tmp_path), tmp_path)
    jobs, out = plan(tmp_path, config)
    assert sum(jobs.values()) < MAX_JOBS, jobs
    shards = {rule: n for rule, n in jobs.items() if rule.startswith("convis_rank_volume")}
    assert len(shards) == 6 and set(shards.values()) == {1}  # 1,024 images per job
    assert jobs["convis_wsol"] == jobs["convis_ood"] == 1
    # Neither CUB nor ImageNet-train is described.
    assert not re.search(r"(descriptions|similarity)/(cub|imagenet_train)/", out)


def test_a_probe_set_only_listed_as_a_probe_set_is_not_described_unless_asked(tmp_path):
    config = paper_config(tmp_path)
    jobs, out = plan(tmp_path, config)
    # imagenet_train is configured but neither evaluated nor listed under descriptions.
    assert "results/probe/imagenet_train/" not in out
    assert not re.search(r"(descriptions|similarity|image_emb|activations)/imagenet_train/", out)
    config["descriptions"] = {"probe_sets": ["imagenet_val", "imagenet_train"]}
    described, out = plan(tmp_path / "described", config)
    assert "results/descriptions/imagenet_train/" in out
    assert described["www_descriptions"] == 2 * jobs["www_descriptions"]


def test_every_job_that_can_pick_cuda_asks_for_a_gpu(tmp_path):
    _, out = plan(tmp_path, paper_config(tmp_path))
    # The rules whose script chooses the device (params: device=config["device"]).
    cuda_rules = set()
    for path in (REPO / "rules").glob("*.smk"):
        for block in re.split(r"\n(?=\s*rule \w+:)", path.read_text()):
            name = re.match(r"\s*rule (\w+):", block)
            if name and 'device=config["device"]' in block:
                cuda_rules.add(name.group(1))
    assert {"www_descriptions", "clip_dissect_descriptions", "similarity"} <= cuda_rules
    planned = 0
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", out)[1:]:
        rule = re.match(r"(?:local)?rule (\w+):", block).group(1)
        if rule in cuda_rules:
            planned += 1
            assert re.search(r"resources:.*\bgpu=1\b", block), (rule, block[:400])
        if rule in ("www_descriptions", "clip_dissect_descriptions"):
            # From the inputs' shapes (known once they exist), within scale.gpu_mem_mb.
            assert re.search(r"resources:.*\bgpu_mem_mb=", block), (rule, block[:400])
    assert planned > 10


def test_one_description_job_per_concept_set_keeps_the_old_count(tmp_path):
    config = paper_config(tmp_path)
    config["scale"]["description_jobs"] = "concept_set"
    jobs, out = plan(tmp_path, config)
    assert jobs["www_descriptions"] == 4 and jobs["clip_dissect_descriptions"] == 4
    assert "logs/www_descriptions/imagenet_val/wordnet_nouns.log" in out


def test_a_described_probe_set_must_be_configured(tmp_path):
    config = paper_config(tmp_path)
    config["descriptions"] = {"probe_sets": ["imagenet_test"]}
    copy_workflow(tmp_path / "flow")
    result = Workflow(tmp_path / "flow", config).snakemake("-n", check=False)
    assert result.returncode != 0
    assert "descriptions.probe_sets names 'imagenet_test'" in result.stdout


def test_at_imagenet_size_the_dry_run_lists_every_image_shard(tmp_path):
    """50,000 validation files (never opened: planning counts them) make five shards of
    scale.images_per_job (10,000, rounded up to whole batches) per image stage and view or
    model, each joined once; ConVis OOD lists and embeds only ImageNet-train's classes under
    an in-distribution synset (here one bird class of three)."""
    config = paper_config(tmp_path)
    val = tmp_path / "imagenet_val"
    for k in range(50):
        folder = val / f"n0{1440764 + k:07d}"
        folder.mkdir(exist_ok=True)
        for i in range(1000):
            (folder / f"ILSVRC2012_val_{k:02d}{i:04d}.JPEG").touch()
    train = tmp_path / "imagenet_train"
    for wnid in ("n01530575", "n02085620"):  # brambling (a bird), Chihuahua (a dog); tench exists
        (train / wnid).mkdir()
    for wnid in ("n01440764", "n01530575", "n02085620"):
        for i in range(10):
            (train / wnid / f"{wnid}_{i}.JPEG").touch()
    config["convis"]["ood"] = {"probe": "imagenet_val", "train_probe": "imagenet_train"}
    jobs, out = plan(tmp_path, config)
    for stage, join in (("activations", "join_activations"), ("image_embeddings", "join_image_embeddings"),
                        ("grad_cam", "join_grad_cam")):
        assert jobs[join] >= 1 and jobs[f"{stage}_shard"] == 5 * jobs[join], jobs
    assert "activations" not in jobs and "grad_cam" not in jobs  # no one-job rule for val
    assert "shards/rows40064-50000/" in out  # Grad-CAM and images: batches of 32
    # ImageNet-train: only the bird class's 10 files, one job, never the whole train set
    assert jobs["image_embeddings"] == 1
    assert "results/image_emb/imagenet_train.ood_classes/" in out
    assert "results/probe/imagenet_train/" not in out
