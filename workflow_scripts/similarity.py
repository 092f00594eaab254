"""Cosines of a probe set's image embeddings with a concept set's text embeddings, per model and view."""
from neuron_concepts import io, models
from neuron_concepts.similarity import cosine_row_blocks
from neuron_concepts.logs import to_file

with to_file(snakemake.log[0]) as log:
    device = models.resolve_device(snakemake.params.device)
    for item in snakemake.params.pairs:
        matrices = item["matrices"]  # prompt, base, raw: the roles of this CLIP model
        images = io.load_image_embeddings(item["images"])
        # Matrix X compares the images with text part X; the other parts stay on disk.
        texts = io.load_text_embeddings(item["texts"], parts=matrices)
        # Streamed into the file block by block of images: no [N, C] matrix is held whole.
        io.save_similarity(item["path"], **cosine_row_blocks(
            images.emb, texts.npz_arrays(), matrices, device,
            gpu_mem_mb=snakemake.params.gpu_mem_mb))
        log.info("%s %s: %s of %d images", item["clip"], item["view"], matrices, len(images.emb))
