"""Overlay the configured pairs' ConVis maps, and each configured image's top synsets' maps."""
from neuron_concepts import convis_figures, convis_vocabulary, convis_volume, data, io
from neuron_concepts.logs import to_file

with to_file(snakemake.log[0]):
    p = snakemake.params
    manifest = io.load_manifest(snakemake.input.manifest).set_index("image_id")
    for item in p.pairs:
        saliency = io.load_convis_map(item["map"])
        image = convis_volume.frame_image(data.load_image(manifest.loc[item["image"], "path"]), saliency.resize)
        convis_figures.overlay_figure(image, saliency.saliency, item["figure"],
                              title=f"{item['image']}: {saliency.synset}")
    vocab = io.load_vocabulary(snakemake.input.vocab)
    for item in p.images:
        volume = io.load_rank_volume(item["volume"], vocab=vocab)
        top = io.load_top_synsets(item["top"])
        maps = [volume.saliency(convis_vocabulary.hyponym_members(vocab, synset)) for synset in top["synset"]]
        titles = [f"{row.synset} ({row.score:.2f})" for row in top.itertuples()]
        image = convis_volume.frame_image(data.load_image(manifest.loc[item["image"], "path"]), volume.resize)
        convis_figures.overlay_grid(image, maps, titles, item["figure"], suptitle=f"{item['image']}: top synsets")
