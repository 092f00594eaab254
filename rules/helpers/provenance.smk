# Helpers of rules/provenance.smk: the models a run used, and its kept run logs.


def provenance_models():
    """Each model the run uses: role and name, weights tag, download marker (None: random).

    The evaluation models count only when something is evaluated, so their weights are
    not fetched just to be recorded.
    """
    evaluated = bool(evaluations())
    models = [dict(name=f"target {config['target']['name']}", tag=target_spec()["weights"],
                   marker=(weights_marker("target", TARGET) or [None])[0])]
    # the other targets of a comparison (targets:), named by their tag in paths
    models += [dict(name=f"target {info.entry['name']} ({tag})", tag=target_spec(tag)["weights"],
                    marker=(weights_marker("target", tag) or [None])[0])
               for tag, info in TARGETS.items() if tag != TARGET]
    roles = ["match"]
    if SETTINGS.on("clip_dissect") or SETTINGS.on("stability"):
        roles.append("dissect")
    if evaluated:
        roles.append("eval")
    for role in roles:
        spec = clip_role_spec(role)
        models.append(dict(name=f"clip.{role} {spec['model']}", tag=spec["pretrained"],
                           marker=(weights_marker("clip", CLIP[role]) or [None])[0]))
    if evaluated:
        models.append(dict(name=f"sentence_model {config['sentence_model']}",
                           tag=sentence_spec()["name"],
                           marker=(weights_marker("sentence", SENTENCE) or [None])[0]))
    return models


def keep_run_log(log, folder, failed=False):
    """Copy Snakemake's log(s) of this run into ``folder`` (kept with the results it made).

    Called by the onsuccess/onerror handlers with Snakemake's log file (a path, a list of
    paths, or None when logging to a file is off). A copy keeps Snakemake's timestamped
    name, so every run that did something leaves its own log.
    """
    import shutil

    for path in [log] if isinstance(log, (str, Path)) else (log or []):
        if not Path(path).is_file():
            continue
        name = Path(path).name
        if failed:
            name = name.replace(".snakemake.log", ".failed.snakemake.log")
        Path(folder).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, Path(folder) / name)


def remove_unfinished_writes(folder):
    """Remove the temporary files of writes that never finished (neuron_concepts.io.
    stale_temporaries: a job killed mid-write), and say so in the run's log."""
    from snakemake.logging import logger

    from neuron_concepts import io

    for path in io.stale_temporaries(folder, remove=True) if Path(folder).is_dir() else []:
        logger.info(f"removed {path}: an unfinished write of a killed job")


def refuse_hand_edits(folder):
    """Stop before any job runs (onstart) when an artifact under ``folder`` is not the bytes
    its job wrote (neuron_concepts.provenance.edited_by_hand), naming each with the command
    that remakes it. Otherwise Snakemake would take the edited file as new, rerun what reads
    it and the provenance job would hash the damage into a fresh manifest.

    Files named by --forcerun are let through: that is the remake."""
    if not Path(folder).is_dir():
        return
    from neuron_concepts import provenance

    forced = {Path(target).as_posix() for target in workflow.dag_settings.forcerun or ()}
    edited = [line for line in provenance.edited_by_hand(folder)
              if line.split()[3] not in forced]
    if edited:
        raise WorkflowError(
            f"{len(edited)} artifact(s) are not the bytes their job wrote:\n"
            + "\n".join(f"  {line}" for line in edited)
            + "\nRemake each with the command given (it reruns what depends on it too).")


# Snakemake's own advice for an interrupted job (--rerun-incomplete, --unlock) clobbers the
# jobs of another Snakemake still running in the same folder. A run records itself here
# while it executes, so a second one can say so first.
RUN_MARKER = Path(".snakemake") / "neuron_concepts_run.json"


def record_running():
    """onstart: this folder is being run by this process (host and pid)."""
    import json
    import os
    import socket

    RUN_MARKER.parent.mkdir(exist_ok=True)
    RUN_MARKER.write_text(json.dumps({"host": socket.gethostname(), "pid": os.getpid()}))


def record_ended():
    """onsuccess / onerror: the run of this process is over."""
    import json
    import os

    try:
        if json.loads(RUN_MARKER.read_text()).get("pid") == os.getpid():
            RUN_MARKER.unlink()
    except (OSError, ValueError):
        pass


def warn_if_running_elsewhere():
    """At planning: warn when another Snakemake still runs in this folder (its marker names
    a live process of this host), before Snakemake suggests --rerun-incomplete or --unlock."""
    import json
    import os
    import socket
    import sys

    from neuron_concepts import io

    if workflow.remote_exec or workflow.subprocess_exec:
        return
    try:
        other = json.loads(RUN_MARKER.read_text())
    except (OSError, ValueError):
        return
    if other.get("host") == socket.gethostname() and other.get("pid") != os.getpid() \
            and io.process_alive(int(other.get("pid", 0))):
        print(f"WARNING: another Snakemake (process {other['pid']}) is running in this folder. "
              "Wait for it to end: do not follow advice to use --rerun-incomplete or --unlock "
              "while it runs, which would redo or clobber its jobs. A dry run (-n) is safe.",
              file=sys.stderr)
