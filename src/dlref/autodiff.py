r"""Automatic differentiation, small enough to read in one sitting.

Two ways of applying the chain rule to a graph of elementary operations:

- **reverse mode** (:class:`Scalar`, backpropagation): each node carries the adjoint
  :math:`\bar v = \partial L / \partial v`; one backward pass gives the whole gradient of a
  scalar output;
- **forward mode** (:class:`Dual`, dual numbers): each value carries its tangent
  :math:`\dot v = \partial v / \partial x` along one input direction; one pass gives one
  directional derivative.

Both use the same table of local derivatives below. Values are Python floats and follow Python's
float arithmetic: where ``math`` raises (division by zero, ``exp`` overflow) so do these classes,
and ``log`` of a non-positive value raises :class:`ValueError` instead of returning ``nan`` or
``-inf`` as :func:`torch.log` does, so that a bad value is caught at the operation that made it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from dlref._checks import (
    check_callable,
    check_float,
    check_positive_finite,
    check_real,
    is_real_number,
)

__all__ = [
    "Scalar",
    "Dual",
    "reverse_mode_grad",
    "forward_mode_grad",
    "finite_difference_grad",
]


# ---------------------------------------------------------------------------------------------
# Local derivatives, shared by both modes: a rule returns the value and its partial derivatives.
# ---------------------------------------------------------------------------------------------


def _log(x: float) -> float:
    if not x > 0:
        raise ValueError(f"log needs a positive input, got {x!r}")
    return math.log(x)


def _sigmoid(x: float) -> float:
    if x >= 0:  # 1 / (1 + e^{-x}), and e^{-x} <= 1
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)  # e^x / (1 + e^x), and e^x < 1
    return e / (1.0 + e)


# name: (f, f')
_UNARY: dict[str, tuple[Callable[[float], float], Callable[[float], float]]] = {
    "exp": (math.exp, math.exp),
    "log": (_log, lambda x: 1.0 / x),
    "tanh": (math.tanh, lambda x: 1.0 - math.tanh(x) ** 2),
    "sigmoid": (_sigmoid, lambda x: _sigmoid(x) * (1.0 - _sigmoid(x))),
    # relu'(0) = 0 as in torch; nan stays nan (nan > 0 is False, but torch passes nan through)
    "relu": (lambda x: 0.0 if x <= 0 else x, lambda x: 0.0 if x <= 0 else 1.0),
}

# name: f and f' in words, the docstring of the method x.name() of both classes
_UNARY_DOCS = {
    "exp": r":math:`e^x`, with derivative :math:`e^x`.",
    "log": r":math:`\log x` for :math:`x > 0` (else ``ValueError``), with derivative :math:`1/x`.",
    "tanh": r":math:`\tanh x`, with derivative :math:`1 - \tanh^2 x`.",
    "sigmoid": r":math:`\sigma(x) = 1/(1 + e^{-x})`, with derivative :math:`\sigma(1 - \sigma)`.",
    "relu": r":math:`\max(x, 0)`, with derivative :math:`[x > 0]` (0 at :math:`x = 0`, as torch).",
}

# (a, b) -> (f(a, b), df/da, df/db)
_BINARY: dict[str, Callable[[float, float], tuple[float, float, float]]] = {
    "add": lambda a, b: (a + b, 1.0, 1.0),
    "sub": lambda a, b: (a - b, 1.0, -1.0),
    "mul": lambda a, b: (a * b, b, a),
    "div": lambda a, b: (a / b, 1.0 / b, -a / (b * b)),
}


def _power(x: float, k: float) -> tuple[float, float]:
    """x^k and k x^(k-1), for a constant k, with torch's values at x = 0.

    0^0 = 1 with derivative 0; for 0 < k < 1 the derivative at 0 is inf. 0^k with k < 0 raises
    ZeroDivisionError, as Python's float arithmetic does.
    """
    if not is_real_number(k):
        raise TypeError(
            f"exponent k of x ** k must be a real number, got {type(k).__name__}; "
            "for a differentiable exponent y write (y * x.log()).exp()"
        )
    if x < 0 and not float(k).is_integer():
        raise ValueError(f"x ** k with x < 0 needs an integer k, got x = {x!r} and k = {k!r}")
    if k == 0:  # x^0 = 1 for every x, 0^0 included, with derivative 0 (as torch)
        return 1.0, 0.0
    value = float(x**k)  # 0 ** k with k < 0 raises ZeroDivisionError, as 1 / 0 does
    if x == 0 and k < 1:  # k x^(k-1) with 0 < k < 1: the slope at 0 is infinite (torch: inf)
        return value, math.inf
    return value, float(k * x ** (k - 1))


def _operators(rule: str) -> tuple[Callable, Callable]:
    """``a op b`` and its reflected form ``b op a`` (``__radd__`` for ``2 + x``), for a rule of
    ``_BINARY``: both call the class's ``_binary``, which says what an operation keeps."""

    def forward(self, other):
        return self._binary(other, rule)

    def reflected(self, other):
        return self._binary(other, rule, reflected=True)

    return forward, reflected


def _unary_method(name: str) -> Callable:
    """The method ``x.name()`` (``x.exp()``): it calls the class's ``_unary(name)``, which keeps
    the derivative (Scalar) or multiplies the tangent by it (Dual)."""

    def method(self):
        return self._unary(name)

    method.__name__, method.__doc__ = name, _UNARY_DOCS[name]
    return method


# ---------------------------------------------------------------------------------------------
# Reverse mode
# ---------------------------------------------------------------------------------------------


class Scalar:
    r"""A scalar that records how it was computed, so ``backward()`` can apply the chain rule.

    Each node :math:`v_i` keeps its parents :math:`v_j` and the local partial derivatives
    :math:`\partial v_i / \partial v_j`. ``backward()`` visits the nodes in reverse
    topological order and applies the adjoint recurrence

    .. math::

        \bar v_L = \frac{\partial L}{\partial L} = 1,\qquad
        \bar v_j = \sum_{i\,:\,j \to i} \bar v_i\, \frac{\partial v_i}{\partial v_j}

    where the sum runs over every use of :math:`v_j`, so a node used twice (``x * x``) or shared
    by two branches receives both contributions.

    Supports ``+``, ``-``, ``*``, ``/`` with a Scalar or a Python number on either side, unary
    ``-``, ``x ** k`` for a number ``k``, and ``exp()``, ``log()``, ``tanh()``, ``sigmoid()``,
    ``relu()``.

    Parameters
    ----------
    data : float
        The value. A Scalar made by the user is a leaf; Scalars made by operations are
        intermediate nodes.

    Attributes
    ----------
    data : float
        The value.
    grad : float
        :math:`\partial L / \partial v` after ``L.backward()``. Leaves accumulate over calls of
        ``backward()`` (as torch's ``.grad``); intermediate nodes hold the last call's
        value.

    Examples
    --------
    >>> from dlref.autodiff import Scalar
    >>> x, y = Scalar(2.0), Scalar(3.0)
    >>> L = x * y + x.tanh()
    >>> L.backward()  # dL/dx = y + 1 - tanh(x)^2, dL/dy = x
    >>> L
    Scalar(data=6.9640, grad=1.0000)
    >>> x, y
    (Scalar(data=2.0000, grad=3.0707), Scalar(data=3.0000, grad=2.0000))
    """

    __slots__ = ("data", "grad", "_parents", "_partials")

    def __init__(self, data: float) -> None:
        check_real("data", data)
        self.data = float(data)
        self.grad = 0.0
        self._parents: tuple[Scalar, ...] = ()
        self._partials: tuple[float, ...] = ()  # d self / d parent, one per parent

    @classmethod
    def _node(cls, value: float, parents: tuple, partials: tuple) -> Scalar:
        out = cls(value)
        out._parents, out._partials = parents, partials
        return out

    def __repr__(self) -> str:
        return f"Scalar(data={self.data:.4f}, grad={self.grad:.4f})"

    # --- operations: the value now, the local derivatives kept for backward -------------------

    def _binary(self, other: object, rule: str, reflected: bool = False) -> Scalar:
        """``a op b``: the value, and the local derivatives kept for backward."""
        if not (isinstance(other, Scalar) or is_real_number(other)):
            return NotImplemented
        a, b = (other, self) if reflected else (self, other)
        av, bv = (v.data if isinstance(v, Scalar) else float(v) for v in (a, b))
        value, da, db = _BINARY[rule](av, bv)
        kept = [(v, d) for v, d in ((a, da), (b, db)) if isinstance(v, Scalar)]  # not constants
        return Scalar._node(value, tuple(v for v, _ in kept), tuple(d for _, d in kept))

    __add__, __radd__ = _operators("add")
    __sub__, __rsub__ = _operators("sub")
    __mul__, __rmul__ = _operators("mul")
    __truediv__, __rtruediv__ = _operators("div")

    def __neg__(self):
        return self * -1.0

    def __pow__(self, k):
        value, d = _power(self.data, k)
        return Scalar._node(value, (self,), (d,))

    def _unary(self, name: str) -> Scalar:
        f, df = _UNARY[name]
        return Scalar._node(f(self.data), (self,), (df(self.data),))

    exp = _unary_method("exp")
    log = _unary_method("log")
    tanh = _unary_method("tanh")
    sigmoid = _unary_method("sigmoid")
    relu = _unary_method("relu")

    # --- the backward pass --------------------------------------------------------------------

    def topological_order(self) -> list[Scalar]:
        r"""Every node this one depends on, each after all of its parents, ``self`` last.

        An iterative depth-first search, so graphs deeper than Python's recursion limit work.

        Returns
        -------
        list of Scalar
            Leaves first, ``self`` last; each node once, however often it is used.

        Examples
        --------
        >>> from dlref.autodiff import Scalar
        >>> x = Scalar(3.0)
        >>> y = x * x + x  # x is used three times
        >>> [v.data for v in y.topological_order()]  # x, x * x, y: each node once
        [3.0, 9.0, 12.0]
        """
        order: list[Scalar] = []
        visited: set[int] = set()
        stack: list[tuple[Scalar, bool]] = [(self, False)]
        while stack:
            node, parents_done = stack.pop()
            if parents_done:
                order.append(node)  # all its parents are already in order
            elif id(node) not in visited:
                visited.add(id(node))
                stack.append((node, True))
                stack.extend((p, False) for p in node._parents if id(p) not in visited)
        return order

    def backward(self, gradient: float = 1.0) -> None:
        r"""Fill ``.grad`` of every node v with :math:`\partial L / \partial v`.

        .. math::

            \bar v_L = \texttt{gradient}\ (= 1),\qquad
            \bar v_j = \sum_{i\,:\,j \to i} \bar v_i\,
                       \frac{\partial v_i}{\partial v_j}
            \quad\text{in reverse topological order}

        ``L`` is self, and the first step is the seed
        :math:`\partial L/\partial L = 1`. On a second call leaves (Scalars made
        by the user) **accumulate**, as in torch's
        ``backward(retain_graph=True)``, so their ``.grad`` doubles exactly and a
        training loop must call ``zero_grad()``; intermediate nodes do not: each
        call recomputes their adjoint from zero (torch keeps no ``.grad`` on
        them, and one kept with ``retain_grad()`` accumulates).

        Parameters
        ----------
        gradient : float, default 1.0
            The seed :math:`\bar v_L`, as torch's ``gradient`` argument.

        Examples
        --------
        >>> from dlref.autodiff import Scalar
        >>> x = Scalar(3.0)
        >>> L = x * x
        >>> L.backward()
        >>> L.grad, x.grad  # dL/dL = 1, dL/dx = 2x
        (1.0, 6.0)
        >>> L.backward()  # leaves accumulate, as in torch
        >>> L.grad, x.grad
        (1.0, 12.0)
        """
        check_real("gradient", gradient)
        adjoint = {id(self): float(gradient)}  # dL/dL = gradient (= 1)
        # children before parents: when a node is reached, every child has
        # added its share to the node's adjoint
        for node in reversed(self.topological_order()):
            v_bar = adjoint.pop(id(node), 0.0)
            if not node._parents:
                node.grad += v_bar  # leaf: accumulates over calls, as torch
                continue
            node.grad = v_bar  # intermediate: this call's adjoint only
            for parent, d in zip(node._parents, node._partials, strict=True):
                # v̄_j += v̄_i ∂v_i/∂v_j
                adjoint[id(parent)] = adjoint.get(id(parent), 0.0) + v_bar * d

    def zero_grad(self) -> None:
        r"""Set ``.grad`` to 0 on this node and every node it depends on, leaves included.

        .. math:: \bar v \leftarrow 0 \quad \text{for every } v \text{ in the graph}

        Examples
        --------
        >>> from dlref.autodiff import Scalar
        >>> x = Scalar(3.0)
        >>> L = 2 * x
        >>> L.backward()
        >>> L.zero_grad()
        >>> x
        Scalar(data=3.0000, grad=0.0000)
        """
        for node in self.topological_order():
            node.grad = 0.0


# ---------------------------------------------------------------------------------------------
# Forward mode
# ---------------------------------------------------------------------------------------------


class Dual:
    r"""A dual number :math:`x + \dot x\,\varepsilon` with :math:`\varepsilon^2 = 0` (forward mode).

    Every operation maps the tangent through the local derivative (one jvp per operation):

    .. math::

        f(x + \dot x\,\varepsilon) = f(x) + f'(x)\,\dot x\,\varepsilon,\qquad
        (a + \dot a\varepsilon)(b + \dot b\varepsilon) = ab + (\dot a b + a \dot b)\,\varepsilon

    so ``f(Dual(x, 1.0)).tangent`` is :math:`f'(x)`: the seed is :math:`dx/dx = 1`. Supports the
    same operations as :class:`Scalar`.

    Parameters
    ----------
    value : float
        :math:`x`.
    tangent : float, default 0.0
        :math:`\dot x = dx/dt` along the chosen input direction; 0 for a constant.

    Examples
    --------
    >>> from dlref.autodiff import Dual
    >>> x = Dual(2.0, 1.0)
    >>> x * x + x.tanh()  # d/dx = 2x + 1 - tanh(x)^2
    Dual(value=4.9640, tangent=4.0707)
    """

    __slots__ = ("value", "tangent")

    def __init__(self, value: float, tangent: float = 0.0) -> None:
        check_real("value", value)
        check_real("tangent", tangent)
        self.value, self.tangent = float(value), float(tangent)

    def __repr__(self) -> str:
        return f"Dual(value={self.value:.4f}, tangent={self.tangent:.4f})"

    def _binary(
        self,
        other: object,
        rule: str,
        reflected: bool = False,
    ) -> Dual:
        """``a op b``: the value, and the tangent by the chain rule."""
        if is_real_number(other):
            other = Dual(other)  # a constant: tangent 0
        elif not isinstance(other, Dual):
            return NotImplemented
        a, b = (other, self) if reflected else (self, other)
        value, da, db = _BINARY[rule](a.value, b.value)
        # ḟ = f_a ȧ + f_b ḃ
        return Dual(value, da * a.tangent + db * b.tangent)

    __add__, __radd__ = _operators("add")
    __sub__, __rsub__ = _operators("sub")
    __mul__, __rmul__ = _operators("mul")
    __truediv__, __rtruediv__ = _operators("div")

    def __neg__(self):
        return Dual(-self.value, -self.tangent)

    def __pow__(self, k):
        value, d = _power(self.value, k)
        return Dual(value, d * self.tangent)

    def _unary(self, name: str) -> Dual:
        f, df = _UNARY[name]
        return Dual(f(self.value), df(self.value) * self.tangent)  # ḟ = f'(x) ẋ

    exp = _unary_method("exp")  # tangent e^x ẋ
    log = _unary_method("log")  # tangent ẋ / x
    tanh = _unary_method("tanh")  # tangent (1 - tanh² x) ẋ
    sigmoid = _unary_method("sigmoid")  # tangent σ(x)(1 - σ(x)) ẋ
    relu = _unary_method("relu")  # tangent [x > 0] ẋ


# ---------------------------------------------------------------------------------------------
# Gradients of f: R^n -> R, three ways
# ---------------------------------------------------------------------------------------------


def _check_point(x: Sequence[float]) -> list[float]:
    """The point x, a non-empty sequence of real numbers, as a list of floats."""
    if isinstance(x, (str, bytes)) or not isinstance(x, Sequence):
        raise TypeError(f"x must be a sequence of real numbers, got {type(x).__name__}")
    bad = [type(v).__name__ for v in x if not is_real_number(v)]
    if bad:
        raise TypeError(f"x must be a sequence of real numbers, got an element of type {bad[0]}")
    if len(x) == 0:
        raise ValueError(
            f"x must hold at least one coordinate (f maps R^n to R, n >= 1), got {x!r}"
        )
    return [float(v) for v in x]


def _scalar_value(f: Callable[[Tensor], Tensor], x: Tensor) -> Tensor | float:
    """f(x), which must be a 0-d tensor or a real number."""
    y = f(x)
    if isinstance(y, Tensor):
        if y.dim() != 0:
            raise ValueError(
                f"f must return a scalar (a 0-d tensor), got a tensor of shape {tuple(y.shape)}: "
                "reduce it first, e.g. f(x).sum()"
            )
        return y.detach()
    if not is_real_number(y):
        raise TypeError(f"f must return a 0-d tensor or a real number, got {type(y).__name__}")
    return float(y)


def reverse_mode_grad(f: Callable[[list[Scalar]], Scalar], x: Sequence[float]) -> list[float]:
    r"""Gradient of :math:`f: \mathbb{R}^n \to \mathbb{R}` with one forward and one backward pass.

    One vector-Jacobian product with the seed :math:`\bar y = 1`:

    .. math:: \nabla f(x)^\top = \bar y\, J_f(x) = 1 \cdot J_f(x)

    Parameters
    ----------
    f : callable
        Takes a list of n :class:`Scalar` and returns one :class:`Scalar`.
    x : list of float
        The point, length n.

    Returns
    -------
    list of float
        :math:`\partial f / \partial x_i`, length n. ``f`` is called once.

    Examples
    --------
    >>> from dlref.autodiff import reverse_mode_grad
    >>> reverse_mode_grad(lambda v: v[0] * v[1] + v[1].exp(), [2.0, 0.0])  # (x1, x0 + e^x1)
    [0.0, 3.0]
    """
    check_callable("f", f)
    xs = [Scalar(v) for v in _check_point(x)]
    y = f(xs)
    if not isinstance(y, Scalar):
        raise TypeError(f"f must return a Scalar, got {type(y).__name__}")
    y.backward()  # dy/dy = 1
    return [v.grad for v in xs]


def forward_mode_grad(f: Callable[[list[Dual]], Dual], x: Sequence[float]) -> list[float]:
    r"""Gradient of :math:`f: \mathbb{R}^n \to \mathbb{R}` with n forward passes of dual numbers.

    One Jacobian-vector product per basis vector :math:`e_i`:

    .. math:: \frac{\partial f}{\partial x_i} = J_f(x)\, e_i,\qquad i = 1, \dots, n

    Parameters
    ----------
    f : callable
        Maps a list of n :class:`Dual` to one :class:`Dual`; it is called n times.
    x : list of float
        As in :func:`reverse_mode_grad`, which returns the same gradient.

    Examples
    --------
    >>> from dlref.autodiff import forward_mode_grad, reverse_mode_grad
    >>> def f(v):
    ...     return v[0] * v[1] + v[1].exp()
    >>> forward_mode_grad(f, [2.0, 0.0])  # (x1, x0 + e^x1), in n = 2 passes
    [0.0, 3.0]
    >>> reverse_mode_grad(f, [2.0, 0.0])  # the same f takes Scalars: one pass and one backward
    [0.0, 3.0]
    """
    check_callable("f", f)
    x = _check_point(x)
    grad = []
    for i in range(len(x)):
        y = f([Dual(v, 1.0 if j == i else 0.0) for j, v in enumerate(x)])  # tangent e_i
        if not isinstance(y, Dual):
            raise TypeError(f"f must return a Dual, got {type(y).__name__}")
        grad.append(y.tangent)
    return grad


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
    check_callable("f", f)
    check_float("x", x)
    check_positive_finite("eps", eps)
    x = x.detach()
    # flat, contiguous buffers: x itself may be a non-contiguous view (a transpose, a slice)
    grad = torch.empty(x.numel(), dtype=x.dtype, device=x.device)
    for i in range(x.numel()):
        step = torch.zeros(x.numel(), dtype=x.dtype, device=x.device)
        step[i] = eps  # eps * e_i
        step = step.view(x.shape)
        up, down = _scalar_value(f, x + step), _scalar_value(f, x - step)
        grad[i] = (up - down) / (2 * eps)
    return grad.view(x.shape)
