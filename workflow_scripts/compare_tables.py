"""Compare several targets: the summary and agreement tables and the distinct-concepts figure."""
from neuron_concepts import compare, compare_figures, io
from neuron_concepts.logs import to_file

with to_file(snakemake.log[0]):
    p, out = snakemake.params, snakemake.output
    # Each item names its inputs and carries its labels: no pairing by list position.
    entries = [compare.Entry(item["labels"], io.load_descriptions(item["path"]),
                             io.load_evaluation(item["evaluation"]) if item["evaluation"] else None)
               for item in p.entries]
    table = compare.comparison_table(entries)
    io.save_summary_table(out.csv, table, out.md, compare.table_markdown(
        table, "Targets compared: distinct top concepts, described neurons, evaluation"))
    agreement = compare.agreement_table(entries)
    io.save_summary_table(out.agreement_csv, agreement, out.agreement_md, compare.table_markdown(
        agreement, "Agreement of methods: % of neurons with the same top concept"))
    compare_figures.distinct_concepts_figure(table, out.figure, p.layer_order)
