"""Build a ConVis vocabulary and write its definitions as a concept set for text_embeddings."""
from pathlib import Path

import pandas as pd

from neuron_concepts import convis_vocabulary, io
from neuron_concepts.logs import to_file

with to_file(snakemake.log[0]) as log:
    words_file = snakemake.params.words_file
    words = None  # the ImageNet classes
    if words_file:
        lines = Path(words_file).read_text(encoding="utf-8").splitlines()
        words = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    vocab = convis_vocabulary.build_vocabulary(words)
    log.info("vocabulary %s: %d synsets from %s", snakemake.wildcards.vocab, len(vocab),
             words_file or "the ImageNet classes")
    # One concept per vocabulary row, in row order and not de-duplicated (two synsets may
    # share a definition): row i of the text embeddings is synset i.
    concepts = pd.DataFrame({"concept_id": range(len(vocab)), "text": vocab["definition"],
                             "synset": vocab["synset"]})
    concepts = concepts.astype({"concept_id": "int64", "text": "string", "synset": "string"})
    io.save_vocabulary(snakemake.output.vocab, vocab)
    io.save_concepts(snakemake.output.concepts, concepts)
