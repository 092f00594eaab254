"""Figures of the comparison tables (:mod:`neuron_concepts.compare`).

- :func:`plot_distinct_concepts`: layer depth vs. the number of distinct top concepts
  (NetDissect's unique detectors per layer), one panel per method and concept set, one line
  per target in the same colour in every panel;
- :func:`plot_checkpoint_changes`: per layer the % of neurons whose top concept changed
  between two checkpoints, one bar per method, one panel per pair of checkpoints (and any
  other label).

``plot_*`` functions return the figure; ``*_figure`` functions also save it as PNG with
:func:`neuron_concepts.figures.save_figure`, and return it so a caller (or a test) can
look at what was drawn.
"""

from __future__ import annotations

import os
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from . import figures

DPI = 120
#: The columns of a comparison table that are not labels (compare.SUMMARY_COLUMNS onwards).
FIRST_VALUE_COLUMN = "n_neurons"


def layer_positions(table: pd.DataFrame, layer_order: Mapping[str, Sequence[str]] | None = None
                    ) -> dict[str, list[str]]:
    """Target -> its layers in depth order: ``layer_order[target]`` (the configured order,
    layers absent from the table left out) or else the order they first appear in."""
    out = {}
    for target, rows in table.groupby("target", sort=False):
        seen = list(dict.fromkeys(rows["layer"]))
        configured = (layer_order or {}).get(target)
        out[target] = [layer for layer in configured if layer in seen] if configured else seen
    return out


def _panels(table: pd.DataFrame, exclude: Sequence[str]) -> tuple[list[str], list[tuple]]:
    """The label columns (before :data:`FIRST_VALUE_COLUMN`) not in ``exclude`` and the
    table's groups by them, in first-seen order."""
    labels = [c for c in table.columns[:table.columns.get_loc(FIRST_VALUE_COLUMN)]
              if c not in exclude]
    if not labels:
        return labels, [((), table)]
    return labels, [(key, group) for key, group in table.groupby(labels, sort=False)]


def _grid(n_panels: int, width: float, height: float, n_cols: int = 3) -> tuple[Figure, list[Axes]]:
    """A figure with ``n_panels`` axes of ``width`` x ``height`` inches, ``n_cols`` a row."""
    cols = max(1, min(n_cols, n_panels))
    rows = max(1, -(-n_panels // cols))
    fig = figures.new_figure(width * cols, height * rows)
    axes = list(fig.subplots(rows, cols, squeeze=False).ravel())
    for ax in axes[n_panels:]:
        ax.set_visible(False)
    return fig, axes[:max(n_panels, 1)]


#: Axis labels of the values the figures draw by default; others are their column names.
AXIS_LABELS = {"n_distinct_top": "distinct top concepts", "distinct_top_pct": "distinct top concepts (%)",
               "described_pct": "neurons described (%)", "changed_pct": "top concept changed (%)",
               "mean_jaccard": "mean Jaccard of the top concepts"}


def _axis_label(value: str) -> str:
    """The y-axis label of a table column."""
    return AXIS_LABELS.get(value, value.replace("_", " "))


def _title(labels: Sequence[str], key: tuple) -> str:
    """A panel's title: ``label: value`` of each label that splits the panels."""
    return ", ".join(f"{label}: {value}" for label, value in zip(labels, key))


def plot_distinct_concepts(table: pd.DataFrame, layer_order: Mapping[str, Sequence[str]] | None = None,
                           value: str = "n_distinct_top") -> Figure:
    """Layer depth (1 = the first configured layer) vs. ``value`` of
    :func:`neuron_concepts.compare.comparison_table`: a panel per combination of the labels
    other than target and layer (method, concept set, ...), a line per target labelled with
    its name. The x ticks name the layers when every target has the same ones."""
    orders = layer_positions(table, layer_order)
    colors = {target: f"C{i % 10}" for i, target in enumerate(orders)}
    same_layers = len({tuple(layers) for layers in orders.values()}) == 1
    labels, panels = _panels(table, ("target", "layer"))
    depth = max(len(layers) for layers in orders.values()) if orders else 1
    fig, axes = _grid(len(panels), max(4.0, 0.6 * depth + 2.5), 3.2)
    for ax, (key, panel) in zip(axes, panels):
        for target, layers in orders.items():
            rows = panel[panel["target"] == target].set_index("layer")
            y = rows[value].reindex(layers).to_numpy(dtype=float)
            ax.plot(np.arange(1, len(layers) + 1), y, marker="o", color=colors[target], label=str(target))
        ax.set_xticks(np.arange(1, depth + 1),
                      next(iter(orders.values())) if same_layers and orders else np.arange(1, depth + 1))
        ax.set_xlim(0.5, depth + 0.5)
        ax.set_ylim(bottom=0)
        if value.startswith("n_"):  # counts: whole-number ticks
            ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("layer" if same_layers else "layer depth (position among the configured layers)")
        ax.set_ylabel(_axis_label(value))
        ax.set_title(_title(labels, key if isinstance(key, tuple) else (key,)), fontsize="medium", wrap=True)
        ax.legend(fontsize="small")
    return fig


def distinct_concepts_figure(table: pd.DataFrame, path: str | os.PathLike,
                             layer_order: Mapping[str, Sequence[str]] | None = None,
                             value: str = "n_distinct_top") -> Figure:
    """:func:`plot_distinct_concepts`, saved as PNG at ``path``."""
    fig = plot_distinct_concepts(table, layer_order, value)
    figures.save_figure(fig, path, dpi=DPI)
    return fig


def plot_checkpoint_changes(table: pd.DataFrame, layer_order: Sequence[str] | None = None,
                            value: str = "changed_pct") -> Figure:
    """Bars of ``value`` (:func:`neuron_concepts.compare.checkpoint_table`) per layer, in
    ``layer_order`` or the table's order, one bar per method (a single bar without a method
    column), a panel per combination of the other labels (checkpoints, concept set, ...)."""
    layers = [l for l in layer_order if l in set(table["layer"])] if layer_order else list(
        dict.fromkeys(table["layer"]))
    methods = list(dict.fromkeys(table["method"])) if "method" in table else [None]
    labels, panels = _panels(table, ("layer", "method"))
    fig, axes = _grid(len(panels), max(4.5, 1.2 * len(layers) + 3.0), 3.2, n_cols=1)
    width = 0.8 / len(methods)
    x = np.arange(len(layers))
    for ax, (key, panel) in zip(axes, panels):
        for i, method in enumerate(methods):
            rows = panel if method is None else panel[panel["method"] == method]
            heights = rows.set_index("layer")[value].reindex(layers).to_numpy(dtype=float)
            bars = ax.bar(x + (i - (len(methods) - 1) / 2) * width, heights, width,
                          label=str(method) if method is not None else None, color=f"C{i % 10}")
            ax.bar_label(bars, fmt="%.0f" if value.endswith("_pct") else "%.2f", fontsize="small")
        ax.set_xticks(x, layers)
        ax.set_xlim(-0.7, max(len(layers), 2) - 0.3)  # a lone layer keeps narrow bars
        ax.set_ylim(0, 110 if value.endswith("_pct") else 1.1)
        ax.set_ylabel(_axis_label(value))
        ax.set_title(_title(labels, key if isinstance(key, tuple) else (key,)), fontsize="medium", wrap=True)
        if methods != [None]:
            ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    return fig


def checkpoint_changes_figure(table: pd.DataFrame, path: str | os.PathLike,
                              layer_order: Sequence[str] | None = None,
                              value: str = "changed_pct") -> Figure:
    """:func:`plot_checkpoint_changes`, saved as PNG at ``path``."""
    fig = plot_checkpoint_changes(table, layer_order, value)
    figures.save_figure(fig, path, dpi=DPI)
    return fig
