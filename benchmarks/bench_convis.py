"""Throughput and peak memory of the ConVis rank-volume stage next to the raw CLIP forward.

For one image: the patches of the ConVis grid (sides 64 and 128 sharing a top-left corner,
stride 16; by default the paper's valid locations, every patch inside the image; with
``--padding noise`` the official code's grid over every location whose large patch reaches
into the noise-padded image) are cut, resized and embedded; the raw forward embeds the same,
already preprocessed, patch batch with ``encode_image`` alone. The difference is what
padding, cropping, resizing and ranking against the vocabulary cost. Random CLIP weights and random
synset embeddings: the cost does not depend on their values.

    .venv/bin/python benchmarks/bench_convis.py                  # 224 x 224, ViT-B-32, CPU
    .venv/bin/python benchmarks/bench_convis.py --height 375 --width 500 --device cuda
    .venv/bin/python benchmarks/bench_convis.py --height 375 --width 500 --resize 224 --padding noise  # official
"""

from __future__ import annotations

import argparse
import os
import threading
import time

import numpy as np
import torch
from PIL import Image

from neuron_concepts import convis, models


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


def test_image(height: int, width: int) -> Image.Image:
    """skimage's astronaut photograph resized to ``height x width``."""
    from skimage import data

    return Image.fromarray(data.astronaut()).resize((width, height), Image.BICUBIC)


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
    parser.add_argument("--height", type=int, default=224)
    parser.add_argument("--width", type=int, default=224)
    parser.add_argument("--sizes", type=int, nargs="+", default=list(convis.DEFAULT_SIZES))
    parser.add_argument("--stride", type=int, default=convis.DEFAULT_STRIDE)
    parser.add_argument("--resize", type=int, default=None,
                        help="map the centre crop resized to this side (the official 224); default native")
    parser.add_argument("--padding", choices=convis.PADDINGS, default=convis.DEFAULT_PADDING,
                        help="none: the paper's valid locations (default); noise: the official padded grid")
    parser.add_argument("--synsets", type=int, default=1860, help="vocabulary size (ImageNet closure: 1860)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    clip = models.load_clip(args.model, "random", device=device)  # random weights: no download
    image = test_image(args.height, args.width)
    dim = clip.module.visual.output_dim
    synsets = torch.nn.functional.normalize(torch.randn(args.synsets, dim, generator=torch.Generator().manual_seed(0)), dim=1)

    framed = convis.frame_image(image, args.resize)
    boxes = convis.patch_grid(framed.height, framed.width, args.sizes, args.stride, args.padding)
    n_locations, n_sizes = boxes.shape[:2]
    n_patches = n_locations * n_sizes
    print(f"{args.model} on {device} ({torch.get_num_threads()} threads), image {args.height}x{args.width}"
          f"{f' as a {args.resize}-px centre crop' if args.resize else ''}, sizes {tuple(args.sizes)} "
          f"stride {args.stride} padding {args.padding}: {n_locations} locations x {n_sizes} = {n_patches} patches, "
          f"{args.synsets} synsets, batch {args.batch_size}")
    for h, w in [(224, 224), (375, 500), (500, 500)]:
        grid = convis.patch_grid(h, w, args.sizes, args.stride, args.padding)
        print(f"  (for scale: a {h}x{w} image has {grid.shape[0]} locations, {grid.shape[0] * grid.shape[1]} patches)")

    # The same patch batch, preprocessed once, for the raw forward.
    spec = convis.clip_input_spec(clip)
    pixels = convis.image_pixels(framed)
    pad = max(args.sizes) if args.padding == "noise" else 0  # boxes in canvas coordinates
    if pad:
        pixels = convis.noise_padded(pixels, pad)
    pixels = pixels.to(device)
    with torch.inference_mode():
        crop_s = timed(lambda: [convis.crop_batch(pixels, boxes[:, k] + pad, spec) for k in range(n_sizes)], device)
        batch = torch.cat([convis.crop_batch(pixels, boxes[:, k] + pad, spec) for k in range(n_sizes)])
        clip.module.encode_image(batch[:8])  # warm-up

        def raw_forward() -> None:
            for start in range(0, len(batch), args.batch_size):
                clip.module.encode_image(batch[start:start + args.batch_size])

        with Peak(device) as raw_peak:
            raw_s = timed(raw_forward, device)

    volume = None

    def stage() -> None:
        nonlocal volume
        volume = convis.rank_volume(clip, image, synsets, args.sizes, args.stride, args.batch_size,
                                    resize=args.resize, padding=args.padding)

    with Peak(device) as stage_peak:
        stage_s = timed(stage, device)

    members = np.sort(np.random.default_rng(0).choice(args.synsets, size=min(50, args.synsets), replace=False))
    map_s = timed(lambda: volume.saliency(members), torch.device("cpu"))
    volume_mib = (volume.rank_counts.nbytes + volume.location_emb.nbytes) / 2**20

    print(f"{'stage':<40} {'seconds':>8} {'patches/s':>10} {'peak MiB':>9}")
    print(f"{'raw encode_image (same patch batch)':<40} {raw_s:8.2f} {n_patches / raw_s:10.1f} {raw_peak.mib:9.0f}")
    print(f"{'rank_volume (crop+resize+encode+rank)':<40} {stage_s:8.2f} {n_patches / stage_s:10.1f} {stage_peak.mib:9.0f}")
    print(f"{'  of which crop + resize alone':<40} {crop_s:8.2f} {n_patches / crop_s:10.1f}")
    print(f"rank_volume / raw forward time: {stage_s / raw_s:.2f}x; stored volume {volume_mib:.2f} MiB "
          f"(uint16 ranks {volume.rank_counts.shape} + float16 embeddings)")
    print(f"saliency_map of one synset ({len(members)} members), no CLIP call: {1000 * map_s:.1f} ms")


if __name__ == "__main__":
    main()
