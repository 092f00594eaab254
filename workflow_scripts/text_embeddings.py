"""Embed a concept set with CLIP's text encoder: WWW prompts, base template, raw strings."""
from neuron_concepts import embeddings, io, models
from neuron_concepts.logs import to_file

with to_file(snakemake.log[0]):
    p = snakemake.params
    concepts = io.load_concepts(snakemake.input.concepts)
    clip = models.load_clip(**p.clip, device=models.resolve_device(p.device))
    texts = list(concepts["text"])
    io.save_text_embeddings(
        snakemake.output[0],
        prompt=embeddings.encode_texts(clip, texts, p.batch_size, template=p.template),
        base=embeddings.encode_texts(clip, [p.base_template], progress=False)[0],
        raw=embeddings.encode_texts(clip, texts, p.batch_size),
        ids=concepts["concept_id"],
    )
