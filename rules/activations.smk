# Activations of the target's layers on a probe set, one forward pass per view. A probe set
# larger than scale.images_per_job runs as activations_shard jobs over ranges of manifest
# rows, joined by join_activations into the same per-layer files (rules/common.smk, image
# shards); one that fits one job is the activations job alone.
#
# A job writes every layer of one target, so the outputs depend on the target: the three
# rules are defined once per target (TARGETS), each copy constrained to its {target}. The
# primary target's keep these names; another target's add its tag (activations_<tag>).


include: "helpers/activations.smk"


for _tag, _info in TARGETS.items():
    rule:
        """Activations [N, K] of every configured layer of the target, one forward pass per view."""
        name:
            target_rule_name("activations", _tag)
        input:
            manifest=paths.probe_manifest(),
            boxes=view_boxes,
            weights=weights_marker("target", _tag),
        output:
            [paths.activations(layer=layer) for layer in _info.layers],
        params:
            target=target_spec(_tag),
            # each layer's module path, layout and reduction (neuron_concepts.layers.LayerNeurons)
            layers=[n.to_dict() for n in _info.found.neurons],
            rows=shard_rows,
            # pil: the model's own pipeline; gpu: nvJPEG and GPU resizing (a +gpudecode view)
            decode=lambda wc: names.view_decode(wc.view),
            batch_size=config["batch_size"]["image"],
            device=config["device"],
        wildcard_constraints:
            probe=unsharded_probes("image"),
            target=re.escape(_tag),
        # the forward's threads, or on CUDA the main process plus DataLoader workers
        threads: image_model_threads
        resources:
            **gpu_resources(image_job_gpu_mem_mb(40, config["batch_size"]["image"])),
            cpus_per_gpu=lambda wc, threads: threads,
            mem_mb=image_job_mem_mb(4 * sum(n.neurons for n in _info.found.neurons)),
            runtime=image_job_runtime,
        log:
            "logs/activations/{probe}/{target}/{view}.log",
        conda:
            "../envs/torch.yaml"
        script:
            "../workflow_scripts/activations.py"

    rule:
        """Activations of one shard (a range of manifest rows) of a sharded probe set."""
        name:
            target_rule_name("activations_shard", _tag)
        input:
            manifest=paths.probe_manifest(),
            boxes=view_boxes,
            weights=weights_marker("target", _tag),
        output:
            [paths.image_shard(paths.activations(layer=layer)) for layer in _info.layers],
        params:
            target=target_spec(_tag),
            layers=[n.to_dict() for n in _info.found.neurons],
            rows=shard_rows,
            decode=lambda wc: names.view_decode(wc.view),
            batch_size=config["batch_size"]["image"],
            device=config["device"],
        wildcard_constraints:
            probe=names.CONFIG_NAME,
            target=re.escape(_tag),
        threads: image_model_threads
        resources:
            **gpu_resources(image_job_gpu_mem_mb(40, config["batch_size"]["image"])),
            cpus_per_gpu=lambda wc, threads: threads,
            mem_mb=image_job_mem_mb(4 * sum(n.neurons for n in _info.found.neurons)),
            runtime=image_job_runtime,
        log:
            "logs/activations/{probe}/{target}/{view}/{shard}.log",
        conda:
            "../envs/torch.yaml"
        script:
            "../workflow_scripts/activations.py"

    rule:
        """The activations of a sharded probe set: its shards' rows, in manifest order."""
        name:
            target_rule_name("join_activations", _tag)
        input:
            manifest=paths.probe_manifest(),
            shards=activation_shard_inputs(_info.layers),
        output:
            [paths.activations(layer=layer) for layer in _info.layers],
        params:
            kind="activations",
            # each layer's shards, in row order (one list per output)
            shards=activation_shard_lists(_info.layers),
        wildcard_constraints:
            probe=sharded_probes("image"),
            target=re.escape(_tag),
        resources:
            mem_mb=join_mem_mb(4 * sum(n.neurons for n in _info.found.neurons)),
            runtime=lambda wc, attempt: attempt * 30,
        log:
            "logs/join_activations/{probe}/{target}/{view}.log",
        conda:
            "../envs/torch.yaml"
        script:
            "../workflow_scripts/join_shards.py"
