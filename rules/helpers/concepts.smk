# Helpers of rules/concepts.smk: a concept set's source file.


def concept_source(wildcards):
    """A concept file is an input of its concept set, so editing it reruns what depends on it."""
    spec = config["concept_sets"][wildcards.concepts]
    return [spec["path"]] if spec["type"] == "file" else []
