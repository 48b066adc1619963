r"""Positional encodings: where a token sits, told to attention, which has no idea of order.

.. math::

    P_{m, 2i} = \sin(m\, \omega_i),\quad P_{m, 2i+1} = \cos(m\, \omega_i),\qquad
    \langle R_m q, R_n k \rangle = \langle q, R_{n-m} k \rangle

Three families: :func:`sinusoidal_positional_encoding` (absolute, fixed: added to the token
embeddings), :class:`LearnedPositionalEmbedding` (absolute, learned, GPT-2) and
:class:`RotaryEmbedding` with :func:`apply_rotary` (RoPE: queries and keys rotated by their
positions, so a score depends on the offset only; Llama, GPT-NeoX).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from dlref._checks import (
    check_at_most,
    check_broadcasts_to,
    check_even,
    check_factory,
    check_float,
    check_int,
    check_positive_finite,
    check_shape,
)

__all__ = [
    "sinusoidal_positional_encoding",
    "apply_rotary",
    "RotaryEmbedding",
    "LearnedPositionalEmbedding",
]


def _angles(num_positions: int, dim: int, base: float, device=None) -> Tensor:
    """The angles m ω_i, ω_i = base^(-2i/dim), in float64: (num_positions, dim/2).

    Positions m = 0 … num_positions - 1, pairs i = 0 … dim/2 - 1: the sinusoidal table and RoPE
    both turn by them.
    """
    two_i = torch.arange(0, dim, 2, dtype=torch.float64, device=device)  # 2i
    omega = base ** (-two_i / dim)  # ω_i = base^(-2i/dim)
    m = torch.arange(num_positions, dtype=torch.float64, device=device)  # (T,)
    return m.outer(omega)  # m ω_i: (T, dim/2)


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
    >>> from dlref.positional import sinusoidal_positional_encoding
    >>> sinusoidal_positional_encoding(3, 4, base=100.0)  # omega = (1, 0.1)
    tensor([[ 0.0000,  1.0000,  0.0000,  1.0000],
            [ 0.8415,  0.5403,  0.0998,  0.9950],
            [ 0.9093, -0.4161,  0.1987,  0.9801]])
    """
    num_positions = check_int("num_positions", num_positions, minimum=0)
    embed_dim = check_int("embed_dim", embed_dim)
    check_even("embed_dim", embed_dim)  # (sin, cos) pairs
    base = check_positive_finite("base", base)
    check_factory(device, dtype)
    angles = _angles(num_positions, embed_dim, base, device)  # m ω_i: (T, d/2)
    P = torch.empty(num_positions, embed_dim, dtype=torch.float64, device=device)
    P[:, 0::2] = torch.sin(angles)  # P_{m, 2i}
    P[:, 1::2] = torch.cos(angles)  # P_{m, 2i+1}
    return P.to(dtype or torch.get_default_dtype())


def apply_rotary(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    r"""Rotate each feature pair :math:`(x_i, x_{i + D/2})` by the angle :math:`m\theta_i`.

    .. math::

        \begin{pmatrix} y_i \\ y_{i+D/2} \end{pmatrix} =
        \begin{pmatrix} \cos m\theta_i & -\sin m\theta_i \\ \sin m\theta_i & \cos m\theta_i
        \end{pmatrix}
        \begin{pmatrix} x_i \\ x_{i+D/2} \end{pmatrix}

    This is the "rotate half" pairing of GPT-NeoX and Hugging Face's Llama; RoFormer and Meta's
    Llama code pair neighbours :math:`(x_{2i}, x_{2i+1})`, which is the same up to a fixed
    permutation of the features.

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
    >>> from dlref.positional import apply_rotary
    >>> x = torch.tensor([[1.0, 0.0]])  # one position, D = 2
    >>> apply_rotary(x, torch.tensor([[0.0]]), torch.tensor([[1.0]]))  # a quarter turn
    tensor([[0., 1.]])
    """
    check_float("x", x)
    check_float("cos", cos)
    check_float("sin", sin)
    check_shape("x", x, (..., None), "(..., T, D)")
    check_even("D, the last dimension of x,", x.shape[-1])
    half = (*x.shape[:-1], x.shape[-1] // 2)  # (..., T, D/2)
    check_broadcasts_to("cos", cos, half, "(..., T, D/2) =")
    check_broadcasts_to("sin", sin, half, "(..., T, D/2) =")
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
    >>> from dlref.positional import RotaryEmbedding
    >>> rope = RotaryEmbedding(head_dim=4, max_seq_len=8)
    >>> q = torch.ones(1, 1, 4)  # (heads, T, D)
    >>> rope(q, offset=0)  # position 0: no rotation
    tensor([[[1., 1., 1., 1.]]])
    """

    def __init__(
        self, head_dim: int, max_seq_len: int, base: float = 10000.0, device=None, dtype=None
    ):
        super().__init__()
        head_dim = check_int("head_dim", head_dim)
        check_even("head_dim", head_dim)  # (x_i, x_{i+D/2}) pairs
        max_seq_len = check_int("max_seq_len", max_seq_len)
        base = check_positive_finite("base", base)
        check_factory(device, dtype)
        self.head_dim, self.max_seq_len, self.base = head_dim, max_seq_len, base
        angles = _angles(max_seq_len, head_dim, base)  # m θ_i, θ_i = base^(-2i/D): (T, D/2)
        dtype = dtype or torch.get_default_dtype()
        self.register_buffer("cos", angles.cos().to(device=device, dtype=dtype), persistent=False)
        self.register_buffer("sin", angles.sin().to(device=device, dtype=dtype), persistent=False)

    def forward(self, x: Tensor, offset: int = 0) -> Tensor:
        """Rotate x of shape (..., T, D) as positions ``offset … offset + T - 1``."""
        check_float("x", x)
        check_shape("x", x, (..., None, self.head_dim), "(..., T, head_dim)")
        offset = check_int("offset", offset, minimum=0)
        T = x.shape[-2]
        check_at_most("offset + T (x's length)", offset + T, self.max_seq_len)
        cos = self.cos[offset : offset + T].to(x.dtype)  # cos m θ_i: (T, D/2)
        sin = self.sin[offset : offset + T].to(x.dtype)  # sin m θ_i: (T, D/2)
        return apply_rotary(x, cos, sin)


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
    >>> from dlref.positional import LearnedPositionalEmbedding
    >>> pe = LearnedPositionalEmbedding(max_seq_len=16, embed_dim=8)
    >>> pe(3, offset=2).shape  # positions 2, 3, 4
    torch.Size([3, 8])
    >>> sum(p.numel() for p in pe.parameters())
    128
    """

    def __init__(self, max_seq_len: int, embed_dim: int, device=None, dtype=None):
        max_seq_len = check_int("max_seq_len", max_seq_len)
        embed_dim = check_int("embed_dim", embed_dim)
        check_factory(device, dtype)
        super().__init__(max_seq_len, embed_dim, device=device, dtype=dtype)

    def forward(self, seq_len: int, offset: int = 0) -> Tensor:  # type: ignore[override]
        """The vectors of positions ``offset … offset + seq_len - 1``: (seq_len, embed_dim)."""
        seq_len = check_int("seq_len", seq_len, minimum=0)
        offset = check_int("offset", offset, minimum=0)
        check_at_most("offset + seq_len", offset + seq_len, self.num_embeddings)  # the table
        return self.weight[offset : offset + seq_len]
