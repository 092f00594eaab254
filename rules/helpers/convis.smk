# Helpers of rules/convis.smk: ConVis paths, inputs, labels and outputs.


def convis_volume(probe, vocab, image):
    """The rank-volume path of one image of a probe set, under a vocabulary."""
    return paths.convis_volume(probe, CLIP["match"], vocab, SETTINGS.convis.grid, image)


def convis_volume_images():
    """(probe, vocab) -> the sorted image ids whose rank volumes the configured outputs read:
    convis.images and the pairs' images under convis.vocabulary, the WSOL sample under its own."""
    cv = SETTINGS.convis
    if not SETTINGS.on("convis"):
        return {}
    wanted = {(cv.probe, cv.vocabulary): set(cv.images) | {image for image, _ in cv.pairs}}
    if SETTINGS.on("convis_wsol"):
        key = (cv.wsol.probe, cv.wsol.vocabulary)
        wanted.setdefault(key, set()).update(convis_wsol_boxes())
    return {key: sorted(images) for key, images in sorted(wanted.items()) if images}


def convis_shards():
    """The rank-volume jobs: each folder's sorted image ids cut into chunks of
    convis.images_per_job (deterministic; an added image moves the later chunks' borders,
    but a chunk whose volumes all exist is not rerun). Each shard: the rule name, probe,
    vocabulary, shard name, images, their volume paths and the log."""
    shards = []
    for (probe, vocab), images in convis_volume_images().items():
        size = SETTINGS.convis.images_per_job
        for index, start in enumerate(range(0, len(images), size)):
            chunk = images[start:start + size]
            shard = names.convis_shard_name(index)
            shards.append(dict(
                rule_name=f"convis_rank_volume_{probe}_{vocab}_{shard}", probe=probe, vocab=vocab,
                shard=shard, images=chunk,
                volumes=[convis_volume(probe, vocab, image) for image in chunk],
                log=f"logs/convis_rank_volume/{probe}/{CLIP['match']}/{vocab}/{SETTINGS.convis.grid}/{shard}.log"))
    return shards


def convis_rank_params():
    """What every rank-volume job reads besides its images: CLIP, grid, seed, batching."""
    cv = SETTINGS.convis
    grid = names.parse_convis_grid(cv.grid)
    return dict(clip=clip_spec(CLIP["match"]), grid=grid,
                # the padding noise's seed: none without noise, so a seed change reruns only noise grids
                seed=config["seed"] if grid["padding"] == "noise" else None,
                batch_size=cv.batch_size, precision=cv.precision, device=config["device"])


def convis_pair_items():
    """Each configured (image, synset) pair with its volume, map and figure paths."""
    cv = SETTINGS.convis
    if not SETTINGS.on("convis_pairs"):
        return []
    return [dict(image=image, synset=synset, volume=convis_volume(cv.probe, cv.vocabulary, image),
                 map=paths.convis_map(cv.probe, CLIP["match"], cv.vocabulary, cv.grid, image, synset),
                 figure=paths.convis_map_figure(image, synset))
            for image, synset in cv.pairs]


def convis_image_items():
    """Each image of convis.images with its volume, top-synsets table and figure paths."""
    cv = SETTINGS.convis
    if not SETTINGS.on("convis_images"):
        return []
    return [dict(image=image, volume=convis_volume(cv.probe, cv.vocabulary, image),
                 top=paths.convis_top(cv.probe, CLIP["match"], cv.vocabulary, cv.grid, image),
                 figure=paths.convis_top_figure(image))
            for image in cv.images]


def convis_vocabulary_spec(name):
    vocabularies = SETTINGS.convis.vocabularies if SETTINGS.on("convis") else {}
    if name not in vocabularies:
        raise WorkflowError(f"no ConVis vocabulary is named {name!r} (convis.vocabularies: "
                            f"{sorted(vocabularies)})")
    return vocabularies[name]


def convis_words_file(wildcards):
    """A vocabulary's word file is its input (editing it rebuilds it); none for ImageNet."""
    path = convis_vocabulary_spec(wildcards.vocab).get("words_file")
    return [path] if path else []


def convis_vocabulary_files(vocab):
    """The vocabulary table and the CLIP embeddings of its definitions (key ``raw``)."""
    return dict(vocab=paths.convis_vocab(vocab), texts=paths.convis_text_embeddings(CLIP["match"], vocab))


def convis_ood_inputs(wildcards):
    ood = SETTINGS.convis.ood
    inputs = dict(images=paths.image_embeddings(ood.probe, CLIP["match"], names.view_name("center")),
                  manifest=paths.probe_manifest(ood.probe), **convis_vocabulary_files(ood.vocabulary))
    for train in convis_derived_probe_sets():
        inputs["train_images"] = paths.image_embeddings(train, CLIP["match"], names.view_name("center"))
        inputs["train_manifest"] = paths.probe_manifest(train)
    return inputs


def convis_ood_pairs():
    """The (s+, s-) pairs: configured, or the paper's six."""
    from neuron_concepts.convis_eval import OOD_PAIRS

    return [list(pair) for pair in (SETTINGS.convis.ood.pairs or OOD_PAIRS)]


def convis_ood_labels():
    ood = SETTINGS.convis.ood
    return dict(probe=ood.probe, train_probe=ood.train_probe, clip=CLIP["match"],
                vocabulary=ood.vocabulary)


_CONVIS_WSOL_BOXES = {}


def convis_wsol_boxes():
    """Ground-truth boxes of the sampled WSOL images, keyed by probe image id (read once)."""
    from neuron_concepts.convis_eval import wsol_ground_truth

    if not _CONVIS_WSOL_BOXES:
        ws = SETTINGS.convis.wsol
        _CONVIS_WSOL_BOXES.update(wsol_ground_truth(
            cub_root=ws.cub_root, boxes_csv=ws.boxes_csv, split=ws.cub_split,
            n_images=ws.n_images, seed=ws.seed))
    return _CONVIS_WSOL_BOXES


def convis_wsol_inputs(wildcards):
    ws = SETTINGS.convis.wsol
    if ws.cub_root:
        sources = [f"{ws.cub_root}/{name}" for name in
                   ("images.txt", "bounding_boxes.txt", "train_test_split.txt")]
    else:
        sources = [ws.boxes_csv]
    return dict(volumes=[item["volume"] for item in convis_wsol_items()],
                vocab=convis_vocabulary_files(ws.vocabulary)["vocab"], boxes=sources)


def convis_wsol_items():
    """Each sampled WSOL image with its rank-volume path and ground-truth boxes (original pixels)."""
    ws = SETTINGS.convis.wsol
    return [dict(image=image, volume=convis_volume(ws.probe, ws.vocabulary, image), boxes=boxes.tolist())
            for image, boxes in convis_wsol_boxes().items()]


def convis_wsol_labels():
    ws = SETTINGS.convis.wsol
    return dict(probe=ws.probe, clip=CLIP["match"], vocabulary=ws.vocabulary,
                grid=SETTINGS.convis.grid, seed=ws.seed)


def convis_outputs():
    """Figures of the configured images and pairs, and the OOD/WSOL tables when configured."""
    outputs = [item["figure"] for item in convis_image_items() + convis_pair_items()]
    if SETTINGS.on("convis_ood"):
        outputs += paths.table_files("convis_ood")
    if SETTINGS.on("convis_wsol"):
        outputs += paths.table_files("convis_wsol")
    return outputs
