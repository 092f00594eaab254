# Helpers of rules/weights.smk: what the download_weights rule fetches.


def weights_spec(kind, tag):
    """What the download_weights rule fetches for a model named ``tag``."""
    if kind == "target" and tag in TARGETS:
        return dict(kind=kind, **target_spec(tag))
    if kind == "clip":
        return dict(kind=kind, **clip_spec(tag))
    if kind == "sentence" and tag == SENTENCE:
        return dict(kind=kind, **sentence_spec())
    raise WorkflowError(f"no configured {kind} model is named {tag!r}")
