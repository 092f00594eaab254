# Helpers of rules/stability.smk: the descriptions the stability study reads, and its outputs.


def stability_descriptions():
    """Every description the stability table reads (one per k of a group): path and labels.

    Ordinary clip_dissect_descriptions outputs, k in the method name, so a k shared with
    methods.clip_dissect is described once.
    """
    st = SETTINGS.stability
    return [dict(path=description_path(probe, layer, names.clip_dissect_method_name(
                     variant, settings.STABILITY_VIEW, sim, top_k=k), concepts),
                 labels=dict(probe=probe, variant=variant, layer=layer, concepts=concepts,
                             sim=sim, k=k))
            for probe in st.probe_sets for variant in st.variants for layer in st.layers
            for concepts in st.concept_sets for sim in st.sims for k in st.ks]


def stability_outputs():
    """The stability table and figure; none when the study is off."""
    if not SETTINGS.on("stability"):
        return []
    return [*paths.table_files("stability"), paths.figure("stability")]
