"""Where every artifact lives: one function per artifact, composing the names of
:mod:`neuron_concepts.names` into paths under ``results/``.

Each function's parameters default to the wildcard of the same name, so the call without
arguments is the rule's output pattern and the call with values a concrete path::

    image_embeddings()                                 # results/image_emb/{probe}/{clip}/{view}.npz
    image_embeddings("demo", "ViT-B-32-openai", "center")

Arguments may mix values and wildcards (``activations("{probe}", TARGET, "{view}", layer)``).
A name that carries parameters (a view, a method, a ConVis grid, a cosine file) is built by
names.py and passed in here as it is: paths only place names, they never build or parse one.
No config access and nothing heavy: the rule files import this at parse time. The tree:

================================================  ==========================================
``probe/{probe}/manifest.parquet``                probe_manifest (and unreadable, images)
``concepts/{concepts}.parquet``                   concepts (convis_concepts: ``convis-{vocab}``)
``text_emb/{clip}/{concepts}.npz``                text_embeddings (convis_text_embeddings)
``image_emb/{probe}/{clip}/{view}.npz``           image_embeddings
``activations/{probe}/{target}/{view}/{layer}.npz``  activations
``gradcam/{probe}/{target}/cams.npz``             gradcam_cams (crop_boxes: ``boxes-{crop}``)
``.../shards/{shard}/<file>``                     image_shard: the rows of an image stage's job
``similarity/{probe}/{clip}/{view}/{concepts}/{cosine_file}``  similarity
``descriptions/{probe}/{target}/{layer}/{method}/{concepts}.parquet``  descriptions
``eval/...``, ``eval_emb/{model}/{texts}.npz``    evaluation, evaluation_embeddings
``convis/vocab/{vocab}.parquet``, ``convis/{probe}/{clip}/{vocab}/{convis_grid}/...``  ConVis
``tables/{table}.{ext}``, ``figures/...``         table, figure, neuron_panel, convis_*_figure
``browser/{file}``, ``provenance/{file}``         browser, provenance
================================================  ==========================================
"""

from __future__ import annotations

import re

from . import names

#: The folder every artifact lives in (what provenance hashes and verifies).
RESULTS = "results"


# ---------------------------------------------------------------- probe sets and concept sets


def probe_dir(probe: str = "{probe}") -> str:
    """The folder of a probe set's manifest and prepared images."""
    return f"{RESULTS}/probe/{probe}"


def probe_manifest(probe: str = "{probe}") -> str:
    """The manifest of a probe set: one row per readable image (neuron_concepts.io)."""
    return f"{probe_dir(probe)}/manifest.parquet"


def probe_unreadable(probe: str = "{probe}") -> str:
    """The files of a probe set the manifest left out, with the reason."""
    return f"{probe_dir(probe)}/unreadable.parquet"


def probe_images(probe: str = "{probe}") -> str:
    """The folder where a probe set's images are prepared (a non-folder source)."""
    return f"{probe_dir(probe)}/images"


def concepts(concepts: str = "{concepts}") -> str:
    """A normalised concept set (a configured one, or a ConVis vocabulary's definitions)."""
    return f"{RESULTS}/concepts/{concepts}.parquet"


def convis_concepts(vocab: str = "{vocab}") -> str:
    """The definitions of a ConVis vocabulary as a concept set (``convis-{vocab}``)."""
    return concepts(names.convis_concept_set_name(vocab))


# ---------------------------------------------------------------- embeddings


def text_embeddings(clip: str = "{clip}", concepts: str = "{concepts}") -> str:
    """The CLIP text embeddings of a concept set by the CLIP model tagged ``clip``."""
    return f"{RESULTS}/text_emb/{clip}/{concepts}.npz"


def convis_text_embeddings(clip: str = "{clip}", vocab: str = "{vocab}") -> str:
    """The CLIP embeddings of a ConVis vocabulary's definitions (key ``raw``, row i = synset i)."""
    return text_embeddings(clip, names.convis_concept_set_name(vocab))


def image_embeddings(probe: str = "{probe}", clip: str = "{clip}", view: str = "{view}") -> str:
    """The CLIP image embeddings of a probe set through one view (names.view_name; a target's
    own view, names.target_view, where several targets crop each their own)."""
    return f"{RESULTS}/image_emb/{probe}/{clip}/{view}.npz"


def evaluation_embeddings(eval_model: str = "{eval_model}", texts: str = "{texts}") -> str:
    """The embeddings of a concept set's texts (or of the ImageNet class names) by one
    evaluation model (the evaluation CLIP or the sentence model, by its tag)."""
    return f"{RESULTS}/eval_emb/{eval_model}/{texts}.npz"


# ---------------------------------------------------------------- the target's image stages


def activations(probe: str = "{probe}", target: str = "{target}", view: str = "{view}",
                layer: str = "{layer}") -> str:
    """The activations [N, K] of one layer (names.layer_name) of the target on a probe set."""
    return f"{RESULTS}/activations/{probe}/{target}/{view}/{layer}.npz"


def gradcam_dir(probe: str = "{probe}", target: str = "{target}") -> str:
    """The folder of a probe set's Grad-CAMs and crop boxes by the target."""
    return f"{RESULTS}/gradcam/{probe}/{target}"


def gradcam_cams(probe: str = "{probe}", target: str = "{target}") -> str:
    """The Grad-CAMs of the predicted class on every image of a probe set."""
    return f"{gradcam_dir(probe, target)}/cams.npz"


def crop_boxes(probe: str = "{probe}", target: str = "{target}", crop: str = "{crop}") -> str:
    """The crop boxes of a gradcam view, named by its crop (names.gradcam_crop: ``f0.5``)."""
    return f"{gradcam_dir(probe, target)}/boxes-{crop}.parquet"


def image_shard(path: str, shard: str = "{shard}") -> str:
    """Where the shard ``shard`` (names.image_shard_name: ``rows0-10000``) of the artifact
    ``path`` of an image stage lives: beside it, in ``shards/{shard}/``
    (``results/image_emb/demo/clip/shards/rows0-8/center.npz``). A pattern stays a pattern."""
    folder, _, file = str(path).rpartition("/")
    return f"{folder}/shards/{shard}/{file}" if folder else f"shards/{shard}/{file}"


# ---------------------------------------------------------------- cosines, descriptions, evaluation


def similarity(probe: str = "{probe}", clip: str = "{clip}", view: str = "{view}",
               concepts: str = "{concepts}", cosine_file: str = "{cosine_file}") -> str:
    """The image-concept cosines of a probe set and a concept set by one CLIP model through
    one view; the file name says the stored dtype (names.cosine_file_name: ``cos.npz``)."""
    return f"{RESULTS}/similarity/{probe}/{clip}/{view}/{concepts}/{cosine_file}"


def descriptions(probe: str = "{probe}", target: str = "{target}", layer: str = "{layer}",
                 method: str = "{method}", concepts: str = "{concepts}") -> str:
    """The concepts of every neuron of a layer by one method (names.www_method_name,
    names.clip_dissect_method_name) from one concept set."""
    return f"{RESULTS}/descriptions/{probe}/{target}/{layer}/{method}/{concepts}.parquet"


def evaluation(probe: str = "{probe}", target: str = "{target}", layer: str = "{layer}",
               method: str = "{method}", concepts: str = "{concepts}") -> str:
    """The per-neuron metrics of a (final) layer's descriptions against its classes."""
    return f"{RESULTS}/eval/{probe}/{target}/{layer}/{method}/{concepts}.parquet"


# ---------------------------------------------------------------- ConVis


def convis_vocab(vocab: str = "{vocab}") -> str:
    """A ConVis vocabulary: the noun synsets on the hypernym paths of its words."""
    return f"{RESULTS}/convis/vocab/{vocab}.parquet"


def convis_dir(probe: str = "{probe}", clip: str = "{clip}", vocab: str = "{vocab}",
               convis_grid: str = "{convis_grid}") -> str:
    """The folder of a probe set's ConVis artifacts under one CLIP model, vocabulary and
    patch grid (names.convis_grid_name: ``anchored64-128-stride16``)."""
    return f"{RESULTS}/convis/{probe}/{clip}/{vocab}/{convis_grid}"


def convis_volume(probe: str = "{probe}", clip: str = "{clip}", vocab: str = "{vocab}",
                  convis_grid: str = "{convis_grid}", image: str = "{image}") -> str:
    """The rank volume of one probe image (an id may hold ``/``)."""
    return f"{convis_dir(probe, clip, vocab, convis_grid)}/ranks/{image}.npz"


def convis_map(probe: str = "{probe}", clip: str = "{clip}", vocab: str = "{vocab}",
               convis_grid: str = "{convis_grid}", image: str = "{image}", synset: str = "{synset}") -> str:
    """The ConVis saliency map of one synset on one image."""
    return f"{convis_dir(probe, clip, vocab, convis_grid)}/maps/{image}/{synset}.npz"


def convis_top(probe: str = "{probe}", clip: str = "{clip}", vocab: str = "{vocab}",
               convis_grid: str = "{convis_grid}", image: str = "{image}") -> str:
    """The synsets one image scores highest on."""
    return f"{convis_dir(probe, clip, vocab, convis_grid)}/top/{image}.parquet"


_CONVIS_VOLUME = re.compile(
    rf"(?:.*/)?convis/(?P<probe>{names.CONFIG_NAME})/(?P<clip>{names.MODEL_TAG})/"
    rf"(?P<vocab>{names.CONFIG_NAME})/(?P<convis_grid>{names.CONVIS_GRID})/ranks/(?P<image>.+)\.npz")


def parse_convis_volume(path: str) -> dict:
    """probe, clip, vocab, convis_grid and image (an id may hold ``/``) of a rank-volume
    path (:func:`convis_volume`), under ``results/`` or any other folder: the arguments of
    :func:`convis_volume` that give the path back."""
    match = _CONVIS_VOLUME.fullmatch(str(path))
    if match is None:
        raise ValueError(f"{path!r} is no ConVis rank volume ({convis_volume()})")
    return match.groupdict()


# ---------------------------------------------------------------- tables and figures


def table(table: str = "{table}", ext: str = "{ext}") -> str:
    """A results table: ``ablation``, ``concept_discovery``, ``stability``, ``convis_ood``,
    ``convis_wsol``; ``csv`` (read by programs) or ``md`` (read by people)."""
    return f"{RESULTS}/tables/{table}.{ext}"


def table_files(table_name: str) -> list[str]:
    """A table's two files: the CSV, then the Markdown."""
    return [table(table_name, "csv"), table(table_name, "md")]


def figure(figure: str = "{figure}") -> str:
    """A figure of its own: ``crop_comparison``, ``stability``, ``browser_panel``."""
    return f"{RESULTS}/figures/{figure}.png"


def neuron_panel(layer: str = "{layer}") -> str:
    """The neuron panel figure of one layer (names.layer_name)."""
    return f"{RESULTS}/figures/neuron_panels/{layer}.png"


def convis_map_figure(image: str = "{image}", synset: str = "{synset}") -> str:
    """The overlay of one configured (image, synset) pair's ConVis map."""
    return f"{RESULTS}/figures/convis/{image}__{synset}.png"


def convis_top_figure(image: str = "{image}") -> str:
    """The grid of one configured image's top-scoring synsets' maps."""
    return f"{RESULTS}/figures/convis/{image}__top.png"


# ---------------------------------------------------------------- browser and provenance


def browser(file: str = "{file}") -> str:
    """A file (or folder) of the neuron browser's site, by its name inside the site
    (neuron_concepts.browser: ``index.html``, ``layer-fc.html``, ``data/fc.js``, ``thumbs``)."""
    return f"{RESULTS}/browser/{file}"


def provenance(file: str = "{file}") -> str:
    """A record of what made ``results/`` (neuron_concepts.provenance): ``config.yaml``,
    ``environment.yaml``, ``weights.yaml``, ``manifest.tsv``, and ``runs``, the folder of
    Snakemake's kept run logs."""
    return f"{RESULTS}/provenance/{file}"


# ---------------------------------------------------------------- outside results/


def weights_marker(cache: str = "{cache}", kind: str = "{kind}", tag: str = "{tag}") -> str:
    """The marker a download of a model's weights (``kind``: target, clip, sentence) leaves
    in the weights cache; every model job waits for it."""
    return f"{cache}/markers/{kind}/{tag}.json"
