"""The stability study (Cha & Weng) against the official code and a re-derivation of its definition.

Reference: J. H. Cha and L. Weng, "Expanding CLIP-Dissect: Exploring the Impact of Activating
Image Diversity and Stability" (report, Dec 2023), with its code: github.com/kier0813/
CLIP_Dissect_Activation_Img, the report ``Expanding_CLIP-dissect_JoonCha.pdf`` at commit
9ade6d1 and ``clip_dissect_activation_pipeline.py`` at commit 75048ac (unchanged since):

- report, abstract and section 3.1.1: every neuron is described with 5, 10 and 16 activating
  images; section 3.3: "we then compared the set of top-5 labels from the top-5 activations
  to the first 5 labels from the top-10 and top-16 activations"; a neuron is stable when the
  two label sets are equal; table "Stability Score Table": the % of stable neurons.
- pipeline, lines 50-60: ``labels_k = [words[i] for i in torch.topk(scores[n], k=k).indices[:5]]``
  for k in 5, 10, 16 (labels are the concept *texts*), ``set(labels_5) == set(labels_k)``
  (lines 59-60); lines 74-76: ``stable.sum() / len(results) * 100`` over the neurons of all
  layers together (``results_df`` collects layers 1-4).

What the official code computes differs from what the report says (a finding, not ours to fix):
its ``scores`` (line 37) come from one CLIP-Dissect run with the similarity function's own
``top_k`` of images (soft-WPMI: 100, WPMI: 28), and ``torch.topk(.., k)`` ranks *concepts*,
so ``topk(k=10)[:5]`` is ``topk(k=5)`` whenever the scores have no ties: the official stability
is 100% by construction (the report's 99.84-100%; the shortfall can only come from ties,
e.g. duplicated label texts). Ours (docs/methods.md, /work/shared/METHODS.md) follows the
report's words: each neuron is *re-described* with ``top_k = k`` activating images and its 5
best concepts compared. The official arithmetic is our functions applied to one description
at every k (tested below, 100%).

The chain here, from activations ``[N, K]`` and cosines ``[N, C]`` to the table, is
re-derived without the library:
- top images: a neuron's k images of highest activation (inputs have no tied activations, so
  no tie rule is involved);
- scores: CLIP-Dissect's soft-WPMI and WPMI, github.com/Trustworthy-ML-Lab/CLIP-dissect at
  21e7697, ``similarity.py`` ``soft_wpmi`` lines 49-75 and ``wpmi`` lines 77-99 (as cited in
  tests/reference/test_clip_dissect.py, which guards the library's single-k scores), in float64
  with loops over neurons and ranks;
- top-5: the 5 highest scores (inputs are checked to have a gap of at least ``GAP`` at the 5th
  and the 1st place, so float32 against float64 cannot reorder them);
- stability, top-1 agreement (ours) and mean Jaccard (ours) with Python sets and loops.
The library's side is the one the pipeline runs: ``clip_dissect.describe_methods`` (one pass
over the ks, as the description job), descriptions written and read as Parquet, and the
workflow script ``workflow_scripts/stability_table.py`` itself, whose CSV is compared.

Ties among concept scores: ours keeps the lower concept index (``clip_dissect.describe``, a
stable sort); the official pipeline's ``torch.topk`` leaves the order unspecified, and so does
WWW's ``np.argsort(..)[::-1]`` (higher index first only where numpy's sort is stable; numpy 2.4
here sorts ``[.., 5 at 3, .., 5 at 8, ..]`` with 8 first). A rule applied the same way at every
k does not move the stability figures (tested below); an unspecified one can, for a tie at
the 5th place.
"""

from __future__ import annotations

import math
import runpy
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from neuron_concepts import clip_dissect, io, stability

REPO = Path(__file__).resolve().parents[2]
KS = (5, 10, 16)
BASE_K, N_BEST = 5, 5
GAP = 1e-4  # least score gap at the 5th / 1st place the inputs must have (module docstring)
SOFT = dict(variant="softwpmi", a=10.0, lam=1.0, p_start=0.998, p_end=0.97)
PLAIN = dict(variant="wpmi", a=2.0, lam=0.6)


# ----------------------------------------------------------------- the re-derivation


def reference_top_images(acts: np.ndarray, neuron: int, k: int) -> list[int]:
    """The ``k`` images of highest activation of ``neuron``, highest first."""
    column = [float(acts[i, neuron]) for i in range(acts.shape[0])]
    assert len(set(column)) == len(column), "constructed activations must not tie"
    return sorted(range(len(column)), key=lambda i: -column[i])[:k]


def reference_scores(cos: np.ndarray, acts: np.ndarray, top_k: int, variant: str, a: float,
                     lam: float, p_start: float = 0.998, p_end: float = 0.97) -> np.ndarray:
    """CLIP-Dissect ``similarity.py`` soft_wpmi / wpmi in float64: scores ``[K, C]``."""
    z = a * cos.astype(np.float64)
    q = np.exp(z - z.max(axis=1, keepdims=True))
    q /= q.sum(axis=1, keepdims=True)  # softmax over concepts (line 54 / 82)
    n_neurons = acts.shape[1]
    cond = np.zeros((n_neurons, cos.shape[1]))
    for k in range(n_neurons):
        for r, image in enumerate(reference_top_images(acts, k, top_k)):
            if variant == "softwpmi":
                p = p_start - r / top_k * (p_start - p_end)  # line 59
                cond[k] += np.log(1 + p * (q[image] - 1) + 1e-7)  # lines 62-65
            else:
                cond[k] += np.log(q[image] + 1e-7)  # line 90
    top = cond.max(axis=0)
    prior = top + np.log(np.exp(cond - top).sum(axis=0)) - math.log(n_neurons)  # lines 72-73
    return cond - lam * prior


def reference_top5(scores: np.ndarray, texts: list[str]) -> list[list[str]]:
    """Each neuron's 5 best concept texts, best first (ties: lower index, see docstring)."""
    out = []
    for row in scores.tolist():
        order = sorted(range(len(row)), key=lambda c: (-row[c], c))
        out.append([texts[c] for c in order[:N_BEST]])
    return out


def min_gap(scores: np.ndarray) -> float:
    """Least gap between the 1st and 2nd and between the 5th and 6th score of any neuron."""
    ordered = -np.sort(-scores, axis=1)
    return float(min((ordered[:, 0] - ordered[:, 1]).min(),
                     (ordered[:, N_BEST - 1] - ordered[:, N_BEST]).min()))


def reference_figures(base: list[list[str]], other: list[list[str]]) -> dict[str, float]:
    """Stability (Cha & Weng), top-1 agreement and mean Jaccard (ours) of two lists of top-5s."""
    assert len(base) == len(other) > 0
    stable = agree = 0
    jaccard = 0.0
    for a, b in zip(base, other):
        stable += set(a) == set(b)
        agree += a[0] == b[0]
        jaccard += len(set(a) & set(b)) / len(set(a) | set(b))
    n = len(base)
    return {"stability_pct": 100.0 * stable / n, "top1_agreement_pct": 100.0 * agree / n,
            "mean_jaccard": jaccard / n}


def official_pipeline_stability(scores: np.ndarray, words: list[str]) -> dict[int, float]:
    """``clip_dissect_activation_pipeline.py`` lines 50-76 on one score matrix ``[K, C]``."""
    scores_t = torch.from_numpy(np.asarray(scores, dtype=np.float32))
    stable = {10: [], 16: []}
    for neuron in range(scores_t.shape[0]):
        labels = {}
        for k in KS:
            _, indices = torch.topk(scores_t[neuron, :], k=k, largest=True)
            labels[k] = [words[i] for i in indices[:5]]
        for k in (10, 16):
            stable[k].append(set(labels[5]) == set(labels[k]))
    return {k: sum(v) / len(v) * 100 for k, v in stable.items()}


# ----------------------------------------------------------------- inputs


def study_inputs(seed: int, n_images: int = 80, n_neurons: int = 16, groups: int = 6,
                 per_group: int = 5) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Cosines ``[N, C]``, activations ``[N, K]`` (no ties) and concept texts.

    Images have a class; each class has ``per_group`` concepts with higher cosines; a neuron
    prefers one class with a random strength, so some neurons keep their top-5 set over k
    and others do not.
    """
    rng = np.random.default_rng(seed)
    n_concepts = groups * per_group
    image_class = rng.integers(0, groups, n_images)
    concept_class = np.arange(n_concepts) % groups
    cos = (0.2 + 0.1 * (image_class[:, None] == concept_class[None, :])
           + 0.04 * rng.normal(size=(n_images, n_concepts)))
    preferred = rng.integers(0, groups, n_neurons)
    strength = rng.uniform(0.0, 2.5, n_neurons)
    acts = rng.normal(size=(n_images, n_neurons)) + strength * (image_class[:, None] == preferred)
    texts = [f"concept {c:02d}" for c in range(n_concepts)]
    return cos.astype(np.float32), acts.astype(np.float32), texts


def library_descriptions(cos: np.ndarray, acts: np.ndarray, texts: list[str], scoring: dict,
                         folder: Path, layer: str) -> dict[int, Path]:
    """The description job's path: ``describe_methods`` over every k in one pass, each table
    written as the Parquet artifact the stability rule reads."""
    methods = [dict(method=f"{scoring['variant']}-k{k}", path=str(folder / f"{layer}-k{k}.parquet"),
                    scoring=dict(scoring, top_k=k, sim="cos", kappa=16.0)) for k in KS]
    paths = {}
    for method, table, _ in clip_dissect.describe_methods(
            SimpleNamespace(raw=cos), acts, methods, texts, n_best=10, device="cpu"):
        io.save_descriptions(method["path"], table)
        paths[method["scoring"]["top_k"]] = Path(method["path"])
    assert sorted(paths) == list(KS)
    return paths


def run_stability_script(tmp_path: Path, items: list[dict]) -> pd.DataFrame:
    """``workflow_scripts/stability_table.py`` as the rule runs it; its CSV read back."""
    out = tmp_path / "out"
    snakemake = SimpleNamespace(
        log=[str(out / "stability_table.log")],
        params=SimpleNamespace(descriptions=items,
                               study=dict(base_k=BASE_K, n_best=N_BEST)),
        output=SimpleNamespace(csv=str(out / "stability.csv"), md=str(out / "stability.md"),
                               figure=str(out / "stability.png")))
    runpy.run_path(str(REPO / "workflow_scripts" / "stability_table.py"),
                   init_globals={"snakemake": snakemake})
    assert (out / "stability.md").stat().st_size > 0 and (out / "stability.png").exists()
    return pd.read_csv(out / "stability.csv")


# ----------------------------------------------------------------- the chain


@pytest.mark.parametrize("seed", [1, 5])
def test_stability_table_from_activations_equals_the_reference(tmp_path, seed):
    """Two layers, soft-WPMI and WPMI: the script's CSV row by row equals the re-derivation;
    the official pooling over layers equals our rows weighted by n_neurons."""
    cos, acts, texts = study_inputs(seed)
    layers = {"layer3": acts, "layer4": study_inputs(seed + 100, n_neurons=11)[1]}
    items, expected = [], []
    for scoring in (SOFT, PLAIN):
        for layer, layer_acts in layers.items():
            tops = {}
            for k in KS:
                scores = reference_scores(cos, layer_acts, k, **scoring)
                assert min_gap(scores) > GAP, "inputs too close to a tie for float32"
                tops[k] = reference_top5(scores, texts)
            for k in KS[1:]:
                expected.append(dict(probe="probe", variant=scoring["variant"], layer=layer,
                                     concepts="words", sim="cos", k_from=BASE_K, k_to=k,
                                     **reference_figures(tops[BASE_K], tops[k]),
                                     n_neurons=layer_acts.shape[1]))
            paths = library_descriptions(cos, layer_acts, texts, scoring, tmp_path,
                                         f"{scoring['variant']}-{layer}")
            items += [dict(path=str(paths[k]),
                           labels=dict(probe="probe", variant=scoring["variant"], layer=layer,
                                       concepts="words", sim="cos", k=k)) for k in KS]
    expected = pd.DataFrame(expected)
    # The constructed case separates the figures: neither 0 nor 100, top-1 != set.
    assert ((expected["stability_pct"] > 0) & (expected["stability_pct"] < 100)).any()
    assert (expected["stability_pct"] != expected["top1_agreement_pct"]).any()
    assert ((expected["mean_jaccard"] > 0) & (expected["mean_jaccard"] < 1)).all()

    written = run_stability_script(tmp_path, items)
    assert list(written.columns) == list(expected.columns)
    pd.testing.assert_frame_equal(written[expected.columns[:7]], expected[expected.columns[:7]])
    for column in ("stability_pct", "top1_agreement_pct", "mean_jaccard"):
        np.testing.assert_allclose(written[column], expected[column], rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(written["n_neurons"], expected["n_neurons"])

    # Official: one figure over the neurons of all layers (pipeline lines 74-76).
    for variant, rows in written.groupby("variant"):
        for k, at_k in rows.groupby("k_to"):
            pooled = (at_k["stability_pct"] * at_k["n_neurons"]).sum() / at_k["n_neurons"].sum()
            stable = []
            for layer, layer_acts in layers.items():
                scoring = SOFT if variant == "softwpmi" else PLAIN
                base = reference_top5(reference_scores(cos, layer_acts, BASE_K, **scoring), texts)
                other = reference_top5(reference_scores(cos, layer_acts, k, **scoring), texts)
                stable += [set(a) == set(b) for a, b in zip(base, other)]
            assert pooled == pytest.approx(sum(stable) / len(stable) * 100, rel=1e-12)


def test_library_functions_equal_the_reference_on_the_description_arrays():
    """The three functions on ``top_concepts`` of each k's descriptions (stability_rows' path)."""
    cos, acts, texts = study_inputs(2)
    methods = [dict(method=f"k{k}", path="", scoring=dict(SOFT, top_k=k, sim="cos", kappa=16.0))
               for k in KS]
    tables = {m["scoring"]["top_k"]: t for m, t, _ in clip_dissect.describe_methods(
        SimpleNamespace(raw=cos), acts, methods, texts, n_best=N_BEST)}
    reference = {k: reference_top5(reference_scores(cos, acts, k, **SOFT), texts) for k in KS}
    tops = {}
    for k in KS:
        neurons, tops[k] = stability.top_concepts(tables[k], N_BEST)
        np.testing.assert_array_equal(neurons, np.arange(acts.shape[1]))
        assert tops[k].tolist() == reference[k]
    for k in KS[1:]:
        figures = reference_figures(reference[BASE_K], reference[k])
        assert stability.stability(tops[BASE_K], tops[k]) == pytest.approx(figures["stability_pct"])
        assert stability.top1_agreement(tops[BASE_K], tops[k]) == pytest.approx(
            figures["top1_agreement_pct"])
        assert stability.mean_jaccard(tops[BASE_K], tops[k]) == pytest.approx(
            figures["mean_jaccard"])


def test_official_arithmetic_is_ours_on_one_description_at_every_k():
    """The official pipeline ranks concepts of one score matrix with topk(k): 100% without
    ties, and so is ours given that one description at every k; re-describing per k is not."""
    cos, acts, texts = study_inputs(1)
    scores = reference_scores(cos, acts, 28, **PLAIN)  # WPMI's own top_k (similarity.py)
    assert min_gap(scores) > GAP
    assert official_pipeline_stability(scores, texts) == {10: 100.0, 16: 100.0}
    one = np.array(reference_top5(scores, texts), dtype=object)
    rows = stability.stability_rows({k: one for k in KS}, BASE_K, N_BEST)
    assert rows["stability_pct"].tolist() == [100.0, 100.0]
    per_k = {k: np.array(reference_top5(reference_scores(cos, acts, k, **PLAIN), texts),
                         dtype=object) for k in KS}
    assert (stability.stability_rows(per_k, BASE_K, N_BEST)["stability_pct"] < 100).all()


# ----------------------------------------------------------------- known answers


def known(rows: list[list[str]]) -> np.ndarray:
    return np.array(rows, dtype=object)


CASES = {
    "identical": (
        [list("abcde"), list("fghij")], [list("abcde"), list("fghij")], (100.0, 100.0, 1.0)),
    "disjoint": (
        [list("abcde"), list("fghij")], [list("vwxyz"), list("klmno")], (0.0, 0.0, 0.0)),
    "same set, other order": (
        [list("abcde"), list("fghij")], [list("edcba"), list("fghji")], (100.0, 50.0, 1.0)),
    "3 of 5 shared": (
        [list("abcde")], [list("abcxy")], (0.0, 100.0, 3 / 7)),
    "repeated text within a list": (  # sets: {a,b,c,d} vs {a,b,c,d} and vs {a,b,c,d,e}
        [list("aabcd"), list("aabcd")], [list("abbcd"), list("abcde")], (50.0, 100.0, 0.9)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_known_answers(name):
    base, other, (stab, top1, jaccard) = CASES[name]
    assert reference_figures(base, other) == pytest.approx(
        {"stability_pct": stab, "top1_agreement_pct": top1, "mean_jaccard": jaccard})
    assert stability.stability(known(base), known(other)) == pytest.approx(stab)
    assert stability.top1_agreement(known(base), known(other)) == pytest.approx(top1)
    assert stability.mean_jaccard(known(base), known(other)) == pytest.approx(jaccard)


def test_known_answers_through_the_table_from_description_tables():
    """Descriptions tables with their rows shuffled: ranks, not row order, make the lists."""
    base, other, _ = CASES["same set, other order"]

    def table(tops):
        rows = [(n, r, 0, text, -float(r), r == 0, False)
                for n, top in enumerate(tops) for r, text in enumerate(top)]
        return io.description_table(rows).sample(frac=1.0, random_state=0)

    out = stability.stability_table({("l", "c", "cos"): {5: table(base), 10: table(other)}})
    figures = ["stability_pct", "top1_agreement_pct", "mean_jaccard", "n_neurons"]
    assert out[figures].values.tolist() == [[100.0, 50.0, 1.0, 2]]


# ----------------------------------------------------------------- ties among concept scores


def test_tied_concept_scores_keep_the_lower_index_and_leave_stability_unmoved():
    """Concepts 3 and 8 tie at the 5th place at both k: ours keeps c3 both times (the
    reference's rule); the opposite rule (higher index first: WWW's ``np.argsort(..)[::-1]``
    where numpy's sort is stable) keeps c8 both times; the figures are the same."""
    texts = [f"c{i}" for i in range(10)]
    at5 = np.array([[9.0, 8.0, 7.0, 5.0, 6.0, 1.0, 1.0, 1.0, 5.0, 0.0],
                    [0.0, 1.0, 2.0, 4.0, 3.0, 6.0, 7.0, 8.0, 4.0, 9.0]], dtype=np.float32)
    at10 = at5.copy()
    at10[0, [0, 1]] = at10[0, [1, 0]]  # same set, another best concept
    tables = {5: clip_dissect.description_table(at5, texts, N_BEST),
              10: clip_dissect.description_table(at10, texts, N_BEST)}
    tops = {k: stability.top_concepts(t, N_BEST)[1] for k, t in tables.items()}
    for k, scores in ((5, at5), (10, at10)):
        assert tops[k].tolist() == reference_top5(scores.astype(np.float64), texts)
        assert all("c3" in row and "c8" not in row for row in tops[k])

    def higher_index_first(scores):
        return [[texts[c] for c in sorted(range(len(row)), key=lambda c: (-row[c], -c))[:N_BEST]]
                for row in scores.tolist()]

    assert all("c8" in row and "c3" not in row for row in higher_index_first(at5))
    ours = stability.stability_rows(tables, BASE_K, N_BEST)
    theirs = reference_figures(higher_index_first(at5), higher_index_first(at10))
    assert ours.loc[0, ["stability_pct", "top1_agreement_pct", "mean_jaccard"]].tolist() \
        == [theirs["stability_pct"], theirs["top1_agreement_pct"], theirs["mean_jaccard"]] \
        == [100.0, 50.0, 1.0]


def test_duplicated_concept_ties_exactly_in_the_chain_and_the_lower_index_is_kept():
    """A concept column repeated (another text, equal cosines) scores exactly equal to its
    original; wherever the pair meets the 5th place, the copy (lower index) is kept."""
    cos, acts, texts = study_inputs(4)
    # the concept at neuron 0's 5th place at k=5: its copy ties with it at the cut
    original = int(np.argsort(-reference_scores(cos, acts, 5, **SOFT)[0])[N_BEST - 1])
    cos = np.concatenate([cos[:, [original]], cos], axis=1)  # the copy at index 0
    texts = ["copy"] + texts
    methods = [dict(method=f"k{k}", path="", scoring=dict(SOFT, top_k=k, sim="cos", kappa=16.0))
               for k in KS]
    split = 0
    for method, table, _ in clip_dissect.describe_methods(
            SimpleNamespace(raw=cos), acts, methods, texts, n_best=cos.shape[1]):
        scores = table.pivot(index="neuron", columns="concept_id", values="score").to_numpy()
        np.testing.assert_array_equal(scores[:, 0], scores[:, original + 1])
        top5 = stability.top_concepts(table, N_BEST)[1]
        ranks = table.pivot(index="neuron", columns="concept_id", values="rank").to_numpy()
        assert (ranks[:, 0] + 1 == ranks[:, original + 1]).all()  # adjacent, copy first
        split += int(((ranks[:, 0] == N_BEST - 1)).sum())
        for row, rank in zip(top5, ranks[:, 0]):
            assert ("copy" in row) == (rank < N_BEST)
            assert (texts[original + 1] in row) == (rank + 1 < N_BEST)
    assert split > 0, "no neuron has the tied pair at the 5th / 6th place"
