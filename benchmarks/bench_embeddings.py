"""Throughput of the text- and image-embedding stages next to the raw model forward.

    python benchmarks/bench_embeddings.py [--clip ViT-B-32] [--texts 2048] [--images 96] [--format jpeg]

Text stage: ``embeddings.encode_texts`` on concept names (tokenise, sort by length, cut the
context, encode, normalise) against the raw ``encode_text`` forward of the same batches,
both with the full 77-token context and with the context cut by hand. Image stage: the
pipeline's loader (decode, preprocess) and ``embeddings.encode_images`` on the demo
photographs (PNGs from 102x102 to 1411x1411 px) against the raw ``encode_image`` forward of
preprocessed tensors, same batch size, both with torchvision decoding (the pipeline's path)
and with PIL (the pipeline's scale.image_decode: pil), and on CUDA with the GPU path
(scale.image_decode: gpu, nvJPEG: use --format jpeg), timed alternately; medians of ``--repeats``. Random
weights: throughput does not depend on them. Prints items/s and peak memory.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time

import torch

from neuron_concepts import concepts, data, embeddings, models


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(fn, repeats: int = 1) -> float:
    """Best wall time of ``repeats`` runs of ``fn`` (after one warm-up call)."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best


def bench_text(clip: models.ClipModel, n_texts: int, batch_size: int, repeats: int) -> None:
    texts = list(concepts.imagenet_concepts()["text"][:n_texts])
    texts = (texts * (n_texts // len(texts) + 1))[:n_texts]
    tokens = clip.tokenizer(texts)
    order = torch.argsort((tokens != 0).sum(1), stable=True)
    batches = [tokens[order[i:i + batch_size]].to(clip.device) for i in range(0, n_texts, batch_size)]

    @torch.inference_mode()
    def raw_full():
        for batch in batches:
            clip.module.encode_text(batch)

    @torch.inference_mode()
    def raw_cut():
        for batch in batches:
            embeddings.encode_tokens_cut(clip.module, batch)

    def stage():
        embeddings.encode_texts(clip, texts, batch_size, progress=False)

    t_full, t_cut, t_stage = timed(raw_full, repeats), timed(raw_cut, repeats), timed(stage, repeats)
    print(f"text  raw encode_text, 77-token context : {n_texts / t_full:9.1f} texts/s")
    print(f"text  raw encode_text, cut context      : {n_texts / t_cut:9.1f} texts/s")
    print(f"text  stage encode_texts                : {n_texts / t_stage:9.1f} texts/s "
          f"(overhead vs raw cut forward {100 * (t_stage / t_cut - 1):+.1f}%)")


def jpeg_copies(manifest, folder: str):
    """The manifest's images re-encoded as JPEG (quality 95, as ImageNet's files are JPEGs),
    so the GPU path decodes with nvJPEG rather than receiving CPU-decoded PNG pixels."""
    from pathlib import Path

    paths = []
    for path in manifest["path"]:
        target = Path(folder) / (Path(path).stem + ".jpg")
        if not target.exists():
            data.load_image(path).save(target, format="JPEG", quality=95)
        paths.append(str(target))
    return manifest.assign(path=paths)


def bench_images(clip: models.ClipModel, n_images: int, batch_size: int, repeats: int,
                 workers: int | None = None, paths: str = "fast", image_format: str = "png") -> None:
    """The image stage against the raw forward, timed alternately ``repeats`` times (medians).

    ``paths``: ``fast`` (torchvision decoding and tensor preprocessing), ``pil`` (PIL
    decoding and preprocessing, the pipeline's ``scale.image_decode: pil``) or ``both``; on
    CUDA the GPU path (``scale.image_decode: gpu``: nvJPEG and GPU resizing) is timed too.
    ``image_format``: the demo photographs as PNG (as they come) or re-encoded as JPEG.
    Besides wall time, CPU seconds (this process and its loader workers) are shown: on a
    machine shared with other jobs they vary less than wall time.
    """
    with tempfile.TemporaryDirectory() as folder:
        manifest, _ = data.build_manifest(data.materialise_demo(folder))
        manifest = manifest.sample(n=n_images, replace=True, random_state=0).reset_index(drop=True)
        if image_format == "jpeg":
            manifest = jpeg_copies(manifest, folder)
        workers = data.default_workers(clip.device) if workers is None else workers
        tensors = list(data.image_loader(manifest, clip.preprocess, batch_size, fast=False))

        @torch.inference_mode()
        def raw():
            for batch in tensors:
                clip.module.encode_image(batch.to(clip.device))

        def stage(fast: bool):
            return lambda: embeddings.encode_images(
                clip, data.image_loader(manifest, clip.preprocess, batch_size, workers=workers,
                                        device=clip.device, fast=fast), progress=False)

        variants = {"fast": [True], "pil": [False], "both": [False, True]}[paths]
        runs = {"raw": raw, **{("fast" if f else "pil"): stage(f) for f in variants}}
        if clip.device.type == "cuda":
            runs["gpu"] = lambda: embeddings.encode_images(
                clip, data.probe_loader(manifest, clip.preprocess, batch_size, workers=workers,
                                        device=clip.device, decode="gpu"), progress=False)
            print(f"GPU decoding with {data.cuda_jpeg_decoder()[0]}")
        wall: dict[str, list[float]] = {name: [] for name in runs}
        cpu: dict[str, list[float]] = {name: [] for name in runs}
        for fn in runs.values():
            fn()  # warm-up
        for _ in range(repeats):  # alternate, so a busy spell of the machine hits every row
            for name, fn in runs.items():
                seconds, cpu_seconds = timed_once(fn)
                wall[name].append(seconds)
                cpu[name].append(cpu_seconds)
    t_raw, c_raw = statistics.median(wall["raw"]), statistics.median(cpu["raw"])
    print(f"image raw encode_image, batch {batch_size:<4}      : {n_images / t_raw:9.1f} images/s "
          f"(median of {repeats}; {c_raw / n_images * 1000:.0f} CPU ms/image)")
    for name in runs:
        if name == "raw":
            continue
        t, c = statistics.median(wall[name]), statistics.median(cpu[name])
        ratios = [s / r for s, r in zip(wall[name], wall["raw"])]
        print(f"image stage {name:<4} (load, preprocess, encode): {n_images / t:9.1f} images/s "
              f"(overhead vs raw forward {100 * (t / t_raw - 1):+.1f}%, median of paired runs "
              f"{100 * (statistics.median(ratios) - 1):+.1f}%; CPU {100 * (c / c_raw - 1):+.1f}%; "
              f"{workers} loader workers)")


def timed_once(fn) -> tuple[float, float]:
    """Wall and CPU seconds (this process and finished children) of one call of ``fn``."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start, cpu_start = time.perf_counter(), cpu_seconds()
    fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - start, cpu_seconds() - cpu_start


def cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clip", default="ViT-B-32")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--texts", type=int, default=2048)
    parser.add_argument("--text-batch", type=int, default=256)
    parser.add_argument("--images", type=int, default=96)
    parser.add_argument("--image-batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--workers", type=int, default=None,
                        help="image loader processes (default: the pipeline's choice for the device)")
    parser.add_argument("--image-path", choices=["fast", "pil", "both"], default="both",
                        help="image stage: torchvision decoding (fast), PIL (the path before), or both")
    parser.add_argument("--format", choices=["png", "jpeg"], default="png",
                        help="the demo photographs as PNG, or re-encoded as JPEG (ImageNet's format)")
    parser.add_argument("--skip-text", action="store_true", help="only the image stage")
    args = parser.parse_args()
    device = models.resolve_device(args.device)
    clip = models.load_clip(args.clip, "random", device=device)
    print(f"{args.clip} (random weights) on {device}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    if not args.skip_text:
        bench_text(clip, args.texts, args.text_batch, args.repeats)
    bench_images(clip, args.images, args.image_batch, args.repeats, args.workers, args.image_path,
                 args.format)
    print(f"peak host memory (RSS): {peak_rss_mib():.0f} MiB")
    if device.type == "cuda":
        print(f"peak GPU memory: {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
