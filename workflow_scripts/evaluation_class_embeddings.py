"""Embed the ImageNet class names (the evaluations' ground truth) with one evaluation model."""
from neuron_concepts import evaluation, io
from neuron_concepts.logs import to_file

with to_file(snakemake.log[0]) as log:
    p = snakemake.params
    texts = evaluation.class_texts()
    embed = evaluation.load_embedder(p.spec, p.device, p.batch_size)
    io.save_eval_embeddings(snakemake.output[0], embed(texts), ids=texts)
    log.info("%s: %d texts", snakemake.output[0], len(texts))
