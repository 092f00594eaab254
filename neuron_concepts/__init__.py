"""neuron-concepts: explain the neurons of vision models in words.

The library behind the Snakemake pipeline. Every stage of the workflow is a thin script
around functions of these modules, so a notebook user gets the same numbers. Each module
loads on first use (``neuron_concepts.www`` imports :mod:`neuron_concepts.www`), so
``import neuron_concepts`` itself costs nothing and loads neither torch nor matplotlib.

Configuration and running:

- ``settings``: the configuration as the workflow reads it, cross-checked, then resolved once.
- ``names``: the parameter names in artifact paths: build them, parse them, match them.
- ``paths``: where every artifact lives: one function per artifact, its wildcards by default.
- ``errors``: the exceptions whose message says what to fix.
- ``logs``: a job's Python logging, warnings and stderr, sent to its log file.
- ``lazy``: modules imported on first use, so jobs that never touch torch never load it.
- ``plan``: the experiment planned at full size: work per job, time per device, critical path, n-node schedule.
- ``provenance``: a run's resolved config, package versions, weights hashes and artifact manifest.
- ``resources``: what a job declares, from its inputs: memory, GPU memory and runtime formulas.

Data:

- ``data``: probe image sets (demo, class folders, flat folder), ImageNet class ids and names.
- ``concepts``: concept sets (ImageNet words or label lines, WordNet nouns, a file).
- ``wordnet``: WordNet 3.0 through NLTK: installation, ImageNet ids as synsets, hypernyms.
- ``io``: one save/load pair per artifact type, every write atomic.

Models:

- ``models``: target models (torchvision, timm, open_clip towers), CLIP and the sentence model.
- ``layers``: neurons of any layer: output layouts, reductions to one value per neuron, the
  layer listing (``python -m neuron_concepts.layers``).
- ``embeddings``: batched CLIP text and image encoders, L2-normalised.
- ``activations``: layer activations and each neuron's top-activating images.
- ``shards``: the image stages cut into ranges of manifest rows, and their join.
- ``gradcam``: Grad-CAM of the predicted class and the crop boxes of the gradcam view.

Methods:

- ``similarity``: cosine and t-vMF similarities.
- ``www``: WWW concept scores and the adaptive-threshold selection.
- ``clip_dissect``: CLIP-Dissect's WPMI and soft-WPMI concept scores.
- ``describe``: the one description driver: views, layers and methods of a job, each method's scoring.
- ``stability``: how stable CLIP-Dissect's descriptions are over the number of images.
- ``convis_vocabulary``: ConVis vocabularies of WordNet synsets, hyponym rows, an image's top synsets.
- ``convis_grid``: ConVis patch grids, the coverage average of saliency maps, the rank-volume format.
- ``convis_volume``: ConVis ranks and rank volumes: patches of many images through one CLIP.
- ``convis_figures``: ConVis saliency maps drawn over their image.
- ``convis_eval``: ConVis's OOD AUROC and WSOL MaxBoxAcc.

Evaluation and figures:

- ``metrics``: Hit Rate, F1, and CLIP and mpnet cosines of descriptions against labels.
- ``evaluation``: final-layer descriptions against the neurons' ImageNet classes; tables.
- ``figures``: shared drawing helpers (canvas, heat-map overlay, reproducible PNG) and WWW figures.
- ``www_figures``: the WWW figures drawn from pipeline artifacts.
- ``browser``: the static neuron browser: every neuron, its images and every method's words.
- ``compare``: targets, methods and checkpoints side by side: distinct top concepts, agreement, changes.
- ``compare_figures``: the comparison figures: distinct concepts by layer depth, changed concepts per layer.
"""

from __future__ import annotations

import importlib
from types import ModuleType

__version__ = "0.1.0"

__all__ = [
    "activations", "browser", "clip_dissect", "compare", "compare_figures", "concepts", "convis_eval",
    "convis_figures", "convis_grid", "convis_vocabulary", "convis_volume", "data", "embeddings",
    "errors", "evaluation", "figures", "gradcam", "io", "layers", "lazy", "logs", "metrics", "models",
    "names", "paths", "describe", "shards",
    "plan", "provenance", "resources", "settings", "similarity", "stability", "wordnet", "www", "www_figures",
]


def __getattr__(name: str) -> ModuleType:
    """Import the submodule ``name`` on first access (PEP 562); later accesses find it bound."""
    if name in __all__:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
