"""The neuron browser: a static site with every neuron, its top images and every method's words.

:func:`build_site` reads the pipeline's artifacts (manifest, activations, crop boxes, CAMs,
descriptions, evaluations, stability descriptions, text embeddings, ConVis maps) and writes a
self-contained folder: ``index.html`` (the layers and their agreement summaries), one
``layer-<layer>.html`` per layer, its data as ``data/<layer>.js`` (loaded by that page
only, so a page never reads another layer's data), thumbnails written once per image and
view under ``thumbs/<view>/<row>.<ext>`` (``thumbs/cam/`` for the Grad-CAM overlays) and,
when ConVis is configured, ``convis.html`` with the maps of each image. The data files are
scripts, not JSON fetched at run time, so the site works from ``file://`` as well as from
``python -m http.server``; pages paginate (``page_size`` neurons at a time) so 2,048
neurons x 8 methods stay fast. HTML comes from the Jinja2 templates in
``neuron_concepts/templates/browser``.

Several targets (config ``targets:``): each has its own site, the primary's as with one
target and another's in ``targets/<tag>/`` inside it (:func:`target_site_file`); every page's
header links the other targets' index pages (``switcher``, :func:`target_switcher`, relative
links). On the site of a checkpoint (a target with the same architecture as others), each
neuron's panel shows the top concept of every method in the other checkpoints of its
architecture, side by side (``checkpoints``, :func:`checkpoint_tops`; neurons are the same ids
across checkpoints). Without them a site is written byte for byte as before.

Agreement across methods (ours), per neuron and concept set, over the methods' top
(rank-0) concepts: ``exact`` is the share of methods that name the most common top concept
(1.0: all agree); ``semantic`` is the mean pairwise cosine of the top concepts' CLIP text
embeddings (the match CLIP's prompts, as WWW matches them), so "dog" and "puppy" count as near
agreement.

Imports numpy, pandas, PIL and jinja2 only (no torch): the browser job runs no model.
:func:`screenshot_panel` imports Playwright when called.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import resources
from importlib.util import find_spec
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from PIL import Image, ImageDraw, features

from . import data, io
from .activations import www_top_images
from .errors import ConfigError, InputDataError

#: Thumbnail format: WebP where Pillow has it, else JPEG.
THUMB_EXT = "webp" if features.check("webp") else "jpg"
#: The evaluation metrics a final-layer neuron shows (io.EVALUATION's metric columns).
METRICS = ("www_hit", "www_f1", "www_clip_cos", "www_mpnet_cos", "cd_clip_cos", "cd_mpnet_cos",
           "cd_top1_acc", "cd_top5_acc", "cd_top1_synonym_acc", "cd_top5_synonym_acc")
#: Concepts shown per method and neuron beyond the selected ones (greyed), best first.
N_SHOWN = 5
STATIC_FILES = ("browser.js", "browser.css")
#: The script that adds the other checkpoints' concepts to a neuron's panel (checkpoint sites only).
CHECKPOINT_SCRIPT = "checkpoints.js"


# ---------------------------------------------------------------- images


def thumbnail(image: Image.Image, size: int) -> Image.Image:
    """A copy whose longer side is at most ``size`` px."""
    thumb = image.copy()
    thumb.thumbnail((size, size), Image.Resampling.LANCZOS)
    return thumb


def save_thumbnail(image: Image.Image, path: Path) -> None:
    """Write a small WebP (or JPEG) thumbnail."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, quality=80, **({"method": 4} if THUMB_EXT == "webp" else {}))


def heat_colors(heat: np.ndarray) -> np.ndarray:
    """A ``[H, W]`` map in [0, 1] as ``[H, W, 3]`` uint8, blue (0) through green to red (1)."""
    h = np.clip(np.asarray(heat, dtype=np.float32), 0.0, 1.0)
    rgb = np.stack([np.clip(1.5 - np.abs(4 * h - c), 0, 1) for c in (3.0, 2.0, 1.0)], axis=-1)
    return (255 * rgb).astype(np.uint8)


def heat_overlay(image: Image.Image, heat: np.ndarray, alpha: float = 0.5,
                 box: Sequence[int] | None = None) -> Image.Image:
    """``heat`` (any resolution, normalised to its max) blended over ``image``; ``box`` outlined."""
    heat = np.asarray(heat, dtype=np.float32)
    peak = float(heat.max()) if heat.size else 0.0
    scaled = heat / peak if peak > 0 else np.zeros_like(heat)
    layer = Image.fromarray(heat_colors(scaled)).resize(image.size, Image.Resampling.BILINEAR)
    out = Image.blend(image, layer, alpha)
    if box is not None:
        width = max(2, min(image.size) // 100)
        ImageDraw.Draw(out).rectangle([box[0], box[1], box[2] - 1, box[3] - 1], outline=(255, 255, 255),
                                      width=width)
    return out


def view_crop(image: Image.Image, box: Sequence[int] | None) -> Image.Image:
    """The image as a view shows it: the crop ``box``, or the square centre crop."""
    return image.crop(tuple(box) if box is not None else data.center_box(*image.size))


def box_lookup(boxes: pd.DataFrame | None) -> dict[str, tuple[int, int, int, int]]:
    """Image id (as text) -> its crop box, from a crop_boxes table (empty without one)."""
    if boxes is None:
        return {}
    return {str(r.image_id): (int(r.x0), int(r.y0), int(r.x1), int(r.y1))
            for r in boxes.itertuples(index=False)}


# ---------------------------------------------------------------- descriptions and agreement


def neuron_concepts(descriptions: pd.DataFrame, n_shown: int = N_SHOWN) -> dict[int, list[list]]:
    """Neuron -> ``[concept, score, selected]`` rows, by rank: every selected concept, then
    unselected ones until ``n_shown`` rows."""
    table = descriptions.sort_values(["neuron", "rank"], kind="stable")
    keep = table["selected"].to_numpy() | (table["rank"].to_numpy() < n_shown)
    table = table[keep]
    out: dict[int, list[list]] = {}
    for neuron, concept, score, selected in zip(table["neuron"].to_numpy(), table["concept"].astype(str).tolist(),
                                                table["score"].to_numpy(), table["selected"].to_numpy()):
        out.setdefault(int(neuron), []).append([concept, round(float(score), 4), bool(selected)])
    return out


def top_concept_ids(descriptions: pd.DataFrame, n_neurons: int) -> np.ndarray:
    """Each neuron's rank-0 concept id, ``[K]`` (-1 where a neuron has no description)."""
    best = descriptions[descriptions["rank"] == 0]
    out = np.full(n_neurons, -1, dtype=np.int64)
    neurons = best["neuron"].to_numpy()
    inside = neurons < n_neurons
    out[neurons[inside]] = best["concept_id"].to_numpy()[inside]
    return out


def exact_agreement(tops: np.ndarray) -> np.ndarray:
    """Per neuron (row of ``tops [K, M]``, top concept ids of M methods): the share of methods
    naming the most common top concept. 1.0 when all agree; 1/M when all differ."""
    tops = np.asarray(tops)
    if tops.ndim != 2 or tops.shape[1] == 0:
        raise ValueError(f"top concepts must be [neurons, methods >= 1], got {tops.shape}")
    counts = (tops[:, :, None] == tops[:, None, :]).sum(axis=2)
    return counts.max(axis=1) / tops.shape[1]


def semantic_agreement(tops: np.ndarray, embeddings: np.ndarray) -> np.ndarray:
    """Per neuron: the mean pairwise cosine of its methods' top concepts' embeddings.

    ``tops [K, M]`` are rows of ``embeddings [C, D]``; NaN with fewer than two methods.
    """
    tops = np.asarray(tops)
    if tops.shape[1] < 2:
        return np.full(tops.shape[0], np.nan)
    emb = np.asarray(embeddings, dtype=np.float32)
    emb = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    vectors = emb[tops]  # [K, M, D]
    pairs = list(itertools.combinations(range(tops.shape[1]), 2))
    cos = np.stack([(vectors[:, i] * vectors[:, j]).sum(axis=1) for i, j in pairs], axis=1)
    return cos.mean(axis=1)


def pairwise_agreement(tops: np.ndarray) -> np.ndarray:
    """``[M, M]``: the share of neurons on which methods i and j name the same top concept."""
    tops = np.asarray(tops)
    return (tops[:, :, None] == tops[:, None, :]).mean(axis=0)


def jaccard(a: Iterable, b: Iterable) -> float:
    """``|A & B| / |A | B|`` of two concept lists as sets (1.0 for two empty lists)."""
    a, b = set(a), set(b)
    return len(a & b) / len(a | b) if a | b else 1.0


def top_concept_lists(descriptions: pd.DataFrame, n: int) -> dict[int, list[str]]:
    """Neuron -> its ``n`` best concepts, by rank."""
    best = descriptions[descriptions["rank"] < n].sort_values(["neuron", "rank"], kind="stable")
    out: dict[int, list[str]] = {}
    for neuron, concept in zip(best["neuron"].to_numpy(), best["concept"].astype(str)):
        out.setdefault(int(neuron), []).append(concept)
    return out


def histogram(values: np.ndarray, levels: Sequence[float]) -> list[dict]:
    """Counts of ``values`` at each of ``levels`` (rounded to 6 digits), for a bar chart."""
    rounded = np.round(np.asarray(values, dtype=np.float64), 6)
    total = max(len(rounded), 1)
    return [dict(level=float(level), count=int((rounded == round(level, 6)).sum()),
                 share=float((rounded == round(level, 6)).sum() / total)) for level in levels]


# ---------------------------------------------------------------- class names


def imagenet_class_names() -> list[str]:
    """Short names of the 1,000 ImageNet classes by index, from timm's data files (found, not
    imported: importing timm imports torch). Empty when timm is not installed."""
    spec = find_spec("timm")
    if spec is None or not spec.submodule_search_locations:
        return []
    info = Path(list(spec.submodule_search_locations)[0]) / "data" / "_info"
    try:
        wnids = (info / "imagenet_synsets.txt").read_text().split()
        lemmas = dict(line.split("\t", 1) for line in
                      (info / "imagenet_synset_to_lemma.txt").read_text().splitlines() if "\t" in line)
    except OSError:
        return []
    return [lemmas.get(wnid, wnid).split(",")[0].strip() for wnid in wnids]


# ---------------------------------------------------------------- the site


@dataclass(frozen=True)
class SiteOptions:
    """What the browser shows: images per neuron and view, thumbnail side, neurons per page,
    the cosine at which two top concepts count as agreeing semantically."""

    n_images: int
    thumbnail_px: int = 128
    page_size: int = 50
    similarity_threshold: float = 0.8


def _environment() -> Environment:
    return Environment(loader=PackageLoader("neuron_concepts", "templates/browser"),
                       autoescape=select_autoescape(["html"]), undefined=StrictUndefined,
                       trim_blocks=True, lstrip_blocks=True)


def _write_static(out: Path, checkpoints: bool = False) -> None:
    folder = resources.files("neuron_concepts") / "templates" / "browser"
    (out / "static").mkdir(parents=True, exist_ok=True)
    for name in STATIC_FILES + ((CHECKPOINT_SCRIPT,) if checkpoints else ()):
        (out / static_file(name)).write_text((folder / name).read_text())


def _data_script(layer: str, data: dict) -> str:
    """The layer's data as a script that registers it (loads from file:// too)."""
    payload = json.dumps(data, separators=(",", ":"), allow_nan=False).replace("</", "<\\/")
    return f"window.NEURON_BROWSER = window.NEURON_BROWSER || {{}};\n" \
           f"window.NEURON_BROWSER[{json.dumps(layer)}] = {payload};\n"


def metric_cells(evaluation: pd.DataFrame) -> dict[int, dict[str, float]]:
    """Neuron -> {metric: value} of an evaluation table's finite METRICS (rounded), read
    column-wise: per-cell pandas lookups cost seconds on a 1,000-neuron layer."""
    neurons = evaluation["neuron"].to_numpy()
    columns = {metric: evaluation[metric].to_numpy(dtype=float) for metric in METRICS}
    return {int(neuron): {metric: round(float(values[row]), 4) for metric, values in columns.items()
                          if np.isfinite(values[row])}
            for row, neuron in enumerate(neurons)}


def _clean(value: float) -> float | None:
    return None if value is None or not np.isfinite(value) else round(float(value), 4)


#: Names inside the site folder (paths.browser places the folder): the index page, the
#: thumbnails' folder and the ConVis page.
INDEX = "index.html"
THUMBS = "thumbs"
CONVIS_PAGE = "convis.html"


def layer_file(layer: str) -> str:
    """The page of a layer in the site."""
    return f"layer-{layer}.html"


def data_file(layer: str) -> str:
    """The data script of a layer's page in the site (``data/<layer>.js``)."""
    return f"data/{layer}.js"


def static_file(name: str) -> str:
    """A script or style sheet of :data:`STATIC_FILES` in the site (``static/<name>``)."""
    return f"static/{name}"


def site_files(layers: Sequence[str], convis: bool, checkpoints: bool = False) -> list[str]:
    """What :func:`build_site` writes besides the index and the thumbnails, by name inside
    the site: each layer's page and data, the static files (and the checkpoints' script,
    ``checkpoints``), and the ConVis page (``convis``)."""
    return ([layer_file(layer) for layer in layers] + [data_file(layer) for layer in layers]
            + [static_file(name) for name in STATIC_FILES]
            + ([static_file(CHECKPOINT_SCRIPT)] if checkpoints else [])
            + ([CONVIS_PAGE] if convis else []))


def target_site_file(tag: str, file: str) -> str:
    """A file of another target's site, by its name inside the primary target's site: the
    site of target ``tag`` is the folder ``targets/<tag>`` there."""
    return f"targets/{tag}/{file}"


def target_switcher(indexes: Mapping[str, str | os.PathLike], current: str) -> list[dict]:
    """The target switcher of the site of target ``current``: per target of ``indexes`` (tag
    -> its index page, in order) ``{label, href, current}``, ``href`` the index page relative
    to this site's folder, so the links work from ``file://`` and from any server root."""
    if current not in indexes:
        raise ValueError(f"target {current!r} is not among the sites {list(indexes)}")
    here = Path(indexes[current]).parent
    return [dict(label=tag, href=Path(os.path.relpath(Path(index), here)).as_posix(),
                 current=tag == current) for tag, index in indexes.items()]


def top_concepts(descriptions: pd.DataFrame) -> dict[int, str]:
    """Neuron -> the text of its rank-0 (top) concept."""
    best = descriptions[descriptions["rank"] == 0]
    return {int(neuron): concept for neuron, concept in
            zip(best["neuron"].to_numpy(), best["concept"].astype(str).tolist())}


def checkpoint_tops(checkpoints: Sequence[Mapping], layer: str, concepts: str,
                    methods: Sequence[str]) -> dict[str, dict[str, dict[int, str]]]:
    """Other checkpoint -> method -> neuron -> top concept, in one layer and concept set, from
    ``checkpoints`` (``{target, layer, method, concepts, path}`` descriptions of the other
    checkpoints) for the ``methods`` this site shows, in their order; the checkpoints in the
    order given. Empty when none is given for this layer and concept set."""
    tables = {(c["target"], c["method"]): c["path"] for c in checkpoints
              if c["layer"] == layer and c["concepts"] == concepts}
    tags = list(dict.fromkeys(tag for tag, _ in tables))
    return {tag: {method: top_concepts(io.load_descriptions(tables[(tag, method)]))
                  for method in methods if (tag, method) in tables} for tag in tags}


def build_site(index: str | os.PathLike, *, manifest: str, layers: Sequence[str], final_layer: str,
               views: Sequence[Mapping], methods: Sequence[Mapping], concept_sets: Sequence[str],
               descriptions: Sequence[Mapping], evaluations: Sequence[Mapping] = (),
               text_embeddings: Mapping[str, str] | None = None, cams: str | None = None,
               stability: Sequence[Mapping] = (), stability_base_k: int | None = None,
               stability_n_best: int = 5, convis: Sequence[Mapping] = (),
               options: SiteOptions, title: str = "Neuron browser", threads: int = 1,
               switcher: Sequence[Mapping] = (), checkpoints: Sequence[Mapping] = ()) -> Path:
    """Write the browser, ``index`` (``.../index.html``) and the rest beside it, from artifact paths.

    Earlier thumbnails and data there are removed; ``threads`` write thumbnails in parallel.

    - ``views``: ``{view, boxes (path or None), activations: {layer: path}}`` per view;
    - ``methods``: ``{name, family, view}`` per described method (the columns);
    - ``descriptions``: ``{layer, method, concepts, path}``; ``evaluations``: ``{method,
      concepts, path}`` (final layer); ``text_embeddings``: concept set -> text embeddings path;
    - ``stability``: ``{layer, concepts, variant, sim, k, path}``, compared with ``stability_base_k``;
    - ``convis``: ``{image, top (path or None), maps: [{synset, path}]}`` per ConVis image;
    - ``cams``: the Grad-CAM artifact (overlays), or None;
    - ``switcher``: ``{label, href, current}`` per target (:func:`target_switcher`), linked
      in every page's header; none: no switcher;
    - ``checkpoints``: ``{target, layer, method, concepts, path}``, the descriptions of the
      other checkpoints of this target's architecture, whose top concepts each neuron's panel
      shows (:func:`checkpoint_tops`); none: no such row.
    """
    index = Path(index)
    out = index.parent
    _fresh_site(out, checkpoints=bool(checkpoints))
    man = io.load_manifest(manifest)
    image_ids = man["image_id"].astype(str).tolist()
    tops, n_neurons = _top_images(views, layers, manifest, image_ids, options.n_images)
    image_paths = man["path"].astype(str).tolist()
    image = lambda row: data.load_image(image_paths[row])  # noqa: E731  (row -> probe image)
    cam_rows = _write_thumbnails(out, image, image_ids, views, tops, cams, options, threads)
    row_of = {image_id: row for row, image_id in enumerate(image_ids)}
    switcher = [dict(item) for item in switcher]
    convis_rows = _write_convis(out, convis, row_of, image, options, _environment(), title, layers,
                                switcher)

    emb = _prompt_embeddings(text_embeddings or {})
    tables = {(d["layer"], d["method"], d["concepts"]): d["path"] for d in descriptions}
    evals = {(e["method"], e["concepts"]): io.load_evaluation(e["path"]) for e in evaluations}
    class_names, env, summaries = imagenet_class_names(), _environment(), []
    page = dict(title=title, layers=layers, layer_file=layer_file, switcher=switcher,
                methods=[m["name"] for m in methods], has_convis=bool(convis_rows))
    for layer in layers:
        layer_data, summary = _layer_data(layer, layer == final_layer, n_neurons[layer], views,
                                          methods, concept_sets, tables, evals, emb, tops[layer],
                                          image_ids, stability, stability_base_k, stability_n_best,
                                          class_names, options, checkpoints)
        layer_data.update(thumb_ext=THUMB_EXT, cam_rows=cam_rows, convis_rows=convis_rows,
                          page_size=options.page_size, n_images=options.n_images)
        _write_layer_page(out, env, layer, layer_data, summary=summary, n_neurons=n_neurons[layer],
                          has_checkpoints=bool(checkpoints), **page)
        summaries.append(summary)
    index.write_text(env.get_template("index.html").render(
        summaries=summaries, views=[v["view"] for v in views], concept_sets=list(concept_sets),
        n_images=options.n_images, n_neurons=n_neurons, final_layer=final_layer, **page))
    return index


def _fresh_site(out: Path, *, checkpoints: bool) -> None:
    """Remove earlier thumbnails and data under ``out`` and write the static files there."""
    for stale in ("thumbs", "data"):
        shutil.rmtree(out / stale, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    _write_static(out, checkpoints=checkpoints)


def _write_layer_page(out: Path, env: Environment, layer: str, layer_data: Mapping,
                      **page) -> None:
    """Write one layer's data script and its page, rendered with ``page``'s values."""
    (out / "data").mkdir(exist_ok=True)
    (out / data_file(layer)).write_text(_data_script(layer, layer_data))
    (out / layer_file(layer)).write_text(env.get_template("layer.html").render(layer=layer, **page))


def _prompt_embeddings(text_embeddings: Mapping[str, str]) -> dict[str, tuple[np.ndarray, dict[int, int]]]:
    """Concept set -> (its prompts' embeddings by the match CLIP, concept id -> row)."""
    emb = {}
    for concepts, path in text_embeddings.items():
        text = io.load_text_embeddings(path, parts=["prompt"])
        emb[concepts] = (text.prompt, {int(i): k for k, i in enumerate(text.ids)})
    return emb


def _top_images(views: Sequence[Mapping], layers: Sequence[str], manifest: str,
                image_ids: list[str], n_images: int
                ) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, int]]:
    """Each layer's and view's top images ``[K, n]`` (WWW's selection) and its neuron count."""
    tops: dict[str, dict[str, np.ndarray]] = {layer: {} for layer in layers}
    n_neurons: dict[str, int] = {}
    for v in views:
        for layer in layers:
            acts = io.load_activations(v["activations"][layer])
            if list(acts.ids.astype(str)) != image_ids:
                raise InputDataError(f"{v['activations'][layer]}: its image ids are not those of the "
                                     f"manifest {manifest}; delete it and run Snakemake again")
            # The images WWW would show (its tie rule); numpy only, torch is not imported.
            tops[layer][v["view"]] = www_top_images(acts.values, min(n_images, len(acts.values)))
            n_neurons[layer] = acts.values.shape[1]
    return tops, n_neurons


def _write_thumbnails(out: Path, image, image_ids: list[str], views: Sequence[Mapping],
                      tops: Mapping[str, Mapping[str, np.ndarray]], cams: str | None,
                      options: SiteOptions, threads: int) -> list[int]:
    """One thumbnail per (shown image, view) and a Grad-CAM overlay per image that has a
    map; the rows that got an overlay. ``image(row)`` reads a probe image."""
    boxes = {v["view"]: box_lookup(io.load_boxes(v["boxes"]) if v.get("boxes") else None) for v in views}
    shown = {v["view"]: {int(r) for top in tops.values() for r in np.unique(top[v["view"]])}
             for v in views}
    grad, cam_row = (io.load_cams(cams), None) if cams else (None, None)
    if grad is not None:
        cam_row = {str(i): k for k, i in enumerate(grad["image_id"])}
    cam_box = next((b for b in boxes.values() if b), {})  # the Grad-CAM view's crop, outlined

    def thumbnails_of(row: int) -> bool:
        """Every view's thumbnail of one image (read once) and its Grad-CAM overlay: has one."""
        picture = image(row)
        for view, rows in shown.items():
            if row not in rows:
                continue
            box = boxes[view].get(image_ids[row]) if boxes[view] else None
            if boxes[view] and box is None:
                raise InputDataError(f"the crop boxes of view {view} lack image {image_ids[row]!r}")
            save_thumbnail(thumbnail(view_crop(picture, box), options.thumbnail_px),
                           out / "thumbs" / view / f"{row}.{THUMB_EXT}")
        if cam_row is not None and image_ids[row] in cam_row:
            overlay = heat_overlay(picture, grad["cams"][cam_row[image_ids[row]]],
                                   box=cam_box.get(image_ids[row]))
            save_thumbnail(thumbnail(overlay, options.thumbnail_px),
                           out / "thumbs" / "cam" / f"{row}.{THUMB_EXT}")
            return True
        return False

    # Each thumbnail is its own file: PIL decodes, resizes and encodes outside the GIL, so
    # threads write the same bytes as one thread, faster.
    rows = sorted(set().union(*shown.values()))
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        return [row for row, has_cam in zip(rows, pool.map(thumbnails_of, rows)) if has_cam]


def _layer_data(layer, final, n_neurons, views, methods, concept_sets, tables, evals, emb, tops,
                image_ids, stability, base_k, n_best, class_names, options, checkpoints=()):
    """The layer's data for its page and its summary for the charts."""
    neurons = [dict(id=k, img={v["view"]: tops[v["view"]][k].tolist() for v in views}, cs={})
               for k in range(n_neurons)]
    if final:
        for entry in neurons:
            if entry["id"] < len(class_names):
                entry["label"] = class_names[entry["id"]]
    summary = dict(layer=layer, n_neurons=n_neurons, sets=[])
    used_rows = sorted({int(r) for t in tops.values() for r in np.unique(t)})
    data = dict(layer=layer, final=final, views=[v["view"] for v in views],
                image_ids={str(r): image_ids[r] for r in used_rows}, concept_sets=[], methods={},
                metrics=list(METRICS), neurons=neurons)
    for concepts in concept_sets:
        present = [m for m in methods if (layer, m["name"], concepts) in tables]
        if not present:
            continue
        data["concept_sets"].append(concepts)
        data["methods"][concepts] = [dict(name=m["name"], family=m["family"]) for m in present]
        loaded = [io.load_descriptions(tables[(layer, m["name"], concepts)]) for m in present]
        shown = [neuron_concepts(table) for table in loaded]
        top = np.stack([top_concept_ids(table, n_neurons) for table in loaded], axis=1)
        exact = exact_agreement(top)
        semantic = np.full(n_neurons, np.nan)
        if concepts in emb and (top >= 0).all():
            vectors, row_of_id = emb[concepts]
            missing = [int(c) for c in np.unique(top) if int(c) not in row_of_id]
            if missing:
                raise InputDataError(f"the text embeddings of concept set {concepts!r} lack concept ids "
                                     f"{missing[:5]}; delete them and run Snakemake again")
            semantic = semantic_agreement(np.vectorize(row_of_id.get)(top), vectors)
        stab = _stability(layer, concepts, stability, base_k, n_best)
        metric_rows = {m["name"]: metric_cells(evals[(m["name"], concepts)])
                       for m in present if final and (m["name"], concepts) in evals}
        ckpt = checkpoint_tops(checkpoints, layer, concepts, [m["name"] for m in present])
        for k, entry in enumerate(neurons):
            cell = dict(c=[s.get(k, []) for s in shown], ex=_clean(exact[k]), sem=_clean(semantic[k]))
            if stab:
                cell["st"] = [dict(label=s["label"], ks=[[kk, lists.get(k, []), _clean(jaccard(
                    s["lists"][base_k].get(k, []), lists.get(k, [])))] for kk, lists in s["lists"].items()])
                    for s in stab]
            if metric_rows:
                cell["ev"] = {name: rows.get(k, {}) for name, rows in metric_rows.items()}
            if ckpt:
                cell["ckpt"] = {tag: {name: tops_of[k] for name, tops_of in by_method.items() if k in tops_of}
                                for tag, by_method in ckpt.items()}
            entry["cs"][concepts] = cell
        m = len(present)
        summary["sets"].append(dict(
            concepts=concepts, methods=[p["name"] for p in present],
            all_agree=float(np.mean(exact == 1.0)), mean_exact=float(exact.mean()),
            mean_semantic=_clean(np.nanmean(semantic)) if np.isfinite(semantic).any() else None,
            semantic_agree=(float(np.mean(semantic >= options.similarity_threshold))
                            if np.isfinite(semantic).any() else None),
            histogram=histogram(exact, [i / m for i in range(1, m + 1)]),
            pairwise=pairwise_agreement(top).round(4).tolist()))
    return data, summary


def _stability(layer, concepts, stability, base_k, n_best):
    """[{label, lists: {k: {neuron: top-n_best concepts}}}] of the study's groups in this layer."""
    groups: dict[str, dict[int, dict[int, list[str]]]] = {}
    for item in stability:
        if item["layer"] == layer and item["concepts"] == concepts:
            label = f"{item['variant']} {item['sim']}"
            groups.setdefault(label, {})[int(item["k"])] = top_concept_lists(
                io.load_descriptions(item["path"]), n_best)
    for label, lists in groups.items():
        if base_k not in lists:
            raise ConfigError(f"stability: no descriptions at base_k {base_k} for {label} ({layer}, {concepts})")
    return [dict(label=label, lists=dict(sorted(lists.items()))) for label, lists in groups.items()]


def _write_convis(out, convis, row_of, image, options, env, title, layers, switcher=()) -> dict[str, str]:
    """The ConVis page: each configured image with its top synsets and map overlays.

    Returns probe row (as text) -> the image's anchor on the page, for the neuron panels' links.
    """
    if not convis:
        return {}
    entries, anchors = [], {}
    for item in convis:
        name = str(item["image"])
        if name not in row_of:
            raise ConfigError(f"convis: image {name!r} is not in the browser's probe set")
        row = row_of[name]
        anchor = f"img-{row}"
        anchors[str(row)] = anchor
        picture = image(row)
        save_thumbnail(thumbnail(picture, 2 * options.thumbnail_px), out / "thumbs" / "convis" / f"{row}.{THUMB_EXT}")
        maps = []
        for m in item.get("maps", []):
            saliency = io.load_convis_map(m["path"])
            if saliency.resize:
                base = view_crop(picture, None).resize((saliency.resize, saliency.resize))
            else:
                base = picture
            file = f"thumbs/convis/{row}-{len(maps)}.{THUMB_EXT}"
            save_thumbnail(thumbnail(heat_overlay(base, saliency.saliency), 2 * options.thumbnail_px), out / file)
            maps.append(dict(synset=m["synset"], file=file))
        top = io.load_top_synsets(item["top"]).to_dict("records") if item.get("top") else []
        entries.append(dict(image=name, row=row, anchor=anchor, file=f"thumbs/convis/{row}.{THUMB_EXT}",
                            maps=maps, top=top))
    (out / CONVIS_PAGE).write_text(env.get_template("convis.html").render(
        title=title, entries=entries, layers=layers, layer_file=layer_file, switcher=switcher))
    return anchors


# ---------------------------------------------------------------- screenshot


def screenshot_panel(index: str | os.PathLike, layer: str, path: str | os.PathLike,
                     chromium: str = "/usr/bin/chromium", neuron: int = 0) -> Path:
    """A PNG of one neuron's panel on a layer page of the browser at ``index``, taken by
    headless Chromium (Playwright).

    Raises a ConfigError naming ``browser.chromium`` when the browser is not there.
    """
    if not Path(chromium).is_file():
        raise ConfigError(f"browser.chromium: no Chromium at {chromium}; install Debian's chromium "
                          "(scripts/setup_system.sh) or set browser.screenshot: false")
    from playwright.sync_api import sync_playwright

    page_url = (Path(index).resolve().parent / layer_file(layer)).as_uri()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(page_url)
            panel = page.locator(f"#neuron-{int(neuron)}")
            panel.wait_for(state="visible")
            page.evaluate("document.fonts.ready")
            with io.atomic_path(path) as tmp:
                panel.screenshot(path=str(tmp), type="png")
        finally:
            browser.close()
    return path
