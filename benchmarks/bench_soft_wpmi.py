"""Time and peak memory of soft-WPMI at a large size.

The requirement: peak memory above the interpreter/torch baseline stays below 2.5x the size
of one dense [N, C] float32 matrix. The inputs count: the similarity matrix in float16 (as
the pipeline stores it, 0.5x) and the float32 activations.

    .venv/bin/python benchmarks/bench_soft_wpmi.py                      # default size
    .venv/bin/python benchmarks/bench_soft_wpmi.py --images 50000 --concepts 20000  # ImageNet val
    .venv/bin/python benchmarks/bench_soft_wpmi.py --device cuda

Memory is the process's resident set (VmHWM / VmRSS from /proc/self/status); on CUDA also
torch's peak allocated device memory. Throughput is given in gathered similarity elements
(neurons x top_k x concepts) per second, next to a raw pass of the same element-wise work
(exp and log over one chunk buffer) on the same device.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from neuron_concepts import clip_dissect

MIB = 2 ** 20


def rss_mib() -> tuple[float, float]:
    """Current and peak resident set size of this process, MiB."""
    fields = {}
    with open("/proc/self/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = int(value.split()[0]) / 1024
    return fields["VmRSS"], fields["VmHWM"]


def build_inputs(n_images: int, n_concepts: int, n_neurons: int,
                 seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """float16 similarities near CLIP's cosine range and float32 activations, row chunk by chunk."""
    rng = np.random.default_rng(seed)
    sim = np.empty((n_images, n_concepts), dtype=np.float16)
    step = max(1, 2 ** 22 // n_concepts)
    for start in range(0, n_images, step):
        rows = min(step, n_images - start)
        sim[start:start + rows] = rng.normal(0.2, 0.05, size=(rows, n_concepts)).astype(np.float16)
    acts = rng.standard_normal(size=(n_images, n_neurons), dtype=np.float32)
    return sim, acts


def raw_elementwise_rate(device: torch.device, elements: int = 2 ** 22, repeats: int = 5) -> float:
    """Elements per second of the bare arithmetic per gathered element (mul, sub, exp, mul, add, log)."""
    x = torch.rand(elements, device=device)
    def once():
        y = x.mul(10.0).sub_(3.0).exp_().mul_(0.99).add_(0.01).log_()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return y
    once()
    start = time.perf_counter()
    for _ in range(repeats):
        once()
    return elements * repeats / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20000)
    parser.add_argument("--concepts", type=int, default=20000)
    parser.add_argument("--neurons", type=int, default=2048)
    parser.add_argument("--top-k", type=int, default=100)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--neuron-chunk", type=int, default=None)
    args = parser.parse_args()
    device = torch.device(args.device)

    base_rss, base_peak = rss_mib()
    dense_f32_mib = args.images * args.concepts * 4 / MIB
    sim, acts = build_inputs(args.images, args.concepts, args.neurons)
    inputs_rss, _ = rss_mib()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    start = time.perf_counter()
    scores = clip_dissect.soft_wpmi(sim, acts, top_k=args.top_k, device=device,
                                    neuron_chunk=args.neuron_chunk)
    seconds = time.perf_counter() - start
    _, peak = rss_mib()
    gathered = args.neurons * args.top_k * args.concepts

    print(f"soft-WPMI  N={args.images} images  C={args.concepts} concepts  "
          f"K={args.neurons} neurons  top_k={args.top_k}  device={device}  "
          f"threads={torch.get_num_threads()}")
    print(f"time                      {seconds:9.1f} s   "
          f"({gathered / seconds / 1e6:.0f} M gathered elements/s; raw element-wise work "
          f"{raw_elementwise_rate(device) / 1e6:.0f} M/s)")
    print(f"one [N, C] float32 matrix {dense_f32_mib:9.0f} MiB")
    print(f"inputs (float16 sim + float32 acts) {sim.nbytes / MIB + acts.nbytes / MIB:.0f} MiB; "
          f"output [K, C] float32 {scores.nbytes / MIB:.0f} MiB")
    print(f"baseline RSS              {base_rss:9.0f} MiB (peak so far {base_peak:.0f} MiB)")
    print(f"RSS after inputs          {inputs_rss:9.0f} MiB")
    print(f"peak RSS                  {peak:9.0f} MiB")
    print(f"peak - baseline           {peak - base_rss:9.0f} MiB = "
          f"{(peak - base_rss) / dense_f32_mib:.2f} x one [N, C] float32 matrix "
          f"(requirement < 2.5)")
    if device.type == "cuda":
        gpu_peak = torch.cuda.max_memory_allocated(device) / MIB
        print(f"peak CUDA allocated       {gpu_peak:9.0f} MiB = "
              f"{gpu_peak / dense_f32_mib:.2f} x one [N, C] float32 matrix")


if __name__ == "__main__":
    main()
