"""Evaluation embeddings of a concept set: rows the model made already copied, the rest embedded."""
from functools import partial

from neuron_concepts import embeddings, evaluation, io
from neuron_concepts.logs import to_file

with to_file(snakemake.log[0]) as log:
    p = snakemake.params
    concepts = io.load_concepts(snakemake.input.concepts)
    texts = evaluation.evaluation_texts(concepts["text"])
    # clip.dissect's raw strings, when it is also the evaluation CLIP (rule input clip_concepts)
    clip_rows = [(concepts["text"], io.load_text_embeddings(path, parts=["raw"]).raw)
                 for path in snakemake.input.clip_concepts]
    for kind, spec in p.models.items():
        known_ids, known_emb = evaluation.known_embeddings(
            io.load_eval_embeddings(snakemake.input[f"{kind}_classes"]),
            *(clip_rows[0] if kind == "clip" and clip_rows else ()))
        emb = embeddings.embed_with_known(
            texts, known_ids, known_emb,
            load=partial(evaluation.load_embedder, spec, p.device, p.batch_size))
        io.save_eval_embeddings(snakemake.output[kind], emb, ids=texts)
        log.info("%s: %d texts, %d of them embedded (the rest copied)", snakemake.output[kind],
                 len(texts), len(set(texts) - set(known_ids)))
