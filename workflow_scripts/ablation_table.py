"""Join the WWW grid's evaluations into the ablation table (the seed paper's Table 2)."""
from neuron_concepts import evaluation, io
from neuron_concepts.logs import to_file

with to_file(snakemake.log[0]):
    # Each item names its input and carries its labels: no pairing by list position.
    evaluations = [(item["labels"], io.load_evaluation(item["path"]))
                   for item in snakemake.params.evaluations]
    table = evaluation.ablation_table(evaluations)
    io.save_summary_table(snakemake.output.csv, table, snakemake.output.md, evaluation.ablation_markdown(table))
