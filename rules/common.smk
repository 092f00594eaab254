"""The core every rule file shares. The checked and resolved config, model names, the
wildcard constraints, the paths and inputs of the core stages, and the final outputs.

No rules here. Each feature's helpers live beside its rules: rules/helpers/<feature>.smk,
included by rules/<feature>.smk (Snakemake's linter wants functions and rules apart). Names in
paths are built and parsed by neuron_concepts.names, and every path is made of them by
neuron_concepts.paths (one function per artifact: no rule file writes a path by hand);
derived config (what is on, "empty means all", names of views and methods) is resolved
once, below, by neuron_concepts.settings. Every value a rule's script reads reaches it
through the rule's params or input, so Snakemake reruns exactly what a change invalidates.
"""

import re
from pathlib import Path

from neuron_concepts import layers, names, paths, resources, settings
from neuron_concepts.errors import ConfigError
from neuron_concepts.names import RANDOM, model_tag
from neuron_concepts.resources import (image_tower_gpu_mem_mb, table_rows, text_runtime_min,
                                       thumbnail_runtime_min)


# ---------------------------------------------------------------- the config, checked and resolved


def resolve_target(target, where):
    """A target entry's layers as neurons (neuron_concepts.layers.TargetLayers): one dummy
    forward of the architecture when this model is first planned (cached per model,
    neuron_concepts.layers.inspect_target); the evaluation's checks of its final layer.
    ``where`` names the entry in errors of a config with several targets."""
    one = {**config, "target": target}
    try:
        found = layers.target_layers(one)
        final = found.final_layer
        settings.check_target_layers(one, final and final.layer, final and final.neurons)
    except ConfigError as error:
        raise ConfigError(f"{where}: {error}" if where else str(error)) from None
    return found


try:
    settings.check(config)
    TARGET_ENTRIES = settings.target_entries(config)
    TARGET_LAYERS = resolve_target(config["target"], "targets[0]" if len(TARGET_ENTRIES) > 1 else "")
    FINAL = TARGET_LAYERS.final_layer
    OTHER_TARGET_LAYERS = [resolve_target(target, f"targets[{index}]")
                           for index, target in enumerate(TARGET_ENTRIES[1:], start=1)]
except ConfigError as error:
    # Before any job runs, naming the key at fault.
    raise WorkflowError(f"Invalid configuration: {error}")

# Module path -> name in paths (layer4 -> layer4-mean, fc -> fc), in target.layers order.
LAYER_NAMES = {n.layer: n.name for n in TARGET_LAYERS.neurons}
LAYERS = list(LAYER_NAMES.values())
FINAL_LAYER = FINAL.name if FINAL is not None else None
SETTINGS = settings.resolve(config, LAYER_NAMES)
# "auto" resolved in the config itself, so the run's kept config and the report say which.
config["target"]["final_layer"] = FINAL.layer if FINAL is not None else None
for _target, _found in zip(TARGET_ENTRIES[1:], OTHER_TARGET_LAYERS):
    _target["final_layer"] = _found.final_layer.layer if _found.final_layer is not None else None
# With several targets each resolves its own (TargetInfo.found.gradcam): "auto" stays.
if TARGET_LAYERS.gradcam is not None and len(TARGET_ENTRIES) == 1:
    config["gradcam"]["layer"] = TARGET_LAYERS.gradcam.layer


# ---------------------------------------------------------------- models and weights


def effective_weights(weights):
    """The weights a model uses: the global ``weights: random`` switch overrides every model."""
    return RANDOM if config["weights"] == RANDOM else weights


def target_spec(tag=None):
    """Arguments of neuron_concepts.models.load_target for the target named ``tag`` in paths
    (the primary target when None)."""
    target = config["target"] if tag is None else target_info(tag).entry
    return dict(name=target["name"], weights=effective_weights(target["weights"]),
                source=target["source"], kwargs=target["kwargs"],
                model_config=target.get("model_config"), cache_dir=config["weights_cache"],
                seed=config["seed"])


def clip_role_spec(role):
    """Arguments of neuron_concepts.models.load_clip for a CLIP role.

    Roles: ``match`` (WWW's matching, ConVis), ``dissect`` (CLIP-Dissect's own model) and
    ``eval`` (the CLIP cos metric).
    """
    spec = config["clip"][role]
    return dict(model=spec["model"], pretrained=effective_weights(spec["pretrained"]),
                model_config=spec.get("model_config"), cache_dir=config["weights_cache"],
                seed=config["seed"], key=f"clip.{role}.pretrained")


def sentence_spec():
    """Arguments of neuron_concepts.models.load_sentence_model."""
    return dict(name=effective_weights(config["sentence_model"]),
                cache_dir=config["weights_cache"], seed=config["seed"])


TARGET = model_tag(config["target"]["name"], target_spec()["weights"])


class TargetInfo:
    """One configured target: its config entry, layers as neurons (TargetLayers), module path
    -> name in paths, the names in config order, and its final layer's name (or None)."""

    def __init__(self, entry, found):
        self.entry = entry
        self.found = found
        self.layer_names = {n.layer: n.name for n in found.neurons}
        self.layers = list(self.layer_names.values())
        self.final = found.final_layer.name if found.final_layer is not None else None


# Tag -> TargetInfo of every target, the primary (TARGET) first: with one target, just it.
TARGETS = {settings.target_tag(config, entry): TargetInfo(entry, found)
           for entry, found in zip(TARGET_ENTRIES, [TARGET_LAYERS, *OTHER_TARGET_LAYERS])}
assert next(iter(TARGETS)) == TARGET
#: Whether several targets are described (the comparison; rules that take {target}).
MULTI_TARGET = len(TARGETS) > 1


def target_info(tag):
    """The TargetInfo of the target named ``tag`` in paths."""
    if tag not in TARGETS:
        raise WorkflowError(f"no configured target is named {tag!r} (targets: {list(TARGETS)})")
    return TARGETS[tag]


def target_rule_name(rule, tag):
    """A rule defined once per target is named ``rule`` for the primary target and
    ``rule_<tag>`` (non-word characters as _) for another."""
    return rule if tag == TARGET else "{}_{}".format(rule, re.sub(r"\W", "_", tag))


def job_target(wildcards):
    """The target of a job: its ``{target}`` wildcard, or the primary target."""
    return wildcards.target if "target" in wildcards.keys() else TARGET
CLIP_ROLES = ("match", "dissect", "eval")
# Role -> model tag in paths. Roles that name the same model share its artifacts.
CLIP = {role: model_tag(config["clip"][role]["model"], clip_role_spec(role)["pretrained"])
        for role in CLIP_ROLES}
SENTENCE = names.sentence_model_tag(sentence_spec()["name"])


def clip_spec(tag):
    """load_clip arguments of the CLIP model named ``tag`` in a path."""
    for role, role_tag in CLIP.items():
        if role_tag == tag:
            return clip_role_spec(role)
    raise WorkflowError(f"no configured CLIP model is named {tag!r} (configured: {CLIP})")


# The similarity matrices each role reads: WWW's prompts and base template, CLIP-Dissect's
# raw strings. A model's similarity file holds those of every role that names it.
ROLE_MATRICES = {"match": ["prompt", "base"], "dissect": ["raw"]}


def similarity_matrices(tag):
    """Keys of the similarity artifact of the CLIP model ``tag`` (rule similarity)."""
    keys = [key for role, matrices in ROLE_MATRICES.items() if CLIP[role] == tag
            for key in matrices]
    if not keys:
        raise WorkflowError(f"no similarity is computed with CLIP model {tag!r}: only "
                            f"clip.match ({CLIP['match']}) and clip.dissect "
                            f"({CLIP['dissect']}) are matched with concepts")
    return keys


def text_models():
    """Tags of the CLIP models that embed the configured concept sets (match, dissect), once each."""
    roles = ["match"] + (["dissect"] if SETTINGS.on("clip_dissect") or SETTINGS.on("stability") else [])
    return list(dict.fromkeys(CLIP[role] for role in roles))


def clip_view(view, target=None):
    """The name of ``view`` in the CLIP stages' paths (image embeddings, similarity) for a
    target's descriptions. A view that crops is its target's own with several targets (the
    crops are the target's Grad-CAM boxes): ``gradcam-f0.5@resnet18-random``
    (names.target_view); the center view, and every view of a single target, as it is."""
    if not MULTI_TARGET or names.gradcam_crop(view) is None:
        return view
    return names.target_view(view, target or TARGET)


def weights_marker(kind, tag):
    """The download marker a model job waits for; none for random weights."""
    if tag == RANDOM or tag.endswith(f"-{RANDOM}"):
        return []
    return [paths.weights_marker(config["weights_cache"], kind, tag)]


def use_gpu():
    """Model jobs ask for a GPU unless the config pins the CPU (``auto`` may find one)."""
    return 0 if config["device"] == "cpu" else 1


def text_gpu_mem_mb():
    """gpu_mem_mb of a text-embedding job at the configured text batch
    (neuron_concepts.resources.text_gpu_mem_mb)."""
    return resources.text_gpu_mem_mb(config["batch_size"]["text"])


def text_runtime(texts_per_row, key="concepts"):
    """A runtime function of a text-embedding job: its concept table's rows (input ``key``)
    times ``texts_per_row`` texts, at the device's rate, times the attempt
    (neuron_concepts.resources.text_runtime_min)."""
    def runtime(wildcards, input, attempt):
        rows = resources.table_rows(input[key])
        return resources.text_runtime_min(rows * texts_per_row, bool(use_gpu()), attempt)

    return runtime


def gpu_constraint(gpu_mem_mb):
    """The SLURM constraint (sbatch -C) of a job that needs ``gpu_mem_mb`` MB of GPU memory:
    every feature of ``scale.gpu_constraints`` (feature -> GPU memory in MB of the nodes
    that have it) whose cards are large enough, joined by ``|``; None without a mapping.
    A job no configured card fits is a WorkflowError naming the largest one."""
    features = config["scale"].get("gpu_constraints") or {}
    if not features:
        return None
    fits = [name for name, mb in sorted(features.items(), key=lambda kv: kv[1]) if mb >= gpu_mem_mb]
    if not fits:
        raise WorkflowError(f"a job needs {gpu_mem_mb} MB of GPU memory, more than any card of "
                            f"scale.gpu_constraints {features}; lower scale.gpu_mem_mb")
    return "|".join(fits)


def gpu_resources(gpu_mem_mb):
    """The GPU resources of a model rule: ``gpu`` (use_gpu()), ``gpu_mem_mb`` (a number or a
    resource function of wildcards, input, threads, attempt) and, with ``scale.gpu_constraints``
    on a GPU run, the SLURM ``constraint`` of the cards that hold it (gpu_constraint(), per
    job). Use as ``resources: **gpu_resources(...), mem_mb=..., runtime=...``."""
    found = dict(gpu=use_gpu(), gpu_mem_mb=gpu_mem_mb)
    if not (config["scale"].get("gpu_constraints") and use_gpu()):
        return found
    if not callable(gpu_mem_mb):
        return dict(found, constraint=gpu_constraint(gpu_mem_mb))
    import inspect

    wanted = list(inspect.signature(gpu_mem_mb).parameters)

    def constraint(wildcards, input, threads, attempt):
        given = dict(wildcards=wildcards, input=input, threads=threads, attempt=attempt)
        return gpu_constraint(gpu_mem_mb(*[given[name] for name in wanted]))

    return dict(found, constraint=constraint)


def image_model_threads(wildcards):
    """Threads of a job that runs a model over probe images (activations, image embeddings,
    Grad-CAM): half the run's cores, 1 to 8 (8 on a cluster, where cores are per job).

    Two such jobs then run side by side, so one's Python start and model build (one thread)
    overlap the other's forward: on 2 cores the demo spent a quarter less CPU time than with
    both cores per job, whose OpenMP threads spin while they wait. On CUDA the threads feed
    the DataLoader workers (neuron_concepts.data.default_workers). ``--set-threads
    activations=N`` overrides it.
    """
    cores = workflow.resource_settings.cores
    return max(1, min(8, cores // 2)) if isinstance(cores, int) and cores < 10**6 else 8


# ---------------------------------------------------------------- probe sets and image shards
# The image stages (activations, Grad-CAM, image embeddings) of a probe set larger than
# scale.images_per_job run as shard jobs over ranges of manifest rows, joined into the
# artifact at its usual path (neuron_concepts.shards); a probe set that fits one job keeps
# the one job and no join. How many shards a probe set has is decided here, when the
# workflow is planned (a dry run lists every job), from the count of its files: the listing
# the manifest makes, without opening a file (data.count_probe_files). A shard past the
# manifest's end (unreadable files skipped) is empty, and the join leaves it out.

#: The batch size of each image stage: shards hold whole batches (neuron_concepts.shards).
IMAGE_STAGE_BATCH = {"image": config["batch_size"]["image"], "gradcam": config["gradcam"]["batch_size"]}


def probe_spec(probe):
    """The config entry of a probe set: configured, or derived (ConVis OOD's reference
    classes of ImageNet-train, convis_derived_probe_sets)."""
    derived = convis_derived_probe_sets()
    if probe in derived:
        return derived[probe]
    if probe not in config["probe_sets"]:
        raise WorkflowError(f"no probe set is named {probe!r} (probe_sets: {sorted(config['probe_sets'])})")
    return config["probe_sets"][probe]


_CONVIS_DERIVED = {}


# ConVis OOD reads ImageNet-train for its image baseline; the classes it reads are a probe
# set of their own, derived here (the image stages must know it when they are planned).


def convis_derived_probe_sets():
    """The probe set of ConVis OOD's reference images: the classes of ood.train_probe that
    the image baseline reads (those under an in-distribution synset s+ of a configured
    pair), named ``{train_probe}.ood_classes``; the paper's six pairs read about 120 of
    ImageNet-train's 1,000 classes. Its images and embeddings are a subset of the whole
    train set's, and the baseline reads no other (convis_eval.ood_evaluation), so the
    table is the same. Empty when no train_probe is configured."""
    if not (SETTINGS.on("convis_ood") and SETTINGS.convis.ood.train_probe):
        return {}
    if not _CONVIS_DERIVED:
        train_probe = SETTINGS.convis.ood.train_probe
        spec = config["probe_sets"][train_probe]
        if spec.get("type") == "imagefolder":
            spec = {**spec, "classes": convis_ood_reference_classes(spec["root"])}
        _CONVIS_DERIVED[names.ood_reference_probe_name(train_probe)] = spec
    return _CONVIS_DERIVED


def convis_ood_reference_classes(root):
    """The class folders of ``root`` under an in-distribution synset of the OOD pairs
    (folder names are ImageNet ids; hyponymy as convis_eval.classes_under follows it)."""
    from neuron_concepts import wordnet
    from neuron_concepts.errors import InputDataError

    def under_a_positive(wnid):
        try:
            return bool(positives & wordnet.self_and_hypernym_names(wnid))
        except (ValueError, InputDataError):  # not an ImageNet id: the manifest job says so
            return False

    folders = sorted(p.name for p in Path(root).iterdir() if p.is_dir()) if Path(root).is_dir() else []
    net = wordnet.open_wordnet()
    from neuron_concepts.convis_eval import OOD_PAIRS

    pairs = SETTINGS.convis.ood.pairs or OOD_PAIRS
    positives = {net.synset(positive).name() for positive, _ in pairs}
    return [wnid for wnid in folders if under_a_positive(wnid)]


_PROBE_FILE_COUNTS = {}


def probe_file_count(probe):
    """Files of a probe set as the manifest lists them (counted once per planning)."""
    from neuron_concepts import data

    if probe not in _PROBE_FILE_COUNTS:
        _PROBE_FILE_COUNTS[probe] = data.count_probe_files(probe_spec(probe))
    return _PROBE_FILE_COUNTS[probe]


def image_shards(probe, stage):
    """The shard names (rows0-10000, ...) of a probe set's image stage (``image``:
    activations and image embeddings, ``gradcam``); one name when it fits one job."""
    from neuron_concepts import shards

    return [names.image_shard_name(start, stop) for start, stop in shards.shard_ranges(
        probe_file_count(probe), SETTINGS.scale.images_per_job, IMAGE_STAGE_BATCH[stage])]


def image_stage_probes():
    """The probe sets whose images a model sees: the described ones, ConVis OOD's."""
    ood = [SETTINGS.convis.ood.probe] if SETTINGS.on("convis_ood") else []
    return list(dict.fromkeys([*SETTINGS.described_probe_sets, *ood,
                               *convis_derived_probe_sets()]))


def sharded_probes(stage):
    """Wildcard constraint of the join rules: the probe sets whose ``stage`` runs in shards
    (a pattern that matches nothing when none does)."""
    sharded = [p for p in image_stage_probes() if len(image_shards(p, stage)) > 1]
    return "|".join(re.escape(p) for p in sharded) or "(?!)"


def unsharded_probes(stage):
    """Wildcard constraint of the one-job rules: any probe set name but the sharded ones
    (every such path has ``/`` after the probe set)."""
    sharded = sharded_probes(stage)
    return names.CONFIG_NAME if sharded == "(?!)" else f"(?!(?:{sharded})/){names.CONFIG_NAME}"


def shard_rows(wildcards):
    """(start, stop) manifest rows of a shard job; None (all rows) for the one job."""
    return list(names.parse_image_shard(wildcards.shard)) if "shard" in wildcards.keys() else None


def image_job_images(wildcards):
    """How many images an image-stage job reads: its shard's rows, or the probe set's files."""
    if "shard" in wildcards.keys():
        start, stop = names.parse_image_shard(wildcards.shard)
        return stop - start
    return probe_file_count(wildcards.probe)


def image_job_mem_mb(row_bytes):
    """mem_mb of an image-stage job (neuron_concepts.resources.image_job_host_bytes) whose
    output row holds ``row_bytes`` bytes, times the attempt."""
    def mem_mb(wildcards, threads, attempt):
        return attempt * resources.mib(resources.image_job_host_bytes(
            image_job_images(wildcards), row_bytes, config["batch_size"]["image"], threads))

    return mem_mb


def join_mem_mb(row_bytes):
    """mem_mb of a join of a probe set's shards (the rows twice, and Python), times the attempt."""
    def mem_mb(wildcards, attempt):
        return attempt * resources.mib(resources.FIXED_HOST_BYTES
                                       + 3 * probe_file_count(wildcards.probe) * row_bytes)

    return mem_mb


def image_job_gpu_mem_mb(per_image_mb, batch_size):
    """gpu_mem_mb of an image-stage job on CUDA: the model and one batch, at most the
    configured card (scale.gpu_mem_mb); 0 on the CPU."""
    if not use_gpu():
        return 0
    return min(SETTINGS.scale.gpu_mem_mb,
               resources.mib(resources.image_job_gpu_bytes(batch_size, per_image_mb * 2 ** 20)))


def image_job_runtime(wildcards, attempt):
    """Minutes of an image-stage job, from its image count, times the attempt."""
    return attempt * resources.image_job_runtime(image_job_images(wildcards), bool(use_gpu()))


# ---------------------------------------------------------------- wildcard constraints
# One declaration for the whole workflow: what each wildcard may match (names.WILDCARDS,
# built from the name registries) and the configured layers. A rule adds its own only to
# match less than these.


wildcard_constraints:
    **{**names.WILDCARDS, "layer": "|".join(re.escape(layer) for layer in dict.fromkeys(
        layer for info in TARGETS.values() for layer in info.layers))},


# ---------------------------------------------------------------- paths and inputs of the core stages
# neuron_concepts.paths with what the config fixes: the target, its final layer, the
# cosines' dtype.


def description_path(probe, layer, method, concepts, target=None):
    """The descriptions of a target's ``layer`` (paths.descriptions); the primary target's
    when ``target`` is None."""
    return paths.descriptions(probe, target or TARGET, layer, method, concepts)


def evaluation_path(probe, method, concepts, target=None, layer=None):
    """The evaluation of a target's final layer's descriptions (paths.evaluation); the
    primary target's when ``target`` is None; ``layer`` a pattern ("{layer}") or its final layer."""
    target = target or TARGET
    return paths.evaluation(probe, target, layer or target_info(target).final, method, concepts)


def activations_path(probe, view, layer, target=None):
    """A target's activations of ``layer`` (paths.activations); the primary's by default."""
    return paths.activations(probe, target or TARGET, view, layer)


def similarity_path(probe, clip, view, concepts):
    """The cosines, in the configured dtype's file (paths.similarity)."""
    return paths.similarity(probe, clip, view, concepts,
                            names.cosine_file_name(SETTINGS.scale.cosine_dtype))


def description_job_layers(wildcards):
    """The layers one description job describes: its own ``{layer}`` (scale.description_jobs:
    layer) or every layer (concept_set)."""
    return [wildcards.layer] if SETTINGS.scale.description_jobs == "layer" else LAYERS


def description_job_outputs(method_names):
    """What one description job writes: each method's descriptions of its layer(s) (wildcards
    probe, concepts and, split by layer, layer; with several targets, target: each job
    describes one target's layer, settings.check_targets)."""
    layers = ["{layer}"] if SETTINGS.scale.description_jobs == "layer" else LAYERS
    target = "{target}" if MULTI_TARGET else None
    return [description_path("{probe}", layer, name, "{concepts}", target)
            for name in method_names for layer in layers]


def description_log(rule):
    """The log of one description job of ``rule``: one per probe set, concept set (and layer;
    and target, with several)."""
    if MULTI_TARGET:
        return f"logs/{rule}/{{probe}}/{{target}}/{{layer}}/{{concepts}}.log"
    if SETTINGS.scale.description_jobs == "layer":
        return f"logs/{rule}/{{probe}}/{{layer}}/{{concepts}}.log"
    return f"logs/{rule}/{{probe}}/{{concepts}}.log"


def description_resources(input, attempt, n_top, n_ks, passes):
    """mem_mb, gpu_mem_mb and runtime of a description job: neuron_concepts.resources'
    formulas on the shapes its inputs hold (npz headers; known once they exist, Snakemake
    asks again then), times the attempt (a retried job gets twice, then three times as
    much; gpu_mem_mb never beyond scale.gpu_mem_mb). ``n_top``: the most top images of a
    neuron, ``n_ks``: the most ks of one pass, ``passes``: scoring passes per layer."""
    shape = resources.description_job_shape(input.activations, input.similarity)
    host = resources.description_host_bytes(shape.n_images, shape.widest, shape.n_concepts,
                                            n_top, n_ks, shape.neurons)
    gpu = (resources.description_gpu_mem_mb(input.activations, input.similarity, n_top,
                                             n_ks, SETTINGS.scale.gpu_mem_mb, attempt)
           if use_gpu() else 0)
    return dict(mem_mb=attempt * -(-host // resources.MIB), gpu_mem_mb=gpu,
                runtime=attempt * resources.description_runtime_min(shape, n_top, passes))


def view_boxes_path(probe, view, target=None):
    """The crop boxes a view needs (named by the view's crop, names.gradcam_crop); None for
    center. Whose: the target a target's own view names (clip_view), else ``target``, else
    the primary target's."""
    crop = names.gradcam_crop(view)
    if crop is None:
        return None
    return paths.crop_boxes(probe, names.parse_view(view).target or target or TARGET, crop)


def image_shard_paths(path, probe, stage):
    """The shards of an artifact ``path`` of a probe set's image ``stage``, in row order."""
    return [paths.image_shard(path, shard) for shard in image_shards(probe, stage)]


def view_boxes(wildcards):
    """Input function: the crop boxes of ``wildcards.view``, if it crops: the job's target's
    (activations), the target its view names (image embeddings of a target's own view), or
    the primary target's."""
    path = view_boxes_path(wildcards.probe, wildcards.view, job_target(wildcards))
    return [path] if path else []


# ---------------------------------------------------------------- final outputs


def final_outputs():
    """Every final artifact of the configured experiment: rule all's targets but provenance.

    The provenance rule takes these as inputs, so it runs last and its manifest covers the
    whole run. A feature adds its outputs here through a ``*_outputs()`` function in its
    helpers file that returns [] when the feature is off, never to rule all directly.
    Called only after every rule file is included (rule all, rules/provenance.smk).
    """
    return [
        *www_outputs(),
        *clip_dissect_outputs(),
        *evaluation_outputs(),
        *stability_outputs(),
        *gradcam_outputs(),
        *ablation_outputs(),
        *convis_outputs(),
        *browser_outputs(),
        *compare_outputs(),
    ]
