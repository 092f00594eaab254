"""One driver for every description method: views -> layers -> methods, read once, written once.

A description job (and a notebook) calls :func:`describe_job` with a method family's name
and a list of views, each naming its cosine file and, per layer, the activations and the
methods with their output paths (as rules/helpers/www.smk and clip_dissect.smk build them)::

    [{"view": "center", "similarity": ".../cos.npz",
      "layers": [{"layer": "fc", "activations": ".../fc.npz",
                  "methods": [{"method": "www-center-cos-n40-a0.95", "sim": ["cos", 16.0],
                               "path": ".../descriptions.parquet"}]}]}]

The driver memory-maps the view's cosines (only the family's matrices,
``SIMILARITY_PARTS``), reads each layer's activations, and writes each method's description
table (:func:`neuron_concepts.io.description_table`'s columns); the family module supplies
the scoring, one layer at a time: ``describe_methods(similarity, activations, methods,
concepts, device=..., memory_budget=..., **options)`` yields ``(method, table, summary)``.
WWW (:func:`neuron_concepts.www.describe_methods`) scores each method; CLIP-Dissect
(:func:`neuron_concepts.clip_dissect.describe_methods`) scores methods that differ only in
top_k in one pass.
"""

from __future__ import annotations

import importlib
import logging
import os
from typing import Sequence

from . import io, resources

#: Family name (as in rules and params) -> the module that scores it.
FAMILIES = {"www": "neuron_concepts.www", "clip_dissect": "neuron_concepts.clip_dissect"}


def family_module(family: str):
    """The scoring module of a method family (imported here: it imports torch)."""
    if family not in FAMILIES:
        raise ValueError(f"unknown description family {family!r}: use one of {list(FAMILIES)}")
    return importlib.import_module(FAMILIES[family])


def describe_layers(family: str, views: list[dict], concepts: Sequence[str],
                    options: dict, device="cpu", memory_budget: int | None = None,
                    log: logging.Logger | None = None) -> list[str]:
    """Describe every layer of every view with every method of ``views`` (module docstring);
    returns the paths written. ``options``: the family's own arguments (WWW: n_images,
    alpha; CLIP-Dissect: n_best). ``memory_budget``: bytes each scoring call may hold on
    ``device`` (None: no limit)."""
    module = family_module(family)
    written = []
    for view in views:
        # Memory-mapped: a layer reads the rows of its neurons' top images only.
        cosines = io.load_similarity(view["similarity"], parts=module.SIMILARITY_PARTS,
                                     mmap=True)
        for layer in view["layers"]:
            written += _describe_layer(module, cosines, layer, concepts, options, device,
                                       memory_budget, log)
        del cosines  # unmapped: one view's touched pages resident at a time
    return written


def _describe_layer(module, cosines, layer: dict, concepts: Sequence[str], options: dict,
                    device, memory_budget: int | None,
                    log: logging.Logger | None) -> list[str]:
    """Every method of one layer: scored by ``module``, written, logged."""
    activations = io.load_activations(layer["activations"]).values
    written = []
    for method, table, summary in module.describe_methods(
            cosines, activations, layer["methods"], concepts, device=device,
            memory_budget=memory_budget, **options):
        io.save_descriptions(method["path"], table)
        if log is not None:
            log.info("%s %s: %s", layer["layer"], method["method"], summary)
        written.append(method["path"])
    return written


def describe_job(family: str, views: list[dict], concepts: str | os.PathLike, options: dict,
                 device: str = "cpu", gpu_mem_mb: int | None = None,
                 log: logging.Logger | None = None) -> list[str]:
    """What a description job runs: the concept set read from ``concepts``, the device
    resolved (``auto``: CUDA when visible), and on a GPU the scoring kept within
    ``gpu_mem_mb`` MB less the CUDA reserve (:func:`neuron_concepts.resources.gpu_work_bytes`)."""
    from .models import resolve_device

    resolved = resolve_device(device)
    budget = (resources.gpu_work_bytes(gpu_mem_mb)
              if gpu_mem_mb is not None and resolved.type != "cpu" else None)
    texts = io.load_concepts(concepts)["text"]
    return describe_layers(family, views, texts, options, resolved, budget, log)
