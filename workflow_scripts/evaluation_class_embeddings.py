"""Embed the ImageNet class names (the evaluations' ground truth) with both evaluation models."""
from neuron_concepts import evaluation, io
from neuron_concepts.logs import to_file

with to_file(snakemake.log[0]) as log:
    p = snakemake.params
    texts = evaluation.class_texts()
    for kind, spec in p.models.items():  # one model in memory at a time
        embed = evaluation.load_embedder(spec, p.device, p.batch_size)
        io.save_eval_embeddings(snakemake.output[kind], embed(texts), ids=texts)
        log.info("%s: %d texts", snakemake.output[kind], len(texts))
        del embed
