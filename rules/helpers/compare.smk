# Helpers of rules/compare.smk: what the comparison of several targets (and of checkpoints
# of one architecture) reads, with its labels, and its outputs.


def described_methods():
    """Every described method's name (WWW's, then CLIP-Dissect's), in config order."""
    return [method.name for method in SETTINGS.www] + [method.name for method in SETTINGS.clip_dissect]


def compared_evaluation(probe, target, layer, method, concepts):
    """The evaluation of an entry: a target's final layer, evaluated on its probe set and
    concept set (evaluate_descriptions evaluates every described method); None otherwise."""
    evaluated = (SETTINGS.on("evaluation") and layer == target_info(target).final
                 and probe in SETTINGS.evaluation_probe_sets
                 and concepts in SETTINGS.evaluation_concept_sets)
    return evaluation_path(probe, method, concepts, target) if evaluated else None


def compare_entries():
    """Every description the target comparison reads, by target, layer (configured order),
    method, concept set and described probe set: its path, labels and evaluation (or None)."""
    return [dict(path=description_path(probe, layer, method, concepts, target),
                 labels=dict(target=target, layer=layer, method=method, concepts=concepts,
                             probe=probe),
                 evaluation=compared_evaluation(probe, target, layer, method, concepts))
            for target, info in TARGETS.items() for layer in info.layers
            for method in described_methods() for concepts in config["concept_sets"]
            for probe in SETTINGS.described_probe_sets]


def compare_layer_order():
    """Each target's layer names in configured order (the figure's depth axis)."""
    return {target: info.layers for target, info in TARGETS.items()}


def checkpoint_pairs():
    """Every (before, after) pair of checkpoints: consecutive targets of one architecture in
    config order, per layer both describe, method, concept set and described probe set."""
    pairs = []
    for group in SETTINGS.checkpoints:
        for before, after in zip(group, group[1:]):
            layers = [layer for layer in target_info(before).layers if layer in target_info(after).layers]
            pairs += [dict(labels=dict(layer=layer, before=before, after=after, method=method,
                                       concepts=concepts, probe=probe),
                           before=description_path(probe, layer, method, concepts, before),
                           after=description_path(probe, layer, method, concepts, after))
                      for layer in layers for method in described_methods()
                      for concepts in config["concept_sets"] for probe in SETTINGS.described_probe_sets]
    return pairs


def checkpoint_layer_order():
    """The layers of the checkpoints, in the first checkpoint's configured order."""
    return list(dict.fromkeys(layer for group in SETTINGS.checkpoints
                              for layer in target_info(group[0]).layers))


def compare_outputs():
    """The comparison tables and figures: none with one target; the checkpoint comparison
    only when some targets are checkpoints of one architecture."""
    outputs = []
    if SETTINGS.on("compare"):
        outputs += [*paths.table_files("compare_targets"), *paths.table_files("compare_agreement"),
                    paths.figure("compare_distinct_concepts")]
    if SETTINGS.on("compare_checkpoints"):
        outputs += [*paths.table_files("compare_checkpoints"),
                    *paths.table_files("compare_checkpoints_most_changed"),
                    paths.figure("compare_checkpoints")]
    return outputs
