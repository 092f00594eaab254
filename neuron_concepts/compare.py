"""Comparing targets, methods and checkpoints side by side, from their description tables.

Every number here is computed from descriptions artifacts (``neuron, rank, concept_id,
concept, score, selected, fallback``; :func:`neuron_concepts.io.load_descriptions`) and, for
a final layer, the per-neuron evaluation (:func:`neuron_concepts.io.load_evaluation`):

- :func:`comparison_table`: one row per (target, layer, method, concept set, ...): neurons,
  distinct top concepts (NetDissect's "unique detectors": the concepts that are some
  neuron's rank-0 concept), the share of neurons the method *describes*, and the
  evaluation metrics where the entry carries an evaluation;
- :func:`agreement_table`: for each pair of methods on the same neurons and concept set, the
  share of neurons whose top concepts are equal (the neuron browser's pairwise agreement,
  docs/methods.md "The neuron browser's agreement (ours)");
- :func:`checkpoint_table` and :func:`most_changed`: two description tables of the same
  layer and method from two checkpoints (before, after): the share of neurons whose top
  concept changed and the neurons whose best concepts changed most.

Concepts are compared by ``concept_id`` within one concept set. A text that a concept set
holds twice has equal scores under both ids, and every method breaks ties by the lower id
(stable sorting), so ids and texts give the same counts. Percentages are x100, as in the
other summary tables. Imports numpy and pandas only; drawing is in
:mod:`neuron_concepts.compare_figures`.
"""

from __future__ import annotations

import itertools
from typing import Mapping, NamedTuple, Sequence

import numpy as np
import pandas as pd

from . import evaluation
from .errors import InputDataError

#: The labels every comparison entry names (others, e.g. probe or family, are kept as columns).
REQUIRED_LABELS = ("target", "layer", "method", "concepts")
#: The labels that decide which methods describe the same neurons with the same concepts.
AGREEMENT_GROUP = ("probe", "target", "layer", "concepts")
#: The evaluation metrics of a final layer, as the per-neuron columns name them (x100 here).
METRICS = tuple(dict.fromkeys(column for style in evaluation.TABLE_COLUMNS.values()
                              for column in style.values()))
SUMMARY_COLUMNS = ("n_neurons", "n_distinct_top", "distinct_top_pct", "described_pct")
AGREEMENT_COLUMNS = ("method_a", "method_b", "n_neurons", "agreement_pct")
CHECKPOINT_COLUMNS = ("n_neurons", "n_changed", "changed_pct", "mean_jaccard")
CHANGED_COLUMNS = ("neuron", "top_before", "top_after", "concepts_before", "concepts_after",
                   "jaccard_distance", "top_changed")
#: Concepts per neuron (ranks 0..n-1) whose sets the checkpoint comparison measures.
N_COMPARED = 5


class Entry(NamedTuple):
    """One description table and its labels (at least :data:`REQUIRED_LABELS`); for a final
    layer optionally its per-neuron evaluation."""

    labels: Mapping[str, object]
    descriptions: pd.DataFrame
    evaluation: pd.DataFrame | None = None


class CheckpointPair(NamedTuple):
    """The descriptions of one layer, method and concept set at two checkpoints."""

    labels: Mapping[str, object]
    before: pd.DataFrame
    after: pd.DataFrame


# ---------------------------------------------------------------- one table


def top_concepts(descriptions: pd.DataFrame) -> pd.Series:
    """Each neuron's rank-0 ``concept_id``, indexed by neuron (ascending).

    Every neuron in the table must have exactly one rank-0 row.
    """
    best = descriptions[descriptions["rank"] == 0]
    neurons = np.unique(descriptions["neuron"].to_numpy())
    if len(best) != len(neurons) or best["neuron"].nunique() != len(neurons):
        raise InputDataError(f"descriptions of {len(neurons)} neurons have {len(best)} rank-0 "
                             "rows: every neuron needs exactly one best concept")
    return best.set_index("neuron")["concept_id"].sort_index().astype(np.int64)


def described(descriptions: pd.DataFrame) -> pd.Series:
    """Per neuron (index, ascending): whether the method describes it with a concept above
    its threshold -- some concept is ``selected`` and the neuron is not ``fallback``.

    WWW selects the concepts within ``alpha`` of the best score and falls back to the
    argmax, flagged, when no score is positive; such a neuron counts as not described.
    CLIP-Dissect has no threshold: its description is the argmax, always selected and never
    a fallback (:func:`neuron_concepts.clip_dissect.description_table`), so every neuron
    counts as described. Compare this share among WWW methods.
    """
    per_neuron = descriptions.groupby("neuron")[["selected", "fallback"]].any()
    return (per_neuron["selected"] & ~per_neuron["fallback"]).sort_index()


def evaluation_summary(per_neuron: pd.DataFrame) -> dict[str, float]:
    """The mean of each evaluation metric x100 (:func:`neuron_concepts.evaluation.summary_row`
    for every style), keyed by the per-neuron column (``www_f1``, ``cd_top1_acc``, ...).
    NaN where a metric does not apply."""
    out: dict[str, float] = {}
    for style, columns in evaluation.TABLE_COLUMNS.items():
        row = evaluation.summary_row(per_neuron, style)
        out.update({column: row[name] for name, column in columns.items()})
    return out


def layer_summary(descriptions: pd.DataFrame, per_neuron: pd.DataFrame | None = None
                  ) -> dict[str, float]:
    """One layer's numbers for :func:`comparison_table`: ``n_neurons``; ``n_distinct_top``,
    the distinct rank-0 concepts, and ``distinct_top_pct`` (x100 of the neurons);
    ``described_pct`` (:func:`described`); and each of :data:`METRICS` (NaN without
    ``per_neuron``, the layer's evaluation)."""
    top = top_concepts(descriptions)
    n_neurons = len(top)
    n_distinct = int(top.nunique())
    row = {"n_neurons": n_neurons, "n_distinct_top": n_distinct,
           "distinct_top_pct": 100.0 * n_distinct / n_neurons if n_neurons else float("nan"),
           "described_pct": 100.0 * float(described(descriptions).mean()) if n_neurons
           else float("nan")}
    metrics = evaluation_summary(per_neuron) if per_neuron is not None else {}
    row.update({name: metrics.get(name, float("nan")) for name in METRICS})
    return row


def _label_columns(labels: Sequence[Mapping[str, object]], required: Sequence[str]) -> list[str]:
    """Every label name in first-seen order, the ``required`` ones first; an error if one lacks them."""
    for item in labels:
        missing = [name for name in required if name not in item]
        if missing:
            raise ValueError(f"comparison labels {dict(item)} lack {missing}")
    names = dict.fromkeys(required)
    for item in labels:
        names.update(dict.fromkeys(item))
    return list(names)


def comparison_table(entries: Sequence[Entry]) -> pd.DataFrame:
    """One row per entry: its labels (:data:`REQUIRED_LABELS` first, then any others), then
    :data:`SUMMARY_COLUMNS` and :data:`METRICS` (:func:`layer_summary`).

    Rows keep the entries' order, so a caller listing layers as configured gets them by depth.
    """
    columns = _label_columns([entry.labels for entry in entries], REQUIRED_LABELS)
    rows = [{**entry.labels, **layer_summary(entry.descriptions, entry.evaluation)}
            for entry in entries]
    return pd.DataFrame(rows, columns=columns + list(SUMMARY_COLUMNS) + list(METRICS))


# ---------------------------------------------------------------- agreement


def agreement(top_a: pd.Series, top_b: pd.Series) -> float:
    """% of neurons whose top concepts (:func:`top_concepts` of two methods) are equal.

    Both must cover the same neurons: they describe one layer.
    """
    if not top_a.index.equals(top_b.index):
        raise InputDataError(f"the methods describe different neurons ({len(top_a)} and "
                             f"{len(top_b)}): compare descriptions of one layer")
    return 100.0 * float(np.mean(top_a.to_numpy() == top_b.to_numpy())) if len(top_a) else float("nan")


def agreement_table(entries: Sequence[Entry], by: Sequence[str] = AGREEMENT_GROUP) -> pd.DataFrame:
    """Pairwise agreement of methods: one row per group of entries that share the labels
    ``by`` (those the entries have) and per pair of its methods, in the entries' order.

    Columns: the group labels, then :data:`AGREEMENT_COLUMNS`. A group with one method has
    no row.
    """
    keys = [name for name in by if all(name in entry.labels for entry in entries)] if entries else []
    groups: dict[tuple, list[Entry]] = {}
    for entry in entries:
        groups.setdefault(tuple(entry.labels[name] for name in keys), []).append(entry)
    rows = []
    for key, members in groups.items():
        tops = [(entry.labels["method"], top_concepts(entry.descriptions)) for entry in members]
        for (method_a, top_a), (method_b, top_b) in itertools.combinations(tops, 2):
            rows.append({**dict(zip(keys, key)), "method_a": method_a, "method_b": method_b,
                         "n_neurons": len(top_a), "agreement_pct": agreement(top_a, top_b)})
    return pd.DataFrame(rows, columns=keys + list(AGREEMENT_COLUMNS))


# ---------------------------------------------------------------- checkpoints


def concept_lists(descriptions: pd.DataFrame, n: int = N_COMPARED) -> pd.DataFrame:
    """Per neuron (index, ascending): ``ids`` and ``texts``, its concepts of rank < ``n`` in
    rank order (fewer where the table keeps fewer)."""
    best = descriptions[descriptions["rank"] < n].sort_values(["neuron", "rank"], kind="stable")
    grouped = best.groupby("neuron", sort=True)
    return pd.DataFrame({"ids": grouped["concept_id"].agg(list),
                         "texts": grouped["concept"].agg(lambda texts: [str(t) for t in texts])})


def jaccard_distance(a: Sequence, b: Sequence) -> float:
    """``1 - |A & B| / |A | B|`` of two concept lists as sets (0.0 for two empty lists)."""
    a, b = set(a), set(b)
    return 1.0 - len(a & b) / len(a | b) if a | b else 0.0


def changed_neurons(before: pd.DataFrame, after: pd.DataFrame, n: int = N_COMPARED) -> pd.DataFrame:
    """Per neuron of one layer at two checkpoints, :data:`CHANGED_COLUMNS`: the top concept
    before and after (texts), the ``n`` best concepts before and after (", "-joined, by
    rank), ``jaccard_distance`` of those two sets (by concept id; 1.0: none kept) and
    ``top_changed`` (the rank-0 concept id differs)."""
    top_a, top_b = top_concepts(before), top_concepts(after)  # checks one rank 0 per neuron
    if not top_a.index.equals(top_b.index):
        raise InputDataError(f"the checkpoints' descriptions cover different neurons "
                             f"({len(top_a)} and {len(top_b)}): compare one layer of one "
                             "architecture")
    lists_a, lists_b = concept_lists(before, n), concept_lists(after, n)
    return pd.DataFrame({
        "neuron": lists_a.index.to_numpy(),
        "top_before": [texts[0] for texts in lists_a["texts"]],
        "top_after": [texts[0] for texts in lists_b["texts"]],
        "concepts_before": [", ".join(texts) for texts in lists_a["texts"]],
        "concepts_after": [", ".join(texts) for texts in lists_b["texts"]],
        "jaccard_distance": [jaccard_distance(a, b) for a, b in zip(lists_a["ids"], lists_b["ids"])],
        "top_changed": top_a.to_numpy() != top_b.to_numpy()}, columns=list(CHANGED_COLUMNS))


def checkpoint_table(pairs: Sequence[CheckpointPair], n: int = N_COMPARED) -> pd.DataFrame:
    """One row per pair: its labels (``layer`` first), then :data:`CHECKPOINT_COLUMNS`:
    neurons, how many and what % changed their top concept, and the mean Jaccard index of
    the ``n`` best concepts before and after (1.0: every neuron kept its set)."""
    columns = _label_columns([pair.labels for pair in pairs], ("layer",))
    rows = []
    for pair in pairs:
        changed = changed_neurons(pair.before, pair.after, n)
        n_changed = int(changed["top_changed"].sum())
        rows.append({**pair.labels, "n_neurons": len(changed), "n_changed": n_changed,
                     "changed_pct": 100.0 * n_changed / len(changed) if len(changed) else float("nan"),
                     "mean_jaccard": float(1.0 - changed["jaccard_distance"].mean())})
    return pd.DataFrame(rows, columns=columns + list(CHECKPOINT_COLUMNS))


def most_changed(pairs: Sequence[CheckpointPair], n_neurons: int = 10,
                 n: int = N_COMPARED) -> pd.DataFrame:
    """Per pair, the ``n_neurons`` neurons whose best concepts changed most: its labels, then
    :data:`CHANGED_COLUMNS` (:func:`changed_neurons`).

    "Changed most" ranks by the Jaccard distance of the ``n`` best concepts before and
    after (largest first), then a changed top concept before a kept one, then the neuron
    id; neurons that kept their top concept and their set are never listed.
    """
    columns = _label_columns([pair.labels for pair in pairs], ("layer",))
    parts = []
    for pair in pairs:
        changed = changed_neurons(pair.before, pair.after, n)
        changed = changed[(changed["jaccard_distance"] > 0) | changed["top_changed"]]
        changed = changed.sort_values(["jaccard_distance", "top_changed", "neuron"],
                                      ascending=[False, False, True], kind="stable")
        parts.append(changed.head(n_neurons).assign(**pair.labels))
    if not parts:
        return pd.DataFrame(columns=columns + list(CHANGED_COLUMNS))
    return pd.concat(parts, ignore_index=True)[columns + list(CHANGED_COLUMNS)]


# ---------------------------------------------------------------- rendering


def table_markdown(table: pd.DataFrame, title: str, digits: int = 2) -> str:
    """Markdown of a comparison table (:func:`neuron_concepts.evaluation.table_markdown`),
    without the columns no row has a value in (the metrics of layers without evaluation)."""
    if table.empty:
        return f"# {title}\n\nNo rows: nothing to compare (one method or no pair configured).\n"
    return evaluation.table_markdown(table.dropna(axis=1, how="all"), title, digits)
