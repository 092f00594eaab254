"""Evaluate the final layer's descriptions of every method against its ImageNet classes."""
from neuron_concepts import concepts, data, evaluation, io, metrics
from neuron_concepts.logs import to_file

with to_file(snakemake.log[0]) as log:
    clip_emb = io.load_eval_embeddings(snakemake.input.clip_emb)
    sentence_emb = io.load_eval_embeddings(snakemake.input.sentence_emb)
    clip_embed = metrics.lookup_embedder(clip_emb.ids, clip_emb.emb)
    sentence_embed = metrics.lookup_embedder(sentence_emb.ids, sentence_emb.emb)
    synonyms, label_lines = concepts.imagenet_class_synonyms(), data.imagenet_label_lines()
    for item in snakemake.params.methods:
        table = evaluation.evaluate_final_layer(
            io.load_descriptions(item["descriptions"]), synonyms, label_lines, clip_embed,
            sentence_embed, concept_type=snakemake.params.concept_type)
        log.info("%s: %d neurons evaluated", item["method"], len(table))
        io.save_evaluation(item["path"], table)
