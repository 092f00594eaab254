"""AUROC of ConVis OOD detection and its baselines on an ImageNet-style probe set."""
import pandas as pd

from neuron_concepts import convis_eval, evaluation, io, wordnet
from neuron_concepts.errors import InputDataError
from neuron_concepts.logs import to_file


def embeddings_and_wnids(emb_path, manifest_path, probe):
    """A probe set's CLIP image embeddings and each image's ImageNet id (its class folder)."""
    emb = io.load_image_embeddings(emb_path)
    labels = io.load_manifest(manifest_path).set_index("image_id").loc[emb.ids, "label"]
    bad = sorted({str(label) for label in labels if pd.isna(label) or not wordnet.is_wnid(str(label))})
    if bad:
        raise InputDataError(f"probe set {probe}: OOD evaluation needs images in ImageNet synset "
                             f"folders (n01530575/...), found labels {bad[:10]}")
    return emb.emb, labels.astype(str).tolist()


with to_file(snakemake.log[0]):
    p, inp = snakemake.params, snakemake.input
    images, wnids = embeddings_and_wnids(inp.images, inp.manifest, p.labels["probe"])
    references = reference_wnids = None
    if "train_images" in inp.keys():
        references, reference_wnids = embeddings_and_wnids(inp.train_images, inp.train_manifest,
                                                           p.labels["train_probe"])
    table = convis_eval.ood_evaluation(
        images, wnids, io.load_text_embeddings(inp.texts, parts=["raw"]).raw,
        io.load_vocabulary(inp.vocab), pairs=[tuple(pair) for pair in p.pairs],
        reference_emb=references, reference_wnids=reference_wnids, reduce=p.reduce)
    for column, value in reversed(p.labels.items()):
        table.insert(0, column, value)
    io.save_summary_table(snakemake.output.csv, table, snakemake.output.md,
                          evaluation.table_markdown(table, "ConVis OOD detection (AUROC)"))
