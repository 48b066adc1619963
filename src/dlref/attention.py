r"""Attention: scaled dot-product attention, multi-head/grouped-query attention, the KV cache.

.. math::

    \mathrm{Attention}(Q, K, V) = \mathrm{softmax}\!\Bigl(\frac{Q K^\top}{\sqrt{d_k}} + M\Bigr) V

:func:`scaled_dot_product_attention` has the name, arguments and defaults of
:func:`torch.nn.functional.scaled_dot_product_attention` and equals it in float64, values and
gradients. :class:`MultiHeadAttention` builds multi-head (MHA), grouped-query (GQA) and multi-query
(MQA) attention from it, with an optional :class:`KVCache` for decoding one token at a time.
Position enters through ``dlref.positional`` (:class:`~dlref.positional.RotaryEmbedding` and
the others), whose names this module re-exports.
"""

from __future__ import annotations

import math
import numbers

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dlref._checks import (
    check_at_most,
    check_batch_broadcast,
    check_bool,
    check_broadcasts_to,
    check_divides,
    check_dtype_in,
    check_dtype_of,
    check_factory,
    check_float,
    check_index,
    check_index_tensor,
    check_int,
    check_nonnegative,
    check_optional,
    check_same_dtype,
    check_same_size,
    check_shape,
    check_tensor,
)
from dlref.positional import (  # re-export: they lived here before dlref.positional
    LearnedPositionalEmbedding,
    RotaryEmbedding,
    apply_rotary,
    sinusoidal_positional_encoding,
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

_BOTH_MASKS = (
    "attn_mask and is_causal=True were both given: pass one mask, e.g. "
    "attn_mask=attn_mask & causal_mask(L, S)"
)


# ---------------------------------------------------------------------------------------------
# Helpers: masks, repeating KV heads.
# ---------------------------------------------------------------------------------------------


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
    query_len = check_int("query_len", query_len, minimum=0)
    key_len = check_int("key_len", key_len, minimum=0)
    offset = check_int("offset", offset, minimum=-math.inf)  # any int
    check_factory(device, None)
    i = torch.arange(query_len, device=device).unsqueeze(-1)  # (L, 1)
    j = torch.arange(key_len, device=device)  # (S,)
    return j <= i + offset  # (L, S)


def _bias(allowed: Tensor, dtype: torch.dtype) -> Tensor:
    """A boolean mask (``True`` = may attend) as the M added to the scores: 0 or -inf."""
    M = torch.zeros(allowed.shape, dtype=dtype, device=allowed.device)
    return M.masked_fill(~allowed, -math.inf)


def _additive_mask(attn_mask: Tensor | None, is_causal: bool, L: int, S: int, query: Tensor):
    """The mask M as a float tensor to add to the scores, or None (at most one mask is given)."""
    if is_causal:  # -inf above the diagonal
        return _bias(causal_mask(L, S, device=query.device), query.dtype)
    if attn_mask is not None and attn_mask.dtype == torch.bool:
        return _bias(attn_mask, query.dtype)
    return None if attn_mask is None else attn_mask.to(query.dtype)


def _mask_after(attn_mask: Tensor | None, is_causal: bool, T: int, offset: int, device):
    """The mask and is_causal to pass on for T queries at positions offset … offset + T - 1.

    torch's ``is_causal`` is top-left aligned (wrong once cached keys precede the queries) and
    excludes ``attn_mask``: in those cases the causal mask is built and combined here.
    """
    if is_causal and T == 1 and attn_mask is None:
        return None, False  # one new token sees every key: nothing to mask
    if not is_causal or (offset == 0 and attn_mask is None):
        return attn_mask, is_causal
    m = causal_mask(T, offset + T, offset=offset, device=device)  # (T, S)
    if attn_mask is None or attn_mask.dtype == torch.bool:
        return (m if attn_mask is None else attn_mask & m), False
    return attn_mask + _bias(m, attn_mask.dtype), False  # a float mask: -inf where m forbids


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
    check_bool("is_causal", is_causal)
    check_bool("enable_gqa", enable_gqa)
    dropout_p = check_at_most("dropout_p", dropout_p, 1)  # dropout whenever > 0, as in torch
    scale = scale.item() if isinstance(scale, Tensor) and scale.numel() == 1 else scale  # as torch
    check_optional("scale", scale, numbers.Real)
    check_optional("attn_mask", attn_mask, Tensor)
    check_float("query", query)
    check_tensor("key", key)
    check_tensor("value", value)
    check_same_dtype(query=query, key=key, value=value)
    dims = (..., None, None, None) if enable_gqa else (..., None, None)  # GQA needs heads
    check_shape("query", query, dims, "(..., [H,] L, E)")
    check_shape("key", key, dims, "(..., [H_kv,] S, E)")
    check_shape("value", value, dims, "(..., [H_kv,] S, E_v)")
    if value.numel() == 0:  # as torch, before its other checks: nothing to average
        return query.new_zeros(*query.shape[:-1], value.shape[-1])
    check_same_size("query", query, "key", key, -1, "the last dimensions")
    check_same_size("key", key, "value", value, -2, "the sequence dimensions (-2)")
    if enable_gqa:  # each key/value head serves H / H_kv query heads
        check_divides("key heads", key.shape[-3], {"query heads": query.shape[-3]})
        check_divides("value heads", value.shape[-3], {"query heads": query.shape[-3]})
    skip, hint = (3, "") if enable_gqa else (2, " (different head counts need enable_gqa=True)")
    batch = check_batch_broadcast("query", query, "key", key, skip, hint)  # the scores' batch
    check_batch_broadcast("key", key, "value", value, skip)
    check_batch_broadcast("query", query, "value", value, skip)
    L, S, E = query.shape[-2], key.shape[-2], query.shape[-1]
    scores_shape = (*batch, *query.shape[-3:-2], L, S) if enable_gqa else (*batch, L, S)
    if attn_mask is not None:
        check_dtype_in("attn_mask", attn_mask, (torch.bool, torch.float32, query.dtype))
        check_broadcasts_to("attn_mask", attn_mask, scores_shape, "the scores' shape")
    if attn_mask is not None and is_causal:  # torch's reference semantics forbid both
        raise ValueError(_BOTH_MASKS)

    # softmax(s Q K^T + M) V, where with GQA each K, V head serves H / H_kv heads
    if enable_gqa:
        H = query.shape[-3]
        key = _repeat_kv(key, H // key.shape[-3])  # (..., H, S, E)
        value = _repeat_kv(value, H // value.shape[-3])  # (..., H, S, E_v)
    default = 1.0 / math.sqrt(E) if E else math.inf  # s = 1 / sqrt(E)
    s = default if scale is None else float(scale)
    M = _additive_mask(attn_mask, is_causal, L, S, query)  # to (..., H, L, S)
    dead = None  # query rows with no key left to attend (not with is_causal)
    if attn_mask is not None:
        dead = torch.isneginf(M).all(dim=-1, keepdim=True)
        if dead.any():
            M = M.masked_fill(dead, 0.0)  # softmax stays finite; zeroed below
        else:
            dead = None
    q = query * s  # the scale folded into Q: L*E products instead of L*S
    one_call = M is not None and M.dim() <= 2 and q.shape[:-2] == key.shape[:-2]
    if one_call:  # s Q K^T + M in one baddbmm
        n = math.prod(q.shape[:-2])  # batch x heads, flattened
        q3, k3 = q.reshape(n, L, E), key.reshape(n, S, E)
        scores = torch.baddbmm(M, q3, k3.transpose(1, 2))
        scores = scores.view(q.shape[:-1] + (S,))
    else:
        scores = q @ key.transpose(-2, -1)  # s Q K^T: (..., H, L, S)
        if M is not None:
            scores = scores + M
    attn = torch.softmax(scores, dim=-1)  # each row sums to 1 over the keys
    if dead is not None:
        attn = attn.masked_fill(dead, 0.0)  # rows with no key give 0, as torch
    if dropout_p > 0.0:
        attn = F.dropout(attn, p=dropout_p)
    return attn @ value  # (..., H, L, E_v)


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
        num_layers = check_int("num_layers", num_layers)
        batch_size = check_int("batch_size", batch_size, minimum=0)
        num_kv_heads = check_int("num_kv_heads", num_kv_heads)
        max_seq_len = check_int("max_seq_len", max_seq_len, minimum=0)
        head_dim = check_int("head_dim", head_dim)
        check_factory(device, dtype)
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
        _, B, H, S_max, D = self.keys.shape
        layer = check_index("layer", layer, len(self.lengths), "the cache's layers")
        check_float("k", k)
        check_float("v", v)
        check_shape("k", k, (B, H, None, D), "(batch_size, num_kv_heads, T, head_dim)")
        check_shape("v", v, tuple(k.shape), "k's shape")
        start, T = self.lengths[layer], k.shape[-2]
        check_at_most("seq_len + T (stored + new tokens)", start + T, S_max)  # max_seq_len
        end = start + T
        self.keys[layer, :, :, start:end] = k  # K_{1:t} = [K_{1:t-1}; k_t]
        self.values[layer, :, :, start:end] = v  # V_{1:t} = [V_{1:t-1}; v_t]
        self.lengths[layer] = end
        return self.keys[layer, :, :, :end], self.values[layer, :, :, :end]

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
        embed_dim = check_int("embed_dim", embed_dim)
        num_heads = check_divides("num_heads", num_heads, {"embed_dim": embed_dim})
        kv_heads = num_heads if num_kv_heads is None else num_kv_heads  # plain MHA by default
        num_kv_heads = check_divides("num_kv_heads", kv_heads, {"num_heads": num_heads})
        kdim = check_int("kdim", embed_dim if kdim is None else kdim)
        check_bool("bias", bias)
        check_nonnegative("dropout", dropout)
        check_at_most("dropout", dropout, 1)
        check_factory(device, dtype)
        self.embed_dim, self.num_heads, self.num_kv_heads = embed_dim, num_heads, num_kv_heads
        self.head_dim = embed_dim // num_heads
        self.dropout = dropout
        kv_dim = num_kv_heads * self.head_dim
        f = {"device": device, "dtype": dtype}
        self.q_proj = nn.Linear(embed_dim, embed_dim, bias=bias, **f)  # W^Q: E -> H * D
        self.k_proj = nn.Linear(kdim, kv_dim, bias=bias, **f)  # W^K: kdim -> H_kv * D
        self.v_proj = nn.Linear(kdim, kv_dim, bias=bias, **f)  # W^V: kdim -> H_kv * D
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
        rotary : dlref.positional.RotaryEmbedding, optional
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
        check_shape("x", x, (None, None, self.embed_dim), "(B, T, embed_dim)")
        check_dtype_of("x", x, self.q_proj.weight)
        is_causal = check_bool("is_causal", is_causal)
        check_optional("rotary", rotary, RotaryEmbedding)
        check_optional("kv_cache", kv_cache, KVCache)
        B, T, E = x.shape
        src = x if context is None else context  # self-attention by default
        check_float("context", src)
        check_shape("context", src, (B, None, self.k_proj.in_features), "(B, S, kdim), x if None")
        check_dtype_of("context", src, self.k_proj.weight)
        if context is not None and kv_cache is not None:
            raise ValueError("kv_cache is for self-attention: pass context or kv_cache, not both")
        if kv_cache is not None:
            layer = check_index("layer", layer, len(kv_cache.lengths), "kv_cache's layers")
            check_shape("x", x, (kv_cache.keys.shape[1], T, E), "(kv_cache's batch_size, T, E)")
        q = self._heads(self.q_proj(x), self.num_heads)  # X W^Q: (B, H, T, D)
        k = self._heads(self.k_proj(src), self.num_kv_heads)  # (B, H_kv, S, D)
        v = self._heads(self.v_proj(src), self.num_kv_heads)  # (B, H_kv, S, D)
        offset = kv_cache.lengths[layer] if kv_cache is not None else 0  # of x[:, 0]
        if rotary is not None:  # R_m q, R_n k
            q, k = rotary(q, offset), rotary(k, offset)
        if kv_cache is not None:
            k, v = kv_cache.update(layer, k, v)  # (B, H_kv, offset + T, D)
        mask, causal = _mask_after(attn_mask, is_causal, T, offset, x.device)
        p = self.dropout if self.training else 0.0
        gqa = self.num_kv_heads != self.num_heads
        y = scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=p, is_causal=causal, enable_gqa=gqa
        )  # head_h for each h: (B, H, T, D)
        y = y.transpose(1, 2).reshape(B, T, E)  # [head_1; ...; head_H]: (B, T, E)
        return self.out_proj(y)  # W^O
