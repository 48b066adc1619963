"""dlref.backprop: every hand-derived gradient against autograd and against central differences
(float64), the seeds' wrong formulas shown to disagree, and the FLOP accounting of the backward
pass."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from dlref import backprop
from dlref.autodiff import finite_difference_grad
from dlref.backprop import (
    forward_backward_flops,
    linear_backward,
    relu_net,
    relu_net_input_grad,
    sigmoid_loss,
    sigmoid_loss_backward,
    skip_backward,
    skip_forward,
)

DT = torch.float64
SKIP_NAMES = ("w_a", "b_a", "w_b", "b_b", "w_c", "b_c", "w_d", "b_d", "w_d2", "b_d2", "w_e", "b_e")
SEEDS = range(6)


def autograd(f, *inputs):
    """Gradients of the scalar f(*inputs) with respect to each input, by torch.autograd."""
    leaves = [v.detach().clone().requires_grad_() for v in inputs]
    return torch.autograd.grad(f(*leaves), leaves)


# ------------------------------------------------------------------ 1. L = 1 / (1 + exp(u))

coords = st.floats(-3, 3, allow_nan=False, allow_infinity=False)


@settings(max_examples=40, deadline=None)
@given(st.lists(coords, min_size=5, max_size=5))
def test_sigmoid_loss_backward_matches_autograd_and_finite_differences(values):
    w, x = torch.tensor(values[:3], dtype=DT), torch.tensor(values[3:], dtype=DT)
    dL_du, dL_dw, dL_dx = sigmoid_loss_backward(w, x)
    ref_w, ref_x = autograd(sigmoid_loss, w, x)
    # autograd computes dL/du as L (1 - L), which cancels as L -> 1: hence the atol
    torch.testing.assert_close(dL_dw, ref_w, rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(dL_dx, ref_x, rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(dL_dw, finite_difference_grad(lambda v: sigmoid_loss(v, x), w))
    torch.testing.assert_close(dL_dx, finite_difference_grad(lambda v: sigmoid_loss(w, v), x))
    # dL/du as a function of u alone: L(u) = sigmoid(-u)
    u = (w[0] * x[0] + w[1] * x[1] + w[2]).reshape(1)
    torch.testing.assert_close(dL_du.reshape(1), autograd(lambda v: torch.sigmoid(-v).sum(), u)[0])
    torch.testing.assert_close(
        dL_du.reshape(1), finite_difference_grad(lambda v: torch.sigmoid(-v).sum(), u)
    )


def _seed_dL_du(u):
    """Seed 000: dL/du = -exp(u) / (1 + exp(u))^2."""
    return -u.exp() / (1 + u.exp()) ** 2


def test_seed_dL_du_is_right_for_moderate_u():
    u = torch.linspace(-30, 30, 61, dtype=DT)
    x = torch.ones(2, dtype=DT)
    ours = torch.stack([sigmoid_loss_backward(torch.stack([v, 0 * v, 0 * v]), x)[0] for v in u])
    torch.testing.assert_close(_seed_dL_du(u), ours, rtol=1e-12, atol=0)


def test_dL_du_as_L_times_one_minus_L_cancels_where_ours_does_not():
    u = torch.tensor(-30.0, dtype=DT)
    w, x = torch.tensor([-30.0, 0.0, 0.0], dtype=DT), torch.tensor([1.0, 0.0], dtype=DT)
    exact = -torch.exp(u) / (1 + torch.exp(u)) ** 2  # accurate here: no overflow, no cancellation
    L = sigmoid_loss(w, x)
    torch.testing.assert_close(sigmoid_loss_backward(w, x)[0], exact, rtol=1e-14, atol=0)
    assert abs((-L * (1 - L) - exact) / exact) > 1e-6  # the form autograd uses, 1 - L ~ 1e-13


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_seed_dL_du_overflows_to_nan_where_ours_matches_autograd(dtype):
    u = torch.tensor(1000.0, dtype=dtype)
    w, x = torch.tensor([1000.0, 0.0, 0.0], dtype=dtype), torch.tensor([1.0, 0.0], dtype=dtype)
    assert torch.isnan(_seed_dL_du(u))
    dL_du, dL_dw, dL_dx = sigmoid_loss_backward(w, x)
    assert torch.isfinite(dL_du) and torch.isfinite(dL_dw).all() and torch.isfinite(dL_dx).all()
    ref_w, ref_x = autograd(sigmoid_loss, w, x)
    torch.testing.assert_close((dL_dw, dL_dx), (ref_w, ref_x))


def test_sigmoid_loss_is_one_over_one_plus_exp_u():
    w, x = torch.tensor([0.3, -1.2, 0.7], dtype=DT), torch.tensor([2.0, 0.5], dtype=DT)
    u = 0.3 * 2.0 - 1.2 * 0.5 + 0.7
    torch.testing.assert_close(sigmoid_loss(w, x), torch.tensor(1 / (1 + torch.e**u), dtype=DT))


# ------------------------------------------------------------------ 2. the skip network


def _random_skip(seed):
    g = torch.Generator().manual_seed(seed)
    values = torch.randn(len(SKIP_NAMES) + 2, dtype=DT, generator=g)
    return dict(zip(SKIP_NAMES, values[:-2], strict=True)), values[-2], values[-1]


def _skip_loss_of_vector(v, t):
    """The loss as a function of one vector (the 12 parameters, then x0), for autograd and FD."""
    return skip_forward(dict(zip(SKIP_NAMES, v[:-1], strict=True)), v[-1], t)["loss"]


@pytest.mark.parametrize("seed", SEEDS)
def test_skip_backward_matches_autograd_and_finite_differences(seed):
    params, x0, t = _random_skip(seed)
    grads = skip_backward(params, x0, t)
    ours = torch.stack([grads[k] for k in (*SKIP_NAMES, "x0")])
    v = torch.stack([*params.values(), x0])
    (ref,) = autograd(lambda v: _skip_loss_of_vector(v, t), v)
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(
        ours, finite_difference_grad(lambda v: _skip_loss_of_vector(v, t), v)
    )


@pytest.mark.parametrize("seed", SEEDS)
def test_skip_backward_activation_gradients_match_autograd(seed):
    params, x0, t = _random_skip(seed)
    nodes = ("x_a", "x_b", "x_c", "x_d", "x_e")
    leaves = {k: v.clone().requires_grad_() for k, v in params.items()}
    x0_leaf = x0.clone().requires_grad_()
    acts = skip_forward(leaves, x0_leaf, t)
    ref = torch.autograd.grad(acts["loss"], [acts[n] for n in nodes])
    grads = skip_backward(params, x0, t)
    torch.testing.assert_close(torch.stack([grads[n] for n in nodes]), torch.stack(ref))


def _seed_dL_dx_b(params, x0, t):
    """Seeds 000/002: dL/dx_b = dL/dx_e * dx_e/dx_d * (dx_c/dx_b + 1), dropping w_d and w_d2."""
    x_e = skip_forward(params, x0, t)["x_e"]
    return 2 * (x_e - t) * params["w_e"] * (params["w_c"] + 1)


@pytest.mark.parametrize("seed", SEEDS)
def test_seed_dL_dx_b_disagrees_with_autograd(seed):
    params, x0, t = _random_skip(seed)
    leaves = {k: v.clone().requires_grad_() for k, v in params.items()}
    (ref_b_b,) = torch.autograd.grad(skip_forward(leaves, x0, t)["loss"], [leaves["b_b"]])
    seed_value = _seed_dL_dx_b(params, x0, t)  # the seeds' dL/db_b = dL/dx_b
    assert not torch.allclose(seed_value, ref_b_b, rtol=1e-3)
    torch.testing.assert_close(skip_backward(params, x0, t)["b_b"], ref_b_b)


@pytest.mark.parametrize("seed", SEEDS)
def test_seed_dL_dx_b_is_the_special_case_w_d_equals_w_d2_equals_one(seed):
    params, x0, t = _random_skip(seed)
    params.update(w_d=torch.tensor(1.0, dtype=DT), w_d2=torch.tensor(1.0, dtype=DT))
    torch.testing.assert_close(_seed_dL_dx_b(params, x0, t), skip_backward(params, x0, t)["x_b"])


def test_skip_backward_closed_form_for_dL_dx_b():
    params, x0, t = _random_skip(7)
    g, p = skip_backward(params, x0, t), params
    closed = g["x_e"] * p["w_e"] * (p["w_d"] * p["w_c"] + p["w_d2"])  # dL/dx_e w_e (w_d w_c + w_d2)
    torch.testing.assert_close(g["x_b"], closed)


def test_skip_accepts_python_numbers():
    p = dict(w_a=2, b_a=0, w_b=1, b_b=1, w_c=2, b_c=0, w_d=2, b_d=0, w_d2=3, b_d2=0, w_e=0.5, b_e=0)
    g = skip_backward(p, 1, 10)
    assert skip_forward(p, 1, 10)["loss"].item() == 0.25
    assert (g["x_b"].item(), g["b_b"].item(), g["w_b"].item(), g["x0"].item()) == (3.5, 3.5, 7, 7)


# ------------------------------------------------------------------ 3. one hidden ReLU layer


@pytest.mark.parametrize(("d", "k"), [(1, 1), (3, 5), (7, 4), (16, 32)])
@pytest.mark.parametrize("seed", SEEDS)
def test_relu_input_grad_matches_autograd_and_finite_differences(d, k, seed):
    g = torch.Generator().manual_seed(seed)
    x, A, w = (torch.randn(s, dtype=DT, generator=g) for s in ((d,), (k, d), (k,)))
    ours = relu_net_input_grad(x, A, w)
    assert ours.shape == (d,)
    ref_x, ref_A, ref_w = autograd(relu_net, x, A, w)
    torch.testing.assert_close(ours, ref_x, rtol=1e-12, atol=1e-12)
    # random points sit at a distance from every kink (A x)_i = 0 far larger than eps = 1e-6
    torch.testing.assert_close(ours, finite_difference_grad(lambda v: relu_net(v, A, w), x))
    torch.testing.assert_close(ref_w, (A @ x).clamp_min(0))  # and the forward is the formula


def test_relu_input_grad_at_a_kink_uses_zero_like_torch():
    A = torch.tensor([[1.0, -1.0], [2.0, 1.0]], dtype=DT)  # (A x)_0 = 0 exactly at x = (1, 1)
    x, w = torch.tensor([1.0, 1.0], dtype=DT), torch.tensor([5.0, 1.0], dtype=DT)
    torch.testing.assert_close(relu_net_input_grad(x, A, w), autograd(relu_net, x, A, w)[0])
    torch.testing.assert_close(relu_net_input_grad(x, A, w), torch.tensor([2.0, 1.0], dtype=DT))


@pytest.mark.parametrize("seed", SEEDS)
def test_seed_answer_A_transpose_Z_is_a_matrix_not_the_gradient(seed):
    g = torch.Generator().manual_seed(seed)
    d, k = 3, 5
    x, A, w = (torch.randn(s, dtype=DT, generator=g) for s in ((d,), (k, d), (k,)))
    Z = torch.diag((A @ x > 0).to(DT))
    seed_answer = A.T @ Z
    assert seed_answer.shape == (d, k) != relu_net_input_grad(x, A, w).shape
    # the seed's matrix still has to meet w: (A^T Z) w is the gradient
    torch.testing.assert_close(seed_answer @ w, autograd(relu_net, x, A, w)[0])


# ------------------------------------------------------------------ 4. linear layer and FLOPs


@pytest.mark.parametrize(
    ("x_shape", "d_out"), [((3,), 4), ((5, 3), 4), ((2, 5, 3), 1), ((2, 3, 4, 6), 7)]
)
def test_linear_backward_matches_autograd(x_shape, d_out):
    torch.manual_seed(0)
    X = torch.randn(x_shape, dtype=DT, requires_grad=True)
    W = torch.randn(x_shape[-1], d_out, dtype=DT, requires_grad=True)
    Y = X @ W
    G = torch.randn_like(Y)
    dX, dW = linear_backward(X.detach(), W.detach(), G)
    ref_X, ref_W = torch.autograd.grad(Y, (X, W), G)
    assert dX.shape == X.shape and dW.shape == W.shape
    torch.testing.assert_close(dX, ref_X, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(dW, ref_W, rtol=1e-12, atol=1e-12)


def test_linear_backward_matches_finite_differences_of_a_scalar_loss():
    torch.manual_seed(1)
    X, W, C = torch.randn(4, 3, dtype=DT), torch.randn(3, 2, dtype=DT), torch.randn(4, 2, dtype=DT)
    # L = sum(C * XW), so G = dL/dY = C
    dX, dW = linear_backward(X, W, C)
    torch.testing.assert_close(dX, finite_difference_grad(lambda v: (C * (v @ W)).sum(), X))
    torch.testing.assert_close(dW, finite_difference_grad(lambda v: (C * (X @ v)).sum(), W))


def _mlp(sizes):
    layers = []
    for d_in, d_out in zip(sizes[:-1], sizes[1:], strict=False):
        layers += [nn.Linear(d_in, d_out), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


@pytest.mark.parametrize("sizes", [(64, 512, 512, 512, 10), (784, 256, 256, 10), (8, 8)])
@pytest.mark.parametrize("batch", [1, 32])
def test_backward_flops_are_twice_forward_minus_the_first_layer_dX(sizes, batch):
    model = _mlp(sizes)
    per_layer = [2 * batch * a * b for a, b in zip(sizes[:-1], sizes[1:], strict=False)]  # F_l
    fwd, bwd = forward_backward_flops(model, torch.randn(batch, sizes[0]))
    assert fwd == sum(per_layer)
    assert bwd == 2 * sum(per_layer) - per_layer[0]  # no dX = G W^T for the first layer
    fwd, bwd = forward_backward_flops(model, torch.randn(batch, sizes[0], requires_grad=True))
    assert bwd == 2 * fwd


def test_forward_backward_flops_leaves_grad_untouched_and_counts_only_what_requires_grad():
    model = _mlp((10, 20, 5))
    model[0].weight.requires_grad_(False)
    model[0].bias.requires_grad_(False)
    fwd, bwd = forward_backward_flops(model, torch.randn(4, 10))
    # nothing upstream of layer 2 requires grad, so autograd computes its dW = X^T G only
    assert fwd == 2 * 4 * (10 * 20 + 20 * 5)
    assert bwd == 2 * 4 * 20 * 5
    assert all(p.grad is None for p in model.parameters())


# ------------------------------------------------------------------ bad input


def _good_skip():
    return {k: 1.0 for k in SKIP_NAMES}


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (
            lambda: sigmoid_loss(torch.ones(2), torch.ones(2)),
            ValueError,
            r"w must have shape \(3,\) \(w0, w1 and the bias w2\), got \(2,\)",
        ),
        (
            lambda: sigmoid_loss_backward(torch.ones(3), torch.ones(1, 2)),
            ValueError,
            r"x must have shape \(2,\) \(x0 and x1\), got \(1, 2\)",
        ),
        (
            lambda: sigmoid_loss(torch.ones(3, dtype=torch.long), torch.ones(2)),
            TypeError,
            r"w must be a floating-point tensor, got dtype torch.int64",
        ),
        (
            lambda: sigmoid_loss([1.0, 2.0, 3.0], torch.ones(2)),
            TypeError,
            r"w must be a torch.Tensor, got list",
        ),
        (
            lambda: skip_forward({k: 1.0 for k in SKIP_NAMES[:-1]}, 1.0, 0.0),
            ValueError,
            r"params must have exactly the keys .*missing \['b_e'\], unexpected \[\]",
        ),
        (
            lambda: skip_backward({**_good_skip(), "w_f": 1.0}, 1.0, 0.0),
            ValueError,
            r"missing \[\], unexpected \['w_f'\]",
        ),
        (
            lambda: skip_forward({**_good_skip(), "w_c": torch.ones(2)}, 1.0, 0.0),
            ValueError,
            r"params\['w_c'\] must be a number or a 0-d tensor, got shape \(2,\)",
        ),
        (
            lambda: skip_backward(_good_skip(), torch.ones(3), 0.0),
            ValueError,
            r"x0 must be a number or a 0-d tensor, got shape \(3,\)",
        ),
        (
            lambda: skip_forward(_good_skip(), 1.0, "0"),
            TypeError,
            r"t must be a number or a 0-d tensor, got str",
        ),
        (
            lambda: skip_forward([1.0] * 12, 1.0, 0.0),
            TypeError,
            r"params must be a mapping from name to value, got list",
        ),
        (
            lambda: relu_net(torch.ones(3), torch.ones(4, 2), torch.ones(4)),
            ValueError,
            r"x must have shape \(2,\) \(A has shape \(4, 2\), so x must be a vector in R\^2\), "
            r"got \(3,\)",
        ),
        (
            lambda: relu_net_input_grad(torch.ones(2), torch.ones(4, 2), torch.ones(2)),
            ValueError,
            r"w must have shape \(4,\) \(A has shape \(4, 2\), so w must be a vector in R\^4\)",
        ),
        (
            lambda: relu_net_input_grad(torch.ones(2), torch.ones(2), torch.ones(2)),
            ValueError,
            r"A must be a matrix of shape \(k, d\), got shape \(2,\)",
        ),
        (
            lambda: linear_backward(torch.ones(5, 3), torch.ones(4, 2), torch.ones(5, 2)),
            ValueError,
            r"X has shape \(5, 3\) but W has shape \(4, 2\): the last dimension of X must be in=4",
        ),
        (
            lambda: linear_backward(torch.ones(2, 5, 3), torch.ones(3, 2), torch.ones(5, 2)),
            ValueError,
            r"G must have the shape of Y = X @ W, \(2, 5, 2\) \(X \(2, 5, 3\), W \(3, 2\)\), "
            r"got \(5, 2\)",
        ),
        (
            lambda: linear_backward(torch.ones(5, 3), torch.ones(3), torch.ones(5)),
            ValueError,
            r"W must be a matrix of shape \(in, out\), got shape \(3,\)",
        ),
        (
            lambda: forward_backward_flops(lambda x: x, torch.ones(2)),
            TypeError,
            r"model must be a torch.nn.Module, got function",
        ),
        (
            lambda: forward_backward_flops(nn.ReLU(), torch.ones(2)),
            ValueError,
            r"nothing to differentiate: no parameter of model requires grad, and neither does x",
        ),
        (
            lambda: forward_backward_flops(nn.Linear(2, 3), torch.ones(2, dtype=torch.long)),
            TypeError,
            r"x must be a floating-point tensor, got dtype torch.int64",
        ),
    ],
)
def test_bad_input_raises_clear_error(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_public_names_are_listed():
    assert set(backprop.__all__) == {
        "sigmoid_loss",
        "sigmoid_loss_backward",
        "skip_forward",
        "skip_backward",
        "relu_net",
        "relu_net_input_grad",
        "linear_backward",
        "forward_backward_flops",
    }
