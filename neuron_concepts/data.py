"""Probe image sets: the bundled demo, ImageNet-style class folders, or a flat folder with labels.

A probe set becomes a manifest table (image_id, path, label, label_name, width, height)
that every later stage reads. Images are checked when the manifest is built, so a bad
file stops the probe stage (or is skipped and recorded) instead of failing a model job.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch
from PIL import Image, UnidentifiedImageError

from .errors import ConfigError, InputDataError

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


@lru_cache(maxsize=1)
def imagenet_lemmas() -> dict[str, str]:
    """ImageNet wnid -> official label line ("tabby, tabby cat", "crane, bird").

    timm's ``imagenet_synset_to_lemma.txt`` (all 21k synsets) with
    :data:`IMAGENET_LABEL_OVERRIDES` applied, so every 1k class has its official line.
    """
    import timm

    info = Path(timm.__file__).parent / "data" / "_info"
    lines = (info / "imagenet_synset_to_lemma.txt").read_text().splitlines()
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
    import timm

    path = Path(timm.__file__).parent / "data" / "_info" / "imagenet_synsets.txt"
    if not path.exists():
        raise InputDataError(f"timm lacks its ImageNet class list {path}: reinstall timm (>= 0.9)")
    return path.read_text().split()


def load_image(path: str | Path) -> Image.Image:
    """Open an image as RGB; the error names the file when it cannot be read."""
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise InputDataError(f"cannot read image {path}: {exc}") from None


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


def scan_imagefolder(root: str | Path) -> pd.DataFrame:
    """One sub-folder per class (ImageNet val sorted into ``nXXXXXXXX`` folders works as is)."""
    root = Path(root)
    if not root.is_dir():
        raise ConfigError(f"probe_sets: imagefolder root {root} is not a folder")
    rows = []
    for class_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        for path in sorted(class_dir.rglob("*")):
            if path.is_file() and not path.name.startswith("."):
                rows.append({"image_id": f"{class_dir.name}/{path.relative_to(class_dir).with_suffix('')}",
                             "path": str(path), "label": class_dir.name,
                             "label_name": _label_name(class_dir.name)})
    if not rows:
        raise InputDataError(f"imagefolder {root} holds no files in class sub-folders")
    return pd.DataFrame(rows)


def scan_flat_folder(root: str | Path, labels_csv: str | Path | None = None) -> pd.DataFrame:
    """Images in one folder; labels (optional) from a CSV with columns ``image,label``."""
    root = Path(root)
    if not root.is_dir():
        raise ConfigError(f"probe_sets: folder {root} is not a folder")
    paths = sorted(p for p in root.iterdir() if p.is_file() and not p.name.startswith("."))
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
    """(width, height) of a readable image file, or None when it is not one."""
    try:
        with Image.open(path) as image:
            image.load()  # decode fully: a truncated file fails here, not in a model job
            return image.size
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return None


def build_manifest(files: pd.DataFrame, skip_unreadable: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Check every image, add width/height, return (manifest, unreadable files).

    With ``skip_unreadable`` false, any unreadable or non-image file is an error that
    lists all of them; otherwise they are dropped from the manifest and returned.
    """
    if files["image_id"].duplicated().any():
        dup = files.loc[files["image_id"].duplicated(), "image_id"].tolist()
        raise InputDataError(f"probe set has duplicate image ids {dup[:10]}: rename the files")
    sizes = [image_size(p) for p in files["path"]]
    bad = [s is None for s in sizes]
    unreadable = files.loc[bad, ["image_id", "path"]].reset_index(drop=True)
    if len(unreadable) and not skip_unreadable:
        listing = "\n  ".join(unreadable["path"])
        raise InputDataError(
            f"{len(unreadable)} probe file(s) are not readable images:\n  {listing}\n"
            "Remove them, or set probe_sets.<name>.skip_unreadable: true to exclude and record them.")
    manifest = files.loc[[not b for b in bad]].reset_index(drop=True).copy()
    good = [s for s in sizes if s is not None]
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
        return scan_imagefolder(spec["root"])
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


@dataclass
class ProbeImages(torch.utils.data.Dataset):
    """Images of a manifest through one view, preprocessed for one model.

    ``boxes`` (x0, y0, x1, y1 per image, in original pixels) crop each image first, as the
    Grad-CAM view does; without boxes the model's own preprocessing makes the center view.
    """

    paths: Sequence[str]
    transform: Callable
    boxes: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> torch.Tensor:
        image = load_image(self.paths[i])
        if self.boxes is not None:
            image = image.crop(tuple(int(v) for v in self.boxes[i]))
        return self.transform(image)


def default_workers(device: torch.device | str) -> int:
    """Loader processes: decoding overlaps the GPU's work; on the CPU they would compete with it."""
    import os

    if torch.device(device).type != "cuda":
        return 0
    return max(1, min(8, (os.cpu_count() or 2) - 1))


def image_loader(manifest: pd.DataFrame, transform: Callable, batch_size: int,
                 boxes: pd.DataFrame | None = None, workers: int = 0) -> torch.utils.data.DataLoader:
    """Batches of a probe set in manifest order, optionally cropped to per-image boxes."""
    box_array = None
    if boxes is not None:
        aligned = boxes.set_index("image_id").loc[manifest["image_id"]]
        box_array = aligned[["x0", "y0", "x1", "y1"]].to_numpy()
    dataset = ProbeImages(list(manifest["path"]), transform, box_array)
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False,
                                       num_workers=workers, pin_memory=workers > 0)
