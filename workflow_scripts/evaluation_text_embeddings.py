"""Evaluation embeddings of a concept set: the class names' rows copied, its own texts embedded."""
from functools import partial

from neuron_concepts import evaluation, io
from neuron_concepts.logs import to_file

with to_file(snakemake.log[0]) as log:
    p = snakemake.params
    texts = evaluation.evaluation_texts(io.load_concepts(snakemake.input.concepts)["text"])
    for kind, spec in p.models.items():
        classes = io.load_eval_embeddings(snakemake.input[f"{kind}_classes"])
        emb = evaluation.embed_with_known(
            texts, classes.ids, classes.emb,
            load=partial(evaluation.load_embedder, spec, p.device, p.batch_size))
        io.save_eval_embeddings(snakemake.output[kind], emb, ids=texts)
        log.info("%s: %d texts, %d of them not class names", snakemake.output[kind], len(texts),
                 len(texts) - len(classes.ids))
