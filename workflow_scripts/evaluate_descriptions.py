"""Evaluate a final layer's descriptions against its ImageNet classes (both styles)."""
from neuron_concepts import concepts, evaluation, io, metrics
from neuron_concepts.logs import to_file

with to_file(snakemake.log[0]):
    clip_emb = io.load_eval_embeddings(snakemake.input.clip_emb)
    sentence_emb = io.load_eval_embeddings(snakemake.input.sentence_emb)
    table = evaluation.evaluate_final_layer(
        io.load_descriptions(snakemake.input.descriptions),
        concepts.imagenet_class_synonyms(), concepts.imagenet_label_lines(),
        metrics.lookup_embedder(clip_emb.ids, clip_emb.emb),
        metrics.lookup_embedder(sentence_emb.ids, sentence_emb.emb),
        concept_type=snakemake.params.concept_type)
    io.save_evaluation(snakemake.output[0], table)
