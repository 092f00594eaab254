"""Helpers shared by the rule files (config checks, model names, paths, resources).

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
CLIP_ROLES = ("match", "dissect", "eval")
# Role -> model tag in paths. Roles that name the same model share its artifacts.
CLIP = {role: model_tag(config["clip"][role]["model"], clip_role_spec(role)["pretrained"])
        for role in CLIP_ROLES}
SENTENCE = (RANDOM if sentence_spec()["name"] == RANDOM
            else re.sub(r"[^A-Za-z0-9_.-]+", "--", Path(config["sentence_model"]).name
                        if looks_like_path(config["sentence_model"]) else config["sentence_model"]))


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


def method_clip(family):
    """Tag of the CLIP model a method family matches with (the tables' ``clip`` label)."""
    return CLIP["dissect"] if family == "clip-dissect" else CLIP["match"]


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
    return {"www": www_methods(), "clip-dissect": clip_dissect_methods()}


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


# ================================================================ CLIP-Dissect and stability
# (issue 4) Method names, the stability study's descriptions and outputs, and their checks.


def clip_dissect_sim_names(kinds):
    """Similarity names as in paths (``cos``, ``tvmf-k16``) of the listed kinds."""
    kappa = config.get("tvmf", {}).get("kappa", 16.0)
    return [sim_name(kind, kappa) for kind in kinds]


def clip_dissect_method(variant, view, sim, top_k):
    """A CLIP-Dissect method name with its parameters, e.g. ``softwpmi-center-cos-k100``.

    a, lam, p_start and p_end are params of the rule, not part of the name: changing them
    reruns the descriptions in place (Snakemake's params trigger).
    """
    return f"{variant}-{view}-{sim}-k{top_k}"


def clip_dissect_view_names():
    """methods.clip_dissect.views as in paths; the center view needs no entry under views."""
    names = {"center": "center", **dict(zip(config["views"], view_names()))}
    return [names[view] for view in config["methods"]["clip_dissect"]["views"] if view in names]


def clip_dissect_methods():
    """Configured CLIP-Dissect methods: each variant at its top_k, over views and similarities."""
    cd = config["methods"]["clip_dissect"]
    return [clip_dissect_method(variant, view, sim, cd[variant]["top_k"])
            for variant in cd["variants"] for view in clip_dissect_view_names()
            for sim in clip_dissect_sim_names(cd["similarities"])]


def clip_dissect_scoring(variant, top_k, sim):
    """Arguments of neuron_concepts.clip_dissect.layer_scores for a variant at ``top_k``.

    top_k and the similarity (``cos``, ``tvmf-k16``) come from the path; the rest is the
    variant's own config, so changing soft-WPMI's a leaves WPMI's descriptions be.
    """
    spec = config["methods"]["clip_dissect"][variant]
    kind, kappa = parse_sim(sim)
    return dict(variant=variant, top_k=top_k, a=spec["a"], lam=spec["lam"],
                p_start=spec.get("p_start"), p_end=spec.get("p_end"), sim=kind, kappa=kappa)


STABILITY_VIEW = "center"  # the study's setting: CLIP sees the whole image


def stability_descriptions():
    """Labels and path of every description the stability table reads (one per k of a group)."""
    st = config["stability"]
    return [dict(probe=probe, variant=variant, layer=layer, concepts=concepts, sim=sim, k=k,
                 path=description_path(probe, layer,
                                       clip_dissect_method(variant, STABILITY_VIEW, sim, k),
                                       concepts))
            for probe in st["probe_sets"] or list(config["probe_sets"])
            for variant in st["variants"]
            for layer in st["layers"] or config["target"]["layers"]
            for concepts in st["concept_sets"] or list(config["concept_sets"])
            for sim in clip_dissect_sim_names(st["similarities"])
            for k in st["ks"]]


def stability_outputs():
    """The stability table and figure, when the study is configured (stability.variants)."""
    if not config["stability"]["variants"]:
        return []
    return ["results/tables/stability.csv", "results/tables/stability.md",
            "results/figures/stability.png"]


def check_clip_dissect_config():
    """Cross-checks of methods.clip_dissect and stability the schema cannot express.

    top_k against the number of probe images is checked by the description job, where the
    probe set's size is first known.
    """
    cd, st = config["methods"]["clip_dissect"], config["stability"]
    for view in cd["views"]:
        if view != "center" and view not in config["views"]:
            config_error(f"methods.clip_dissect.views names {view!r}, which is not under views "
                         f"{config['views']}; add it there (its crop parameters live there)")
    if not st["variants"]:
        return
    if st["base_k"] not in st["ks"]:
        config_error(f"stability.base_k {st['base_k']} is not in stability.ks {st['ks']}; "
                     f"add it there")
    if st["n_best"] > cd["n_best"]:
        config_error(f"stability.n_best {st['n_best']} exceeds methods.clip_dissect.n_best "
                     f"{cd['n_best']}, the concepts kept per neuron; raise the latter")
    for key, known in (("layers", config["target"]["layers"]),
                       ("probe_sets", list(config["probe_sets"])),
                       ("concept_sets", list(config["concept_sets"]))):
        for name in st[key]:
            if name not in known:
                config_error(f"stability.{key} names {name!r}, which is not configured "
                             f"(configured: {known})")


check_clip_dissect_config()
# ================================================================ end of CLIP-Dissect and stability


# ================================================================ Grad-CAM view, ablation, figures
# (issue 3) The WWW grid over views x similarities, the ablation table and the figures.

WWW_METHOD = re.compile(r"www-(?P<view>center|gradcam-f[0-9.]+)-(?P<sim>cos|tvmf-k[0-9.]+)"
                        r"-n\d+-a[0-9.]+")


def www_grid():
    """The configured WWW methods with their view and similarity, and the ablation's two
    switches: whether a method uses the Grad-CAM crop and whether it uses t-vMF."""
    cells = []
    for method in www_methods():
        match = WWW_METHOD.fullmatch(method)
        cells.append(dict(method=method, view=match["view"], sim=match["sim"],
                          gradcam=match["view"] != "center", tvmf=match["sim"] != "cos"))
    return cells


def ablation_grid_complete():
    """Whether both views and both similarities are configured (the ablation's 2 x 2 grid)."""
    cells = www_grid()
    return {c["gradcam"] for c in cells} == {c["tvmf"] for c in cells} == {False, True}


def ablation_evaluations():
    """Labels and path of every evaluation the ablation table joins."""
    if not ablation_grid_complete():
        raise WorkflowError("the ablation table needs views: [center, gradcam] and "
                            "methods.www.similarities: [cos, tvmf] in the config")
    return [dict(probe=probe, concepts=concepts, gradcam=cell["gradcam"], tvmf=cell["tvmf"],
                 method=cell["method"], view=cell["view"], sim=cell["sim"], target=TARGET,
                 clip=CLIP["match"], eval_clip=CLIP["eval"], sentence=SENTENCE,
                 path=evaluation_path(probe, cell["method"], concepts))
            for probe in config["evaluation"]["probe_sets"]
            for concepts in config["evaluation"]["concept_sets"]
            for cell in www_grid()]


def gradcam_boxes_path(probe):
    """The crop boxes of a probe set at the configured crop fraction."""
    return f"results/gradcam/{probe}/{TARGET}/boxes-f{config['gradcam']['crop_fraction']:g}.parquet"


def view_wildcards(view, probe=None):
    """Wildcards of a view as view_boxes() reads them."""
    from types import SimpleNamespace

    return SimpleNamespace(view=view, probe=probe or figure_settings()["probe"])


def figure_settings():
    """The figures' probe set, concept set, sample images, neurons, layers and image count.

    Unset choices default to the first evaluated probe set and concept set (else the
    first configured) and every target layer.
    """
    fig = config["figures"]
    probes = config["evaluation"]["probe_sets"] or list(config["probe_sets"])
    concept_sets = config["evaluation"]["concept_sets"] or list(config["concept_sets"])
    return dict(probe=fig.get("probe_set") or probes[0],
                concepts=fig.get("concept_set") or concept_sets[0],
                sample_images=fig["sample_images"], neurons=fig["neurons"],
                layers=fig["layers"] or config["target"]["layers"], n_images=fig["n_images"])


def neuron_panel_inputs(wildcards):
    """Manifest, the layer's activations and boxes per view, and the WWW descriptions."""
    fig = figure_settings()
    probe, views = fig["probe"], view_names()
    return dict(
        manifest=f"results/probe/{probe}/manifest.parquet",
        activations=[f"results/activations/{probe}/{TARGET}/{view}/{wildcards.layer}.npz"
                     for view in views],
        boxes=[path for view in views for path in view_boxes(view_wildcards(view, probe))],
        descriptions=[description_path(probe, wildcards.layer, cell["method"], fig["concepts"])
                      for cell in www_grid()],
    )


def www_grid_outputs():
    """The ablation table (when the 2 x 2 grid is configured and evaluated) and the figures."""
    outputs = []
    if (ablation_grid_complete() and config["evaluation"]["probe_sets"]
            and config["evaluation"]["concept_sets"]):
        outputs += ["results/tables/ablation.csv", "results/tables/ablation.md"]
    if "gradcam" in config["views"]:
        outputs.append("results/figures/crop_comparison.png")
    outputs += [f"results/figures/neuron_panels/{layer}.png"
                for layer in figure_settings()["layers"]]
    return outputs


def check_www_grid_config():
    """Cross-checks of the figures' choices, which the schema cannot express."""
    fig = config["figures"]
    for key, known in (("probe_set", config["probe_sets"]), ("concept_set", config["concept_sets"])):
        if fig.get(key) and fig[key] not in known:
            config_error(f"figures.{key} names {fig[key]!r}, which is not configured "
                         f"(configured: {sorted(known)})")
    for layer in fig["layers"]:
        if layer not in config["target"]["layers"]:
            config_error(f"figures.layers names {layer!r}, which is not in target.layers "
                         f"{config['target']['layers']}")


check_www_grid_config()
# ================================================================ end of Grad-CAM view, ablation, figures


# ================================================================ ConVis
# (issue 5) Paths of the configured ConVis artifacts, the OOD/WSOL inputs, and their checks.
# ConVis is off when the config has no ``convis`` section.

CONVIS_NAME = r"[A-Za-z0-9_.]+"  # vocabulary (and probe set) names in ConVis paths
CONVIS_SYNSET = r"[^/]+\.n\.[0-9]+"  # a WordNet noun synset name, e.g. hunting_dog.n.01


def convis_config():
    """The ``convis`` section, schema defaults filled in; empty when ConVis is off."""
    return config.get("convis") or {}


CONVIS_GRID = r"anchored\d+(-\d+)*-stride\d+(-noise)?(-r\d+)?"  # convis_grid() names


def convis_grid():
    """The patch-grid folder: ``anchored64-128-stride16`` (sizes sorted, sharing a top-left
    corner; stride) for the paper's valid-location grid, plus ``-noise`` for the official
    code's noise-padded grid (convis.padding: noise), then ``-r224`` when the grid covers a
    centre crop resized to 224 px. The geometry is in the name, so volumes of another
    geometry are never reused."""
    cv = convis_config()
    noise = "-noise" if cv.get("padding", "none") == "noise" else ""
    resize = f"-r{cv['resize']}" if cv.get("resize") else ""
    return (f"anchored{'-'.join(str(s) for s in sorted(cv['patch_sizes']))}"
            f"-stride{cv['stride']}{noise}{resize}")


def convis_grid_spec(name):
    """Patch sizes, stride, padding ("none" or "noise") and resize (None: native) named by
    a :func:`convis_grid` folder."""
    match = re.fullmatch(r"anchored(?P<sizes>\d+(?:-\d+)*)-stride(?P<stride>\d+)"
                         r"(?P<noise>-noise)?(?:-r(?P<resize>\d+))?", name)
    if match is None:
        raise WorkflowError(f"{name!r} is no ConVis grid folder (e.g. anchored64-128-stride16, "
                            "...-noise, ...-r224)")
    return dict(sizes=[int(size) for size in match["sizes"].split("-")], stride=int(match["stride"]),
                padding="noise" if match["noise"] else "none",
                resize=int(match["resize"]) if match["resize"] else None)


def convis_dir(probe=None, vocab=None):
    """Folder of a probe set's ConVis artifacts (default: convis.probe, convis.vocabulary)."""
    cv = convis_config()
    return (f"results/convis/{probe or cv['probe']}/{CLIP['match']}/"
            f"{vocab or cv['vocabulary']}/{convis_grid()}")


def convis_vocabulary_spec(name):
    vocabularies = convis_config().get("vocabularies", {})
    if name not in vocabularies:
        raise WorkflowError(f"no ConVis vocabulary is named {name!r} (convis.vocabularies: "
                            f"{sorted(vocabularies)})")
    return vocabularies[name]


def convis_words_file(wildcards):
    """A vocabulary's word file is its input (editing it rebuilds it); none for ImageNet."""
    path = convis_vocabulary_spec(wildcards.vocab).get("words_file")
    return [path] if path else []


def convis_vocabulary_files(vocab):
    """The vocabulary table and the CLIP embeddings of its definitions (key ``raw``)."""
    return dict(vocab=f"results/convis/vocab/{vocab}.parquet",
                texts=f"results/text_emb/{CLIP['match']}/convis-{vocab}.npz")


def convis_ood_inputs(wildcards):
    ood = convis_config()["ood"]
    inputs = dict(images=f"results/image_emb/{ood['probe']}/{CLIP['match']}/center.npz",
                  manifest=f"results/probe/{ood['probe']}/manifest.parquet",
                  **convis_vocabulary_files(ood.get("vocabulary") or convis_config()["vocabulary"]))
    if ood.get("train_probe"):
        inputs["train_images"] = f"results/image_emb/{ood['train_probe']}/{CLIP['match']}/center.npz"
        inputs["train_manifest"] = f"results/probe/{ood['train_probe']}/manifest.parquet"
    return inputs


def convis_ood_pairs():
    """The (s+, s-) pairs: configured, or the paper's six."""
    from neuron_concepts.convis_eval import OOD_PAIRS

    return [list(pair) for pair in (convis_config()["ood"].get("pairs") or OOD_PAIRS)]


def convis_ood_labels():
    ood = convis_config()["ood"]
    return dict(probe=ood["probe"], train_probe=ood.get("train_probe"), clip=CLIP["match"],
                vocabulary=ood.get("vocabulary") or convis_config()["vocabulary"])


_CONVIS_WSOL_BOXES = {}


def convis_wsol_boxes():
    """Ground-truth boxes of the sampled WSOL images, keyed by probe image id (read once)."""
    from neuron_concepts.convis_eval import wsol_ground_truth

    if not _CONVIS_WSOL_BOXES:
        ws = convis_config()["wsol"]
        _CONVIS_WSOL_BOXES.update(wsol_ground_truth(
            cub_root=ws.get("cub_root"), boxes_csv=ws.get("boxes_csv"), split=ws["cub_split"],
            n_images=ws.get("n_images"), seed=ws["seed"]))
    return _CONVIS_WSOL_BOXES


def convis_wsol_inputs(wildcards):
    ws = convis_config()["wsol"]
    vocab = ws.get("vocabulary") or convis_config()["vocabulary"]
    folder = convis_dir(ws["probe"], vocab)
    if ws.get("cub_root"):
        sources = [f"{ws['cub_root']}/{name}" for name in
                   ("images.txt", "bounding_boxes.txt", "train_test_split.txt")]
    else:
        sources = [ws["boxes_csv"]]
    return dict(volumes=[f"{folder}/ranks/{image}.npz" for image in convis_wsol_boxes()],
                vocab=convis_vocabulary_files(vocab)["vocab"], boxes=sources)


def convis_wsol_labels():
    ws = convis_config()["wsol"]
    return dict(probe=ws["probe"], clip=CLIP["match"],
                vocabulary=ws.get("vocabulary") or convis_config()["vocabulary"],
                grid=convis_grid(), seed=ws["seed"])


def convis_outputs():
    """Figures of the configured images and pairs, and the OOD/WSOL tables when configured."""
    cv = convis_config()
    if not cv:
        return []
    outputs = [f"results/figures/convis/{image}__top.png" for image in cv["images"]]
    outputs += [f"results/figures/convis/{pair['image']}__{pair['synset']}.png" for pair in cv["pairs"]]
    if cv.get("ood"):
        outputs += ["results/tables/convis_ood.csv", "results/tables/convis_ood.md"]
    if cv.get("wsol"):
        outputs += ["results/tables/convis_wsol.csv", "results/tables/convis_wsol.md"]
    return outputs


def check_convis_config():
    """Cross-references of the convis section the schema cannot express."""
    cv = convis_config()
    if not cv:
        return
    vocabularies = cv["vocabularies"]

    def known(key, name, names, what):
        if name not in names:
            config_error(f"convis.{key} names {name!r}, which is not defined under {what} "
                         f"(defined: {sorted(names)})")

    known("probe", cv["probe"], config["probe_sets"], "probe_sets")
    known("vocabulary", cv["vocabulary"], vocabularies, "convis.vocabularies")
    if cv["stride"] > max(cv["patch_sizes"]):
        config_error(f"convis.stride {cv['stride']} exceeds the largest of convis.patch_sizes "
                     f"{cv['patch_sizes']}, which would leave pixels no patch covers: lower the stride")
    for name, spec in vocabularies.items():
        if spec.get("words_file") and not Path(spec["words_file"]).is_file():
            config_error(f"convis.vocabularies.{name}.words_file: file {spec['words_file']} "
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
            config_error("convis.wsol needs exactly one of cub_root (a CUB-200-2011 folder) and "
                         "boxes_csv (a CSV with header image,x0,y0,x1,y1)")
        source = wsol.get("cub_root") or wsol.get("boxes_csv")
        exists = Path(source).is_dir() if wsol.get("cub_root") else Path(source).is_file()
        if not exists:
            config_error(f"convis.wsol: {source} does not exist")


check_convis_config()
# ================================================================ end of ConVis


# ================================================================ final outputs and provenance
# (issue 6) What a complete run makes (rule all and the provenance rule), and run logs.


def final_outputs():
    """Every final artifact of the configured experiment: rule all's targets but provenance.

    The provenance rule takes these as inputs, so it runs last and its manifest covers the
    whole run. A method family adds its outputs here (a function that returns [] when the
    family is not configured), never to rule all directly.
    """
    return [
        *all_descriptions(),
        "results/tables/concept_discovery.csv",
        "results/tables/concept_discovery.md",
        *stability_outputs(),
        *www_grid_outputs(),
        *convis_outputs(),
    ]


def provenance_models():
    """Each model the run uses: role and name, weights tag, download marker (None: random).

    The evaluation models count only when something is evaluated, so their weights are
    not fetched just to be recorded.
    """
    models = [dict(name=f"target {config['target']['name']}", tag=target_spec()["weights"],
                   marker=(weights_marker("target", TARGET) or [None])[0])]
    roles = ["match"]
    if clip_dissect_methods() or stability_outputs():
        roles.append("dissect")
    if all_evaluations():
        roles.append("eval")
    for role in roles:
        spec = clip_role_spec(role)
        models.append(dict(name=f"clip.{role} {spec['model']}", tag=spec["pretrained"],
                           marker=(weights_marker("clip", CLIP[role]) or [None])[0]))
    if all_evaluations():
        models.append(dict(name=f"sentence_model {config['sentence_model']}",
                           tag=sentence_spec()["name"],
                           marker=(weights_marker("sentence", SENTENCE) or [None])[0]))
    return models


def keep_run_log(log, folder, failed=False):
    """Copy Snakemake's log(s) of this run into ``folder`` (kept with the results it made).

    Called by the onsuccess/onerror handlers with Snakemake's log file (a path, a list of
    paths, or None when logging to a file is off). A copy keeps Snakemake's timestamped
    name, so every run that did something leaves its own log.
    """
    import shutil

    for path in [log] if isinstance(log, (str, Path)) else (log or []):
        if not Path(path).is_file():
            continue
        name = Path(path).name
        if failed:
            name = name.replace(".snakemake.log", ".failed.snakemake.log")
        Path(folder).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, Path(folder) / name)


# ================================================================ end of final outputs and provenance


check_config()
