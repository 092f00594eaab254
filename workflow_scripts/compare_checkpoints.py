"""Compare checkpoints of one architecture: changed top concepts per layer, the neurons that
changed most, and the figure."""
from neuron_concepts import compare, compare_figures, io
from neuron_concepts.logs import to_file

with to_file(snakemake.log[0]):
    p, out = snakemake.params, snakemake.output
    pairs = [compare.CheckpointPair(pair["labels"], io.load_descriptions(pair["before"]),
                                    io.load_descriptions(pair["after"]))
             for pair in p.pairs]
    table = compare.checkpoint_table(pairs)
    io.save_summary_table(out.csv, table, out.md, compare.table_markdown(
        table, "Checkpoints compared: neurons whose top concept changed"))
    changed = compare.most_changed(pairs, n_neurons=p.n_neurons)
    io.save_summary_table(out.changed_csv, changed, out.changed_md, compare.table_markdown(
        changed, "The neurons whose best concepts changed most between checkpoints"))
    compare_figures.checkpoint_changes_figure(table, out.figure, p.layer_order)
