"""Rank every ConVis vocabulary synset at every patch location of a shard of probe images."""

from neuron_concepts import convis_volume, data, io, models, paths as artifact_paths
from neuron_concepts.errors import InputDataError
from neuron_concepts.logs import to_file

with to_file(snakemake.log[0]) as log:
    p = snakemake.params
    # Each output is one image's volume: its path names the image (paths.convis_volume).
    paths = {artifact_paths.parse_convis_volume(path)["image"]: path for path in snakemake.output}
    manifest = io.load_manifest(snakemake.input.manifest).set_index("image_id")
    missing = [image for image in paths if image not in manifest.index]
    if missing:
        raise InputDataError(f"probe set {p.probe} has no image {missing[0]!r}{' ...' if len(missing) > 1 else ''} "
                             f"(convis images, pairs or WSOL boxes name it); it has "
                             f"{list(manifest.index[:10])}{' ...' if len(manifest) > 10 else ''}")
    vocab = io.load_vocabulary(snakemake.input.vocab)
    definitions = io.load_text_embeddings(snakemake.input.texts, parts=["raw"]).raw
    if len(definitions) != len(vocab):
        raise InputDataError(f"{snakemake.input.texts} embeds {len(definitions)} definitions but "
                             f"the vocabulary has {len(vocab)} synsets: delete it and rerun")
    clip = models.load_clip(**p.clip, device=models.resolve_device(p.device))
    images = ((image, data.load_image(manifest.loc[image, "path"])) for image in paths)  # read lazily
    try:
        volumes = convis_volume.rank_volumes(clip, images, definitions, sizes=p.grid["sizes"], stride=p.grid["stride"],
                                      batch_size=p.batch_size, resize=p.grid["resize"], seed=p.seed or 0,
                                      padding=p.grid["padding"], precision=p.precision)
        for image, volume in volumes:
            io.save_rank_volume(paths[image], volume, synsets=vocab["synset"])
            log.info("%s: %d locations x %d synsets on a %d x %d grid frame (padding %s)", image,
                     *volume.rank_counts.shape, *volume.shape, volume.padding)
    except InputDataError as error:  # e.g. an image smaller than a patch: the error names it
        raise InputDataError(f"probe set {p.probe}: {error}") from error
