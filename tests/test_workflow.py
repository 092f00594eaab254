"""The workflow end to end on tiny random models: artifacts, the table, reruns and bad input."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from neuron_concepts import concepts, data, evaluation, io, metrics, names, paths, www
from neuron_concepts.activations import www_top_images
from neuron_concepts.similarity import cosine

pytestmark = pytest.mark.workflow

TARGET, CLIP = "resnet18-random", "tiny-clip-random"
METHOD = names.www_method_name("center", "cos", n_images=4, alpha=0.95)
COSINES = names.cosine_file_name("float32")
UPSTREAM = {"probe_manifest", "concept_set", "text_embeddings", "image_embeddings", "activations",
            "similarity", "evaluation_class_embeddings", "evaluation_text_embeddings",
            "download_weights"}


def _norms(x: np.ndarray) -> np.ndarray:
    return np.linalg.norm(x.astype(np.float32), axis=-1)


def test_artifacts_have_the_contracted_shapes_and_types(finished_workflow):
    path = finished_workflow.path
    manifest = io.read_parquet(path(paths.probe_manifest("demo")))
    assert list(manifest.columns) == ["image_id", "path", "label", "label_name", "width", "height"]
    n_images = len(manifest)
    assert n_images >= 20

    words = io.read_parquet(path(paths.concepts("words")))
    source = path("resources/concepts/demo_words.txt").read_text().splitlines()
    assert list(words.text) == [" ".join(s.split()) for s in source if s.strip()]  # duplicates kept

    text = io.read_npz(path(paths.text_embeddings(CLIP, "words")))
    assert text["emb"].dtype == np.float16 and text["emb"].shape == (len(words), 64)
    np.testing.assert_allclose(_norms(text["emb"]), 1, atol=2e-3)
    np.testing.assert_allclose(_norms(text["raw"]), 1, atol=2e-3)
    assert text["base"].shape == (64,)

    for layer, width in (("layer3-mean", 256), ("layer4-mean", 512), ("fc", 1000)):
        acts = io.read_npz(path(paths.activations("demo", TARGET, "center", layer)))
        assert acts["activations"].dtype == np.float32
        assert acts["activations"].shape == (n_images, width)
        assert list(acts["ids"]) == list(manifest.image_id)

    images = io.read_npz(path(paths.image_embeddings("demo", CLIP, "center")))
    assert images["emb"].dtype == np.float16 and images["emb"].shape == (n_images, 64)
    np.testing.assert_allclose(_norms(images["emb"]), 1, atol=2e-3)

    sims = io.read_npz(path(paths.similarity("demo", CLIP, "center", "words", COSINES)))
    assert sims["prompt"].dtype == np.float32 and sims["prompt"].shape == (n_images, len(words))
    expected = np.asarray(cosine(images["emb"].astype(np.float32), text["emb"].astype(np.float32)))
    np.testing.assert_allclose(sims["prompt"].astype(np.float32), expected, atol=3e-3)
    np.testing.assert_allclose(sims["base"].astype(np.float32),
                               np.asarray(cosine(images["emb"].astype(np.float32), text["base"][None]))[:, 0],
                               atol=3e-3)


def test_www_descriptions_equal_recomputation_from_embeddings(finished_workflow):
    path = finished_workflow.path
    words = io.read_parquet(path(paths.concepts("words")))
    text = io.read_embeddings(path(paths.text_embeddings(CLIP, "words")))
    images = io.read_embeddings(path(paths.image_embeddings("demo", CLIP, "center")))["emb"]
    acts = io.read_npz(path(paths.activations("demo", TARGET, "center", "layer4-mean")))["activations"]
    table = io.read_parquet(path(paths.descriptions("demo", TARGET, "layer4-mean", METHOD, "words")))
    top = www_top_images(acts, 4)
    for neuron in (0, 17, 511):
        scores = www.concept_scores(images[top[neuron]], text["emb"], text["base"].astype(np.float32))
        chosen = table[(table.neuron == neuron) & table.selected].sort_values("rank")
        stored = chosen.score.to_numpy()
        np.testing.assert_allclose(stored, scores[chosen.concept_id.to_numpy()], atol=3e-3)
        assert chosen.concept.iloc[0] == words.text[int(np.argmax(scores))] or \
            abs(scores.max() - stored[0]) < 3e-3  # float16 similarities may swap near-ties


def test_table_equals_independent_recomputation(finished_workflow):
    path = finished_workflow.path
    table = pd.read_csv(path(paths.table("concept_discovery", "csv")))
    synonyms = concepts.imagenet_class_synonyms()
    lines = data.imagenet_label_lines()
    for concept_set in ("imagenet", "words"):
        desc = io.read_parquet(path(paths.descriptions("demo", TARGET, "fc", METHOD, concept_set)))
        emb = io.read_embeddings(path(paths.evaluation_embeddings(CLIP, concept_set)))
        clip_embed = metrics.lookup_embedder(emb["ids"], emb["emb"])
        preds = evaluation.selected_predictions(desc, 1000)
        row = table[(table["style"] == "www") & (table["concepts"] == concept_set) &
                    (table["method"] == METHOD)].iloc[0]
        assert row.n_neurons == 1000
        assert row.hit_rate == pytest.approx(metrics.hit_rate(preds, synonyms), abs=1e-9)
        assert row.f1 == pytest.approx(metrics.f1_score(preds, synonyms), abs=1e-9)
        vectors = {t: v / np.linalg.norm(v) for t, v in zip(emb["ids"], emb["emb"].astype(np.float64))}
        clip_cos = np.mean([np.mean([vectors[p.lower()] @ vectors[s] for p in (pr or ["none"]) for s in syn])
                            for pr, syn in zip(preds, synonyms)])
        assert row.clip_cos == pytest.approx(100 * clip_cos, abs=1e-6)
        top1 = [[p] for p in desc[desc["rank"] == 0].sort_values("neuron").concept]
        cd = table[(table["style"] == "clip-dissect") & (table["concepts"] == concept_set) &
                   (table["method"] == METHOD)].iloc[0]
        expected = metrics.cosine_per_neuron(top1, [[line] for line in lines], clip_embed).mean()
        assert cd.clip_cos == pytest.approx(100 * expected, abs=1e-6)
        assert np.isnan(cd.top1_acc)  # class-index accuracy needs the imagenet_labels set
        if concept_set == "imagenet":
            assert cd.top1_synonym_acc == pytest.approx(metrics.hit_rate(top1, synonyms))
        else:
            assert np.isnan(cd.top1_synonym_acc)
    assert path(paths.table("concept_discovery", "md")).read_text().startswith("# Concept discovery")


def test_evaluation_embeddings_embed_each_class_name_once_and_the_concepts_by_the_model(
        finished_workflow):
    path = finished_workflow.path
    # Both evaluation models as the tiny config loads them (the sentence model: random MiniLM).
    specs = {CLIP: dict(kind="clip", model="tiny-clip", pretrained="random", seed=0,
                        model_config=str(path("tests/data/tiny-clip.json"))),
             "random": dict(kind="sentence", name="random", seed=0)}
    for model, spec in specs.items():
        classes = io.load_eval_embeddings(path(paths.evaluation_embeddings(model, "imagenet-classes")))
        assert list(classes.ids) == evaluation.class_texts()
        for concept_set in ("imagenet", "words"):
            texts = io.load_concepts(path(paths.concepts(concept_set)))["text"]
            emb = io.load_eval_embeddings(path(paths.evaluation_embeddings(model, concept_set)))
            assert list(emb.ids) == evaluation.evaluation_texts(texts)
            row = {t: i for i, t in enumerate(emb.ids)}
            # The class names' rows are the stored ones, byte for byte.
            np.testing.assert_array_equal(emb.emb[[row[t] for t in classes.ids]], classes.emb)
            new = sorted(set(emb.ids) - set(classes.ids))
            assert (concept_set == "imagenet") == (not new)  # its words are all class names
            if new:
                embed = evaluation.load_embedder(spec, device="cpu", batch_size=64)
                np.testing.assert_allclose(emb.emb[[row[t] for t in new]].astype(np.float32),
                                           embed(new), atol=2e-3)


def test_second_run_has_nothing_to_do(finished_workflow):
    assert finished_workflow.planned_jobs() == {}


@contextlib.contextmanager
def edited(path: Path, text: str):
    """Replace a file's text for the block, then restore its text and modification time."""
    stat, original = path.stat(), path.read_text()
    path.write_text(text)
    try:
        yield
    finally:
        path.write_text(original)
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def test_alpha_change_reruns_only_selection_evaluation_and_tables(finished_workflow):
    with finished_workflow.changed_config(lambda c: c["methods"]["www"].update(alpha=0.9)):
        jobs = finished_workflow.planned_jobs()
    # One WWW job per (probe set, concept set) describes all three layers (the tiny config
    # sets scale.description_jobs: concept_set, as the demo); one
    # evaluation job per concept set.
    assert jobs.get("www_descriptions") == 2
    assert jobs.get("evaluate_descriptions") == 2
    assert jobs.get("concept_discovery_table") == 1
    assert not UPSTREAM & set(jobs)


def test_concept_file_change_reruns_its_embeddings_and_dependents_only(finished_workflow):
    concept_file = finished_workflow.path("resources/concepts/demo_words.txt")
    with edited(concept_file, concept_file.read_text() + "zebra\n"):
        jobs = finished_workflow.planned_jobs()
    assert jobs.get("concept_set") == 1 and jobs.get("text_embeddings") == 1
    assert jobs.get("similarity") == 1 and jobs.get("www_descriptions") == 1
    # Its own evaluation texts only: the class names' embeddings are kept (and copied).
    assert jobs.get("evaluation_text_embeddings") == 1
    assert jobs.get("evaluate_descriptions") == 1
    assert not {"probe_manifest", "activations", "image_embeddings",
                "evaluation_class_embeddings"} & set(jobs)


def test_editing_a_workflow_script_reruns_that_rules_jobs(finished_workflow):
    script = finished_workflow.path("workflow_scripts/descriptions.py")
    with edited(script, script.read_text() + "\n# an edit\n"):
        jobs = finished_workflow.planned_jobs()
    assert jobs.get("www_descriptions") == 2
    assert not UPSTREAM & set(jobs)


# ------------------------------------------------------------------ bad input


def test_invalid_config_key_fails_before_any_job(workflow):
    workflow.config["target"]["layer"] = ["layer4"]  # a typo of "layers"
    workflow.write_config()
    result = workflow.snakemake("-n", check=False)
    assert result.returncode != 0
    assert "'layer' was unexpected" in result.stdout
    assert not workflow.path("results").exists()


def test_undefined_evaluation_probe_set_is_named(workflow):
    workflow.config["evaluation"]["probe_sets"] = ["imagenet_val"]
    workflow.write_config()
    result = workflow.snakemake("-n", check=False)
    assert result.returncode != 0 and "evaluation.probe_sets names 'imagenet_val'" in result.stdout


def test_unreadable_image_stops_the_probe_stage_listing_every_bad_file(workflow, tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    from PIL import Image

    Image.new("RGB", (8, 8)).save(folder / "ok.png")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n not really")
    (folder / "readme.txt").write_text("hello")
    workflow.config["probe_sets"]["photos"] = {"type": "folder", "root": str(folder)}
    workflow.write_config()
    result = workflow.snakemake(paths.probe_manifest("photos"), check=False)
    assert result.returncode != 0
    log = workflow.path("logs/probe_manifest/photos.log").read_text()
    assert "broken.png" in log and "readme.txt" in log and "skip_unreadable" in log
    assert not workflow.path(paths.probe_manifest("photos")).exists()

    workflow.config["probe_sets"]["photos"]["skip_unreadable"] = True
    workflow.write_config()
    workflow.snakemake(paths.probe_manifest("photos"))
    skipped = io.read_parquet(workflow.path(paths.probe_unreadable("photos")))
    assert sorted(skipped.image_id) == ["broken", "readme"]


def test_empty_concept_file_names_the_file(workflow):
    workflow.path("resources/concepts/empty.txt").write_text("\n  \n")
    workflow.config["concept_sets"]["empty"] = {"type": "file", "path": "resources/concepts/empty.txt"}
    workflow.write_config()
    result = workflow.snakemake(paths.concepts("empty"), paths.concepts("words"),
                                "--keep-going", check=False)
    assert result.returncode != 0
    assert "empty.txt holds no concept" in workflow.path("logs/concept_set/empty.log").read_text()
    assert workflow.path(paths.concepts("words")).exists()  # other work is kept


def test_missing_weights_offline_names_model_cache_and_fix(workflow):
    workflow.config["weights"] = "pretrained"
    workflow.write_config()
    marker = "resources/weights/markers/target/resnet18-IMAGENET1K_V1.json"
    result = workflow.snakemake(marker, check=False)
    assert result.returncode != 0
    log = workflow.path("logs/download_weights/resources/weights/target/resnet18-IMAGENET1K_V1.log").read_text()
    assert "target model resnet18 (IMAGENET1K_V1)" in log
    assert "resources/weights/torchvision" in log and "target.weights" in log
