"""Plan a configured experiment at full size: per rule its jobs, time, memory and disk, and
the wall time on one node and on n nodes (one GPU and its CPUs each). Nothing is computed.

Snakemake plans the DAG (a dry run, ``--forceall``, in the repository or ``--directory``);
neuron_concepts.plan counts each job's work from the experiment's sizes and turns it into
seconds with a device's throughputs (benchmarks/throughputs.yaml). The dry run plans for
one node's cores (``--cores`` = the device's CPUs), so each job's threads are those a node
gives it. Sizes a dry run cannot know come from the options: images per probe set
(``--images imagenet_val=50000``; a folder that exists is counted, and ConVis OOD's
``{train}.ood_classes`` is counted the way the workflow lists it), concepts per concept set
(built-in sets have known sizes, a file set is counted), neurons per layer (the target's
dummy forward, as the workflow plans it). The image stages' shards are planned from the
files the folders hold: a placeholder folder needs as many (empty) files as the probe set.

    .venv/bin/python benchmarks/scale_plan.py                            # the demo (make plan)
    .venv/bin/python benchmarks/scale_plan.py --configfile paper.yaml --replace-workflow-config \\
        --images imagenet_val=50000 imagenet_train=1281167 cub=5794 --device h100 --nodes 10
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from neuron_concepts import plan  # noqa: E402

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
# Known sizes of the built-in concept sets (docs/scale-plan.md) and ConVis's ImageNet vocabulary.
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


def ood_reference_images(config: dict, given: dict[str, int]) -> dict[str, int]:
    """ConVis OOD's reference probe set, ``{train_probe}.ood_classes``, and its images: as
    ``given`` (--images), else the files of the train probe set's class folders under an
    in-distribution synset of the OOD pairs, as rules/common.smk
    (convis_ood_reference_classes) lists them. Empty without OOD."""
    from neuron_concepts import data, names, wordnet
    from neuron_concepts.convis_eval import OOD_PAIRS
    from neuron_concepts.errors import InputDataError

    ood = (config.get("convis") or {}).get("ood") or {}
    if not ood.get("train_probe"):
        return {}
    spec = config["probe_sets"][ood["train_probe"]]
    name = names.ood_reference_probe_name(ood["train_probe"])
    root = Path(spec.get("root", ""))
    if name in given:
        return {name: given[name]}
    if spec.get("type") != "imagefolder" or not root.is_dir():
        return {name: count_images(spec) or 0}
    net = wordnet.open_wordnet()
    positives = {net.synset(positive).name() for positive, _ in ood.get("pairs") or OOD_PAIRS}

    def under_a_positive(wnid: str) -> bool:
        try:
            return bool(positives & wordnet.self_and_hypernym_names(wnid))
        except (ValueError, InputDataError):  # not an ImageNet id
            return False

    classes = [p.name for p in sorted(root.iterdir()) if p.is_dir() and under_a_positive(p.name)]
    return {name: data.count_probe_files({**spec, "classes": classes})}


def clip_dissect_ks(config: dict) -> int:
    """The most ks CLIP-Dissect scores in one pass: a variant's top_k and the stability
    study's ks of that variant (methods that differ only in top_k share a pass)."""
    methods = config["methods"].get("clip_dissect") or {}
    stability = config.get("stability") or {}
    most = 1
    for variant in methods.get("variants", []):
        ks = {(methods.get(variant) or {}).get("top_k")} - {None}
        if variant in stability.get("variants", []):
            ks |= set(stability.get("ks", []))
        most = max(most, len(ks))
    return most


def experiment_sizes(config: dict, images: dict[str, int], concepts: dict[str, int]) -> plan.Sizes:
    """plan.Sizes of a config: the options first, then what can be counted or is known."""
    from neuron_concepts import layers

    n_images = {name: images[name] if name in images else (count_images(spec) or 0)
                for name, spec in config["probe_sets"].items()}
    n_images.update(ood_reference_images(config, images))
    n_concepts = {name: concepts[name] if name in concepts else (count_concepts(spec) or 0)
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
                      n_ks=clip_dissect_ks(config),
                      views=len(config["views"]), browser_probe=browser_probe(config),
                      gpu_mem_mb=(config.get("scale") or {}).get("gpu_mem_mb", 16000))


def browser_probe(config: dict) -> str:
    """The probe set the browser and figures show (as neuron_concepts.settings resolves it)."""
    from neuron_concepts import settings

    return settings.resolve(config).figures.probe


def dry_run(args, workdir: Path, cores: int) -> str:
    """``snakemake -n --forceall`` for one node's ``cores``: the threads it prints are those
    a job gets there (a rule's threads capped at the cores, image stages half of them)."""
    cmd = [sys.executable, "-m", "snakemake", "-n", "--forceall", "--cores", str(cores),
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


def summarise(jobs: list[plan.Job], sizes: plan.Sizes, device: plan.Device, nodes: int) -> dict:
    """The plan's figures: per job and per rule (time, CPUs, declared and estimated memory,
    disk), the totals, the critical path and the wall times on one node and on ``nodes``."""
    deps = plan.dependencies(jobs)
    shares = plan.image_shares(jobs)
    works = {job.jobid: plan.job_work(job, sizes, shares[job.jobid]) for job in jobs}
    cpus = {job.jobid: min(job.cpus, device.cpus) for job in jobs}  # what a node can give
    tasks = {job.jobid: plan.Task(id=job.jobid, seconds=device.seconds(works[job.jobid],
                                                                       cpus[job.jobid]),
                                  gpu=job.gpu, cpus=cpus[job.jobid],
                                  local=job.local or job.rule == "all")
             for job in jobs}
    per_job = [dict(jobid=job.jobid, rule=job.rule, seconds=tasks[job.jobid].seconds,
                    cpus=cpus[job.jobid], gpu=job.gpu, mem_mb=job.resource("mem_mb"),
                    gpu_mem_mb=job.resource("gpu_mem_mb"),
                    from_shapes=[name for name in ("mem_mb", "gpu_mem_mb")
                                 if job.resources.get(name) == plan.UNKNOWN],
                    host_est_bytes=works[job.jobid].host,
                    gpu_est_bytes=works[job.jobid].gpu_mem if job.gpu else None,
                    written_bytes=works[job.jobid].written)
               for job in jobs]
    rules: dict[str, dict] = defaultdict(lambda: dict(
        jobs=0, cpus=0, seconds=0.0, longest_s=0.0, mem_mb=None, host_est_bytes=0.0,
        gpu=False, gpu_mem_mb=None, gpu_est_bytes=0.0, written_bytes=0.0, from_shapes=False))
    for job in per_job:
        # ConVis's generated rules, one per rank-volume shard, share a row
        row = rules[re.sub(r"_shard\d+$", "_shard*", job["rule"])]
        row["jobs"] += 1
        row["cpus"] = max(row["cpus"], job["cpus"])
        row["seconds"] += job["seconds"]
        row["longest_s"] = max(row["longest_s"], job["seconds"])
        row["host_est_bytes"] = max(row["host_est_bytes"], job["host_est_bytes"])
        row["written_bytes"] += job["written_bytes"]
        row["gpu"] |= job["gpu"]
        row["from_shapes"] |= bool(job["from_shapes"])
        for key in ("mem_mb", "gpu_mem_mb"):
            if job[key] is not None:
                row[key] = max(row[key] or 0, job[key])
        if job["gpu"]:
            row["gpu_est_bytes"] = max(row["gpu_est_bytes"], job["gpu_est_bytes"])
    total = sum(t.seconds for t in tasks.values())
    path_s, path = plan.critical_path(tasks, deps)
    by_id = {job.jobid: job for job in jobs}
    one, _ = plan.schedule(tasks, deps, 1, device.cpus)
    many, _ = plan.schedule(tasks, deps, nodes, device.cpus)
    biggest = max(tasks.values(), key=lambda t: t.seconds)
    return dict(device=device.name, estimate=device.estimate, nodes=nodes, cpus_per_node=device.cpus,
                jobs=per_job, rules=dict(rules), total_s=total,
                largest_job=dict(rule=by_id[biggest.id].rule, seconds=biggest.seconds),
                critical_path_s=path_s,
                critical_path=list(dict.fromkeys(by_id[t].rule for t in path)),
                wall_1_node_s=one, wall_n_nodes_s=many,
                results_bytes=sum(w.written for w in works.values()))


def report(summary: dict, sizes: plan.Sizes, device: plan.Device) -> str:
    """The plan as text: per-rule table, totals, critical path, wall times."""
    lines = [f"device: {device.name}" + (" (ESTIMATED figures, not measured: "
                                         f"{device.source})" if device.estimate else
                                         f" (measured: {device.source})"),
             f"sizes: images {sizes.images}; concepts {sizes.concepts}; "
             f"neurons {sizes.layers}; n_top {sizes.n_top}, top_k {sizes.top_k}", ""]
    header = (f"{'rule':<40} {'jobs':>5} {'cpus':>4} {'time':>9} {'longest':>9} "
              f"{'mem_mb decl':>12} {'host est':>9} {'gpu_mem_mb decl':>16} {'GPU est':>8} "
              f"{'disk':>9}")
    lines += [header, "-" * len(header)]

    def declared(value, from_shapes):
        return "shapes" if value is None and from_shapes else ("-" if value is None else f"{value:,.0f}")

    for rule, row in sorted(summary["rules"].items(), key=lambda kv: -kv[1]["seconds"]):
        gpu = row["gpu"]
        lines.append(f"{rule:<40} {row['jobs']:>5} {row['cpus']:>4} {human_time(row['seconds']):>9} "
                     f"{human_time(row['longest_s']):>9} "
                     f"{declared(row['mem_mb'], row['from_shapes']):>12} "
                     f"{human_bytes(row['host_est_bytes']):>9} "
                     f"{declared(row['gpu_mem_mb'], row['from_shapes']) if gpu else '':>16} "
                     f"{human_bytes(row['gpu_est_bytes']) if gpu else '':>8} "
                     f"{human_bytes(row['written_bytes']):>9}")
    total, largest = summary["total_s"], summary["largest_job"]
    one, many, nodes = summary["wall_1_node_s"], summary["wall_n_nodes_s"], summary["nodes"]
    lines += ["",
              f"jobs: {len(summary['jobs'])}; total work {human_time(total)}; largest job "
              f"{largest['rule']} {human_time(largest['seconds'])} "
              f"({100 * largest['seconds'] / total:.0f}% of the work)" if total else "",
              f"critical path: {human_time(summary['critical_path_s'])}: "
              + " -> ".join(summary["critical_path"]),
              f"wall time, 1 node ({device.cpus} CPUs, 1 GPU): {human_time(one)}",
              f"wall time, {nodes} nodes: {human_time(many)}"
              + (f" ({many / one:.2f} of one node's)" if one else ""),
              f"results/ size (from artifact shapes): {human_bytes(summary['results_bytes'])}"]
    lines += [f"plan-total-s: {total:.1f}", f"plan-largest-job-s: {largest['seconds']:.1f}",
              f"plan-critical-path-s: {summary['critical_path_s']:.1f}",
              f"plan-wall-1-node-s: {one:.1f}", f"plan-wall-n-nodes-s: {many:.1f}"]
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
    parser.add_argument("--json", default=None,
                        help="also write the plan's figures here (per job, per rule, totals)")
    parser.add_argument("--directory", default=None,
                        help="the working directory to plan in (default: the repository)")
    args = parser.parse_args()

    calibration = yaml.safe_load(Path(args.throughputs).read_text())
    devices = plan.load_devices(calibration)
    if args.device not in devices:
        sys.exit(f"--device {args.device!r}: not in {args.throughputs} ({sorted(devices)})")
    config = merged_config(args.configfile, args.replace_workflow_config, args.config)
    sizes = experiment_sizes(copy.deepcopy(config), pairs(args.images), pairs(args.concepts))
    text = dry_run(args, Path(args.directory or REPO).resolve(), devices[args.device].cpus)
    if args.dry_run_output:
        Path(args.dry_run_output).write_text(text)
    jobs = plan.parse_dry_run(text)
    summary = summarise(jobs, sizes, devices[args.device], args.nodes)
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=1))
    print(report(summary, sizes, devices[args.device]))


if __name__ == "__main__":
    main()
