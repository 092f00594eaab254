"""Embed a concept set and the ImageNet labels with an evaluation model."""
from neuron_concepts import evaluation, io, metrics, models
from neuron_concepts.logs import to_file

with to_file(snakemake.log[0]):
    p = snakemake.params
    spec = dict(p.model)
    device = models.resolve_device(p.device)
    if spec.pop("kind") == "clip":
        embed = metrics.clip_embedder(models.load_clip(**spec, device=device), p.batch_size)
    else:
        embed = metrics.sentence_embedder(models.load_sentence_model(**spec, device=device),
                                          p.batch_size)
    texts = evaluation.evaluation_texts(io.load_concepts(snakemake.input.concepts)["text"])
    io.save_eval_embeddings(snakemake.output[0], embed(texts), ids=texts)
