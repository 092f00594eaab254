"""Join the per-neuron evaluations into the concept-discovery table (the papers' Table 1)."""
from neuron_concepts import evaluation, io
from neuron_concepts.logs import to_file

with to_file(snakemake.log[0]):
    evaluations = [(labels, io.read_parquet(path))
                   for labels, path in zip(snakemake.params.labels, snakemake.input)]
    table = evaluation.concept_discovery_table(evaluations, snakemake.params.styles)
    io.write_text(snakemake.output.csv, table.to_csv(index=False))
    io.write_text(snakemake.output.md, evaluation.table_markdown(table, "Concept discovery"))
