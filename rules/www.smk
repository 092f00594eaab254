# WWW (Ahn et al. 2024) and its Grad-CAM + t-vMF variants: one method per configured view
# and similarity, named www-{view}-{sim}-n{n_images}-a{alpha} (neuron_concepts.names.WWW).


include: "helpers/www.smk"


rule www_descriptions:
    """WWW concepts of every neuron of a layer: mean similarity over its top images, thresholded.

    The input is the match CLIP's cosine matrix; the method's similarity (cos or t-vMF,
    sim in the method name) is applied to its rows here, in float32.
    """
    input:
        unpack(www_inputs),
    output:
        "results/descriptions/{probe}/{target}/{layer}/{www_method}/{concepts}.parquet",
    params:
        n_images=lambda wc: www_method(wc)["n_images"],
        alpha=lambda wc: www_method(wc)["alpha"],
        sim=lambda wc: tuple(names.parse_sim(www_method(wc)["sim"])),  # (kind, kappa)
        device=config["device"],
    resources:
        mem_mb=8000,
        runtime=60,
    log:
        "logs/www_descriptions/{probe}/{target}/{layer}/{www_method}/{concepts}.log",
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/www_descriptions.py"
