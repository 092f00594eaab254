"""Overlay the ConVis maps of an image's top-scoring synsets, one panel each."""
from neuron_concepts import convis, data, io
from neuron_concepts.logs import to_file

with to_file(snakemake.log[0]):
    image_id = snakemake.wildcards.image
    manifest = io.read_parquet(snakemake.input.manifest).set_index("image_id")
    volume = convis.RankVolume.from_arrays(io.read_npz(snakemake.input.volume))
    vocab = io.read_parquet(snakemake.input.vocab)
    top = io.read_parquet(snakemake.input.top)
    maps = [volume.saliency(convis.hyponym_members(vocab, synset)) for synset in top["synset"]]
    titles = [f"{row.synset} ({row.score:.2f})" for row in top.itertuples()]
    image = convis.frame_image(data.load_image(manifest.loc[image_id, "path"]), volume.resize)
    convis.overlay_grid(image, maps, titles, snakemake.output[0], suptitle=f"{image_id}: top synsets")
