"""Cosines of a probe set's image embeddings with a concept set's text embeddings."""
from neuron_concepts import io, models
from neuron_concepts.similarity import cosine_matrices
from neuron_concepts.logs import to_file

with to_file(snakemake.log[0]):
    images = io.read_embeddings(snakemake.input.images)["emb"]
    texts = io.read_embeddings(snakemake.input.texts)
    io.write_npz(snakemake.output[0],
                 **cosine_matrices(images, texts, snakemake.params.matrices,
                                   models.resolve_device(snakemake.params.device)))
