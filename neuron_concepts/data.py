"""Probe image sets: the bundled demo, ImageNet-style class folders, or a flat folder with labels.

A probe set becomes a manifest table (image_id, path, label, label_name, width, height)
that every later stage reads. The manifest reads image headers only (format and size, no
pixel decoding, in parallel threads), so listing a 1.28M-image folder costs seconds per
thousand files, not a full decode: a file that is not an image stops the probe stage (or
is skipped and recorded); a file whose header is fine but whose pixel data is damaged
stops the first model job that decodes it, with an :class:`InputDataError` naming it.

Model stages preprocess with each model's own PIL pipeline, as the methods' official code
does, so the pipeline's numbers are theirs. ``fast=True`` (ours, off by default) decodes with
``torchvision.io.decode_image`` and preprocesses uint8 tensors (:func:`tensor_transform`):
faster on a busy CPU, within two uint8 levels of the PIL result (tests/test_loading.py), so
a neuron's top images can differ where activations tie that closely. This module imports
torch only inside functions: table and figure jobs use it.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError

from .errors import ConfigError, InputDataError

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".jpe"}
MANIFEST_COLUMNS = ["image_id", "path", "label", "label_name", "width", "height"]

# Real photographs that ship inside scikit-image and scikit-learn, with an ImageNet class
# where one is obvious. Grayscale photographs become 3-channel RGB.
DEMO_IMAGES: list[tuple[str, str, str | None]] = [
    # (image id, source file "package:relative path", ImageNet wnid or None)
    ("astronaut", "skimage:astronaut.png", None),
    ("chelsea", "skimage:chelsea.png", "n02123045"),          # tabby cat
    ("coffee", "skimage:coffee.png", "n07920052"),            # espresso
    ("rocket", "skimage:rocket.jpg", "n03773504"),            # missile
    ("motorcycle_left", "skimage:motorcycle_left.png", None),
    ("motorcycle_right", "skimage:motorcycle_right.png", None),
    ("hubble_deep_field", "skimage:hubble_deep_field.jpg", None),
    ("retina", "skimage:retina.jpg", None),
    ("ihc", "skimage:ihc.png", None),
    ("china", "sklearn:china.jpg", None),
    ("flower", "sklearn:flower.jpg", None),
    ("camera", "skimage:camera.png", None),
    ("coins", "skimage:coins.png", None),
    ("moon", "skimage:moon.png", None),
    ("brick", "skimage:brick.png", None),
    ("grass", "skimage:grass.png", None),
    ("gravel", "skimage:gravel.png", None),
    ("page", "skimage:page.png", None),
    ("text", "skimage:text.png", None),
    ("cell", "skimage:cell.png", None),
    ("microaneurysms", "skimage:microaneurysms.png", None),
    ("clock_motion", "skimage:clock_motion.png", None),
]


# The official ImageNet-1k label lines (CLIP-Dissect's data/imagenet_labels.txt, the file
# WWW's metric reads as --gt) differ from timm's imagenet_synset_to_lemma.txt in exactly
# these lines: timm names both cranes "crane", the official file tells them apart. Checked
# line by line against Trustworthy-ML-Lab/CLIP-dissect data/imagenet_labels.txt (c1565e1).
IMAGENET_LABEL_OVERRIDES: dict[str, str] = {
    "n02012849": "crane, bird",     # class 134
    "n03126707": "crane, machine",  # class 517
}


def timm_info_dir() -> Path:
    """timm's folder of ImageNet class lists, found without importing timm: importing it
    imports torch (about 3 s), which a concept set, an evaluation or a manifest never needs."""
    import importlib.util

    spec = importlib.util.find_spec("timm")
    if spec is None or spec.origin is None:
        raise InputDataError("timm is not installed: its ImageNet class lists are needed")
    return Path(spec.origin).parent / "data" / "_info"


@lru_cache(maxsize=1)
def imagenet_lemmas() -> dict[str, str]:
    """ImageNet wnid -> official label line ("tabby, tabby cat", "crane, bird").

    timm's ``imagenet_synset_to_lemma.txt`` (all 21k synsets) with
    :data:`IMAGENET_LABEL_OVERRIDES` applied, so every 1k class has its official line.
    """
    lines = (timm_info_dir() / "imagenet_synset_to_lemma.txt").read_text().splitlines()
    lemmas = dict(line.split("\t", 1) for line in lines if "\t" in line)
    return {**lemmas, **IMAGENET_LABEL_OVERRIDES}


def imagenet_label_lines() -> list[str]:
    """The 1,000 official ImageNet label lines in class order ("tench, Tinca tinca", ...).

    The ground truth of every evaluation, the probe manifests' ``label_name`` and the
    ``imagenet`` / ``imagenet_labels`` concept sets all come from here.
    """
    lemmas = imagenet_lemmas()
    return [lemmas[wnid] for wnid in imagenet_wnids()]


@lru_cache(maxsize=1)
def imagenet_wnids() -> list[str]:
    """The 1,000 ImageNet-1k wnids (``n01440764``, ...) in class-index order, from timm's
    ``imagenet_synsets.txt``. Cached: do not modify the list."""
    path = timm_info_dir() / "imagenet_synsets.txt"
    if not path.exists():
        raise InputDataError(f"timm lacks its ImageNet class list {path}: reinstall timm (>= 0.9)")
    return path.read_text().split()


def load_image(path: str | Path) -> Image.Image:
    """Open an image as RGB; the error names the file when it cannot be read."""
    try:
        with Image.open(path) as image:
            return to_rgb(image)
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise InputDataError(f"cannot read image {path}: {exc}") from None


# PIL modes of 16-bit grayscale files (PNG, TIFF): "I;16*", or "I" (32-bit) in older Pillows.
WIDE_GRAY_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")


def to_rgb(image: Image.Image) -> Image.Image:
    """An image as 8-bit RGB, as an image viewer shows it.

    16-bit grayscale is scaled to 8 bits (``round(v / 257)``: 65535 -> 255), where PIL's
    ``convert("RGB")`` would clip every value above 255 and turn the image white.
    """
    if image.mode in WIDE_GRAY_MODES:
        wide = np.asarray(image).astype(np.float64)
        gray = np.clip(np.rint(wide / 257.0), 0, 255).astype(np.uint8)
        return Image.fromarray(gray, mode="L").convert("RGB")
    return image.convert("RGB")


def _listed_files(folder: Path, recursive: bool) -> list[Path]:
    """The files of a probe folder, sorted, hidden ones left out. A link that does not lead
    to a file (broken, a loop, a folder) is listed too, so the manifest step names it as
    unreadable instead of dropping it unseen."""
    entries = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in entries if not p.name.startswith(".")
                  and (p.is_file() or (p.is_symlink() and not p.is_file())))


def demo_source(source: str) -> Path:
    """The file of a demo photograph's source, ``"package:relative path"`` of :data:`DEMO_IMAGES`."""
    package, name = source.split(":", 1)
    if package == "skimage":
        import skimage.data

        return Path(skimage.data.__file__).parent / name
    import sklearn.datasets

    return Path(sklearn.datasets.__file__).parent / "images" / name


def materialise_demo(folder: str | Path) -> pd.DataFrame:
    """Write the demo photographs as RGB PNGs into ``folder``; return their raw manifest."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lemmas = imagenet_lemmas()
    rows = []
    for image_id, source, wnid in DEMO_IMAGES:
        image = load_image(demo_source(source))
        path = folder / f"{image_id}.png"
        image.save(path, format="PNG")
        rows.append({"image_id": image_id, "path": str(path), "label": wnid,
                     "label_name": lemmas.get(wnid) if wnid else None})
    return pd.DataFrame(rows)


def _label_name(label: str | None) -> str | None:
    if label is None:
        return None
    return imagenet_lemmas().get(label, label)


def imagefolder_files(root: str | Path, classes: Sequence[str] | None = None) -> Iterator[tuple[str, Path]]:
    """(class folder name, file) of an ImageNet-style folder, in manifest order: class
    folders sorted, then their files (any depth) sorted; ``classes``: only these folders.

    A listing, no file is opened: :func:`count_probe_files` counts it when the workflow is
    planned, :func:`scan_imagefolder` lists it for the manifest, so both see the same files.
    """
    root = Path(root)
    if not root.is_dir():
        raise ConfigError(f"probe_sets: imagefolder root {root} is not a folder")
    wanted = None if classes is None else set(classes)
    for class_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        if wanted is not None and class_dir.name not in wanted:
            continue
        for path in _listed_files(class_dir, recursive=True):
            yield class_dir.name, path


def flat_folder_files(root: str | Path) -> list[Path]:
    """The files of a flat probe folder, sorted (hidden files left out)."""
    root = Path(root)
    if not root.is_dir():
        raise ConfigError(f"probe_sets: folder {root} is not a folder")
    return _listed_files(root, recursive=False)


def count_probe_files(spec: dict) -> int:
    """How many files a probe set's manifest checks: the listing :func:`probe_files` makes,
    without opening a file (the demo: its photographs). An upper bound of the manifest's
    rows (unreadable files may be skipped); 0 when the folder is missing or empty (the
    manifest job then says what is wrong)."""
    kind = spec.get("type")
    try:
        if kind == "demo":
            return len(DEMO_IMAGES)
        if kind == "imagefolder":
            return sum(1 for _ in imagefolder_files(spec["root"], spec.get("classes")))
        if kind == "folder":
            return len(flat_folder_files(spec["root"]))
    except (ConfigError, OSError):
        return 0
    raise ConfigError(f"probe_sets: unknown type {kind!r}; use demo, imagefolder or folder")


def scan_imagefolder(root: str | Path, classes: Sequence[str] | None = None) -> pd.DataFrame:
    """One sub-folder per class (ImageNet val sorted into ``nXXXXXXXX`` folders works as is);
    ``classes``: only these class folders (ConVis's OOD reads only some of ImageNet-train's)."""
    rows = [{"image_id": f"{label}/{path.relative_to(Path(root) / label).with_suffix('')}",
             "path": str(path), "label": label, "label_name": _label_name(label)}
            for label, path in imagefolder_files(root, classes)]
    if not rows:
        raise InputDataError(f"imagefolder {root} holds no files in class sub-folders"
                             + (f" {sorted(classes)[:5]}..." if classes is not None else ""))
    return pd.DataFrame(rows)


def scan_flat_folder(root: str | Path, labels_csv: str | Path | None = None) -> pd.DataFrame:
    """Images in one folder; labels (optional) from a CSV with columns ``image,label``."""
    paths = flat_folder_files(root)
    labels: dict[str, str] = {}
    if labels_csv:
        table = pd.read_csv(labels_csv, dtype=str)
        if not {"image", "label"} <= set(table.columns):
            raise InputDataError(f"label CSV {labels_csv} needs the columns image,label; "
                                 f"it has {list(table.columns)}")
        labels = dict(zip(table["image"], table["label"]))
        unknown = sorted(set(labels) - {p.name for p in paths})
        if unknown:
            raise InputDataError(f"label CSV {labels_csv} names images not in {root}: {unknown[:10]}")
    rows = [{"image_id": p.stem, "path": str(p), "label": labels.get(p.name),
             "label_name": _label_name(labels.get(p.name))} for p in paths]
    if not rows:
        raise InputDataError(f"folder {root} holds no files")
    return pd.DataFrame(rows)


def image_size(path: str | Path) -> tuple[int, int] | None:
    """(width, height) from an image file's header, or None when PIL cannot identify it.

    Reads the header only: no pixels are decoded, so a 1.28M-image folder lists quickly.
    A file with a good header and damaged pixel data passes here; the first job that
    decodes it stops with an :class:`InputDataError` naming the file (:func:`load_image`).
    The size is the one a full decode gives (PIL sets it from the header).
    """
    try:
        with Image.open(path) as image:
            return image.size
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return None


# Longer / shorter side above which an image is refused: the models resize the short side
# (to 224-256 px), so a 5000 x 1 strip would become 1,280,000 x 256 pixels in memory.
MAX_ASPECT_RATIO = 20


def extreme_aspect(size: tuple[int, int]) -> bool:
    """Whether an image of ``size`` (width, height) is too elongated to resize safely."""
    return max(size) > MAX_ASPECT_RATIO * max(1, min(size))


def build_manifest(files: pd.DataFrame, skip_unreadable: bool = False,
                   workers: int = 1) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Check every file's image header, add width/height, return (manifest, unreadable files).

    With ``skip_unreadable`` false, any file that is not an image is an error that lists
    all of them; otherwise they are dropped from the manifest and returned. ``workers``
    threads read headers in parallel (the work is file I/O); the result does not depend
    on it.
    """
    if files["image_id"].duplicated().any():
        dup = files.loc[files["image_id"].duplicated(), "image_id"].tolist()
        raise InputDataError(f"probe set has duplicate image ids {dup[:10]}: rename the files")
    paths = list(files["path"])
    if workers > 1 and len(paths) > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            sizes = list(pool.map(image_size, paths, chunksize=256))
    else:
        sizes = [image_size(p) for p in paths]
    bad = [s is None or extreme_aspect(s) for s in sizes]
    unreadable = files.loc[bad, ["image_id", "path"]].reset_index(drop=True)
    if len(unreadable) and not skip_unreadable:
        listing = "\n  ".join(f"{path} ({'an aspect ratio over %d:1' % MAX_ASPECT_RATIO if size else 'no image'})"
                               for path, size, b in zip(paths, sizes, bad) if b)
        raise InputDataError(
            f"{len(unreadable)} probe file(s) are not readable images:\n  {listing}\n"
            "Remove them (crop extreme strips: the models resize the short side, so their "
            "memory grows with the aspect ratio), or set probe_sets.<name>.skip_unreadable: "
            "true to exclude and record them.")
    manifest = files.loc[[not b for b in bad]].reset_index(drop=True).copy()
    good = [s for s, b in zip(sizes, bad) if not b]
    manifest["width"] = np.array([s[0] for s in good], dtype=np.int64)
    manifest["height"] = np.array([s[1] for s in good], dtype=np.int64)
    manifest["label"] = manifest["label"].astype("string")
    manifest["label_name"] = manifest["label_name"].astype("string")
    if manifest.empty:
        raise InputDataError("probe set holds no readable image")
    return manifest[MANIFEST_COLUMNS], unreadable


def probe_files(spec: dict, images_dir: str | Path) -> pd.DataFrame:
    """The files of a probe set from its config entry (``type``: demo, imagefolder or folder)."""
    kind = spec.get("type")
    if kind == "demo":
        return materialise_demo(images_dir)
    if kind == "imagefolder":
        return scan_imagefolder(spec["root"], spec.get("classes"))
    if kind == "folder":
        return scan_flat_folder(spec["root"], spec.get("labels_csv"))
    raise ConfigError(f"probe_sets: unknown type {kind!r}; use demo, imagefolder or folder")


# --------------------------------------------------------------------------- views


def center_box(width: int, height: int) -> tuple[int, int, int, int]:
    """The square centre crop of side ``min(width, height)``: ``(x0, y0, x1, y1)``, x1/y1 exclusive.

    The longer side loses ``floor(excess / 2)`` px before and ``ceil(excess / 2)`` after,
    as ConVis's official ``pil_centercrop`` does (generate_heatmap.py). The figures show the
    center view with it.
    """
    side = min(width, height)
    x0, y0 = (width - side) // 2, (height - side) // 2
    return x0, y0, x0 + side, y0 + side


# --------------------------------------------------------------------------- loading

#: (PIL format, mode) of files that ``torchvision.io.decode_image`` decodes to the very
#: pixels ``load_image`` gives (checked in tests/test_loading.py); other files go through PIL.
FAST_DECODE = {("JPEG", "RGB"), ("JPEG", "L"), ("PNG", "RGB"), ("PNG", "L"), ("PNG", "RGBA")}


def read_image(path: str | Path) -> "torch.Tensor":
    """An image file as an RGB uint8 tensor ``[3, H, W]``, the pixels of :func:`load_image`.

    JPEG and PNG (8-bit RGB, gray, RGBA: :data:`FAST_DECODE`) decode with
    ``torchvision.io.decode_image`` (libjpeg-turbo / libpng, no PIL image in between);
    everything else, and any file that decoder refuses, goes through PIL, whose error
    names the file.
    """
    import torch

    decode_image, rgb = _torchvision_decoder()
    try:
        with Image.open(path) as image:  # the header only
            fast = (image.format, image.mode) in FAST_DECODE
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        fast = False
    if fast:
        try:
            pixels = decode_image(str(path), mode=rgb)
            if pixels.dtype == torch.uint8 and pixels.ndim == 3 and pixels.shape[0] == 3:
                return pixels
        except (RuntimeError, ValueError):
            pass  # a damaged file: PIL says what is wrong with it
    return torch.from_numpy(np.array(load_image(path))).permute(2, 0, 1).contiguous()


@lru_cache(maxsize=1)
def _torchvision_decoder() -> tuple[Callable, Any]:
    """``torchvision.io.decode_image`` and its RGB mode. torchvision 0.29 deprecates its
    decoders in favour of TorchCodec (not a dependency here); the warning is silenced once
    rather than repeated for every image."""
    import warnings

    warnings.filterwarnings("ignore", message="The image decoding and encoding capabilities of "
                            "TorchVision are deprecated", category=DeprecationWarning)
    from torchvision.io import ImageReadMode, decode_image

    return decode_image, ImageReadMode.RGB


def tensor_transform(transform: Callable) -> Callable | None:
    """The uint8-tensor equivalent of a PIL preprocessing pipeline, or None if it has none.

    Understands what the pipeline's models use: torchvision's ``Compose`` of ``Resize``,
    ``CenterCrop``, ``ToTensor`` (open_clip's ``MaybeToTensor``), RGB conversion
    (``MaybeConvertMode``, ``_convert_to_rgb``; decoding gives RGB already) and
    ``Normalize``, and torchvision's ``ImageClassification`` preset. Resizing uses
    torchvision's native uint8 kernels with antialiasing, as PIL does; the result equals
    the PIL path's up to one uint8 level in a few pixels (rounding), i.e. a max abs
    difference of 1/255/std (~0.02) after normalisation (tests/test_loading.py).
    """
    import torch
    from torchvision import transforms as T
    from torchvision.transforms import v2
    from torchvision.transforms._presets import ImageClassification

    if isinstance(transform, ImageClassification):
        return v2.Compose([v2.Resize(transform.resize_size, transform.interpolation, antialias=True),
                           v2.CenterCrop(transform.crop_size),
                           v2.ToDtype(torch.float32, scale=True),
                           v2.Normalize(transform.mean, transform.std)])
    if not isinstance(transform, T.Compose):
        return None
    steps = []
    for step in transform.transforms:
        name = getattr(step, "__name__", type(step).__name__)
        if isinstance(step, T.Resize):
            steps.append(v2.Resize(step.size, step.interpolation, step.max_size, antialias=True))
        elif isinstance(step, T.CenterCrop):
            steps.append(v2.CenterCrop(step.size))
        elif isinstance(step, T.ToTensor):  # MaybeToTensor is one
            steps.append(v2.ToDtype(torch.float32, scale=True))
        elif isinstance(step, T.Normalize):
            steps.append(v2.Normalize(step.mean, step.std))
        elif name in ("MaybeConvertMode", "_convert_to_rgb") and getattr(step, "mode", "RGB") == "RGB":
            continue
        else:
            return None
    return v2.Compose(steps)


@dataclass
class UnreadableImage:
    """Stands in for a batch whose image could not be read (see :class:`ImageBatches`)."""

    message: str


@dataclass
class ProbeImages:
    """Images of a manifest through one view, preprocessed for one model (a map-style dataset).

    ``boxes`` (x0, y0, x1, y1 per image, in original pixels) crop each image first, as the
    Grad-CAM view does; without boxes the model's own preprocessing makes the center view.
    ``transform`` is the model's PIL preprocessing, applied as is by default (the official
    code's pixels); with ``fast`` images are decoded by :func:`read_image` and preprocessed by
    :func:`tensor_transform` of it, when it has one (ours: within two uint8 levels). An unreadable image gives an :class:`UnreadableImage`, not an
    exception, so the error reaches the main process without a worker's traceback.
    """

    paths: Sequence[str]
    transform: Callable
    boxes: np.ndarray | None = None
    fast: bool = False
    tensor_transform: Callable | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.paths = [str(p) for p in self.paths]
        if self.fast:
            self.tensor_transform = tensor_transform(self.transform)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> "torch.Tensor | UnreadableImage":
        try:
            return self.load(i)
        except InputDataError as exc:
            return UnreadableImage(str(exc))

    def load(self, i: int) -> "torch.Tensor":
        """Image ``i`` preprocessed: ``[3, S, S]`` float32."""
        box = None if self.boxes is None else [int(v) for v in self.boxes[i]]
        if self.tensor_transform is None:
            image = load_image(self.paths[i])
            return self.transform(image if box is None else image.crop(tuple(box)))
        pixels = read_image(self.paths[i])
        if box is not None:
            from torchvision.transforms.v2 import functional as F2

            x0, y0, x1, y1 = box  # as PIL's crop: zeros outside the image
            pixels = F2.crop(pixels, y0, x0, y1 - y0, x1 - x0)
        return self.tensor_transform(pixels)


def collate_images(items: list) -> "torch.Tensor | UnreadableImage":
    """A batch ``[B, 3, S, S]`` of dataset items, or the first :class:`UnreadableImage`."""
    import torch

    for item in items:
        if isinstance(item, UnreadableImage):
            return item
    return torch.stack(items)


@dataclass
class ImageBatches:
    """Batches of a :class:`ProbeImages` in manifest order; iterating raises
    :class:`InputDataError` naming the file when an image cannot be read."""

    loader: Any  # torch.utils.data.DataLoader

    @property
    def dataset(self) -> ProbeImages:
        return self.loader.dataset

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator["torch.Tensor"]:
        import torch

        batches = iter(self.loader)
        while True:
            # Without workers the images are prepared here, one thread: torch's intra-op
            # threads on small per-image ops cost more in synchronisation than they save
            # (7x slower on 2 busy cores); the model's forward gets its threads back.
            threads = torch.get_num_threads()
            if self.loader.num_workers == 0:
                torch.set_num_threads(1)
            try:
                batch = next(batches)
            except StopIteration:
                return
            finally:
                torch.set_num_threads(threads)
            if isinstance(batch, UnreadableImage):
                raise InputDataError(batch.message)
            yield batch


def job_cpus(threads: int | None = None) -> int:
    """CPUs this job may use: its CPU affinity (what SLURM or taskset allocated, not the
    machine's count), capped at the rule's ``threads`` when given."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, threads) if threads else cpus)


def default_workers(device: "torch.device | str", threads: int | None = None) -> int:
    """DataLoader worker processes for a model job with ``threads`` allocated CPUs.

    On CUDA, every CPU but the main process's decodes (at most 16); on the CPU, decoding
    competes with the model's own threads, so one worker overlaps the two only when the
    job has at least 4 CPUs, and none below.
    """
    import torch

    cpus = job_cpus(threads)
    if torch.device(device).type == "cuda":
        return max(1, min(16, cpus - 1))
    return 1 if cpus >= 4 else 0


def image_loader(manifest: pd.DataFrame, transform: Callable, batch_size: int,
                 boxes: pd.DataFrame | None = None, workers: int = 0,
                 device: "torch.device | str" = "cpu", fast: bool = False) -> ImageBatches:
    """Batches of a probe set in manifest order, optionally cropped to per-image boxes.

    Every view resizes to the model's input, so every batch but the last holds exactly
    ``batch_size`` images whatever the files' sizes: batches are full without sorting,
    and the output rows stay in manifest order. Memory is pinned when ``device`` is CUDA.
    """
    import torch

    box_array = None
    if boxes is not None:
        aligned = boxes.set_index("image_id").loc[manifest["image_id"]]
        box_array = aligned[["x0", "y0", "x1", "y1"]].to_numpy()
    dataset = ProbeImages(list(manifest["path"]), transform, box_array, fast=fast)
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, shuffle=False, num_workers=workers,
        collate_fn=collate_images, pin_memory=torch.device(device).type == "cuda",
        prefetch_factor=4 if workers else None, persistent_workers=False)
    return ImageBatches(loader)


# --------------------------------------------------------------------------- decoding on the GPU


def require_cuda(device: "torch.device | str") -> None:
    """``scale.image_decode: gpu`` runs on CUDA only: a clear error anywhere else."""
    import torch

    if torch.device(device).type != "cuda" or not torch.cuda.is_available():
        raise ConfigError("scale.image_decode: gpu needs a CUDA device; set it to pil")


@lru_cache(maxsize=1)
def cuda_jpeg_decoder() -> tuple[str, Callable]:
    """(name, decode) of the batched nvJPEG decoder: TorchCodec's ``decode_jpeg`` when it
    is installed (torchvision's image decoding is deprecated in its favour), else
    torchvision's. ``decode(list of uint8 byte tensors, device)`` -> list of ``[3, H, W]``."""
    try:
        from torchcodec.decoders import decode_jpeg

        return "torchcodec", lambda data, device: decode_jpeg(list(data), mode="RGB", device=device)
    except ImportError:
        import warnings

        warnings.filterwarnings("ignore", category=DeprecationWarning, module="torchvision")
        from torchvision.io import ImageReadMode, decode_jpeg

        return "torchvision", lambda data, device: decode_jpeg(list(data), mode=ImageReadMode.RGB,
                                                               device=device)


@dataclass
class EncodedImages:
    """A manifest's image files as encoded bytes (JPEG), or decoded pixels (anything else,
    :func:`read_image`), for :class:`GpuDecodedBatches` (a map-style dataset)."""

    paths: Sequence[str]

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> "tuple[str, torch.Tensor] | UnreadableImage":
        import torch

        path = str(self.paths[i])
        try:
            with Image.open(path) as image:
                jpeg = image.format == "JPEG" and image.mode in ("RGB", "L")
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
            jpeg = False
        try:
            if jpeg:
                return "jpeg", torch.frombuffer(bytearray(Path(path).read_bytes()), dtype=torch.uint8)
            return "pixels", read_image(path)
        except InputDataError as exc:
            return UnreadableImage(str(exc))


def _encoded_batch(items: list) -> "list | UnreadableImage":
    for item in items:
        if isinstance(item, UnreadableImage):
            return item
    return items


@dataclass
class GpuDecodedBatches:
    """Batches of a manifest decoded and preprocessed on the GPU (``scale.image_decode: gpu``).

    Workers read the files; the main process decodes each batch's JPEGs in one nvJPEG call
    (:func:`cuda_jpeg_decoder`; other formats arrive decoded by :func:`read_image`), crops
    the view's boxes and runs :func:`tensor_transform` of the model's pipeline on the GPU
    (antialiased resize, centre crop, normalisation). Ours, not the models' PIL pixels: the
    views it makes are named apart (``names.decoded_view``).
    """

    loader: Any  # torch.utils.data.DataLoader of EncodedImages
    transform: Callable
    boxes: np.ndarray | None
    device: Any

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator["torch.Tensor"]:
        import torch
        from torchvision.transforms.v2 import functional as F2

        _, decode = cuda_jpeg_decoder()
        row = 0
        for items in self.loader:
            if isinstance(items, UnreadableImage):
                raise InputDataError(items.message)
            jpegs = [data for kind, data in items if kind == "jpeg"]
            decoded = iter(decode(jpegs, self.device) if jpegs else [])
            images = []
            for kind, data in items:
                pixels = next(decoded) if kind == "jpeg" else data.to(self.device, non_blocking=True)
                if self.boxes is not None:
                    x0, y0, x1, y1 = (int(v) for v in self.boxes[row])
                    pixels = F2.crop(pixels, y0, x0, y1 - y0, x1 - x0)
                images.append(self.transform(pixels))
                row += 1
            yield torch.stack(images)


def gpu_image_loader(manifest: pd.DataFrame, transform: Callable, batch_size: int,
                     boxes: pd.DataFrame | None = None, workers: int = 0,
                     device: "torch.device | str" = "cuda") -> GpuDecodedBatches:
    """:func:`image_loader`'s batches, decoded and preprocessed on the GPU
    (:class:`GpuDecodedBatches`); the same rows in the same order."""
    import torch

    require_cuda(device)
    gpu_transform = tensor_transform(transform)
    if gpu_transform is None:
        raise ConfigError("scale.image_decode: gpu: this model's preprocessing has no tensor "
                          "equivalent (neuron_concepts.data.tensor_transform); set it to pil")
    box_array = None
    if boxes is not None:
        aligned = boxes.set_index("image_id").loc[manifest["image_id"]]
        box_array = aligned[["x0", "y0", "x1", "y1"]].to_numpy()
    loader = torch.utils.data.DataLoader(
        EncodedImages(list(manifest["path"])), batch_size=batch_size, shuffle=False,
        num_workers=workers, collate_fn=_encoded_batch, prefetch_factor=4 if workers else None)
    return GpuDecodedBatches(loader, gpu_transform, box_array, torch.device(device))



def probe_loader(manifest: pd.DataFrame, transform: Callable, batch_size: int,
                 boxes: pd.DataFrame | None = None, workers: int = 0,
                 device: "torch.device | str" = "cpu", decode: str = "pil") -> "ImageBatches | GpuDecodedBatches":
    """The batches a model stage reads: decoded by the model's own PIL pipeline
    (:func:`image_loader`, ``decode="pil"``) or on the GPU (:func:`gpu_image_loader`)."""
    if decode == "gpu":
        return gpu_image_loader(manifest, transform, batch_size, boxes, workers, device)
    return image_loader(manifest, transform, batch_size, boxes, workers=workers, device=device)
