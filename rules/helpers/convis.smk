# Helpers of rules/convis.smk: ConVis paths, inputs, labels and outputs.


def convis_config():
    """The convis section, schema defaults filled in; empty when ConVis is off."""
    return SETTINGS.convis or {}


def convis_grid():
    """The patch-grid folder of the configured geometry (anchored64-128-stride16)."""
    cv = convis_config()
    return names.convis_grid_name(cv["patch_sizes"], cv["stride"], cv.get("padding", "none"),
                                  cv.get("resize"))


def convis_dir(probe=None, vocab=None):
    """Folder of a probe set's ConVis artifacts (default: convis.probe, convis.vocabulary)."""
    cv = convis_config()
    return (f"results/convis/{probe or cv['probe']}/{CLIP['match']}/"
            f"{vocab or cv['vocabulary']}/{convis_grid()}")


def convis_vocabulary_spec(name):
    vocabularies = convis_config().get("vocabularies", {})
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
    return dict(vocab=f"results/convis/vocab/{vocab}.parquet",
                texts=f"results/text_emb/{CLIP['match']}/convis-{vocab}.npz")


def convis_ood_inputs(wildcards):
    ood = convis_config()["ood"]
    inputs = dict(images=f"results/image_emb/{ood['probe']}/{CLIP['match']}/center.npz",
                  manifest=f"results/probe/{ood['probe']}/manifest.parquet",
                  **convis_vocabulary_files(ood.get("vocabulary") or convis_config()["vocabulary"]))
    if ood.get("train_probe"):
        inputs["train_images"] = f"results/image_emb/{ood['train_probe']}/{CLIP['match']}/center.npz"
        inputs["train_manifest"] = f"results/probe/{ood['train_probe']}/manifest.parquet"
    return inputs


def convis_ood_pairs():
    """The (s+, s-) pairs: configured, or the paper's six."""
    from neuron_concepts.convis_eval import OOD_PAIRS

    return [list(pair) for pair in (convis_config()["ood"].get("pairs") or OOD_PAIRS)]


def convis_ood_labels():
    ood = convis_config()["ood"]
    return dict(probe=ood["probe"], train_probe=ood.get("train_probe"), clip=CLIP["match"],
                vocabulary=ood.get("vocabulary") or convis_config()["vocabulary"])


_CONVIS_WSOL_BOXES = {}


def convis_wsol_boxes():
    """Ground-truth boxes of the sampled WSOL images, keyed by probe image id (read once)."""
    from neuron_concepts.convis_eval import wsol_ground_truth

    if not _CONVIS_WSOL_BOXES:
        ws = convis_config()["wsol"]
        _CONVIS_WSOL_BOXES.update(wsol_ground_truth(
            cub_root=ws.get("cub_root"), boxes_csv=ws.get("boxes_csv"), split=ws["cub_split"],
            n_images=ws.get("n_images"), seed=ws["seed"]))
    return _CONVIS_WSOL_BOXES


def convis_wsol_inputs(wildcards):
    ws = convis_config()["wsol"]
    vocab = ws.get("vocabulary") or convis_config()["vocabulary"]
    folder = convis_dir(ws["probe"], vocab)
    if ws.get("cub_root"):
        sources = [f"{ws['cub_root']}/{name}" for name in
                   ("images.txt", "bounding_boxes.txt", "train_test_split.txt")]
    else:
        sources = [ws["boxes_csv"]]
    return dict(volumes=[item["volume"] for item in convis_wsol_items()],
                vocab=convis_vocabulary_files(vocab)["vocab"], boxes=sources)


def convis_wsol_items():
    """Each sampled WSOL image with its rank-volume path and ground-truth boxes (original pixels)."""
    ws = convis_config()["wsol"]
    folder = convis_dir(ws["probe"], ws.get("vocabulary") or convis_config()["vocabulary"])
    return [dict(image=image, volume=f"{folder}/ranks/{image}.npz", boxes=boxes.tolist())
            for image, boxes in convis_wsol_boxes().items()]


def convis_wsol_labels():
    ws = convis_config()["wsol"]
    return dict(probe=ws["probe"], clip=CLIP["match"],
                vocabulary=ws.get("vocabulary") or convis_config()["vocabulary"],
                grid=convis_grid(), seed=ws["seed"])


def convis_outputs():
    """Figures of the configured images and pairs, and the OOD/WSOL tables when configured."""
    cv = convis_config()
    if not cv:
        return []
    outputs = [f"results/figures/convis/{image}__top.png" for image in cv["images"]]
    outputs += [f"results/figures/convis/{pair['image']}__{pair['synset']}.png" for pair in cv["pairs"]]
    if cv.get("ood"):
        outputs += ["results/tables/convis_ood.csv", "results/tables/convis_ood.md"]
    if cv.get("wsol"):
        outputs += ["results/tables/convis_wsol.csv", "results/tables/convis_wsol.md"]
    return outputs
