"""The ConVis maps of the configured (image, synset) pairs, from their stored rank volumes."""
from neuron_concepts import convis_vocabulary, io
from neuron_concepts.logs import to_file

with to_file(snakemake.log[0]):
    vocab = io.load_vocabulary(snakemake.input.vocab)
    volumes = {}
    for item in snakemake.params.maps:
        if item["volume"] not in volumes:
            volumes[item["volume"]] = io.load_rank_volume(item["volume"], vocab=vocab)
        volume = volumes[item["volume"]]
        members = convis_vocabulary.hyponym_members(vocab, item["synset"])
        # resize: the frame the map covers (None = the original image), for the figures
        io.save_convis_map(item["map"], volume.saliency(members), members, item["synset"],
                           resize=volume.resize)
