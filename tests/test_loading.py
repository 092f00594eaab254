"""Image loading for the model stages: torchvision decoding, tensor preprocessing, loader workers.

The default path is the model's own PIL preprocessing, bit for bit. The fast path (ours,
``fast=True``: ``data.read_image`` + ``data.tensor_transform``) is compared with it
(``data.load_image`` + the model's PIL pipeline), computed independently here.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from neuron_concepts import data, gradcam, models
from neuron_concepts.errors import InputDataError

# One uint8 level after normalisation by the smallest std of the pipelines (ImageNet's 0.224
# on the green channel... 0.225 / 0.229; CLIP's 0.261): resizing rounds a few pixels the
# other way. Measured: at most 2 levels in 1% of the pixels (skimage "moon", CLIP bicubic),
# 1 level in 0-0.6% of the pixels elsewhere; mean abs difference below 2e-4.
LEVEL = 1 / 255 / 0.224
MAX_ABS = 2 * LEVEL + 1e-5
MEAN_ABS = 2e-4


@pytest.fixture(scope="module")
def demo_paths(tmp_path_factory) -> list[str]:
    folder = tmp_path_factory.mktemp("demo")
    files = data.materialise_demo(folder)
    # the original JPEGs too: the demo folder holds PNGs only
    jpegs = [str(data.demo_source(s)) for _, s, _ in data.DEMO_IMAGES if s.endswith(".jpg")]
    return list(files["path"]) + jpegs


def pil_pixels(path) -> torch.Tensor:
    return torch.from_numpy(np.array(data.load_image(path))).permute(2, 0, 1)


def formats(folder) -> dict[str, str]:
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    images = {"rgb.png": Image.fromarray(rgb), "gray.png": Image.fromarray(rgb[..., 0]),
              "rgba.png": Image.fromarray(np.dstack([rgb, rgb[..., :1]])),
              "palette.png": Image.fromarray(rgb).convert("P"), "rgb.jpg": Image.fromarray(rgb),
              "gray.jpg": Image.fromarray(rgb[..., 0]), "cmyk.jpg": Image.fromarray(rgb).convert("CMYK"),
              "rgb.bmp": Image.fromarray(rgb), "rgb.gif": Image.fromarray(rgb).convert("P"),
              "rgb.tif": Image.fromarray(rgb),
              "deep.png": Image.fromarray(rgb[..., 0].astype(np.uint16) * 257)}
    paths = {}
    for name, image in images.items():
        paths[name] = str(folder / name)
        image.save(paths[name])
    return paths


def test_read_image_gives_the_pil_pixels_in_every_format(tmp_path):
    for name, path in formats(tmp_path).items():
        pixels = data.read_image(path)
        assert pixels.dtype == torch.uint8 and pixels.shape == (3, 37, 53), name
        assert torch.equal(pixels, pil_pixels(path)), name


def test_read_image_uses_torchvision_for_jpeg_and_png_only(tmp_path, monkeypatch):
    decode_image, rgb = data._torchvision_decoder()
    decoded: list[str] = []

    def counting(path, mode):
        decoded.append(os.path.basename(path))
        return decode_image(path, mode=mode)

    monkeypatch.setattr(data, "_torchvision_decoder", lambda: (counting, rgb))
    for path in formats(tmp_path).values():
        data.read_image(path)
    assert sorted(decoded) == ["gray.jpg", "gray.png", "rgb.jpg", "rgb.png", "rgba.png"]


def preprocessing_pairs():
    from torchvision.models import ResNet50_Weights

    clip = models.load_clip("ViT-B-32", "random")
    return {"clip ViT-B-32 (bicubic)": clip.preprocess,
            "torchvision ImageClassification (bilinear)": ResNet50_Weights.IMAGENET1K_V2.transforms(),
            "target random weights (Compose)": models.load_target("resnet18", "random").preprocess,
            "grad-cam whole image": gradcam.whole_image_transform(224, models.IMAGENET_MEAN,
                                                                  models.IMAGENET_STD)}


def test_tensor_preprocessing_matches_the_pil_path(demo_paths):
    """decode_image + the model's transforms as tensors vs PIL + the same transforms."""
    for name, transform in preprocessing_pairs().items():
        fast = data.tensor_transform(transform)
        assert fast is not None, name
        worst, means = 0.0, []
        for path in demo_paths:
            expected = transform(data.load_image(path))
            got = fast(data.read_image(path))
            assert got.dtype == torch.float32 and got.shape == expected.shape, name
            difference = (got - expected).abs()
            worst = max(worst, float(difference.max()))
            means.append(float(difference.mean()))
        assert worst <= MAX_ABS, (name, worst)
        assert max(means) <= MEAN_ABS, (name, max(means))


def test_unknown_transform_keeps_the_pil_path(tmp_path):
    from torchvision import transforms as T

    odd = T.Compose([T.Grayscale(3), T.ToTensor()])
    assert data.tensor_transform(odd) is None
    assert data.tensor_transform(lambda image: image) is None
    path = tmp_path / "a.png"
    Image.fromarray(np.full((8, 6, 3), 200, np.uint8)).save(path)
    dataset = data.ProbeImages([str(path)], odd)
    assert dataset.tensor_transform is None
    assert torch.equal(dataset[0], odd(data.load_image(path)))


def manifest_of(paths) -> pd.DataFrame:
    return pd.DataFrame({"image_id": [f"i{k}" for k in range(len(paths))], "path": list(paths)})


@pytest.mark.parametrize("workers", [0, 2])
def test_loader_batches_are_full_in_manifest_order_and_cropped(demo_paths, workers):
    transform = models.load_target("resnet18", "random").preprocess
    paths = demo_paths[:7]
    manifest = manifest_of(paths)
    sizes = [Image.open(p).size for p in paths]
    boxes = pd.DataFrame({"image_id": manifest["image_id"], "x0": 3, "y0": 5,
                          "x1": [w - 7 for w, _ in sizes], "y1": [h - 2 for _, h in sizes]})
    loader = data.image_loader(manifest, transform, batch_size=3, boxes=boxes, workers=workers,
                               fast=True)
    batches = list(loader)
    assert len(loader) == 3 and [len(b) for b in batches] == [3, 3, 1]
    fast = data.tensor_transform(transform)
    for got, path, box in zip(torch.cat(batches), paths, boxes[["x0", "y0", "x1", "y1"]].to_numpy()):
        x0, y0, x1, y1 = map(int, box)
        assert torch.equal(got, fast(data.read_image(path)[:, y0:y1, x0:x1]))  # the box, in order
        pil = transform(data.load_image(path).crop((x0, y0, x1, y1)))
        assert float((got - pil).abs().max()) <= MAX_ABS


@pytest.mark.parametrize("workers", [0, 1])
def test_default_loader_gives_the_models_own_pil_preprocessing_exactly(demo_paths, workers):
    """The official code's pixels: the model's PIL pipeline, bit for bit (fast=True is ours)."""
    transform = models.load_target("resnet18", "random").preprocess
    loader = data.image_loader(manifest_of(demo_paths[:4]), transform, batch_size=4,
                               workers=workers)
    expected = torch.stack([transform(data.load_image(p)) for p in demo_paths[:4]])
    assert torch.equal(next(iter(loader)), expected)


@pytest.mark.parametrize("workers", [0, 1])
def test_damaged_image_stops_the_loader_naming_the_file(tmp_path, workers):
    good, bad = tmp_path / "good.png", tmp_path / "damaged.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8)).save(good)
    bad.write_bytes(good.read_bytes()[:300])  # header intact, pixel data cut short
    manifest, unreadable = data.build_manifest(
        pd.DataFrame({"image_id": ["good", "damaged"], "path": [str(good), str(bad)],
                      "label": None, "label_name": None}))
    assert unreadable.empty and list(manifest["width"]) == [64, 64]  # headers only
    transform = models.load_target("resnet18", "random").preprocess
    for fast in (True, False):
        loader = data.image_loader(manifest, transform, batch_size=2, workers=workers, fast=fast)
        with pytest.raises(InputDataError) as err:
            list(loader)
        message = str(err.value)
        assert message.startswith(f"cannot read image {bad}") and "Traceback" not in message


def test_worker_count_follows_the_allocated_cpus(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(6)), raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 128)
    assert data.job_cpus() == 6 and data.job_cpus(threads=4) == 4 and data.job_cpus(threads=64) == 6
    assert data.default_workers("cuda") == 5 and data.default_workers("cuda", threads=3) == 2
    assert data.default_workers("cpu") == 1 and data.default_workers("cpu", threads=2) == 0
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0}, raising=False)
    assert data.default_workers("cuda") == 1 and data.default_workers("cpu") == 0


def test_data_module_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, neuron_concepts.data; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_gpu_decoding_without_cuda_says_to_use_pil(tmp_path):
    import pandas as pd

    from neuron_concepts import names, settings
    from neuron_concepts.errors import ConfigError

    manifest = pd.DataFrame({"image_id": ["a"], "path": [str(tmp_path / "a.jpg")]})
    with pytest.raises(ConfigError, match="scale.image_decode: gpu needs a CUDA device; set it to pil"):
        data.probe_loader(manifest, lambda image: image, 4, device="cpu", decode="gpu")
    assert settings.GPU_DECODE_NEEDS_CUDA == "scale.image_decode: gpu needs a CUDA device; set it to pil"
    # the GPU-decoded views are named apart, and their crop boxes are the PIL views' boxes
    view = names.decoded_view("gradcam-f0.5", "gpu")
    assert view == "gradcam-f0.5+gpudecode" and names.view_decode(view) == "gpu"
    assert names.parse_view(view).params_part == "f0.5" and names.decoded_view(view, "pil") == "gradcam-f0.5"
