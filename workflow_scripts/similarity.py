"""Cosines of a probe set's image embeddings with a concept set's text embeddings."""
from neuron_concepts import io, models
from neuron_concepts.similarity import cosine_matrices
from neuron_concepts.logs import to_file

with to_file(snakemake.log[0]):
    matrices = snakemake.params.matrices  # prompt, base, raw: the roles of this CLIP model
    images = io.load_image_embeddings(snakemake.input.images)
    # Matrix X compares the images with text part X; the other parts stay on disk.
    texts = io.load_text_embeddings(snakemake.input.texts, parts=matrices)
    io.save_similarity(snakemake.output[0],
                       **cosine_matrices(images.emb, texts.npz_arrays(), matrices,
                                         models.resolve_device(snakemake.params.device)))
