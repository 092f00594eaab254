# Helpers of rules/activations.smk: the activation shards a join_activations job reads.


def activation_shard_lists(layer_names):
    """An input function: per layer of ``layer_names``, the activation shards of a job's probe
    set, target and view, in row order (join_activations' params, one list per output)."""
    def shards(wildcards):
        return [image_shard_paths(paths.activations(wildcards.probe, wildcards.target,
                                                    wildcards.view, layer), wildcards.probe, "image")
                for layer in layer_names]

    return shards


def activation_shard_inputs(layer_names):
    """An input function: every activation shard of a job (activation_shard_lists, flat)."""
    lists = activation_shard_lists(layer_names)
    return lambda wildcards: [path for shards in lists(wildcards) for path in shards]
