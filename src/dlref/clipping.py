r"""Gradient clipping: rescale the whole gradient to a maximum norm, or clamp each entry.

Both functions have the names, arguments, defaults and results of
:func:`torch.nn.utils.clip_grad_norm_` and :func:`torch.nn.utils.clip_grad_value_`: they change
``.grad`` in place, between ``loss.backward()`` and ``optimizer.step()``. Two differences:
``max_norm`` and ``clip_value`` are Python numbers (torch also takes a tensor), and ``foreach``
is accepted and ignored. Norm clipping is the
remedy for exploding gradients of Pascanu, Mikolov and Bengio (2013): it shortens a gradient
that is too long and keeps its direction.
"""

from __future__ import annotations

import types
import warnings
from collections.abc import Iterable

import torch
from torch import Tensor

from dlref._checks import check_bool, check_real

__all__ = ["clip_grad_norm_", "clip_grad_value_"]


def _grads(parameters: Tensor | Iterable[Tensor]) -> list[Tensor]:
    """The ``.grad`` of each parameter that has one (a single tensor counts as one)."""
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    elif isinstance(parameters, types.GeneratorType):
        parameters = list(parameters)
        if not parameters:
            warnings.warn(
                "`parameters` is an empty generator, no gradient clipping will occur.",
                stacklevel=4,  # _grads, clip_grad_*_, torch.no_grad's wrapper, the caller
            )
    return [p.grad for p in parameters if p.grad is not None]


@torch.no_grad()
def clip_grad_norm_(
    parameters,
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
    foreach: bool | None = None,
) -> Tensor:
    r"""Scale all gradients together so that their joint norm is at most ``max_norm``.

    .. math::

        \|g\|_p = \Bigl\|\bigl(\|g_1\|_p, \dots, \|g_K\|_p\bigr)\Bigr\|_p,\qquad
        g_k \leftarrow g_k \cdot \min\Bigl(1, \frac{\text{max\_norm}}{\|g\|_p + 10^{-6}}\Bigr)

    The norm is that of all gradients concatenated into one vector (for :math:`p = \infty`, the
    largest :math:`|g|`). Only the length of the gradient changes, never its direction. The
    :math:`10^{-6}` is torch's; the factor is applied even when it is 1, as in torch.

    Parameters
    ----------
    parameters
        A tensor or an iterable of tensors (e.g. ``model.parameters()``) whose ``.grad`` is
        scaled in place; those without one are skipped.
    max_norm : float
        Largest allowed norm.
    norm_type : float, default 2.0
        :math:`p`; ``float('inf')`` (or ``'inf'``) for the max norm.
    error_if_nonfinite : bool, optional
        If True, raise ``RuntimeError`` when the total norm is nan or inf. If False, the
        gradients are scaled by the non-finite factor anyway, as in torch (an inf norm turns
        every gradient into zeros and nans). Default False.
    foreach : bool, optional
        Accepted for compatibility with torch and ignored: one tensor at a time.

    Returns
    -------
    Tensor
        The total norm :math:`\|g\|_p` before clipping, a scalar; ``tensor(0.)`` when no
        parameter has a gradient.

    Examples
    --------
    >>> import torch
    >>> from dlref.clipping import clip_grad_norm_
    >>> w = torch.zeros(2, requires_grad=True)
    >>> w.grad = torch.tensor([30.0, 40.0])
    >>> clip_grad_norm_([w], max_norm=1.0)  # returns the norm before clipping
    tensor(50.)
    >>> w.grad  # same direction, norm 1
    tensor([0.6000, 0.8000])
    """
    check_real("max_norm", max_norm)
    # torch takes the string "inf" too
    norm_type = float("inf") if norm_type == "inf" else norm_type
    check_real("norm_type", norm_type)
    check_bool("error_if_nonfinite", error_if_nonfinite)
    grads = _grads(parameters)
    if not grads:
        return torch.tensor(0.0)
    p = float(norm_type)
    # ||g_k||_p for each parameter, then ||g||_p of those norms
    norms = [torch.linalg.vector_norm(g, p).to(grads[0].device) for g in grads]
    total_norm = torch.linalg.vector_norm(torch.stack(norms), p)
    if error_if_nonfinite and not torch.isfinite(total_norm):
        raise RuntimeError(
            f"The total norm of order {p} for gradients from `parameters` "
            "is non-finite, so it cannot be clipped. To disable this error "
            "and scale the gradients by the non-finite norm anyway, set "
            "`error_if_nonfinite=False`"
        )
    # min(1, max_norm / (||g||_p + 1e-6))
    coef = torch.clamp(float(max_norm) / (total_norm + 1e-6), max=1.0)
    for g in grads:
        # g_k <- coef g_k
        g.mul_(coef.to(g.device))
    return total_norm


@torch.no_grad()
def clip_grad_value_(parameters, clip_value: float, foreach: bool | None = None) -> None:
    r"""Clamp every gradient entry to :math:`[-\text{clip\_value}, \text{clip\_value}]`, in place.

    .. math:: g_j \leftarrow \max(-v, \min(v, g_j))

    Unlike :func:`clip_grad_norm_` this changes the direction of the gradient.

    Parameters
    ----------
    parameters
        A tensor or an iterable of tensors (e.g. ``model.parameters()``) whose ``.grad`` is
        clamped in place.
    clip_value : float
        :math:`v`, the largest allowed absolute value.
    foreach : bool, optional
        Accepted for compatibility with torch and ignored.

    Examples
    --------
    >>> import torch
    >>> from dlref.clipping import clip_grad_value_
    >>> w = torch.zeros(3, requires_grad=True)
    >>> w.grad = torch.tensor([-5.0, 0.5, 30.0])
    >>> clip_grad_value_(w, 1.0)
    >>> w.grad
    tensor([-1.0000,  0.5000,  1.0000])
    """
    check_real("clip_value", clip_value)
    v = float(clip_value)
    for g in _grads(parameters):
        g.clamp_(min=-v, max=v)  # g_j <- max(-v, min(v, g_j))
