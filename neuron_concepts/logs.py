"""Per-rule logging: send Python logging, warnings and stderr of a job to its log file."""

from __future__ import annotations

import contextlib
import logging
import sys
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
    try:
        yield log
    except Exception as exc:
        log.error("%s: %s", type(exc).__name__, exc)
        raise
    finally:
        sys.stderr = old_stderr
        root.removeHandler(handler)
        handle.close()
