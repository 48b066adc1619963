r"""A small decoder-only transformer (GPT), readable top to bottom, and its arithmetic.

.. math::

    h_0 = E[x] + P,\qquad
    h \leftarrow h + \mathrm{Attn}(\mathrm{Norm}(h)),\qquad
    h \leftarrow h + \mathrm{MLP}(\mathrm{Norm}(h)),\qquad
    \text{logits} = \mathrm{Norm}(h_L)\, W_{\text{out}}^\top

Pre-norm blocks with residual connections (GPT-2, Llama). :class:`TransformerConfig` chooses the
positional encoding (learned, sinusoidal, rotary or none), the MLP (GELU or SwiGLU), the norm
(LayerNorm or RMSNorm), grouped-query attention and tied embeddings, so the same class describes
a 25,568-parameter toy and Llama 3 8B. :func:`count_parameters`, :func:`kv_cache_bytes_per_token`
and :func:`forward_flops` give the closed forms.

For decoding: :meth:`Transformer.next_token_log_probs` is a ``step_fn(tokens (N, T)) -> (N, V)``
log-probabilities, with or without a :class:`~dlref.attention.KVCache`
(:meth:`Transformer.new_kv_cache`), and :meth:`Transformer.generate` decodes greedily.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dlref._checks import (
    check_bool,
    check_choice,
    check_dtype_of,
    check_float,
    check_index_tensor,
    check_instance,
    check_int,
    check_optional,
    check_positive_finite,
    check_real,
    check_shape,
)
from dlref.attention import KVCache, MultiHeadAttention
from dlref.llm_systems import kv_cache_bytes, transformer_parameters
from dlref.positional import (
    LearnedPositionalEmbedding,
    RotaryEmbedding,
    sinusoidal_positional_encoding,
)

__all__ = [
    "TransformerConfig",
    "count_parameters",
    "kv_cache_bytes_per_token",
    "forward_flops",
    "MLP",
    "Block",
    "Transformer",
]

_POSITIONAL = ("learned", "sinusoidal", "rope", "none")
_MLP = ("gelu", "gelu_tanh", "swiglu")
_NORM = ("layernorm", "rmsnorm")


# ---------------------------------------------------------------------------------------------
# Configuration and closed forms
# ---------------------------------------------------------------------------------------------


def _check_hidden(name: str, h: object, weight: Tensor) -> None:
    check_float(name, h)
    check_shape(name, h, (None, None, weight.shape[0]), "(B, T, d_model)")
    check_dtype_of(name, h, weight)


@dataclass
class TransformerConfig:
    """Hyper-parameters of :class:`Transformer`.

    Parameters
    ----------
    vocab_size : int
        V.
    max_seq_len : int
        Longest sequence (size of the learned position table, the rotary tables, the cache).
    d_model : int, default 64
        d, the width of the residual stream.
    num_layers : int, default 2
    num_heads : int, default 4
        Query heads; head size is ``d_model // num_heads``.
    num_kv_heads : int, optional
        Key/value heads (GQA); default ``num_heads``.
    d_ff : int, optional
        Hidden size of the MLP; default ``4 * d_model``.
    mlp : {'gelu', 'gelu_tanh', 'swiglu'}, default 'gelu'
        GELU (exact, erf form) or its tanh approximation (GPT-2): two matrices; SwiGLU: three.
        On a CPU the tanh form is the cheaper call on small tensors (decoding one token) and
        the dearer on large ones (training batches).
    norm : {'layernorm', 'rmsnorm'}, default 'layernorm'
    positional : {'learned', 'sinusoidal', 'rope', 'none'}, default 'learned'
    tie_embeddings : bool
        Default ``True``. Output projection shares the token embedding matrix.
    bias : bool
        Default ``False``. Biases in the linear layers and LayerNorms.
    dropout : float, default 0.0
    rope_base : float, default 10000.0
    norm_eps : float, default 1e-5

    Examples
    --------
    >>> from dlref.transformer import TransformerConfig
    >>> TransformerConfig(vocab_size=10, max_seq_len=16).head_dim
    16
    """

    vocab_size: int
    max_seq_len: int
    d_model: int = 64
    num_layers: int = 2
    num_heads: int = 4
    num_kv_heads: int | None = None
    d_ff: int | None = None
    mlp: str = "gelu"
    norm: str = "layernorm"
    positional: str = "learned"
    tie_embeddings: bool = True
    bias: bool = False
    dropout: float = 0.0
    rope_base: float = 10000.0
    norm_eps: float = 1e-5

    def __post_init__(self):
        for name in ("vocab_size", "max_seq_len", "d_model", "num_heads"):
            setattr(self, name, check_int(name, getattr(self, name)))
        self.num_layers = check_int("num_layers", self.num_layers, minimum=0)
        for name in ("num_kv_heads", "d_ff"):
            if getattr(self, name) is not None:
                setattr(self, name, check_int(name, getattr(self, name)))
        self.tie_embeddings = check_bool("tie_embeddings", self.tie_embeddings)
        self.bias = check_bool("bias", self.bias)
        check_real("dropout", self.dropout)
        if not 0.0 <= self.dropout <= 1.0:
            raise ValueError(f"dropout must be in [0, 1], got {self.dropout}")
        self.rope_base = check_positive_finite("rope_base", self.rope_base)
        self.norm_eps = check_positive_finite("norm_eps", self.norm_eps)
        check_choice("positional", self.positional, _POSITIONAL)
        check_choice("mlp", self.mlp, _MLP)
        check_choice("norm", self.norm, _NORM)
        if self.d_model % self.num_heads:
            raise ValueError(
                f"d_model={self.d_model} must be divisible by num_heads={self.num_heads}"
            )
        if self.num_kv_heads is None:
            self.num_kv_heads = self.num_heads
        if self.num_heads % self.num_kv_heads:
            raise ValueError(
                f"num_kv_heads={self.num_kv_heads} must divide num_heads={self.num_heads}"
            )
        if self.d_ff is None:
            self.d_ff = 4 * self.d_model

    @property
    def head_dim(self) -> int:
        """d / H."""
        return self.d_model // self.num_heads


def count_parameters(config: TransformerConfig) -> int:
    r"""Number of parameters of ``Transformer(config)``, in closed form.

    .. math::

        N = \underbrace{Vd}_{\text{embedding}} + \underbrace{T_{\max} d}_{\text{learned } P}
          + L\bigl(\underbrace{2d^2 + 2 d\, H_{kv} d_h}_{W^Q, W^O, W^K, W^V}
          + \underbrace{k\, d\, d_{ff}}_{\text{MLP}, k = 2 \text{ or } 3}
          + 2n\bigr) + n + \underbrace{Vd}_{\text{untied output}} + \text{biases}

    with :math:`n` the parameters of one norm (:math:`d` for RMSNorm, :math:`2d` for LayerNorm
    with bias). Only the learned position table depends on the sequence length. The count is
    :func:`dlref.llm_systems.transformer_parameters` of the config's fields.

    Examples
    --------
    >>> from dlref.transformer import TransformerConfig, count_parameters
    >>> llama3_8b = TransformerConfig(
    ...     vocab_size=128256, max_seq_len=8192, d_model=4096, num_layers=32, num_heads=32,
    ...     num_kv_heads=8, d_ff=14336, mlp="swiglu", norm="rmsnorm", positional="rope",
    ...     tie_embeddings=False, rope_base=500000.0)
    >>> f"{count_parameters(llama3_8b):,}"
    '8,030,261,248'
    """
    check_instance("config", config, TransformerConfig)
    c = config
    # the formula of dlref.llm_systems.transformer_parameters, with this config's fields
    return transformer_parameters(
        c.num_layers,
        c.d_model,
        c.num_heads,
        c.vocab_size,
        d_ff=c.d_ff,
        n_kv_head=c.num_kv_heads,
        mlp="swiglu" if c.mlp == "swiglu" else "gelu",  # both GELUs have two matrices
        norm=c.norm,
        bias=c.bias,
        tie_embeddings=c.tie_embeddings,
        n_positions=c.max_seq_len if c.positional == "learned" else 0,
    )


def kv_cache_bytes_per_token(config: TransformerConfig, bytes_per_element: int = 2) -> int:
    r"""Bytes the KV cache holds for each token of each sequence.

    .. math:: 2 \times L \times H_{kv} \times d_h \times \text{bytes per element}

    (keys and values, every layer): :func:`dlref.llm_systems.kv_cache_bytes` of one token.
    GQA divides it by :math:`H / H_{kv}`.

    Examples
    --------
    >>> from dlref.transformer import TransformerConfig, kv_cache_bytes_per_token
    >>> cfg = TransformerConfig(vocab_size=100, max_seq_len=64, num_layers=2, num_heads=4)
    >>> kv_cache_bytes_per_token(cfg, bytes_per_element=4)  # 2 * 2 * 4 * 16 * 4
    1024
    """
    check_instance("config", config, TransformerConfig)
    c = config
    # 2 L H_kv d_h bytes: dlref.llm_systems.kv_cache_bytes of one token
    return kv_cache_bytes(c.num_layers, c.num_kv_heads, c.head_dim, 1, 1, bytes_per_element)


def forward_flops(config: TransformerConfig, seq_len: int) -> dict[str, int]:
    r"""Matrix-multiply FLOPs of one forward pass over ``seq_len`` tokens (one sequence).

    A product of (m, k) and (k, n) matrices costs :math:`2mkn` FLOPs. Per layer:

    .. math::

        \text{projections} = 2T(2d^2 + 2 d\,H_{kv} d_h),\quad
        \text{attention} = \underbrace{2T^2 d}_{QK^\top} + \underbrace{2T^2 d}_{AV},\quad
        \text{mlp} = 2T k\, d\, d_{ff}

    The attention term counts the full :math:`T \times T` scores; a causal kernel that skips the
    masked half does about half of it.

    Returns
    -------
    dict
        ``{"projections", "attention", "mlp", "lm_head"}``, summed over layers.

    Examples
    --------
    >>> from dlref.transformer import TransformerConfig, forward_flops
    >>> cfg = TransformerConfig(vocab_size=100, max_seq_len=4096, d_model=64, num_layers=1)
    >>> f = forward_flops(cfg, 128)  # MHA: 8Td^2 vs 4T^2 d, equal at T = 2d = 128
    >>> f["projections"] == f["attention"]
    True
    """
    check_instance("config", config, TransformerConfig)
    check_int("seq_len", seq_len, minimum=0)
    c, T = config, seq_len
    d, d_kv = c.d_model, c.num_kv_heads * c.head_dim
    k = 3 if c.mlp == "swiglu" else 2
    return {
        "projections": c.num_layers * 2 * T * (2 * d * d + 2 * d * d_kv),
        "attention": c.num_layers * 4 * T * T * d,
        "mlp": c.num_layers * 2 * T * k * d * c.d_ff,
        "lm_head": 2 * T * d * c.vocab_size,
    }


# ---------------------------------------------------------------------------------------------
# Modules
# ---------------------------------------------------------------------------------------------


def _norm(config: TransformerConfig) -> nn.Module:
    if config.norm == "rmsnorm":
        return nn.RMSNorm(config.d_model, eps=config.norm_eps)
    return nn.LayerNorm(config.d_model, eps=config.norm_eps, bias=config.bias)


class MLP(nn.Module):
    r"""The position-wise feed-forward network.

    .. math::

        \mathrm{GELU\ MLP}(x) = W_2\, \mathrm{GELU}(W_1 x),\qquad
        \mathrm{SwiGLU}(x) = W_{\text{down}}\bigl(\mathrm{SiLU}(W_{\text{gate}} x)
        \odot W_{\text{up}} x\bigr)

    ``mlp='gelu_tanh'`` uses the approximation
    :math:`\tfrac{x}{2}\bigl(1 + \tanh(\sqrt{2/\pi}(x + 0.044715 x^3))\bigr)` instead of the
    exact :math:`x\,\Phi(x)`.

    Parameters
    ----------
    config : TransformerConfig
        Its ``d_model``, ``d_ff``, ``mlp``, ``bias`` and ``dropout``.

    Examples
    --------
    >>> from dlref.transformer import MLP, TransformerConfig
    >>> mlp = MLP(TransformerConfig(vocab_size=10, max_seq_len=8, d_model=8, mlp="swiglu"))
    >>> mlp(torch.randn(2, 3, 8)).shape
    torch.Size([2, 3, 8])
    """

    def __init__(self, config: TransformerConfig):
        super().__init__()
        check_instance("config", config, TransformerConfig)
        d, h, b = config.d_model, config.d_ff, config.bias
        self.swiglu = config.mlp == "swiglu"
        self.approximate = "tanh" if config.mlp == "gelu_tanh" else "none"
        if self.swiglu:
            self.gate_proj = nn.Linear(d, h, bias=b)  # W_gate
        self.up_proj = nn.Linear(d, h, bias=b)  # W_1 / W_up
        self.down_proj = nn.Linear(h, d, bias=b)  # W_2 / W_down
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: Tensor) -> Tensor:
        """(B, T, d) -> (B, T, d), each position on its own."""
        _check_hidden("x", x, self.down_proj.weight)
        if self.swiglu:
            h = F.silu(self.gate_proj(x)) * self.up_proj(x)  # (B, T, d_ff)
        else:
            # (B, T, d_ff)
            h = F.gelu(self.up_proj(x), approximate=self.approximate)
        return self.dropout(self.down_proj(h))


class Block(nn.Module):
    r"""One pre-norm transformer block: causal self-attention then MLP, each inside a residual.

    .. math::

        h \leftarrow h + \mathrm{Attn}(\mathrm{Norm}_1(h)),\qquad
        h \leftarrow h + \mathrm{MLP}(\mathrm{Norm}_2(h))

    Parameters
    ----------
    config : TransformerConfig
        The norms, attention heads and MLP of every block alike.

    Examples
    --------
    >>> from dlref.transformer import Block, TransformerConfig
    >>> block = Block(TransformerConfig(vocab_size=10, max_seq_len=8, d_model=16))
    >>> block(torch.randn(2, 5, 16)).shape
    torch.Size([2, 5, 16])
    """

    def __init__(self, config: TransformerConfig):
        super().__init__()
        check_instance("config", config, TransformerConfig)
        self.norm1 = _norm(config)
        self.attn = MultiHeadAttention(
            config.d_model,
            config.num_heads,
            config.num_kv_heads,
            bias=config.bias,
            dropout=config.dropout,
        )
        self.norm2 = _norm(config)
        self.mlp = MLP(config)
        self.dropout = nn.Dropout(config.dropout)

    def forward(
        self,
        h: Tensor,
        rotary: RotaryEmbedding | None = None,
        kv_cache: KVCache | None = None,
        layer: int = 0,
    ) -> Tensor:
        """(B, T, d) -> (B, T, d)."""
        _check_hidden("h", h, self.mlp.down_proj.weight)
        a = self.attn(
            self.norm1(h),
            is_causal=True,
            rotary=rotary,
            kv_cache=kv_cache,
            layer=layer,
        )
        h = h + self.dropout(a)  # residual around attention
        return h + self.mlp(self.norm2(h))  # residual around the MLP


class Transformer(nn.Module):
    r"""A decoder-only transformer language model (GPT).

    .. math::

        h_0 = E[x_{1:T}] + P_{1:T},\qquad h_\ell = \mathrm{Block}_\ell(h_{\ell-1}),\qquad
        \text{logits} = \mathrm{Norm}(h_L)\, W_{\text{out}}^\top

    :math:`P` is the learned or sinusoidal table (absent for ``'rope'``, which rotates queries
    and keys inside attention, and for ``'none'``). With ``tie_embeddings``,
    :math:`W_{\text{out}} = E`.

    Parameters
    ----------
    config : TransformerConfig

    Examples
    --------
    >>> from dlref.transformer import Transformer, TransformerConfig, count_parameters
    >>> torch.manual_seed(0)
    <torch._C.Generator object at ...>
    >>> cfg = TransformerConfig(vocab_size=10, max_seq_len=16, d_model=32, positional="rope")
    >>> model = Transformer(cfg)
    >>> model(torch.randint(0, 10, (2, 5))).shape  # logits (B, T, V)
    torch.Size([2, 5, 10])
    >>> sum(p.numel() for p in model.parameters()) == count_parameters(cfg)
    True
    """

    def __init__(self, config: TransformerConfig):
        super().__init__()
        check_instance("config", config, TransformerConfig)
        c = self.config = config
        self.tok_emb = nn.Embedding(c.vocab_size, c.d_model)  # E: (V, d)
        self.pos_emb = (
            LearnedPositionalEmbedding(c.max_seq_len, c.d_model)
            if c.positional == "learned"
            else None
        )
        if c.positional == "sinusoidal":
            P = sinusoidal_positional_encoding(c.max_seq_len, c.d_model)
            self.register_buffer("pos_table", P, persistent=False)  # (T_max, d), fixed
        self.rotary = (
            RotaryEmbedding(c.head_dim, c.max_seq_len, c.rope_base)
            if c.positional == "rope"
            else None
        )
        self.dropout = nn.Dropout(c.dropout)
        self.blocks = nn.ModuleList(Block(c) for _ in range(c.num_layers))
        self.norm_f = _norm(c)
        self.lm_head = nn.Linear(c.d_model, c.vocab_size, bias=False)  # W_out: (V, d)
        if c.tie_embeddings:
            self.lm_head.weight = self.tok_emb.weight
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        """GPT-2's initialisation: N(0, 0.02) weights, zero biases."""
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def forward(self, tokens: Tensor, kv_cache: KVCache | None = None) -> Tensor:
        """Logits of the next token at every position.

        Parameters
        ----------
        tokens : Tensor
            (B, T) integer token ids. With ``kv_cache``, only the tokens not yet in the cache:
            they are positions ``kv_cache.seq_len …``.
        kv_cache : dlref.attention.KVCache, optional
            From :meth:`new_kv_cache`; updated in place.

        Returns
        -------
        Tensor
            (B, T, V).
        """
        check_index_tensor("tokens", tokens, self.config.vocab_size, "the vocabulary")
        check_shape("tokens", tokens, (None, None), "(B, T)")
        check_optional("kv_cache", kv_cache, KVCache)
        tokens = tokens.long()  # torch's embedding takes no uint8 or int8 indices
        T = tokens.shape[1]
        offset = kv_cache.seq_len if kv_cache is not None else 0  # position of tokens[:, 0]
        if offset + T > self.config.max_seq_len:
            raise ValueError(
                f"positions {offset}..{offset + T - 1} exceed max_seq_len={self.config.max_seq_len}"
            )
        h = self.tok_emb(tokens)  # E[x]: (B, T, d)
        if self.pos_emb is not None:
            h = h + self.pos_emb(T, offset)  # + P: (T, d) broadcast over B
        elif self.config.positional == "sinusoidal":
            h = h + self.pos_table[offset : offset + T]
        h = self.dropout(h)
        for i, block in enumerate(self.blocks):
            h = block(h, rotary=self.rotary, kv_cache=kv_cache, layer=i)  # (B, T, d)
        return self.lm_head(self.norm_f(h))  # (B, T, V)

    def new_kv_cache(self, batch_size: int, max_seq_len: int | None = None) -> KVCache:
        """An empty :class:`~dlref.attention.KVCache` for this model (its dtype and device)."""
        c, w = self.config, self.tok_emb.weight
        if max_seq_len is not None:
            check_int("max_seq_len", max_seq_len, minimum=0)
        return KVCache(
            c.num_layers,
            batch_size,
            c.num_kv_heads,
            c.max_seq_len if max_seq_len is None else max_seq_len,
            c.head_dim,
            dtype=w.dtype,
            device=w.device,
        )

    @torch.no_grad()
    def next_token_log_probs(self, tokens: Tensor, kv_cache: KVCache | None = None) -> Tensor:
        r"""Log-probabilities of the next token after each sequence: a decoding ``step_fn``.

        .. math:: \log p(x_{T+1} \mid x_{1:T}) = \mathrm{log\_softmax}(\text{logits}_T)

        Without a cache the whole prefix is recomputed. With one, only the tokens after
        ``kv_cache.seq_len`` are fed, so a decoder that appends one token per call pays for
        one position per call. Beam search, which reorders the sequences, must reorder the
        cache too (:meth:`~dlref.attention.KVCache.reorder`) or use no cache.

        Parameters
        ----------
        tokens : Tensor
            (N, T) the whole sequences so far.
        kv_cache : dlref.attention.KVCache, optional

        Returns
        -------
        Tensor
            (N, V) log-probabilities.

        Examples
        --------
        >>> from dlref.transformer import Transformer, TransformerConfig
        >>> torch.manual_seed(0)
        <torch._C.Generator object at ...>
        >>> model = Transformer(TransformerConfig(vocab_size=10, max_seq_len=16)).eval()
        >>> step_fn = model.next_token_log_probs  # tokens (N, T) -> log-probs (N, V)
        >>> log_p = step_fn(torch.tensor([[1, 2, 3]]))
        >>> log_p.shape, f"{log_p.exp().sum():.6f}"  # a distribution over the 10 tokens
        (torch.Size([1, 10]), '1.000000')
        """
        check_index_tensor("tokens", tokens, self.config.vocab_size, "the vocabulary")
        check_shape("tokens", tokens, (None, None), "(N, T)")
        check_optional("kv_cache", kv_cache, KVCache)
        new = tokens if kv_cache is None else tokens[:, kv_cache.seq_len :]
        if new.shape[1] == 0:
            raise ValueError(
                f"tokens has {tokens.shape[1]} positions, all already in the cache "
                f"(seq_len={kv_cache.seq_len}): nothing to predict from"
            )
        logits = self(new, kv_cache)[:, -1]  # (N, V), the last position
        return torch.log_softmax(logits, dim=-1)

    @torch.no_grad()
    def generate(self, tokens: Tensor, max_new_tokens: int, *, use_cache: bool = True) -> Tensor:
        """Greedy decoding: append the most likely token ``max_new_tokens`` times.

        Parameters
        ----------
        tokens : Tensor
            (B, T) prompt.
        max_new_tokens : int
        use_cache : bool
            Default ``True``. Keep keys and values in a :class:`~dlref.attention.KVCache` (one
            position per step) instead of recomputing the whole prefix each step. Same tokens
            either way.

        Returns
        -------
        Tensor
            (B, T + max_new_tokens).

        Examples
        --------
        With and without the cache, the same tokens:

        >>> from dlref.transformer import Transformer, TransformerConfig
        >>> torch.manual_seed(0)
        <torch._C.Generator object at ...>
        >>> model = Transformer(TransformerConfig(vocab_size=10, max_seq_len=16)).eval()
        >>> prompt = torch.tensor([[1, 2, 3]])
        >>> torch.equal(model.generate(prompt, 8), model.generate(prompt, 8, use_cache=False))
        True
        """
        check_index_tensor("tokens", tokens, self.config.vocab_size, "the vocabulary")
        check_shape("tokens", tokens, (None, None), "(B, T)")
        if tokens.shape[1] == 0:
            raise ValueError("tokens must hold a prompt of at least one token, got shape (B, 0)")
        max_new_tokens = check_int("max_new_tokens", max_new_tokens, minimum=0)
        check_bool("use_cache", use_cache)
        tokens = tokens.long()
        cache = (
            self.new_kv_cache(tokens.shape[0], tokens.shape[1] + max_new_tokens)
            if use_cache
            else None
        )
        for _ in range(max_new_tokens):
            logp = self.next_token_log_probs(tokens, cache)  # (B, V)
            tokens = torch.cat([tokens, logp.argmax(dim=-1, keepdim=True)], dim=1)
        return tokens
