"""Batched CLIP encoders: texts and images to L2-normalised embeddings.

Every stage embeds through these functions, so batching, devices and normalisation are
the same everywhere. Text batches are cut to their longest tokenised text when CLIP's
text tower is causal (see :func:`supports_context_cut`): ten times faster on short
concept names, same embeddings. In a causal tower the tokens a batch's texts all begin
with (a template's "A photo of a") have the same hidden states in every text, so they are
run once per batch and only each text's own tokens per text (:func:`encode_tokens_prefixed`):
about half the work of WWW's prompts, same embeddings.
"""

from __future__ import annotations

import logging
from typing import Callable, Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from . import models
from .io import Embeddings
from .models import ClipModel

log = logging.getLogger(__name__)


def supports_context_cut(module: torch.nn.Module) -> bool:
    """Whether cutting the token context to a batch's longest text leaves embeddings unchanged.

    True for open_clip's ``CLIP`` text tower with a causal attention mask and end-of-text
    pooling: positions before the end-of-text token never attend to the padding after it.
    """
    mask = getattr(module, "attn_mask", None)
    return (
        hasattr(module, "token_embedding")
        and hasattr(module, "positional_embedding")
        and mask is not None
        and bool(torch.isinf(torch.triu(mask, diagonal=1)[0, 1:]).all())
        and getattr(module, "text_pool_type", "argmax") in ("argmax", "eos")
    )


def encode_tokens_cut(module: torch.nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """open_clip ``CLIP.encode_text`` on a context cut to the batch's longest text."""
    from open_clip.transformer import text_global_pool

    length = int((tokens != 0).sum(1).max())  # padding (id 0) only follows the text
    tokens = tokens[:, :length]
    cast_dtype = module.transformer.get_cast_dtype()
    x = module.token_embedding(tokens).to(cast_dtype)
    x = x + module.positional_embedding[:length].to(cast_dtype)
    x = module.transformer(x, attn_mask=module.attn_mask[:length, :length])
    x = module.ln_final(x)
    x = text_global_pool(x, tokens, module.text_pool_type,
                         eos_token_id=getattr(module, "text_eos_id", None))
    if isinstance(module.text_projection, torch.nn.Linear):
        return module.text_projection(x)
    return x @ module.text_projection


def shared_prefix_length(tokens: torch.Tensor) -> int:
    """How many leading tokens every row of ``tokens`` shares, leaving each row at least one
    token of its own (its end-of-text token, where CLIP pools)."""
    agree = (tokens == tokens[:1]).all(dim=0).int()
    shared = int(agree.cumprod(dim=0).sum())
    return min(shared, int((tokens != 0).sum(1).min()) - 1)


def supports_shared_prefix(module: torch.nn.Module) -> bool:
    """Whether :func:`encode_tokens_prefixed` applies: a causal text tower
    (:func:`supports_context_cut`) of open_clip's batch-first ``ResidualAttentionBlock``s,
    whose attention takes keys and values apart from queries."""
    from open_clip.transformer import ResidualAttentionBlock

    transformer = getattr(module, "transformer", None)
    return (supports_context_cut(module)
            and getattr(transformer, "batch_first", False)
            and all(type(block) is ResidualAttentionBlock and not hasattr(block, "ln_1_kv")
                    for block in getattr(transformer, "resblocks", [None])))


def encode_tokens_prefixed(module: torch.nn.Module, tokens: torch.Tensor, prefix: int) -> torch.Tensor:
    """:func:`encode_tokens_cut` with the first ``prefix`` tokens, the same in every row
    (:func:`shared_prefix_length`), run once.

    With a causal mask a position's hidden state depends on the tokens up to it only, so the
    shared tokens' states are those of one row; each row's own tokens attend to them as keys
    and values, layer by layer, exactly as in the full forward.
    """
    from open_clip.transformer import text_global_pool

    length = int((tokens != 0).sum(1).max())
    cast_dtype = module.transformer.get_cast_dtype()
    positions = module.positional_embedding.to(cast_dtype)
    shared = module.token_embedding(tokens[:1, :prefix]).to(cast_dtype) + positions[:prefix]
    own = module.token_embedding(tokens[:, prefix:length]).to(cast_dtype) + positions[prefix:length]
    shared_mask = module.attn_mask[:prefix, :prefix]
    own_mask = module.attn_mask[prefix:length, :length]  # own position i sees 0 .. prefix + i
    for block in module.transformer.resblocks:
        queries = block.ln_1(own)
        keys = torch.cat([block.ln_1(shared).expand(len(own), -1, -1), queries], dim=1)
        own = own + block.ls_1(block.attention(q_x=queries, k_x=keys, v_x=keys, attn_mask=own_mask))
        own = own + block.ls_2(block.mlp(block.ln_2(own)))
        shared = block(shared, attn_mask=shared_mask)
    x = text_global_pool(module.ln_final(own), tokens[:, prefix:length], module.text_pool_type,
                         eos_token_id=getattr(module, "text_eos_id", None))
    if isinstance(module.text_projection, torch.nn.Linear):
        return module.text_projection(x)
    return x @ module.text_projection


def embed_with_known(texts: list[str], known_ids, known_emb: np.ndarray,
                     load: Callable[[], Callable[[list[str]], np.ndarray]]) -> np.ndarray:
    """Embeddings of ``texts``: the rows of ``known_emb`` (embeddings of ``known_ids`` by the
    same model) for the texts it holds, the embedder ``load()`` returns for the others.

    The ImageNet names are embedded once (rule evaluation_class_embeddings) and copied into
    every concept set's evaluation embeddings, so a text gets the same vector in each; the
    model is loaded only when some text is new (``imagenet``'s concepts are all known).
    """
    row_of = {str(t): i for i, t in enumerate(known_ids)}
    known = [i for i, t in enumerate(texts) if t in row_of]
    new = [i for i, t in enumerate(texts) if t not in row_of]
    out = np.empty((len(texts), known_emb.shape[1]), dtype=np.float32)
    out[known] = known_emb[[row_of[texts[i]] for i in known]]
    if new:
        out[new] = load()([texts[i] for i in new])
    return out


@torch.inference_mode()
def encode_texts(clip: ClipModel, texts: Sequence[str], batch_size: int = 256,
                 template: str | None = None, progress: bool = True,
                 known: Embeddings | None = None) -> np.ndarray:
    """CLIP text embeddings of ``texts`` (``template.format(text)`` when given): float32 ``[C, D]``.

    Each distinct (templated) text is embedded once and its row repeated for every copy:
    concept sets keep duplicates (WWW's WordNet list has 82,115 entries, 67,893 distinct),
    and copies must get the very same vector. Texts are sorted by token length before
    batching so each batch is cut short; the result comes back in the input order.

    ``known``: texts this model embedded earlier (``ids``) and their rows (``emb``), e.g. the
    ImageNet class names' evaluation embeddings: a text whose tokens equal a known text's
    takes that row instead of a forward (:func:`embed_with_known` on token ids).
    Equal tokens give the same embedding, so "Tinca tinca" reuses "tinca tinca" under CLIP's
    lower-casing tokenizer and nothing under a case-sensitive one.
    """
    texts = [template.format(t) if template else t for t in texts]
    if not texts:
        raise ValueError("no texts to embed")
    row_of: dict[str, int] = {}
    rows = np.array([row_of.setdefault(t, len(row_of)) for t in texts], dtype=np.int64)
    distinct = list(row_of)
    if known is None:
        return _encode_distinct(clip, distinct, batch_size, progress)[rows]
    if np.shape(known.emb) != (len(known.ids), _text_width(clip)):
        raise ValueError(f"known embeddings of shape {np.shape(known.emb)} do not fit "
                         f"{len(known.ids)} texts of the {_text_width(clip)}-wide model {clip.tag}")
    keys = _token_keys(clip, distinct)
    known_keys = _token_keys(clip, [str(t) for t in known.ids])
    text_of = dict(zip(keys, distinct))
    out = embed_with_known(keys, known_keys, known.emb, load=lambda: lambda new: _encode_distinct(
        clip, [text_of[key] for key in new], batch_size, progress))
    copied = len(set(keys) & set(known_keys))
    log.info("%d of %d distinct texts copied from known embeddings, %d embedded",
             copied, len(distinct), len(distinct) - copied)
    return out[rows]


def _token_keys(clip: ClipModel, texts: list[str]) -> list[str]:
    """Each text's token ids as a string (a dictionary key): equal keys, equal embeddings."""
    if not texts:
        return []
    return [row.tobytes().hex() for row in clip.tokenizer(texts).numpy()]


def _encode_distinct(clip: ClipModel, texts: list[str], batch_size: int, progress: bool) -> np.ndarray:
    """:func:`encode_texts` on texts that are all different (no template, no expansion)."""
    tokens = clip.tokenizer(texts)
    lengths = (tokens != 0).sum(1)
    order = torch.argsort(lengths, stable=True)
    cut = supports_context_cut(clip.module)
    share = cut and supports_shared_prefix(clip.module)
    if not cut:
        log.info("text tower is not causal: encoding with the full context")
    out = torch.empty((len(texts), _text_width(clip)), dtype=torch.float32)
    for start in tqdm(range(0, len(texts), batch_size), desc="text batches", disable=not progress):
        idx = order[start:start + batch_size]
        batch = tokens[idx].to(clip.device)
        prefix = shared_prefix_length(batch) if share else 0
        if prefix > 1:  # more than the start-of-text token
            emb = encode_tokens_prefixed(clip.module, batch, prefix)
        elif cut:
            emb = encode_tokens_cut(clip.module, batch)
        else:
            emb = clip.module.encode_text(batch)
        out[idx] = F.normalize(emb.float(), dim=-1).cpu()
    return out.numpy()


def _text_width(clip: ClipModel) -> int:
    projection = getattr(clip.module, "text_projection", None)
    if isinstance(projection, torch.nn.Linear):
        return projection.out_features
    if isinstance(projection, torch.Tensor):
        return int(projection.shape[1])
    probe = clip.tokenizer(["a"]).to(clip.device)
    with torch.inference_mode():
        return int(clip.module.encode_text(probe).shape[-1])


@torch.inference_mode()
def encode_image_batch(clip: ClipModel, batch: torch.Tensor) -> torch.Tensor:
    """Normalised float32 CLIP image embeddings of a preprocessed batch, on the model's device."""
    emb = clip.module.encode_image(models.to_model_input(batch, clip.device))
    return F.normalize(emb.float(), dim=-1)


@torch.inference_mode()
def encode_images(clip: ClipModel, batches: Iterable[torch.Tensor], total: int | None = None,
                  progress: bool = True, autocast: bool | None = None) -> np.ndarray:
    """CLIP embeddings of preprocessed image batches (e.g. a DataLoader): float32 ``[N, D]``.

    On CUDA, float16 autocast runs when ``autocast`` is True, or (None, the default) when
    the first batch's embeddings lie within ``models.AUTOCAST_ATOL`` of float32's (see
    :func:`models.choose_autocast`); the stored artifact is float16 either way. On the CPU
    the forward is float32, whatever ``autocast`` says.
    """
    chunks: list[torch.Tensor] = []
    use_autocast: bool | None = None
    for batch in tqdm(batches, total=total, desc="image batches", disable=not progress):
        if use_autocast is None:
            use_autocast, (emb,) = models.choose_autocast(
                lambda: [encode_image_batch(clip, batch)], clip.device, autocast)
        else:
            with models.autocast(clip.device, use_autocast):
                emb = encode_image_batch(clip, batch)
        chunks.append(emb.float().cpu())
    return torch.cat(chunks).numpy()
