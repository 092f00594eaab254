"""Similarity functions between embeddings: cosine and t-vMF."""

from __future__ import annotations

import numpy as np
import torch
from numpy.typing import ArrayLike

Array = torch.Tensor


def as_tensor(x: ArrayLike | torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Return ``x`` as a torch tensor of ``dtype`` (no copy when it already is one)."""
    if isinstance(x, torch.Tensor):
        return x.to(dtype)
    return torch.as_tensor(np.asarray(x), dtype=dtype)


def normalize(x: ArrayLike | torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """L2-normalise the rows of ``x`` (a zero row stays zero)."""
    x = as_tensor(x)
    return x / x.norm(dim=-1, keepdim=True).clamp_min(eps)


def cosine(a: ArrayLike | torch.Tensor, b: ArrayLike | torch.Tensor) -> torch.Tensor:
    """Cosine similarity of every row of ``a`` with every row of ``b``: ``[len(a), len(b)]``.

    Inputs need not be normalised; numpy arrays and torch tensors are both accepted.
    """
    a = normalize(torch.atleast_2d(as_tensor(a)))
    b = normalize(torch.atleast_2d(as_tensor(b)))
    return a @ b.T


def tvmf(cos: ArrayLike | torch.Tensor, kappa: float = 16.0) -> torch.Tensor:
    """t-vMF similarity (Kobayashi, CVPR 2021) of cosine values, elementwise.

    ``(1 + cos) / (1 + kappa * (1 - cos)) - 1``. ``kappa = 0`` gives the cosine back;
    larger ``kappa`` narrows the similarity around ``cos = 1``. f(1) = 1, f(-1) = -1.
    """
    if kappa < 0:
        raise ValueError(f"t-vMF kappa must be >= 0, got {kappa}")
    cos = as_tensor(cos)
    return (1 + cos) / (1 + kappa * (1 - cos)) - 1


def similarity_fn(sim: str, kappa: float = 16.0):
    """The elementwise function applied to cosines for a similarity name ``cos`` or ``tvmf``."""
    if sim == "cos":
        return lambda c: c
    if sim == "tvmf":
        return lambda c: tvmf(c, kappa)
    raise ValueError(f"unknown similarity {sim!r}: use 'cos' or 'tvmf'")


def parse_sim(name: str) -> tuple[str, float]:
    """Split a similarity artifact name (``cos``, ``tvmf-k16``) into (kind, kappa)."""
    if name == "cos":
        return "cos", 0.0
    if name.startswith("tvmf-k"):
        return "tvmf", float(name[len("tvmf-k"):])
    raise ValueError(f"unknown similarity name {name!r}: expected 'cos' or 'tvmf-k<kappa>'")


def sim_name(sim: str, kappa: float = 16.0) -> str:
    """The artifact name of a similarity: ``cos`` or ``tvmf-k<kappa>`` (``tvmf-k16``)."""
    if sim == "cos":
        return "cos"
    if sim == "tvmf":
        return f"tvmf-k{kappa:g}"
    raise ValueError(f"unknown similarity {sim!r}: use 'cos' or 'tvmf'")


def similarity_matrix(image_emb: ArrayLike, text_emb: ArrayLike, sim: str = "cos",
                      kappa: float = 16.0, device: str | torch.device = "cpu",
                      chunk: int = 8192) -> np.ndarray:
    """``sim(v_i, t_j)`` for every image and text, float16 ``[N, C]``, in chunks of texts.

    Embeddings are normalised here. The float16 result is what the similarity artifacts
    store; only one chunk of float32 values exists at a time.
    """
    f = similarity_fn(sim, kappa)
    images = normalize(image_emb).to(device)
    texts = normalize(torch.atleast_2d(as_tensor(text_emb)))
    out = np.empty((images.shape[0], texts.shape[0]), dtype=np.float16)
    for start in range(0, texts.shape[0], chunk):
        block = texts[start:start + chunk].to(device)
        out[:, start:start + block.shape[0]] = f(images @ block.T).to(torch.float16).cpu().numpy()
    return out
