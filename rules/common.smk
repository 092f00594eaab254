"""Helpers shared by every rule file: config checks, model names, paths and resources.

No rules here. Every value a rule's script reads reaches it through the rule's params or
input, built by these functions, so Snakemake reruns exactly what a change invalidates.
"""

import re
from pathlib import Path

from neuron_concepts.models import RANDOM, looks_like_path, model_tag
from neuron_concepts.similarity import parse_sim, sim_name


# ---------------------------------------------------------------- config checks


def config_error(message):
    """Stop before any job runs, naming the key at fault."""
    raise WorkflowError(f"Invalid configuration: {message}")


def check_config():
    """Checks the schema cannot express: cross-references and files that must exist."""
    target = config["target"]
    if target["final_layer"] not in target["layers"]:
        config_error(f"target.final_layer {target['final_layer']!r} is not in target.layers "
                     f"{target['layers']}; add it there")
    for key, known in (("probe_sets", config["probe_sets"]), ("concept_sets", config["concept_sets"])):
        for name in config["evaluation"][key]:
            if name not in known:
                config_error(f"evaluation.{key} names {name!r}, which is not defined under "
                             f"{key} (defined: {sorted(known)})")
    for name, spec in config["probe_sets"].items():
        if spec["type"] in ("imagefolder", "folder"):
            if "root" not in spec:
                config_error(f"probe_sets.{name}.root is required for type {spec['type']}")
            if not Path(spec["root"]).is_dir():
                config_error(f"probe_sets.{name}.root: folder {spec['root']} does not exist")
        if spec.get("labels_csv") and not Path(spec["labels_csv"]).is_file():
            config_error(f"probe_sets.{name}.labels_csv: file {spec['labels_csv']} does not exist")
    for name, spec in config["concept_sets"].items():
        if spec["type"] == "file":
            if "path" not in spec:
                config_error(f"concept_sets.{name}.path is required for type file")
            if not Path(spec["path"]).is_file():
                config_error(f"concept_sets.{name}.path: file {spec['path']} does not exist")
    n_images = config["methods"]["www"]["n_images"]
    if n_images < 1:
        config_error("methods.www.n_images must be at least 1")


# ---------------------------------------------------------------- models and weights


def effective_weights(weights):
    """The weights a model uses: the global ``weights: random`` switch overrides every model."""
    return RANDOM if config["weights"] == RANDOM else weights


def target_spec():
    """Arguments of neuron_concepts.models.load_target for the configured target."""
    target = config["target"]
    return dict(name=target["name"], weights=effective_weights(target["weights"]),
                source=target["source"], cache_dir=config["weights_cache"], seed=config["seed"])


def clip_role_spec(role):
    """Arguments of neuron_concepts.models.load_clip for a CLIP role (``match`` or ``eval``)."""
    spec = config["clip"][role]
    return dict(model=spec["model"], pretrained=effective_weights(spec["pretrained"]),
                model_config=spec.get("model_config"), cache_dir=config["weights_cache"],
                seed=config["seed"], key=f"clip.{role}.pretrained")


def sentence_spec():
    """Arguments of neuron_concepts.models.load_sentence_model."""
    return dict(name=effective_weights(config["sentence_model"]),
                cache_dir=config["weights_cache"], seed=config["seed"])


TARGET = model_tag(config["target"]["name"], target_spec()["weights"])
CLIP = {role: model_tag(config["clip"][role]["model"], clip_role_spec(role)["pretrained"])
        for role in ("match", "eval")}
SENTENCE = (RANDOM if sentence_spec()["name"] == RANDOM
            else re.sub(r"[^A-Za-z0-9_.-]+", "--", Path(config["sentence_model"]).name
                        if looks_like_path(config["sentence_model"]) else config["sentence_model"]))


def clip_spec(tag):
    """load_clip arguments of the CLIP model named ``tag`` in a path."""
    for role, role_tag in CLIP.items():
        if role_tag == tag:
            return clip_role_spec(role)
    raise WorkflowError(f"no configured CLIP model is named {tag!r} (configured: {CLIP})")


def evaluation_model_kind(tag):
    """``clip`` or ``sentence``: which evaluation model a path's model name is."""
    if tag == CLIP["eval"]:
        return "clip"
    if tag == SENTENCE:
        return "sentence"
    raise WorkflowError(f"{tag!r} is neither the evaluation CLIP ({CLIP['eval']}) nor the "
                        f"sentence model ({SENTENCE})")


def evaluation_model_spec(tag):
    """Loader arguments of an evaluation model, with its kind."""
    kind = evaluation_model_kind(tag)
    return dict(kind=kind, **(clip_role_spec("eval") if kind == "clip" else sentence_spec()))


def weights_spec(kind, tag):
    """What the download_weights rule fetches for a model named ``tag``."""
    if kind == "target" and tag == TARGET:
        return dict(kind=kind, **target_spec())
    if kind == "clip":
        return dict(kind=kind, **clip_spec(tag))
    if kind == "sentence" and tag == SENTENCE:
        return dict(kind=kind, **sentence_spec())
    raise WorkflowError(f"no configured {kind} model is named {tag!r}")


def weights_marker(kind, tag):
    """The download marker a model job waits for; none for random weights."""
    if tag == RANDOM or tag.endswith("-" + RANDOM):
        return []
    return [f"{config['weights_cache']}/markers/{kind}/{tag}.json"]


# ---------------------------------------------------------------- resources


def use_gpu():
    """Model jobs ask for a GPU unless the config pins the CPU (``auto`` may find one)."""
    return 0 if config["device"] == "cpu" else 1


# ---------------------------------------------------------------- paths


def view_names():
    """Configured views as they appear in paths (``center``, ``gradcam-f0.5``)."""
    names = []
    for view in config["views"]:
        if view == "center":
            names.append("center")
        else:
            names.append(f"gradcam-f{config['gradcam']['crop_fraction']:g}")
    return names


def www_sim_names():
    www = config["methods"]["www"]
    kappa = config.get("tvmf", {}).get("kappa", 16.0)
    return [sim_name(s, kappa) for s in www["similarities"]]


def www_methods():
    """WWW method names over the configured views and similarities, parameters included."""
    www = config["methods"]["www"]
    return [f"www-{view}-{sim}-n{www['n_images']}-a{www['alpha']:g}"
            for view in view_names() for sim in www_sim_names()]


def description_path(probe, layer, method, concepts):
    return f"results/descriptions/{probe}/{TARGET}/{layer}/{method}/{concepts}.parquet"


def evaluation_path(probe, method, concepts):
    layer = config["target"]["final_layer"]
    return f"results/eval/{probe}/{TARGET}/{layer}/{method}/{concepts}.parquet"


def method_families():
    """Every described method, by family: the family decides the evaluation styles."""
    return {"www": www_methods()}


EVALUATION_STYLES = {"www": ["www", "clip-dissect"], "clip-dissect": ["clip-dissect"]}


def method_family(method):
    for family, methods in method_families().items():
        if method in methods:
            return family
    return method.split("-")[0]


def all_descriptions():
    return [description_path(probe, layer, method, concepts)
            for probe in config["probe_sets"] for layer in config["target"]["layers"]
            for methods in method_families().values() for method in methods
            for concepts in config["concept_sets"]]


def all_evaluations():
    return [evaluation_path(probe, method, concepts)
            for probe in config["evaluation"]["probe_sets"]
            for methods in method_families().values() for method in methods
            for concepts in config["evaluation"]["concept_sets"]]


def view_boxes(wildcards):
    """The crop boxes a Grad-CAM view needs; nothing for the center view."""
    match = re.fullmatch(r"gradcam-f([0-9.]+)", wildcards.view)
    if not match:
        return []
    return [f"results/gradcam/{wildcards.probe}/{TARGET}/boxes-f{match.group(1)}.parquet"]


def concept_source(wildcards):
    """A concept file is an input of its concept set, so editing it reruns what depends on it."""
    spec = config["concept_sets"][wildcards.concepts]
    return [spec["path"]] if spec["type"] == "file" else []


check_config()
