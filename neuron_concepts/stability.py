"""Stability of CLIP-Dissect descriptions over the number of activating images (Cha & Weng).

Every neuron is described with ``top_k = k`` activating images for ``k`` in {5, 10, 16};
its 5 best concepts at ``k`` are compared with those at the base ``k = 5``:

- stability: % of neurons whose top-5 concept **set** is unchanged (order ignored);
- top-1 agreement (ours): % of neurons whose best concept is unchanged;
- mean Jaccard (ours): mean over neurons of ``|A & B| / |A | B|`` of the two top-5 sets.
"""

from __future__ import annotations

import os
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from .errors import InputDataError

PANEL_TITLES = {"sim": "similarity", "probe": "probe set"}
TABLE_COLUMNS = ["layer", "concepts", "sim", "k_from", "k_to", "stability_pct",
                 "top1_agreement_pct", "mean_jaccard", "n_neurons"]


def top_concepts(descriptions: pd.DataFrame, n: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Each neuron's ``n`` best concepts from a descriptions table: ``(neurons [K], [K, n])``.

    ``descriptions`` has columns ``neuron, rank, concept`` (the descriptions artifact);
    rows of the result follow ascending neuron id, columns ascending rank.
    """
    missing = {"neuron", "rank", "concept"} - set(descriptions.columns)
    if missing:
        raise InputDataError(f"descriptions table lacks columns {sorted(missing)}: "
                             f"expected neuron, rank, concept, score, selected")
    best = descriptions[descriptions["rank"] < n].sort_values(["neuron", "rank"], kind="stable")
    neurons, counts = np.unique(best["neuron"].to_numpy(), return_counts=True)
    if (counts != n).any():
        short = neurons[counts != n][:5].tolist()
        raise InputDataError(f"neurons {short} do not have exactly one concept at each rank "
                             f"0..{n - 1}: describe each neuron with at least {n} concepts")
    return neurons, best["concept"].to_numpy(dtype=object).reshape(len(neurons), n)


def _set_overlap(base: ArrayLike, other: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per neuron: ``|A & B|``, ``|A|``, ``|B|`` of the row sets (duplicates within a row count once)."""
    base = np.asarray(base, dtype=object)
    other = np.asarray(other, dtype=object)
    if base.ndim != 2 or base.shape != other.shape:
        raise ValueError(f"concept lists must both be [neurons, n], got {base.shape} and "
                         f"{other.shape}")
    n = base.shape[1]
    earlier = np.tril(np.ones((n, n), dtype=bool), k=-1)  # [i, j]: j comes before i

    def first_occurrence(rows: np.ndarray) -> np.ndarray:
        repeats = (rows[:, :, None] == rows[:, None, :]) & earlier
        return ~repeats.any(axis=2)

    base_first = first_occurrence(base)
    in_other = (base[:, :, None] == other[:, None, :]).any(axis=2)
    shared = (base_first & in_other).sum(axis=1)
    return shared, base_first.sum(axis=1), first_occurrence(other).sum(axis=1)


def stability(top_base: ArrayLike, top_k: ArrayLike) -> float:
    """% of neurons whose set of top concepts is the same in both (order ignored)."""
    shared, size_base, size_k = _set_overlap(top_base, top_k)
    return 100.0 * float(np.mean((shared == size_base) & (shared == size_k)))


def top1_agreement(top_base: ArrayLike, top_k: ArrayLike) -> float:
    """% of neurons whose best (rank-0) concept is the same in both."""
    base = np.asarray(top_base, dtype=object)
    other = np.asarray(top_k, dtype=object)
    if base.shape != other.shape:
        raise ValueError(f"concept lists differ in shape: {base.shape} and {other.shape}")
    return 100.0 * float(np.mean(base[:, 0] == other[:, 0]))


def mean_jaccard(top_base: ArrayLike, top_k: ArrayLike) -> float:
    """Mean over neurons of the Jaccard index ``|A & B| / |A | B|`` of the top-concept sets."""
    shared, size_base, size_k = _set_overlap(top_base, top_k)
    return float(np.mean(shared / (size_base + size_k - shared)))


def stability_rows(tops: Mapping[int, ArrayLike | pd.DataFrame], base_k: int = 5, n: int = 5,
                   **labels: object) -> pd.DataFrame:
    """Stability of ``base_k -> k`` for every other ``k`` in ``tops`` (``{k: [K, n] or descriptions}``).

    ``labels`` (e.g. ``layer``, ``concepts``, ``sim``) become the leading columns. The
    neurons must be the same at every ``k``.
    """
    if base_k not in tops:
        raise InputDataError(f"no descriptions for the base k={base_k}: "
                             f"describe with top_k={base_k} too (have k={sorted(tops)})")
    neurons_by_k = {k: _as_top_array(value, n) for k, value in tops.items()}
    base_neurons, base = neurons_by_k[base_k]
    rows = []
    for k in sorted(k for k in tops if k != base_k):
        neurons, other = neurons_by_k[k]
        if not np.array_equal(neurons, base_neurons):
            raise InputDataError(f"descriptions at k={k} cover other neurons than at "
                                 f"k={base_k} ({labels}): describe the same layer both times")
        rows.append({**labels, "k_from": base_k, "k_to": k,
                     "stability_pct": stability(base, other),
                     "top1_agreement_pct": top1_agreement(base, other),
                     "mean_jaccard": mean_jaccard(base, other),
                     "n_neurons": len(neurons)})
    return pd.DataFrame(rows)


GROUP_LABELS = ("layer", "concepts", "sim")


def stability_table(groups: Mapping[tuple, Mapping[int, ArrayLike | pd.DataFrame]],
                    base_k: int = 5, n: int = 5,
                    label_names: Sequence[str] = GROUP_LABELS) -> pd.DataFrame:
    """The stability table over ``{(layer, concepts, sim): {k: descriptions}}``.

    Columns ``layer, concepts, sim, k_from, k_to, stability_pct, top1_agreement_pct,
    mean_jaccard, n_neurons``; one row per group and ``k != base_k``, in the groups' order.
    Groups keyed by other labels (the pipeline adds the probe set and the variant) name
    them in ``label_names``, which then lead the columns instead.
    """
    label_names = list(label_names)
    columns = label_names + TABLE_COLUMNS[len(GROUP_LABELS):]
    parts = []
    for key, tops in groups.items():
        if len(key) != len(label_names):
            raise ValueError(f"group {key} does not match the labels {label_names}")
        parts.append(stability_rows(tops, base_k, n, **dict(zip(label_names, key))))
    if not parts:
        return pd.DataFrame(columns=columns)
    return pd.concat(parts, ignore_index=True)[columns]


def _as_top_array(value: ArrayLike | pd.DataFrame, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``(neurons, [K, n] concepts)`` from a descriptions table or a ready array."""
    if isinstance(value, pd.DataFrame):
        return top_concepts(value, n)
    array = np.asarray(value, dtype=object)
    if array.ndim != 2 or array.shape[1] < n:
        raise ValueError(f"top-concept lists must be [neurons, >= {n}], got {array.shape}")
    return np.arange(array.shape[0]), array[:, :n]


def stability_figure(table: pd.DataFrame, path: str | os.PathLike,
                     value: str = "stability_pct") -> None:
    """Grouped bars of ``value`` per layer, one bar per ``k_from -> k_to``, one panel per
    combination of the other labels (concept set, similarity, and any label columns before
    ``k_from``); written as PNG by :func:`neuron_concepts.figures.save_figure`."""
    from . import figures  # here: computing the table needs no matplotlib

    panel_labels = [c for c in table.columns[:table.columns.get_loc("k_from")] if c != "layer"]
    panels = list(table.groupby(panel_labels, sort=False))  # keys are tuples (a list of labels)
    width_in = max(5.0, 1.6 * table["layer"].nunique() + 3.0)
    fig = figures.new_figure(width_in, 3.2 * max(1, len(panels)))
    axes = fig.subplots(max(1, len(panels)), 1, squeeze=False)[:, 0]
    transitions = sorted(set(zip(table["k_from"], table["k_to"])))
    width = 0.8 / max(1, len(transitions))
    for ax, (panel_key, panel) in zip(axes, panels):
        layers = list(dict.fromkeys(panel["layer"]))
        x = np.arange(len(layers))
        for i, (k_from, k_to) in enumerate(transitions):
            bars = panel[(panel["k_from"] == k_from) & (panel["k_to"] == k_to)]
            heights = bars.set_index("layer")[value].reindex(layers).to_numpy(dtype=float)
            bars = ax.bar(x + (i - (len(transitions) - 1) / 2) * width, heights, width,
                          label=f"{k_from} → {k_to} images")
            ax.bar_label(bars, fmt="%.0f" if value.endswith("_pct") else "%.2f",
                         fontsize="small")
        ax.set_xticks(x, layers)
        ax.set_xlim(-0.7, max(len(layers), 2) - 0.3)  # a lone layer keeps narrow bars
        ax.set_ylim(0, 110 if value.endswith("_pct") else 1.1)
        ax.set_ylabel(value.replace("_pct", " (%)").replace("_", " "))
        ax.set_title(", ".join(f"{PANEL_TITLES.get(c, c)}: {v}"
                               for c, v in zip(panel_labels, panel_key)),
                     fontsize="medium", wrap=True)  # wrap: many labels outgrow the axes
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    figures.save_figure(fig, path, dpi=120)
