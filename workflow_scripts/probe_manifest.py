"""List and check a probe set's images."""
from neuron_concepts import data, io
from neuron_concepts.logs import to_file

with to_file(snakemake.log[0]) as log:
    spec = snakemake.params.spec
    files = data.probe_files(spec, snakemake.params.images_dir)
    manifest, unreadable = data.build_manifest(files, spec.get("skip_unreadable", False),
                                               workers=snakemake.params.io_threads)
    if len(unreadable):
        log.warning("skipped %d unreadable file(s): %s", len(unreadable), list(unreadable["path"]))
    log.info("probe set %s: %d images", snakemake.wildcards.probe, len(manifest))
    io.save_unreadable(snakemake.output.unreadable, unreadable)
    io.save_manifest(snakemake.output.manifest, manifest)
