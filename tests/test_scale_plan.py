"""The scale plan (neuron_concepts.plan, benchmarks/scale_plan.py): the dry run parsed, the
work model on constructed jobs, the critical path and n-node list scheduling on a hand-made
DAG with known answers, and the papers' experiment planned on placeholder folders."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from conftest import REPO, copy_workflow
from neuron_concepts import plan

# ---------------------------------------------------------------- the hand-made DAG
#      A(2)
#     /    \
#   B(3)   C(4)      E(5) independent, a CPU job
#     \    /
#      D(1)
TASKS = {1: plan.Task(1, 2.0, gpu=True), 2: plan.Task(2, 3.0, gpu=True),
         3: plan.Task(3, 4.0, gpu=True), 4: plan.Task(4, 1.0, gpu=True),
         5: plan.Task(5, 5.0, gpu=False, cpus=4)}
DEPS = {1: set(), 2: {1}, 3: {1}, 4: {2, 3}, 5: set()}


def test_critical_path_is_the_longest_chain():
    seconds, path = plan.critical_path(TASKS, DEPS)
    assert seconds == 7.0 and path == [1, 3, 4]
    assert plan.bottom_levels(TASKS, DEPS) == {1: 7.0, 2: 4.0, 3: 5.0, 4: 1.0, 5: 5.0}


def test_one_node_runs_gpu_jobs_one_at_a_time_beside_cpu_jobs():
    # One GPU: A, C, B, D in turn (10 s); E runs on the CPUs meanwhile.
    makespan, placed = plan.schedule(TASKS, DEPS, nodes=1, cpus_per_node=8)
    assert makespan == 10.0
    assert placed[5] == (0, 0.0) and placed[3][1] == 2.0 and placed[2][1] == 6.0


def test_two_nodes_reach_the_critical_path():
    makespan, placed = plan.schedule(TASKS, DEPS, nodes=2, cpus_per_node=8)
    assert makespan == 7.0
    assert placed[2][1] == placed[3][1] == 2.0 and placed[2][0] != placed[3][0]


def test_cpus_limit_cpu_jobs_on_a_node():
    tasks = {i: plan.Task(i, 1.0, cpus=2) for i in range(4)}
    makespan, _ = plan.schedule(tasks, {i: set() for i in tasks}, nodes=1, cpus_per_node=4)
    assert makespan == 2.0  # two at a time
    makespan, _ = plan.schedule(tasks, {i: set() for i in tasks}, nodes=2, cpus_per_node=4)
    assert makespan == 1.0


def test_a_cycle_is_refused():
    with pytest.raises(ValueError, match="cycle"):
        plan.critical_path({1: plan.Task(1, 1.0), 2: plan.Task(2, 1.0)}, {1: {2}, 2: {1}})


# ---------------------------------------------------------------- the dry run and the work model
DRY_RUN = """\
[Mon Dec  7 02:58:43 2026]
rule image_embeddings:
    input: results/probe/p/manifest.parquet
    output: results/image_emb/p/clip/center.npz
    log: logs/x.log
    jobid: 8
    wildcards: probe=p, clip=clip, view=center
    threads: 4
    resources: tmpdir=/tmp, gpu=1, runtime=120, mem_mb=8000, gpu_mem_mb=3000
[Mon Dec  7 02:58:43 2026]
rule www_descriptions:
    input: results/image_emb/p/clip/center.npz, results/similarity/p/clip/center/words/cos.npz
    output: results/descriptions/p/t/layer1/www-a/words.parquet, results/descriptions/p/t/fc/www-a/words.parquet
    jobid: 9
    wildcards: probe=p, concepts=words
    resources: tmpdir=/tmp, gpu=1, mem_mb=<TBD>, gpu_mem_mb=<TBD>
[Mon Dec  7 02:58:43 2026]
localrule all:
    input: results/descriptions/p/t/fc/www-a/words.parquet
    jobid: 0
    resources: tmpdir=/tmp
Job stats:
"""


def test_dry_run_is_parsed_into_jobs_and_dependencies():
    jobs = plan.parse_dry_run(DRY_RUN)
    assert [(j.jobid, j.rule, j.local) for j in jobs] == [
        (8, "image_embeddings", False), (9, "www_descriptions", False), (0, "all", True)]
    image, www, _ = jobs
    assert image.threads == 4 and image.gpu and image.resource("gpu_mem_mb") == 3000
    assert www.resource("mem_mb") is None and www.resources["mem_mb"] == plan.UNKNOWN
    assert www.wildcards == {"probe": "p", "concepts": "words"}
    assert plan.dependencies(jobs) == {8: set(), 9: {8}, 0: {9}}


def test_description_work_counts_gathers_per_layer():
    sizes = plan.Sizes(images={"p": 1000}, concepts={"words": 300},
                       layers={"layer1": 64, "fc": 10}, n_top=5)
    www = plan.parse_dry_run(DRY_RUN)[1]
    work = plan.job_work(www, sizes)
    assert work.stage == "www_gathers"
    assert work.units == (64 + 10) * 5 * 300  # K x n x C per output
    # Memory as the rule declares it (neuron_concepts.resources): on the GPU the widest
    # layer's top images, min(N, K n) = 320 rows of 300 float32 cosines, and the working
    # blocks and context; on the host every layer's, min(N, K_sum n) = 370 rows.
    from neuron_concepts import resources

    assert work.gpu_mem == 4 * 320 * 300 + resources.GPU_BLOCK_BYTES + resources.GPU_RESERVE_BYTES
    assert work.host == resources.description_host_bytes(1000, 64, 300, 5, 1, 64 + 10)
    assert work.read == 4 * 370 * 300


def test_similarity_writes_n_by_c_float32_per_cosine_file_and_shards_split_images():
    sizes = plan.Sizes(images={"p": 1000}, concepts={"words": 300}, layers={"fc": 10})
    sim = plan.Job(1, "similarity", outputs=["a/cos.npz", "b/cos.npz"],
                   wildcards={"probe": "p", "concepts": "words"})
    assert plan.job_work(sim, sizes).written == 2 * 1000 * 300 * 4
    shards = [plan.Job(i, "activations", outputs=["x/fc.npz"],
                       wildcards={"probe": "p", "view": "center", "shard": str(i)}) for i in range(4)]
    shares = plan.image_shares(shards)
    assert set(shares.values()) == {0.25}
    assert plan.job_work(shards[0], sizes, shares[0]).written == 4 * 250 * 10


def test_device_seconds_add_startup_compute_and_disk():
    device = plan.Device("d", throughput={"cosines": 100.0}, startup_s={"default": 1.0},
                         disk_write=400.0, disk_read=1000.0)
    assert device.seconds(plan.Work("cosines", 1000.0, written=4000.0)) == 1.0 + 10.0 + 10.0


def test_the_calibration_names_its_devices_and_says_which_are_estimates():
    devices = plan.load_devices(yaml.safe_load((REPO / "benchmarks" / "throughputs.yaml").read_text()))
    assert not devices["cpu-2core"].estimate and devices["h100"].estimate
    assert "ESTIMATES" in devices["h100"].source
    stages = {"target_images", "clip_images", "texts", "cosines", "www_gathers", "thumbnails"}
    assert all(stages <= set(d.throughput) for d in devices.values())


def test_threaded_stages_run_at_a_rate_per_thread_up_to_their_ceiling():
    device = plan.Device("d", throughput={"clip_images": 500.0, "texts": 100.0},
                         startup_s={"default": 0.0}, per_thread={"clip_images": 100.0}, cpus=16)
    assert device.rate("clip_images", 1) == 100.0 and device.rate("clip_images", 4) == 400.0
    assert device.rate("clip_images", 8) == 500.0  # the GPU's own rate
    assert device.rate("texts", 8) == 100.0  # not threaded
    assert device.seconds(plan.Work("clip_images", 800.0, written=0.0), threads=4) == 2.0
    assert device.seconds(plan.Work("target", 0.0)) == 0.0  # a target rule runs nothing


def test_a_job_holds_its_threads_or_its_cpus_per_gpu():
    assert plan.parse_dry_run(DRY_RUN)[0].cpus == 4
    job = plan.Job(1, "convis_rank_volume_x_shard0000", resources={"gpu": "1", "cpus_per_gpu": "8"})
    assert job.cpus == 8
    assert plan.Job(2, "x", resources={"cpus_per_gpu": "8"}).cpus == 1  # no GPU: its threads


def test_an_image_shard_reads_its_rows_and_a_join_writes_the_whole_artifact():
    sizes = plan.Sizes(images={"p": 25000}, concepts={}, layers={"fc": 10})
    shard = plan.Job(1, "activations_shard", outputs=["a/shards/rows20032-25000/fc.npz"],
                     wildcards={"probe": "p", "view": "center", "shard": "rows20032-25000"})
    work = plan.job_work(shard, sizes)
    assert work.stage == "target_images" and work.units == 4968 and work.written == 4 * 4968 * 10
    join = plan.Job(2, "join_activations", outputs=["a/fc.npz"], wildcards={"probe": "p", "view": "center"})
    assert plan.job_work(join, sizes).written == 4 * 25000 * 10
    embeddings = plan.Job(3, "image_embeddings_shard", outputs=["e/shards/rows0-10016/center.npz"],
                          wildcards={"probe": "p", "clip": "c", "shard": "rows0-10016", "view": "center"})
    assert plan.job_work(embeddings, sizes).written == 2 * 10016 * 512


# ---------------------------------------------------------------- the papers' experiment, planned
# ImageNet val (50,000 images), the four concept sets, ResNet-50 layer1-fc, every method, and
# ConVis's OOD table and WSOL on every CUB test image (issue #21): the config of
# tests/test_paper_scale.py on placeholder files as many as the real data sets' (the image
# stages' shards are planned from the files), on the h100 figures (estimates).


def paper_plan(tmp_path, nodes: int = 10) -> tuple[list[plan.Job], str, dict]:
    """benchmarks/scale_plan.py on the papers' config with ConVis OOD and WSOL, its folders
    placeholders of the data sets' sizes, run the documented way (the config replaces
    config.yaml): the dry run's jobs, the printed plan, the plan's figures (--json)."""
    import json

    from test_paper_scale import (cub_placeholders, imagenet_placeholders, paper_config,
                                  with_convis_ood_and_wsol)

    copy_workflow(tmp_path / "flow")
    data = tmp_path / "data"
    config = paper_config(data)
    images = imagenet_placeholders(data)  # 50,000 val files, ConVis OOD's train classes
    images["cub"] = cub_placeholders(data)
    config = with_convis_ood_and_wsol(config, data)
    (tmp_path / "paper.yaml").write_text(yaml.safe_dump(config))
    cmd = [sys.executable, str(REPO / "benchmarks" / "scale_plan.py"),
           "--configfile", str(tmp_path / "paper.yaml"), "--replace-workflow-config",
           "--images", *[f"{name}={n}" for name, n in images.items()], "imagenet_train=1281167",
           "--concepts", "broden=1197", "--device", "h100", "--nodes", str(nodes),
           "--directory", str(tmp_path / "flow"), "--dry-run-output", str(tmp_path / "dry_run.txt"),
           "--json", str(tmp_path / "plan.json")]
    out = subprocess.run(cmd, text=True, capture_output=True, check=True).stdout
    return (plan.parse_dry_run((tmp_path / "dry_run.txt").read_text()), out,
            json.loads((tmp_path / "plan.json").read_text()))


@pytest.fixture(scope="module")
def planned(tmp_path_factory):
    return paper_plan(tmp_path_factory.mktemp("paper_plan"))


@pytest.mark.workflow
def test_paper_plan_prints_the_per_rule_table_and_totals(planned):
    jobs, out, figures = planned
    assert "rule" in out and "mem_mb decl" in out and "gpu_mem_mb decl" in out
    for rule in ("similarity", "www_descriptions", "clip_dissect_descriptions", "activations_shard",
                 "image_embeddings_shard", "grad_cam_shard", "browser", "convis_ood", "convis_wsol"):
        assert any(line.startswith(rule + " ") for line in out.splitlines()), rule
    assert "critical path:" in out and "wall time, 1 node" in out and "wall time, 10 nodes" in out
    assert "results/ size" in out and "ESTIMATED" in out
    assert len(jobs) == len(figures["jobs"]) > 100
    # 50,000 val images in five shards per image stage; ConVis OOD's 158,600 reference images
    # (the train classes under its in-distribution synsets) in 16; CUB's 5,800 test images in
    # six rank-volume jobs
    counts = {rule: row["jobs"] for rule, row in figures["rules"].items()}
    assert counts["grad_cam_shard"] == 5 and counts["activations_shard"] == 2 * 5
    assert counts["image_embeddings_shard"] == 3 * 5 + 16
    assert sum(n for rule, n in counts.items() if rule.startswith("convis_rank_volume")) == 6
    # a node's threads: image stages 8 of its 16 CPUs, the browser its 8
    assert figures["rules"]["image_embeddings_shard"]["cpus"] == 8
    assert figures["rules"]["browser"]["cpus"] == 8


@pytest.mark.workflow
def test_paper_plan_no_job_declares_more_host_memory_than_a_64_gb_node(planned):
    jobs, _, figures = planned
    declared = {(job.rule, job.resource("mem_mb")) for job in jobs if job.resource("mem_mb")}
    assert declared and all(mb <= 64000 for _, mb in declared), declared
    # The jobs that declare it from their inputs' shapes (descriptions, similarity): the plan's
    # estimate is the rule's own formula (neuron_concepts.resources) on the planned shapes.
    from_shapes = [job for job in figures["jobs"] if "mem_mb" in job["from_shapes"]]
    assert {job["rule"] for job in from_shapes} >= {"similarity", "www_descriptions",
                                                    "clip_dissect_descriptions"}
    assert all(job["host_est_bytes"] <= 64000 * 2 ** 20 for job in from_shapes), \
        max((job["host_est_bytes"], job["rule"]) for job in from_shapes)


@pytest.mark.workflow
def test_paper_plan_the_text_stages_declare_gpu_memory(planned):
    jobs, _, _ = planned
    ours = {"text_embeddings", "evaluation_class_embeddings", "evaluation_text_embeddings"}
    checked = [job for job in jobs if job.rule in ours]
    assert checked and all(job.resources.get("gpu_mem_mb") for job in checked)


@pytest.mark.workflow
def test_paper_plan_every_gpu_job_declares_gpu_memory(planned):
    jobs, _, _ = planned
    gpu_jobs = [job for job in jobs if job.gpu]
    assert len(gpu_jobs) > 80
    missing = sorted({job.rule for job in gpu_jobs if not job.resources.get("gpu_mem_mb")})
    assert not missing


@pytest.mark.workflow
def test_paper_plan_similarity_job_fits_16_gb(planned):
    jobs, _, figures = planned
    similarity = [job for job in figures["jobs"] if job["rule"] == "similarity"]
    assert len(similarity) == 4
    for job in similarity:
        # declared from the shapes once the embeddings exist, by the formula estimated here
        assert job["mem_mb"] is None and "mem_mb" in job["from_shapes"]
        assert job["host_est_bytes"] < 16e9, job


@pytest.mark.workflow
def test_paper_plan_ten_nodes_and_no_giant_job(planned):
    _, out, figures = planned
    values = dict(line.split(": ", 1) for line in out.splitlines() if line.startswith("plan-"))
    total, largest = float(values["plan-total-s"]), float(values["plan-largest-job-s"])
    one, ten = float(values["plan-wall-1-node-s"]), float(values["plan-wall-n-nodes-s"])
    assert (total, largest, one, ten) == pytest.approx(
        (figures["total_s"], figures["largest_job"]["seconds"], figures["wall_1_node_s"],
         figures["wall_n_nodes_s"]), abs=0.1)
    assert ten <= one / 5, (ten, one)
    assert largest <= total / 10, (figures["largest_job"], total)
    assert figures["critical_path_s"] <= ten
