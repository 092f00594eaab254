"""Per-rule logging: send Python logging, warnings and stderr of a job to its log file."""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from pathlib import Path
from typing import Iterator

log = logging.getLogger("neuron_concepts")


@contextlib.contextmanager
def to_file(path: str | Path) -> Iterator[logging.Logger]:
    """Log to ``path`` (and stderr) for the duration of a workflow script.

    Progress bars (tqdm writes to stderr) and warnings land in the same file. An
    exception from the package is logged with its message before it propagates, so the
    log says what went wrong and how to fix it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "w")
    handler = logging.StreamHandler(handle)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    logging.captureWarnings(True)
    old_stderr = sys.stderr
    sys.stderr = handle
    start = time.perf_counter()
    try:
        yield log
    except Exception as exc:
        log.error("%s: %s", type(exc).__name__, exc)
        raise
    else:
        log.info(job_summary(time.perf_counter() - start))
    finally:
        sys.stderr = old_stderr
        root.removeHandler(handler)
        handle.close()


# The last line of every successful job's log; benchmarks/bench_pipeline.py reads it.
SUMMARY_PREFIX = "job done:"


def job_summary(wall_seconds: float) -> str:
    """Wall time, CPU time, peak resident memory and (when CUDA was used) peak GPU memory of
    this job. The CPU time is the process's since it started, imports included (every
    thread's), which is what a job costs a busy machine; the wall time is the script's."""
    parts = [f"{SUMMARY_PREFIX} wall {wall_seconds:.2f} s", f"CPU {time.process_time():.2f} s",
             f"peak RSS {peak_rss_mib():.0f} MiB"]
    from . import lazy

    torch = sys.modules.get("torch")
    if lazy.loaded("torch") and torch.cuda.is_initialized():  # a job without torch stays so
        parts.append(f"peak GPU {torch.cuda.max_memory_allocated() / 2 ** 20:.0f} MiB")
    return ", ".join(parts)


def peak_rss_mib() -> float:
    """This process's peak resident set size (VmHWM), MiB; 0 where /proc is not available."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0
