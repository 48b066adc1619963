r"""Attention: scaled dot-product attention, multi-head/grouped-query attention, the KV cache, and
positional encodings.

.. math::

    \mathrm{Attention}(Q, K, V) = \mathrm{softmax}\!\Bigl(\frac{Q K^\top}{\sqrt{d_k}} + M\Bigr) V

:func:`scaled_dot_product_attention` has the name, arguments and defaults of
:func:`torch.nn.functional.scaled_dot_product_attention` and equals it in float64, values and
gradients. :class:`MultiHeadAttention` builds multi-head (MHA), grouped-query (GQA) and multi-query
(MQA) attention from it, with an optional :class:`KVCache` for decoding one token at a time.
Position enters through :func:`sinusoidal_positional_encoding` (absolute, fixed),
:class:`LearnedPositionalEmbedding` (absolute, learned) or :class:`RotaryEmbedding` (RoPE,
relative).
"""

from __future__ import annotations

import math
import numbers

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dlref._checks import (
    check_bool,
    check_dtype_of,
    check_float,
    check_index,
    check_index_tensor,
    check_int,
    check_optional,
    check_real,
    check_same_dtype,
    check_shape,
    check_tensor,
    is_int,
)

__all__ = [
    "causal_mask",
    "scaled_dot_product_attention",
    "sinusoidal_positional_encoding",
    "apply_rotary",
    "KVCache",
    "LearnedPositionalEmbedding",
    "RotaryEmbedding",
    "MultiHeadAttention",
]


# ---------------------------------------------------------------------------------------------
# Helpers: argument checks, masks, repeating KV heads.
# ---------------------------------------------------------------------------------------------


def _check_flag(name: str, x: object) -> None:
    """Raise ``TypeError`` unless ``x`` is a Python bool (torch accepts nothing else)."""
    if not isinstance(x, bool):
        raise TypeError(f"{name} must be a bool, got {type(x).__name__} {x!r}")


def _check_size(name: str, x: object, minimum: int = 1) -> None:
    """Raise naming ``name`` unless ``x`` is an int >= ``minimum``."""
    if not is_int(x):
        raise TypeError(f"{name} must be an int, got {type(x).__name__} {x!r}")
    if x < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {x}")


def _check_base(name: str, x: object) -> None:
    """Raise naming ``name`` unless ``x`` is a finite real number > 0."""
    check_real(name, x)
    if not (math.isfinite(x) and x > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {x}")


def _check_device_dtype(device: object, dtype: object) -> None:
    """Raise naming ``device`` or ``dtype`` unless torch can make tensors with them."""
    if dtype is not None and not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise TypeError(f"dtype must be None or a floating-point torch.dtype, got {dtype!r}")
    if device is not None:
        try:
            torch.device(device)
        except (RuntimeError, TypeError, ValueError):
            raise ValueError(f"device must be None or a torch.device, got {device!r}") from None


def _check_qkv(query: Tensor, key: Tensor, value: Tensor, enable_gqa: bool) -> tuple[int, ...]:
    """Check what torch checks, naming the arguments; return the batch shape of the output."""
    for name, t in (("query", query), ("key", key), ("value", value)):
        check_tensor(name, t)
        if t.dim() < 2:
            raise ValueError(f"{name} must have shape (..., L or S, E), got {tuple(t.shape)}")
    check_float("query", query)
    check_same_dtype(query=query, key=key, value=value)
    q, k, v = tuple(query.shape), tuple(key.shape), tuple(value.shape)
    if value.numel() == 0:  # torch returns zeros of shape (..., L, E_v) before any other check
        return q[:-2]
    if q[-1] != k[-1]:
        raise ValueError(
            f"query has shape {q} but key has shape {k}: the last dimensions must match"
        )
    if k[-2] != v[-2]:
        raise ValueError(
            f"key has shape {k} but value has shape {v}: the sequence dimensions (-2) must match"
        )
    if enable_gqa:
        if min(len(q), len(k), len(v)) < 3:
            raise ValueError(
                f"enable_gqa=True needs a head dimension (-3) in query, key and value, got "
                f"shapes {q}, {k} and {v}"
            )
        if q[-3] % k[-3] or q[-3] % v[-3]:
            raise ValueError(
                f"query has shape {q}, key {k} and value {v}: with enable_gqa the key's "
                f"{k[-3]} and the value's {v[-3]} heads must divide the query's {q[-3]} heads"
            )
        k, v = k[:-3] + (q[-3],) + k[-2:], v[:-3] + (q[-3],) + v[-2:]  # after repeating
    try:
        batch = torch.broadcast_shapes(q[:-2], k[:-2])
    except RuntimeError:
        hint = " (different head counts need enable_gqa=True)" if len(q) > 2 and len(k) > 2 else ""
        raise ValueError(
            f"query has shape {q} but key has shape {k}: the batch and head dimensions must "
            f"match or broadcast{hint}"
        ) from None
    try:
        return tuple(torch.broadcast_shapes(batch, v[:-2]))
    except RuntimeError:
        raise ValueError(
            f"key has shape {k} but value has shape {v}: the batch and head dimensions must "
            f"match or broadcast"
        ) from None


def causal_mask(
    query_len: int, key_len: int, *, offset: int = 0, device: torch.device | None = None
) -> Tensor:
    r"""Boolean causal mask: query ``i`` may attend to key ``j`` when :math:`j \le i + o`.

    ``offset=0`` is the top-left-aligned mask of ``is_causal=True`` in torch. When the queries are
    the *last* ``query_len`` of ``key_len`` positions (decoding with a KV cache) the right offset
    is ``key_len - query_len`` (bottom-right aligned).

    Parameters
    ----------
    query_len, key_len : int
        L and S.
    offset : int, default 0
        :math:`o`, the position of query 0 in the key sequence.
    device : torch.device, optional

    Returns
    -------
    Tensor
        Shape (L, S), ``True`` where attention is allowed.

    Examples
    --------
    >>> from dlref.attention import causal_mask
    >>> causal_mask(2, 4).int()  # torch's is_causal when L != S: top-left
    tensor([[1, 0, 0, 0],
            [1, 1, 0, 0]], dtype=torch.int32)
    >>> causal_mask(2, 4, offset=2).int()  # the last 2 of 4 tokens: bottom-right
    tensor([[1, 1, 1, 0],
            [1, 1, 1, 1]], dtype=torch.int32)
    """
    _check_size("query_len", query_len, 0)
    _check_size("key_len", key_len, 0)
    if not is_int(offset):
        raise TypeError(f"offset must be an int, got {type(offset).__name__} {offset!r}")
    _check_device_dtype(device, None)
    i = torch.arange(query_len, device=device).unsqueeze(-1)  # (L, 1)
    j = torch.arange(key_len, device=device)  # (S,)
    return j <= i + offset  # (L, S)


def _additive_mask(attn_mask: Tensor | None, is_causal: bool, L: int, S: int, query: Tensor):
    """The mask M as a float tensor to add to the scores (0 or -inf for a boolean mask), or None."""
    if attn_mask is not None and attn_mask.dtype == torch.bool:
        attn_mask = torch.zeros(
            attn_mask.shape, dtype=query.dtype, device=query.device
        ).masked_fill(~attn_mask, -math.inf)
    elif attn_mask is not None:
        attn_mask = attn_mask.to(query.dtype)
    if is_causal:  # -inf above the diagonal
        future = ~causal_mask(L, S, device=query.device)
        attn_mask = torch.zeros(L, S, dtype=query.dtype, device=query.device).masked_fill(
            future, -math.inf
        )
    return attn_mask


def _repeat_kv(x: Tensor, n_rep: int) -> Tensor:
    """(..., H_kv, S, D) -> (..., H_kv * n_rep, S, D): each KV head serves n_rep query heads."""
    return x if n_rep == 1 else x.repeat_interleave(n_rep, dim=-3)


# ---------------------------------------------------------------------------------------------
# Scaled dot-product attention
# ---------------------------------------------------------------------------------------------


def scaled_dot_product_attention(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    attn_mask: Tensor | None = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
    enable_gqa: bool = False,
) -> Tensor:
    r"""Scaled dot-product attention, as :func:`torch.nn.functional.scaled_dot_product_attention`.

    .. math::

        \mathrm{Attention}(Q, K, V) = \mathrm{softmax}\bigl(s\, Q K^\top + M\bigr) V,
        \qquad s = 1/\sqrt{E} \text{ by default}

    :math:`M` is the mask: a boolean ``attn_mask`` means ``True`` = may attend (``False`` becomes
    :math:`-\infty`), a float ``attn_mask`` is added as it is, and ``is_causal=True`` adds
    :math:`-\infty` above the diagonal (top-left aligned when :math:`L \ne S`, see
    :func:`causal_mask`). Give one or the other, as torch's reference semantics require (for a
    causal mask combined with another, pass ``attn_mask=mask & causal_mask(L, S)``).

    A query row whose keys are all masked (all :math:`-\infty`) gives zeros and zero gradients,
    as torch's does (checked against torch 2.13), not ``nan``.

    Parameters
    ----------
    query : Tensor
        Shape (..., H, L, E): batch dims, heads, query length, key/query feature size.
    key : Tensor
        Shape (..., H_kv, S, E).
    value : Tensor
        Shape (..., H_kv, S, E_v).
    attn_mask : Tensor, optional
        Boolean or float, broadcastable to (..., H, L, S).
    dropout_p : float, default 0.0
        Dropout probability on the attention weights, applied whenever it is > 0 (as in torch;
        pass 0 at evaluation).
    is_causal : bool
        Default ``False``. Mask the future: query ``i`` sees keys ``j <= i``.
    scale : float, optional
        :math:`s`; default :math:`1/\sqrt{E}`.
    enable_gqa : bool
        Default ``False``. Allow ``H_kv`` to divide ``H``: each key/value head serves
        ``H / H_kv`` query heads.

    Returns
    -------
    Tensor
        Shape (..., H, L, E_v).

    Examples
    --------
    >>> import torch
    >>> from dlref.attention import scaled_dot_product_attention
    >>> q = torch.tensor([[1.0, 0.0]])
    >>> k = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    >>> v = torch.tensor([[10.0], [20.0]])
    >>> scaled_dot_product_attention(q, k, v)  # weights softmax([1, 0] / sqrt 2) = [0.67, 0.33]
    tensor([[13.3024]])
    >>> scaled_dot_product_attention(q, k, v, attn_mask=torch.tensor([[False, True]]))
    tensor([[20.]])
    """
    for name, flag in (("is_causal", is_causal), ("enable_gqa", enable_gqa)):
        _check_flag(name, flag)
    if not isinstance(dropout_p, numbers.Real):  # torch takes any real, a bool included
        raise TypeError(f"dropout_p must be a float, got {type(dropout_p).__name__} {dropout_p!r}")
    if isinstance(scale, Tensor) and scale.numel() == 1:
        scale = scale.item()  # torch takes a one-element tensor as a float
    if scale is not None and not isinstance(scale, numbers.Real):
        raise TypeError(f"scale must be None or a float, got {type(scale).__name__} {scale!r}")
    if attn_mask is not None and not isinstance(attn_mask, Tensor):
        raise TypeError(f"attn_mask must be a torch.Tensor, got {type(attn_mask).__name__}")
    batch = _check_qkv(query, key, value, enable_gqa)
    L, S, E = query.shape[-2], key.shape[-2], query.shape[-1]
    if value.numel() == 0:  # as torch: nothing to average
        return query.new_zeros(*query.shape[:-1], value.shape[-1])
    dropout_p = float(dropout_p)
    if dropout_p > 1.0:  # torch applies dropout when dropout_p > 0: negative or nan means none
        raise ValueError(f"dropout_p must be at most 1, got {dropout_p}")
    if attn_mask is not None and is_causal:
        raise ValueError(
            "attn_mask and is_causal=True were both given: pass one mask, e.g. "
            "attn_mask=attn_mask & causal_mask(L, S)"
        )
    if attn_mask is not None:
        if attn_mask.dtype not in (torch.bool, torch.float32, query.dtype):
            raise TypeError(
                f"attn_mask must be boolean, float32 or of the query's dtype {query.dtype}, got "
                f"{attn_mask.dtype}"
            )
        scores_shape = (*batch, L, S)
        try:
            fits = torch.broadcast_shapes(attn_mask.shape, scores_shape) == scores_shape
        except RuntimeError:
            fits = False
        if not fits:
            raise ValueError(
                f"attn_mask has shape {tuple(attn_mask.shape)}, which does not broadcast to the "
                f"scores' shape {scores_shape} (..., H, L, S)"
            )
    if enable_gqa:
        H = query.shape[-3]
        key = _repeat_kv(key, H // key.shape[-3])  # (..., H, S, E)
        value = _repeat_kv(value, H // value.shape[-3])  # (..., H, S, E_v)

    s = (1.0 / math.sqrt(E) if E else math.inf) if scale is None else float(scale)
    M = _additive_mask(attn_mask, is_causal, L, S, query)  # broadcastable to (..., H, L, S)
    dead = None  # query rows with no key left to attend (is_causal alone leaves none)
    if attn_mask is not None:
        dead = torch.isneginf(M).all(dim=-1, keepdim=True)
        if dead.any():
            M = M.masked_fill(dead, 0.0)  # keeps softmax finite there; zeroed below
        else:
            dead = None
    q = query * s  # the scale folded into Q: L*E multiplications instead of L*S
    if M is not None and M.dim() <= 2 and q.shape[:-2] == key.shape[:-2]:  # one call: s QK^T + M
        n = math.prod(q.shape[:-2])  # batch x heads, flattened
        q3, k3 = q.reshape(n, L, E), key.reshape(n, S, E)
        scores = torch.baddbmm(M, q3, k3.transpose(1, 2)).view(q.shape[:-1] + (S,))
    else:
        scores = q @ key.transpose(-2, -1)  # s Q K^T: (..., H, L, S)
        if M is not None:
            scores = scores + M
    attn = torch.softmax(scores, dim=-1)  # each row sums to 1 over the keys
    if dead is not None:
        attn = attn.masked_fill(dead, 0.0)  # fully masked rows give 0, as in torch
    if dropout_p > 0.0:
        attn = F.dropout(attn, p=dropout_p)
    return attn @ value  # (..., H, L, E_v)


# ---------------------------------------------------------------------------------------------
# Positional encodings
# ---------------------------------------------------------------------------------------------


def sinusoidal_positional_encoding(
    num_positions: int,
    embed_dim: int,
    base: float = 10000.0,
    *,
    dtype: torch.dtype | None = None,
    device: torch.device | None = None,
) -> Tensor:
    r"""The fixed sinusoidal position table of "Attention Is All You Need".

    .. math::

        P_{m, 2i} = \sin\bigl(m\, \omega_i\bigr),\quad P_{m, 2i+1} = \cos\bigl(m\, \omega_i\bigr),
        \qquad \omega_i = \text{base}^{-2i/d}

    Parameters
    ----------
    num_positions : int
        Number of positions :math:`m = 0 \dots` ``num_positions - 1``.
    embed_dim : int
        :math:`d`, even.
    base : float, default 10000.0

    Returns
    -------
    Tensor
        Shape (num_positions, embed_dim), added to the token embeddings.

    Examples
    --------
    >>> from dlref.attention import sinusoidal_positional_encoding
    >>> sinusoidal_positional_encoding(3, 4, base=100.0)  # omega = (1, 0.1)
    tensor([[ 0.0000,  1.0000,  0.0000,  1.0000],
            [ 0.8415,  0.5403,  0.0998,  0.9950],
            [ 0.9093, -0.4161,  0.1987,  0.9801]])
    """
    _check_size("num_positions", num_positions, 0)
    _check_size("embed_dim", embed_dim)
    if embed_dim % 2:
        raise ValueError(f"embed_dim must be even (sin/cos pairs), got {embed_dim}")
    _check_base("base", base)
    _check_device_dtype(device, dtype)
    m = torch.arange(num_positions, dtype=torch.float64, device=device).unsqueeze(1)  # (T, 1)
    omega = base ** (-torch.arange(0, embed_dim, 2, dtype=torch.float64, device=device) / embed_dim)
    P = torch.empty(num_positions, embed_dim, dtype=torch.float64, device=device)
    P[:, 0::2] = torch.sin(m * omega)  # P_{m, 2i}
    P[:, 1::2] = torch.cos(m * omega)  # P_{m, 2i+1}
    return P.to(dtype or torch.get_default_dtype())


def apply_rotary(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    r"""Rotate each feature pair :math:`(x_i, x_{i + D/2})` by the angle :math:`m\theta_i`.

    .. math::

        \begin{pmatrix} y_i \\ y_{i+D/2} \end{pmatrix} =
        \begin{pmatrix} \cos m\theta_i & -\sin m\theta_i \\ \sin m\theta_i & \cos m\theta_i
        \end{pmatrix}
        \begin{pmatrix} x_i \\ x_{i+D/2} \end{pmatrix}

    This is the "rotate half" pairing of GPT-NeoX and Llama; RoFormer pairs neighbours
    :math:`(x_{2i}, x_{2i+1})`, which is the same up to a fixed permutation of the features.

    Parameters
    ----------
    x : Tensor
        Shape (..., T, D), D even.
    cos, sin : Tensor
        Shape (T, D/2): :math:`\cos m\theta_i`, :math:`\sin m\theta_i` for each position m.

    Returns
    -------
    Tensor
        Shape (..., T, D).

    Examples
    --------
    >>> import math
    >>> from dlref.attention import apply_rotary
    >>> x = torch.tensor([[1.0, 0.0]])  # one position, D = 2
    >>> apply_rotary(x, torch.tensor([[0.0]]), torch.tensor([[1.0]]))  # a quarter turn
    tensor([[0., 1.]])
    """
    for name, t in (("x", x), ("cos", cos), ("sin", sin)):
        check_float(name, t)
    if x.dim() < 1 or x.shape[-1] % 2:
        raise ValueError(f"x must have shape (..., T, D) with D even, got {tuple(x.shape)}")
    half = (*x.shape[:-1], x.shape[-1] // 2)
    for name, t in (("cos", cos), ("sin", sin)):
        try:
            fits = torch.broadcast_shapes(half, t.shape) == half
        except RuntimeError:
            fits = False
        if not fits:
            raise ValueError(
                f"x has shape {tuple(x.shape)} but {name} has shape {tuple(t.shape)}: {name} "
                f"must broadcast to {half} (..., T, D/2)"
            )
    x1, x2 = x.chunk(2, dim=-1)  # x_i and x_{i+D/2}: (..., T, D/2) each
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


class RotaryEmbedding(nn.Module):
    r"""Rotary position embedding (RoPE): rotates queries and keys by position-dependent angles.

    .. math::

        \theta_i = \text{base}^{-2i/D},\qquad
        \langle R_m q, R_n k \rangle = \langle q, R_{n-m} k \rangle

    so the score of query position m and key position n depends only on the offset n − m. The
    cosines and sines for ``max_seq_len`` positions are precomputed (buffers, not parameters).

    Parameters
    ----------
    head_dim : int
        D, even.
    max_seq_len : int
        Largest position + 1 that can be rotated.
    base : float, default 10000.0
        Llama 3 uses 500000.

    Examples
    --------
    >>> from dlref.attention import RotaryEmbedding
    >>> rope = RotaryEmbedding(head_dim=4, max_seq_len=8)
    >>> q = torch.ones(1, 1, 4)  # (heads, T, D)
    >>> rope(q, offset=0)  # position 0: no rotation
    tensor([[[1., 1., 1., 1.]]])
    """

    def __init__(
        self, head_dim: int, max_seq_len: int, base: float = 10000.0, device=None, dtype=None
    ):
        super().__init__()
        _check_size("head_dim", head_dim)
        if head_dim % 2:
            raise ValueError(f"head_dim must be even for rotary embeddings, got {head_dim}")
        _check_size("max_seq_len", max_seq_len)
        _check_base("base", base)
        _check_device_dtype(device, dtype)
        self.head_dim, self.max_seq_len, self.base = head_dim, max_seq_len, base
        theta = base ** (-torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)  # (D/2,)
        angles = torch.arange(max_seq_len, dtype=torch.float64).outer(theta)  # m θ_i: (T, D/2)
        dtype = dtype or torch.get_default_dtype()
        self.register_buffer("cos", angles.cos().to(device=device, dtype=dtype), persistent=False)
        self.register_buffer("sin", angles.sin().to(device=device, dtype=dtype), persistent=False)

    def forward(self, x: Tensor, offset: int = 0) -> Tensor:
        """Rotate x of shape (..., T, D) as positions ``offset … offset + T - 1``."""
        check_float("x", x)
        check_shape("x", x, (..., None, self.head_dim), "(..., T, head_dim)")
        offset = check_int("offset", offset, minimum=0)
        T = x.shape[-2]
        if offset + T > self.max_seq_len:
            raise ValueError(
                f"offset={offset} and T={T}: positions {offset}..{offset + T - 1} exceed "
                f"max_seq_len={self.max_seq_len}"
            )
        cos, sin = self.cos[offset : offset + T], self.sin[offset : offset + T]  # (T, D/2)
        return apply_rotary(x, cos.to(x.dtype), sin.to(x.dtype))


class LearnedPositionalEmbedding(nn.Embedding):
    r"""A learned table of absolute positions, one vector per position (GPT-2): :math:`P_m = W_m`.

    It is the only common position encoding whose parameters grow with the sequence length:
    ``max_seq_len * embed_dim`` of them, and positions beyond the table cannot be encoded.

    Parameters
    ----------
    max_seq_len : int
    embed_dim : int

    Examples
    --------
    >>> from dlref.attention import LearnedPositionalEmbedding
    >>> pe = LearnedPositionalEmbedding(max_seq_len=16, embed_dim=8)
    >>> pe(3, offset=2).shape  # positions 2, 3, 4
    torch.Size([3, 8])
    >>> sum(p.numel() for p in pe.parameters())
    128
    """

    def __init__(self, max_seq_len: int, embed_dim: int, device=None, dtype=None):
        _check_size("max_seq_len", max_seq_len)
        _check_size("embed_dim", embed_dim)
        _check_device_dtype(device, dtype)
        super().__init__(max_seq_len, embed_dim, device=device, dtype=dtype)

    def forward(self, seq_len: int, offset: int = 0) -> Tensor:  # type: ignore[override]
        """The vectors of positions ``offset … offset + seq_len - 1``: (seq_len, embed_dim)."""
        seq_len = check_int("seq_len", seq_len, minimum=0)
        offset = check_int("offset", offset, minimum=0)
        if offset + seq_len > self.num_embeddings:
            raise ValueError(
                f"offset={offset} and seq_len={seq_len}: positions {offset}.."
                f"{offset + seq_len - 1} exceed the learned table of {self.num_embeddings} "
                "positions (max_seq_len)"
            )
        return self.weight[offset : offset + seq_len]


# ---------------------------------------------------------------------------------------------
# KV cache
# ---------------------------------------------------------------------------------------------


class KVCache:
    r"""Preallocated keys and values of every layer, for decoding one token at a time.

    In a causal model, a new token reaches the past only through attention, and attention reads
    the past only through its keys and values. So the keys and values of the tokens already seen
    are stored, and each step computes them for the new token only:

    .. math::

        K_{1:t} = [K_{1:t-1};\ k_t],\quad V_{1:t} = [V_{1:t-1};\ v_t],\qquad
        y_t = \mathrm{softmax}\bigl(q_t K_{1:t}^\top / \sqrt{d}\bigr) V_{1:t}

    Memory: ``2 * num_layers * num_kv_heads * head_dim`` numbers per token and sequence.

    Parameters
    ----------
    num_layers : int
    batch_size : int
    num_kv_heads : int
    max_seq_len : int
        Positions preallocated.
    head_dim : int
    dtype, device : optional
        Of the stored tensors.

    Attributes
    ----------
    keys, values : Tensor
        Shape (num_layers, batch_size, num_kv_heads, max_seq_len, head_dim).
    lengths : list of int
        Tokens stored so far, per layer.

    Examples
    --------
    >>> from dlref.attention import KVCache
    >>> cache = KVCache(num_layers=1, batch_size=1, num_kv_heads=2, max_seq_len=8, head_dim=4)
    >>> k, v = cache.update(0, torch.ones(1, 2, 3, 4), torch.ones(1, 2, 3, 4))  # 3 tokens
    >>> k.shape, cache.seq_len
    (torch.Size([1, 2, 3, 4]), 3)
    >>> cache.update(0, torch.ones(1, 2, 1, 4), torch.ones(1, 2, 1, 4))[0].shape  # one more
    torch.Size([1, 2, 4, 4])
    """

    def __init__(
        self,
        num_layers: int,
        batch_size: int,
        num_kv_heads: int,
        max_seq_len: int,
        head_dim: int,
        *,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
    ):
        for name, n, least in (
            ("num_layers", num_layers, 1),
            ("batch_size", batch_size, 0),
            ("num_kv_heads", num_kv_heads, 1),
            ("max_seq_len", max_seq_len, 0),
            ("head_dim", head_dim, 1),
        ):
            _check_size(name, n, least)
        _check_device_dtype(device, dtype)
        shape = (num_layers, batch_size, num_kv_heads, max_seq_len, head_dim)
        self.keys = torch.zeros(shape, dtype=dtype, device=device)
        self.values = torch.zeros(shape, dtype=dtype, device=device)
        self.lengths = [0] * num_layers

    @property
    def seq_len(self) -> int:
        """Tokens stored in the first layer (all layers agree between forward passes)."""
        return self.lengths[0]

    @property
    def nbytes(self) -> int:
        """Bytes held by the preallocated keys and values."""
        return self.keys.nbytes + self.values.nbytes

    def update(self, layer: int, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Append k, v of shape (B, H_kv, T, D) to ``layer``; return all of its keys and values.

        The returned views have shape (B, H_kv, seq_len + T, D).
        """
        layer = check_index("layer", layer, len(self.lengths), "the cache's layers")
        check_float("k", k)
        check_float("v", v)
        _, B, H, S_max, D = self.keys.shape
        start, T = self.lengths[layer], k.shape[-2] if k.dim() >= 2 else 0
        if tuple(k.shape) != (B, H, T, D) or k.shape != v.shape:
            raise ValueError(
                f"k and v must have shape (batch_size, num_kv_heads, T, head_dim) = "
                f"({B}, {H}, T, {D}), got {tuple(k.shape)} and {tuple(v.shape)}"
            )
        if start + T > S_max:
            raise ValueError(
                f"the cache holds {start} tokens and max_seq_len={S_max}: no room for {T} more"
            )
        self.keys[layer, :, :, start : start + T] = k  # K_{1:t} = [K_{1:t-1}; k_t]
        self.values[layer, :, :, start : start + T] = v
        self.lengths[layer] = start + T
        return self.keys[layer, :, :, : start + T], self.values[layer, :, :, : start + T]

    def reorder(self, index: Tensor) -> None:
        """Keep the sequences ``index`` (beam search: each beam's parent), shape (B_new,).

        ``index`` may live on another device than the cache (it is moved to the cache's).
        """
        check_index_tensor("index", index, self.keys.shape[1], "the cache's batch of sequences")
        check_shape("index", index, (None,), "(B_new,)")
        index = index.to(self.keys.device).long()  # torch's index_select takes no uint8 or int8
        self.keys = self.keys.index_select(1, index)
        self.values = self.values.index_select(1, index)

    def reset(self) -> None:
        """Forget every stored token (the memory is kept)."""
        self.lengths = [0] * len(self.lengths)


# ---------------------------------------------------------------------------------------------
# Multi-head attention
# ---------------------------------------------------------------------------------------------


class MultiHeadAttention(nn.Module):
    r"""Multi-head attention; grouped-query (GQA) with ``num_kv_heads`` < ``num_heads``, multi-query
    (MQA) with ``num_kv_heads=1``.

    .. math::

        \mathrm{head}_h = \mathrm{Attention}\bigl(X W^Q_h,\ C W^K_{g(h)},\ C W^V_{g(h)}\bigr),
        \qquad \mathrm{MHA}(X, C) = [\mathrm{head}_1; \dots; \mathrm{head}_H]\, W^O

    with :math:`C = X` for self-attention and :math:`g(h) = \lfloor h\, H_{kv} / H \rfloor`, the
    key/value head that query head :math:`h` shares. Inputs are batch-first, (B, T, E).

    Differences from :class:`torch.nn.MultiheadAttention`: batch-first only; one context for keys
    and values; ``bias=False`` by default (Llama, and most recent models); ``forward`` returns
    only the output (no weights); masks follow :func:`scaled_dot_product_attention` (``True`` =
    *may* attend, the opposite of torch's ``nn.MultiheadAttention``).

    Parameters
    ----------
    embed_dim : int
        E = ``num_heads * head_dim``.
    num_heads : int
        H, query heads.
    num_kv_heads : int, optional
        :math:`H_{kv}`, key/value heads; must divide H. Default H (plain MHA).
    bias : bool
        Default ``False``. Biases in the four projections.
    dropout : float, default 0.0
        Dropout on the attention weights, in training mode only.
    kdim : int, optional
        Feature size of the context for cross-attention (keys and values are both projected from
        it); default E. Unlike torch's, there is no separate ``vdim``.

    Examples
    --------
    >>> from dlref.attention import MultiHeadAttention
    >>> torch.manual_seed(0)
    <torch._C.Generator object at ...>
    >>> gqa = MultiHeadAttention(embed_dim=64, num_heads=8, num_kv_heads=2)
    >>> gqa.k_proj.weight.shape  # 2 KV heads of 8 features each
    torch.Size([16, 64])
    >>> gqa(torch.randn(3, 5, 64), is_causal=True).shape
    torch.Size([3, 5, 64])
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        num_kv_heads: int | None = None,
        bias: bool = False,
        dropout: float = 0.0,
        kdim: int | None = None,
        device=None,
        dtype=None,
    ):
        super().__init__()
        _check_size("embed_dim", embed_dim)
        _check_size("num_heads", num_heads)
        if num_kv_heads is not None:
            _check_size("num_kv_heads", num_kv_heads)
        if kdim is not None:
            _check_size("kdim", kdim)
        _check_flag("bias", bias)
        check_real("dropout", dropout)
        if not 0.0 <= dropout <= 1.0:
            raise ValueError(f"dropout must be in [0, 1], got {dropout}")
        _check_device_dtype(device, dtype)
        num_kv_heads = num_heads if num_kv_heads is None else num_kv_heads
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim={embed_dim} must be divisible by num_heads={num_heads}")
        if num_heads % num_kv_heads:
            raise ValueError(f"num_kv_heads={num_kv_heads} must divide num_heads={num_heads}")
        self.embed_dim, self.num_heads, self.num_kv_heads = embed_dim, num_heads, num_kv_heads
        self.head_dim = embed_dim // num_heads
        self.dropout = dropout
        kv_dim = num_kv_heads * self.head_dim
        f = {"device": device, "dtype": dtype}
        self.q_proj = nn.Linear(embed_dim, embed_dim, bias=bias, **f)  # W^Q: E -> H * D
        self.k_proj = nn.Linear(kdim or embed_dim, kv_dim, bias=bias, **f)  # W^K: -> H_kv * D
        self.v_proj = nn.Linear(kdim or embed_dim, kv_dim, bias=bias, **f)  # W^V: -> H_kv * D
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias=bias, **f)  # W^O: H * D -> E

    def _heads(self, x: Tensor, n: int) -> Tensor:
        B, T, _ = x.shape
        return x.view(B, T, n, self.head_dim).transpose(1, 2)  # (B, n, T, D)

    def forward(
        self,
        x: Tensor,
        context: Tensor | None = None,
        *,
        attn_mask: Tensor | None = None,
        is_causal: bool = False,
        rotary: RotaryEmbedding | None = None,
        kv_cache: KVCache | None = None,
        layer: int = 0,
    ) -> Tensor:
        """Attend from ``x`` (B, T, E) to ``context`` (B, S, kdim) or, by default, to ``x`` itself.

        Parameters
        ----------
        x : Tensor
            Queries' input, (B, T, E).
        context : Tensor, optional
            Keys' and values' input for cross-attention, (B, S, kdim); default ``x``.
        attn_mask : Tensor, optional
            As in :func:`scaled_dot_product_attention`, broadcastable to (B, H, T, S).
        is_causal : bool
            Default ``False``. Causal self-attention. With a cache holding ``p`` tokens, the T
            new tokens are positions ``p … p + T - 1`` and see every cached key
            (bottom-right-aligned mask).
        rotary : RotaryEmbedding, optional
            Rotate queries and keys by their positions (offset by the cached length).
        kv_cache : KVCache, optional
            Self-attention only: append this call's keys and values to ``layer`` of the cache
            and attend to all of them.
        layer : int, default 0
            Index of this layer in ``kv_cache``.

        Returns
        -------
        Tensor
            (B, T, E).
        """
        check_float("x", x)
        if x.dim() != 3 or x.shape[-1] != self.embed_dim:
            raise ValueError(
                f"x must have shape (B, T, embed_dim={self.embed_dim}), got {tuple(x.shape)}"
            )
        B = x.shape[0]
        check_dtype_of("x", x, self.q_proj.weight)
        is_causal = check_bool("is_causal", is_causal)
        check_optional("rotary", rotary, RotaryEmbedding)
        check_optional("kv_cache", kv_cache, KVCache)
        if context is None and self.k_proj.in_features != self.embed_dim:
            raise ValueError(
                f"context is required: keys and values are projected from kdim="
                f"{self.k_proj.in_features} features, and x has embed_dim={self.embed_dim}"
            )
        if context is not None:
            check_float("context", context)
            check_dtype_of("context", context, self.k_proj.weight)
            check_shape("context", context, (B, None, self.k_proj.in_features), "(B, S, kdim)")
        if context is not None and kv_cache is not None:
            raise ValueError("kv_cache is for self-attention: pass context or kv_cache, not both")
        if kv_cache is not None:
            layer = check_index("layer", layer, len(kv_cache.lengths), "kv_cache's layers")
            if kv_cache.keys.shape[1] != B:
                raise ValueError(
                    f"x has shape {tuple(x.shape)}, a batch of {B}, but kv_cache holds "
                    f"batch_size={kv_cache.keys.shape[1]} sequences"
                )
        B, T, E = x.shape
        src = x if context is None else context
        q = self._heads(self.q_proj(x), self.num_heads)  # (B, H, T, D)
        k = self._heads(self.k_proj(src), self.num_kv_heads)  # (B, H_kv, S, D)
        v = self._heads(self.v_proj(src), self.num_kv_heads)  # (B, H_kv, S, D)
        offset = kv_cache.lengths[layer] if kv_cache is not None else 0  # position of x[:, 0]
        if rotary is not None:
            q, k = rotary(q, offset), rotary(k, offset)
        if kv_cache is not None:
            k, v = kv_cache.update(layer, k, v)  # (B, H_kv, offset + T, D)
        if is_causal and T == 1 and attn_mask is None:
            is_causal = False  # one new token sees every key: nothing to mask
        elif is_causal and (offset > 0 or attn_mask is not None):
            # torch's is_causal is top-left aligned (wrong once keys precede the queries) and
            # excludes attn_mask: build the mask, queries at positions offset ... offset + T - 1
            is_causal = False
            m = causal_mask(T, offset + T, offset=offset, device=x.device)  # (T, S)
            if attn_mask is None or attn_mask.dtype == torch.bool:
                attn_mask = m if attn_mask is None else attn_mask & m
            else:  # a float mask: add -inf where m forbids
                future = torch.zeros(m.shape, dtype=attn_mask.dtype, device=x.device)
                attn_mask = attn_mask + future.masked_fill(~m, -math.inf)
        y = scaled_dot_product_attention(
            q,
            k,
            v,
            attn_mask=attn_mask,
            dropout_p=self.dropout if self.training else 0.0,
            is_causal=is_causal,
            enable_gqa=self.num_kv_heads != self.num_heads,
        )  # (B, H, T, D)
        return self.out_proj(y.transpose(1, 2).reshape(B, T, E))  # concat heads, W^O
