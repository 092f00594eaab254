rule probe_manifest:
    """Check a probe set's images and list them: path, label and size of each."""
    output:
        manifest=paths.probe_manifest(),
        unreadable=paths.probe_unreadable(),
    params:
        spec=lambda wc: probe_spec(wc.probe),
        images_dir=lambda wc: paths.probe_images(wc.probe),
        # threads reading image headers (data.build_manifest): they wait on the disk, not on
        # a core, so the job claims one core and never holds a small machine's others idle
        io_threads=8,
    # the head of every image stage's chain: start it before the text stages
    priority: 10
    log:
        "logs/probe_manifest/{probe}.log",
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/probe_manifest.py"
