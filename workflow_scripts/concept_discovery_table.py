"""Join the per-neuron evaluations into the concept-discovery table (the papers' Table 1)."""
from neuron_concepts import evaluation, io
from neuron_concepts.logs import to_file

with to_file(snakemake.log[0]):
    # Each item names its input and carries its labels: no pairing by list position.
    evaluations = [(item["labels"], io.load_evaluation(item["path"]))
                   for item in snakemake.params.evaluations]
    table = evaluation.concept_discovery_table(evaluations, snakemake.params.styles)
    io.save_summary_table(snakemake.output.csv, table, snakemake.output.md, evaluation.table_markdown(table, "Concept discovery"))
