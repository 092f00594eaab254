"""Embed a concept set with each CLIP model's text encoder: the parts its roles read."""
from neuron_concepts import embeddings, io, models
from neuron_concepts.logs import to_file


with to_file(snakemake.log[0]) as log:
    p = snakemake.params
    concepts = io.load_concepts(snakemake.input.concepts)
    texts = list(concepts["text"])
    device = models.resolve_device(p.device)
    for spec in p.models:  # one model in memory at a time
        clip = models.load_clip(**spec["clip"], device=device)
        parts = spec["parts"]
        # texts this model embedded already (the class names; rule input ``known``)
        known = io.load_eval_embeddings(spec["known"]) if spec.get("known") else None
        io.save_text_embeddings(
            spec["path"], ids=concepts["concept_id"],
            prompt=(embeddings.encode_texts(clip, texts, p.batch_size, template=p.template)
                    if "prompt" in parts else None),
            base=(embeddings.encode_texts(clip, [p.base_template], progress=False)[0]
                  if "base" in parts else None),
            raw=(embeddings.encode_texts(clip, texts, p.batch_size, known=known)
                 if "raw" in parts else None),
        )
        log.info("%s: %s of %d concepts", spec["tag"], parts, len(texts))
        del clip
