"""Similarities of a probe set's image embeddings with a concept set's text embeddings."""
from neuron_concepts import io, models
from neuron_concepts.similarity import similarity_matrix
from neuron_concepts.logs import to_file

with to_file(snakemake.log[0]):
    kind, kappa = snakemake.params.sim
    device = models.resolve_device(snakemake.params.device)
    images = io.read_embeddings(snakemake.input.images)["emb"]
    texts = io.read_embeddings(snakemake.input.texts)
    io.write_npz(
        snakemake.output[0],
        prompt=similarity_matrix(images, texts["emb"], kind, kappa, device),
        base=similarity_matrix(images, texts["base"], kind, kappa, device)[:, 0],
        raw=similarity_matrix(images, texts["raw"], kind, kappa, device),
    )
