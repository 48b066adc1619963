r"""Automatic differentiation, small enough to read in one sitting."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

__all__ = ["finite_difference_grad"]


def finite_difference_grad(f: Callable[[Tensor], Tensor], x: Tensor, eps: float = 1e-6) -> Tensor:
    r"""Gradient of a scalar function by central differences.

    .. math::

        \frac{\partial f}{\partial x_i}
        \approx \frac{f(x + \varepsilon e_i) - f(x - \varepsilon e_i)}{2\varepsilon}

    The truncation error is :math:`O(\varepsilon^2)` and the round-off error
    :math:`O(u / \varepsilon)` for unit round-off :math:`u`, so in float64 an ``eps`` near
    :math:`u^{1/3} \approx 10^{-5}` to :math:`10^{-6}` is best. Costs :math:`2n` calls of ``f``.

    Parameters
    ----------
    f : callable
        Maps a tensor shaped like ``x`` to a scalar (0-d) tensor.
    x : Tensor
        Point at which to differentiate, floating point, any shape.
    eps : float, default 1e-6
        Step :math:`\varepsilon`.

    Returns
    -------
    Tensor
        Same shape and dtype as ``x``.

    Examples
    --------
    >>> import torch
    >>> from dlref.autodiff import finite_difference_grad
    >>> x = torch.tensor([1.0, 2.0], dtype=torch.float64)
    >>> finite_difference_grad(lambda v: (v**2).sum(), x)  # exact: 2x
    tensor([2.0000, 4.0000], dtype=torch.float64)
    """
    if not isinstance(x, Tensor) or not x.is_floating_point():
        raise TypeError(f"x must be a floating-point torch.Tensor, got {type(x).__name__}")
    if not eps > 0:
        raise ValueError(f"eps must be positive, got {eps}")
    x = x.detach()
    grad = torch.empty_like(x)
    flat = grad.view(-1)
    for i in range(x.numel()):
        step = torch.zeros_like(x).view(-1)
        step[i] = eps  # eps * e_i
        step = step.view_as(x)
        flat[i] = (f(x + step) - f(x - step)) / (2 * eps)
    return grad
