"""Exercises on attention: causal scaled dot-product attention, multi-head attention, one
KV-cache decoding step, and rotary position embeddings (RoPE).

The references are short functions written here; ``tests/test_practice.py`` checks them against
``torch.nn.functional.scaled_dot_product_attention``, ``torch.nn.MultiheadAttention``, full
(uncached) causal attention and RoPE written with complex numbers.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from dlref.practice._cases import DT, cases, randn
from dlref.practice._grader import Check, Exercise, Mistake, register

ATT = "topics/attention.html"
TRF = "topics/transformer.html"
ATT_KEY = f"{ATT}#key-equations"
MASK = f"{ATT}#the-mask-m"
HEADS = f"{ATT}#multi-head-attention"
POSITION = f"{ATT}#three-ways-to-encode-position-and-what-the-causal-mask-does"
KV_CACHE = f"{TRF}#decoding-with-the-kv-cache"

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


def _kv_step(x, W_q, W_k, W_v, k_cache, v_cache, how=""):
    q, k_t, v_t = x @ W_q.T, x @ W_k.T, x @ W_v.T  # (B, d) each
    if how == "prepend":
        K, V = torch.cat([k_t[:, None], k_cache], 1), torch.cat([v_t[:, None], v_cache], 1)
    else:
        K, V = torch.cat([k_cache, k_t[:, None]], 1), torch.cat([v_cache, v_t[:, None]], 1)
    if K.shape[1] != V.shape[1]:
        raise ValueError(
            f"k_cache has {k_cache.shape[1]} positions but v_cache has {v_cache.shape[1]}"
        )
    K_att, V_att = (k_cache, v_cache) if how == "without_current" else (K, V)
    d = q.shape[-1]
    scale = 1 / d if how == "scale_1_over_d" else 1 / math.sqrt(d)
    w = torch.softmax((K_att @ q[:, :, None]).squeeze(-1) * scale, dim=-1)  # (B, T+1)
    out = (w[:, None, :] @ V_att).squeeze(1)  # (B, d)
    if how == "cache_not_updated":
        K, V = k_cache, v_cache
    return {"k_cache": K, "v_cache": V, "output": out}


def kv_cache_step_reference(x, W_q, W_k, W_v, k_cache, v_cache) -> dict:
    """The reference: one decoding step of single-head attention with a KV cache.

    Parameters
    ----------
    x : Tensor
        The new token, (B, D).
    W_q, W_k, W_v : Tensor
        Projections, (d, D).
    k_cache, v_cache : Tensor
        Keys and values of the T tokens before, (B, T, d).

    Returns
    -------
    dict
        ``"k_cache"``, ``"v_cache"`` with the new token appended, (B, T + 1, d), and
        ``"output"``, (B, d).

    Examples
    --------
    >>> import torch
    >>> from torch.nn.functional import scaled_dot_product_attention as sdpa
    >>> from dlref.practice.attention import kv_cache_step_reference
    >>> X = torch.randn(2, 4, 6, dtype=torch.float64)  # (B, T + 1, D): 3 cached tokens, 1 new
    >>> W_q, W_k, W_v = torch.randn(3, 5, 6, dtype=torch.float64)  # (d, D) each
    >>> out = kv_cache_step_reference(X[:, 3], W_q, W_k, W_v, X[:, :3] @ W_k.T, X[:, :3] @ W_v.T)
    >>> full = sdpa(X @ W_q.T, X @ W_k.T, X @ W_v.T, is_causal=True)  # all 4 tokens, no cache
    >>> torch.allclose(out["output"], full[:, 3]), out["k_cache"].shape
    (True, torch.Size([2, 4, 5]))
    """
    return _kv_step(x, W_q, W_k, W_v, k_cache, v_cache)


def _rope(x, base=10000.0, how=""):
    T, d = x.shape[-2:]
    if d % 2:
        raise ValueError(f"x has last dimension {d}: RoPE needs an even dimension")
    i = torch.arange(d // 2, dtype=x.dtype)
    theta = base ** (-(i if how == "theta_i_over_d" else 2 * i) / d)  # theta_i, (d/2,)
    t = torch.arange(T, dtype=x.dtype) + (1 if how == "positions_from_1" else 0)
    angle = t[:, None] * theta  # t theta_i, (T, d/2)
    if how == "sign":
        angle = -angle
    cos, sin = angle.cos(), angle.sin()
    if how == "half_split":
        x1, x2 = x[..., : d // 2], x[..., d // 2 :]
        return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)
    x1, x2 = x[..., 0::2], x[..., 1::2]  # the pairs (x_{2i}, x_{2i+1})
    out = torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)  # rotate by t theta_i
    return out.flatten(-2)


def rope_reference(x: Tensor, base: float = 10000.0) -> Tensor:
    """The reference: rotary position embedding, the paper's interleaved pairs.

    The pair :math:`(x_{2i}, x_{2i+1})` at position :math:`t` is rotated by
    :math:`t\\,\\theta_i`, :math:`\\theta_i = \\mathrm{base}^{-2i/d}`.

    Parameters
    ----------
    x : Tensor
        (\\*, T, d), d even.
    base : float, default 10000.0

    Returns
    -------
    Tensor
        Shaped like ``x``, each pair rotated by its angle.

    Examples
    --------
    >>> import torch
    >>> from dlref.practice.attention import rope_reference
    >>> rope_reference(torch.tensor([[1.0, 0.0]] * 3, dtype=torch.float64))  # (cos t, sin t)
    tensor([[ 1.0000,  0.0000],
            [ 0.5403,  0.8415],
            [-0.4161,  0.9093]], dtype=torch.float64)
    >>> q = rope_reference(torch.randn(1, 4, dtype=torch.float64).expand(6, 4))  # one vector
    >>> torch.allclose(q[0] @ q[2], q[3] @ q[5])  # scores depend on the offset t - s only
    True
    """
    return _rope(x, base)


def _v(fn, how):
    def variant(*args, **kwargs):
        return fn(*args, **kwargs, how=how)

    return variant


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


def _kv_case(B, T, D, d, seed):
    return {
        "x": randn(B, D, seed=seed),
        "W_q": randn(d, D, seed=seed + 1, scale=D**-0.5),
        "W_k": randn(d, D, seed=seed + 2, scale=D**-0.5),
        "W_v": randn(d, D, seed=seed + 3, scale=D**-0.5),
        "k_cache": randn(B, T, d, seed=seed + 4),
        "v_cache": randn(B, T, d, seed=seed + 5),
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

KV_STUB = r'''
import math

import torch
from torch import Tensor


def kv_cache_step(x, W_q, W_k, W_v, k_cache, v_cache) -> dict:
    r"""One decoding step of single-head attention with a KV cache.

        q = x W_q^T, k_t = x W_k^T, v_t = x W_v^T            (B, d) each
        K = [k_cache; k_t], V = [v_cache; v_t]              (B, T+1, d): append at the end
        output = softmax(q K^T / sqrt(d)) V                 (B, d): the new token attends
                                                            to every cached position and itself

    x: (B, D), the new token; W_q, W_k, W_v: (d, D); k_cache, v_cache: (B, T, d), T >= 0.
    Return a dict with "k_cache" and "v_cache" (the updated caches, (B, T+1, d)) and "output".
    Raise when k_cache and v_cache hold different numbers of positions.
    """
    raise NotImplementedError
'''

ROPE_STUB = r'''
import torch
from torch import Tensor


def rope(x: Tensor, base: float = 10000.0) -> Tensor:
    r"""Rotary position embedding (RoFormer): rotate each pair (x_{2i}, x_{2i+1}) of the
    vector at position t by the angle t * theta_i.

        theta_i = base^(-2i / d),  i = 0 .. d/2 - 1,  positions t = 0 .. T-1
        y_{2i}   = x_{2i} cos(t theta_i) - x_{2i+1} sin(t theta_i)
        y_{2i+1} = x_{2i} sin(t theta_i) + x_{2i+1} cos(t theta_i)

    x: (*, T, d) with d even; returns the same shape. Raise a ValueError for an odd d.
    """
    raise NotImplementedError
'''

register(
    Exercise(
        name="causal_attention",
        topic="attention",
        difficulty="medium",
        page=ATT_KEY,
        summary="scaled dot-product attention with a causal mask: scores, weights, output",
        stub=CAUSAL_STUB,
        reference=causal_attention_reference,
        outputs=("scores", "weights", "output"),
        checks=(
            Check("shape on a tiny case", lambda: [_qkv((), 3, 2, 0)], kind="shape"),
            Check("values on a hand-sized case", lambda: [_qkv((), 3, 2, 10)]),
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
            Check(
                "bad input: q and k of different widths",
                lambda: [{**_qkv((), 3, 4, 80), "k": randn(3, 5, seed=81)}],
                kind="raises",
                bad="q is (3, 4) but k is (3, 5)",
            ),
        ),
        mistakes=(
            Mistake(
                "scale_1_over_d",
                _v(_causal, "scale_1_over_d"),
                "scores are divided by sqrt(d), not d: 1/sqrt(d) keeps their variance at 1 "
                "for unit-variance q and k.",
                ATT_KEY,
            ),
            Mistake(
                "no_scale",
                _v(_causal, "no_scale"),
                "the scores q k^T are divided by sqrt(d) before the softmax.",
                ATT_KEY,
            ),
            Mistake(
                "mask_shifted_future",
                _v(_causal, "mask_shifted"),
                "the causal mask is shifted by one: position t sees t + 1 (tril with "
                "diagonal=1); a position sees itself and the past only.",
                MASK,
            ),
            Mistake(
                "mask_excludes_self",
                _v(_causal, "mask_excludes_self"),
                "the causal mask is shifted by one: position t cannot see itself (and row 0 "
                "sees nothing: nan); use tril with diagonal=0.",
                MASK,
            ),
            Mistake(
                "no_mask",
                _v(_causal, "no_mask"),
                "no causal mask: every position attends to the future too.",
                MASK,
            ),
            Mistake(
                "softmax_over_queries",
                _v(_causal, "softmax_over_queries"),
                "the softmax runs over the keys (the last dimension, s), not over the queries.",
                ATT_KEY,
            ),
        ),
    )
)

register(
    Exercise(
        name="multi_head_attention",
        topic="attention",
        difficulty="hard",
        page=HEADS,
        summary="multi-head self-attention as nn.MultiheadAttention, with per-head q, k, v",
        stub=MHA_STUB,
        reference=multi_head_attention_reference,
        outputs=("q", "k", "v", "weights", "output"),
        checks=(
            Check("shape on a tiny case", lambda: [_mha_case(1, 3, 4, 2, 0)], kind="shape"),
            Check("values on a hand-sized case", lambda: [_mha_case(1, 3, 4, 2, 10)]),
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
            Check(
                "bad input: embed_dim not divisible by num_heads",
                cases(_mha_case, (1, 3, 6, 4, 70)),
                kind="raises",
                bad="E = 6, num_heads = 4",
            ),
        ),
        mistakes=(
            Mistake(
                "split_without_transpose",
                _v(_mha, "split_without_transpose"),
                "reshaping (B, T, E) straight to (B, h, T, hd) mixes positions across heads: "
                "reshape to (B, T, h, hd), then transpose(1, 2).",
                HEADS,
            ),
            Mistake(
                "scale_by_embed_dim",
                _v(_mha, "scale_by_embed_dim"),
                "each head scales its scores by 1/sqrt(hd), the head size, not 1/sqrt(E).",
                HEADS,
            ),
            Mistake(
                "merge_without_transpose",
                _v(_mha, "merge_without_transpose"),
                "concatenating the heads needs (B, h, T, hd) -> transpose(1, 2) -> (B, T, E); "
                "reshaping directly mixes positions.",
                HEADS,
            ),
            Mistake(
                "no_out_proj",
                _v(_mha, "no_out_proj"),
                "the concatenated heads go through the output projection W_out, b_out.",
                HEADS,
            ),
        ),
    )
)

register(
    Exercise(
        name="kv_cache_step",
        topic="transformer",
        difficulty="medium",
        page=KV_CACHE,
        summary="one decoding step with a KV cache: append k, v; attend over the cache",
        stub=KV_STUB,
        reference=kv_cache_step_reference,
        outputs=("k_cache", "v_cache", "output"),
        checks=(
            Check("shape on a tiny case", lambda: [_kv_case(1, 2, 3, 2, 0)], kind="shape"),
            Check("values on a hand-sized case", lambda: [_kv_case(1, 2, 3, 2, 10)]),
            Check("random shapes", lambda: [_kv_case(2, 5, 4, 3, 20), _kv_case(3, 7, 6, 4, 30)]),
            Check(
                "gradient of the output vs the reference",
                lambda: [_kv_case(2, 3, 4, 3, 40)],
                kind="grad",
                grad_of="output",
                grad_wrt=("x", "W_q", "W_k", "W_v", "k_cache", "v_cache"),
            ),
            Check(
                "edge: empty cache (the first token), empty batch",
                lambda: [_kv_case(2, 0, 4, 3, 50), _kv_case(0, 3, 4, 3, 60)],
            ),
            Check(
                "bad input: caches of different lengths",
                lambda: [{**_kv_case(1, 3, 4, 2, 70), "v_cache": randn(1, 2, 2, seed=71)}],
                kind="raises",
                bad="k_cache holds 3 positions, v_cache 2",
            ),
        ),
        mistakes=(
            Mistake(
                "without_current",
                _v(_kv_step, "without_current"),
                "the new token attends to itself too: append k_t, v_t to the cache before "
                "attending (with an empty cache there is nothing else to attend to).",
                KV_CACHE,
            ),
            Mistake(
                "prepend",
                _v(_kv_step, "prepend"),
                "the new k_t, v_t go at the end of the cache (position T), not the front.",
                KV_CACHE,
            ),
            Mistake(
                "scale_1_over_d",
                _v(_kv_step, "scale_1_over_d"),
                "scores are divided by sqrt(d), not d.",
                ATT_KEY,
            ),
            Mistake(
                "cache_not_updated",
                _v(_kv_step, "cache_not_updated"),
                "return the caches with the new k_t, v_t appended, or the next step will not "
                "see this token.",
                KV_CACHE,
            ),
        ),
    )
)

register(
    Exercise(
        name="rope",
        topic="transformer",
        difficulty="medium",
        page=TRF,
        summary="rotary position embedding on interleaved pairs",
        stub=ROPE_STUB,
        reference=rope_reference,
        checks=(
            Check("shape on a tiny case", lambda: [{"x": randn(3, 4, seed=0)}], kind="shape"),
            Check(
                "values on a hand-sized case",
                lambda: [{"x": torch.ones(3, 4, dtype=DT)}, {"x": randn(2, 2, seed=1)}],
            ),
            Check(
                "random shapes with batch and head dimensions, another base",
                lambda: [
                    {"x": randn(2, 5, 8, seed=2)},
                    {"x": randn(2, 3, 6, 4, seed=3), "base": 100.0},
                ],
            ),
            Check(
                "gradient vs the reference",
                lambda: [{"x": randn(2, 4, 6, seed=4)}],
                kind="grad",
                grad_wrt=("x",),
            ),
            Check(
                "edge: length-1 sequence (unchanged), empty batch",
                lambda: [{"x": randn(1, 4, seed=5)}, {"x": torch.zeros(0, 3, 4, dtype=DT)}],
            ),
            Check(
                "bad input: odd dimension",
                lambda: [{"x": randn(3, 5, seed=6)}],
                kind="raises",
                bad="d = 5 is odd",
            ),
        ),
        mistakes=(
            Mistake(
                "half_split",
                _v(_rope, "half_split"),
                "you rotated the pairs (x_i, x_{i+d/2}) (the GPT-NeoX layout, also Hugging Face's "
                "Llama); this exercise uses the paper's interleaved pairs (x_{2i}, x_{2i+1}).",
                POSITION,
            ),
            Mistake(
                "theta_i_over_d",
                _v(_rope, "theta_i_over_d"),
                "theta_i = base^(-2i/d) for pair i = 0 .. d/2 - 1; you used base^(-i/d).",
                POSITION,
            ),
            Mistake(
                "sign",
                _v(_rope, "sign"),
                "you rotated by -t theta_i: y_{2i} = x_{2i} cos - x_{2i+1} sin, "
                "y_{2i+1} = x_{2i} sin + x_{2i+1} cos.",
                POSITION,
            ),
            Mistake(
                "positions_from_1",
                _v(_rope, "positions_from_1"),
                "positions start at t = 0: the first vector is not rotated.",
                POSITION,
            ),
        ),
    )
)
