"""neuron-concepts: explain the neurons of vision models in words.

The library behind the Snakemake pipeline. Every stage of the workflow is a thin script
around functions of these modules, so a notebook user gets the same numbers:

- ``similarity``: cosine and t-vMF similarities.
- ``activations``: layer activations and top-activating images.
- ``www``: WWW concept scores and selection.
- ``metrics``: Hit Rate, F1, CLIP and mpnet cosine metrics.
- ``models``, ``embeddings``: model loading and batched encoders.
- ``data``, ``concepts``, ``io``: probe sets, concept sets and artifacts.
"""

__version__ = "0.1.0"
