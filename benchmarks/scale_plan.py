"""Plan a configured experiment at full size: per rule its jobs, time, memory and disk, and
the wall time on one node and on n nodes (one GPU and its CPUs each). Nothing is computed.

Snakemake plans the DAG (a dry run, ``--forceall``, in the repository or ``--directory``);
neuron_concepts.plan counts each job's work from the experiment's sizes and turns it into
seconds with a device's throughputs (benchmarks/throughputs.yaml). Sizes a dry run cannot
know come from the options: images per probe set (``--images imagenet_val=50000``; a folder
that exists is counted), concepts per concept set (built-in sets have known sizes, a file set
is counted), neurons per layer (the target's dummy forward, as the workflow plans it).

    .venv/bin/python benchmarks/scale_plan.py                            # the demo (make plan)
    .venv/bin/python benchmarks/scale_plan.py --configfile paper.yaml --replace-workflow-config \\
        --images imagenet_val=50000 imagenet_train=1281167 cub=5794 --device h100 --nodes 10
"""

from __future__ import annotations

import argparse
import copy
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from neuron_concepts import plan  # noqa: E402

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
# Known sizes of the built-in concept sets (README: Scale) and ConVis's ImageNet vocabulary.
BUILTIN_CONCEPTS = {"imagenet": 1862, "imagenet_labels": 1000, "wordnet_nouns": 82115}
CONVIS_VOCABULARY = 1860
DEMO_IMAGES = 22


def pairs(values: list[str]) -> dict[str, int]:
    """NAME=N options as a mapping."""
    out = {}
    for value in values:
        name, _, number = value.partition("=")
        out[name] = int(number.replace(",", "").replace("_", ""))
    return out


def merged_config(configfiles: list[str], replace: bool, overrides: list[str]) -> dict:
    """The config Snakemake will see: config.yaml (unless replaced), the config files merged
    over it (nested dicts merge), --config values, schema defaults filled in."""
    from snakemake.utils import update_config, validate

    config = {} if replace and configfiles else yaml.safe_load((REPO / "config.yaml").read_text())
    for path in configfiles:
        update_config(config, yaml.safe_load(Path(path).read_text()) or {})
    for item in overrides:
        key, _, value = item.partition("=")
        config[key] = yaml.safe_load(value)
    validate(config, str(REPO / "config.schema.yaml"))
    return config


def count_images(spec: dict) -> int | None:
    if spec.get("type") == "demo":
        return DEMO_IMAGES
    root = Path(spec.get("root", ""))
    if not root.is_dir():
        return None
    return sum(1 for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)


def count_concepts(spec: dict) -> int | None:
    if spec.get("type") in BUILTIN_CONCEPTS:
        return BUILTIN_CONCEPTS[spec["type"]]
    path = Path(spec.get("path", ""))
    if spec.get("type") == "file" and path.is_file():
        return sum(1 for line in path.read_text().splitlines() if line.strip())
    return None


def experiment_sizes(config: dict, images: dict[str, int], concepts: dict[str, int]) -> plan.Sizes:
    """plan.Sizes of a config: the options first, then what can be counted or is known."""
    from neuron_concepts import layers

    n_images = {name: images.get(name, count_images(spec) or 0)
                for name, spec in config["probe_sets"].items()}
    n_concepts = {name: concepts.get(name, count_concepts(spec) or 0)
                  for name, spec in config["concept_sets"].items()}
    for name in (config.get("convis") or {}).get("vocabularies", {}) or {"imagenet": None}:
        n_concepts.setdefault(f"convis-{name}", concepts.get(f"convis-{name}", CONVIS_VOCABULARY))
    unknown = [name for name, n in {**n_images, **n_concepts}.items() if not n]
    if unknown:
        print(f"note: no size for {unknown} (give --images / --concepts NAME=N); counted as 0")
    target = layers.target_layers(config)
    clip_dissect = config["methods"].get("clip_dissect") or {}
    top_k = max([v.get("top_k", 0) for v in clip_dissect.values() if isinstance(v, dict)] or [0])
    return plan.Sizes(images=n_images, concepts=n_concepts,
                      layers={n.name: n.neurons for n in target.neurons},
                      n_top=config["methods"]["www"]["n_images"], top_k=top_k or 100,
                      views=len(config["views"]), browser_probe=browser_probe(config),
                      gpu_mem_mb=(config.get("scale") or {}).get("gpu_mem_mb", 16000))


def browser_probe(config: dict) -> str:
    """The probe set the browser and figures show (as neuron_concepts.settings resolves it)."""
    from neuron_concepts import settings

    return settings.resolve(config).figures.probe


def dry_run(args, workdir: Path) -> str:
    cmd = [sys.executable, "-m", "snakemake", "-n", "--forceall", "--cores", "all",
           "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir)]
    for path in args.configfile:
        cmd += ["--configfile", str(Path(path).resolve())]
    if args.replace_workflow_config:
        cmd.append("--replace-workflow-config")
    if args.config:
        cmd += ["--config", *args.config]
    res = subprocess.run(cmd, text=True, capture_output=True, cwd=workdir)
    if res.returncode != 0:
        sys.exit(f"snakemake -n failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}")
    return res.stdout + res.stderr


def human_bytes(n: float) -> str:
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n:.0f} B"


def human_time(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds:.0f} s"


def report(jobs: list[plan.Job], sizes: plan.Sizes, device: plan.Device, nodes: int) -> str:
    """The plan as text: per-rule table, totals, critical path, wall times."""
    deps = plan.dependencies(jobs)
    shares = plan.image_shares(jobs)
    works = {job.jobid: plan.job_work(job, sizes, shares[job.jobid]) for job in jobs}
    tasks = {job.jobid: plan.Task(id=job.jobid, seconds=device.seconds(works[job.jobid]),
                                  gpu=job.gpu, cpus=job.threads,
                                  local=job.local or job.rule == "all")
             for job in jobs}
    rows: dict[str, dict] = defaultdict(lambda: dict(jobs=0, seconds=0.0, mem=None, est_host=0.0,
                                                     gpu_mem=None, est_gpu=0.0, disk=0.0, gpu=False,
                                                     tbd=False))
    for job in jobs:
        row, work = rows[job.rule], works[job.jobid]
        row["jobs"] += 1
        row["seconds"] += tasks[job.jobid].seconds
        row["est_host"] = max(row["est_host"], work.host)
        row["disk"] += work.written
        row["gpu"] |= job.gpu
        for key, name in (("mem", "mem_mb"), ("gpu_mem", "gpu_mem_mb")):
            value = job.resource(name)
            if value is not None:
                row[key] = max(row[key] or 0, value)
            elif job.resources.get(name) is not None:
                row["tbd"] = True
        if job.gpu:
            row["est_gpu"] = max(row["est_gpu"], work.gpu_mem)
    lines = [f"device: {device.name}" + (" (ESTIMATED figures, not measured: "
                                         f"{device.source})" if device.estimate else
                                         f" (measured: {device.source})"),
             f"sizes: images {sizes.images}; concepts {sizes.concepts}; "
             f"neurons {sizes.layers}; n_top {sizes.n_top}, top_k {sizes.top_k}", ""]
    header = (f"{'rule':<40} {'jobs':>5} {'time':>9} {'mem_mb decl':>12} {'host est':>9} "
              f"{'gpu_mem_mb decl':>16} {'GPU est':>8} {'disk':>9}")
    lines += [header, "-" * len(header)]

    def declared(value, tbd):
        return "shapes" if value is None and tbd else ("-" if value is None else f"{value:,.0f}")

    for rule, row in sorted(rows.items(), key=lambda kv: -kv[1]["seconds"]):
        lines.append(f"{rule:<40} {row['jobs']:>5} {human_time(row['seconds']):>9} "
                     f"{declared(row['mem'], row['tbd']):>12} {human_bytes(row['est_host']):>9} "
                     f"{declared(row['gpu_mem'], row['tbd']) if row['gpu'] else '':>16} "
                     f"{human_bytes(row['est_gpu']) if row['gpu'] else '':>8} "
                     f"{human_bytes(row['disk']):>9}")
    total = sum(t.seconds for t in tasks.values())
    path_s, path = plan.critical_path(tasks, deps)
    by_id = {job.jobid: job for job in jobs}
    one, _ = plan.schedule(tasks, deps, 1, device.cpus)
    many, _ = plan.schedule(tasks, deps, nodes, device.cpus)
    biggest = max(tasks.values(), key=lambda t: t.seconds)
    lines += ["",
              f"jobs: {len(jobs)}; total work {human_time(total)}; largest job "
              f"{by_id[biggest.id].rule} {human_time(biggest.seconds)} "
              f"({100 * biggest.seconds / total:.0f}% of the work)" if total else "",
              f"critical path: {human_time(path_s)}: "
              + " -> ".join(dict.fromkeys(by_id[t].rule for t in path)),
              f"wall time, 1 node ({device.cpus} CPUs, 1 GPU): {human_time(one)}",
              f"wall time, {nodes} nodes: {human_time(many)}",
              f"results/ size (from artifact shapes): "
              f"{human_bytes(sum(w.written for w in works.values()))}"]
    lines += [f"plan-total-s: {total:.1f}", f"plan-largest-job-s: {biggest.seconds:.1f}",
              f"plan-critical-path-s: {path_s:.1f}", f"plan-wall-1-node-s: {one:.1f}",
              f"plan-wall-n-nodes-s: {many:.1f}"]
    if device.estimate:
        lines.append(f"NOTE: the {device.name} figures are estimates, not measurements "
                     "(benchmarks/throughputs.yaml says where each comes from).")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configfile", nargs="*", default=[], help="config files, as snakemake's")
    parser.add_argument("--replace-workflow-config", action="store_true",
                        help="the config files replace config.yaml instead of merging into it")
    parser.add_argument("--config", nargs="*", default=[], help="KEY=VALUE, as snakemake's")
    parser.add_argument("--images", nargs="*", default=[], metavar="PROBE=N")
    parser.add_argument("--concepts", nargs="*", default=[], metavar="SET=C")
    parser.add_argument("--device", default="cpu-2core", help="a device of --throughputs")
    parser.add_argument("--nodes", type=int, default=10)
    parser.add_argument("--throughputs", default=str(REPO / "benchmarks" / "throughputs.yaml"))
    parser.add_argument("--dry-run-output", default=None, help="also write the dry run's text here")
    parser.add_argument("--directory", default=None,
                        help="the working directory to plan in (default: the repository)")
    args = parser.parse_args()

    calibration = yaml.safe_load(Path(args.throughputs).read_text())
    devices = plan.load_devices(calibration)
    if args.device not in devices:
        sys.exit(f"--device {args.device!r}: not in {args.throughputs} ({sorted(devices)})")
    config = merged_config(args.configfile, args.replace_workflow_config, args.config)
    sizes = experiment_sizes(copy.deepcopy(config), pairs(args.images), pairs(args.concepts))
    text = dry_run(args, Path(args.directory or REPO).resolve())
    if args.dry_run_output:
        Path(args.dry_run_output).write_text(text)
    jobs = plan.parse_dry_run(text)
    print(report(jobs, sizes, devices[args.device], args.nodes))


if __name__ == "__main__":
    main()
