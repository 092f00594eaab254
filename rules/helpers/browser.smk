# Helpers of rules/browser.smk: what the neuron browser reads, from the settings registries
# (SETTINGS, description_path, evaluation_path), never by globbing. The browser shows the
# figures' probe set (figures.probe_set), every layer, method and concept set. The site's
# own layout (file names inside its folder) is neuron_concepts.browser's.

from neuron_concepts import browser as neuron_browser


def browser_probe():
    return SETTINGS.figures.probe


def browser_views():
    """The views the described methods use, in order: each has its activations and top images."""
    views = [m.view for m in SETTINGS.www] + [m.view for m in SETTINGS.clip_dissect]
    return list(dict.fromkeys(views))


def browser_methods():
    """The columns: every WWW view x similarity, then every CLIP-Dissect method."""
    return ([dict(name=m.name, family="www", view=m.view) for m in SETTINGS.www]
            + [dict(name=m.name, family="clip-dissect", view=m.view) for m in SETTINGS.clip_dissect])


def browser_site():
    """Keyword arguments of neuron_concepts.browser.build_site: every path with its labels."""
    probe, layers = browser_probe(), LAYERS
    concept_sets = list(config["concept_sets"])
    methods = browser_methods()
    site = dict(
        manifest=paths.probe_manifest(probe),
        layers=list(layers),
        final_layer=FINAL_LAYER,
        views=[dict(view=view, boxes=view_boxes_path(probe, view),
                    activations={layer: activations_path(probe, view, layer)
                                 for layer in layers})
               for view in browser_views()],
        methods=methods,
        concept_sets=concept_sets,
        descriptions=[dict(layer=layer, method=m["name"], concepts=concepts,
                           path=description_path(probe, layer, m["name"], concepts))
                      for layer in layers for m in methods for concepts in concept_sets],
        evaluations=[dict(method=m["name"], concepts=concepts,
                          path=evaluation_path(probe, m["name"], concepts))
                     for m in methods for concepts in SETTINGS.evaluation_concept_sets
                     if probe in SETTINGS.evaluation_probe_sets],
        text_embeddings={concepts: paths.text_embeddings(CLIP["match"], concepts)
                         for concepts in concept_sets},
        cams=(paths.gradcam_cams(probe, TARGET)
              if any(names.parse_view(v).kind == "gradcam" for v in browser_views()) else None),
        stability=[dict(path=item["path"], **{key: item["labels"][key] for key in
                                              ("layer", "concepts", "variant", "sim", "k")})
                   for item in (stability_descriptions() if SETTINGS.on("stability") else [])
                   if item["labels"]["probe"] == probe],
        stability_base_k=SETTINGS.stability.base_k if SETTINGS.on("stability") else None,
        stability_n_best=SETTINGS.stability.n_best if SETTINGS.on("stability") else 5,
        convis=browser_convis(probe),
    )
    return site


def browser_convis(probe):
    """ConVis images of the browser's probe set: top synsets (convis.images) and maps (pairs),
    from the ConVis registries (convis_image_items, convis_pair_items)."""
    if not SETTINGS.on("convis") or SETTINGS.convis.probe != probe:
        return []
    tops = {item["image"]: item["top"] for item in convis_image_items()}
    pairs = convis_pair_items()
    images = list(dict.fromkeys([*tops, *(item["image"] for item in pairs)]))
    return [dict(image=image, top=tops.get(image),
                 maps=[dict(synset=item["synset"], path=item["map"]) for item in pairs
                       if item["image"] == image])
            for image in images]


def browser_options():
    """neuron_concepts.browser.SiteOptions: images per neuron default to WWW's n_images."""
    b = SETTINGS.browser
    return dict(n_images=b.n_images, thumbnail_px=b.thumbnail_px, page_size=b.page_size,
                similarity_threshold=b.similarity_threshold)


def browser_inputs(wildcards):
    """Every artifact the browser reads (the paths of browser_site)."""
    site = browser_site()
    read = [site["manifest"], *site["text_embeddings"].values()]
    for view in site["views"]:
        read += list(view["activations"].values()) + ([view["boxes"]] if view["boxes"] else [])
    read += [item["path"] for key in ("descriptions", "evaluations", "stability") for item in site[key]]
    read += [site["cams"]] if site["cams"] else []
    for image in site["convis"]:
        read += ([image["top"]] if image["top"] else []) + [m["path"] for m in image["maps"]]
    return list(dict.fromkeys(read))


def browser_outputs():
    """The browser folder and the screenshot of a neuron panel; none when the browser is off."""
    if not SETTINGS.on("browser"):
        return []
    return ([paths.browser(neuron_browser.INDEX)]
            + ([paths.figure("browser_panel")] if SETTINGS.on("browser_screenshot") else []))


def browser_files():
    """The browser's files but the index and thumbnails (neuron_concepts.browser.build_site)."""
    return [paths.browser(file) for file in
            neuron_browser.site_files(LAYERS, convis=bool(browser_convis(browser_probe())))]
