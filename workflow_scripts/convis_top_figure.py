"""Overlay the ConVis maps of an image's top-scoring synsets, one panel each."""
from neuron_concepts import convis, data, io
from neuron_concepts.logs import to_file

with to_file(snakemake.log[0]):
    image_id = snakemake.wildcards.image
    manifest = io.load_manifest(snakemake.input.manifest).set_index("image_id")
    vocab = io.load_vocabulary(snakemake.input.vocab)
    volume = io.load_rank_volume(snakemake.input.volume, vocab=vocab)
    top = io.load_top_synsets(snakemake.input.top)
    maps = [volume.saliency(convis.hyponym_members(vocab, synset)) for synset in top["synset"]]
    titles = [f"{row.synset} ({row.score:.2f})" for row in top.itertuples()]
    image = convis.frame_image(data.load_image(manifest.loc[image_id, "path"]), volume.resize)
    convis.overlay_grid(image, maps, titles, snakemake.output[0], suptitle=f"{image_id}: top synsets")
