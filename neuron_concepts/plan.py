"""The experiment's plan at full size: jobs, their work, time, memory and disk, and the wall
time on one or several nodes (numpy only; ``benchmarks/scale_plan.py`` prints it).

Snakemake's dry run knows the jobs, their files, wildcards and declared resources, not the
sizes of inputs that do not exist yet. The work model fills those in from the experiment's
sizes (:class:`Sizes`: images per probe set, concepts per concept set, neurons per layer)
and counts each rule's work in the unit its cost grows with (:func:`job_work`): images
through a model, texts through a text tower, cosines written, cosine gathers of the
description methods, thumbnails. A :class:`Device` turns work into seconds with its
per-stage throughputs (``benchmarks/throughputs.yaml``), a stage that runs on the job's
threads (image decoding, thumbnails) at a rate per thread. :func:`schedule` then
list-schedules the DAG, longest remaining path first, on ``n`` nodes of one GPU and a few
CPUs each, a job taking the CPUs a node gives it (:attr:`Job.cpus`).
"""

from __future__ import annotations

import heapq
import re
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

GB = 10 ** 9
MB = 10 ** 6
UNKNOWN = "<TBD>"

# ---------------------------------------------------------------- the dry run, parsed


@dataclass
class Job:
    """One job of a dry run: what Snakemake printed for it."""

    jobid: int
    rule: str
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    wildcards: dict[str, str] = field(default_factory=dict)
    resources: dict[str, str] = field(default_factory=dict)  # as printed; "<TBD>" if unknown yet
    threads: int = 1
    local: bool = False

    def resource(self, name: str) -> float | None:
        """A declared resource as a number, None when undeclared or not known before inputs exist."""
        value = self.resources.get(name)
        try:
            return float(value) if value is not None else None
        except ValueError:
            return None

    @property
    def gpu(self) -> bool:
        return (self.resource("gpu") or 0) > 0

    @property
    def cpus(self) -> int:
        """The CPUs the job holds on a node: its threads (as the dry run planned them for a
        node's cores), or a GPU job's ``cpus_per_gpu`` where it asks for more (SLURM
        allocates those whatever the threads)."""
        per_gpu = self.resource("cpus_per_gpu") if self.gpu else None
        return max(self.threads, int(per_gpu or 0))


_HEADER = re.compile(r"^(local)?rule (\S+):\s*$")
_FIELD = re.compile(r"^\s+(input|output|log|jobid|wildcards|resources|threads|benchmark): ?(.*)$")


def _pairs(text: str) -> dict[str, str]:
    """``a=1, b=x, y`` -> {a: 1, b: "x, y"} (a value may hold commas: names split at ``, key=``)."""
    parts = re.split(r",\s+(?=[A-Za-z_][A-Za-z0-9_]*=)", text.strip())
    return dict(part.split("=", 1) for part in parts if "=" in part)


def parse_dry_run(text: str) -> list[Job]:
    """The jobs of ``snakemake -n`` output (Snakemake 8/9 format), in printed order."""
    jobs: list[Job] = []
    current: Job | None = None
    for line in text.splitlines():
        header = _HEADER.match(line)
        if header:
            current = Job(jobid=-1, rule=header.group(2), local=bool(header.group(1)))
            jobs.append(current)
            continue
        found = _FIELD.match(line) if current is not None else None
        if not found:
            if line and not line.startswith((" ", "\t")):
                current = None  # a timestamp or summary line ends the block
            continue
        key, value = found.groups()
        if key in ("input", "output"):
            setattr(current, key + "s", [p for p in value.split(", ") if p])
        elif key == "jobid":
            current.jobid = int(value)
        elif key == "wildcards":
            current.wildcards = _pairs(value)
        elif key == "resources":
            current.resources = _pairs(value)
        elif key == "threads":
            current.threads = int(value)
    return [job for job in jobs if job.jobid >= 0]


def dependencies(jobs: Sequence[Job]) -> dict[int, set[int]]:
    """jobid -> the jobids whose outputs it reads (files under a directory output count)."""
    producer = {path: job.jobid for job in jobs for path in job.outputs}
    folders = {path.rstrip("/") + "/": jobid for path, jobid in producer.items()}
    deps: dict[int, set[int]] = {}
    for job in jobs:
        found = set()
        for path in job.inputs:
            if path in producer:
                found.add(producer[path])
            else:
                found.update(jobid for folder, jobid in folders.items() if path.startswith(folder))
        found.discard(job.jobid)
        deps[job.jobid] = found
    return deps


# ---------------------------------------------------------------- the work model


@dataclass
class Sizes:
    """The experiment's sizes that a dry run cannot know."""

    images: dict[str, int]  # probe set -> images
    concepts: dict[str, int]  # concept set (or convis-<vocab>) -> texts
    layers: dict[str, int]  # layer name in paths -> neurons
    n_top: int = 40  # WWW's top images per neuron
    top_k: int = 100  # CLIP-Dissect's largest top_k
    n_ks: int = 1  # CLIP-Dissect's most ks scored in one pass (its top_k and the stability ks)
    embed_dim: int = 512  # CLIP's embedding width
    class_names: int = 2338  # the distinct ImageNet class names (evaluation ground truth)
    views: int = 2
    browser_probe: str = ""  # the probe set the browser shows (figures.probe_set)
    convis_volume_bytes: int = 1860 * 920 * 2  # a rank volume at stride 16 (uint16)
    thumbnail_bytes: int = 6000
    gpu_mem_mb: int = 16000  # scale.gpu_mem_mb: the card every GPU job fits into


@dataclass
class Work:
    """A job's work: ``units`` of ``stage`` plus bytes; memory the job holds at its peak."""

    stage: str
    units: float
    written: float = 0.0  # bytes written (its outputs)
    read: float = 0.0  # bytes read that the compute does not hide
    host: float = 2 * GB  # estimated peak host memory, bytes
    gpu_mem: float = 0.0  # estimated peak GPU memory, bytes (GPU jobs)


def _layer_of(path: str, layers: Mapping[str, int]) -> str | None:
    """The layer a path names (a folder or the file stem), if any."""
    parts = re.split(r"[/.]", path)
    return next((part for part in reversed(parts) if part in layers), None)


def _description_work(job: Job, sizes: Sizes, n: int, n_ks: int) -> Work:
    """Gathers of the description methods: each output (view, layer, similarity, method)
    gathers its neurons' top-``n`` rows of an ``[N, C]`` cosine matrix. Memory: the
    formulas the rules declare it with once the inputs exist (neuron_concepts.resources:
    the widest layer ``K``, all the job's layers ``K_sum``), GPU memory capped at
    ``scale.gpu_mem_mb`` as the job chunks its rows."""
    from . import resources

    n_images = sizes.images.get(job.wildcards.get("probe", ""), 0)
    n_concepts = sizes.concepts.get(job.wildcards.get("concepts", ""), 0)
    gathers, layers = 0.0, {}
    for path in job.outputs:
        layer = _layer_of(path, sizes.layers) or ""
        k = sizes.layers.get(layer, 0)
        gathers += k * n * n_concepts
        layers[layer] = k
    widest, neurons = max(layers.values(), default=0), sum(layers.values())
    touched = min(n_images, neurons * n)
    host = resources.description_host_bytes(n_images, widest, n_concepts, n, n_ks, neurons)
    gpu = min(sizes.gpu_mem_mb * resources.MIB,
              resources.description_gpu_bytes(n_images, widest, n_concepts, n,
                                              n_ks if n_ks > 1 else 0))
    return Work(stage="", units=gathers, read=4 * touched * n_concepts, host=host, gpu_mem=gpu)


IMAGE_STAGES = {"activations": "target_images", "grad_cam": "gradcam_images",
                "image_embeddings": "clip_images"}


def job_images(job: Job, sizes: Sizes, share: float = 1.0) -> float:
    """The images a job reads: its shard's manifest rows (``shard=rows0-10016``), else its
    share of its probe set."""
    rows = re.fullmatch(r"rows(\d+)-(\d+)", job.wildcards.get("shard", ""))
    if rows:
        return float(int(rows.group(2)) - int(rows.group(1)))
    return sizes.images.get(job.wildcards.get("probe", ""), 0) * share


def _image_artifact_bytes(stage: str, job: Job, sizes: Sizes, n_images: float) -> float:
    """Bytes of an image stage's outputs for ``n_images`` rows (float32 activations per
    layer file, float16 embeddings, 7 x 7 float32 Grad-CAM maps)."""
    if stage == "activations":
        return sum(4 * n_images * sizes.layers.get(_layer_of(p, sizes.layers) or "", 0)
                   for p in job.outputs)
    if stage == "image_embeddings":
        return 2 * n_images * sizes.embed_dim
    return 4 * n_images * 7 * 7


def job_work(job: Job, sizes: Sizes, share: float = 1.0) -> Work:
    """The work model of a job (see the module docstring and docs/scale-plan.md).

    ``share``: the job's part of its probe set when image stages are sharded (1 / jobs of
    the same rule, probe set and view).
    """
    if job.rule == "all":  # the default target: its inputs only, Snakemake runs nothing for it
        return Work("target", 0, host=0.0)
    n_images = job_images(job, sizes, share)
    for model in (_image_work, _scoring_work, _text_work):
        work = model(job, sizes, n_images)
        if work is not None:
            return work
    return Work("small", 1, host=GB)


def _image_work(job: Job, sizes: Sizes, n_images: float) -> Work | None:
    """Manifests, image stages (whole or a shard) and the joins of their shards."""
    rule, wc = job.rule, job.wildcards
    if rule == "probe_manifest":
        return Work("manifest", n_images, written=100 * n_images)
    base = rule.removesuffix("_shard")
    if base in IMAGE_STAGES:  # the one job of a probe set, or a shard of its rows
        written = _image_artifact_bytes(base, job, sizes, n_images)
        return Work(IMAGE_STAGES[base], n_images, written=written, host=4 * GB + written,
                    gpu_mem=4 * GB)
    if rule.startswith("join_") and rule[len("join_"):] in IMAGE_STAGES:
        # reads its shards and writes the artifact: the probe set's rows, no model
        whole = sizes.images.get(wc.get("probe", ""), 0)
        written = _image_artifact_bytes(rule[len("join_"):], job, sizes, whole)
        return Work("join", 0, written=written, read=written, host=GB + written)
    if rule.startswith("convis_rank_volume"):
        images = len(job.outputs)
        return Work("convis_images", images, written=sizes.convis_volume_bytes * images,
                    host=4 * GB, gpu_mem=4 * GB)
    if rule == "browser":
        probe_n = sizes.images.get(sizes.browser_probe, 0)
        shown = min(probe_n, sum(sizes.layers.values()) * sizes.n_top) * (sizes.views + 1)
        return Work("thumbnails", shown, written=sizes.thumbnail_bytes * shown,  # + Grad-CAM
                    host=GB + 8 * probe_n * max(sizes.layers.values(), default=0))
    return None


def _scoring_work(job: Job, sizes: Sizes, n_images: float) -> Work | None:
    """The similarity matrices and the description jobs."""
    if job.rule == "similarity":
        from . import resources  # the formulas the rule declares its memory with

        n_concepts = sizes.concepts.get(job.wildcards.get("concepts", ""), 0)
        cosines = n_images * n_concepts * len(job.outputs)
        n, c, d = int(n_images), int(n_concepts), sizes.embed_dim
        return Work("cosines", cosines, written=4 * cosines,
                    host=resources.similarity_host_bytes(n, c, d),
                    gpu_mem=resources.similarity_gpu_bytes(n, c, d, sizes.gpu_mem_mb))
    if job.rule == "www_descriptions":
        work = _description_work(job, sizes, sizes.n_top, 1)
        work.stage = "www_gathers"
        return work
    if job.rule == "clip_dissect_descriptions":
        work = _description_work(job, sizes, sizes.top_k, sizes.n_ks)
        work.stage = "softwpmi_gathers"
        return work
    return None


def _text_work(job: Job, sizes: Sizes, _n_images: float) -> Work | None:
    """Concept sets and the text encoders' jobs."""
    rule, wc, d = job.rule, job.wildcards, sizes.embed_dim
    n_concepts = sizes.concepts.get(wc.get("concepts", ""), 0)
    if rule in ("text_embeddings", "evaluation_text_embeddings", "convis_text_embeddings"):
        texts = n_concepts or sizes.concepts.get("convis-" + wc.get("vocab", ""), 0)
        parts = 2 if rule == "evaluation_text_embeddings" else len(job.outputs)
        return Work("texts", texts * parts, written=2 * texts * d * len(job.outputs),
                    host=4 * GB, gpu_mem=2 * GB)
    if rule == "evaluation_class_embeddings":
        return Work("texts", sizes.class_names, written=2 * sizes.class_names * d,
                    host=4 * GB, gpu_mem=2 * GB)
    if rule == "concept_set":
        return Work("concepts", n_concepts, written=50 * n_concepts, host=GB)
    return None


def image_shares(jobs: Sequence[Job]) -> dict[int, float]:
    """Each job's share of its probe set: 1 / the jobs of its rule with the same wildcards
    but for shard-like ones (image-range sharding splits a probe set across jobs)."""
    shard = re.compile(r"shard|part|chunk|start|stop|range|first|last", re.I)
    groups: dict[tuple, list[int]] = {}
    for job in jobs:
        key = (job.rule, tuple(sorted((k, v) for k, v in job.wildcards.items() if not shard.search(k))))
        groups.setdefault(key, []).append(job.jobid)
    return {jobid: 1 / len(ids) for ids in groups.values() for jobid in ids}


@dataclass
class Device:
    """A named node type: seconds per unit of each stage, a start-up per job, bandwidths.

    ``per_thread``: stages that run on the job's threads (decoding images, writing
    thumbnails): units per second per thread, ``throughput`` then the stage's ceiling (the
    GPU's own rate)."""

    name: str
    throughput: dict[str, float]  # stage -> units per second
    startup_s: dict[str, float]  # stage -> seconds per job (imports, model load); "default"
    disk_write: float = 500 * MB  # bytes/s
    disk_read: float = 1000 * MB
    cpus: int = 16
    estimate: bool = False  # figures not measured on this device
    source: str = ""
    per_thread: dict[str, float] = field(default_factory=dict)  # stage -> units/s per thread

    def rate(self, stage: str, threads: int = 1) -> float | None:
        """Units per second of a stage in a job of ``threads`` threads."""
        ceiling = self.throughput.get(stage)
        if stage not in self.per_thread:
            return ceiling
        threaded = self.per_thread[stage] * max(1, min(threads, self.cpus))
        return min(threaded, ceiling) if ceiling else threaded

    def seconds(self, work: Work, threads: int = 1) -> float:
        if work.stage == "target":
            return 0.0
        start = self.startup_s.get(work.stage, self.startup_s.get("default", 5.0))
        rate = self.rate(work.stage, threads)
        compute = work.units / rate if rate else 0.0
        return start + compute + work.written / self.disk_write + work.read / self.disk_read


def load_devices(calibration: Mapping) -> dict[str, Device]:
    """The devices of a calibration mapping (``benchmarks/throughputs.yaml`` parsed)."""
    return {name: Device(name=name, throughput={k: float(v) for k, v in spec["throughput"].items()},
                         startup_s={k: float(v) for k, v in spec.get("startup_s", {}).items()},
                         per_thread={k: float(v) for k, v in (spec.get("per_thread") or {}).items()},
                         disk_write=float(spec.get("disk_write_mb_s", 500)) * MB,
                         disk_read=float(spec.get("disk_read_mb_s", 1000)) * MB,
                         cpus=int(spec.get("cpus", 16)), estimate=bool(spec.get("estimate")),
                         source=str(spec.get("source", "")).strip())
            for name, spec in calibration["devices"].items()}


# ---------------------------------------------------------------- the DAG, scheduled


@dataclass(frozen=True)
class Task:
    """A job as the scheduler sees it: seconds, whether it takes the node's GPU, CPUs."""

    id: int
    seconds: float
    gpu: bool = False
    cpus: int = 1
    local: bool = False  # runs on the submitting host, not a node


def bottom_levels(tasks: Mapping[int, Task], deps: Mapping[int, Iterable[int]]) -> dict[int, float]:
    """Each task's longest path to the end of the DAG, its own time included."""
    children: dict[int, list[int]] = {t: [] for t in tasks}
    for t, parents in deps.items():
        for p in parents:
            children[p].append(t)
    order = _topological(tasks, deps)
    level: dict[int, float] = {}
    for t in reversed(order):
        level[t] = tasks[t].seconds + max((level[c] for c in children[t]), default=0.0)
    return level


def _topological(tasks: Mapping[int, Task], deps: Mapping[int, Iterable[int]]) -> list[int]:
    indegree = {t: len(set(deps.get(t, ()))) for t in tasks}
    children: dict[int, list[int]] = {t: [] for t in tasks}
    for t in tasks:
        for p in set(deps.get(t, ())):
            children[p].append(t)
    ready = sorted(t for t, d in indegree.items() if d == 0)
    order = []
    while ready:
        t = ready.pop()
        order.append(t)
        for c in children[t]:
            indegree[c] -= 1
            if indegree[c] == 0:
                ready.append(c)
    if len(order) != len(tasks):
        raise ValueError("the job graph has a cycle")
    return order


def critical_path(tasks: Mapping[int, Task], deps: Mapping[int, Iterable[int]]) -> tuple[float, list[int]]:
    """The longest chain of dependent tasks: its seconds and its task ids, first to last."""
    level = bottom_levels(tasks, deps)
    children: dict[int, list[int]] = {t: [] for t in tasks}
    for t, parents in deps.items():
        for p in parents:
            children[p].append(t)
    roots = [t for t in tasks if not deps.get(t)]
    if not roots:
        return 0.0, []
    path = [max(roots, key=lambda t: level[t])]
    while children[path[-1]]:
        path.append(max(children[path[-1]], key=lambda c: level[c]))
    return level[path[0]], path


def schedule(tasks: Mapping[int, Task], deps: Mapping[int, Iterable[int]], nodes: int,
             cpus_per_node: int) -> tuple[float, dict[int, tuple[int, float]]]:
    """List-schedule the DAG on ``nodes`` nodes of one GPU and ``cpus_per_node`` CPUs each.

    Whenever a node frees, the ready task with the longest remaining path that fits a node
    (its GPU free if it needs one, enough free CPUs) starts on it; local tasks run on the
    submitting host at once. Returns the makespan and task -> (node, start); node -1: local.
    """
    level = bottom_levels(tasks, deps)
    waiting = {t: set(deps.get(t, ())) for t in tasks}
    free_gpu = [True] * nodes
    free_cpu = [cpus_per_node] * nodes
    ready = [t for t, d in waiting.items() if not d]
    running: list[tuple[float, int, int]] = []  # (end, task, node)
    placed: dict[int, tuple[int, float]] = {}
    now = 0.0
    children: dict[int, list[int]] = {t: [] for t in tasks}
    for t, parents in deps.items():
        for p in parents:
            children[p].append(t)
    while ready or running:
        ready.sort(key=lambda t: (-level[t], t))
        for t in list(ready):
            task = tasks[t]
            if task.local:
                node = -1
            else:
                cpus = min(task.cpus, cpus_per_node)
                node = next((n for n in range(nodes) if free_cpu[n] >= cpus
                             and (free_gpu[n] or not task.gpu)), None)
                if node is None:
                    continue
                free_cpu[node] -= cpus
                free_gpu[node] = free_gpu[node] and not task.gpu
            ready.remove(t)
            placed[t] = (node, now)
            heapq.heappush(running, (now + task.seconds, t, node))
        if not running:
            raise ValueError("a ready task fits no node")
        now, t, node = heapq.heappop(running)
        finished = [(t, node)]
        while running and running[0][0] <= now:
            _, t2, node2 = heapq.heappop(running)
            finished.append((t2, node2))
        for t, node in finished:
            if node >= 0:
                free_cpu[node] += min(tasks[t].cpus, cpus_per_node)
                free_gpu[node] = free_gpu[node] or tasks[t].gpu
            for c in children[t]:
                waiting[c].discard(t)
                if not waiting[c]:
                    ready.append(c)
    return now, placed
