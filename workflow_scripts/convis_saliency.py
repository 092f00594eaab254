"""The ConVis map of one synset on one image, from its stored rank volume."""
from neuron_concepts import convis, io
from neuron_concepts.logs import to_file

with to_file(snakemake.log[0]):
    synset = snakemake.wildcards.synset
    volume = convis.RankVolume.from_arrays(io.read_npz(snakemake.input.volume))
    members = convis.hyponym_members(io.read_parquet(snakemake.input.vocab), synset)
    # resize: the frame the map covers (0 = the original image), for the figures
    io.write_npz(snakemake.output[0], saliency=volume.saliency(members), members=members,
                 synset=synset, resize=volume.resize or 0)
