"""Throughput and peak memory of the Grad-CAM stage next to the raw model.

    .venv/bin/python benchmarks/bench_gradcam.py                      # ~1 min on 2 CPU cores
    .venv/bin/python benchmarks/bench_gradcam.py --device cuda --batch-size 64 --images 1024

ResNet-50 with random weights, target layer ``layer4``. Rows, all at the same batch size:

- ``forward``: ``model(x)`` under ``torch.no_grad`` (the floor).
- ``forward+backward``: the textbook Grad-CAM cost: parameters require grad, full forward,
  ``backward()`` of the summed predicted-class scores.
- ``grad_cam``: :func:`neuron_concepts.gradcam.grad_cam` on ready tensors.
- ``compute_cams (stage)``: the ``grad_cam`` rule's function on JPEG files (decode, resize,
  normalise, DataLoader, Grad-CAM, copy to host).
- ``crop_boxes (stage)``: the ``crop_boxes`` rule's work (upsample to the image size, argmax,
  boxes), CPU.

Each row runs in a fresh subprocess, so its peak resident memory (``ru_maxrss``) is its own;
"extra" is that peak minus the resident size after imports, model and input creation, i.e.
the working memory of the row. On CUDA the
peak allocated device memory (``torch.cuda.max_memory_allocated``) is shown too. One batch
of warm-up precedes every timing; with ``--repeats`` the best of several timings is shown
(these machines are shared, and noise only ever slows a run down).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

MIB = 2 ** 20
PHASES = ["forward", "forward+backward", "grad_cam", "compute_cams (stage)", "crop_boxes (stage)"]
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_images(folder: Path, n: int, width: int, height: int) -> list[Path]:
    """``n`` random-noise JPEGs of one size (ImageNet validation images are about 500x375)."""
    from PIL import Image
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        path = folder / f"img{i:05d}.jpg"
        Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(path, quality=90)
        paths.append(path)
    return paths


def run_phase(args: argparse.Namespace) -> dict:
    """Time one phase in this process and return its figures."""
    import torch
    import torchvision

    from neuron_concepts import gradcam

    device = torch.device(args.device)
    torch.manual_seed(0)
    model = torchvision.models.resnet50(weights=None).eval().to(device)
    paths = sorted(Path(args.image_dir).glob("*.jpg"))
    n, bs, size = args.images, args.batch_size, args.input_size
    batch = torch.randn(bs, 3, size, size, device=device)
    cam_maps = np.random.default_rng(0).random((n, 7, 7)).astype(np.float32)
    heights, widths = np.full(n, args.image_height), np.full(n, args.image_width)
    # Resident size with the model and inputs loaded, before any work: "extra" is above it.
    baseline = peak_rss_mib()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    def forward(x):
        with torch.no_grad():
            return model(x)

    def forward_backward(x):
        model.zero_grad(set_to_none=True)
        logits = model(x)
        logits.gather(1, logits.argmax(1, keepdim=True)).sum().backward()

    def cams(x):
        return gradcam.grad_cam(model, model.layer4, x)

    def stage(image_paths):
        return gradcam.compute_cams(model, model.layer4, image_paths, input_size=size, mean=MEAN,
                                    std=STD, batch_size=bs, device=device,
                                    num_workers=args.workers)

    per_batch = {"forward": forward, "forward+backward": forward_backward, "grad_cam": cams}
    if args.phase == "crop_boxes (stage)":
        gradcam.crop_boxes(cam_maps[:bs], heights[:bs], widths[:bs])
        work = lambda: gradcam.crop_boxes(cam_maps, heights, widths)  # noqa: E731
    else:
        if args.phase == "compute_cams (stage)":
            stage(paths[:bs])
        else:
            per_batch[args.phase](batch)
        sync()

        def work():
            if args.phase == "compute_cams (stage)":
                stage(paths[:n])
            else:
                for _ in range(0, n, bs):
                    per_batch[args.phase](batch)
            sync()
    # Best of the repeats: the machines here are shared, so the fastest run is the one
    # least disturbed by other work.
    seconds = float("inf")
    for _ in range(args.repeats):
        start = time.perf_counter()
        work()
        seconds = min(seconds, time.perf_counter() - start)
    result = {"phase": args.phase, "images_per_s": n / seconds, "seconds": seconds,
              "peak_rss_mib": peak_rss_mib(), "baseline_rss_mib": baseline}
    if device.type == "cuda":
        result["cuda_peak_mib"] = torch.cuda.max_memory_allocated() / MIB
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--images", type=int, default=16,
                        help="images per timing (rounded up to whole batches for the raw rows)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--input-size", type=int, default=224)
    parser.add_argument("--image-width", type=int, default=500)
    parser.add_argument("--image-height", type=int, default=375)
    parser.add_argument("--repeats", type=int, default=1, help="timings per row; the best is shown")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers of the stage")
    parser.add_argument("--phase", choices=PHASES, help=argparse.SUPPRESS)
    parser.add_argument("--image-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.images = -(-args.images // args.batch_size) * args.batch_size   # whole batches

    if args.phase:
        print(json.dumps(run_phase(args)))
        return

    with tempfile.TemporaryDirectory() as folder:
        write_images(Path(folder), args.images, args.image_width, args.image_height)
        print(f"ResNet-50 (random weights), layer4, device {args.device}, batch {args.batch_size}, "
              f"{args.images} images, input {args.input_size}px, "
              f"files {args.image_width}x{args.image_height} JPEG")
        header = f"{'phase':<22} {'images/s':>9} {'peak RSS MiB':>13} {'extra MiB':>10}"
        print(header + (f" {'CUDA peak MiB':>14}" if args.device.startswith("cuda") else ""))
        for phase in PHASES:
            command = [sys.executable, __file__, "--phase", phase, "--image-dir", folder,
                       "--batch-size", str(args.batch_size), "--images", str(args.images),
                       "--device", args.device, "--input-size", str(args.input_size),
                       "--image-width", str(args.image_width),
                       "--image-height", str(args.image_height), "--workers", str(args.workers),
                       "--repeats", str(args.repeats)]
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode:
                sys.exit(f"phase {phase} failed:\n{done.stderr}")
            r = json.loads(done.stdout.strip().splitlines()[-1])
            line = (f"{phase:<22} {r['images_per_s']:>9.2f} {r['peak_rss_mib']:>13.0f} "
                    f"{r['peak_rss_mib'] - r['baseline_rss_mib']:>10.0f}")
            print(line + (f" {r['cuda_peak_mib']:>14.0f}" if "cuda_peak_mib" in r else ""), flush=True)


if __name__ == "__main__":
    main()
