# Helpers of rules/embed.smk: what one text_embeddings job embeds and writes.


def text_embedding_models(wildcards):
    """Each model of a text_embeddings job: load_clip arguments, the text parts its cosine
    matrices compare with (similarity_matrices: part and matrix share their names), output
    path, and the embeddings by the same model whose raw rows it copies (known_class_embeddings)."""
    return [dict(tag=tag, clip=clip_spec(tag), parts=(parts := similarity_matrices(tag)),
                 path=paths.text_embeddings(tag, wildcards.concepts),
                 known=known_class_embeddings(tag) if "raw" in parts else None)
            for tag in text_models()]
