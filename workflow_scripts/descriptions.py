"""Describe the neurons of a description job's layers with one method family (WWW or CLIP-Dissect)."""
from neuron_concepts import describe
from neuron_concepts.logs import to_file

with to_file(snakemake.log[0]) as log:
    p = snakemake.params
    describe.describe_job(p.family, p.views, snakemake.input.concepts, p.options,
                          device=p.device, gpu_mem_mb=p.gpu_mem_mb, log=log)
