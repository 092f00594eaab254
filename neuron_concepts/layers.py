"""Neurons of any layer: how a layer's output becomes one value per neuron.

A target layer is a module path (``layer4``, ``blocks.11``, ``stages.2``). What its forward
returns depends on the family, and each kind of output has a declared layout and a
declared reduction to ``[B, K]``, named in every artifact path (:func:`names.layer_name`):

==========  ===================  =========================================  ==================
layout      output               reductions (default first)                 path name
==========  ===================  =========================================  ==================
``vector``  ``[B, K]``           none: already one value per neuron         ``fc``
``nchw``    ``[B, K, h, w]``     ``mean`` / ``max`` over positions          ``layer4-mean``
``nhwc``    ``[B, h, w, K]``     ``mean`` / ``max`` over positions          ``layers.3-mean``
``tokens``  ``[B, T, K]``        ``mean`` / ``max`` over patch tokens,      ``blocks.11-cls``
                                 ``cls`` (token 0)
==========  ===================  =========================================  ==================

The layout is *detected, never guessed*: the channel count ``K`` is read from the module
itself (the last of its submodules that declares one: ``out_channels``, ``out_features``,
``num_features``, ``normalized_shape``), and a 4-d output is channels-first when its axis 1
is ``K`` and channels-last when its axis 3 is; a 3-d output is a token sequence ``[B, T, K]``
(``[T, B, K]``, as older open_clip towers give it, is recognised by where the batch axis
is). Where that is ambiguous (``K`` equal to a spatial size, or no channel count) a known
module type decides (``Conv2d``, ``BatchNorm2d``: channels-first; timm's Swin blocks and
stages: channels-last), else the layer stops with a message that names its output shape and
the key ``target.layer_options.<layer>.layout`` to declare it. Patch-token reductions skip
the class and register tokens at the start of the sequence (``prefix_tokens``: timm's
``num_prefix_tokens``, else one when the model has a class token).

Outputs that are tuples or lists take element 0 (attention blocks return ``(x, weights)``),
dicts need ``target.layer_options.<layer>.output`` to name a key; any element can be chosen
that way.

:func:`inspect_model` runs one forward of a dummy batch and records every module's output,
the model's final classifier layer and a Grad-CAM layer; :func:`target_layers` does it for
the configured target when the workflow plans (cached per model, so planning imports torch
once per model, not per run). ``python -m neuron_concepts.layers MODEL --source timm`` prints
the table a user picks ``target.layers`` from.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from . import lazy, names
from .errors import ConfigError

torch = lazy.module("torch")
nn = lazy.module("torch.nn")

LAYOUTS = ("vector", "nchw", "nhwc", "tokens")
#: Reductions each layout allows; the first is the default unless the config says otherwise.
REDUCTIONS: dict[str, tuple[str, ...]] = {
    "vector": (), "nchw": ("mean", "max"), "nhwc": ("mean", "max"), "tokens": ("mean", "cls", "max")}
#: Module classes (by name) whose 4-d output layout is known when the channel count cannot
#: tell (K equal to a spatial size).
CHANNELS_FIRST_TYPES = {"Conv2d", "BatchNorm2d", "ConvTranspose2d", "MaxPool2d", "AvgPool2d",
                        "AdaptiveAvgPool2d", "Bottleneck", "BasicBlock", "ReLU", "GroupNorm"}
CHANNELS_LAST_TYPES = {"SwinTransformerBlock", "SwinTransformerStage", "SwinTransformerV2Block",
                       "SwinTransformerV2Stage", "PatchMerging"}
#: Bump when what :func:`inspect_model` records changes: it is part of the cache key.
INSPECTION_VERSION = 1
_DUMMY_BATCH = 3  # a batch size unlikely to equal a token count or a channel count


def _key(layer: str, option: str) -> str:
    return f"target.layer_options.{layer}.{option}"


# ---------------------------------------------------------------- one layer's output


@dataclass(frozen=True)
class LayerOutput:
    """What one module's forward gives for the dummy batch of :func:`inspect_model`.

    ``shape`` is the full shape of its output tensor (batch axis included; of element 0 of
    a tuple, of the only tensor of a dict); ``elements`` the shapes of every tensor element
    of a tuple, list or dict output. ``channels`` is what the module declares
    (:func:`declared_channels`). ``layout`` and ``neurons`` are detected from these, or
    None where they cannot be; ``problem`` then says why.
    """

    path: str
    module_type: str
    shape: tuple[int, ...]
    channels: int | None
    layout: str | None
    neurons: int | None
    sequence_first: bool = False
    elements: dict[str, tuple[int, ...]] | None = None
    problem: str | None = None

    @property
    def image_shape(self) -> tuple[int, ...]:
        """One image's output shape: the batch axis removed."""
        axis = 1 if self.sequence_first else 0
        return self.shape[:axis] + self.shape[axis + 1:]


@dataclass(frozen=True)
class LayerNeurons:
    """A target layer as the pipeline reads it: where its neurons come from and how its
    output becomes one value per neuron. What an activations or Grad-CAM job is given."""

    layer: str
    layout: str
    reduction: str | None
    neurons: int
    prefix_tokens: int = 0
    sequence_first: bool = False
    element: str | None = None
    grid: tuple[int, int] | None = None  # tokens: the patch grid (h, w) Grad-CAM reshapes to

    @property
    def name(self) -> str:
        """The layer's name in paths (:func:`names.layer_name`)."""
        return names.layer_name(self.layer, self.reduction)

    def to_dict(self) -> dict:
        """Plain values (a rule's params, JSON)."""
        return {**asdict(self), "grid": list(self.grid) if self.grid else None}

    @classmethod
    def from_dict(cls, values: Mapping) -> "LayerNeurons":
        values = dict(values)
        values["grid"] = tuple(values["grid"]) if values.get("grid") else None
        return cls(**values)


def select_element(output: Any, element: str | None, layer: str) -> "torch.Tensor":
    """The tensor of a layer's output: the output itself, element ``element`` of a tuple or
    list (default 0), or the key ``element`` of a dict (required when it holds several)."""
    if isinstance(output, torch.Tensor):
        if element is not None:
            raise ConfigError(f"{_key(layer, 'output')}: layer {layer!r} returns a tensor, not a "
                              f"tuple or dict; remove the output option")
        return output
    if isinstance(output, (tuple, list)):
        index = 0 if element is None else element
        try:
            chosen = output[int(index)]
        except (ValueError, IndexError):
            raise ConfigError(f"{_key(layer, 'output')}: layer {layer!r} returns a "
                              f"{type(output).__name__} of {len(output)}; give an index below "
                              f"{len(output)}") from None
    elif isinstance(output, Mapping):
        tensors = [k for k, v in output.items() if isinstance(v, torch.Tensor)]
        if element is None and len(tensors) == 1:
            element = tensors[0]
        if element not in output:
            raise ConfigError(f"{_key(layer, 'output')}: layer {layer!r} returns a dict with keys "
                              f"{list(output)}; name the one whose values are the neurons")
        chosen = output[element]
    else:
        raise ConfigError(f"target.layers: layer {layer!r} returns {type(output).__name__}, not "
                          "a tensor; pick another layer (python -m neuron_concepts.layers lists them)")
    if not isinstance(chosen, torch.Tensor):
        raise ConfigError(f"{_key(layer, 'output')}: element {element!r} of layer {layer!r} is "
                          f"{type(chosen).__name__}, not a tensor")
    return chosen


def declared_channels(module: "nn.Module") -> int | None:
    """The channel count a module declares: that of the last of its submodules (itself
    included, in registration order) with ``out_channels``, ``out_features``,
    ``num_features``, ``num_channels`` or ``normalized_shape``; None when none does."""
    found = None
    for sub in module.modules():
        for attribute in ("out_channels", "out_features", "num_features", "num_channels"):
            value = getattr(sub, attribute, None)
            if isinstance(value, int):
                found = value
                break
        else:
            shape = getattr(sub, "normalized_shape", None)
            if isinstance(shape, (tuple, list)) and shape and isinstance(shape[-1], int):
                found = int(shape[-1])
    return found


def detect_layout(shape: Sequence[int], batch: int, layer: str, channels: int | None = None,
                  module_type: str = "", declared: str | None = None) -> tuple[str, int, bool]:
    """(layout, neurons, sequence_first) of an output of ``shape`` (batch axis included) for a
    dummy batch of ``batch`` images, from the channel count its module declares and its
    type; raises a ConfigError naming the layer, the shape and the config key when the
    output cannot become neurons."""
    shape = tuple(int(s) for s in shape)
    declare = (f"declare it with {_key(layer, 'layout')}: nchw, nhwc or tokens, or pick "
               "another layer (python -m neuron_concepts.layers lists them)")
    sequence_first = len(shape) == 3 and shape[0] != batch and shape[1] == batch
    if shape[1 if sequence_first else 0] != batch:
        raise ConfigError(f"target.layers: layer {layer!r} gives an output of shape {shape} for a "
                          f"batch of {batch}: its first axis is not the batch; {declare}")
    if declared is not None:
        if declared not in LAYOUTS:
            raise ConfigError(f"{_key(layer, 'layout')}: {declared!r} is no layout; use one of {LAYOUTS}")
        rank = {"vector": 2, "nchw": 4, "nhwc": 4, "tokens": 3}[declared]
        if len(shape) != rank:
            raise ConfigError(f"{_key(layer, 'layout')}: layer {layer!r} gives shape {shape}, "
                              f"which is not {declared} (a {rank}-d output)")
        axis = {"vector": 1, "nchw": 1, "nhwc": 3, "tokens": 2}[declared]
        return declared, shape[axis], sequence_first
    if len(shape) == 2:
        return "vector", shape[1], False
    if len(shape) == 3:
        return "tokens", shape[2], sequence_first
    if len(shape) == 4:
        first, last = channels == shape[1], channels == shape[3]
        kind = module_type or "module"
        if first and not last:
            return "nchw", shape[1], False
        if last and not first:
            return "nhwc", shape[3], False
        if kind in CHANNELS_FIRST_TYPES:
            return "nchw", shape[1], False
        if kind in CHANNELS_LAST_TYPES:
            return "nhwc", shape[3], False
        why = ("declares no channel count" if channels is None
               else f"declares {channels} channels, which fits both axis 1 and axis 3"
               if first else f"declares {channels} channels, which fits neither axis 1 nor 3")
        raise ConfigError(f"target.layers: layer {layer!r} ({kind}) gives shape {shape} and {why}, "
                          f"so channels-first and channels-last cannot be told apart; {declare}")
    raise ConfigError(f"target.layers: layer {layer!r} gives an output of shape {shape}, which has "
                      f"no neuron axis the pipeline knows ([B, K], [B, K, h, w], [B, h, w, K] or "
                      f"[B, T, K]); {declare}")


# ---------------------------------------------------------------- reductions


def to_batch_first(output: "torch.Tensor", neurons: LayerNeurons) -> "torch.Tensor":
    """The output with the batch axis first (``[T, B, K]`` token sequences transposed)."""
    return output.transpose(0, 1) if neurons.sequence_first else output


def reduce_output(output: Any, neurons: LayerNeurons) -> "torch.Tensor":
    """One value per neuron and image, ``[B, K]``, from a layer's raw output.

    nchw/nhwc: ``mean`` or ``max`` over the positions; tokens: ``mean`` or ``max`` over the
    patch tokens (the first ``prefix_tokens`` skipped), ``cls`` token 0; vector as is.
    """
    x = to_batch_first(select_element(output, neurons.element, neurons.layer), neurons)
    layout, reduction = neurons.layout, neurons.reduction
    if x.ndim != {"vector": 2, "nchw": 4, "nhwc": 4, "tokens": 3}[layout]:
        raise ValueError(f"layer {neurons.layer!r} was declared {layout} but gives shape "
                         f"{tuple(x.shape)}")
    if layout == "vector":
        return x
    if layout == "tokens":
        if reduction == "cls":
            if neurons.prefix_tokens < 1:
                raise ConfigError(f"{_key(neurons.layer, 'reduction')}: cls needs a class token, "
                                  "and this model has none; use mean or max")
            return x[:, 0]
        x = x[:, neurons.prefix_tokens:]
        axes: tuple[int, ...] = (1,)
    else:
        axes = (2, 3) if layout == "nchw" else (1, 2)
    if reduction == "mean":
        return x.mean(dim=axes)
    if reduction == "max":
        return x.amax(dim=axes)
    raise ValueError(f"reduction {reduction!r} does not apply to a {layout} output; use one of "
                     f"{REDUCTIONS[layout]}")


def to_map(x: "torch.Tensor", neurons: LayerNeurons) -> "torch.Tensor":
    """A batch-first layer output as a channels-first map ``[B, K, h, w]`` (Grad-CAM).

    nhwc is permuted; tokens drop the prefix (class and register) tokens and the patch
    tokens are laid out row by row on the patch grid (``neurons.grid``, else the square
    grid their count makes), as ViTs and open_clip towers order them.
    """
    if neurons.layout == "nchw":
        return x
    if neurons.layout == "nhwc":
        return x.permute(0, 3, 1, 2)
    if neurons.layout == "tokens":
        patches = x[:, neurons.prefix_tokens:]
        grid = neurons.grid or square_grid(patches.shape[1], neurons.layer)
        return patches.transpose(1, 2).reshape(x.shape[0], x.shape[2], *grid)
    raise ValueError(f"layer {neurons.layer!r} gives one value per neuron ({neurons.layout}): "
                     "Grad-CAM needs a conv map or patch tokens; set gradcam.layer to such a layer")


def square_grid(tokens: int, layer: str) -> tuple[int, int]:
    """The square grid of ``tokens`` patch tokens; a ConfigError when there is none."""
    side = int(round(tokens ** 0.5))
    if side * side != tokens:
        raise ConfigError(f"layer {layer!r} has {tokens} patch tokens, which make no square grid; "
                          "pick a layer whose tokens are patches (gradcam.layer)")
    return side, side


def prefix_tokens(model: "nn.Module") -> int:
    """Class and register tokens at the start of a ViT's sequence: timm's
    ``num_prefix_tokens``, else one for a class token (torchvision ``class_token``, open_clip
    ``class_embedding``, ``cls_token``) plus any ``reg_token`` registers; 0 otherwise."""
    count = getattr(model, "num_prefix_tokens", None)
    if isinstance(count, int):
        return count
    has_class = any(isinstance(getattr(model, a, None), torch.Tensor)
                    for a in ("class_token", "class_embedding", "cls_token"))
    registers = getattr(model, "reg_token", None)
    extra = int(registers.shape[1]) if isinstance(registers, torch.Tensor) and registers.ndim == 3 else 0
    return int(has_class) + extra


def patch_grid(model: "nn.Module") -> tuple[int, int] | None:
    """The patch grid of a ViT (timm ``patch_embed.grid_size``, open_clip ``grid_size``), if any."""
    for owner in (getattr(model, "patch_embed", None), model):
        grid = getattr(owner, "grid_size", None)
        if isinstance(grid, (tuple, list)) and len(grid) == 2:
            return int(grid[0]), int(grid[1])
    return None


# ---------------------------------------------------------------- inspecting a model


@dataclass
class Inspection:
    """Every module's output for a dummy batch, and what the pipeline derives from them."""

    input_size: int
    outputs: dict[str, LayerOutput]
    final_layer: str | None  # the classifier whose outputs are the model's class scores
    gradcam_layer: str | None  # the default Grad-CAM layer
    prefix_tokens: int = 0
    grid: tuple[int, int] | None = None
    order: list[str] = field(default_factory=list)  # module paths in the order they ran

    def to_json(self) -> dict:
        return {"input_size": self.input_size, "final_layer": self.final_layer,
                "gradcam_layer": self.gradcam_layer, "prefix_tokens": self.prefix_tokens,
                "grid": list(self.grid) if self.grid else None, "order": self.order,
                "outputs": {k: asdict(v) for k, v in self.outputs.items()}}

    @classmethod
    def from_json(cls, values: Mapping) -> "Inspection":
        outputs = {k: LayerOutput(**{**v, "shape": tuple(v["shape"]), "elements": None
                                     if v["elements"] is None else
                                     {e: tuple(s) for e, s in v["elements"].items()}})
                   for k, v in values["outputs"].items()}
        return cls(values["input_size"], outputs, values["final_layer"], values["gradcam_layer"],
                   values["prefix_tokens"], tuple(values["grid"]) if values["grid"] else None,
                   list(values["order"]))


def inspect_model(model: "nn.Module", input_size: int, classifier: bool = True) -> Inspection:
    """One forward of a dummy batch through ``model`` (eval mode, CPU) with a hook on every
    module: each module's output shape and detected layout (or why none), the final
    classifier layer (the innermost ``nn.Linear`` whose output is the model's output; none
    when ``classifier`` is False, as for CLIP image towers) and the default Grad-CAM layer
    (:func:`default_gradcam_layer`)."""
    modules = dict(model.named_modules())
    seen: dict[str, Any] = {}
    order: list[str] = []

    def record(path):
        def hook(_module, _inputs, output):
            if path not in seen:
                order.append(path)
            seen[path] = output
        return hook

    handles = [module.register_forward_hook(record(path)) for path, module in modules.items() if path]
    generator = torch.Generator().manual_seed(0)
    dummy = torch.randn(_DUMMY_BATCH, 3, input_size, input_size, generator=generator)
    try:
        with torch.inference_mode():
            result = model.eval()(dummy)
    finally:
        for handle in handles:
            handle.remove()
    outputs = _follow_layouts({path: _layer_output(path, modules[path], seen[path]) for path in order})
    final = None
    if classifier and isinstance(result, torch.Tensor) and result.ndim == 2:
        for path in order:
            if isinstance(modules[path], nn.Linear) and seen[path] is result:
                final = path
                break
    return Inspection(input_size, outputs, final, default_gradcam_layer(outputs, order, final),
                      prefix_tokens(model), patch_grid(model), order)


def _follow_layouts(outputs: dict[str, LayerOutput]) -> dict[str, LayerOutput]:
    """A 4-d output of a module that declares no channel count (activation, dropout,
    identity, pooling) takes the layout of the latest module before it, in the order they
    ran, whose output had the same shape: these modules keep their input's layout."""
    last: dict[tuple[int, ...], LayerOutput] = {}
    for path, out in outputs.items():
        if out.layout is None and out.channels is None and len(out.shape) == 4 and out.shape in last:
            source = last[out.shape]
            out = LayerOutput(out.path, out.module_type, out.shape, None, source.layout,
                              source.neurons, False, out.elements)
            outputs[path] = out
        if out.layout is not None:
            last[out.shape] = out
    return outputs


def _tensor_shapes(output: Any) -> dict[str, tuple[int, ...]] | None:
    """Shapes of the tensor elements of a tuple, list or dict output; None for a tensor."""
    if isinstance(output, (tuple, list)):
        return {str(i): tuple(v.shape) for i, v in enumerate(output) if isinstance(v, torch.Tensor)}
    if isinstance(output, Mapping):
        return {str(k): tuple(v.shape) for k, v in output.items() if isinstance(v, torch.Tensor)}
    return None


def _layer_output(path: str, module: "nn.Module", output: Any) -> LayerOutput:
    """The :class:`LayerOutput` of one module's output for the dummy batch."""
    kind, channels, elements = type(module).__name__, declared_channels(module), _tensor_shapes(output)
    try:
        shape = tuple(select_element(output, None, path).shape)
    except ConfigError as error:
        return LayerOutput(path, kind, (), channels, None, None, elements=elements, problem=str(error))
    try:
        layout, neurons, sequence_first = detect_layout(shape, _DUMMY_BATCH, path, channels, kind)
        return LayerOutput(path, kind, shape, channels, layout, neurons, sequence_first, elements)
    except ConfigError as error:
        return LayerOutput(path, kind, shape, channels, None, None, False, elements, str(error))


def default_gradcam_layer(outputs: Mapping[str, LayerOutput], order: Sequence[str],
                          final_layer: str | None) -> str | None:
    """The layer Grad-CAM takes by default, per family:

    - transformers (any module named ``norm1`` or ``ln_1``: timm ViT, DeiT, Swin, open_clip
      ViT): the first normalisation of the last block, the input of its attention (the
      last block's output reaches the head through the class token alone, so its patch
      tokens get no gradient);
    - CNNs: the last conv map (nchw or nhwc) produced by a module one level below the
      model, before the classifier (ResNet ``layer4``, ConvNeXt ``stages``, EfficientNet
      ``features``), identity modules skipped.
    """
    block_norms = [p for p in order if p.rsplit(".", 1)[-1] in ("norm1", "ln_1")
                   and outputs[p].layout in ("tokens", "nhwc", "nchw")]
    if block_norms:
        return block_norms[-1]
    stop = order.index(final_layer) if final_layer in order else len(order)
    maps = [p for p in order[:stop] if outputs[p].layout in ("nchw", "nhwc")
            and outputs[p].module_type != "Identity" and _positions(outputs[p]) > 1]
    if not maps:
        return None
    top = min(p.count(".") for p in maps)
    return [p for p in maps if p.count(".") == top][-1]


def _positions(output: LayerOutput) -> int:
    """Spatial positions of a conv map (h * w)."""
    h, w = (output.shape[2], output.shape[3]) if output.layout == "nchw" else output.shape[1:3]
    return int(h) * int(w)


def layer_neurons(inspection: Inspection, layer: str, options: Mapping | None = None,
                  defaults: Mapping[str, str] | None = None) -> LayerNeurons:
    """How ``layer`` of an inspected model becomes neurons, from its options (``layout``,
    ``reduction``, ``output``: see the module docstring) and the default reduction of each
    layout (``defaults``: layout -> reduction); a ConfigError names the key at fault."""
    options = dict(options or {})
    unknown = set(options) - {"layout", "reduction", "output"}
    if unknown:
        raise ConfigError(f"target.layer_options.{layer}: unknown option(s) {sorted(unknown)}; "
                          "use layout, reduction or output")
    if layer not in inspection.outputs:
        top = sorted({p.split(".")[0] for p in inspection.outputs})
        raise ConfigError(f"target.layers: the model has no layer {layer!r} that runs in its "
                          f"forward; its top-level layers are {top} (python -m "
                          "neuron_concepts.layers lists every module)")
    seen = inspection.outputs[layer]
    element = None if options.get("output") is None else str(options["output"])
    shape = seen.shape
    if element is not None:
        if seen.elements is None:
            raise ConfigError(f"{_key(layer, 'output')}: layer {layer!r} returns a tensor, not a "
                              "tuple or dict; remove the output option")
        if element not in seen.elements:
            raise ConfigError(f"{_key(layer, 'output')}: layer {layer!r} has no tensor element "
                              f"{element!r}; its tensor elements are {list(seen.elements)}")
        shape = seen.elements[element]
    elif seen.elements is not None:
        element = "0" if "0" in seen.elements else next(iter(seen.elements), None)
    if not shape:
        raise ConfigError(seen.problem or f"target.layers: layer {layer!r} gives no tensor")
    if options.get("layout") is None and element is None and seen.layout is not None:
        layout, neurons, sequence_first = seen.layout, seen.neurons, seen.sequence_first
    else:
        layout, neurons, sequence_first = detect_layout(shape, _DUMMY_BATCH, layer, seen.channels,
                                                        seen.module_type, options.get("layout"))
    allowed = REDUCTIONS[layout]
    reduction = options.get("reduction") or (dict(defaults or {}).get(layout) if allowed else None)
    if allowed and reduction is None:
        reduction = allowed[0]
    if reduction is not None and reduction not in allowed:
        raise ConfigError(f"{_key(layer, 'reduction')}: {reduction!r} does not apply to layer "
                          f"{layer!r}, whose output is {layout} {list(shape)}; "
                          + (f"use one of {list(allowed)}" if allowed else
                             "it is one value per neuron already: remove the reduction"))
    prefix, grid = 0, None
    if layout == "tokens":
        tokens = shape[0 if sequence_first else 1]
        # Before the class token is prepended (a patch embedding) every token is a patch.
        only_patches = inspection.grid is not None and tokens == inspection.grid[0] * inspection.grid[1]
        prefix = 0 if only_patches else inspection.prefix_tokens
        if inspection.grid and inspection.grid[0] * inspection.grid[1] == tokens - prefix:
            grid = inspection.grid
    if reduction == "cls" and prefix < 1:
        raise ConfigError(f"{_key(layer, 'reduction')}: cls needs a class token, and layer "
                          f"{layer!r} has none; use mean or max")
    return LayerNeurons(layer, layout, reduction, int(neurons), prefix, sequence_first, element, grid)


# ---------------------------------------------------------------- the configured target


def cache_folder() -> Path:
    """Where inspections are cached: ``$NEURON_CONCEPTS_CACHE``, else
    ``$XDG_CACHE_HOME/neuron_concepts`` (``~/.cache/neuron_concepts``)."""
    if os.environ.get("NEURON_CONCEPTS_CACHE"):
        return Path(os.environ["NEURON_CONCEPTS_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "neuron_concepts"


def _cache_key(target: Mapping) -> str:
    """The inspection's cache key: architecture, source, constructor arguments, a model
    config file's content, and the versions of the libraries that build the model."""
    from importlib.metadata import PackageNotFoundError, version

    versions = {}
    for package in ("torch", "torchvision", "timm", "open_clip_torch"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = None
    config_file = target.get("model_config")
    content = Path(config_file).read_text() if config_file and Path(config_file).is_file() else None
    key = json.dumps({"name": target["name"], "source": target.get("source", "torchvision"),
                      "kwargs": target.get("kwargs") or {}, "model_config": content,
                      "versions": versions, "inspection": INSPECTION_VERSION}, sort_keys=True)
    return hashlib.sha256(key.encode()).hexdigest()[:20]


def inspect_target(target: Mapping, use_cache: bool = True) -> Inspection:
    """The inspection of a configured target (``target:`` section: name, source, kwargs,
    model_config), from the cache when this model was inspected before. Builds the
    architecture without weights: shapes do not depend on them."""
    path = cache_folder() / "layers" / f"{target['name']}-{_cache_key(target)}.json"
    if use_cache and path.is_file():
        try:
            return Inspection.from_json(json.loads(path.read_text()))
        except (ValueError, KeyError, TypeError):
            pass  # a damaged cache file is rebuilt
    from . import models

    built = models.build_target(target["name"], target.get("source", "torchvision"),
                                target.get("kwargs") or {}, target.get("model_config"))
    inspection = inspect_model(built.module, built.input_size,
                               classifier=target.get("source", "torchvision") != "open_clip")
    if use_cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps(inspection.to_json()))
        temporary.replace(path)  # atomic: parallel planners never read half a file
    return inspection


@dataclass(frozen=True)
class TargetLayers:
    """The configured target's layers as the workflow plans them."""

    neurons: list[LayerNeurons]  # target.layers, in config order
    final_layer: LayerNeurons | None
    gradcam: LayerNeurons | None  # gradcam.layer (or the family default) as a map

    def by_layer(self) -> dict[str, LayerNeurons]:
        return {n.layer: n for n in self.neurons}


def target_layers(config: Mapping, use_cache: bool = True) -> TargetLayers:
    """Resolve ``target.layers``, ``target.final_layer`` (``auto``: the classifier found by
    :func:`inspect_model`) and ``gradcam.layer`` (``auto``: :func:`default_gradcam_layer`)
    of a validated config into :class:`LayerNeurons`; every problem is a ConfigError naming
    its key, raised before any job runs."""
    target = config["target"]
    inspection = inspect_target(target, use_cache)
    options = target.get("layer_options") or {}
    unknown = sorted(set(options) - set(target["layers"]) - {config.get("gradcam", {}).get("layer")})
    if unknown:
        raise ConfigError(f"target.layer_options names {unknown}, which are not in target.layers "
                          f"{target['layers']}")
    defaults = {"nchw": target.get("spatial_reduction", "mean"), "nhwc": target.get("spatial_reduction", "mean"),
                "tokens": target.get("token_reduction", "mean")}
    neurons = [layer_neurons(inspection, layer, options.get(layer), defaults)
               for layer in target["layers"]]
    final = target.get("final_layer", "auto")
    if final == "auto":
        final = inspection.final_layer
    final_neurons = None
    if final is not None:
        final_neurons = layer_neurons(inspection, final, options.get(final), defaults)
        if final_neurons.layout != "vector":
            raise ConfigError(f"target.final_layer: layer {final!r} gives {final_neurons.layout} "
                              "outputs, not one score per class; name the classifier layer")
    # Resolved only for a gradcam view: another run never fails on an unused Grad-CAM layer.
    gradcam_layer = (config.get("gradcam") or {}).get("layer", "auto")
    if "gradcam" not in config.get("views", ["gradcam"]):
        gradcam_layer = None
    elif gradcam_layer == "auto":
        gradcam_layer = inspection.gradcam_layer
    gradcam = None
    if gradcam_layer is not None:
        gradcam = layer_neurons(inspection, gradcam_layer, options.get(gradcam_layer), defaults)
    return TargetLayers(neurons, final_neurons, gradcam)


# ---------------------------------------------------------------- python -m neuron_concepts.layers


def format_table(inspection: Inspection, max_depth: int | None = None,
                 defaults: Mapping[str, str] | None = None) -> str:
    """The layer table the command prints: module path, type, output shape (one image),
    layout, neurons, reductions and the name each gets in paths by default."""
    rows = [("module path", "type", "output", "layout", "neurons", "reductions", "name in paths")]
    for path in inspection.order:
        out = inspection.outputs[path]
        if max_depth is not None and path.count(".") >= max_depth:
            continue
        if out.layout is None:
            rows.append((path, out.module_type, str(list(out.image_shape)), "?", "", "", "(declare layout)"))
            continue
        allowed = REDUCTIONS[out.layout]
        default = (dict(defaults or {}).get(out.layout) or allowed[0]) if allowed else None
        rows.append((path, out.module_type, str(list(out.image_shape)), out.layout, str(out.neurons),
                     ",".join(allowed) or "-", names.layer_name(path, default)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.append("")
    lines.append(f"input size: {inspection.input_size}; prefix tokens: {inspection.prefix_tokens}")
    lines.append(f"final layer (target.final_layer: auto): {inspection.final_layer or 'none (no classifier)'}")
    lines.append(f"Grad-CAM layer (gradcam.layer: auto): {inspection.gradcam_layer or 'none'}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m neuron_concepts.layers MODEL [--source timm] [--kwargs JSON] [--depth N]``."""
    parser = argparse.ArgumentParser(
        prog="python -m neuron_concepts.layers",
        description="List a model's layers (module paths, output shapes, neuron counts) for "
                    "target.layers, from one forward of a dummy batch; no weights are loaded.")
    parser.add_argument("model", help="architecture name, e.g. resnet50, vit_base_patch16_224, ViT-B-16")
    parser.add_argument("--source", default="torchvision", choices=["torchvision", "timm", "open_clip"])
    parser.add_argument("--kwargs", default="{}", help="JSON constructor arguments (target.kwargs)")
    parser.add_argument("--model-config", default=None, help="open_clip model config JSON (target.model_config)")
    parser.add_argument("--depth", type=int, default=None, help="list module paths of at most this many levels")
    args = parser.parse_args(argv)
    try:
        kwargs = json.loads(args.kwargs)
        inspection = inspect_target({"name": args.model, "source": args.source, "kwargs": kwargs,
                                     "model_config": args.model_config}, use_cache=False)
    except (ConfigError, json.JSONDecodeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(format_table(inspection, args.depth))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
