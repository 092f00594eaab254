"""MaxBoxAcc of ConVis maps of one synset against ground-truth boxes."""
import pandas as pd

from neuron_concepts import convis_eval, convis_vocabulary, evaluation, io
from neuron_concepts.logs import to_file

with to_file(snakemake.log[0]) as log:
    p = snakemake.params
    vocab = io.load_vocabulary(snakemake.input.vocab)
    members = convis_vocabulary.hyponym_members(vocab, p.synset)
    volumes = (io.load_rank_volume(item["volume"], vocab=vocab)
               for item in p.images)  # one volume and map in memory at a time
    # Boxes are in original pixels; each moves into the frame its map covers (a 224 crop or not).
    result = convis_eval.wsol_of_volumes(volumes, [item["boxes"] for item in p.images], members)
    log.info("MaxBoxAcc over %d images: %s", len(p.images), result)
    table = pd.DataFrame([{**p.labels, "synset": p.synset, **result}])
    io.save_summary_table(snakemake.output.csv, table, snakemake.output.md,
                          evaluation.table_markdown(table, "ConVis WSOL (MaxBoxAcc, %)"))
