"""Names of the parameters that appear in artifact paths: build them, parse them, match them.

Every path component that carries parameters has one builder here, a parser that gives the
values back, and a regular expression that matches exactly what the builder writes:

- view: ``center``, ``gradcam-f0.5`` -- :func:`view_name`, :func:`parse_view`, :data:`VIEW`;
  a target's own view (several targets: the gradcam view's crops are each target's),
  ``gradcam-f0.5@resnet18-random`` -- :func:`target_view`, :func:`parse_view` (``target``),
  :data:`TARGET_VIEW`
- similarity: ``cos``, ``tvmf-k16`` -- :func:`sim_name`, :func:`parse_sim`, :data:`SIM`
- cosine file: ``cos.npz``, ``cos-f16.npz`` (the stored dtype) -- :func:`cosine_file_name`,
  :func:`parse_cosine_file_name`, :data:`COSINE_FILE`
- WWW method: ``www-center-tvmf-k16-n40-a0.95`` -- :func:`www_method_name`,
  :func:`parse_www_method`, :data:`WWW_METHOD`
- CLIP-Dissect method: ``softwpmi-center-cos-k100`` -- :func:`clip_dissect_method_name`,
  :func:`parse_clip_dissect_method`, :data:`CLIP_DISSECT_METHOD`
- ConVis grid: ``anchored64-128-stride16[-noise][-r224]`` -- :func:`convis_grid_name`,
  :func:`parse_convis_grid`, :data:`CONVIS_GRID`
- ConVis shard (logs of rank-volume jobs): ``shard0003`` -- :func:`convis_shard_name`,
  :func:`parse_convis_shard`, :data:`CONVIS_SHARD`
- image shard (rows of a probe manifest an image-stage job reads): ``rows0-10000`` --
  :func:`image_shard_name`, :func:`parse_image_shard`, :data:`IMAGE_SHARD`
- layer: ``layer4-mean``, ``blocks.11-cls``, ``fc`` -- :func:`layer_name`,
  :func:`parse_layer_name`, :data:`LAYER`: a module path and how its output becomes one
  value per neuron (none for ``[B, K]`` outputs)
- model: ``resnet50-IMAGENET1K_V1`` -- :func:`model_tag` (an architecture may hold ``-``,
  so a tag is not parsed back), matched by :data:`MODEL_TAG`; the sentence model
  ``all-mpnet-base-v2`` -- :func:`sentence_model_tag`
- crop (the parameters of a gradcam view, naming its crop boxes): ``f0.5`` --
  :func:`gradcam_crop`, :func:`parse_gradcam_crop`, :data:`GRADCAM_CROP`
- ConVis definitions as a concept set: ``convis-demo`` -- :func:`convis_concept_set_name`,
  :func:`parse_convis_concept_set_name`

Paths are made of these names in :mod:`neuron_concepts.paths`.

Views, similarities and methods are declared once, in the registries below (:data:`VIEWS`,
:data:`SIMILARITIES`, :data:`WWW`, :data:`CLIP_DISSECT`): a parameter added to one of them
is written into every name of that kind, parsed back from paths and matched by the
workflow's wildcard constraints (:data:`WILDCARDS`). A parameter's value comes from the
config section of its kind (``gradcam``, ``tvmf``, ``methods.www``, ...) under the
parameter's own name, or from its default (neuron_concepts.settings reads them).

Values stay numbers until they reach a name; :meth:`Param.format` writes them, ``:g`` for
reals. No config access and no torch here: the rule files import this at parse time.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import NamedTuple, Union

# ---------------------------------------------------------------- value patterns

INTEGER = r"[0-9]+"
NUMBER = r"[0-9]+(?:\.[0-9]+)?(?:e[-+][0-9]+)?"  # what f"{x:g}" writes for x >= 0
CONFIG_NAME = r"[A-Za-z0-9_.]+"  # names the config gives: probe sets, concept sets, vocabularies
MODEL_TAG = r"[^/]+"  # model_tag: one path component
VIEW_TARGET = r"[^/@]+"  # a model tag as a view names it (target_view): no "@"
SYNSET = r"[^/]+\.n\.[0-9]+"  # a WordNet noun synset, e.g. hunting_dog.n.01


def _checked(name: str, pattern: str, what: str) -> str:
    """``name`` if ``pattern`` matches all of it: a builder never writes what its parser refuses."""
    if re.fullmatch(pattern, name) is None:
        raise ValueError(f"{name!r} is not a valid {what} name")
    return name


# ---------------------------------------------------------------- parameters


@dataclass(frozen=True)
class Param:
    """A number written into a name as ``prefix`` + value: ``f0.5``, ``k16``, ``n40``.

    ``name`` is the builder's keyword, the key in parsed values and the config key the
    value comes from; ``default`` stands in when the config section does not set it.
    """

    name: str
    prefix: str
    type: type = float  # int or float
    default: float | int | None = None

    @property
    def value_pattern(self) -> str:
        return INTEGER if self.type is int else NUMBER

    @property
    def pattern(self) -> str:
        """The parameter as it appears in a name, without groups."""
        return re.escape(self.prefix) + self.value_pattern

    def format(self, value: float | int | None) -> str:
        """``prefix`` + value: integers as they are, reals with ``:g`` (0.5, 16, 1e-05)."""
        if value is None:
            raise ValueError(f"no value for the name parameter {self.name!r}")
        if self.type is int:
            if int(value) != value:
                raise ValueError(f"{self.name} must be a whole number, got {value!r}")
            return f"{self.prefix}{int(value):d}"
        return f"{self.prefix}{float(value):g}"

    def parse(self, text: str) -> float | int:
        """The value of a name's parameter text (without the prefix)."""
        return self.type(text)


def _param_values(params: tuple[Param, ...], section: Mapping) -> dict:
    """Each parameter's value from a config section, else its default."""
    return {p.name: section.get(p.name, p.default) for p in params}


# ---------------------------------------------------------------- kinds with parameters (views, similarities)


@dataclass(frozen=True)
class Variant:
    """One kind of a family (view ``gradcam``, similarity ``tvmf``) and the parameters its
    name carries after the kind: ``gradcam-f0.5``, ``tvmf-k16``, or just ``center``."""

    kind: str
    params: tuple[Param, ...] = ()

    @property
    def params_pattern(self) -> str:
        """The parameter part of the name (``f0.5``), without groups; empty without parameters."""
        return "-".join(p.pattern for p in self.params)

    @property
    def pattern(self) -> str:
        return "-".join([re.escape(self.kind), *(p.pattern for p in self.params)])

    @property
    def regex(self) -> re.Pattern:
        """The name with one named group per parameter."""
        return re.compile("-".join([re.escape(self.kind), *(
            f"{re.escape(p.prefix)}(?P<{p.name}>{p.value_pattern})" for p in self.params)]))

    def name(self, values: Mapping) -> str:
        unknown = set(values) - {p.name for p in self.params}
        if unknown:
            raise ValueError(f"{self.kind} has no name parameters {sorted(unknown)} "
                             f"(it has {[p.name for p in self.params]})")
        return "-".join([self.kind, *(p.format(values.get(p.name, p.default)) for p in self.params)])


@dataclass(frozen=True)
class Parsed:
    """A parsed view or similarity name: its kind and its parameters' values."""

    name: str
    kind: str
    params: dict = field(default_factory=dict)
    suffix: str = ""  # a view's GPU_DECODE_SUFFIX, or nothing
    target: str | None = None  # the target of a target's own view (target_view), or None

    @property
    def base(self) -> str:
        """The name without its target (``gradcam-f0.5+gpudecode`` of
        ``gradcam-f0.5+gpudecode@resnet18-random``): the name methods carry."""
        if self.target is None:
            return self.name
        return self.name[:len(self.name) - len(self.target) - len(TARGET_SEPARATOR)]

    @property
    def params_part(self) -> str:
        """The name after the kind (``f0.5`` of ``gradcam-f0.5``), without a suffix or a
        target; empty without parameters."""
        return self.base[len(self.kind) + 1:len(self.base) - len(self.suffix)]


@dataclass(frozen=True)
class Family:
    """The kinds a path component can be (views: center, gradcam), each with its parameters."""

    what: str  # the word in messages
    variants: dict[str, Variant]
    suffixes: tuple[str, ...] = ()  # what may follow any member's name (a view's decode path)
    targeted: bool = False  # a name may end in TARGET_SEPARATOR + a target (a target's view)

    @property
    def pattern(self) -> str:
        """Any member's name without a target, without named groups (so patterns can be
        combined): what method names carry."""
        suffix = f"(?:{'|'.join(re.escape(s) for s in self.suffixes)})?" if self.suffixes else ""
        return "(?:" + "|".join(v.pattern for v in self.variants.values()) + ")" + suffix

    @property
    def targeted_pattern(self) -> str:
        """Any member's name, with a target where the family has them (:data:`TARGET_VIEW`)."""
        if not self.targeted:
            return self.pattern
        return f"{self.pattern}(?:{re.escape(TARGET_SEPARATOR)}{VIEW_TARGET})?"

    def variant(self, kind: str) -> Variant:
        if kind not in self.variants:
            raise ValueError(f"unknown {self.what} {kind!r}: use one of {sorted(self.variants)}")
        return self.variants[kind]

    def param_values(self, kind: str, section: Mapping) -> dict:
        """The parameters of ``kind`` taken from its config section (defaults for the rest)."""
        return _param_values(self.variant(kind).params, section)

    def name(self, kind: str, values: Mapping) -> str:
        return _checked(self.variant(kind).name(values), self.pattern, self.what)

    def parse(self, name: str) -> Parsed:
        base, target = name, None
        if self.targeted and TARGET_SEPARATOR in name:
            base, _, target = name.rpartition(TARGET_SEPARATOR)
            if re.fullmatch(VIEW_TARGET, target) is None:
                base, target = name, None  # not a target: no variant matches below
        suffix = next((s for s in self.suffixes if base.endswith(s)), "")
        for variant in self.variants.values():
            match = variant.regex.fullmatch(base[:len(base) - len(suffix)])
            if match:
                return Parsed(name, variant.kind, {p.name: p.parse(match[p.name]) for p in variant.params},
                              suffix, target)
        raise ValueError(f"{name!r} is not a {self.what} name (expected one of: "
                         + ", ".join(v.pattern for v in self.variants.values()) + ")")


# ---------------------------------------------------------------- names made of fields (methods)


@dataclass(frozen=True)
class Member:
    """A field of a composite name that holds a family member's name (a view, a similarity)."""

    name: str
    family: Family


Field = Union[str, Member, Param]  # a literal word, a family member, a parameter


@dataclass(frozen=True)
class Scheme:
    """A name made of fields joined by ``-``: ``www-{view}-{sim}-n{n_images}-a{alpha}``."""

    what: str
    fields: tuple[Field, ...]

    @property
    def params(self) -> tuple[Param, ...]:
        return tuple(f for f in self.fields if isinstance(f, Param))

    def _field_pattern(self, f: Field, named: bool) -> str:
        if isinstance(f, str):
            return re.escape(f)
        inner = f.family.pattern if isinstance(f, Member) else f.value_pattern
        group = f"(?P<{f.name}>{inner})" if named else inner
        return group if isinstance(f, Member) else re.escape(f.prefix) + group

    @property
    def pattern(self) -> str:
        """The whole name without named groups: a wildcard constraint."""
        return "-".join(self._field_pattern(f, named=False) for f in self.fields)

    @property
    def regex(self) -> re.Pattern:
        return re.compile("-".join(self._field_pattern(f, named=True) for f in self.fields))

    def param_values(self, section: Mapping) -> dict:
        """The scheme's parameters taken from a config section (defaults for the rest)."""
        return _param_values(self.params, section)

    def name(self, **values) -> str:
        named = {f.name for f in self.fields if not isinstance(f, str)}
        unknown = set(values) - named
        if unknown:
            raise ValueError(f"a {self.what} name has no fields {sorted(unknown)} (it has {sorted(named)})")
        parts = []
        for f in self.fields:
            if isinstance(f, str):
                parts.append(f)
            elif isinstance(f, Member):
                if f.name not in values:
                    raise ValueError(f"a {self.what} name needs its {f.name}")
                parts.append(values[f.name])
            else:
                parts.append(f.format(values.get(f.name, f.default)))
        return _checked("-".join(parts), self.pattern, self.what)

    def parse(self, name: str) -> dict:
        """Field values: member names as text, parameters as numbers."""
        match = self.regex.fullmatch(name)
        if match is None:
            raise ValueError(f"{name!r} is not a {self.what} name (pattern {self.pattern})")
        return {f.name: (f.parse(match[f.name]) if isinstance(f, Param) else match[f.name])
                for f in self.fields if not isinstance(f, str)}


# ================================================================ the registries
# The one place that says what each name holds. Add a parameter to a view or a method here,
# with a default until the config schema offers it; paths, parsing and the workflow's
# wildcard constraints follow.

#: What :data:`settings.Scale.image_decode` ``gpu`` adds to a view's name in the image
#: stages' paths (``center+gpudecode``): nvJPEG decoding and GPU resizing are ours, not
#: the models' PIL pipeline, so their artifacts never stand in for the PIL ones.
GPU_DECODE_SUFFIX = "+gpudecode"
IMAGE_DECODES = ("pil", "gpu")
#: What joins a view and the target whose own it is (:func:`target_view`):
#: ``gradcam-f0.5@resnet18-random``, the Grad-CAM crops of that target in the CLIP stages'
#: paths (image embeddings, similarity) of a run with several targets.
TARGET_SEPARATOR = "@"

VIEWS = Family("view", {
    "center": Variant("center"),  # the model's own preprocessing
    "gradcam": Variant("gradcam", (Param("crop_fraction", "f"),)),  # config section gradcam
}, suffixes=(GPU_DECODE_SUFFIX,), targeted=True)

SIMILARITIES = Family("similarity", {
    "cos": Variant("cos"),
    "tvmf": Variant("tvmf", (Param("kappa", "k"),)),  # config section tvmf
})

CLIP_DISSECT_VARIANTS = Family("CLIP-Dissect variant", {
    "softwpmi": Variant("softwpmi"),
    "wpmi": Variant("wpmi"),
})

# Parameters from methods.www.
WWW = Scheme("WWW method", (
    "www", Member("view", VIEWS), Member("sim", SIMILARITIES),
    Param("n_images", "n", int), Param("alpha", "a"),
))

# top_k from methods.clip_dissect.<variant> (the stability study sets it to each of its ks).
# a, lam, p_start and p_end are the rule's params, not part of the name: changing them
# reruns the descriptions in place.
CLIP_DISSECT = Scheme("CLIP-Dissect method", (
    Member("variant", CLIP_DISSECT_VARIANTS), Member("view", VIEWS), Member("sim", SIMILARITIES),
    Param("top_k", "k", int),
))


# ---------------------------------------------------------------- views


VIEW = VIEWS.pattern
#: A view with or without a target (:func:`target_view`): what a path's ``{view}`` may be.
TARGET_VIEW = VIEWS.targeted_pattern
# The parameter part of a gradcam view (``f0.5``): it also names that view's crop boxes.
GRADCAM_CROP = VIEWS.variants["gradcam"].params_pattern


def view_name(kind: str, **params: float) -> str:
    """A view as it appears in paths: ``center``, ``gradcam-f0.5`` (crop fraction 0.5)."""
    return VIEWS.name(kind, params)


def parse_view(name: str) -> Parsed:
    """Kind and parameters of a view name: ``gradcam-f0.5`` -> gradcam, crop_fraction 0.5
    (``suffix``: :data:`GPU_DECODE_SUFFIX` when its images were decoded on the GPU;
    ``target``: the target of a target's own view, :func:`target_view`, else None)."""
    return VIEWS.parse(name)


def target_view(view: str, target: str) -> str:
    """A target's own view: ``gradcam-f0.5@resnet18-random``, the view whose crops are that
    target's (its Grad-CAM boxes), named so in the CLIP stages' paths of a run with several
    targets. ``view`` is a view without a target (a ``+gpudecode`` suffix stays before ``@``)."""
    if parse_view(view).target is not None:
        raise ValueError(f"{view!r} already names its target")
    return _checked(f"{view}{TARGET_SEPARATOR}{target}", TARGET_VIEW, "target's view")


def untargeted_view(view: str) -> str:
    """A view without its target (:func:`target_view`): ``gradcam-f0.5@resnet18-random`` ->
    ``gradcam-f0.5``; a view without one as it is."""
    return parse_view(view).base


def decoded_view(view: str, decode: str) -> str:
    """A view's name for the image stages' decode path (``scale.image_decode``): as it is
    for ``pil``, the models' own pipeline; ``center+gpudecode`` for ``gpu``. A target's view
    keeps its target: ``gradcam-f0.5+gpudecode@resnet18-random``."""
    if decode not in IMAGE_DECODES:
        raise ValueError(f"unknown image decode {decode!r}: use one of {IMAGE_DECODES}")
    parsed = VIEWS.parse(view)
    plain = parsed.base[:len(parsed.base) - len(parsed.suffix)]
    decoded = _checked(plain + (GPU_DECODE_SUFFIX if decode == "gpu" else ""), VIEW, "view")
    return decoded if parsed.target is None else target_view(decoded, parsed.target)


def view_decode(view: str) -> str:
    """``gpu`` when a view's images are decoded on the GPU (:func:`decoded_view`), else ``pil``."""
    return "gpu" if parse_view(view).suffix == GPU_DECODE_SUFFIX else "pil"


def gradcam_crop(view: str) -> str | None:
    """The crop of a view, the parameter part of a gradcam view (``gradcam-f0.5`` -> ``f0.5``)
    that names its crop boxes; None for a view that does not crop (``center``)."""
    parsed = parse_view(view)
    return parsed.params_part if parsed.kind == "gradcam" else None


def parse_gradcam_crop(crop: str) -> dict:
    """The parameters of a crop name (:func:`gradcam_crop`): ``f0.5`` -> crop_fraction 0.5."""
    if re.fullmatch(GRADCAM_CROP, crop) is None:
        raise ValueError(f"{crop!r} is no gradcam crop name (e.g. f0.5)")
    return parse_view(f"gradcam-{crop}").params


# ---------------------------------------------------------------- layers


#: A module path as ``nn.Module.get_submodule`` takes it: ``layer4``, ``blocks.11.norm1``.
MODULE_PATH = r"[A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)*"
#: How a layer's output becomes one value per neuron (neuron_concepts.layers): conv maps
#: (channels first or last) take ``mean`` or ``max`` over positions; token sequences
#: ``mean`` or ``max`` over patch tokens, or ``cls`` (token 0).
LAYER_REDUCTIONS = ("mean", "max", "cls")
LAYER = rf"{MODULE_PATH}(?:-(?:{'|'.join(LAYER_REDUCTIONS)}))?"


class LayerName(NamedTuple):
    """A parsed layer name: the module path and its reduction (None: the output is ``[B, K]``)."""

    layer: str
    reduction: str | None


def layer_name(layer: str, reduction: str | None = None) -> str:
    """A layer as it appears in paths: ``layer4-mean`` (spatial mean of a conv map),
    ``blocks.11-cls`` (a transformer's class token), ``fc`` (already one value per neuron)."""
    if reduction is not None and reduction not in LAYER_REDUCTIONS:
        raise ValueError(f"unknown layer reduction {reduction!r}: use one of {LAYER_REDUCTIONS}")
    return _checked(layer if reduction is None else f"{layer}-{reduction}", LAYER, "layer")


def parse_layer_name(name: str) -> LayerName:
    """Module path and reduction of a layer name: ``blocks.11-cls`` -> (blocks.11, cls)."""
    if re.fullmatch(LAYER, name) is None:
        raise ValueError(f"{name!r} is no layer name (a module path, then -mean, -max or -cls "
                         "where the output is a map or tokens, e.g. layer4-mean)")
    layer, _, reduction = name.partition("-")
    return LayerName(layer, reduction or None)


# ---------------------------------------------------------------- models
# No torch here: the rule files name models at parse time (neuron_concepts.models loads them).

#: The weights value that asks for seeded random initialisation (config ``weights: random``).
RANDOM = "random"
_CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".ckpt")


def looks_like_path(weights: str) -> bool:
    """Whether a weights value (or a model name) names a local file or folder rather than a tag."""
    return "/" in weights or weights.endswith(_CHECKPOINT_SUFFIXES)


def weights_label(weights: str) -> str:
    """The weights part of a model's name: a tag, ``random``, or ``ckpt-<file stem>``."""
    if weights == RANDOM:
        return RANDOM
    if looks_like_path(weights):
        return "ckpt-" + PurePath(weights).name.split(".")[0]
    return weights


def model_tag(arch: str, weights: str) -> str:
    """The name of a model in artifact paths, e.g. ``resnet50-IMAGENET1K_V1``."""
    return f"{arch}-{weights_label(weights)}"


def sentence_model_tag(name: str) -> str:
    """The sentence model's name in paths: ``random`` for random weights, a
    sentence-transformers name as it is (``all-mpnet-base-v2``), a local folder by its last
    component; any run of characters outside ``[A-Za-z0-9_.-]`` becomes ``--``."""
    if name == RANDOM:
        return RANDOM
    if looks_like_path(name):
        name = PurePath(name).name
    return _checked(re.sub(r"[^A-Za-z0-9_.-]+", "--", name), MODEL_TAG, "sentence model")


# ---------------------------------------------------------------- similarities


SIM = SIMILARITIES.pattern


class Similarity(NamedTuple):
    """A parsed similarity name; a tuple (kind, kappa) as the scoring functions take it.

    kappa is 0 for the cosine, the t-vMF concentration that gives the cosine back.
    """

    kind: str
    kappa: float


def sim_name(kind: str, kappa: float | None = None) -> str:
    """A similarity as it appears in method names: ``cos`` or ``tvmf-k<kappa>`` (``tvmf-k16``).

    kappa is ignored for ``cos``, so a caller may pass the configured tvmf.kappa for any kind.
    """
    params = SIMILARITIES.variant(kind).params
    return SIMILARITIES.name(kind, {"kappa": kappa} if params else {})


def parse_sim(name: str) -> Similarity:
    """(kind, kappa) of a similarity name: ``tvmf-k16`` -> (tvmf, 16.0), ``cos`` -> (cos, 0.0)."""
    parsed = SIMILARITIES.parse(name)
    return Similarity(parsed.kind, float(parsed.params.get("kappa", 0.0)))


# ---------------------------------------------------------------- cosine files
# A similarity file's name says the dtype of its cosines (scale.cosine_dtype): ``cos.npz``
# float32 (the default, and every earlier file), ``cos-f16.npz`` float16 (ours).

COSINE_FILE_SUFFIXES = {"float32": "", "float16": "-f16"}
COSINE_FILE = r"cos(?:-f16)?\.npz"


def cosine_file_name(dtype: str = "float32") -> str:
    """The file name of a similarity artifact whose cosines are ``dtype``: ``cos.npz``
    (float32) or ``cos-f16.npz`` (float16)."""
    if dtype not in COSINE_FILE_SUFFIXES:
        raise ValueError(f"cosines are stored as {' or '.join(COSINE_FILE_SUFFIXES)}, not {dtype!r}")
    return _checked(f"cos{COSINE_FILE_SUFFIXES[dtype]}.npz", COSINE_FILE, "cosine file")


def parse_cosine_file_name(name: str) -> str:
    """The cosines' dtype of a similarity file name (:func:`cosine_file_name`):
    ``cos-f16.npz`` -> ``float16``."""
    for dtype, suffix in COSINE_FILE_SUFFIXES.items():
        if name == f"cos{suffix}.npz":
            return dtype
    raise ValueError(f"{name!r} is no cosine file name (cos.npz or cos-f16.npz)")


# ---------------------------------------------------------------- methods


WWW_METHOD = WWW.pattern
CLIP_DISSECT_METHOD = CLIP_DISSECT.pattern


def www_method_name(view: str, sim: str, **params: float) -> str:
    """A WWW method with its parameters: ``www-{view}-{sim}-n{n_images}-a{alpha}``.

    ``params``: n_images, alpha (and any parameter added to :data:`WWW`).
    """
    return WWW.name(view=view, sim=sim, **params)


def parse_www_method(name: str) -> dict:
    """view and sim (names) and the parameters (numbers) of a WWW method name."""
    return WWW.parse(name)


def clip_dissect_method_name(variant: str, view: str, sim: str, **params: float) -> str:
    """A CLIP-Dissect method with its parameters: ``{variant}-{view}-{sim}-k{top_k}``."""
    return CLIP_DISSECT.name(variant=variant, view=view, sim=sim, **params)


def parse_clip_dissect_method(name: str) -> dict:
    """variant, view and sim (names) and top_k of a CLIP-Dissect method name."""
    return CLIP_DISSECT.parse(name)


# Any described method: what evaluation reads.
METHOD = f"(?:{WWW_METHOD}|{CLIP_DISSECT_METHOD})"


# ---------------------------------------------------------------- ConVis concept sets
# A ConVis vocabulary's definitions are a concept set of their own (rule convis_vocabulary),
# named with a hyphen that no configured concept set may hold (CONFIG_NAME).

CONVIS_CONCEPTS_PREFIX = "convis-"


def convis_concept_set_name(vocab: str) -> str:
    """The concept set of a ConVis vocabulary's definitions: ``convis-demo``. A wildcard
    (``{vocab}``) gives the pattern."""
    return f"{CONVIS_CONCEPTS_PREFIX}{vocab}"


def parse_convis_concept_set_name(name: str) -> str:
    """The vocabulary of a ConVis concept set name (:func:`convis_concept_set_name`)."""
    vocab = name[len(CONVIS_CONCEPTS_PREFIX):]
    if not name.startswith(CONVIS_CONCEPTS_PREFIX) or re.fullmatch(CONFIG_NAME, vocab) is None:
        raise ValueError(f"{name!r} is no ConVis concept set name (e.g. convis-demo)")
    return vocab


# ---------------------------------------------------------------- ConVis grids


CONVIS_GRID = r"anchored[0-9]+(?:-[0-9]+)*-stride[0-9]+(?:-noise)?(?:-r[0-9]+)?"
_CONVIS_GRID = re.compile(r"anchored(?P<sizes>[0-9]+(?:-[0-9]+)*)-stride(?P<stride>[0-9]+)"
                          r"(?P<noise>-noise)?(?:-r(?P<resize>[0-9]+))?")


def convis_grid_name(patch_sizes: list[int], stride: int, padding: str = "none",
                     resize: int | None = None) -> str:
    """The folder of a ConVis patch grid: ``anchored64-128-stride16`` (patch sides sorted,
    sharing a top-left corner; grid step), ``-noise`` for the noise-padded grid, ``-r224``
    for a centre crop resized to 224 px. The geometry is in the name, so volumes of one
    geometry are never reused for another."""
    if padding not in ("none", "noise"):
        raise ValueError(f"unknown ConVis padding {padding!r}: use 'none' or 'noise'")
    noise = "-noise" if padding == "noise" else ""
    size = f"-r{int(resize):d}" if resize else ""
    sizes = "-".join(f"{int(s):d}" for s in sorted(patch_sizes))
    return _checked(f"anchored{sizes}-stride{int(stride):d}{noise}{size}", CONVIS_GRID, "ConVis grid")


def parse_convis_grid(name: str) -> dict:
    """sizes, stride, padding (``none`` or ``noise``) and resize (None: native) of a grid name."""
    match = _CONVIS_GRID.fullmatch(name)
    if match is None:
        raise ValueError(f"{name!r} is no ConVis grid folder (e.g. anchored64-128-stride16, "
                         "...-noise, ...-r224)")
    return dict(sizes=[int(size) for size in match["sizes"].split("-")], stride=int(match["stride"]),
                padding="noise" if match["noise"] else "none",
                resize=int(match["resize"]) if match["resize"] else None)


# ---------------------------------------------------------------- ConVis shards and volumes
# A rank-volume job embeds a shard of a folder's images: the folder's image ids sorted and cut
# into chunks (rules/helpers/convis.smk). The shard is named in the job's log and rule name
# only; every image's volume keeps its own path, so the maps never see the shard layout.


CONVIS_SHARD = r"shard[0-9]{4,}"


def convis_shard_name(index: int) -> str:
    """The name of a folder's ``index``-th rank-volume shard (from 0): ``shard0003``."""
    if int(index) < 0:
        raise ValueError(f"a ConVis shard index is not negative, got {index}")
    return _checked(f"shard{int(index):04d}", CONVIS_SHARD, "ConVis shard")


def parse_convis_shard(name: str) -> int:
    """The index of a shard name (:func:`convis_shard_name`)."""
    if re.fullmatch(CONVIS_SHARD, name) is None:
        raise ValueError(f"{name!r} is no ConVis shard name (e.g. shard0003)")
    return int(name[len("shard"):])


# ---------------------------------------------------------------- image shards
# An image stage (activations, Grad-CAM, image embeddings) of a large probe set runs as jobs
# over ranges of manifest rows, each writing the artifact's shard; a join writes the
# artifact at its usual path. A shard is named by its rows, so a new images_per_job writes
# new shards and never mistakes an old one for its own.


IMAGE_SHARD = r"rows[0-9]+-[0-9]+"


def image_shard_name(start: int, stop: int) -> str:
    """The shard of manifest rows ``start`` (inclusive) to ``stop`` (exclusive): ``rows0-10000``."""
    if not 0 <= int(start) <= int(stop):
        raise ValueError(f"an image shard runs from row 0 <= start <= stop, got {start}, {stop}")
    return _checked(f"rows{int(start):d}-{int(stop):d}", IMAGE_SHARD, "image shard")


def parse_image_shard(name: str) -> tuple[int, int]:
    """(start, stop) of an image shard name (:func:`image_shard_name`)."""
    if re.fullmatch(IMAGE_SHARD, name) is None:
        raise ValueError(f"{name!r} is no image shard name (e.g. rows0-10000)")
    start, stop = name[len("rows"):].split("-")
    return int(start), int(stop)


def ood_reference_probe_name(train_probe: str) -> str:
    """The probe set of ConVis OOD's reference images, the classes of ``train_probe`` that
    the image baseline reads: ``imagenet_train.ood_classes``."""
    return _checked(f"{train_probe}.ood_classes", CONFIG_NAME, "probe set")




# ================================================================ wildcard constraints
# Wildcard name in the rule files -> what it may match. The workflow declares these once,
# globally (rules/common.smk); a rule declares its own only for a narrower, rule-specific
# match. No named groups: Snakemake wraps each in its own.

WILDCARDS: dict[str, str] = {
    "probe": CONFIG_NAME,
    "vocab": CONFIG_NAME,
    "target": MODEL_TAG,
    "clip": MODEL_TAG,
    "model": MODEL_TAG,
    "view": TARGET_VIEW,  # a target's own view in the CLIP stages' paths (target_view)
    "layer": LAYER,
    "crop": GRADCAM_CROP,
    "www_method": WWW_METHOD,
    "clip_dissect_method": CLIP_DISSECT_METHOD,
    "method": METHOD,
    "convis_grid": CONVIS_GRID,
    "synset": SYNSET,
    "shard": IMAGE_SHARD,
}
