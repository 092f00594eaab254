# ConVis (Giulivi & Boracchi): saliency maps of WordNet synsets through CLIP ranks, and their
# OOD and WSOL evaluations. Off when the config has no convis section. Artifacts of a probe
# set live in one folder per CLIP model, vocabulary and patch grid (paths.convis_dir), the
# grid e.g. anchored64-128-stride16 (neuron_concepts.names.convis_grid_name: the paper's
# valid-location grid; ...-noise for the official code's noise-padded grid, ...-r224 for a
# 224-px centre crop): rank volumes, maps and top-synset tables (paths.convis_volume,
# paths.convis_map, paths.convis_top).
# A geometry, vocabulary or CLIP model of its own never overwrites or reuses another's.
#
# Jobs are sized by work, not by image: the rank volumes of a folder's images (the
# configured images, the pairs' images and the WSOL sample) are made in shards of
# convis.images_per_job images, one job per shard that loads CLIP once (a rule per shard,
# convis_rank_volume_{probe}_{vocab}_shard0000, ..., since a Snakemake rule's outputs cannot
# depend on a wildcard); maps, top-synset tables and figures of the configured images are one
# job each. Every artifact keeps its per-image path, and a volume does not depend on its shard.


include: "helpers/convis.smk"


rule convis_vocabulary:
    """A ConVis vocabulary: all noun synsets on the hypernym paths of its words' senses.

    Also writes the definitions as a concept set (text = definition, synset = name, one row
    per vocabulary row, not de-duplicated) for the text_embeddings rule, so row i of
    paths.convis_text_embeddings (key ``raw``) embeds synset i.
    """
    input:
        convis_words_file,
    output:
        vocab=paths.convis_vocab(),
        concepts=paths.convis_concepts(),
    params:
        words_file=lambda wc: convis_vocabulary_spec(wc.vocab).get("words_file"),
    # the head of ConVis's chain (definitions, rank volumes, maps): start it early
    priority: 5
    resources:
        mem_mb=4000,
        runtime=30,
    log:
        "logs/convis_vocabulary/{vocab}.log",
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/convis_vocabulary.py"


for _shard in convis_shards():

    rule:
        # The rank volumes (uint16 rank counts of every vocabulary synset at every patch
        # location) of one shard of images: CLIP loaded once, patches of consecutive images
        # sharing forwards of convis.batch_size. The script reads the image ids from the
        # output paths (paths.parse_convis_volume) rather than from a param, so a shard
        # whose volumes all exist is not rerun when an image added elsewhere moves its borders.
        name:
            _shard["rule_name"]
        input:
            manifest=paths.probe_manifest(_shard["probe"]),
            **convis_vocabulary_files(_shard["vocab"]),
            weights=weights_marker("clip", CLIP["match"]),
        output:
            _shard["volumes"],
        params:
            probe=_shard["probe"],
            **convis_rank_params(),  # clip, grid (sizes, stride, padding, resize), seed, batching
        resources:
            mem_mb=8000,
            cpus_per_gpu=8,  # the profile cannot name a generated rule: set here
            # minutes: a CPU embeds a 500 x 375 image's 850 patches (stride 16) in about a
            # minute; a GPU (float16) thousands of patches a second
            runtime=lambda wc, attempt, n=len(_shard["images"]): attempt * (
                30 + (n // 8 if use_gpu() else 2 * n)),
            # CLIP's image tower over convis.batch_size patches a forward
            **gpu_resources(image_tower_gpu_mem_mb(SETTINGS.convis.batch_size)),
        log:
            _shard["log"],
        conda:
            "../envs/torch.yaml"
        script:
            "../workflow_scripts/convis_rank_volume.py"


if SETTINGS.on("convis_pairs"):

    rule convis_saliency:
        """The ConVis maps of the configured (image, synset) pairs, from the stored rank
        volumes (no CLIP call), one job for all of them."""
        input:
            volumes=sorted({item["volume"] for item in convis_pair_items()}),
            vocab=paths.convis_vocab(SETTINGS.convis.vocabulary),
        output:
            [item["map"] for item in convis_pair_items()],
        params:
            # One item per map, carrying its own volume and output path (nothing zipped by position).
            maps=[{key: item[key] for key in ("image", "synset", "volume", "map")}
                  for item in convis_pair_items()],
        resources:
            mem_mb=4000,
            runtime=10,
        log:
            "logs/convis_saliency.log",
        conda:
            "../envs/torch.yaml"
        script:
            "../workflow_scripts/convis_saliency.py"


if SETTINGS.on("convis_images"):

    rule convis_top_synsets:
        """The synsets each configured image scores highest on (their best patch location's
        rank), one job for all images."""
        input:
            volumes=[item["volume"] for item in convis_image_items()],
            vocab=paths.convis_vocab(SETTINGS.convis.vocabulary),
        output:
            [item["top"] for item in convis_image_items()],
        params:
            n=SETTINGS.convis.top_n,
            images=[{key: item[key] for key in ("image", "volume", "top")} for item in convis_image_items()],
        resources:
            mem_mb=4000,
            runtime=10,
        log:
            "logs/convis_top_synsets.log",
        conda:
            "../envs/torch.yaml"
        script:
            "../workflow_scripts/convis_top_synsets.py"


if SETTINGS.on("convis_images") or SETTINGS.on("convis_pairs"):

    rule convis_figures:
        """PNG overlays of the configured pairs' maps and grids of each configured image's
        top-scoring synsets' maps, one job for all of them."""
        input:
            maps=[item["map"] for item in convis_pair_items()],
            volumes=[item["volume"] for item in convis_image_items()],
            tops=[item["top"] for item in convis_image_items()],
            vocab=paths.convis_vocab(SETTINGS.convis.vocabulary),
            manifest=paths.probe_manifest(SETTINGS.convis.probe),
        output:
            [report(item["figure"], caption="../report/convis_map.rst", category="ConVis",
                    subcategory="Saliency maps", labels={"image": item["image"], "synset": item["synset"]})
             for item in convis_pair_items()],
            [report(item["figure"], caption="../report/convis_top.rst", category="ConVis",
                    subcategory="Top synsets", labels={"image": item["image"]})
             for item in convis_image_items()],
        params:
            pairs=[{key: item[key] for key in ("image", "synset", "map", "figure")}
                   for item in convis_pair_items()],
            images=[{key: item[key] for key in ("image", "volume", "top", "figure")}
                    for item in convis_image_items()],
        resources:
            mem_mb=4000,
            runtime=10,
        log:
            "logs/convis_figures.log",
        conda:
            "../envs/torch.yaml"
        script:
            "../workflow_scripts/convis_figures.py"


rule convis_ood:
    """AUROC of ConVis OOD scores and its baselines for the configured (s+, s-) pairs."""
    input:
        unpack(convis_ood_inputs),
    output:
        csv=report(paths.table("convis_ood", "csv"), caption="../report/convis_ood.rst",
                   category="ConVis", subcategory="Tables"),
        md=paths.table("convis_ood", "md"),
    params:
        pairs=lambda wc: convis_ood_pairs(),
        reduce=lambda wc: SETTINGS.convis.ood.reduce,
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
        csv=report(paths.table("convis_wsol", "csv"), caption="../report/convis_wsol.rst",
                   category="ConVis", subcategory="Tables"),
        md=paths.table("convis_wsol", "md"),
    params:
        # One item per image, carrying its own volume path and boxes (nothing zipped by position).
        images=lambda wc: convis_wsol_items(),
        synset=lambda wc: SETTINGS.convis.wsol.synset,
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
