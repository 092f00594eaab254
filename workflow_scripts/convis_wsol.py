"""MaxBoxAcc of ConVis maps of one synset against ground-truth boxes."""
import pandas as pd

from neuron_concepts import convis, convis_eval, evaluation, io
from neuron_concepts.logs import to_file

with to_file(snakemake.log[0]) as log:
    p = snakemake.params
    members = convis.hyponym_members(io.read_parquet(snakemake.input.vocab), p.synset)
    volumes = (convis.RankVolume.from_arrays(io.read_npz(path))
               for path in snakemake.input.volumes)  # one volume and map in memory at a time
    # Boxes are in original pixels; each moves into the frame its map covers (a 224 crop or not).
    result = convis_eval.wsol_of_volumes(volumes, p.boxes, members)
    log.info("MaxBoxAcc over %d images: %s", len(p.boxes), result)
    table = pd.DataFrame([{**p.labels, "synset": p.synset, **result}])
    io.write_text(snakemake.output.csv, table.to_csv(index=False))
    io.write_text(snakemake.output.md, evaluation.table_markdown(table, "ConVis WSOL (MaxBoxAcc, %)"))
