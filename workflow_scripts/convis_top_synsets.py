"""The synsets each configured image scores highest on, from its stored rank volume."""
from neuron_concepts import convis_vocabulary, io
from neuron_concepts.logs import to_file

with to_file(snakemake.log[0]):
    vocab = io.load_vocabulary(snakemake.input.vocab)
    for item in snakemake.params.images:
        volume = io.load_rank_volume(item["volume"], vocab=vocab)
        # Locations whose patches hold no padding noise (all of them on the default grid).
        io.save_top_synsets(item["top"], convis_vocabulary.top_synsets(volume.rank_counts, vocab, n=snakemake.params.n,
                                                            locations=volume.inside()))
