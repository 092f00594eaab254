# Helpers of rules/provenance.smk: the models a run used, and its kept run logs.


def provenance_models():
    """Each model the run uses: role and name, weights tag, download marker (None: random).

    The evaluation models count only when something is evaluated, so their weights are
    not fetched just to be recorded.
    """
    evaluated = bool(evaluations())
    models = [dict(name=f"target {config['target']['name']}", tag=target_spec()["weights"],
                   marker=(weights_marker("target", TARGET) or [None])[0])]
    roles = ["match"]
    if SETTINGS.clip_dissect or SETTINGS.stability:
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
