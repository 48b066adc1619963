"""Exercises on attention: causal scaled dot-product attention and multi-head attention.

The references are short functions written here; ``tests/test_practice.py`` checks them against
``torch.nn.functional.scaled_dot_product_attention`` and ``torch.nn.MultiheadAttention``. The
KV-cache step and RoPE are in :mod:`dlref.practice.transformer`.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from dlref.practice._cases import bad_input, cases, randn, shape_check, values_check, variant
from dlref.practice._grader import Check, Mistake, register

ATT = "topics/attention.html"
ATT_KEY = f"{ATT}#key-equations"
MASK = f"{ATT}#the-mask-m"
HEADS = f"{ATT}#multi-head-attention"

# ------------------------------------------------------------------------------- references


def _causal(q, k, v, how: str = "") -> dict:
    d = q.shape[-1]
    if k.shape[-1] != d:
        raise ValueError(
            f"q has shape {tuple(q.shape)} but k has {tuple(k.shape)}: the last "
            "dimensions must match"
        )
    scale = {"scale_1_over_d": 1 / d, "no_scale": 1.0}.get(how, 1 / math.sqrt(d))
    scores = q @ k.transpose(-2, -1) * scale  # (*, T, T): q k^T / sqrt(d)
    T, S = scores.shape[-2:]
    diagonal = {"mask_shifted": 1, "mask_excludes_self": -1}.get(how, 0)
    allowed = torch.ones(T, S, dtype=torch.bool, device=q.device).tril(diagonal)
    if how == "no_mask":
        allowed = torch.ones_like(allowed)
    masked = scores.masked_fill(~allowed, float("-inf"))
    weights = torch.softmax(masked, dim=-2 if how == "softmax_over_queries" else -1)
    return {"scores": scores, "weights": weights, "output": weights @ v}


def causal_attention_reference(q: Tensor, k: Tensor, v: Tensor) -> dict:
    """The reference: causal scaled dot-product attention with its scores and weights.

    Parameters
    ----------
    q, k : Tensor
        Queries and keys, (\\*, T, d).
    v : Tensor
        Values, (\\*, T, d_v).

    Returns
    -------
    dict
        ``"scores"`` :math:`q k^\\top / \\sqrt d` before the mask and ``"weights"``, (\\*, T, T);
        ``"output"``, (\\*, T, d_v).

    Examples
    --------
    >>> import torch
    >>> from torch.nn.functional import scaled_dot_product_attention as sdpa
    >>> from dlref.practice.attention import causal_attention_reference
    >>> q, k, v = torch.randn(3, 2, 5, 4, dtype=torch.float64)  # (B, T, d) each
    >>> out = causal_attention_reference(q, k, v)
    >>> torch.allclose(out["output"], sdpa(q, k, v, is_causal=True))
    True
    >>> out["weights"][0, 0]  # the first position can only attend to itself
    tensor([1., 0., 0., 0., 0.], dtype=torch.float64)
    """
    return _causal(q, k, v)


def _mha(x, in_proj_weight, in_proj_bias, out_proj_weight, out_proj_bias, num_heads, how=""):
    B, T, E = x.shape
    if E % num_heads:
        raise ValueError(f"embed_dim {E} is not divisible by num_heads {num_heads}")
    hd = E // num_heads
    q, k, v = (x @ in_proj_weight.T + in_proj_bias).chunk(3, dim=-1)  # (B, T, E) each

    def split(t):  # (B, T, E) -> (B, h, T, hd)
        if how == "split_without_transpose":
            return t.reshape(B, num_heads, T, hd)
        return t.reshape(B, T, num_heads, hd).transpose(1, 2)

    q, k, v = split(q), split(k), split(v)
    scale = 1 / math.sqrt(E if how == "scale_by_embed_dim" else hd)
    weights = torch.softmax(q @ k.transpose(-2, -1) * scale, dim=-1)  # (B, h, T, T)
    heads = weights @ v  # (B, h, T, hd)
    if how == "merge_without_transpose":
        merged = heads.reshape(B, T, E)
    else:
        merged = heads.transpose(1, 2).reshape(B, T, E)  # concat heads: (B, T, E)
    out = merged if how == "no_out_proj" else merged @ out_proj_weight.T + out_proj_bias
    return {"q": q, "k": k, "v": v, "weights": weights, "output": out}


def multi_head_attention_reference(
    x, in_proj_weight, in_proj_bias, out_proj_weight, out_proj_bias, num_heads
) -> dict:
    """The reference: self-attention of ``torch.nn.MultiheadAttention`` (batch_first), with the
    per-head q, k, v and weights.

    Parameters
    ----------
    x : Tensor
        (B, T, E).
    in_proj_weight, in_proj_bias : Tensor
        (3E, E) and (3E,): the q, k, v projections stacked, as in torch.
    out_proj_weight, out_proj_bias : Tensor
        (E, E) and (E,).
    num_heads : int
        :math:`h`, a divisor of E.

    Returns
    -------
    dict
        ``"q"``, ``"k"``, ``"v"`` (B, h, T, E/h), ``"weights"`` (B, h, T, T), ``"output"``
        (B, T, E).

    Examples
    --------
    >>> import torch
    >>> from dlref.practice.attention import multi_head_attention_reference
    >>> mha = torch.nn.MultiheadAttention(8, 2, batch_first=True, dtype=torch.float64).eval()
    >>> x = torch.randn(3, 5, 8, dtype=torch.float64)
    >>> out = multi_head_attention_reference(x, mha.in_proj_weight, mha.in_proj_bias,
    ...                                      mha.out_proj.weight, mha.out_proj.bias, num_heads=2)
    >>> y, w = mha(x, x, x)  # w: the weights averaged over the heads
    >>> torch.allclose(out["output"], y) and torch.allclose(out["weights"].mean(1), w)
    True
    >>> out["q"].shape  # (B, h, T, E / h)
    torch.Size([3, 2, 5, 4])
    """
    return _mha(x, in_proj_weight, in_proj_bias, out_proj_weight, out_proj_bias, num_heads)


# ------------------------------------------------------------------------------------ cases


def _qkv(lead, T, d, seed, scale=1.0):
    return {
        "q": randn(*lead, T, d, seed=seed, scale=scale),
        "k": randn(*lead, T, d, seed=seed + 1, scale=scale),
        "v": randn(*lead, T, d, seed=seed + 2),
    }


def _mha_case(B, T, E, h, seed):
    return {
        "x": randn(B, T, E, seed=seed),
        "in_proj_weight": randn(3 * E, E, seed=seed + 1, scale=E**-0.5),
        "in_proj_bias": randn(3 * E, seed=seed + 2, scale=0.1),
        "out_proj_weight": randn(E, E, seed=seed + 3, scale=E**-0.5),
        "out_proj_bias": randn(E, seed=seed + 4, scale=0.1),
        "num_heads": h,
    }


CAUSAL_STUB = r'''
import math

import torch
from torch import Tensor


def causal_attention(q: Tensor, k: Tensor, v: Tensor) -> dict:
    r"""Causal scaled dot-product attention: position t attends to positions s <= t.

        scores = q k^T / sqrt(d)                       (before the mask)
        weights = softmax(scores with -inf where s > t, over s)
        output = weights v

    q, k: (*, T, d); v: (*, T, d_v); any leading (batch, head) dimensions.
    Return a dict with "scores" (*, T, T), "weights" (*, T, T) and "output" (*, T, d_v).
    Raise a ValueError when q and k have different last dimensions.
    """
    raise NotImplementedError
'''

MHA_STUB = r'''
import math

import torch
from torch import Tensor


def multi_head_attention(x, in_proj_weight, in_proj_bias, out_proj_weight, out_proj_bias,
                         num_heads):
    r"""Multi-head self-attention as torch.nn.MultiheadAttention(E, num_heads, batch_first=True)
    (no mask, no dropout).

        q, k, v = (x W_in^T + b_in) split in three along the last dimension, each (B, T, E)
        split each into num_heads heads of size hd = E / num_heads: (B, h, T, hd)
        weights = softmax(q k^T / sqrt(hd)) per head: (B, h, T, T)
        output = concat_heads(weights v) W_out^T + b_out: (B, T, E)

    x: (B, T, E); in_proj_weight: (3E, E); in_proj_bias: (3E,); out_proj_weight: (E, E);
    out_proj_bias: (E,). Head j uses features j*hd ... (j+1)*hd - 1 of q, k and v.
    Return a dict with "q", "k", "v" (B, h, T, hd), "weights" (B, h, T, T), "output" (B, T, E).
    Raise a ValueError when E is not divisible by num_heads.
    """
    raise NotImplementedError
'''

register(
    reference=causal_attention_reference,
    stub=CAUSAL_STUB,
    summary="scaled dot-product attention with a causal mask: scores, weights, output",
    checks=(
        shape_check(lambda: [_qkv((), 3, 2, 0)]),
        values_check(lambda: [_qkv((), 3, 2, 10)]),
        Check(
            "random shapes with batch and head dimensions",
            lambda: [_qkv((2,), 5, 4, 20), _qkv((2, 3), 6, 8, 30)],
        ),
        Check(
            "gradient of the output vs the reference",
            lambda: [_qkv((2,), 4, 3, 40)],
            kind="grad",
            grad_of="output",
            grad_wrt=("q", "k", "v"),
        ),
        Check(
            "edge: length-1 sequence, large scores (±1e3), empty batch",
            lambda: [
                _qkv((2,), 1, 4, 50),
                _qkv((1,), 4, 2, 60, scale=30.0),
                _qkv((0,), 3, 2, 70),
            ],
        ),
        bad_input(
            "q and k of different widths",
            "q is (3, 4) but k is (3, 5)",
            lambda: [{**_qkv((), 3, 4, 80), "k": randn(3, 5, seed=81)}],
        ),
    ),
    difficulty="medium",
    page=ATT_KEY,
    outputs=("scores", "weights", "output"),
    mistakes=(
        Mistake(
            "scale_1_over_d",
            variant(_causal, "scale_1_over_d"),
            "scores are divided by sqrt(d), not d: 1/sqrt(d) keeps their variance at 1 "
            "for unit-variance q and k.",
            ATT_KEY,
        ),
        Mistake(
            "no_scale",
            variant(_causal, "no_scale"),
            "the scores q k^T are divided by sqrt(d) before the softmax.",
            ATT_KEY,
        ),
        Mistake(
            "mask_shifted_future",
            variant(_causal, "mask_shifted"),
            "the causal mask is shifted by one: position t sees t + 1 (tril with "
            "diagonal=1); a position sees itself and the past only.",
            MASK,
        ),
        Mistake(
            "mask_excludes_self",
            variant(_causal, "mask_excludes_self"),
            "the causal mask is shifted by one: position t cannot see itself (and row 0 "
            "sees nothing: nan); use tril with diagonal=0.",
            MASK,
        ),
        Mistake(
            "no_mask",
            variant(_causal, "no_mask"),
            "no causal mask: every position attends to the future too.",
            MASK,
        ),
        Mistake(
            "softmax_over_queries",
            variant(_causal, "softmax_over_queries"),
            "the softmax runs over the keys (the last dimension, s), not over the queries.",
            ATT_KEY,
        ),
    ),
)

register(
    reference=multi_head_attention_reference,
    stub=MHA_STUB,
    summary="multi-head self-attention as nn.MultiheadAttention, with per-head q, k, v",
    checks=(
        shape_check(lambda: [_mha_case(1, 3, 4, 2, 0)]),
        values_check(lambda: [_mha_case(1, 3, 4, 2, 10)]),
        Check(
            "random shapes and head counts",
            cases(_mha_case, (2, 5, 6, 3, 20), (3, 4, 8, 1, 30)),
        ),
        Check(
            "gradient of the output vs the reference",
            cases(_mha_case, (2, 3, 4, 2, 40)),
            kind="grad",
            grad_of="output",
            grad_wrt=("x", "in_proj_weight", "in_proj_bias", "out_proj_weight"),
        ),
        Check(
            "edge: length-1 sequence, empty batch",
            cases(_mha_case, (2, 1, 4, 2, 50), (0, 3, 4, 2, 60)),
        ),
        bad_input(
            "embed_dim not divisible by num_heads",
            "E = 6, num_heads = 4",
            cases(_mha_case, (1, 3, 6, 4, 70)),
        ),
    ),
    difficulty="hard",
    page=HEADS,
    outputs=("q", "k", "v", "weights", "output"),
    mistakes=(
        Mistake(
            "split_without_transpose",
            variant(_mha, "split_without_transpose"),
            "reshaping (B, T, E) straight to (B, h, T, hd) mixes positions across heads: "
            "reshape to (B, T, h, hd), then transpose(1, 2).",
            HEADS,
        ),
        Mistake(
            "scale_by_embed_dim",
            variant(_mha, "scale_by_embed_dim"),
            "each head scales its scores by 1/sqrt(hd), the head size, not 1/sqrt(E).",
            HEADS,
        ),
        Mistake(
            "merge_without_transpose",
            variant(_mha, "merge_without_transpose"),
            "concatenating the heads needs (B, h, T, hd) -> transpose(1, 2) -> (B, T, E); "
            "reshaping directly mixes positions.",
            HEADS,
        ),
        Mistake(
            "no_out_proj",
            variant(_mha, "no_out_proj"),
            "the concatenated heads go through the output projection W_out, b_out.",
            HEADS,
        ),
    ),
)


# moved to dlref.practice.transformer; imported last, so that the exercises keep their order
from dlref.practice.transformer import kv_cache_step_reference, rope_reference  # noqa: E402, F401  # re-export
