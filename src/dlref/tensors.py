r"""Shapes and costs: the broadcasting rule, the shape rule of ``matmul`` and its FLOP count.

Everything here works on shapes alone (a :class:`torch.Size`, tuple or list of ints), so no
tensor is made and nothing is computed. ``broadcast_shapes`` and ``matmul_shape`` return what
:func:`torch.broadcast_shapes` and ``torch.matmul(a, b).shape`` return, and raise
:class:`ValueError` (torch raises :class:`RuntimeError`) with a message that names both shapes,
the dimension where they conflict, and both sizes there.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = ["broadcast_shapes", "matmul_shape", "matmul_flops"]


# ---------------------------------------------------------------------------------------------
# Helpers: read a shape argument, and broadcast shapes while remembering who set each size.
# ---------------------------------------------------------------------------------------------


def _as_shape(name: str, shape, allow_int: bool) -> tuple[int, ...]:
    """``shape`` as a tuple of non-negative ints; an int ``n`` means ``(n,)`` when allowed."""
    if isinstance(shape, Tensor):
        raise TypeError(
            f"{name} must be a shape (a torch.Size, tuple or list of ints), got a Tensor of "
            f"shape {tuple(shape.shape)}: pass its .shape"
        )
    if isinstance(shape, (str, bytes)) or not isinstance(shape, Sequence):
        try:
            n = operator.index(shape)
        except TypeError:
            raise TypeError(
                f"{name} must be an int or a sequence of ints, got {type(shape).__name__} {shape!r}"
            ) from None
        if not allow_int:
            raise TypeError(
                f"{name} must be a shape (a torch.Size, tuple or list of ints), got the int {n}: "
                f"write ({n},) for a 1-D operand"
            )
        shape = (n,)
    dims = []
    for i, d in enumerate(shape):
        try:
            dims.append(operator.index(d))
        except TypeError:
            raise TypeError(
                f"{name} must hold ints, got {type(d).__name__} {d!r} at position {i} of {shape!r}"
            ) from None
    dims = tuple(dims)
    if any(d < 0 for d in dims):
        raise ValueError(f"{name} = {dims} has a negative size: sizes must be >= 0")
    return dims


def _broadcast(shapes: Sequence[tuple[int, ...]]):
    """Broadcast shapes: ``(result, None)``, or ``(None, conflict)``.

    ``conflict = (p, q, dim)`` at the first clash: shapes ``p`` and ``q``
    (indices into ``shapes``) hold different sizes, neither of them 1, at
    ``dim`` counted from the right (-1 is the last).
    """
    ndim = max((len(s) for s in shapes), default=0)
    out = [1] * ndim  # sizes so far, aligned on the right
    owner = [None] * ndim  # which shape set out[j] to a size other than 1
    for q, s in enumerate(shapes):
        for i, d in enumerate(s):
            j = ndim - len(s) + i  # dim i of s is dim j of the result
            if d == 1:
                continue  # a size-1 dim stretches to anything
            if out[j] == 1:
                out[j], owner[j] = d, q
            elif out[j] != d:
                return None, (owner[j], q, j - ndim)
    return torch.Size(out), None


def _clash(name_p: str, shape_p, name_q: str, shape_q, dim: int, from_right: bool = True) -> str:
    """Where two shapes clash: the dim (counted from the right), its index in each, both sizes."""
    i, k = len(shape_p) + dim, len(shape_q) + dim
    where = f"at dim {dim} (dim {i} of {name_p}, dim {k} of {name_q})"
    if not from_right:
        where = f"at dim {i} of {name_p} and dim {k} of {name_q}"
    return (
        f"{where} the sizes are {shape_p[i]} and {shape_q[k]}, and sizes must be equal or one "
        f"of them 1"
    )


def _matmul_shapes(a, b) -> tuple[tuple[int, ...], tuple[int, ...], torch.Size]:
    """Checked shapes of ``a`` and ``b`` and the shape of ``a @ b``."""
    a, b = _as_shape("a", a, allow_int=False), _as_shape("b", b, allow_int=False)
    both = f"a has shape {a} and b has shape {b}"
    if len(a) == 0 or len(b) == 0:
        zero = {(True, False): "a is", (False, True): "b is", (True, True): "both are"}
        raise ValueError(
            f"{both}: matmul needs operands of at least 1 dimension, but "
            f"{zero[len(a) == 0, len(b) == 0]} 0-d "
            f"(multiply by a scalar with *)"
        )
    inner_b = "b[-2]" if len(b) >= 2 else "b[0]"
    d_b = b[-2] if len(b) >= 2 else b[0]
    if a[-1] != d_b:
        raise ValueError(
            f"{both}: the inner dimensions must be equal, but a[-1] = {a[-1]} and "
            f"{inner_b} = {d_b} (a is (..., m, d), b is (..., d, n))"
        )
    # 1-D operands: a (d,) acts as (1, d), b (d,) as (d, 1); the added dim is removed at the end
    batch, conflict = _broadcast([a[:-2], b[:-2]])
    if conflict is not None:
        _, _, dim = conflict
        raise ValueError(
            f"{both}: the batch dimensions a[:-2] = {a[:-2]} and b[:-2] = {b[:-2]} do not "
            f"broadcast: " + _clash("a", a[:-2], "b", b[:-2], dim, from_right=False)
        )
    m = a[-2:-1]  # (m,) or () when a is 1-D
    n = b[-1:] if len(b) >= 2 else ()  # (n,) or () when b is 1-D
    return a, b, torch.Size(batch + m + n)  # (*batch, m, n)


# ---------------------------------------------------------------------------------------------
# Shape rules and costs
# ---------------------------------------------------------------------------------------------


def broadcast_shapes(*shapes) -> torch.Size:
    r"""The shape that tensors of the given shapes broadcast to, as :func:`torch.broadcast_shapes`.

    Shapes are aligned on the right; missing leading dimensions count as size 1. In each
    dimension the sizes must be equal or 1, and the result takes the size that is not 1:

    .. math::

        \mathrm{out}_{-k} =
        \begin{cases}
            1 & \text{if } s_{-k} = 1 \text{ for every shape } s, \\
            c & \text{if every } s_{-k} \in \{1, c\},\ c \ne 1,
        \end{cases}
        \qquad k = 1, \dots, \max_s \operatorname{len}(s),

    where :math:`s_{-k} = 1` when :math:`\operatorname{len}(s) < k`. Any other case is an error.

    Parameters
    ----------
    *shapes : int, torch.Size, tuple or list of int
        Each a :class:`torch.Size`, tuple or list of non-negative ints; an int ``n`` means the
        1-D shape ``(n,)``, as in torch.

    Returns
    -------
    torch.Size
        The broadcast shape; ``torch.Size([])`` when called with no shapes.

    Raises
    ------
    ValueError
        If two shapes do not broadcast (torch raises :class:`RuntimeError` here), naming both
        shapes, the dimension and both sizes; or if a size is negative.
    TypeError
        If a shape is not an int or a sequence of ints (``None`` and tensors included).

    Examples
    --------
    >>> from dlref.tensors import broadcast_shapes
    >>> broadcast_shapes((4, 5, 1, 3), (5, 5, 3))
    torch.Size([4, 5, 5, 3])
    >>> broadcast_shapes(3, (2, 1), [1])
    torch.Size([2, 3])
    >>> broadcast_shapes((4, 5, 1, 3), (2, 5, 3))
    Traceback (most recent call last):
    ...
    ValueError: shapes[0] = (4, 5, 1, 3) and shapes[1] = (2, 5, 3) do not broadcast: at dim -3 ...
    """
    parsed = [_as_shape(f"shapes[{i}]", s, allow_int=True) for i, s in enumerate(shapes)]
    out, conflict = _broadcast(parsed)
    if conflict is not None:
        p, q, dim = conflict
        raise ValueError(
            f"shapes[{p}] = {parsed[p]} and shapes[{q}] = {parsed[q]} do not broadcast: "
            + _clash(f"shapes[{p}]", parsed[p], f"shapes[{q}]", parsed[q], dim)
        )
    return out


def matmul_shape(a, b) -> torch.Size:
    r"""The shape of ``torch.matmul(x, y)`` for ``x`` of shape ``a`` and ``y`` of shape ``b``.

    .. math::

        (\ast_a, m, d) \mathbin{@} (\ast_b, d, n) \;\to\;
        (\mathrm{broadcast}(\ast_a, \ast_b), m, n)

    The leading (batch) dimensions broadcast; the inner dimensions ``d`` must be equal. A 1-D
    ``a`` of shape ``(d,)`` is treated as ``(1, d)`` and a 1-D ``b`` as ``(d, 1)``; the added
    dimension is then removed from the result, so ``(d,) @ (d,)`` is a scalar of shape ``()``
    and ``(m, d) @ (d,)`` has shape ``(m,)``. 0-d operands are an error, as in torch.

    Parameters
    ----------
    a : torch.Size, tuple or list of int
        Shape of the left operand, ``(d,)``, ``(m, d)`` or ``(*batch, m, d)``.
    b : torch.Size, tuple or list of int
        Shape of the right operand, ``(d,)``, ``(d, n)`` or ``(*batch, d, n)``.

    Returns
    -------
    torch.Size
        ``(*batch, m, n)``, without ``m`` when ``a`` is 1-D and without ``n`` when ``b`` is 1-D.

    Raises
    ------
    ValueError
        If an operand is 0-d, the inner dimensions differ, or the batch dimensions do not
        broadcast (torch raises :class:`RuntimeError`); the message names both shapes.
    TypeError
        If ``a`` or ``b`` is not a sequence of ints.

    Examples
    --------
    >>> from dlref.tensors import matmul_shape
    >>> matmul_shape((2, 3), (3, 1))
    torch.Size([2, 1])
    >>> matmul_shape((2, 3), (3,))
    torch.Size([2])
    >>> matmul_shape((8, 1, 4, 3), (5, 3, 2))
    torch.Size([8, 5, 4, 2])
    >>> matmul_shape((8, 4, 3), (8, 4, 3))
    Traceback (most recent call last):
    ...
    ValueError: a has shape (8, 4, 3) and b has shape (8, 4, 3): the inner dimensions must be ...
    """
    return _matmul_shapes(a, b)[2]


def matmul_flops(a, b) -> int:
    r"""Floating-point operations of ``x @ y`` for ``x`` of shape ``a`` and ``y`` of shape ``b``.

    Each output entry is a dot product of length ``d``: ``d`` multiplies and ``d - 1`` adds. We
    count a multiply-add as 2 FLOPs, the convention of FLOP counters such as
    :class:`torch.utils.flop_counter.FlopCounterMode`, so for ``(B, m, d) @ (B, d, n)``

    .. math::

        \text{FLOPs} = 2 \cdot \underbrace{B\, m\, n}_{\text{outputs}} \cdot d,

    which is :math:`B m n d` multiplies plus :math:`B m n d` adds, where the exact number of
    adds is :math:`B m n (d - 1)`. In general FLOPs = 2 · ``numel(matmul_shape(a, b))`` · ``d``,
    with ``B`` the product of the broadcast batch dimensions and ``m = 1`` (``n = 1``) when
    ``a`` (``b``) is 1-D.

    Parameters
    ----------
    a, b : torch.Size, tuple or list of int
        The shapes of the operands, as in :func:`matmul_shape`, which also says what it raises.

    Returns
    -------
    int
        :math:`2 B m n d`.

    Examples
    --------
    >>> from dlref.tensors import matmul_flops
    >>> matmul_flops((2, 3), (3, 4))  # 2 * 2*4 outputs * 3
    48
    >>> matmul_flops((10, 64, 32), (10, 32, 128))  # 2 * B m n d = 2 * 10*64*128*32
    5242880
    >>> matmul_flops((5,), (5,))  # a dot product: 5 multiplies, 4 adds, counted as 10
    10
    """
    a, _, out = _matmul_shapes(a, b)
    d = a[-1]
    return 2 * math.prod(out) * d  # 2 B m n d
