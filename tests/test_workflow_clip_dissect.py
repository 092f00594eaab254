"""CLIP-Dissect and the stability study run through Snakemake on the tiny workflow.

One run (module fixture) of the tiny config with CLIP-Dissect and the stability study turned
on for two layers; the tests read its artifacts and recompute them independently, and check
what a parameter change reruns through Snakemake's own dry run.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from conftest import Workflow, layer_path_name, tiny_config
from neuron_concepts import clip_dissect, embeddings, io, models, paths

pytestmark = pytest.mark.workflow

LAYERS = ["layer4", "fc"]  # module paths; in paths: layer_path_name
SOFT = {"top_k": 10, "a": 10, "lam": 1, "p_start": 0.998, "p_end": 0.97}
WPMI = {"top_k": 4, "a": 2, "lam": 0.6}
KS = [5, 10, 16]  # the demo probe set has 22 images
N_BEST = 5
# What this file checks; other families' outputs (figures, provenance) are left out to keep
# the run short.
TARGETS = ["results/tables/concept_discovery.csv", "results/tables/stability.csv"]


def clip_dissect_config() -> dict:
    config = tiny_config(layers=LAYERS, concept_set="words")
    config["methods"]["clip_dissect"] = {"variants": ["softwpmi", "wpmi"], "similarities": ["cos"],
                                         "n_best": N_BEST, "softwpmi": dict(SOFT),
                                         "wpmi": dict(WPMI)}
    config["stability"] = {"variants": ["softwpmi"], "similarities": ["cos"], "ks": KS,
                           "base_k": 5, "n_best": N_BEST}
    return config


@pytest.fixture(scope="module")
def run(run_workflow) -> Workflow:
    return run_workflow(clip_dissect_config(), *TARGETS)


def target_dir(flow: Workflow) -> str:
    (target,) = [p.name for p in flow.path("results/activations/demo").iterdir()]
    return target


def clip_dir(flow: Workflow) -> str:
    (clip,) = [p.name for p in flow.path("results/similarity/demo").iterdir()]
    return clip


def description(flow: Workflow, layer: str, method: str) -> pd.DataFrame:
    return io.read_parquet(flow.path(paths.descriptions("demo", target_dir(flow), layer, method, "words")))


@pytest.mark.parametrize("layer", [layer_path_name(layer) for layer in LAYERS])
def test_softwpmi_descriptions_equal_a_recomputation_from_the_artifacts(run, layer):
    target, clip = target_dir(run), clip_dir(run)
    acts = io.read_npz(run.path(f"results/activations/demo/{target}/center/{layer}.npz"))
    raw = io.read_npz(run.path(f"results/similarity/demo/{clip}/center/words/cos.npz"))["raw"]
    texts = io.load_concepts(run.path("results/concepts/words.parquet"))["text"].to_numpy()
    for method, top_k in (("softwpmi-center-cos-k10", 10), ("softwpmi-center-cos-k16", 16)):
        params = {**SOFT, "top_k": top_k}
        scores = clip_dissect.soft_wpmi(raw, acts["activations"], **params)
        best = np.argsort(-scores.astype(np.float64), axis=1, kind="stable")[:, :N_BEST]
        table = description(run, layer, method).sort_values(["neuron", "rank"])
        n_neurons = acts["activations"].shape[1]
        assert table["neuron"].tolist() == np.repeat(np.arange(n_neurons), N_BEST).tolist()
        assert table["concept_id"].to_numpy().reshape(n_neurons, N_BEST).tolist() == best.tolist()
        assert table["concept"].tolist() == texts[best.ravel()].tolist()
        np.testing.assert_allclose(table["score"].to_numpy(),
                                   np.take_along_axis(scores, best, axis=1).ravel(), rtol=1e-6)
        assert table["selected"].tolist() == (table["rank"] == 0).tolist()
        assert not table["fallback"].any()


def test_wpmi_descriptions_equal_a_recomputation_from_the_artifacts(run):
    target, clip = target_dir(run), clip_dir(run)
    acts = io.read_npz(run.path(f"results/activations/demo/{target}/center/fc.npz"))["activations"]
    raw = io.read_npz(run.path(f"results/similarity/demo/{clip}/center/words/cos.npz"))["raw"]
    scores = clip_dissect.wpmi(raw, acts, **WPMI)
    table = description(run, "fc", "wpmi-center-cos-k4").sort_values(["neuron", "rank"])
    best = np.argsort(-scores.astype(np.float64), axis=1, kind="stable")[:, :N_BEST]
    assert table["concept_id"].to_numpy().reshape(best.shape).tolist() == best.tolist()


def test_final_layer_is_evaluated_in_the_clip_dissect_style(run):
    table = pd.read_csv(run.path("results/tables/concept_discovery.csv"))
    cd = table[table["method"].str.contains("wpmi")]
    assert sorted(cd["method"]) == ["softwpmi-center-cos-k10", "wpmi-center-cos-k4"]
    assert set(cd["style"]) == {"clip-dissect"}
    assert cd["clip_cos"].notna().all() and cd["mpnet_cos"].notna().all()


def test_stability_table_equals_a_recomputation_from_the_descriptions(run):
    table = pd.read_csv(run.path("results/tables/stability.csv"))
    assert table[["layer", "k_from", "k_to"]].values.tolist() == [
        [layer_path_name(layer), 5, k] for layer in LAYERS for k in KS[1:]]
    assert set(table["variant"]) == {"softwpmi"} and set(table["concepts"]) == {"words"}
    for row in table.itertuples():
        def top(k):
            d = description(run, row.layer, f"softwpmi-center-cos-k{k}")
            d = d[d["rank"] < N_BEST].sort_values(["neuron", "rank"])
            return [list(g) for _, g in d.groupby("neuron")["concept"]]

        base, other = top(row.k_from), top(row.k_to)
        same_set = [set(a) == set(b) for a, b in zip(base, other)]
        jaccard = [len(set(a) & set(b)) / len(set(a) | set(b)) for a, b in zip(base, other)]
        assert row.n_neurons == len(base)
        assert row.stability_pct == pytest.approx(100 * np.mean(same_set))
        assert row.top1_agreement_pct == pytest.approx(
            100 * np.mean([a[0] == b[0] for a, b in zip(base, other)]))
        assert row.mean_jaccard == pytest.approx(np.mean(jaccard))
    assert run.path("results/tables/stability.md").read_text().startswith("# Stability")
    assert run.path("results/figures/stability.png").read_bytes()[:4] == b"\x89PNG"


def test_the_shared_clip_embeds_each_text_once_for_clip_dissect_and_the_evaluation(run):
    """clip.dissect = clip.eval here (the papers' ViT-B/16): CLIP-Dissect's raw strings copy
    the class names' evaluation rows, the evaluation copies the concepts' raw rows, and the
    copies equal the model's own embedding of the text."""
    clip = clip_dir(run)
    concepts = io.load_concepts(run.path("results/concepts/words.parquet"))["text"].astype(str).tolist()
    raw = io.load_text_embeddings(run.path(f"results/text_emb/{clip}/words.npz"), parts=["raw"]).raw
    classes = io.load_eval_embeddings(run.path(f"results/eval_emb/{clip}/imagenet-classes.npz"))
    evaluated = io.load_eval_embeddings(run.path(f"results/eval_emb/{clip}/words.npz"))
    class_row = {str(t): i for i, t in enumerate(classes.ids)}
    eval_row = {str(t): i for i, t in enumerate(evaluated.ids)}
    shared = [i for i, text in enumerate(concepts) if text.lower() in class_row]
    assert shared, "the demo words share no text with the ImageNet class names"
    for i in shared:  # CLIP's tokenizer lower-cases: equal tokens, the class name's row
        assert np.array_equal(raw[i], classes.emb[class_row[concepts[i].lower()]])
    for i, text in enumerate(concepts):  # every concept string the evaluation embeds
        if text in eval_row:
            assert np.array_equal(evaluated.emb[eval_row[text]], raw[i]), text
    model = models.load_clip("tiny-clip", "random", model_config=str(run.path("tests/data/tiny-clip.json")))
    direct = embeddings.encode_texts(model, [concepts[i] for i in shared] + concepts[:3], progress=False)
    copied = np.concatenate([raw[shared], raw[:3]]).astype(np.float32)
    np.testing.assert_allclose(copied, direct, atol=2e-3)  # float16 artifacts


def test_new_sentence_model_class_embeddings_rerun_no_clip_stage(run):
    """The class names are embedded in one job per evaluation model: a newer sentence-model
    file (a changed sentence model) reruns the evaluations, not CLIP-Dissect's text
    embeddings that copy the CLIP's class rows."""
    assert run.planned_jobs(*TARGETS) == {}
    (sentence,) = [p for p in run.path("results/eval_emb").glob("*/imagenet-classes.npz")
                   if p.parent.name != clip_dir(run)]
    before = sentence.stat()
    os.utime(sentence, (before.st_atime + 60, before.st_mtime + 60))
    try:
        jobs = run.planned_jobs(*TARGETS)
    finally:
        os.utime(sentence, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert jobs == {"evaluation_text_embeddings": 1, "evaluate_descriptions": 1,
                    "concept_discovery_table": 1}


def test_a_template_change_re_embeds_nothing_for_the_evaluation(run):
    """text_embeddings rewrites clip.dissect's raw strings when WWW's template changes; the
    evaluation copies rows from them, but the rows are the same, so it does not rerun."""
    assert run.planned_jobs(*TARGETS) == {}

    def change(config):
        config["methods"]["www"]["template"] = "A picture of a {}"

    with run.changed_config(change):
        jobs = run.planned_jobs(*TARGETS)
    assert jobs.get("text_embeddings") == 1
    assert not {"evaluation_class_embeddings", "evaluation_text_embeddings"} & set(jobs)


def test_softwpmi_a_change_reruns_only_descriptions_evaluation_and_tables(run):
    assert run.planned_jobs(*TARGETS) == {}

    def change(config):
        config["methods"]["clip_dissect"]["softwpmi"]["a"] = 5

    with run.changed_config(change):
        jobs = run.planned_jobs(*TARGETS)
    # The one CLIP-Dissect job of the concept set (both layers, every k and variant), not
    # the embeddings or cosines. At k = 10 the old a equals top_k and the new a equals
    # n_best: params compared as a bag of values (Snakemake's way) would miss this change,
    # so each method's scoring is one dict.
    assert jobs == {"clip_dissect_descriptions": 1, "evaluate_descriptions": 1,
                    "concept_discovery_table": 1, "stability_table": 1}


def test_top_k_above_the_probe_set_stops_with_the_config_key(run):
    def change(config):
        config["methods"]["clip_dissect"]["wpmi"]["top_k"] = 30

    with run.changed_config(change):
        result = run.snakemake("results/descriptions/demo/" + target_dir(run)
                               + "/fc/wpmi-center-cos-k30/words.parquet", check=False)
    assert result.returncode != 0
    log = run.path("logs/clip_dissect_descriptions/demo/words.log").read_text()
    assert "methods.clip_dissect.wpmi.top_k" in log and "at most 22" in log


@pytest.mark.parametrize("key, value, message", [
    ("base_k", 7, "stability.base_k 7 is not in stability.ks"),
    ("n_best", 12, "stability.n_best 12 exceeds methods.clip_dissect.n_best"),
])
def test_inconsistent_stability_config_stops_before_any_job(workflow, key, value, message):
    workflow.config = clip_dissect_config()
    workflow.config["stability"][key] = value
    workflow.write_config()
    result = workflow.snakemake("-n", check=False)
    assert result.returncode != 0
    assert message in result.stdout


def rule_inputs(dry_run: str, rule: str) -> list[str]:
    """The ``input:`` line of every job of ``rule`` in a dry run's output."""
    blocks = dry_run.split(f"rule {rule}:")[1:]
    return [next(line for line in block.splitlines() if line.strip().startswith("input:"))
            for block in blocks]


def test_clip_dissect_matches_with_its_own_clip_model(run):
    """clip.dissect names another model than clip.match: CLIP-Dissect's image embeddings and
    cosines come from it (a dry run: the model is never loaded), WWW's stay with clip.match."""
    def change(config):
        config["clip"]["dissect"] = {"model": "ViT-B-16", "pretrained": "openai"}

    with run.changed_config(change):
        out = run.snakemake("-n", *TARGETS).stdout
    dissect = "ViT-B-16-random"  # the tiny config's weights: random
    assert f"results/image_emb/demo/{dissect}/center.npz" in out
    inputs = rule_inputs(out, "clip_dissect_descriptions")
    assert inputs and all(f"results/similarity/demo/{dissect}/center/words/cos.npz" in line
                          for line in inputs)
    assert all(f"/{dissect}/" not in line for line in rule_inputs(out, "www_descriptions"))


def labels_config() -> dict:
    """CLIP-Dissect's Table 3 setting: the final layer described with the 1000 label lines."""
    config = tiny_config(layers=["fc"])
    config["concept_sets"] = {"labels": {"type": "imagenet_labels"}}
    config["evaluation"]["concept_sets"] = ["labels"]
    config["methods"]["clip_dissect"] = {"variants": ["softwpmi"], "similarities": ["cos"],
                                         "n_best": N_BEST, "softwpmi": dict(SOFT)}
    return config


def test_imagenet_labels_accuracy_is_the_index_match_of_clip_dissects_table_3(run_workflow):
    flow = run_workflow(labels_config(), "results/tables/concept_discovery.csv")
    target = target_dir(flow)
    concepts = io.load_concepts(flow.path("results/concepts/labels.parquet"))
    # concept id = class index, and the lines tell the two cranes apart
    assert concepts["concept_id"].tolist() == list(range(1000))
    assert concepts["text"].iloc[134] == "crane, bird" and concepts["text"].iloc[517] == "crane, machine"
    method = "softwpmi-center-cos-k10"
    table = io.read_parquet(flow.path(f"results/descriptions/demo/{target}/fc/{method}/labels.parquet"))
    ranked = table.sort_values(["neuron", "rank"]).groupby("neuron")["concept_id"].apply(list)
    top1 = 100 * np.mean([ids[0] == k for k, ids in ranked.items()])
    top5 = 100 * np.mean([k in ids[:5] for k, ids in ranked.items()])
    summary = pd.read_csv(flow.path("results/tables/concept_discovery.csv"))
    row = summary[(summary["method"] == method) & (summary["style"] == "clip-dissect")].iloc[0]
    assert row["top1_acc"] == pytest.approx(top1) and row["top5_acc"] == pytest.approx(top5)
    # the synonym-level columns (ours) apply to the `imagenet` set only
    assert "top1_synonym_acc" not in row or np.isnan(row["top1_synonym_acc"])
    assert row["clip"] == clip_dir(flow)  # the clip.dissect model (the tiny CLIP here)
