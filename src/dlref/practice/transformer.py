"""Exercises on the transformer: one KV-cache decoding step, and rotary position embeddings.

The references are short functions written here; ``tests/test_practice.py`` checks them against
full (uncached) causal attention and RoPE written with complex numbers.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from dlref.practice._cases import DT, bad_input, randn, shape_check, values_check, variant
from dlref.practice._grader import Check, Mistake, register

ATT = "topics/attention.html"
TRF = "topics/transformer.html"
ATT_KEY = f"{ATT}#key-equations"
POS = "topics/positional.html"
POSITION = f"{POS}#three-ways-to-encode-position-and-what-the-causal-mask-does"
KV_CACHE = f"{TRF}#decoding-with-the-kv-cache"

# ------------------------------------------------------------------------------- references


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
    >>> from dlref.practice.transformer import kv_cache_step_reference
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
    >>> from dlref.practice.transformer import rope_reference
    >>> rope_reference(torch.tensor([[1.0, 0.0]] * 3, dtype=torch.float64))  # (cos t, sin t)
    tensor([[ 1.0000,  0.0000],
            [ 0.5403,  0.8415],
            [-0.4161,  0.9093]], dtype=torch.float64)
    >>> q = rope_reference(torch.randn(1, 4, dtype=torch.float64).expand(6, 4))  # one vector
    >>> torch.allclose(q[0] @ q[2], q[3] @ q[5])  # scores depend on the offset t - s only
    True
    """
    return _rope(x, base)


# ------------------------------------------------------------------------------------ cases


def _kv_case(B, T, D, d, seed):
    return {
        "x": randn(B, D, seed=seed),
        "W_q": randn(d, D, seed=seed + 1, scale=D**-0.5),
        "W_k": randn(d, D, seed=seed + 2, scale=D**-0.5),
        "W_v": randn(d, D, seed=seed + 3, scale=D**-0.5),
        "k_cache": randn(B, T, d, seed=seed + 4),
        "v_cache": randn(B, T, d, seed=seed + 5),
    }


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
    reference=kv_cache_step_reference,
    stub=KV_STUB,
    summary="one decoding step with a KV cache: append k, v; attend over the cache",
    checks=(
        shape_check(lambda: [_kv_case(1, 2, 3, 2, 0)]),
        values_check(lambda: [_kv_case(1, 2, 3, 2, 10)]),
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
        bad_input(
            "caches of different lengths",
            "k_cache holds 3 positions, v_cache 2",
            lambda: [{**_kv_case(1, 3, 4, 2, 70), "v_cache": randn(1, 2, 2, seed=71)}],
        ),
    ),
    difficulty="medium",
    page=KV_CACHE,
    outputs=("k_cache", "v_cache", "output"),
    mistakes=(
        Mistake(
            "without_current",
            variant(_kv_step, "without_current"),
            "the new token attends to itself too: append k_t, v_t to the cache before "
            "attending (with an empty cache there is nothing else to attend to).",
            KV_CACHE,
        ),
        Mistake(
            "prepend",
            variant(_kv_step, "prepend"),
            "the new k_t, v_t go at the end of the cache (position T), not the front.",
            KV_CACHE,
        ),
        Mistake(
            "scale_1_over_d",
            variant(_kv_step, "scale_1_over_d"),
            "scores are divided by sqrt(d), not d.",
            ATT_KEY,
        ),
        Mistake(
            "cache_not_updated",
            variant(_kv_step, "cache_not_updated"),
            "return the caches with the new k_t, v_t appended, or the next step will not "
            "see this token.",
            KV_CACHE,
        ),
    ),
)

register(
    reference=rope_reference,
    stub=ROPE_STUB,
    summary="rotary position embedding on interleaved pairs",
    checks=(
        shape_check(lambda: [{"x": randn(3, 4, seed=0)}]),
        values_check(lambda: [{"x": torch.ones(3, 4, dtype=DT)}, {"x": randn(2, 2, seed=1)}]),
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
        bad_input("odd dimension", "d = 5 is odd", lambda: [{"x": randn(3, 5, seed=6)}]),
    ),
    difficulty="medium",
    page=f"{POS}#rotary-embeddings",
    mistakes=(
        Mistake(
            "half_split",
            variant(_rope, "half_split"),
            "you rotated the pairs (x_i, x_{i+d/2}) (the GPT-NeoX layout, also Hugging Face's "
            "Llama); this exercise uses the paper's interleaved pairs (x_{2i}, x_{2i+1}).",
            POSITION,
        ),
        Mistake(
            "theta_i_over_d",
            variant(_rope, "theta_i_over_d"),
            "theta_i = base^(-2i/d) for pair i = 0 .. d/2 - 1; you used base^(-i/d).",
            POSITION,
        ),
        Mistake(
            "sign",
            variant(_rope, "sign"),
            "you rotated by -t theta_i: y_{2i} = x_{2i} cos - x_{2i+1} sin, "
            "y_{2i+1} = x_{2i} sin + x_{2i+1} cos.",
            POSITION,
        ),
        Mistake(
            "positions_from_1",
            variant(_rope, "positions_from_1"),
            "positions start at t = 0: the first vector is not rotated.",
            POSITION,
        ),
    ),
)
