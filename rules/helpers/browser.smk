# Helpers of rules/browser.smk: what the neuron browser reads, from the settings registries
# (SETTINGS, description_path, evaluation_path), never by globbing. The browser shows the
# figures' probe set (figures.probe_set), every layer, method and concept set. The site's
# own layout (file names inside its folder) is neuron_concepts.browser's.
#
# Several targets: one site per target, the primary's where it is with one target and each
# other's in targets/<tag>/ inside it (neuron_concepts.browser.target_site_file), with a
# target switcher in every page's header and, on a checkpoint's site, the other checkpoints'
# top concepts; the stability study and ConVis are the primary target's (its site only).
# With one target none of this is passed, and the site is the same, byte for byte.

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


def browser_file(file, tag=None):
    """A file of the site of target ``tag`` (the primary's when None), by its name inside
    that site: the primary's site is the browser folder, another's targets/<tag>/ in it."""
    if tag is None or tag == TARGET:
        return paths.browser(file)
    return paths.browser(neuron_browser.target_site_file(tag, file))


def browser_view_boxes(probe, view, tag):
    """The crop boxes of a view on the site of target ``tag`` (its own crops; None for center)."""
    if tag == TARGET:
        return view_boxes_path(probe, view)
    crop = names.gradcam_crop(view)
    return None if crop is None else paths.crop_boxes(probe, tag, crop)


def browser_checkpoints(probe, tag):
    """The descriptions of the other checkpoints of target ``tag``'s architecture
    (SETTINGS.checkpoints), in each layer they share with it: {target, layer, method,
    concepts, path}; none for a target that is no checkpoint."""
    group = next((g for g in SETTINGS.checkpoints if tag in g), ())
    layers = target_info(tag).layers
    return [dict(target=other, layer=layer, method=m["name"], concepts=concepts,
                 path=description_path(probe, layer, m["name"], concepts, other))
            for other in group if other != tag
            for layer in layers if layer in target_info(other).layers
            for m in browser_methods() for concepts in config["concept_sets"]]


def browser_site(tag=None):
    """Keyword arguments of neuron_concepts.browser.build_site for the site of target ``tag``
    (the primary's when None): every path with its labels. With several targets, also the
    target switcher, the other checkpoints' descriptions and the target in the title."""
    tag = tag or TARGET
    info = target_info(tag)
    primary = tag == TARGET
    probe, layers = browser_probe(), info.layers
    concept_sets = list(config["concept_sets"])
    methods = browser_methods()
    site = dict(
        manifest=paths.probe_manifest(probe),
        layers=list(layers),
        final_layer=info.final,
        views=[dict(view=view, boxes=browser_view_boxes(probe, view, tag),
                    activations={layer: activations_path(probe, view, layer, tag)
                                 for layer in layers})
               for view in browser_views()],
        methods=methods,
        concept_sets=concept_sets,
        descriptions=[dict(layer=layer, method=m["name"], concepts=concepts,
                           path=description_path(probe, layer, m["name"], concepts, tag))
                      for layer in layers for m in methods for concepts in concept_sets],
        evaluations=[dict(method=m["name"], concepts=concepts,
                          path=evaluation_path(probe, m["name"], concepts, tag))
                     for m in methods for concepts in SETTINGS.evaluation_concept_sets
                     if probe in SETTINGS.evaluation_probe_sets and info.final is not None],
        text_embeddings={concepts: paths.text_embeddings(CLIP["match"], concepts)
                         for concepts in concept_sets},
        cams=(paths.gradcam_cams(probe, tag)
              if any(names.parse_view(v).kind == "gradcam" for v in browser_views()) else None),
        stability=[dict(path=item["path"], **{key: item["labels"][key] for key in
                                              ("layer", "concepts", "variant", "sim", "k")})
                   for item in (stability_descriptions() if SETTINGS.on("stability") and primary else [])
                   if item["labels"]["probe"] == probe],
        stability_base_k=SETTINGS.stability.base_k if SETTINGS.on("stability") and primary else None,
        stability_n_best=SETTINGS.stability.n_best if SETTINGS.on("stability") and primary else 5,
        convis=browser_convis(probe) if primary else [],
    )
    if MULTI_TARGET:
        site.update(
            title=f"Neuron browser · {tag}",
            switcher=neuron_browser.target_switcher(
                {other: browser_file(neuron_browser.INDEX, other) for other in TARGETS}, tag),
            checkpoints=browser_checkpoints(probe, tag))
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


def browser_log(tag):
    """The log of the job that builds target ``tag``'s site."""
    return "logs/browser/site.log" if tag == TARGET else f"logs/browser/{tag}/site.log"


def browser_site_params(tag):
    """A params function: the build_site keyword arguments of target ``tag``'s site."""
    return lambda wildcards: browser_site(tag)


def browser_runtime(tag):
    """A runtime function of target ``tag``'s site: a thumbnail per image and view, at most
    (and its Grad-CAM overlay), in minutes (neuron_concepts.resources.thumbnail_runtime_min)."""
    def runtime(wildcards, input, threads, attempt):
        return thumbnail_runtime_min(table_rows(browser_site(tag)["manifest"]), len(browser_views()),
                                     threads, attempt)

    return runtime


def browser_inputs(tag):
    """An input function: every artifact the site of target ``tag`` reads (the paths of
    browser_site)."""
    return lambda wildcards: browser_site_inputs(tag)


def browser_site_inputs(tag):
    """Every artifact the site of target ``tag`` reads (the paths of browser_site)."""
    site = browser_site(tag)
    read = [site["manifest"], *site["text_embeddings"].values()]
    for view in site["views"]:
        read += list(view["activations"].values()) + ([view["boxes"]] if view["boxes"] else [])
    read += [item["path"] for key in ("descriptions", "evaluations", "stability", "checkpoints")
             for item in site.get(key, [])]
    read += [site["cams"]] if site["cams"] else []
    for image in site["convis"]:
        read += ([image["top"]] if image["top"] else []) + [m["path"] for m in image["maps"]]
    return list(dict.fromkeys(read))


def browser_outputs():
    """Every target's browser site (its index) and the screenshot of a neuron panel of the
    primary's; none when the browser is off."""
    if not SETTINGS.on("browser"):
        return []
    return ([browser_file(neuron_browser.INDEX, tag) for tag in TARGETS]
            + ([paths.figure("browser_panel")] if SETTINGS.on("browser_screenshot") else []))


def browser_files(tag=None):
    """The files of the site of target ``tag`` (the primary's when None) but the index and
    thumbnails (neuron_concepts.browser.build_site)."""
    site = browser_site(tag)
    return [browser_file(file, tag) for file in neuron_browser.site_files(
        site["layers"], convis=bool(site["convis"]), checkpoints=bool(site.get("checkpoints")))]
