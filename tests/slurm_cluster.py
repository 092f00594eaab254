"""A real single-node SLURM cluster on 127.0.0.1, started and stopped by the tests.

``SlurmCluster(workdir)`` writes its own ``slurm.conf`` and ``gres.conf``, starts a private
``munged`` and then ``slurmctld`` and ``slurmd`` in the foreground (so their pids are ours),
waits until ``sinfo`` shows the node idle, and on exit cancels every job and stops every
process it started, by pid. Nothing touches ``/etc/slurm``, the system munge socket or
the default ports: clients find the cluster through ``SLURM_CONF`` (see
:attr:`SlurmCluster.env`), ``slurmd`` hands the same configuration to each job, and two
test clusters can run side by side. One gap needs a shim, see ``_write_srun_shim``.

The node declares 8 CPUs, 64 GB and one fake GPU (``Gres=gpu:1`` backed by
``/dev/null``) whatever the hardware (``SlurmdParameters=config_overrides``), so
``--gpus=1`` jobs and the resource requests of ``profiles/slurm`` are schedulable on a
small machine without a GPU. There is no accounting database, so Snakemake must poll with
``--slurm-status-command squeue`` (:func:`snakemake_slurm_args` adds it).

Test modules use the session fixture ``slurm_cluster`` (registered as a plugin with
``pytest_plugins = ["slurm_cluster"]`` in tests/conftest.py or the test module)::

    def test_pipeline_on_slurm(slurm_cluster, tmp_path):
        slurm_cluster.run_snakemake(tmp_path, "--profile", "profiles/slurm", partition=None)

The fixture skips with a reason when the binaries are missing or we are not root; set
``NC_REQUIRE_SLURM=1`` (CI does) to turn that skip into a failure.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterator, Sequence

import pytest

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "sinfo", "scontrol", "scancel", "srun")
PARTITION = "debug"


def missing_requirements() -> str | None:
    """Why a SLURM cluster cannot run here, or None when it can."""
    missing = [name for name in DAEMONS + CLIENTS if binary_path(name) is None]
    if missing:
        return (f"SLURM/munge binaries not found: {', '.join(missing)}; "
                "install them with `bash .ci/setup_slurm.sh` (Debian slurm-wlm + munge)")
    if os.geteuid() != 0:
        return "the test SLURM cluster runs slurmd as root (SlurmUser=root); run as root"
    return None


def binary_path(name: str) -> str | None:
    """Full path of a daemon or client, or None (daemons live in /usr/sbin, often not on PATH)."""
    found = shutil.which(name)
    if found is None and Path("/usr/sbin", name).exists():
        found = str(Path("/usr/sbin", name))
    return found


def _binary(name: str) -> str:
    """Full path of a daemon or client that must exist."""
    found = binary_path(name)
    if found is None:
        raise FileNotFoundError(f"{name} not found; run `bash .ci/setup_slurm.sh`")
    return found


def _free_port() -> int:
    """A TCP port nobody listens on now, so two clusters on one machine do not collide."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(path: Path, lines: int = 30) -> str:
    """Last lines of a log file, for error messages."""
    if not path.exists():
        return f"({path} does not exist)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


class SlurmCluster:
    """A throwaway single-node SLURM cluster; use as a context manager.

    ``workdir`` holds configuration, state, spool and logs. The munge socket lives in a
    short-lived directory under /tmp because munged insists that every ancestor of its
    socket is world-executable (pytest's tmp dirs are 0700) and Unix socket paths are
    limited to about 107 bytes.
    """

    def __init__(self, workdir: str | os.PathLike, cpus: int = 8, memory_mb: int = 65536,
                 gpus: int = 1, cluster_name: str = "nctest", ready_timeout: float = 60.0
                 ) -> None:
        self.workdir = Path(workdir).resolve()
        self.cpus = cpus
        self.memory_mb = memory_mb
        self.gpus = gpus
        self.cluster_name = cluster_name
        self.ready_timeout = ready_timeout
        self.node = socket.gethostname().split(".")[0]
        self.conf_path = self.workdir / "slurm.conf"
        self._munge_dir: Path | None = None
        self._procs: dict[str, subprocess.Popen] = {}

    @property
    def pids(self) -> dict[str, int]:
        """Pids of the daemons this cluster started (munged, slurmctld, slurmd)."""
        return {name: proc.pid for name, proc in self._procs.items()}

    # ---------------------------------------------------------------- environment
    @property
    def env(self) -> dict[str, str]:
        """The environment for clients and Snakemake: ``SLURM_CONF`` and the srun shim."""
        path = f"{self.workdir / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"
        return {**os.environ, "SLURM_CONF": str(self.conf_path), "PATH": path}

    def run(self, *args: str, check: bool = True, timeout: float = 60.0
            ) -> subprocess.CompletedProcess:
        """Run a SLURM client (``sinfo``, ``squeue`` ...) against this cluster."""
        return subprocess.run([_binary(args[0]), *args[1:]], env=self.env, text=True,
                              capture_output=True, check=check, timeout=timeout)

    # ---------------------------------------------------------------- configuration
    def _write_config(self, munge_socket: Path, ctld_port: int, slurmd_port: int) -> None:
        """Write slurm.conf and gres.conf (gres.conf must sit beside slurm.conf)."""
        w = self.workdir
        conf = f"""\
# Written by tests/slurm_cluster.py: a single-node test cluster on 127.0.0.1.
ClusterName={self.cluster_name}
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
AuthType=auth/munge
AuthInfo=socket={munge_socket}
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
MpiDefault=none
# cgroups are not available in every sandbox; plain process tracking is enough here.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
ReturnToService=2
# The node advertises the CPUs and memory below whatever the hardware has, so jobs with
# the real pipeline's requests (profiles/slurm: up to 8 CPUs, 32 GB) are schedulable on a
# small test machine. Nothing is enforced (task/none), and the tests' jobs are tiny.
SlurmdParameters=config_overrides
# Finished jobs stay visible to squeue and scontrol for an hour: Snakemake polls with
# squeue, and the tests read each job's record after a whole workflow has run.
MinJobAge=3600
MailProg=/bin/true
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
GresTypes=gpu
SlurmctldPidFile={w}/slurmctld.pid
SlurmdPidFile={w}/slurmd.pid
StateSaveLocation={w}/state
SlurmdSpoolDir={w}/spool
SlurmctldLogFile={w}/log/slurmctld.log
SlurmdLogFile={w}/log/slurmd.log
NodeName={self.node} NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory={self.memory_mb} \
Gres=gpu:{self.gpus} State=UNKNOWN
PartitionName={PARTITION} Default=YES Nodes=ALL MaxTime=INFINITE State=UP
"""
        self.conf_path.write_text(conf)
        self._write_srun_shim()
        # A fake GPU: /dev/null stands in for /dev/nvidia0 so GPU jobs can be scheduled.
        (w / "gres.conf").write_text("\n".join(["Name=gpu File=/dev/null"] * self.gpus) + "\n")

    def _write_srun_shim(self) -> None:
        """Put an ``srun`` that knows ``SLURM_CONF`` first on the PATH of the jobs.

        Inside each job, snakemake-executor-plugin-slurm-jobstep (0.6) starts the rule with
        a nested ``srun`` after deleting every ``SLURM_*`` variable but the job's identity,
        ``SLURM_CONF`` included. On a real cluster that srun then reads
        /etc/slurm/slurm.conf; this cluster has its configuration elsewhere (so that it
        never touches the machine's, and two test clusters can run side by side), so the
        shim hands srun the path back.
        """
        bin_dir = self.workdir / "bin"
        bin_dir.mkdir(exist_ok=True)
        shim = bin_dir / "srun"
        shim.write_text("#!/bin/sh\n"
                        "# Test cluster shim (tests/slurm_cluster.py): restore SLURM_CONF.\n"
                        f"SLURM_CONF='{self.conf_path}' exec '{_binary('srun')}' \"$@\"\n")
        shim.chmod(0o755)

    # ---------------------------------------------------------------- daemons
    def _spawn(self, name: str, args: Sequence[str]) -> None:
        """Start a daemon in the foreground, its stdout/stderr into log/<name>.out."""
        out = open(self.workdir / "log" / f"{name}.out", "wb")
        self._procs[name] = subprocess.Popen([_binary(name), *args], stdout=out,
                                             stderr=subprocess.STDOUT, env=self.env,
                                             stdin=subprocess.DEVNULL)
        out.close()

    def _start_munge(self) -> Path:
        """Start a private munged with a fresh key; return its socket path."""
        self._munge_dir = Path(tempfile.mkdtemp(prefix="nc-munge-", dir="/tmp"))
        self._munge_dir.chmod(0o755)
        key = self._munge_dir / "munge.key"
        with open(key, "wb") as f:
            f.write(os.urandom(1024))
        key.chmod(0o400)
        sock = self._munge_dir / "munge.sock"
        self._spawn("munged", ["--foreground", f"--socket={sock}", f"--key-file={key}",
                               f"--pid-file={self._munge_dir / 'munged.pid'}",
                               f"--seed-file={self._munge_dir / 'munged.seed'}"])
        self._wait(sock.exists, "munged socket")
        return sock

    def _wait(self, ready: Callable[[], bool], what: str) -> None:
        """Poll ``ready()`` until true; on timeout or a daemon's death, fail with the logs."""
        deadline = time.monotonic() + self.ready_timeout
        exited: list[str] = []
        while time.monotonic() < deadline and not exited:
            if ready():
                return
            exited = [name for name, proc in self._procs.items() if proc.poll() is not None]
            time.sleep(0.2)
        logs = "\n".join(f"--- {p.name}\n{_tail(p)}"
                         for p in sorted((self.workdir / "log").glob("*")))
        raise RuntimeError(f"test SLURM cluster: {what} not ready after "
                           f"{self.ready_timeout:.0f} s (exited: {exited or 'none'})\n{logs}")

    def node_state(self) -> str:
        """The node's state as sinfo reports it (``idle``, ``mixed``, ``down*`` ...)."""
        res = self.run("sinfo", "-h", "-N", "-o", "%T", check=False, timeout=10)
        return res.stdout.strip() if res.returncode == 0 else ""

    def start(self) -> "SlurmCluster":
        """Start munged, slurmctld and slurmd and wait until the node is idle."""
        for sub in ("state", "spool", "log"):
            (self.workdir / sub).mkdir(parents=True, exist_ok=True)
        try:
            sock = self._start_munge()
            self._write_config(sock, _free_port(), _free_port())
            self._spawn("slurmctld", ["-D", "-c", "-f", str(self.conf_path)])
            self._spawn("slurmd", ["-D", "-f", str(self.conf_path), "-N", self.node])
            self._wait(lambda: self.node_state() == "idle", "node idle in sinfo")
        except BaseException:
            self.stop()
            raise
        return self

    def _stepd_pids(self) -> list[int]:
        """Pids of slurmstepd processes of this cluster (they hold sockets in our spool)."""
        spool = str(self.workdir / "spool")
        pids = []
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                if not (proc / "cmdline").read_bytes().startswith(b"slurmstepd"):
                    continue
                if any(os.readlink(fd).startswith(spool) for fd in (proc / "fd").iterdir()):
                    pids.append(int(proc.name))
            except OSError:
                continue
        return pids

    def stop(self) -> None:
        """Cancel all jobs, then stop slurmd, slurmctld and munged (by pid) and clean up."""
        if "slurmctld" in self._procs and self._procs["slurmctld"].poll() is None:
            jobs = self.run("squeue", "-h", "-o", "%i", check=False, timeout=10).stdout.split()
            if jobs:
                self.run("scancel", *jobs, check=False, timeout=10)
                deadline = time.monotonic() + 15
                while time.monotonic() < deadline and self.run(
                        "squeue", "-h", "-t", "RUNNING,COMPLETING", "-o", "%i",
                        check=False, timeout=10).stdout.strip():
                    time.sleep(0.3)
        for name in ("slurmd", "slurmctld", "munged"):
            proc = self._procs.pop(name, None)
            if proc is None or proc.poll() is not None:
                continue
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        for pid in self._stepd_pids():  # a job step that outlived its slurmd
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if self._munge_dir is not None:
            shutil.rmtree(self._munge_dir, ignore_errors=True)
            self._munge_dir = None

    def __enter__(self) -> "SlurmCluster":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def job_records(self, workdir: str | os.PathLike | None = None) -> list[dict[str, str]]:
        """SLURM's record (``scontrol show job``) of every job it knows, as key -> value.

        Finished jobs are kept for MinJobAge (an hour). With ``workdir``, only the jobs
        submitted from that folder (their ``WorkDir``).
        """
        out = self.run("scontrol", "-o", "show", "job", timeout=30).stdout
        records = [dict(re.findall(r"(\w+)=(\S*)", line)) for line in out.splitlines()
                   if line.startswith("JobId=")]
        if workdir is not None:
            records = [r for r in records
                       if Path(r.get("WorkDir", "")).resolve() == Path(workdir).resolve()]
        return records

    # ---------------------------------------------------------------- snakemake
    def run_snakemake(self, workdir: str | os.PathLike, *args: str, jobs: int = 2,
                      partition: str | None = PARTITION, timeout: float = 600.0
                      ) -> subprocess.CompletedProcess:
        """Run Snakemake with the SLURM executor in ``workdir``; fail with its log on error.

        ``args`` go after the cluster options (targets, ``--profile``, ``--config`` ...).
        Pass ``partition=None`` with ``--profile profiles/slurm``, whose
        ``default-resources`` a command-line ``--default-resources`` would replace.
        """
        cmd = [sys.executable, "-m", "snakemake", *snakemake_slurm_args(jobs, partition), *args]
        res = subprocess.run(cmd, cwd=workdir, env=self.env, text=True,
                             capture_output=True, timeout=timeout)
        if res.returncode != 0:
            slurm_logs = "\n".join(f"--- {p}\n{_tail(p)}" for p in
                                   sorted(Path(workdir, ".snakemake", "slurm_logs").rglob("*.log")))
            pytest.fail(f"snakemake on SLURM failed ({res.returncode}): {' '.join(cmd)}\n"
                        f"{res.stdout[-4000:]}\n{res.stderr[-8000:]}\n{slurm_logs}")
        return res


def snakemake_slurm_args(jobs: int = 2, partition: str | None = PARTITION) -> list[str]:
    """Command-line options that make Snakemake's SLURM executor work on the test cluster.

    No accounting database here: poll with squeue, do not look up an account, and check
    status after 1 s instead of 40 s so tests are fast. Successful jobs keep their SLURM
    logs (under .snakemake/slurm_logs) so tests can read them.
    """
    args = ["--executor", "slurm", "--jobs", str(jobs),
            "--slurm-status-command", "squeue",
            "--slurm-init-seconds-before-status-checks", "1",
            "--slurm-no-account", "--slurm-keep-successful-logs",
            "--latency-wait", "10"]
    if partition:
        args += ["--default-resources", f"slurm_partition={partition}"]
    return args


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlurmCluster]:
    """A running single-node SLURM cluster shared by the session's tests."""
    reason = missing_requirements()
    if reason:
        if os.environ.get("NC_REQUIRE_SLURM") == "1":
            pytest.fail(f"NC_REQUIRE_SLURM=1 but {reason}")
        pytest.skip(reason)
    with SlurmCluster(tmp_path_factory.mktemp("slurm")) as cluster:
        yield cluster
