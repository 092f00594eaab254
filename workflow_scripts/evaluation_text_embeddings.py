"""Embed a concept set and the ImageNet labels with both evaluation models (CLIP, sentence)."""
from neuron_concepts import evaluation, io, metrics, models
from neuron_concepts.logs import to_file

with to_file(snakemake.log[0]) as log:
    p = snakemake.params
    device = models.resolve_device(p.device)
    texts = evaluation.evaluation_texts(io.load_concepts(snakemake.input.concepts)["text"])
    for spec, path in zip(p.models, [snakemake.output.clip, snakemake.output.sentence]):
        spec = dict(spec)
        if spec.pop("kind") == "clip":
            embed = metrics.clip_embedder(models.load_clip(**spec, device=device), p.batch_size)
        else:
            embed = metrics.sentence_embedder(models.load_sentence_model(**spec, device=device),
                                              p.batch_size)
        io.save_eval_embeddings(path, embed(texts), ids=texts)
        log.info("%s: %d texts", path, len(texts))
        del embed
