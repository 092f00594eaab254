"""The ConVis map of one synset on one image, from its stored rank volume."""
from neuron_concepts import convis, io
from neuron_concepts.logs import to_file

with to_file(snakemake.log[0]):
    synset = snakemake.wildcards.synset
    vocab = io.load_vocabulary(snakemake.input.vocab)
    volume = io.load_rank_volume(snakemake.input.volume, vocab=vocab)
    members = convis.hyponym_members(vocab, synset)
    # resize: the frame the map covers (None = the original image), for the figures
    io.save_convis_map(snakemake.output[0], volume.saliency(members), members, synset,
                       resize=volume.resize)
