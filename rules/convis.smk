# ConVis (Giulivi & Boracchi): saliency maps of WordNet synsets through CLIP ranks, and their
# OOD and WSOL evaluations. Off when the config has no convis section. Artifacts of a probe
# set live under
#   results/convis/{probe}/{clip}/{vocab}/{convis_grid}/
# with convis_grid e.g. anchored64-128-stride16 (neuron_concepts.names.convis_grid_name: the
# paper's valid-location grid; ...-noise for the official code's noise-padded grid, ...-r224
# for a 224-px centre crop): ranks/{image}.npz, maps/{image}/{synset}.npz, top/{image}.parquet.
# A geometry, vocabulary or CLIP model of its own never overwrites or reuses another's.


include: "helpers/convis.smk"


rule convis_vocabulary:
    """A ConVis vocabulary: all noun synsets on the hypernym paths of its words' senses.

    Also writes the definitions as a concept set (text = definition, synset = name, one row
    per vocabulary row, not de-duplicated) for the text_embeddings rule, so row i of
    results/text_emb/{clip}/convis-{vocab}.npz (key ``raw``) embeds synset i.
    """
    input:
        convis_words_file,
    output:
        vocab="results/convis/vocab/{vocab}.parquet",
        concepts="results/concepts/convis-{vocab}.parquet",
    params:
        words_file=lambda wc: convis_vocabulary_spec(wc.vocab).get("words_file"),
    resources:
        mem_mb=4000,
        runtime=30,
    log:
        "logs/convis_vocabulary/{vocab}.log",
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/convis_vocabulary.py"


rule convis_rank_volume:
    """Rank counts of every vocabulary synset at every patch location of one image (uint16)."""
    input:
        manifest="results/probe/{probe}/manifest.parquet",
        vocab="results/convis/vocab/{vocab}.parquet",
        texts="results/text_emb/{clip}/convis-{vocab}.npz",
        weights=lambda wc: weights_marker("clip", wc.clip),
    output:
        "results/convis/{probe}/{clip}/{vocab}/{convis_grid}/ranks/{image}.npz",
    params:
        clip=lambda wc: clip_spec(wc.clip),
        grid=lambda wc: names.parse_convis_grid(wc.convis_grid),  # sizes, stride, padding, resize
        # the padding noise's seed: none without noise, so a seed change reruns only noise grids
        seed=lambda wc: config["seed"] if names.parse_convis_grid(wc.convis_grid)["padding"] == "noise" else None,
        batch_size=config["batch_size"]["image"],
        device=config["device"],
    resources:
        gpu=use_gpu(),
        mem_mb=8000,
        runtime=60,
    log:
        "logs/convis_rank_volume/{probe}/{clip}/{vocab}/{convis_grid}/{image}.log",
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/convis_rank_volume.py"


rule convis_saliency:
    """The ConVis map of one synset on one image, from the stored rank volume (no CLIP call)."""
    input:
        volume="results/convis/{probe}/{clip}/{vocab}/{convis_grid}/ranks/{image}.npz",
        vocab="results/convis/vocab/{vocab}.parquet",
    output:
        "results/convis/{probe}/{clip}/{vocab}/{convis_grid}/maps/{image}/{synset}.npz",
    resources:
        mem_mb=4000,
        runtime=10,
    log:
        "logs/convis_saliency/{probe}/{clip}/{vocab}/{convis_grid}/{image}/{synset}.log",
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/convis_saliency.py"


rule convis_top_synsets:
    """The synsets an image scores highest on (their best patch location's rank)."""
    input:
        volume="results/convis/{probe}/{clip}/{vocab}/{convis_grid}/ranks/{image}.npz",
        vocab="results/convis/vocab/{vocab}.parquet",
    output:
        "results/convis/{probe}/{clip}/{vocab}/{convis_grid}/top/{image}.parquet",
    params:
        n=lambda wc: convis_config()["top_n"],
    resources:
        mem_mb=4000,
        runtime=10,
    log:
        "logs/convis_top_synsets/{probe}/{clip}/{vocab}/{convis_grid}/{image}.log",
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/convis_top_synsets.py"


rule convis_figure:
    """PNG overlay of one configured (image, synset) pair's ConVis map."""
    input:
        saliency=lambda wc: f"{convis_dir()}/maps/{wc.image}/{wc.synset}.npz",
        manifest=lambda wc: f"results/probe/{convis_config()['probe']}/manifest.parquet",
    output:
        report("results/figures/convis/{image}__{synset}.png", caption="../report/convis_map.rst",
               category="ConVis", subcategory="Saliency maps",
               labels={"image": "{image}", "synset": "{synset}"}),
    resources:
        mem_mb=4000,
        runtime=10,
    log:
        "logs/convis_figure/{image}__{synset}.log",
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/convis_figure.py"


rule convis_top_figure:
    """PNG grid of the maps of an image's top-scoring synsets."""
    input:
        volume=lambda wc: f"{convis_dir()}/ranks/{wc.image}.npz",
        top=lambda wc: f"{convis_dir()}/top/{wc.image}.parquet",
        vocab=lambda wc: f"results/convis/vocab/{convis_config()['vocabulary']}.parquet",
        manifest=lambda wc: f"results/probe/{convis_config()['probe']}/manifest.parquet",
    output:
        report("results/figures/convis/{image}__top.png", caption="../report/convis_top.rst",
               category="ConVis", subcategory="Top synsets", labels={"image": "{image}"}),
    resources:
        mem_mb=4000,
        runtime=10,
    log:
        "logs/convis_top_figure/{image}.log",
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/convis_top_figure.py"


rule convis_ood:
    """AUROC of ConVis OOD scores and its baselines for the configured (s+, s-) pairs."""
    input:
        unpack(convis_ood_inputs),
    output:
        csv=report("results/tables/convis_ood.csv", caption="../report/convis_ood.rst",
                   category="ConVis", subcategory="Tables"),
        md="results/tables/convis_ood.md",
    params:
        pairs=lambda wc: convis_ood_pairs(),
        reduce=lambda wc: convis_config()["ood"]["reduce"],
        labels=lambda wc: convis_ood_labels(),
    resources:
        mem_mb=8000,
        runtime=30,
    log:
        "logs/convis_ood.log",
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/convis_ood.py"


rule convis_wsol:
    """MaxBoxAcc of ConVis maps of one synset against ground-truth boxes (sampled images)."""
    input:
        unpack(convis_wsol_inputs),
    output:
        csv=report("results/tables/convis_wsol.csv", caption="../report/convis_wsol.rst",
                   category="ConVis", subcategory="Tables"),
        md="results/tables/convis_wsol.md",
    params:
        # One item per image, carrying its own volume path and boxes (nothing zipped by position).
        images=lambda wc: convis_wsol_items(),
        synset=lambda wc: convis_config()["wsol"]["synset"],
        labels=lambda wc: convis_wsol_labels(),
    resources:
        mem_mb=8000,
        runtime=60,
    log:
        "logs/convis_wsol.log",
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/convis_wsol.py"


rule convis:
    """Every configured ConVis output: `snakemake convis` runs ConVis alone."""
    input:
        convis_outputs(),
