"""The configuration as the workflow reads it: cross-checked, then resolved once.

Snakemake validates the config against config.schema.yaml and fills in the schema's
defaults. :func:`check` then tests what the schema cannot express (cross-references
between sections, files that must exist) and raises a :class:`ConfigError` naming the key;
:func:`resolve` derives, once, what the rule files read: which features are on, the names
of the views and methods, and every "empty means all" list filled in. Both are pure
functions of the config dict, so they are tested without Snakemake.

Conventions, the same for every feature:

- A feature is off when the list that says what it makes is empty: CLIP-Dissect with
  ``methods.clip_dissect.variants: []``, the stability study with ``stability.variants: []``,
  the evaluation with ``evaluation.probe_sets`` or ``concept_sets`` empty. A section that is
  left out takes the schema's defaults; ConVis has none, so leaving ``convis`` out turns it
  off. A feature that is off resolves to an empty list or None.
- Inside a feature, a selection list left empty means every configured one:
  ``stability.layers``, ``stability.probe_sets``, ``stability.concept_sets``,
  ``figures.layers`` (and ``figures.probe_set``/``concept_set`` unset mean the first
  evaluated, else the first configured).
"""

from __future__ import annotations

import math
from typing import Any
from dataclasses import dataclass
from pathlib import Path

from . import names
from .errors import ConfigError

# ---------------------------------------------------------------- cross-checks


def validate(config: dict, schema_path: str | Path) -> None:
    """Validate ``config`` against the schema (Snakemake's validate, which also fills in the
    schema's defaults) and refuse non-finite numbers, which a schema's bounds let through.

    A failure raises a ConfigError of a few lines: the key, the reason and where the key is
    documented, instead of the schema and config dump of jsonschema's message.
    """
    check_finite(config)
    if not (config.get("target") or config.get("targets")):
        raise ConfigError("target: required: the model whose neurons are described (or "
                          f"targets: a list of such models)\n  documented in {schema_path} "
                          "(definitions/target_spec) and config.yaml")
    from snakemake.utils import validate as snakemake_validate

    try:
        snakemake_validate(config, str(schema_path))
    except Exception as error:  # Snakemake's WorkflowError, holding jsonschema's error
        # Snakemake's error keeps jsonschema's only as the exception it was raised during.
        cause = next((e for e in (error.__cause__, error.__context__)
                      if hasattr(e, "absolute_path")), None)
        if cause is None:
            raise
        raise ConfigError(schema_problem(cause, schema_path)) from None
    if config.get("targets"):
        # The primary target is ``target`` to every stage that reads one model.
        config["target"] = config["targets"][0]


def schema_problem(error, schema_path: str | Path) -> str:
    """A jsonschema ValidationError in a few lines: key, reason, where it is documented."""
    key = ".".join(str(part) for part in error.absolute_path) or "(top level)"
    reason = error.message if len(error.message) <= 300 else error.message[:300] + "..."
    where = "/".join(str(part) for part in error.absolute_schema_path
                     if part not in ("properties", "items"))
    described = error.schema.get("description") if isinstance(error.schema, dict) else None
    lines = [f"{key}: {reason}",
             f"  documented in {schema_path} ({where or 'top level'}) and config.yaml"]
    if error.validator == "additionalProperties" and isinstance(error.schema, dict):
        lines.append(f"  the keys allowed here: {', '.join(error.schema.get('properties', {}))}")
    elif described and error.absolute_path:
        lines.append(f"  {key}: {' '.join(str(described).split())[:300]}")
    return "\n".join(lines)


def check_finite(config: Any, key: str = "") -> None:
    """Every number in ``config`` is finite: ``.inf`` and ``.nan`` pass a schema's minimum
    and maximum (comparisons with NaN are false) and would stop the plan later, unnamed."""
    if isinstance(config, dict):
        for name, value in config.items():
            check_finite(value, f"{key}.{name}" if key else str(name))
    elif isinstance(config, (list, tuple)):
        for index, value in enumerate(config):
            check_finite(value, f"{key}[{index}]")
    elif isinstance(config, float) and not math.isfinite(config):
        raise ConfigError(f"{key}: {config} is not a finite number; give a number (YAML's .inf "
                          "and .nan are not accepted anywhere in the config)")


GPU_DECODE_NEEDS_CUDA = "scale.image_decode: gpu needs a CUDA device; set it to pil"


def check(config: dict) -> None:
    """Every cross-check of a validated config; the first problem raises a ConfigError."""
    check_targets(config)
    check_core(config)
    check_clip_dissect(config)
    check_figures(config)
    check_convis(config)


def target_entries(config: dict) -> list[dict]:
    """The configured target models: ``targets`` when non-empty, else [``target``]. The first
    is the primary target (figures, ablation, stability, Grad-CAM, browser)."""
    return list(config.get("targets") or [config["target"]])


def target_tag(config: dict, target: dict) -> str:
    """A target entry's name in paths (names.model_tag), with the global ``weights: random``
    switch applied as every model job applies it."""
    weights = names.RANDOM if config.get("weights") == names.RANDOM else target["weights"]
    return names.model_tag(target["name"], weights)


def target_tags(config: dict) -> list[str]:
    """Every target's tag, in config order (the primary first)."""
    return [target_tag(config, target) for target in target_entries(config)]


def checkpoint_groups(config: dict) -> list[list[str]]:
    """Tags of the targets that are checkpoints of one architecture: entries with the same
    ``name`` and ``source`` (and so different weights), groups of two or more in config order."""
    groups: dict[tuple, list[str]] = {}
    for target in target_entries(config):
        key = (target["name"], target.get("source", "torchvision"))
        groups.setdefault(key, []).append(target_tag(config, target))
    return [tags for tags in groups.values() if len(tags) > 1]


def check_targets(config: dict) -> None:
    """Every target has its own tag in paths; several targets need one description job per
    layer (each target has its own layers). A gradcam view's crops are each target's own
    (names.target_view names them in the CLIP stages' paths)."""
    entries = target_entries(config)
    seen: dict[str, int] = {}
    for index, target in enumerate(entries):
        tag = target_tag(config, target)
        if tag in seen:
            first = entries[seen[tag]]
            raise ConfigError(
                f"targets[{seen[tag]}] ({first['name']}, weights {first['weights']}) and "
                f"targets[{index}] ({target['name']}, weights {target['weights']}) are both "
                f"named {tag!r} in paths; give each target other weights (a checkpoint file "
                "is named by its file name, ckpt-<stem>; weights: random names every model "
                "random)")
        seen[tag] = index
    if len(entries) < 2:
        return
    if scale(config).description_jobs != "layer":
        raise ConfigError("scale.description_jobs: several targets need one description job "
                          "per layer (each target has its own layers); set it to layer")


def check_core(config: dict) -> None:
    """Target layers, evaluated sets, and the folders and files probe and concept sets name."""
    target = config["target"]
    final = target.get("final_layer", "auto")
    if final != "auto" and final not in target["layers"]:
        raise ConfigError(f"target.final_layer {final!r} is not in target.layers "
                          f"{target['layers']}; add it there")
    for key, known in (("probe_sets", config["probe_sets"]), ("concept_sets", config["concept_sets"])):
        for name in config["evaluation"][key]:
            if name not in known:
                raise ConfigError(f"evaluation.{key} names {name!r}, which is not defined under "
                                  f"{key} (defined: {sorted(known)})")
    for name, spec in config["probe_sets"].items():
        if spec["type"] in ("imagefolder", "folder"):
            if "root" not in spec:
                raise ConfigError(f"probe_sets.{name}.root is required for type {spec['type']}")
            if not Path(spec["root"]).is_dir():
                raise ConfigError(f"probe_sets.{name}.root: folder {spec['root']} does not exist")
        if spec.get("labels_csv") and not Path(spec["labels_csv"]).is_file():
            raise ConfigError(f"probe_sets.{name}.labels_csv: file {spec['labels_csv']} does not exist")
    if scale(config).image_decode == "gpu" and config["device"] == "cpu":
        raise ConfigError(GPU_DECODE_NEEDS_CUDA)
    for name, spec in config["concept_sets"].items():
        if spec["type"] == "file":
            if "path" not in spec:
                raise ConfigError(f"concept_sets.{name}.path is required for type file")
            if not Path(spec["path"]).is_file():
                raise ConfigError(f"concept_sets.{name}.path: file {spec['path']} does not exist")
    if config["methods"]["www"]["n_images"] < 1:
        raise ConfigError("methods.www.n_images must be at least 1")
    check_described_probe_sets(config)


def check_described_probe_sets(config: dict) -> None:
    """descriptions.probe_sets must be configured, and hold every probe set whose
    descriptions are evaluated, studied for stability or drawn."""
    known = list(config["probe_sets"])
    for name in (config.get("descriptions") or {}).get("probe_sets", []):
        if name not in known:
            raise ConfigError(f"descriptions.probe_sets names {name!r}, which is not defined "
                              f"under probe_sets (defined: {known})")
    described = described_probe_sets(config)
    if not described:
        raise ConfigError("no probe set is described: list one under descriptions.probe_sets "
                          "(every probe set is used by ConVis alone)")
    readers = [("evaluation.probe_sets", config["evaluation"]["probe_sets"]),
               ("stability.probe_sets", config["stability"]["probe_sets"]),
               ("figures.probe_set", [p for p in [config["figures"].get("probe_set")] if p])]
    for key, names_ in readers:
        for name in names_:
            if name in known and name not in described:
                raise ConfigError(f"{key} names {name!r}, whose neurons are not described: add it "
                                  f"to descriptions.probe_sets {described}")


def check_clip_dissect(config: dict) -> None:
    """methods.clip_dissect views, and the stability study against CLIP-Dissect and the sets.

    top_k against the number of probe images is checked by the description job, where the
    probe set's size is first known.
    """
    cd, st = config["methods"]["clip_dissect"], config["stability"]
    for view in cd["views"]:
        if view != "center" and view not in config["views"]:
            raise ConfigError(f"methods.clip_dissect.views names {view!r}, which is not under views "
                              f"{config['views']}; add it there (its crop parameters live there)")
    evaluated = config["evaluation"]["probe_sets"] and config["evaluation"]["concept_sets"]
    if evaluated and cd["variants"] and cd["n_best"] < TOP5:
        raise ConfigError(f"methods.clip_dissect.n_best {cd['n_best']} keeps fewer concepts than "
                          f"the evaluation's top-{TOP5} accuracy reads; set it to at least {TOP5} "
                          "(or evaluation.probe_sets: [])")
    if not st["variants"]:
        return
    if st["base_k"] not in st["ks"]:
        raise ConfigError(f"stability.base_k {st['base_k']} is not in stability.ks {st['ks']}; "
                          f"add it there")
    if st["n_best"] > cd["n_best"]:
        raise ConfigError(f"stability.n_best {st['n_best']} exceeds methods.clip_dissect.n_best "
                          f"{cd['n_best']}, the concepts kept per neuron; raise the latter")
    for key, known in (("layers", config["target"]["layers"]),
                       ("probe_sets", list(config["probe_sets"])),
                       ("concept_sets", list(config["concept_sets"]))):
        for name in st[key]:
            if name not in known:
                raise ConfigError(f"stability.{key} names {name!r}, which is not configured "
                                  f"(configured: {known})")


def check_figures(config: dict) -> None:
    """The figures' probe set, concept set and layers must be configured."""
    fig = config["figures"]
    for key, known in (("probe_set", config["probe_sets"]), ("concept_set", config["concept_sets"])):
        if fig.get(key) and fig[key] not in known:
            raise ConfigError(f"figures.{key} names {fig[key]!r}, which is not configured "
                              f"(configured: {sorted(known)})")
    for layer in fig["layers"]:
        if layer not in config["target"]["layers"]:
            raise ConfigError(f"figures.layers names {layer!r}, which is not in target.layers "
                              f"{config['target']['layers']}")


def check_convis(config: dict) -> None:
    """Cross-references of the convis section, its grid, and the files it names."""
    cv = config.get("convis")
    if not cv:
        return
    vocabularies = cv["vocabularies"]

    def known(key: str, name: str, defined, what: str) -> None:
        if name not in defined:
            raise ConfigError(f"convis.{key} names {name!r}, which is not defined under {what} "
                              f"(defined: {sorted(defined)})")

    known("probe", cv["probe"], config["probe_sets"], "probe_sets")
    known("vocabulary", cv["vocabulary"], vocabularies, "convis.vocabularies")
    if cv["stride"] > max(cv["patch_sizes"]):
        raise ConfigError(f"convis.stride {cv['stride']} exceeds the largest of convis.patch_sizes "
                          f"{cv['patch_sizes']}, which would leave pixels no patch covers: lower the stride")
    for name, spec in vocabularies.items():
        if spec.get("words_file") and not Path(spec["words_file"]).is_file():
            raise ConfigError(f"convis.vocabularies.{name}.words_file: file {spec['words_file']} "
                              "does not exist")
    for key in ("ood", "wsol"):
        section = cv.get(key)
        if not section:
            continue
        known(f"{key}.probe", section["probe"], config["probe_sets"], "probe_sets")
        if section.get("vocabulary"):
            known(f"{key}.vocabulary", section["vocabulary"], vocabularies, "convis.vocabularies")
    ood = cv.get("ood")
    if ood and ood.get("train_probe"):
        known("ood.train_probe", ood["train_probe"], config["probe_sets"], "probe_sets")
    wsol = cv.get("wsol")
    if wsol:
        if bool(wsol.get("cub_root")) == bool(wsol.get("boxes_csv")):
            raise ConfigError("convis.wsol needs exactly one of cub_root (a CUB-200-2011 folder) and "
                              "boxes_csv (a CSV with header image,x0,y0,x1,y1)")
        source = wsol.get("cub_root") or wsol.get("boxes_csv")
        exists = Path(source).is_dir() if wsol.get("cub_root") else Path(source).is_file()
        if not exists:
            raise ConfigError(f"convis.wsol: {source} does not exist")


# ---------------------------------------------------------------- resolved settings
# Lists stay lists (not tuples): rules pass them on as params, and Snakemake compares
# params by their repr.


@dataclass(frozen=True)
class WwwMethod:
    """A configured WWW method: its name in paths, and its view and similarity names."""

    name: str
    view: str
    sim: str


@dataclass(frozen=True)
class ClipDissectMethod:
    """A configured CLIP-Dissect method: its name in paths and what the name holds."""

    name: str
    variant: str
    view: str
    sim: str
    top_k: int


STABILITY_VIEW = "center"  # the stability study's view: CLIP sees the whole image


@dataclass(frozen=True)
class Stability:
    """The stability study, every "empty means all" list filled in; sims are names."""

    probe_sets: list[str]
    variants: list[str]
    layers: list[str]
    concept_sets: list[str]
    sims: list[str]
    ks: list[int]
    base_k: int
    n_best: int


@dataclass(frozen=True)
class Figures:
    """The figures' probe set, concept set, sample images, neurons, layers and image count."""

    probe: str
    concepts: str
    sample_images: list[str]
    neurons: list[int]
    layers: list[str]
    n_images: int


@dataclass(frozen=True)
class Scale:
    """How the experiment is cut into jobs and sized for the machines (config section ``scale``).

    ``gpu_mem_mb``: the GPU memory every GPU job fits into (the smallest card of the run);
    ``images_per_job``: probe images per image-stage job (0: one job per probe set);
    ``description_jobs``: ``layer`` (one description job per layer) or ``concept_set``
    (every layer in one job); ``cosine_dtype``: the stored cosines' dtype (float16 is ours,
    named in the path); ``image_decode``: ``pil`` (the models' own pipeline) or ``gpu``
    (torchvision's nvJPEG decode, named in the path).
    """

    gpu_mem_mb: int
    images_per_job: int
    description_jobs: str
    cosine_dtype: str
    image_decode: str


def scale(config: dict) -> Scale:
    """The ``scale`` section, schema defaults filled in."""
    section = config.get("scale") or {}
    return Scale(gpu_mem_mb=int(section.get("gpu_mem_mb", 16000)),
                 images_per_job=int(section.get("images_per_job", 10000)),
                 description_jobs=section.get("description_jobs", "layer"),
                 cosine_dtype=section.get("cosine_dtype", "float32"),
                 image_decode=section.get("image_decode", "pil"))


@dataclass(frozen=True)
class ConvisOod:
    """ConVis's OOD evaluation (``convis.ood``), the vocabulary resolved."""

    probe: str
    train_probe: str | None
    vocabulary: str
    pairs: list[list[str]] | None  # None: the paper's six (convis_eval.OOD_PAIRS)
    reduce: str


@dataclass(frozen=True)
class ConvisWsol:
    """ConVis's WSOL evaluation (``convis.wsol``), the vocabulary resolved."""

    probe: str
    vocabulary: str
    synset: str
    cub_root: str | None
    boxes_csv: str | None
    cub_split: str
    n_images: int | None
    seed: int


@dataclass(frozen=True)
class Convis:
    """ConVis (config section ``convis``), schema defaults filled in.

    ``grid``: the patch-grid name in paths (``anchored64-128-stride16``); ``pairs``: the
    (image, synset) pairs, duplicates dropped, in config order.
    """

    probe: str
    vocabulary: str
    vocabularies: dict[str, dict]
    images: list[str]
    pairs: list[tuple[str, str]]
    grid: str
    top_n: int
    images_per_job: int
    batch_size: int
    precision: str
    ood: ConvisOod | None
    wsol: ConvisWsol | None


def convis(config: dict) -> Convis | None:
    """The ``convis`` section as :class:`Convis`; None when it is left out (ConVis off)."""
    cv = config.get("convis")
    if not cv:
        return None
    ood, wsol = cv.get("ood"), cv.get("wsol")
    return Convis(
        probe=cv["probe"], vocabulary=cv["vocabulary"], vocabularies=dict(cv["vocabularies"]),
        images=list(cv["images"]),
        pairs=list(dict.fromkeys((pair["image"], pair["synset"]) for pair in cv["pairs"])),
        grid=names.convis_grid_name(cv["patch_sizes"], cv["stride"], cv.get("padding", "none"),
                                    cv.get("resize")),
        top_n=cv["top_n"], images_per_job=cv["images_per_job"], batch_size=cv["batch_size"],
        precision=cv["precision"],
        ood=ConvisOod(probe=ood["probe"], train_probe=ood.get("train_probe"),
                      vocabulary=ood.get("vocabulary") or cv["vocabulary"],
                      pairs=ood.get("pairs"), reduce=ood["reduce"]) if ood else None,
        wsol=ConvisWsol(probe=wsol["probe"], vocabulary=wsol.get("vocabulary") or cv["vocabulary"],
                        synset=wsol["synset"], cub_root=wsol.get("cub_root"),
                        boxes_csv=wsol.get("boxes_csv"), cub_split=wsol["cub_split"],
                        n_images=wsol.get("n_images"), seed=wsol["seed"]) if wsol else None)


@dataclass(frozen=True)
class Browser:
    """The neuron browser (config section ``browser``); ``n_images`` resolved."""

    enabled: bool
    screenshot: bool
    chromium: str
    n_images: int  # top images per neuron and view (default: methods.www.n_images)
    thumbnail_px: int
    page_size: int
    similarity_threshold: float


def browser(config: dict) -> Browser:
    """The ``browser`` section as :class:`Browser`."""
    b = config["browser"]
    return Browser(enabled=b["enabled"], screenshot=b["screenshot"], chromium=b["chromium"],
                   n_images=b.get("n_images") or config["methods"]["www"]["n_images"],
                   thumbnail_px=b["thumbnail_px"], page_size=b["page_size"],
                   similarity_threshold=b["similarity_threshold"])


#: What :meth:`Settings.on` answers for: each feature the rule files switch on or off.
FEATURES = ("www", "clip_dissect", "stability", "evaluation", "ablation", "crop_comparison",
            "convis", "convis_images", "convis_pairs", "convis_ood", "convis_wsol",
            "browser", "browser_screenshot", "compare", "compare_checkpoints")


@dataclass(frozen=True)
class Settings:
    """What the rule files read, derived once from a validated, checked config.

    Whether a feature runs is asked in one way, :meth:`on`; a feature that is off is also
    an empty list (www, clip_dissect) or None (stability, convis).
    """

    views: list[str]  # names in paths, in config order
    www: list[WwwMethod]  # views x similarities, in config order
    clip_dissect: list[ClipDissectMethod]
    stability: Stability | None
    figures: Figures
    convis: Convis | None
    browser: Browser
    evaluation_probe_sets: list[str]
    evaluation_concept_sets: list[str]
    described_probe_sets: list[str]  # WWW and CLIP-Dissect run on these only
    scale: Scale
    targets: tuple[str, ...] = ()  # every target's tag, the primary first
    checkpoints: tuple[tuple[str, ...], ...] = ()  # tags of one architecture's checkpoints

    def on(self, feature: str) -> bool:
        """Whether ``feature`` (one of :data:`FEATURES`) runs in this configuration.

        ``ablation`` needs both views (center, gradcam) and both similarities (cos, tvmf)
        of WWW; ``crop_comparison`` (the figure) needs the gradcam view; ``compare`` needs
        several targets, ``compare_checkpoints`` two targets of one architecture.
        """
        kinds = {names.parse_view(m.view).kind for m in self.www}
        sims = {names.parse_sim(m.sim).kind for m in self.www}
        cv = self.convis
        answers = {
            "www": bool(self.www), "clip_dissect": bool(self.clip_dissect),
            "stability": self.stability is not None,
            "evaluation": bool(self.evaluation_probe_sets and self.evaluation_concept_sets),
            "ablation": {"center", "gradcam"} <= kinds and {"cos", "tvmf"} <= sims,
            "crop_comparison": any(names.parse_view(v).kind == "gradcam" for v in self.views),
            "convis": cv is not None, "convis_images": bool(cv and cv.images),
            "convis_pairs": bool(cv and cv.pairs), "convis_ood": bool(cv and cv.ood),
            "convis_wsol": bool(cv and cv.wsol),
            "browser": self.browser.enabled,
            "browser_screenshot": self.browser.enabled and self.browser.screenshot,
            "compare": len(self.targets) > 1 and bool(self.www or self.clip_dissect),
            "compare_checkpoints": bool(self.checkpoints) and bool(self.www or self.clip_dissect),
        }
        if feature not in answers:
            raise KeyError(f"unknown feature {feature!r}: one of {FEATURES}")
        return answers[feature]


def member_name(family: names.Family, kind: str, config: dict) -> str:
    """A view or similarity name with its parameters from the config section of its kind."""
    return family.name(kind, family.param_values(kind, config.get(kind) or {}))


def check_target_layers(config: dict, final_layer: str | None, final_neurons: int | None) -> None:
    """The evaluation needs the target's class neurons: a final layer (``target.final_layer``,
    or the classifier ``auto`` found, :func:`neuron_concepts.layers.target_layers`) that is
    described (in ``target.layers``) and has one neuron per ImageNet class."""
    if not (config["evaluation"]["probe_sets"] and config["evaluation"]["concept_sets"]):
        return
    name = config["target"]["name"]
    if final_layer is None:
        raise ConfigError(f"target.final_layer: {name} has no classifier layer (an open_clip image "
                          "tower, or a model without an nn.Linear head), so there are no class "
                          "neurons to evaluate; set evaluation.probe_sets: [] or name the layer")
    if final_layer not in config["target"]["layers"]:
        raise ConfigError(f"target.layers: the evaluation reads the final layer {final_layer!r}, "
                          f"which is not described; add it to target.layers {config['target']['layers']}")
    if final_neurons != IMAGENET_CLASSES:
        raise ConfigError(f"target.final_layer: {final_layer!r} of {name} has {final_neurons} "
                          f"neurons, but the evaluation compares them with the {IMAGENET_CLASSES} "
                          "ImageNet classes; evaluate an ImageNet classifier or set "
                          "evaluation.probe_sets: []")


IMAGENET_CLASSES = 1000
#: CLIP-Dissect's Table 3 reads each neuron's 5 best concepts (its top-5 accuracy).
TOP5 = 5


def resolve(config: dict, layer_names: dict[str, str] | None = None) -> Settings:
    """The settings of a validated config (run :func:`check` first).

    ``layer_names`` maps each of ``target.layers`` (a module path) to its name in paths
    (:func:`neuron_concepts.layers.target_layers`: ``layer4`` -> ``layer4-mean``); the
    stability study's and the figures' layers come out as those names. Without it a
    layer's name is its module path (a config read without the model).
    """
    decode = scale(config).image_decode
    views = [names.decoded_view(member_name(names.VIEWS, kind, config), decode) for kind in config["views"]]
    layer_names = layer_names or {layer: layer for layer in config["target"]["layers"]}
    return Settings(
        views=views,
        www=www_methods(config, views),
        clip_dissect=clip_dissect_methods(config),
        stability=stability(config, layer_names),
        figures=figures(config, layer_names),
        convis=convis(config),
        browser=browser(config),
        evaluation_probe_sets=list(config["evaluation"]["probe_sets"]),
        evaluation_concept_sets=list(config["evaluation"]["concept_sets"]),
        described_probe_sets=described_probe_sets(config),
        scale=scale(config),
        targets=tuple(target_tags(config)),
        checkpoints=tuple(tuple(group) for group in checkpoint_groups(config)),
    )


def convis_only_probe_sets(config: dict) -> list[str]:
    """The probe sets that ConVis's OOD and WSOL evaluations name (its own image folders)."""
    convis = config.get("convis") or {}
    named = [(convis.get("ood") or {}).get(key) for key in ("probe", "train_probe")]
    named.append((convis.get("wsol") or {}).get("probe"))
    return [name for name in named if name]


def described_probe_sets(config: dict) -> list[str]:
    """Whose neurons WWW and CLIP-Dissect describe: descriptions.probe_sets; empty means the
    evaluation probe sets, or, with no evaluation, every probe set but ConVis's OOD/WSOL ones.

    Describing an ImageNet-train or CUB folder that ConVis reads would plan thousands of jobs
    and a similarity matrix of hundreds of GB, so those are described only when listed.
    """
    listed = (config.get("descriptions") or {}).get("probe_sets") or []
    if listed:
        return list(listed)
    if config["evaluation"]["probe_sets"]:
        return list(config["evaluation"]["probe_sets"])
    convis_only = convis_only_probe_sets(config)
    return [name for name in config["probe_sets"] if name not in convis_only]


def sim_names(config: dict, kinds: list[str]) -> list[str]:
    """Similarity names (``cos``, ``tvmf-k16``) of the listed kinds, parameters from the config."""
    return [member_name(names.SIMILARITIES, kind, config) for kind in kinds]


def www_methods(config: dict, views: list[str]) -> list[WwwMethod]:
    """WWW over the configured views and similarities, parameters from methods.www."""
    www = config["methods"]["www"]
    params = names.WWW.param_values(www)
    return [WwwMethod(names.www_method_name(view, sim, **params), view, sim)
            for view in views for sim in sim_names(config, www["similarities"])]


def clip_dissect_methods(config: dict) -> list[ClipDissectMethod]:
    """Each variant at its own top_k, over CLIP-Dissect's views and similarities; [] = off.

    The center view needs no entry under views; another view must be there (check_clip_dissect).
    """
    cd = config["methods"]["clip_dissect"]
    views = [names.decoded_view(member_name(names.VIEWS, kind, config), scale(config).image_decode)
             for kind in cd["views"]]
    methods = []
    for variant in cd["variants"]:
        params = names.CLIP_DISSECT.param_values(cd[variant])
        for view in views:
            for sim in sim_names(config, cd["similarities"]):
                name = names.clip_dissect_method_name(variant, view, sim, **params)
                methods.append(ClipDissectMethod(name, variant, view, sim, params["top_k"]))
    return methods


def stability(config: dict, layer_names: dict[str, str]) -> Stability | None:
    """The stability study with empty selections resolved to every configured one; None = off."""
    st = config["stability"]
    if not st["variants"]:
        return None
    return Stability(probe_sets=list(st["probe_sets"] or described_probe_sets(config)),
                     variants=list(st["variants"]),
                     layers=[layer_names[layer] for layer in st["layers"] or config["target"]["layers"]],
                     concept_sets=list(st["concept_sets"] or config["concept_sets"]),
                     sims=sim_names(config, st["similarities"]), ks=list(st["ks"]),
                     base_k=st["base_k"], n_best=st["n_best"])


def figures(config: dict, layer_names: dict[str, str]) -> Figures:
    """Unset choices: the first evaluated probe and concept set (else the first configured),
    every target layer."""
    fig, evaluation = config["figures"], config["evaluation"]
    probes = evaluation["probe_sets"] or described_probe_sets(config)
    concept_sets = evaluation["concept_sets"] or list(config["concept_sets"])
    return Figures(probe=fig.get("probe_set") or probes[0],
                   concepts=fig.get("concept_set") or concept_sets[0],
                   sample_images=list(fig["sample_images"]), neurons=list(fig["neurons"]),
                   layers=[layer_names[layer] for layer in fig["layers"] or config["target"]["layers"]],
                   n_images=fig["n_images"])
