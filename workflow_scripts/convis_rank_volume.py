"""Rank every ConVis vocabulary synset at every patch location of one probe image."""

from neuron_concepts import convis, data, io, models
from neuron_concepts.errors import InputDataError
from neuron_concepts.logs import to_file

with to_file(snakemake.log[0]) as log:
    p, image_id = snakemake.params, snakemake.wildcards.image
    manifest = io.load_manifest(snakemake.input.manifest).set_index("image_id")
    if image_id not in manifest.index:
        raise InputDataError(f"probe set {snakemake.wildcards.probe} has no image {image_id!r} "
                             f"(convis images, pairs or WSOL boxes name it); it has "
                             f"{list(manifest.index[:10])}{' ...' if len(manifest) > 10 else ''}")
    vocab = io.load_vocabulary(snakemake.input.vocab)
    definitions = io.load_text_embeddings(snakemake.input.texts, parts=["raw"]).raw
    if len(definitions) != len(vocab):
        raise InputDataError(f"{snakemake.input.texts} embeds {len(definitions)} definitions but "
                             f"the vocabulary has {len(vocab)} synsets: delete it and rerun")
    clip = models.load_clip(**p.clip, device=models.resolve_device(p.device))
    image = data.load_image(manifest.loc[image_id, "path"])
    try:
        volume = convis.rank_volume(clip, image, definitions, sizes=p.grid["sizes"], stride=p.grid["stride"],
                                    batch_size=p.batch_size, resize=p.grid["resize"],
                                    seed=p.seed or 0, padding=p.grid["padding"])
    except InputDataError as error:  # e.g. an image smaller than a patch: name the image
        raise InputDataError(f"probe set {snakemake.wildcards.probe}, image {image_id!r}: {error}") from error
    log.info("%s: %d locations x %d synsets on a %d x %d grid frame (padding %s)", image_id,
             *volume.rank_counts.shape, *volume.shape, volume.padding)
    io.save_rank_volume(snakemake.output[0], volume, synsets=vocab["synset"])
