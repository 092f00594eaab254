"""Evaluation of final-layer neuron descriptions against the neurons' ImageNet classes.

Two styles, as in the papers (docs/methods.md), kept apart because they give different numbers
for the same predictions:

- WWW style: the selected concepts against the class's synonyms (Hit Rate, F1, and CLIP
  and mpnet cosine averaged over (prediction, synonym) pairs).
- CLIP-Dissect style: the top-1 concept against the whole label line as one string (CLIP
  and mpnet cosine), and top-1 / top-5 accuracy when the concept set is the 1,000 whole
  label lines (type ``imagenet_labels``, CLIP-Dissect's Table 3: a hit is the neuron's own
  class index among its best concepts). Ours, for the ``imagenet`` type (the split
  synonyms): top-1 / top-5 synonym accuracy, a hit being a concept among the synonyms.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd

from . import metrics
from .settings import TOP5

Embedder = Callable[[list[str]], np.ndarray]


def selected_predictions(descriptions: pd.DataFrame, n_neurons: int) -> list[list[str]]:
    """Each neuron's selected concepts in rank order (an empty list if none was selected)."""
    chosen = descriptions[descriptions["selected"]].sort_values(["neuron", "rank"])
    grouped = chosen.groupby("neuron")["concept"].apply(list)
    return [list(grouped.get(k, [])) for k in range(n_neurons)]


def ranked_predictions(descriptions: pd.DataFrame, n_neurons: int, n: int) -> list[list[str]]:
    """Each neuron's ``n`` best concepts in rank order."""
    best = descriptions[descriptions["rank"] < n].sort_values(["neuron", "rank"])
    grouped = best.groupby("neuron")["concept"].apply(list)
    return [list(grouped.get(k, [])) for k in range(n_neurons)]


def ranked_concept_ids(descriptions: pd.DataFrame, n_neurons: int, n: int) -> list[list[int]]:
    """Each neuron's ``n`` best concept ids (rows of its concept set) in rank order."""
    best = descriptions[descriptions["rank"] < n].sort_values(["neuron", "rank"])
    grouped = best.groupby("neuron")["concept_id"].apply(list)
    return [[int(i) for i in grouped.get(k, [])] for k in range(n_neurons)]


def class_index_hits(concept_ids: list[list[int]]) -> np.ndarray:
    """1.0 where neuron k's concept ids hold k (its own class), else 0.0: CLIP-Dissect's accuracy
    on the ``imagenet_labels`` concept set, whose concept id is the class index."""
    return np.array([float(k in ids) for k, ids in enumerate(concept_ids)])


# Which top-1 / top-5 accuracy a concept-set type allows (others: none, NaN columns).
ACCURACY_MODES = {"imagenet_labels": "class_index", "imagenet": "synonym"}


def evaluate_final_layer(descriptions: pd.DataFrame, synonyms: list[list[str]],
                         label_lines: list[str], clip_embed: Embedder,
                         sentence_embed: Embedder, concept_type: str | None) -> pd.DataFrame:
    """Per-neuron metrics of a final layer's descriptions, both styles, as fractions (0..1).

    Neuron k's ground truth is ImageNet class k: ``synonyms[k]`` and ``label_lines[k]``.
    ``concept_type`` is the type of the concept set described with (config
    ``concept_sets.<name>.type``) and decides the accuracy columns, NaN where they do not
    apply: ``cd_top1_acc`` / ``cd_top5_acc`` (``imagenet_labels``: class k's id among the
    top 1 / top 5 concepts, CLIP-Dissect's Table 3) and ``cd_top1_synonym_acc`` /
    ``cd_top5_synonym_acc`` (``imagenet``, ours: a top concept among the class's synonyms).
    """
    n = len(synonyms)
    described = int(descriptions["neuron"].max()) + 1 if len(descriptions) else 0
    if described != n:
        raise ValueError(f"descriptions cover {described} neurons but there are {n} classes: "
                         "evaluate the final (classifier) layer only")
    selected = selected_predictions(descriptions, n)
    top5 = ranked_predictions(descriptions, n, TOP5)
    top1 = [p[:1] for p in top5]
    lines = [[line] for line in label_lines]
    table = pd.DataFrame({
        "neuron": np.arange(n, dtype=np.int64),
        "predictions": ["; ".join(p) for p in selected],
        "top1": [p[0] if p else "" for p in top1],
        "www_hit": metrics.hits_per_neuron(selected, synonyms),
        "www_f1": metrics.f1_per_neuron(selected, synonyms),
        "www_clip_cos": metrics.cosine_per_neuron(selected, synonyms, clip_embed),
        "www_mpnet_cos": metrics.cosine_per_neuron(selected, synonyms, sentence_embed),
        "cd_clip_cos": metrics.cosine_per_neuron(top1, lines, clip_embed),
        "cd_mpnet_cos": metrics.cosine_per_neuron(top1, lines, sentence_embed),
    })
    for column in ("cd_top1_acc", "cd_top5_acc", "cd_top1_synonym_acc", "cd_top5_synonym_acc"):
        table[column] = np.nan
    mode = ACCURACY_MODES.get(concept_type or "")
    if mode == "class_index":
        ids = ranked_concept_ids(descriptions, n, TOP5)
        table["cd_top1_acc"] = class_index_hits([i[:1] for i in ids])
        table["cd_top5_acc"] = class_index_hits(ids)
    elif mode == "synonym":
        table["cd_top1_synonym_acc"] = metrics.hits_per_neuron(top1, synonyms)
        table["cd_top5_synonym_acc"] = metrics.hits_per_neuron(top5, synonyms)
    return table


TABLE_COLUMNS = {
    "www": {"clip_cos": "www_clip_cos", "mpnet_cos": "www_mpnet_cos", "f1": "www_f1",
            "hit_rate": "www_hit"},
    "clip-dissect": {"clip_cos": "cd_clip_cos", "mpnet_cos": "cd_mpnet_cos",
                     "top1_acc": "cd_top1_acc", "top5_acc": "cd_top5_acc",
                     "top1_synonym_acc": "cd_top1_synonym_acc",
                     "top5_synonym_acc": "cd_top5_synonym_acc"},
}


def summary_row(per_neuron: pd.DataFrame, style: str, **labels: str) -> dict:
    """One row of the concept-discovery table: the mean of each metric of ``style``, x100."""
    row = dict(labels, style=style, n_neurons=len(per_neuron))
    for name, column in TABLE_COLUMNS[style].items():
        row[name] = float(100 * per_neuron[column].mean())
    return row


def concept_discovery_table(evaluations: list[tuple[dict, pd.DataFrame]], styles: dict[str, list[str]]) -> pd.DataFrame:
    """The paper's Table 1: one row per (style, method, probe set, concept set).

    ``evaluations`` pairs each per-neuron table with its labels (method, probe, concepts,
    ...); ``styles`` maps a method family (``www``, ``clip-dissect``) to the styles it is
    reported in.
    """
    rows = []
    for labels, per_neuron in evaluations:
        for style in styles[labels["family"]]:
            rows.append(summary_row(per_neuron, style, **labels))
    # With the evaluation off there are no rows, but the columns rows are sorted by remain.
    table = pd.DataFrame(rows) if rows else pd.DataFrame(
        {"style": [], "family": [], "method": [], "probe": [], "concepts": [],
         "n_neurons": pd.Series([], dtype="int64"), "clip_cos": pd.Series([], dtype=float),
         "mpnet_cos": pd.Series([], dtype=float)})
    return table.sort_values(["style", "probe", "concepts", "method"], kind="stable").reset_index(drop=True)


def table_markdown(table: pd.DataFrame, title: str, digits: int = 2) -> str:
    """A Markdown rendering of a table (one section per style when it has one)."""
    parts = [f"# {title}\n"]
    if table.empty:
        return "".join(parts) + "\nNo rows: the evaluation is off (evaluation.probe_sets or " \
            "evaluation.concept_sets is empty).\n"
    groups = table.groupby("style", sort=False) if "style" in table else [(None, table)]
    for style, group in groups:
        if style is not None:
            parts.append(f"\n## {style} style\n")
            group = group.drop(columns="style").dropna(axis=1, how="all")
        parts.append(group.to_markdown(index=False, floatfmt=f".{digits}f") + "\n")
    return "".join(parts)


def class_texts() -> list[str]:
    """The ground-truth strings every evaluation looks up, whatever the concept set: the
    ImageNet synonyms, the whole label lines (lower-cased) and ``none`` (a neuron with no
    prediction); sorted, each once."""
    from .concepts import imagenet_class_synonyms
    from .data import imagenet_label_lines

    texts = [s for synonyms in imagenet_class_synonyms() for s in synonyms]
    texts += [line.strip().lower() for line in imagenet_label_lines()]
    return sorted(set(texts) | {"none"})


def evaluation_texts(concept_texts) -> list[str]:
    """Every string an evaluation with these concepts may embed: the concepts, lower-cased,
    and the :func:`class_texts`; sorted, each once."""
    texts = {str(t).strip().lower() for t in concept_texts}
    return sorted(texts.union(class_texts()))


def load_embedder(spec: dict, device: str, batch_size: int) -> Embedder:
    """The text embedder of an evaluation model: ``spec`` holds its ``kind`` (``clip`` or
    ``sentence``) and its loader's arguments (rules/common.smk, evaluation_model_spec)."""
    from . import models

    spec = dict(spec)
    torch_device = models.resolve_device(device)
    if spec.pop("kind") == "clip":
        return metrics.clip_embedder(models.load_clip(**spec, device=torch_device), batch_size)
    return metrics.sentence_embedder(models.load_sentence_model(**spec, device=torch_device),
                                     batch_size)


def known_embeddings(classes, concept_texts=None,
                     concept_emb: np.ndarray | None = None) -> tuple[list[str], np.ndarray]:
    """Texts an evaluation model has embedded already and their rows, for
    :func:`neuron_concepts.embeddings.embed_with_known`: the class names' (``classes``, an
    ``io.Embeddings``) and, when the same model embedded the concepts as CLIP-Dissect's raw
    strings, those (matched by exact string: "Tinca tinca" is not the lower-cased evaluation
    text "tinca tinca")."""
    ids, emb = [str(t) for t in classes.ids], np.asarray(classes.emb)
    if concept_emb is None:
        return ids, emb
    texts = [str(t) for t in concept_texts]
    if len(texts) != len(concept_emb):
        raise ValueError(f"{len(texts)} concept texts but {len(concept_emb)} embedding rows")
    return ids + texts, np.concatenate([emb, np.asarray(concept_emb, dtype=emb.dtype)])


# ----------------------------------------------------------------------------- ablation
# The seed paper's Table 2 (Sannomiya & Hotta 2025): WWW with and without the Grad-CAM
# crop and the t-vMF similarity, in the WWW evaluation style.

ABLATION_KEYS = ["probe", "concepts", "gradcam", "tvmf"]
ABLATION_METRICS = ["clip_cos", "mpnet_cos", "f1", "hit_rate", "n_neurons"]


def ablation_table(evaluations: list[tuple[dict, pd.DataFrame]]) -> pd.DataFrame:
    """One row per (probe set, concept set, Grad-CAM yes/no, t-vMF yes/no): WWW-style metrics x100.

    ``evaluations`` pairs each per-neuron table (evaluate_final_layer) with labels that hold
    at least probe, concepts, gradcam (bool) and tvmf (bool); other labels (method, view,
    sim, models) are kept as columns after the metrics. Within a block the rows run as in
    the paper: neither, Grad-CAM only, t-vMF only, both.
    """
    if not evaluations:
        raise ValueError("no evaluations to build the ablation table from")
    rows = [summary_row(per_neuron, "www", **labels) for labels, per_neuron in evaluations]
    table = pd.DataFrame(rows).drop(columns="style")
    missing = set(ABLATION_KEYS) - set(table.columns)
    if missing:
        raise ValueError(f"ablation labels lack {sorted(missing)}")
    duplicated = table.duplicated(ABLATION_KEYS)
    if duplicated.any():
        raise ValueError("two evaluations share a cell of the ablation grid: "
                         f"{table.loc[duplicated, ABLATION_KEYS].to_dict('records')}")
    table = table.astype({"gradcam": bool, "tvmf": bool})
    others = [c for c in table.columns if c not in ABLATION_KEYS + ABLATION_METRICS]
    table = table[ABLATION_KEYS + ABLATION_METRICS + others]
    return table.sort_values(["probe", "concepts", "tvmf", "gradcam"], kind="stable").reset_index(drop=True)


def ablation_markdown(table: pd.DataFrame, title: str = "Ablation: Grad-CAM crop and t-vMF similarity",
                      digits: int = 2) -> str:
    """A Markdown rendering of :func:`ablation_table`, one section per (probe set, concept set)."""
    parts = [f"# {title}\n"]
    shown = ["gradcam", "tvmf"] + ABLATION_METRICS + [c for c in ("method",) if c in table]
    for (probe, concepts), block in table.groupby(["probe", "concepts"], sort=False):
        yes_no = {True: "yes", False: "no"}
        block = block[shown].assign(gradcam=block["gradcam"].map(yes_no),
                                    tvmf=block["tvmf"].map(yes_no))
        parts.append(f"\n## probe set {probe}, concept set {concepts}\n\n")
        parts.append(block.to_markdown(index=False, floatfmt=f".{digits}f") + "\n")
    return "".join(parts)
