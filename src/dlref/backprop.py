r"""Backpropagation by hand: the chain rule, node by node, checked against autograd.

Four worked derivations, each a forward function and a hand-written backward:

* a sigmoid of a linear function, :math:`L = 1 / (1 + e^{u})`, :math:`u = w_0 x_0 + w_1 x_1 + w_2`;
* a chain of scalar affine nodes with a skip connection, where two paths meet;
* a one-hidden-layer ReLU network :math:`f(x) = w^\top \max(Ax, 0)`, differentiated in :math:`x`;
* a linear layer :math:`Y = XW`, whose backward is two matrix products of the forward's size,
  and a FLOP counter that shows the backward pass costing about twice the forward.

Every gradient here is tested against ``torch.autograd`` and against central differences
(:func:`dlref.autodiff.finite_difference_grad`).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from dlref._checks import (
    check_float,
    check_instance,
    check_same_dtype,
    check_shape,
    is_real_number,
)

__all__ = [
    "sigmoid_loss",
    "sigmoid_loss_backward",
    "skip_forward",
    "skip_backward",
    "relu_net",
    "relu_net_input_grad",
    "linear_backward",
    "forward_backward_flops",
]

# The twelve parameters of the skip network, in the order the nodes run.
_SKIP_PARAMS = (
    "w_a",
    "b_a",
    "w_b",
    "b_b",
    "w_c",
    "b_c",
    "w_d",
    "b_d",
    "w_d2",
    "b_d2",
    "w_e",
    "b_e",
)


# ---------------------------------------------------------------------------------------------
# Helpers: the arguments of the skip network and of the ReLU network.
# ---------------------------------------------------------------------------------------------


def _scalar(name: str, v: float | Tensor) -> Tensor:
    """A Python number or a 0-d floating tensor, as a 0-d tensor (tensors pass through as is)."""
    if isinstance(v, Tensor):
        if v.dim() != 0:
            raise ValueError(f"{name} must be a number or a 0-d tensor, got shape {tuple(v.shape)}")
        check_float(name, v)
        return v
    if is_real_number(v):
        return torch.tensor(float(v))
    raise TypeError(f"{name} must be a number or a 0-d tensor, got {type(v).__name__}")


def _skip_params(params: Mapping[str, float | Tensor]) -> dict[str, Tensor]:
    """The twelve parameters of the skip network, each as a 0-d tensor."""
    if not isinstance(params, Mapping):
        raise TypeError(f"params must be a mapping from name to value, got {type(params).__name__}")
    missing = [k for k in _SKIP_PARAMS if k not in params]
    extra = [k for k in params if k not in _SKIP_PARAMS]
    if missing or extra:
        raise ValueError(
            f"params must have exactly the keys {_SKIP_PARAMS}: "
            f"missing {missing}, unexpected {extra}"
        )
    return {k: _scalar(f"params[{k!r}]", params[k]) for k in _SKIP_PARAMS}


def _check_relu_net(x: Tensor, A: Tensor, w: Tensor) -> None:
    """Floating-point x (d,), A (k, d) and w (k,) of one dtype."""
    for name, t in (("x", x), ("A", A), ("w", w)):
        check_float(name, t)
    check_same_dtype(x=x, A=A, w=w)
    check_shape("A", A, (None, None), "(k, d)")
    check_shape("x", x, (A.shape[1],), "(d,)")
    check_shape("w", w, (A.shape[0],), "(k,)")


# ---------------------------------------------------------------------------------------------
# 1. A sigmoid of a linear function (the study notes)
# ---------------------------------------------------------------------------------------------


def sigmoid_loss(w: Tensor, x: Tensor) -> Tensor:
    r"""The study notes' scalar function :math:`L = 1/(1 + e^{u})` of a linear :math:`u`.

    .. math::

        u = w_0 x_0 + w_1 x_1 + w_2,\qquad
        L = \frac{1}{1 + e^{u}} = \sigma(-u)

    computed as ``sigmoid(-u)``, which is finite for every finite :math:`u`.

    Parameters
    ----------
    w : Tensor
        Weights and bias :math:`(w_0, w_1, w_2)`, shape (3,).
    x : Tensor
        Inputs :math:`(x_0, x_1)`, shape (2,).

    Returns
    -------
    Tensor
        :math:`L`, shape () (a 0-d tensor), in (0, 1).

    Examples
    --------
    >>> import torch
    >>> from dlref.backprop import sigmoid_loss
    >>> sigmoid_loss(torch.tensor([1.0, -2.0, 0.5]), torch.tensor([1.0, 1.0]))  # u = -0.5
    tensor(0.6225)
    """
    check_float("w", w)
    check_float("x", x)
    check_shape("w", w, (3,), "(w0, w1, w2)")
    check_shape("x", x, (2,), "(x0, x1)")
    # u = w0 x0 + w1 x1 + w2
    u = w[0] * x[0] + w[1] * x[1] + w[2]
    # L = 1 / (1 + e^u) = sigma(-u)
    return torch.sigmoid(-u)


def sigmoid_loss_backward(w: Tensor, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    r"""Hand-derived partial derivatives of :func:`sigmoid_loss`.

    .. math::

        \frac{\partial L}{\partial u} = \frac{-e^{u}}{(1 + e^{u})^2} = -\sigma(u)\,\sigma(-u)
                                      = -L\,(1 - L),

    .. math::

        \frac{\partial L}{\partial w} = \frac{\partial L}{\partial u}\,(x_0,\ x_1,\ 1),\qquad
        \frac{\partial L}{\partial x} = \frac{\partial L}{\partial u}\,(w_0,\ w_1).

    The first form is the study notes'. In float32 it fails silently once :math:`(1 + e^u)^2`
    overflows (:math:`u > 44.4`): it returns ``-0.`` where the true value is about
    :math:`-2.9 \times 10^{-20}` at :math:`u = 45`; and it is ``inf / inf = nan`` once
    :math:`e^u` overflows (:math:`u > 88.7`). The last form, which autograd uses (the backward of
    ``sigmoid`` is :math:`y(1-y)`), never overflows but loses relative precision as
    :math:`L \to 1` (:math:`u \ll 0`), where :math:`1 - L` cancels. The middle form, computed
    here, has neither problem: it is accurate as long as :math:`\sigma(-u) = 1/(1 + e^u)` does
    not underflow. That happens once :math:`e^u` overflows: above :math:`u \approx 88.7` in
    float32 (and :math:`709.8` in float64) it returns ``-0.``, as autograd does, where the true
    value, about :math:`-e^{-u}`, is tiny but not 0.

    Parameters
    ----------
    w, x : Tensor
        As in :func:`sigmoid_loss`: shapes (3,) and (2,).

    Returns
    -------
    dL_du : Tensor
        :math:`\partial L / \partial u`, shape ().
    dL_dw : Tensor
        :math:`(\partial L/\partial w_0, \partial L/\partial w_1, \partial L/\partial w_2)`,
        shape (3,).
    dL_dx : Tensor
        :math:`(\partial L/\partial x_0, \partial L/\partial x_1)`, shape (2,).

    Examples
    --------
    >>> import torch
    >>> from dlref.backprop import sigmoid_loss_backward
    >>> dL_du, dL_dw, dL_dx = sigmoid_loss_backward(
    ...     torch.tensor([1.0, -2.0, 0.5]), torch.tensor([1.0, 1.0])
    ... )
    >>> dL_du  # -sigma(u) sigma(-u) = -(1 - L) L with L = 0.6225
    tensor(-0.2350)
    >>> dL_dw, dL_dx
    (tensor([-0.2350, -0.2350, -0.2350]), tensor([-0.2350,  0.4700]))
    """
    L = sigmoid_loss(w, x)  # sigma(-u)
    u = w[0] * x[0] + w[1] * x[1] + w[2]
    # dL/du = -sigma(u) sigma(-u)
    dL_du = -torch.sigmoid(u) * L
    # du/dw = (x0, x1, 1)
    dL_dw = dL_du * torch.cat([x, x.new_ones(1)])
    # du/dx = (w0, w1)
    dL_dx = dL_du * w[:2]
    return dL_du, dL_dw, dL_dx


# ---------------------------------------------------------------------------------------------
# 2. A chain of scalar nodes with a skip connection (the study notes)
# ---------------------------------------------------------------------------------------------


def skip_forward(
    params: Mapping[str, float | Tensor], x0: float | Tensor, t: float | Tensor
) -> dict[str, Tensor]:
    r"""Forward pass of the study notes' five-node scalar network with a skip from b to d.

    .. math::

        x_a = w_a x_0 + b_a,\quad x_b = w_b x_a + b_b,\quad x_c = w_c x_b + b_c,

        x_d = w_d x_c + b_d + w_{d2} x_b + b_{d2},\quad x_e = w_e x_d + b_e,\quad
        \text{loss} = (x_e - t)^2.

    Parameters
    ----------
    params : dict
        The twelve parameters, numbers or 0-d tensors, under the keys ``'w_a', 'b_a', 'w_b',
        'b_b', 'w_c', 'b_c', 'w_d', 'b_d', 'w_d2', 'b_d2', 'w_e', 'b_e'``. Tensors are used as
        given (so autograd can track them); numbers become 0-d tensors of the default dtype.
    x0 : float or Tensor
        The input :math:`x_0`, a number or a 0-d tensor.
    t : float or Tensor
        The target :math:`t`, a number or a 0-d tensor.

    Returns
    -------
    dict
        The activations ``'x_a'`` … ``'x_e'`` and ``'loss'``, each of shape ().

    Examples
    --------
    >>> from dlref.backprop import skip_forward
    >>> p = dict(w_a=2.0, b_a=0.0, w_b=1.0, b_b=1.0, w_c=2.0, b_c=0.0,
    ...          w_d=2.0, b_d=0.0, w_d2=3.0, b_d2=0.0, w_e=0.5, b_e=0.0)
    >>> out = skip_forward(p, x0=1.0, t=10.0)
    >>> torch.stack([out[k] for k in ("x_a", "x_b", "x_c", "x_d", "x_e", "loss")])
    tensor([ 2.0000,  3.0000,  6.0000, 21.0000, 10.5000,  0.2500])
    """
    p = _skip_params(params)
    x0, t = _scalar("x0", x0), _scalar("t", t)
    x_a = p["w_a"] * x0 + p["b_a"]
    x_b = p["w_b"] * x_a + p["b_b"]
    x_c = p["w_c"] * x_b + p["b_c"]
    # the skip: x_b enters x_d directly as well as through x_c
    x_d = p["w_d"] * x_c + p["b_d"] + p["w_d2"] * x_b + p["b_d2"]
    x_e = p["w_e"] * x_d + p["b_e"]
    loss = (x_e - t) ** 2
    return {"x_a": x_a, "x_b": x_b, "x_c": x_c, "x_d": x_d, "x_e": x_e, "loss": loss}


def skip_backward(
    params: Mapping[str, float | Tensor], x0: float | Tensor, t: float | Tensor
) -> dict[str, Tensor]:
    r"""Hand-derived gradient of the :func:`skip_forward` loss with respect to every name in it.

    Walk the nodes backwards; each gradient is the one of the node it feeds times the local
    derivative. :math:`x_b` feeds two nodes, :math:`x_c` and :math:`x_d`, so its gradient is
    the sum over both paths:

    .. math::

        \frac{\partial L}{\partial x_e} &= 2 (x_e - t),\qquad
        \frac{\partial L}{\partial x_d} = \frac{\partial L}{\partial x_e} w_e,\qquad
        \frac{\partial L}{\partial x_c} = \frac{\partial L}{\partial x_d} w_d,\\
        \frac{\partial L}{\partial x_b} &= \frac{\partial L}{\partial x_c} w_c
                                         + \frac{\partial L}{\partial x_d} w_{d2}
                                         = \frac{\partial L}{\partial x_e}\, w_e\,
                                           (w_d w_c + w_{d2}),\\
        \frac{\partial L}{\partial x_a} &= \frac{\partial L}{\partial x_b} w_b,\qquad
        \frac{\partial L}{\partial x_0} = \frac{\partial L}{\partial x_a} w_a,

    and for the parameters of a node :math:`x_n = w_n x_{\text{in}} + b_n`:
    :math:`\partial L/\partial w_n = \partial L/\partial x_n \cdot x_{\text{in}}`,
    :math:`\partial L/\partial b_n = \partial L/\partial x_n`.

    Parameters
    ----------
    params, x0, t
        As in :func:`skip_forward`.

    Returns
    -------
    dict
        :math:`\partial\,\text{loss} / \partial v`, shape (), for every parameter name, for
        ``'x0'``, and for the activations ``'x_a'`` … ``'x_e'``.

    Examples
    --------
    >>> from dlref.backprop import skip_backward
    >>> p = dict(w_a=2.0, b_a=0.0, w_b=1.0, b_b=1.0, w_c=2.0, b_c=0.0,
    ...          w_d=2.0, b_d=0.0, w_d2=3.0, b_d2=0.0, w_e=0.5, b_e=0.0)
    >>> g = skip_backward(p, x0=1.0, t=10.0)  # dL/dx_e = 2 (10.5 - 10) = 1
    >>> g["x_b"], g["b_b"], g["w_b"]  # 1 * 0.5 * (2 * 2 + 3) = 3.5, and 3.5 * x_a
    (tensor(3.5000), tensor(3.5000), tensor(7.))
    """
    p = _skip_params(params)
    x0 = _scalar("x0", x0)
    act = skip_forward(p, x0, t)
    g: dict[str, Tensor] = {}
    # dL/dx_e = 2 (x_e - t)
    g["x_e"] = 2 * (act["x_e"] - _scalar("t", t))
    g["w_e"], g["b_e"] = g["x_e"] * act["x_d"], g["x_e"]
    # dL/dx_d = dL/dx_e * w_e
    g["x_d"] = g["x_e"] * p["w_e"]
    g["w_d"], g["b_d"] = g["x_d"] * act["x_c"], g["x_d"]
    g["w_d2"], g["b_d2"] = g["x_d"] * act["x_b"], g["x_d"]
    # dL/dx_c = dL/dx_d * w_d
    g["x_c"] = g["x_d"] * p["w_d"]
    g["w_c"], g["b_c"] = g["x_c"] * act["x_b"], g["x_c"]
    # dL/dx_b = dL/dx_c * w_c + dL/dx_d * w_d2: through node c, plus the skip into node d
    g["x_b"] = g["x_c"] * p["w_c"] + g["x_d"] * p["w_d2"]
    g["w_b"], g["b_b"] = g["x_b"] * act["x_a"], g["x_b"]
    # dL/dx_a = dL/dx_b * w_b
    g["x_a"] = g["x_b"] * p["w_b"]
    g["w_a"], g["b_a"] = g["x_a"] * x0, g["x_a"]
    # dL/dx0 = dL/dx_a * w_a
    g["x0"] = g["x_a"] * p["w_a"]
    return g


# ---------------------------------------------------------------------------------------------
# 3. One hidden ReLU layer, differentiated in its input (the quiz, question 10)
# ---------------------------------------------------------------------------------------------


def relu_net(x: Tensor, A: Tensor, w: Tensor) -> Tensor:
    r"""A one-hidden-layer ReLU network with a scalar output.

    .. math:: f(x) = w^\top \max(Ax, 0),\qquad x \in \mathbb{R}^d,\ A \in \mathbb{R}^{k\times d},
              \ w \in \mathbb{R}^k

    Parameters
    ----------
    x : Tensor
        Input, shape (d,).
    A : Tensor
        Hidden-layer weights, shape (k, d).
    w : Tensor
        Output weights, shape (k,).

    Returns
    -------
    Tensor
        :math:`f(x)`, shape ().

    Examples
    --------
    >>> import torch
    >>> from dlref.backprop import relu_net
    >>> A = torch.tensor([[1.0, 2.0], [-1.0, 1.0], [3.0, -4.0]])
    >>> relu_net(torch.tensor([1.0, 1.0]), A, torch.tensor([1.0, 2.0, 3.0]))  # Ax = (3, 0, -1)
    tensor(3.)
    """
    _check_relu_net(x, A, w)
    h = torch.relu(A @ x)  # max(Ax, 0): (k,)
    return w @ h


def relu_net_input_grad(x: Tensor, A: Tensor, w: Tensor) -> Tensor:
    r"""Hand-derived gradient of :func:`relu_net` with respect to its input :math:`x`.

    .. math::

        \nabla_x f = A^\top Z w,\qquad Z = \mathrm{diag}\bigl(\mathbb{1}[(Ax)_i > 0]\bigr)
        \in \mathbb{R}^{k \times k}

    a vector in :math:`\mathbb{R}^d`. At a kink, :math:`(Ax)_i = 0`, the derivative of the ReLU
    is taken to be 0, as torch does. (:math:`A^\top Z` alone is not the gradient: it is the
    :math:`d \times k` transpose of the :math:`k \times d` Jacobian :math:`ZA` of the hidden layer
    :math:`x \mapsto \max(Ax, 0)`, and it still has to meet :math:`w`.)

    Parameters
    ----------
    x, A, w : Tensor
        As in :func:`relu_net`: shapes (d,), (k, d) and (k,).

    Returns
    -------
    Tensor
        :math:`\nabla_x f`, shape (d,).

    Examples
    --------
    >>> import torch
    >>> from dlref.backprop import relu_net_input_grad
    >>> A = torch.tensor([[1.0, 2.0], [-1.0, 1.0], [3.0, -4.0]])
    >>> relu_net_input_grad(torch.tensor([1.0, 1.0]), A, torch.tensor([1.0, 2.0, 3.0]))
    tensor([1., 2.])
    >>> hidden = lambda v: torch.relu(A @ v)  # x -> max(Ax, 0), R^2 -> R^3
    >>> J = torch.autograd.functional.jacobian(hidden, torch.tensor([1.0, 1.0]))  # Z A: (k, d)
    >>> Z = torch.diag(torch.tensor([1.0, 0.0, 0.0]))  # Ax = (3, 0, -1): only unit 0 is active
    >>> J.shape, torch.equal(J.T, A.T @ Z)  # A^T Z is J^T, a (d, k) matrix
    (torch.Size([3, 2]), True)
    """
    _check_relu_net(x, A, w)
    active = A @ x > 0  # diagonal of Z: (k,)
    # A^T Z w, with Z w selected (not z * w: an inactive unit's w may be inf, and 0 * inf is nan)
    return A.T @ torch.where(active, w, 0)


# ---------------------------------------------------------------------------------------------
# 4. The linear layer, and the cost of the backward pass (the flashcards)
# ---------------------------------------------------------------------------------------------


def linear_backward(X: Tensor, W: Tensor, G: Tensor) -> tuple[Tensor, Tensor]:
    r"""Backward pass of :math:`Y = XW`: the gradients of its input and weight.

    Given the upstream gradient :math:`G = \partial L/\partial Y`,

    .. math::

        \frac{\partial L}{\partial X} = G W^\top,\qquad
        \frac{\partial L}{\partial W} = X^\top G,

    two matrix products, each with as many multiply-adds as the forward
    :math:`XW`. Leading (batch) dimensions of ``X`` are flattened into rows for
    :math:`\partial L / \partial W`, which sums over them. Note that :math:`W`
    here is (in, out); ``torch.nn.Linear`` stores its transpose, (out, in), and
    computes :math:`X W^\top`.

    Parameters
    ----------
    X : Tensor
        The layer's input, shape (\*, in): any leading dimensions.
    W : Tensor
        The layer's weight, shape (in, out).
    G : Tensor
        :math:`\partial L/\partial Y`, shape (\*, out): the leading dimensions
        of ``X``.

    Returns
    -------
    dX : Tensor
        :math:`\partial L/\partial X`, shape (\*, in).
    dW : Tensor
        :math:`\partial L/\partial W`, shape (in, out).

    Examples
    --------
    >>> import torch
    >>> from dlref.backprop import linear_backward
    >>> X = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    >>> W = torch.tensor([[1.0, 0.0, -1.0], [2.0, 1.0, 0.0]])
    >>> dX, dW = linear_backward(X, W, torch.ones(2, 3))  # of (X @ W).sum()
    >>> dX
    tensor([[0., 3.],
            [0., 3.]])
    >>> dW
    tensor([[4., 4., 4.],
            [6., 6., 6.]])
    """
    check_float("X", X)
    check_float("W", W)
    check_float("G", G)
    check_same_dtype(X=X, W=W, G=G)
    check_shape("W", W, (None, None), "(in, out)")
    check_shape("X", X, (..., W.shape[0]), "(*, in)")
    check_shape("G", G, (*X.shape[:-1], W.shape[1]), "(*, out)")
    d_in, d_out = W.shape
    # dL/dX = G W^T: (*, out) @ (out, in) -> (*, in)
    dX = G @ W.T
    # dL/dW = X^T G, summed over the leading dimensions:
    # (in, N) @ (N, out) -> (in, out)
    dW = X.reshape(-1, d_in).T @ G.reshape(-1, d_out)
    return dX, dW


def forward_backward_flops(model: nn.Module, x: Tensor) -> tuple[int, int]:
    r"""Floating-point operations of one forward and one backward pass, counted by torch.

    Counted with :class:`torch.utils.flop_counter.FlopCounterMode`, which counts matrix
    products, convolutions and attention (2 FLOPs per multiply-add) and nothing elementwise.
    The backward pass computes the gradient of ``model(x)`` (with an all-ones upstream
    gradient) with respect to every parameter that requires grad, and to ``x`` if it requires
    grad; ``.grad`` fields are left untouched. For a stack of linear layers
    :math:`Y_l = X_l W_l`, each of :math:`F_l` forward FLOPs,

    .. math::

        \text{backward} = \sum_l 2 F_l - [\text{x does not require grad}]\, F_1,

    as each layer needs :math:`\partial L/\partial W_l = X_l^\top G_l` and, except for the first
    layer when nobody asks for :math:`\partial L / \partial x`, :math:`G_l W_l^\top`.

    Parameters
    ----------
    model : torch.nn.Module
        Any module; ``model(x)`` must return a floating-point tensor.
    x : Tensor
        Input, of the shape ``model`` expects.

    Returns
    -------
    forward : int
        FLOPs of ``model(x)``.
    backward : int
        FLOPs of the backward pass.

    Examples
    --------
    >>> import torch
    >>> from dlref.backprop import forward_backward_flops
    >>> layer = torch.nn.Linear(100, 10, bias=False)
    >>> forward_backward_flops(layer, torch.randn(8, 100))  # 2 * 8 * 100 * 10 = 16000
    (16000, 16000)
    >>> forward_backward_flops(layer, torch.randn(8, 100, requires_grad=True))  # dX too
    (16000, 32000)
    """
    check_instance("model", model, nn.Module, "torch.nn.Module")
    check_float("x", x)
    inputs = [q for q in model.parameters() if q.requires_grad] + ([x] if x.requires_grad else [])
    if not inputs:
        raise ValueError("nothing to differentiate: neither x nor a model parameter needs grad")
    with FlopCounterMode(display=False) as counter:
        try:
            y = model(x)
        except (RuntimeError, IndexError) as e:  # torch's own message names neither argument
            raise ValueError(
                f"model(x) failed for x of shape {tuple(x.shape)}: is it the shape model expects? "
                f"({type(e).__name__}: {e})"
            ) from e
    forward = counter.get_total_flops()
    if not isinstance(y, Tensor) or not y.is_floating_point():
        raise TypeError(f"model(x) must return a floating-point tensor, got {type(y).__name__}")
    if not y.requires_grad:
        raise ValueError("model(x) does not depend on any parameter or input that requires grad")
    with FlopCounterMode(display=False) as counter:
        torch.autograd.grad(y, inputs, torch.ones_like(y), allow_unused=True)
    return forward, counter.get_total_flops()
