"""Stability of CLIP-Dissect's top concepts over the number of activating images."""
from neuron_concepts import evaluation, io, stability
from neuron_concepts.logs import to_file

with to_file(snakemake.log[0]):
    p = snakemake.params
    label_names = [name for name in p.labels[0] if name != "k"]
    groups = {}  # (probe, variant, layer, concepts, sim) -> {k: descriptions}
    for labels, path in zip(p.labels, snakemake.input.descriptions):
        key = tuple(labels[name] for name in label_names)
        groups.setdefault(key, {})[labels["k"]] = io.read_parquet(path)
    table = stability.stability_table(groups, p.study["base_k"], p.study["n_best"],
                                      label_names)
    io.write_text(snakemake.output.csv, table.to_csv(index=False))
    title = f"Stability of the top-{p.study['n_best']} concepts over the activating images"
    io.write_text(snakemake.output.md, evaluation.table_markdown(table, title))
    stability.stability_figure(table, snakemake.output.figure)
