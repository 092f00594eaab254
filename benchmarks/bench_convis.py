"""Throughput and peak memory of the sharded ConVis rank-volume stage next to the raw CLIP forward.

A shard of ``--images`` images (as one ``convis_rank_volume_*`` job makes them): the patches
of each image's ConVis grid (sides 64 and 128 sharing a top-left corner, stride 16; by
default the paper's valid locations; ``--padding noise`` the official code's grid) are cut,
resized and embedded in CLIP forwards of ``--batch-size`` patches shared by consecutive
images (float16 autocast on CUDA with ``--precision auto``), then ranked against the
vocabulary. The raw forward embeds the same, already preprocessed, patches with
``encode_image`` alone, in batches of the same size and precision. The difference is what
loading, cropping, resizing, padding the last batch and ranking cost. Random CLIP weights and
random synset embeddings: the cost does not depend on their values.

    .venv/bin/python benchmarks/bench_convis.py                  # 4 images of 224 x 224, ViT-B-32, CPU
    .venv/bin/python benchmarks/bench_convis.py --images 64 --height 375 --width 500 --device cuda
    .venv/bin/python benchmarks/bench_convis.py --height 375 --width 500 --resize 224 --padding noise  # official
"""

from __future__ import annotations

import argparse
import contextlib
import os
import threading
import time

import numpy as np
import torch
from PIL import Image

from neuron_concepts import convis_grid, convis_volume, models


class PeakRSS:
    """Peak resident memory (MiB) of this process above its level at entry, sampled every 5 ms."""

    def __init__(self) -> None:
        self.page = os.sysconf("SC_PAGE_SIZE")

    def _rss(self) -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * self.page

    def __enter__(self) -> "PeakRSS":
        self.start = self.peak = self._rss()
        self.running = True
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _sample(self) -> None:
        while self.running:
            self.peak = max(self.peak, self._rss())
            time.sleep(0.005)

    def __exit__(self, *exc) -> None:
        self.running = False
        self.thread.join()
        self.peak = max(self.peak, self._rss())
        self.mib = (self.peak - self.start) / 2**20


class Peak:
    """Peak memory of a stage: CUDA allocator peak on a GPU, process RSS growth on the CPU."""

    def __init__(self, device: torch.device) -> None:
        self.device = device

    def __enter__(self) -> "Peak":
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated()
        else:
            self.rss = PeakRSS().__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            self.mib = (torch.cuda.max_memory_allocated() - self.base) / 2**20
        else:
            self.rss.__exit__()
            self.mib = self.rss.mib


def test_images(n: int, height: int, width: int) -> list[tuple[str, Image.Image]]:
    """``n`` crops of skimage's astronaut photograph, each resized to ``height x width``."""
    from skimage import data

    photo = Image.fromarray(data.astronaut())
    return [(f"astronaut{k}", photo.crop((k % 64, k % 48, 448 + k % 64, 448 + k % 48)).resize(
        (width, height), Image.BICUBIC)) for k in range(n)]


def timed(fn, device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="ViT-B-32")
    parser.add_argument("--images", type=int, default=4, help="images in the shard")
    parser.add_argument("--height", type=int, default=224)
    parser.add_argument("--width", type=int, default=224)
    parser.add_argument("--sizes", type=int, nargs="+", default=list(convis_grid.DEFAULT_SIZES))
    parser.add_argument("--stride", type=int, default=convis_grid.DEFAULT_STRIDE)
    parser.add_argument("--resize", type=int, default=None,
                        help="map the centre crop resized to this side (the official 224); default native")
    parser.add_argument("--padding", choices=convis_grid.PADDINGS, default=convis_grid.DEFAULT_PADDING,
                        help="none: the paper's valid locations (default); noise: the official padded grid")
    parser.add_argument("--synsets", type=int, default=1860, help="vocabulary size (ImageNet closure: 1860)")
    parser.add_argument("--batch-size", type=int, default=convis_volume.DEFAULT_BATCH_SIZE)
    parser.add_argument("--precision", choices=convis_volume.PRECISIONS, default="auto")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    dtype = convis_volume.forward_dtype(args.precision, device)
    clip = models.load_clip(args.model, "random", device=device)  # random weights: no download
    images = test_images(args.images, args.height, args.width)
    dim = clip.module.visual.output_dim
    synsets = torch.nn.functional.normalize(torch.randn(args.synsets, dim, generator=torch.Generator().manual_seed(0)), dim=1)

    framed = [convis_volume.frame_image(image, args.resize) for _, image in images]
    grids = [convis_grid.patch_grid(f.height, f.width, args.sizes, args.stride, args.padding) for f in framed]
    n_sizes = len(args.sizes)
    n_patches = sum(len(grid) * n_sizes for grid in grids)
    print(f"{args.model} on {device} ({torch.get_num_threads()} threads), {args.images} images "
          f"{args.height}x{args.width}{f' as {args.resize}-px centre crops' if args.resize else ''}, sizes "
          f"{tuple(args.sizes)} stride {args.stride} padding {args.padding}: {n_patches} patches, "
          f"{args.synsets} synsets, {args.batch_size} patches per forward, "
          f"{'float16 autocast' if dtype else 'float32'}")
    for h, w in [(224, 224), (375, 500), (500, 500)]:
        grid = convis_grid.patch_grid(h, w, args.sizes, args.stride, args.padding)
        print(f"  (for scale: a {h}x{w} image has {grid.shape[0]} locations, {grid.shape[0] * grid.shape[1]} patches)")

    # The same patches, preprocessed once, for the raw forward (on the CPU: device memory stays free).
    spec = convis_volume.clip_input_spec(clip)
    pad = max(args.sizes) if args.padding == "noise" else 0  # boxes in canvas coordinates
    crops = []
    for image, grid in zip(framed, grids):
        pixels = convis_volume.image_pixels(image)
        if pad:
            pixels = convis_volume.noise_padded(pixels, pad)
        crops += [convis_volume.crop_batch(pixels, grid[:, k] + pad, spec) for k in range(n_sizes)]
    batch = torch.cat(crops)
    autocast = (torch.autocast(device.type, dtype=dtype) if dtype else contextlib.nullcontext())
    with torch.inference_mode(), autocast:
        clip.module.encode_image(batch[:8].to(device))  # warm-up

        def raw_forward() -> None:
            for start in range(0, len(batch), args.batch_size):
                clip.module.encode_image(batch[start:start + args.batch_size].to(device))

        with Peak(device) as raw_peak:
            raw_s = timed(raw_forward, device)

    volumes = []

    def stage() -> None:
        volumes.extend(convis_volume.rank_volumes(clip, images, synsets, args.sizes, args.stride, args.batch_size,
                                           resize=args.resize, padding=args.padding, precision=args.precision))

    with Peak(device) as stage_peak:
        stage_s = timed(stage, device)

    volume = volumes[0][1]
    members = np.sort(np.random.default_rng(0).choice(args.synsets, size=min(50, args.synsets), replace=False))
    map_s = timed(lambda: volume.saliency(members), torch.device("cpu"))
    volume_mib = (volume.rank_counts.nbytes + volume.location_emb.nbytes) / 2**20

    n = args.images
    print(f"{'stage':<44} {'seconds':>8} {'images/s':>9} {'patches/s':>10} {'peak MiB':>9}")
    print(f"{'raw encode_image (same patches and batches)':<44} {raw_s:8.2f} {n / raw_s:9.2f} "
          f"{n_patches / raw_s:10.1f} {raw_peak.mib:9.0f}")
    print(f"{'rank_volumes (crop+resize+encode+rank)':<44} {stage_s:8.2f} {n / stage_s:9.2f} "
          f"{n_patches / stage_s:10.1f} {stage_peak.mib:9.0f}")
    print(f"sharded stage / raw forward time: {stage_s / raw_s:.2f}x; peak memory is "
          f"{'the CUDA allocator peak' if device.type == 'cuda' else 'process RSS growth'}; one stored "
          f"volume {volume_mib:.2f} MiB (uint16 ranks {volume.rank_counts.shape} + float16 embeddings)")
    print(f"saliency_map of one synset ({len(members)} members), no CLIP call: {1000 * map_s:.1f} ms")


if __name__ == "__main__":
    main()
