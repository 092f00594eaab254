"""Join the WWW grid's evaluations into the ablation table (the seed paper's Table 2)."""
from neuron_concepts import evaluation, io
from neuron_concepts.logs import to_file

with to_file(snakemake.log[0]):
    evaluations = [(labels, io.read_parquet(path))
                   for labels, path in zip(snakemake.params.labels, snakemake.input)]
    table = evaluation.ablation_table(evaluations)
    io.write_text(snakemake.output.csv, table.to_csv(index=False))
    io.write_text(snakemake.output.md, evaluation.ablation_markdown(table))
