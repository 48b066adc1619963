"""Exercises on backpropagation by hand (references: :mod:`dlref.backprop`)."""

from __future__ import annotations

import torch
from torch import Tensor

from dlref import backprop
from dlref.practice._cases import DT, bad_input, randn, shape_check, tensor, values_check
from dlref.practice._grader import Check, Mistake, register

PAGE = "topics/backprop.html"

SKIP_KEYS = ("w_a", "b_a", "w_b", "b_b", "w_c", "b_c", "w_d", "b_d", "w_d2", "b_d2", "w_e", "b_e")
SKIP_OUTPUTS = ("dx_e", "dx_d", "dx_c", "dx_b", "db_b")

# ------------------------------------------------------------------------------- references


def sigmoid_partials_reference(w: Tensor, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    r"""The reference: :func:`dlref.backprop.sigmoid_loss_backward`.

    The partial derivatives of :math:`L = \sigma(-u)`, :math:`u = w_0 x_0 + w_1 x_1 + w_2`
    (:func:`dlref.backprop.sigmoid_loss`).

    Parameters
    ----------
    w : Tensor
        :math:`(w_0, w_1, w_2)`, shape (3,).
    x : Tensor
        :math:`(x_0, x_1)`, shape (2,).

    Returns
    -------
    dL_du : Tensor
        Shape ().
    dL_dw : Tensor
        Shape (3,).
    dL_dx : Tensor
        Shape (2,).

    Examples
    --------
    >>> import torch
    >>> from dlref.backprop import sigmoid_loss
    >>> from dlref.practice.backprop import sigmoid_partials_reference
    >>> w = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64, requires_grad=True)
    >>> x = torch.tensor([1.0, 1.0], dtype=torch.float64, requires_grad=True)
    >>> dL_du, dL_dw, dL_dx = sigmoid_partials_reference(w.detach(), x.detach())
    >>> auto = torch.autograd.grad(sigmoid_loss(w, x), (w, x))
    >>> torch.allclose(dL_dw, auto[0]) and torch.allclose(dL_dx, auto[1])
    True
    >>> round(dL_du.item(), 4)  # -L (1 - L) with L = sigmoid(0.5) = 0.6225
    -0.235
    """
    return backprop.sigmoid_loss_backward(w, x)


def skip_grads_reference(params: dict, x0: float, t: float) -> dict:
    """The reference: :func:`dlref.backprop.skip_backward`, the entries the exercise asks for.

    Parameters
    ----------
    params : dict
        The twelve parameters ``w_a``, ``b_a``, ... ``w_e``, ``b_e`` as floats, as in
        :func:`dlref.backprop.skip_forward`.
    x0 : float
        The input.
    t : float
        The target.

    Returns
    -------
    dict
        The float64 0-d tensors ``"dx_e"``, ``"dx_d"``, ``"dx_c"``, ``"dx_b"`` and ``"db_b"``:
        the gradients of the loss with respect to those activations and to :math:`b_b`.

    Examples
    --------
    >>> from dlref.practice.backprop import skip_grads_reference
    >>> p = dict(w_a=2.0, b_a=0.0, w_b=1.0, b_b=1.0, w_c=2.0, b_c=0.0,
    ...          w_d=2.0, b_d=0.0, w_d2=3.0, b_d2=0.0, w_e=0.5, b_e=0.0)
    >>> g = skip_grads_reference(p, x0=1.0, t=10.0)  # x_e = 10.5: dL/dx_e = 2 (10.5 - 10) = 1
    >>> {k: v.item() for k, v in g.items()}  # dx_b, two paths: dx_c w_c + dx_d w_d2
    {'dx_e': 1.0, 'dx_d': 0.5, 'dx_c': 1.0, 'dx_b': 3.5, 'db_b': 3.5}
    """
    g = backprop.skip_backward(
        {k: torch.tensor(v, dtype=DT) for k, v in params.items()},
        torch.tensor(x0, dtype=DT),
        torch.tensor(t, dtype=DT),
    )
    return {
        "dx_e": g["x_e"],
        "dx_d": g["x_d"],
        "dx_c": g["x_c"],
        "dx_b": g["x_b"],
        "db_b": g["b_b"],
    }


def linear_backward_reference(X: Tensor, W: Tensor, G: Tensor) -> tuple[Tensor, Tensor]:
    r"""The reference: :func:`dlref.backprop.linear_backward`, the gradients of :math:`Y = XW`.

    Parameters
    ----------
    X, W, G : Tensor
        The input (\*, in), the weight (in, out) and the upstream gradient
        :math:`\partial L / \partial Y` (\*, out).

    Returns
    -------
    dX : Tensor
        :math:`G W^\top`, shape (\*, in).
    dW : Tensor
        :math:`X^\top G` summed over the leading dimensions, shape (in, out).

    Examples
    --------
    >>> import torch
    >>> from dlref.practice.backprop import linear_backward_reference
    >>> X = torch.arange(6.0, dtype=torch.float64).reshape(2, 3).requires_grad_()
    >>> W = torch.tensor([[1.0, 0.0], [2.0, -1.0], [0.0, 3.0]], dtype=torch.float64)
    >>> dX, dW = linear_backward_reference(X.detach(), W, torch.ones(2, 2, dtype=torch.float64))
    >>> torch.allclose(dX, torch.autograd.grad((X @ W).sum(), X)[0])
    True
    >>> dW  # X^T G: each row holds the sum of a column of X
    tensor([[3., 3.],
            [5., 5.],
            [7., 7.]], dtype=torch.float64)
    """
    return backprop.linear_backward(X, W, G)


# --------------------------------------------------------------------------- known mistakes


def _u(w, x):
    return w[0] * x[0] + w[1] * x[1] + w[2]


def _sig_sign(w, x):
    L = torch.sigmoid(-_u(w, x))
    d = L * (1 - L)
    return d, d * torch.cat([x, x.new_ones(1)]), d * w[:2]


def _sig_no_bias(w, x):
    L = torch.sigmoid(-_u(w, x))
    d = -L * (1 - L)
    return d, d * torch.cat([x, x.new_zeros(1)]), d * w[:2]


def _sig_overflow(w, x):
    e = _u(w, x).exp()
    d = -e / (1 + e) ** 2
    return d, d * torch.cat([x, x.new_ones(1)]), d * w[:2]


def _sig_swapped(w, x):
    L = torch.sigmoid(-_u(w, x))
    d = -L * (1 - L)
    return d, d * torch.cat([w[:2], w.new_ones(1)]), d * x


def _skip_variant(params, x0, t, skip=True, through=True, two=2.0):
    p = params
    x_a = p["w_a"] * x0 + p["b_a"]
    x_b = p["w_b"] * x_a + p["b_b"]
    x_c = p["w_c"] * x_b + p["b_c"]
    x_d = p["w_d"] * x_c + p["b_d"] + p["w_d2"] * x_b + p["b_d2"]
    x_e = p["w_e"] * x_d + p["b_e"]
    dx_e = two * (x_e - t)
    dx_d = dx_e * p["w_e"]
    dx_c = dx_d * p["w_d"]
    dx_b = dx_c * p["w_c"] * through + dx_d * p["w_d2"] * skip
    return {"dx_e": dx_e, "dx_d": dx_d, "dx_c": dx_c, "dx_b": dx_b, "db_b": dx_b}


def _lin_no_sum(X, W, G):
    return G @ W.T, X.transpose(-1, -2) @ G


def _lin_mean(X, W, G):
    n = max(X.reshape(-1, W.shape[0]).shape[0], 1)
    return G @ W.T, X.reshape(-1, W.shape[0]).T @ G.reshape(-1, W.shape[1]) / n


def _lin_no_transpose(X, W, G):
    return G @ W, X.reshape(-1, W.shape[0]).T @ G.reshape(-1, W.shape[1])


def _lin_dW_transposed(X, W, G):
    return G @ W.T, G.reshape(-1, W.shape[1]).T @ X.reshape(-1, W.shape[0])


# ------------------------------------------------------------------------------------ cases


def _skip_params(seed: int) -> dict:
    v = randn(len(SKIP_KEYS) + 2, seed=seed).tolist()
    return {"params": dict(zip(SKIP_KEYS, v, strict=False)), "x0": v[-2], "t": v[-1]}


HAND_PARAMS = {"w_a": 2.0, "b_a": 0.0, "w_b": 1.0, "b_b": 1.0, "w_c": 2.0, "b_c": 0.0}
HAND_PARAMS |= {"w_d": 2.0, "b_d": 0.0, "w_d2": 3.0, "b_d2": 0.0, "w_e": 0.5, "b_e": 0.0}

SIGMOID_STUB = r'''
import torch
from torch import Tensor


def sigmoid_partials(w: Tensor, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    r"""Partial derivatives of L = 1 / (1 + exp(u)), u = w0 x0 + w1 x1 + w2, by hand.

        dL/du = -exp(u) / (1 + exp(u))^2 = -sigmoid(u) sigmoid(-u)
        dL/dw = dL/du * (x0, x1, 1),   dL/dx = dL/du * (w0, w1)

    w: (3,) weights and bias; x: (2,) inputs. Returns (dL_du (), dL_dw (3,), dL_dx (2,)),
    finite for |u| up to 1000. Do not use autograd. Raise for w or x of the wrong shape.
    """
    raise NotImplementedError
'''

SKIP_STUB = r'''
def skip_grads(params: dict, x0: float, t: float) -> dict:
    r"""Gradients of the five-node network with a skip connection from b to d, by hand.

        x_a = w_a x0 + b_a,  x_b = w_b x_a + b_b,  x_c = w_c x_b + b_c,
        x_d = w_d x_c + b_d + w_d2 x_b + b_d2,  x_e = w_e x_d + b_e,  loss = (x_e - t)^2

    params: the 12 numbers w_a, b_a, ..., w_e, b_e; x0, t: numbers.
    Returns {"dx_e", "dx_d", "dx_c", "dx_b", "db_b"}: d loss / d(that name), numbers.
    """
    raise NotImplementedError
'''

LINEAR_STUB = r'''
import torch
from torch import Tensor


def linear_backward(X: Tensor, W: Tensor, G: Tensor) -> tuple[Tensor, Tensor]:
    r"""Backward pass of Y = X @ W, given G = dL/dY, without autograd.

        dL/dX = G W^T,   dL/dW = X^T G (summed over every leading dimension of X)

    X: (*, in); W: (in, out); G: (*, out). Returns (dX (*, in), dW (in, out)).
    Raise a ValueError when G does not have the shape of X @ W.
    """
    raise NotImplementedError
'''


def _lin_case(lead, d_in, d_out, seed):
    return {
        "X": randn(*lead, d_in, seed=seed),
        "W": randn(d_in, d_out, seed=seed + 1),
        "G": randn(*lead, d_out, seed=seed + 2),
    }


register(
    reference=sigmoid_partials_reference,
    stub=SIGMOID_STUB,
    summary="dL/du, dL/dw, dL/dx of L = 1/(1 + e^u) by hand",
    checks=(
        shape_check(lambda: [{"w": tensor([1.0, -2.0, 0.5]), "x": tensor([1.0, 1.0])}]),
        values_check(lambda: [{"w": tensor([1.0, -2.0, 0.5]), "x": tensor([1.0, 1.0])}]),
        Check(
            "random values",
            lambda: [{"w": randn(3, seed=s), "x": randn(2, seed=s + 50)} for s in range(4)],
        ),
        Check(
            "edge: u = ±1000 (exp(u) overflows)",
            lambda: [
                {"w": tensor([500.0, 500.0, 0.0]), "x": tensor([1.0, 1.0])},
                {"w": tensor([-500.0, -500.0, 0.0]), "x": tensor([1.0, 1.0])},
            ],
        ),
        bad_input(
            "w of shape (2,)",
            "w has 2 entries, not 3",
            lambda: [{"w": tensor([1.0, 2.0]), "x": tensor([1.0, 1.0])}],
        ),
    ),
    difficulty="easy",
    page=f"{PAGE}#a-sigmoid-of-a-linear-function",
    outputs=("dL_du", "dL_dw", "dL_dx"),
    mistakes=(
        Mistake(
            "sign",
            _sig_sign,
            "dL/du has the wrong sign: L = 1/(1 + e^u) = sigmoid(-u) decreases in u, so "
            "dL/du = -sigmoid(u) sigmoid(-u) < 0.",
            f"{PAGE}#a-sigmoid-of-a-linear-function",
        ),
        Mistake(
            "no_bias_term",
            _sig_no_bias,
            "dL/dw2 is dL/du times 1 (u = w0 x0 + w1 x1 + w2), not 0: the bias gets the "
            "gradient of u itself.",
            f"{PAGE}#a-sigmoid-of-a-linear-function",
        ),
        Mistake(
            "overflow",
            _sig_overflow,
            "-e^u / (1 + e^u)^2 is inf/inf = nan once e^u overflows: use the equal form "
            "-sigmoid(u) sigmoid(-u), finite everywhere.",
            f"{PAGE}#a-sigmoid-of-a-linear-function",
        ),
        Mistake(
            "swapped_w_x",
            _sig_swapped,
            "du/dw is x (and 1 for the bias) and du/dx is w: you swapped them.",
            f"{PAGE}#a-sigmoid-of-a-linear-function",
        ),
    ),
)

register(
    reference=skip_grads_reference,
    stub=SKIP_STUB,
    summary="dL/db_b of the five-node network with a skip connection",
    checks=(
        values_check(lambda: [{"params": dict(HAND_PARAMS), "x0": 1.0, "t": 10.0}]),
        Check("random values", lambda: [_skip_params(s) for s in range(4)]),
        Check(
            "edge: at the target (every gradient 0) and without the skip (w_d2 = 0)",
            lambda: [
                {"params": dict(HAND_PARAMS), "x0": 1.0, "t": 10.5},
                {"params": {**HAND_PARAMS, "w_d2": 0.0}, "x0": 1.0, "t": 3.0},
            ],
        ),
    ),
    difficulty="medium",
    page=f"{PAGE}#the-skip-connection",
    outputs=SKIP_OUTPUTS,
    mistakes=(
        Mistake(
            "missing_skip_path",
            lambda params, x0, t: _skip_variant(params, x0, t, skip=False),
            "x_b feeds both x_c and x_d: dL/dx_b is the sum over both paths, "
            "dL/dx_c w_c + dL/dx_d w_d2; you dropped the skip.",
            f"{PAGE}#the-skip-connection",
        ),
        Mistake(
            "only_skip_path",
            lambda params, x0, t: _skip_variant(params, x0, t, through=False),
            "x_b feeds both x_c and x_d: dL/dx_b is the sum over both paths; you kept "
            "only the skip into x_d.",
            f"{PAGE}#the-skip-connection",
        ),
        Mistake(
            "missing_factor_2",
            lambda params, x0, t: _skip_variant(params, x0, t, two=1.0),
            "d/dx_e (x_e - t)^2 = 2 (x_e - t): the factor 2 is missing, so every "
            "gradient is half the right one.",
            f"{PAGE}#the-skip-connection",
        ),
    ),
)

register(
    reference=linear_backward_reference,
    stub=LINEAR_STUB,
    summary="dX = G W^T and dW = X^T G for Y = X W, with batch dimensions",
    checks=(
        shape_check(lambda: [_lin_case((3,), 2, 4, 0)]),
        values_check(
            lambda: [
                {
                    "X": tensor([[1.0, 2.0], [3.0, 4.0]]),
                    "W": tensor([[1.0, 0.0], [2.0, 1.0]]),
                    "G": tensor([[1.0, -1.0], [0.5, 2.0]]),
                }
            ]
        ),
        Check(
            "random shapes with batch dimensions",
            lambda: [_lin_case((5,), 3, 4, 1), _lin_case((2, 3), 4, 5, 2)],
        ),
        Check("edge: empty batch", lambda: [_lin_case((0,), 3, 2, 3)]),
        bad_input(
            "G not of the shape of X @ W",
            "X @ W is (3, 4) but G is (3, 5)",
            lambda: [{**_lin_case((3,), 2, 4, 4), "G": randn(3, 5, seed=9)}],
        ),
    ),
    difficulty="easy",
    page=f"{PAGE}#the-cost-of-the-backward-pass",
    outputs=("dX", "dW"),
    mistakes=(
        Mistake(
            "no_batch_sum",
            _lin_no_sum,
            "dW must have W's shape (in, out): sum X^T G over every leading (batch) "
            "dimension (flatten them into rows first).",
            f"{PAGE}#the-cost-of-the-backward-pass",
        ),
        Mistake(
            "mean_over_batch",
            _lin_mean,
            "you divided dW by the number of rows: the gradient of a sum is the sum; any "
            "mean belongs in the loss, already in G.",
            f"{PAGE}#the-cost-of-the-backward-pass",
        ),
        Mistake(
            "missing_transpose",
            _lin_no_transpose,
            "dX = G W^T: the shapes (*, out) @ (out, in) only work with W transposed.",
            f"{PAGE}#the-cost-of-the-backward-pass",
        ),
        Mistake(
            "dW_transposed",
            _lin_dW_transposed,
            "you computed G^T X, the transpose of dW = X^T G: dW has the shape of W, (in, out).",
            f"{PAGE}#the-cost-of-the-backward-pass",
        ),
    ),
)
