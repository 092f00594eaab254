"""Stability of CLIP-Dissect's top concepts over the number of activating images."""
from neuron_concepts import evaluation, io, stability
from neuron_concepts.logs import to_file

with to_file(snakemake.log[0]):
    p = snakemake.params
    # Each item names its input and carries its labels: no pairing by list position.
    label_names = [name for name in p.descriptions[0]["labels"] if name != "k"]
    groups = {}  # (probe, variant, layer, concepts, sim) -> {k: descriptions}
    for item in p.descriptions:
        labels = item["labels"]
        key = tuple(labels[name] for name in label_names)
        groups.setdefault(key, {})[labels["k"]] = io.load_descriptions(item["path"])
    table = stability.stability_table(groups, p.study["base_k"], p.study["n_best"],
                                      label_names)
    title = f"Stability of the top-{p.study['n_best']} concepts over the activating images"
    io.save_summary_table(snakemake.output.csv, table, snakemake.output.md,
                          evaluation.table_markdown(table, title))
    stability.stability_figure(table, snakemake.output.figure)
