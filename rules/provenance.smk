# What made the results folder (paths.RESULTS): included last, since its inputs are every final output.


include: "helpers/provenance.smk"


warn_if_running_elsewhere()


rule provenance:
    """What made the results folder: the resolved config, package versions, weights and a manifest.

    Its inputs are every final artifact (final_outputs(), what rule all asks for), so it
    runs last and its manifest lists the SHA-256 of every file under it. Check a
    (regenerated) results tree against it with

        python -m neuron_concepts.provenance verify results

    which names each artifact that is missing, changed or not in the manifest.
    """
    input:
        artifacts=final_outputs(),
        weights=[model["marker"] for model in provenance_models() if model["marker"]],
    output:
        config=paths.provenance("config.yaml"),
        environment=paths.provenance("environment.yaml"),
        weights=paths.provenance("weights.yaml"),
        manifest=paths.provenance("manifest.tsv"),
    params:
        config=config,
        models=provenance_models(),
        results=lambda wildcards, output: Path(output.manifest).parent.parent,  # paths.RESULTS
    localrule: True
    log:
        "logs/provenance.log",
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/provenance.py"


onstart:
    # Before any job: what a killed job left half-written (its writer no longer runs) goes,
    # and an artifact edited by hand is named, never built on or blessed.
    remove_unfinished_writes(paths.RESULTS)
    refuse_hand_edits(paths.RESULTS)
    record_running()


onsuccess:
    record_ended()
    keep_run_log(log, paths.provenance("runs"))


onerror:
    record_ended()
    keep_run_log(log, paths.provenance("runs"), failed=True)
