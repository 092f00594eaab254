"""The synsets an image scores highest on, from its stored rank volume."""
from neuron_concepts import convis, io
from neuron_concepts.logs import to_file

with to_file(snakemake.log[0]):
    volume = convis.RankVolume.from_arrays(io.read_npz(snakemake.input.volume))
    vocab = io.read_parquet(snakemake.input.vocab)
    # Locations whose patches hold no padding noise (all of them on the default grid).
    io.write_parquet(snakemake.output[0], convis.top_synsets(volume.rank_counts, vocab, n=snakemake.params.n,
                                                             locations=volume.inside()))
