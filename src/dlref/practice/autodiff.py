"""Exercise on gradient checking (reference: :func:`dlref.autodiff.finite_difference_grad`)."""

from __future__ import annotations

import torch
from torch import Tensor

from dlref import autodiff
from dlref.practice._cases import DT, bad_input, randn, shape_check, tensor, values_check
from dlref.practice._grader import Check, Mistake, register

PAGE = "topics/autodiff.html"


class Function:
    """A scalar function of a tensor with a readable repr, for the report.

    Parameters
    ----------
    text : str
        The formula, shown as ``f(x) = text`` when the report prints an input.
    fn : callable
        Maps a tensor to a 0-d tensor.

    Examples
    --------
    >>> import torch
    >>> from dlref.practice.autodiff import Function
    >>> f = Function("sum(x**2)", lambda x: (x**2).sum())
    >>> f
    f(x) = sum(x**2)
    >>> f(torch.tensor([1.0, 2.0], dtype=torch.float64))
    tensor(5., dtype=torch.float64)
    """

    def __init__(self, text: str, fn):
        self.text, self.fn = text, fn

    def __call__(self, x: Tensor) -> Tensor:
        return self.fn(x)

    def __repr__(self) -> str:
        return f"f(x) = {self.text}"


F_CUBIC = Function("sum(x**3 * sin(x))", lambda x: (x**3 * x.sin()).sum())
F_SOFTPLUS = Function("sum(log(1 + exp(2 x)))", lambda x: torch.nn.functional.softplus(2 * x).sum())


def finite_difference_grad_reference(f, x: Tensor, eps: float = 1e-6) -> Tensor:
    """The reference: :func:`dlref.autodiff.finite_difference_grad` (central differences).

    Parameters
    ----------
    f : callable
        Maps a tensor shaped like ``x`` to a 0-d tensor.
    x : Tensor
        The point, floating point, any shape.
    eps : float, default 1e-6
        The step.

    Returns
    -------
    Tensor
        The gradient of ``f`` at ``x``, shaped like ``x``.

    Examples
    --------
    >>> import torch
    >>> from dlref.practice.autodiff import F_CUBIC, finite_difference_grad_reference
    >>> x = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64, requires_grad=True)
    >>> g = finite_difference_grad_reference(F_CUBIC, x.detach())  # F_CUBIC: sum(x**3 sin(x))
    >>> torch.allclose(g, torch.autograd.grad(F_CUBIC(x), x)[0])
    True
    >>> finite_difference_grad_reference(lambda v: (v**2).sum(), x.detach())  # exact: 2x
    tensor([ 1.0000, -2.0000,  4.0000], dtype=torch.float64)
    """
    return autodiff.finite_difference_grad(f, x, eps)


def _fd(f, x, eps=1e-6, how=""):
    grad = torch.empty_like(x)
    flat = grad.view(-1)
    for i in range(x.numel()):
        e = torch.zeros_like(x).view(-1)
        e[i] = eps
        e = e.view_as(x)
        if how == "forward":
            flat[i] = (f(x + e) - f(x)) / eps
        elif how == "no_2":
            flat[i] = (f(x + e) - f(x - e)) / eps
        else:
            flat[i] = (f(x + eps) - f(x - eps)) / (2 * eps)  # every coordinate at once
    return grad


def _v(how):
    def fn(f, x, eps=1e-6):
        return _fd(f, x, eps, how)

    return fn


STUB = r'''
import torch
from torch import Tensor


def finite_difference_grad(f, x: Tensor, eps: float = 1e-6) -> Tensor:
    r"""Gradient of a scalar function f at x by central differences, one coordinate at a time.

        df/dx_i ~ (f(x + eps e_i) - f(x - eps e_i)) / (2 eps),   e_i the i-th unit vector

    f: maps a tensor shaped like x to a 0-d tensor; x: float64, any shape. Returns a tensor
    shaped like x. Raise a ValueError for eps <= 0.
    """
    raise NotImplementedError
'''

register(
    reference=finite_difference_grad_reference,
    stub=STUB,
    summary="a gradient by central differences, for checking backward passes",
    checks=(
        shape_check(lambda: [{"f": F_CUBIC, "x": randn(3, seed=0)}]),
        values_check(lambda: [{"f": F_CUBIC, "x": tensor([1.0, -2.0]), "eps": 1e-3}]),
        Check(
            "random shapes",
            lambda: [
                {"f": F_SOFTPLUS, "x": randn(2, 3, seed=1), "eps": 1e-3},
                {"f": F_CUBIC, "x": randn(2, 2, 2, seed=2)},
            ],
        ),
        Check(
            "edge: a 0-d x, an empty x",
            lambda: [
                {"f": F_CUBIC, "x": tensor(0.5), "eps": 1e-3},
                {"f": F_CUBIC, "x": torch.zeros(0, dtype=DT)},
            ],
        ),
        bad_input(
            "eps = 0",
            "a step of 0 divides by 0",
            lambda: [{"f": F_CUBIC, "x": tensor([1.0]), "eps": 0.0}],
        ),
    ),
    difficulty="easy",
    page=f"{PAGE}#key-equations",
    mistakes=(
        Mistake(
            "forward_difference",
            _v("forward"),
            "(f(x + eps e_i) - f(x)) / eps is a forward difference, with an O(eps) error; "
            "the central difference uses f(x + eps e_i) - f(x - eps e_i), error O(eps^2).",
            f"{PAGE}#key-equations",
        ),
        Mistake(
            "missing_2",
            _v("no_2"),
            "the two points are 2 eps apart: divide by 2 eps, not eps.",
            f"{PAGE}#key-equations",
        ),
        Mistake(
            "all_coordinates_at_once",
            _v("all_at_once"),
            "x + eps moves every coordinate at once (a directional derivative along "
            "(1, ..., 1)); move one coordinate at a time, x + eps e_i.",
            f"{PAGE}#key-equations",
        ),
    ),
)
