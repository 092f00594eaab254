"""The whole pipeline at growing sizes: per-stage time, throughput and memory, and the job count.

Two parts, each optional:

``--images N... --concepts C...`` (the DAG sweep): for each (N, C), a copy of the workflow
runs from scratch on N generated images (a flat folder probe set) and C generated concept
words, with random-initialised models of the configured architectures (ResNet-50, CLIP
ViT-B/32 and ViT-B/16, mpnet; ConVis off: benchmarks/bench_convis.py measures it). Each
job's log ends with its wall time, CPU time and peak memory (neuron_concepts.logs.job_summary); they
are summed per rule and printed with items/s, next to the raw batched forward of the same
models on the same machine.

``--stages N C`` (the memory check): synthetic artifacts at N images x C concepts, each
stage in a fresh process as its job runs it. The similarity stage: CLIP-like image and
text embeddings (D = ``--dim``), streamed into a cosine file as the similarity rule does
it (on ``--device``); prints its peak resident memory next to the formula of
neuron_concepts.resources, one [N, C] float32 matrix and the fixed cost of a process that
only imports the same modules, and its cosines/s next to the bare matmul's. The description
stages: a cosine file and activations of a 2,048-neuron layer, then the WWW and
CLIP-Dissect description jobs on them through the one driver the jobs run
(neuron_concepts.describe: memory-mapped cosines, WWW with both similarities, CLIP-Dissect
at four ks in one pass); prints the peak resident memory next to the largest single input
and the formulas of neuron_concepts.resources (host, and GPU).

    .venv/bin/python benchmarks/bench_pipeline.py                        # make benchmark
    .venv/bin/python benchmarks/bench_pipeline.py --images 5000 50000 --concepts 20000 82115 --device cuda
    .venv/bin/python benchmarks/bench_pipeline.py --images --concepts --stages 50000 20000
    .venv/bin/python benchmarks/bench_pipeline.py --images --concepts --stages 20000 10000 --stage-list similarity
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
WORKFLOW_FILES = ["Snakefile", "config.schema.yaml", "config.yaml", "rules", "workflow_scripts",
                  "envs", "resources/concepts", "report", "profiles"]
SUMMARY = re.compile(r"job done: wall (?P<wall>[0-9.]+) s, CPU (?P<cpu>[0-9.]+) s, "
                     r"peak RSS (?P<rss>[0-9.]+) MiB"
                     r"(?:, peak GPU (?P<gpu>[0-9.]+) MiB)?")
MIB = 2 ** 20


# ---------------------------------------------------------------- the DAG sweep


def synthetic_images(folder: Path, n_images: int, seed: int = 0) -> None:
    """n small JPEGs of smooth random colour fields with a few rectangles (decodable, varied)."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n_images):
        base = rng.integers(0, 256, size=(4, 4, 3), dtype=np.uint8)
        image = Image.fromarray(base).resize((256, 192), Image.BILINEAR)
        draw = ImageDraw.Draw(image)
        for _ in range(3):
            x0, y0 = rng.integers(0, 200), rng.integers(0, 140)
            draw.rectangle([x0, y0, x0 + rng.integers(10, 56), y0 + rng.integers(10, 52)],
                           fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
        image.save(folder / f"img{i:06d}.jpg", quality=90)


def synthetic_concepts(path: Path, n_concepts: int) -> None:
    """n distinct words (WordNet's noun lemmas when there are enough, else numbered)."""
    from neuron_concepts import concepts

    nouns = concepts.wordnet_noun_concepts(deduplicate=True)["text"].tolist()
    words = nouns[:n_concepts] + [f"concept {i}" for i in range(max(0, n_concepts - len(nouns)))]
    path.write_text("\n".join(words) + "\n")


def sweep_config(root: Path, device: str) -> dict:
    """config.yaml with the synthetic probe and concept sets, ConVis and the figures off."""
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config.update(weights="random", device=device,
                  probe_sets={"synthetic": {"type": "folder", "root": str(root / "images")}},
                  concept_sets={"synthetic": {"type": "file", "path": str(root / "concepts.txt")}},
                  evaluation={"probe_sets": ["synthetic"], "concept_sets": ["synthetic"]})
    config.pop("convis", None)
    config["figures"].update(sample_images=[], layers=["fc"])
    return config


def run_dag(n_images: int, n_concepts: int, device: str, cores: str) -> dict:
    """Run the workflow on a synthetic set; per rule: jobs, wall, peak RSS and GPU memory."""
    root = Path(tempfile.mkdtemp(prefix=f"bench-{n_images}-{n_concepts}-"))
    try:
        for name in WORKFLOW_FILES:
            source = REPO / name
            target = root / name
            target.parent.mkdir(parents=True, exist_ok=True)
            (shutil.copytree if source.is_dir() else shutil.copy2)(source, target)
        synthetic_images(root / "images", n_images)
        synthetic_concepts(root / "concepts.txt", n_concepts)
        (root / "config.yaml").write_text(yaml.safe_dump(sweep_config(root, device), sort_keys=False))
        start = time.perf_counter()
        result = subprocess.run([sys.executable, "-m", "snakemake", "--cores", cores],
                                cwd=root, capture_output=True, text=True)
        wall = time.perf_counter() - start
        if result.returncode != 0:
            raise SystemExit(f"the workflow failed at N={n_images}, C={n_concepts}:\n"
                             + (result.stdout + result.stderr)[-4000:])
        rules: dict[str, dict] = defaultdict(lambda: dict(jobs=0, wall=0.0, cpu=0.0, rss=0.0, gpu=0.0))
        for log in (root / "logs").rglob("*.log"):
            found = SUMMARY.search(log.read_text(errors="replace"))
            if not found:
                continue
            rule = log.relative_to(root / "logs").parts[0].removesuffix(".log")
            entry = rules[rule]
            entry["jobs"] += 1
            entry["wall"] += float(found["wall"])
            entry["cpu"] += float(found["cpu"])
            entry["rss"] = max(entry["rss"], float(found["rss"]))
            entry["gpu"] = max(entry["gpu"], float(found["gpu"] or 0))
        jobs = int(re.search(r"(\d+) of \1 steps \(100%\) done", result.stdout + result.stderr)[1])
        return dict(wall=wall, jobs=jobs, rules=dict(rules))
    finally:
        shutil.rmtree(root, ignore_errors=True)


# Items one job of a rule processes, for items/s: (what, count from N and C).
RULE_ITEMS = {
    "image_embeddings": ("images", lambda n, c: n),
    "activations": ("images", lambda n, c: n),
    "grad_cam": ("images", lambda n, c: n),
    "text_embeddings": ("texts", lambda n, c: 3 * c),   # prompts + raw, two models (+ base)
    "evaluation_class_embeddings": ("texts", lambda n, c: 2338),  # the class names, one model a job
    "evaluation_text_embeddings": ("texts", lambda n, c: 2 * c),  # its own texts, two models
    "similarity": ("cosines", lambda n, c: 3 * n * c),  # three (model, view) files
}


def raw_forward_rates(device: str, batch: int = 32, repeats: int = 3) -> dict[str, float]:
    """Items/s of the bare batched forward of each model the DAG runs (random weights)."""
    import open_clip
    import torch
    import torchvision

    dev = torch.device("cuda" if device != "cpu" and torch.cuda.is_available() else "cpu")
    rates = {}

    def rate(fn, items):
        with torch.inference_mode():
            fn()  # warm-up
            if dev.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            for _ in range(repeats):
                fn()
            if dev.type == "cuda":
                torch.cuda.synchronize()
        return items * repeats / (time.perf_counter() - start)

    images = torch.rand(batch, 3, 224, 224, device=dev)
    resnet = torchvision.models.resnet50().eval().to(dev)
    rates["resnet50 images/s"] = rate(lambda: resnet(images), batch)
    for name in ("ViT-B-32", "ViT-B-16"):
        clip = open_clip.create_model(name, pretrained=None).eval().to(dev)
        rates[f"{name} images/s"] = rate(lambda: clip.encode_image(images), batch)
        tokens = open_clip.get_tokenizer(name)(["a photo of a striped dog"] * 256).to(dev)
        rates[f"{name} texts/s (77 tokens)"] = rate(lambda: clip.encode_text(tokens), 256)
    return rates


def print_sweep(points: list[tuple[int, int]], device: str, cores: str) -> None:
    print(f"# DAG sweep on {device} ({os.cpu_count()} CPUs visible)")
    for n_images, n_concepts in points:
        run = run_dag(n_images, n_concepts, device, cores)
        print(f"\nN = {n_images} images, C = {n_concepts} concepts: {run['jobs']} jobs, "
              f"{run['wall']:.1f} s of Snakemake time")
        print(f"{'rule':32} {'jobs':>4} {'wall s':>8} {'CPU s':>8} {'items/s':>20} "
              f"{'peak RSS MiB':>13} {'peak GPU MiB':>13}")
        for rule, entry in sorted(run["rules"].items(), key=lambda kv: -kv[1]["wall"]):
            what, count = RULE_ITEMS.get(rule, ("", None))
            speed = (f"{count(n_images, n_concepts) * entry['jobs'] / entry['wall']:.1f} {what}"
                     if count and entry["wall"] else "")
            print(f"{rule:32} {entry['jobs']:>4} {entry['wall']:>8.1f} {entry['cpu']:>8.1f} {speed:>20} "
                  f"{entry['rss']:>13.0f} {entry['gpu']:>13.0f}")
    print("\nRaw batched forward, same machine:")
    for name, value in raw_forward_rates(device).items():
        print(f"  {name:32} {value:10.1f}")


# ---------------------------------------------------------------- the memory check


# What each description job runs, through the one driver (neuron_concepts.describe): WWW with
# both similarities at n = 40, CLIP-Dissect's soft-WPMI at the stability study's ks and the
# papers' top_k in one pass.
STAGE_METHODS = {
    "www": [dict(method=f"www-{sim}", sim=[sim, 16.0]) for sim in ("cos", "tvmf")],
    "clip_dissect": [dict(method=f"softwpmi-k{k}", scoring=dict(
        variant="softwpmi", top_k=k, a=10, lam=1, p_start=0.998, p_end=0.97, sim="cos",
        kappa=16.0)) for k in (5, 10, 16, 100)],
}
STAGE_OPTIONS = {"www": dict(n_images=40, alpha=0.95), "clip_dissect": dict(n_best=5)}
# (n_top, n_ks) of each stage for neuron_concepts.resources' formulas.
STAGE_SHAPES = {"www": (40, 1), "clip_dissect": (100, 4)}

STAGE_CODE = """
import json, sys, time
from neuron_concepts import describe, logs
family, folder, views, options = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), json.loads(sys.argv[4])
start = time.perf_counter()
describe.describe_job(family, views, folder + "/concepts.parquet", options, device="cpu")
print(json.dumps(dict(wall=time.perf_counter() - start, peak_rss_mib=logs.peak_rss_mib())))
"""


SIMILARITY_CODE = """
import json, sys, time
from neuron_concepts import io, logs, models
from neuron_concepts.similarity import cosine_row_blocks
mode, folder, device, gpu_mem_mb = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
if mode == "fixed":  # the same imports, no data: the cost every job pays
    import torch
    print(json.dumps(dict(peak_rss_mib=logs.peak_rss_mib())))
    sys.exit()
device = models.resolve_device(device)
start = time.perf_counter()
images = io.load_image_embeddings(folder + "/images.npz")
texts = io.load_text_embeddings(folder + "/texts.npz", parts=["prompt", "base", "raw"])
io.save_similarity(folder + "/sim/cos.npz", **cosine_row_blocks(
    images.emb, texts.npz_arrays(), ["prompt", "base", "raw"], device, gpu_mem_mb=gpu_mem_mb))
print(json.dumps(dict(wall=time.perf_counter() - start, peak_rss_mib=logs.peak_rss_mib())))
"""


def unit_rows(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    """n float16 unit vectors sharing a common direction, as CLIP's embeddings do."""
    x = rng.standard_normal((n, dim), dtype=np.float32) + 1.5 * np.ones(dim, np.float32) / np.sqrt(dim)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float16)


def write_embedding_inputs(folder: Path, n_images: int, n_concepts: int, dim: int) -> None:
    """Image embeddings [N, D] and text embeddings (prompt, base, raw) of C concepts."""
    from neuron_concepts import io

    rng = np.random.default_rng(0)
    io.save_image_embeddings(folder / "images.npz", unit_rows(rng, n_images, dim),
                             ids=[f"img{i}" for i in range(n_images)])
    io.save_text_embeddings(folder / "texts.npz", ids=np.arange(n_concepts),
                            prompt=unit_rows(rng, n_concepts, dim), base=unit_rows(rng, 1, dim)[0],
                            raw=unit_rows(rng, n_concepts, dim))


def matmul_rate(n_images: int, n_concepts: int, dim: int, device: str) -> float:
    """Cosines/s of the bare float32 matmul of the similarity stage: [rows, D] x [D, C] for
    every block of rows (the stage's block size), results dropped."""
    import torch

    from neuron_concepts.similarity import block_rows

    dev = torch.device("cuda" if device != "cpu" and torch.cuda.is_available() else "cpu")
    rows = min(n_images, block_rows(n_concepts, dim))
    texts = torch.randn(n_concepts, dim, device=dev)
    images = torch.randn(rows, dim, device=dev)
    blocks = max(1, min(-(-n_images // rows), 20))
    (images @ texts.T).cpu()  # warm-up
    start = time.perf_counter()
    for _ in range(blocks):
        (images @ texts.T).cpu()
    return blocks * rows * n_concepts / (time.perf_counter() - start)


def print_similarity_stage(folder: Path, n_images: int, n_concepts: int, dim: int, device: str,
                           gpu_mem_mb: int) -> None:
    from neuron_concepts import resources

    write_embedding_inputs(folder, n_images, n_concepts, dim)

    def run(mode: str) -> dict:
        out = subprocess.run([sys.executable, "-c", SIMILARITY_CODE, mode, str(folder), device,
                              str(gpu_mem_mb)], capture_output=True, text=True, check=True).stdout
        return json.loads(out.strip().splitlines()[-1])

    fixed, result = run("fixed"), run("similarity")
    matrix = n_images * n_concepts * 4
    formula = resources.similarity_host_bytes(n_images, n_concepts, dim, text_parts=2)
    cosines = n_images * (2 * n_concepts + 1)
    size = (folder / "sim" / "cos.npz").stat().st_size
    print(f"\n# Similarity stage at N = {n_images}, C = {n_concepts}, D = {dim} on {device} "
          f"(prompt, base, raw: file {size / MIB:.0f} MiB; one [N, C] float32 matrix {matrix / MIB:.0f} MiB)")
    print(f"{'peak RSS MiB':>13} {'fixed MiB':>10} {'above fixed':>12} {'/ one matrix':>13} "
          f"{'formula MiB':>12} {'wall s':>8} {'cosines/s':>12} {'matmul cosines/s':>17}")
    above = result["peak_rss_mib"] - fixed["peak_rss_mib"]
    print(f"{result['peak_rss_mib']:>13.0f} {fixed['peak_rss_mib']:>10.0f} {above:>12.0f} "
          f"{above * MIB / matrix:>13.2f} {formula / MIB:>12.0f} {result['wall']:>8.1f} "
          f"{cosines / result['wall']:>12.3g} {matmul_rate(n_images, n_concepts, dim, device):>17.3g}")
    shutil.rmtree(folder / "sim")


def write_stage_inputs(folder: Path, n_images: int, n_concepts: int, n_neurons: int) -> dict:
    """A cosine file (prompt, base, raw; float32, CLIP-like values), streamed, and activations."""
    from neuron_concepts import io

    def cosines(seed: int):
        rng = np.random.default_rng(seed)
        for start in range(0, n_images, 4096):
            yield rng.normal(0.22, 0.03, size=(min(4096, n_images - start), n_concepts)).astype(np.float32)

    rng = np.random.default_rng(0)
    io.save_similarity(folder / "cos.npz",
                       prompt=io.RowBlocks((n_images, n_concepts), np.float32, cosines(0)),
                       base=rng.normal(0.2, 0.03, n_images).astype(np.float32),
                       raw=io.RowBlocks((n_images, n_concepts), np.float32, cosines(0)))
    io.save_activations(folder / "acts.npz", rng.standard_normal((n_images, n_neurons),
                                                                 dtype=np.float32),
                        ids=[f"img{i}" for i in range(n_images)])
    io.save_concepts(folder / "concepts.parquet", pd.DataFrame(dict(
        concept_id=np.arange(n_concepts), text=[f"c{i}" for i in range(n_concepts)],
        synset=pd.Series([None] * n_concepts, dtype="string"))))
    return dict(similarity=(folder / "cos.npz").stat().st_size,
                activations=(folder / "acts.npz").stat().st_size)


def stage_views(family: str, folder: Path) -> list[dict]:
    """The driver's views of one stage: one view, one layer, the stage's methods."""
    methods = [dict(method, path=str(folder / f"{method['method']}.parquet"))
               for method in STAGE_METHODS[family]]
    return [dict(view="center", similarity=str(folder / "cos.npz"), layers=[dict(
        layer="layer", activations=str(folder / "acts.npz"), methods=methods)])]


def print_stages(n_images: int, n_concepts: int, stages: list[str], dim: int = 512,
                 device: str = "cpu", gpu_mem_mb: int = 16000, n_neurons: int = 2048) -> None:
    from neuron_concepts import resources

    folder = Path(tempfile.mkdtemp(prefix="bench-stages-"))
    try:
        if "similarity" in stages:
            print_similarity_stage(folder, n_images, n_concepts, dim, device, gpu_mem_mb)
        stages = [stage for stage in stages if stage != "similarity"]
        if not stages:
            return
        sizes = write_stage_inputs(folder, n_images, n_concepts, n_neurons)
        # The largest single input a job reads: one [N, C] cosine matrix (the file holds two).
        largest = n_images * n_concepts * 4
        print(f"\n# Description stages at N = {n_images}, C = {n_concepts}, K = {n_neurons} "
              f"(cosine file {sizes['similarity'] / MIB:.0f} MiB, one matrix {largest / MIB:.0f} MiB, "
              f"activations {sizes['activations'] / MIB:.0f} MiB), CPU, one layer job")
        print(f"{'stage':14} {'wall s':>8} {'peak RSS MiB':>13} {'/ largest input':>16} "
              f"{'formula MiB':>12} {'formula/peak':>13} {'GPU formula MiB':>16}")
        for stage in stages:
            n_top, n_ks = STAGE_SHAPES[stage]
            host = resources.description_host_bytes(n_images, n_neurons, n_concepts, n_top, n_ks)
            gpu = resources.description_gpu_bytes(n_images, n_neurons, n_concepts, n_top,
                                                  n_ks if stage == "clip_dissect" else 0)
            out = subprocess.run([sys.executable, "-c", STAGE_CODE, stage, str(folder),
                                  json.dumps(stage_views(stage, folder)),
                                  json.dumps(STAGE_OPTIONS[stage])],
                                 capture_output=True, text=True, check=True).stdout
            result = json.loads(out.strip().splitlines()[-1])
            peak = result["peak_rss_mib"]
            print(f"{stage:14} {result['wall']:>8.1f} {peak:>13.0f} "
                  f"{peak * MIB / largest:>16.2f} {host / MIB:>12.0f} {host / MIB / peak:>13.2f} "
                  f"{gpu / MIB:>16.0f}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


STAGES = ["similarity", "www", "clip_dissect"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, nargs="*", default=[32, 96],
                        help="probe set sizes of the DAG sweep (none: skip the sweep)")
    parser.add_argument("--concepts", type=int, nargs="*", default=[300, 1200],
                        help="concept set sizes of the DAG sweep, paired with --images")
    parser.add_argument("--stages", type=int, nargs=2, metavar=("N", "C"), default=None,
                        help="also run the similarity and description stages on synthetic N x C artifacts")
    parser.add_argument("--stage-list", nargs="+", default=STAGES, choices=STAGES,
                        help="the stages --stages runs")
    parser.add_argument("--dim", type=int, default=512, help="embedding dimensions of the similarity stage")
    parser.add_argument("--gpu-mem-mb", type=int, default=16000,
                        help="the similarity stage's GPU budget (scale.gpu_mem_mb)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto (the config's device)")
    parser.add_argument("--cores", default="all", help="snakemake --cores")
    args = parser.parse_args()
    if len(args.images) != len(args.concepts):
        parser.error("--images and --concepts pair up: give as many of each")
    if args.images:
        print_sweep(list(zip(args.images, args.concepts)), args.device, args.cores)
    if args.stages:
        print_stages(*args.stages, stages=args.stage_list, dim=args.dim, device=args.device,
                     gpu_mem_mb=args.gpu_mem_mb)


if __name__ == "__main__":
    main()
