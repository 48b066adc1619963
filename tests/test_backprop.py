"""dlref.backprop: every hand-derived gradient against autograd, through the parity harness
(tests/parity.py), and against central differences with relative tolerances (float64); the
study notes' formulas shown to disagree with autograd; the FLOP accounting of the backward pass
against FlopCounterMode and closed forms.

A hand-written backward is compared with ``autograd_of(forward)``, torch's gradient of the
forward with ``create_graph=True``: the harness then checks the gradients' values and their own
derivatives with respect to every input, on contiguous, transposed and strided inputs.
"""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from parity import assert_matches_finite_differences, assert_parity
from torch import nn

from dlref import backprop
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
RNG_SEEDS = range(6)


def autograd_of(f, wrt=None):
    """The reference: (x_1, ...) -> torch's d f / d x_i for the inputs listed in ``wrt`` (all by
    default), differentiable in turn (create_graph=True)."""

    def grads(*inputs):
        chosen = inputs if wrt is None else [inputs[i] for i in wrt]
        out = torch.autograd.grad(f(*inputs), chosen, create_graph=True)
        return out if wrt is None or len(wrt) > 1 else out[0]

    return grads


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
    # dL/dw and dL/dx, and their derivatives in turn, against autograd
    assert_parity(
        lambda w, x: sigmoid_loss_backward(w, x)[1:],
        autograd_of(sigmoid_loss),
        (w, x),
        grad_atol=1e-14,
    )
    _, dL_dw, dL_dx = sigmoid_loss_backward(w, x)
    assert_matches_finite_differences(lambda v: sigmoid_loss(v, x), w, dL_dw)
    assert_matches_finite_differences(lambda v: sigmoid_loss(w, v), x, dL_dx)
    # dL/du as a function of u alone: L(u) = sigmoid(-u)
    u = w[0] * x[0] + w[1] * x[1] + w[2]
    dL_du = sigmoid_loss_backward(w, x)[0]
    assert_matches_finite_differences(lambda v: torch.sigmoid(-v), u, dL_du)


def _notes_dL_du(u):
    """The study notes: dL/du = -exp(u) / (1 + exp(u))^2."""
    return -u.exp() / (1 + u.exp()) ** 2


def test_notes_dL_du_is_right_for_moderate_u():
    """Against the closed form -sigma(u) sigma(-u) (autograd's L (1 - L) cancels for u << 0)."""
    u = torch.linspace(-30, 30, 61, dtype=DT)
    torch.testing.assert_close(
        _notes_dL_du(u), -torch.sigmoid(u) * torch.sigmoid(-u), rtol=1e-12, atol=0
    )


def test_dL_du_as_L_times_one_minus_L_cancels_where_ours_does_not():
    u = torch.tensor(-30.0, dtype=DT)
    w, x = torch.tensor([-30.0, 0.0, 0.0], dtype=DT), torch.tensor([1.0, 0.0], dtype=DT)
    exact = -torch.exp(u) / (1 + torch.exp(u)) ** 2  # accurate here: no overflow, no cancellation
    L = sigmoid_loss(w, x)
    torch.testing.assert_close(sigmoid_loss_backward(w, x)[0], exact, rtol=1e-14, atol=0)
    assert abs((-L * (1 - L) - exact) / exact) > 1e-6  # the form autograd uses, 1 - L ~ 1e-13


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_notes_dL_du_overflows_to_nan_where_ours_matches_autograd(dtype):
    u = torch.tensor(1000.0, dtype=dtype)
    w, x = torch.tensor([1000.0, 0.0, 0.0], dtype=dtype), torch.tensor([1.0, 0.0], dtype=dtype)
    assert torch.isnan(_notes_dL_du(u))
    dL_du, dL_dw, dL_dx = sigmoid_loss_backward(w, x)
    assert torch.isfinite(dL_du) and torch.isfinite(dL_dw).all() and torch.isfinite(dL_dx).all()
    ref_w, ref_x = autograd(sigmoid_loss, w, x)
    torch.testing.assert_close((dL_dw, dL_dx), (ref_w, ref_x))


@pytest.mark.parametrize("u", [44.5, 45.0, 60.0, 88.0])
def test_notes_dL_du_is_silently_zero_in_float32_for_u_above_44_4(u):
    """(1 + e^u)^2 overflows float32 once u > log(float32 max) / 2 = 44.36: the notes' formula
    returns -0, not nan, while the true value (about -2.9e-20 at u = 45) is a normal float32."""
    exact = (
        -torch.exp(-torch.tensor(u, dtype=DT)) / (1 + torch.exp(-torch.tensor(u, dtype=DT))) ** 2
    )
    assert _notes_dL_du(torch.tensor(u)).item() == 0.0
    ours = sigmoid_loss_backward(torch.tensor([u, 0.0, 0.0]), torch.tensor([1.0, 0.0]))[0]
    assert ours.item() != 0.0
    torch.testing.assert_close(ours.double(), exact, rtol=1e-5, atol=0)


@pytest.mark.parametrize("u", [89.0, 100.0])
def test_stable_dL_du_underflows_to_zero_in_float32_above_u_88_7_as_autograd(u):
    """-sigma(u) sigma(-u) is not accurate everywhere in float32: sigma(-u) = 1 / (1 + e^u) is 0
    once e^u overflows (u > 88.72), where the true value (2.2e-39 at u = 89) is not 0."""
    w, x = torch.tensor([u, 0.0, 0.0]), torch.tensor([1.0, 0.0])
    ours = sigmoid_loss_backward(w, x)[0]
    assert ours.item() == 0.0
    assert autograd(sigmoid_loss, w, x)[0][0].item() == 0.0
    exact = -torch.exp(-torch.tensor(u, dtype=DT))  # e^u / (1 + e^u)^2 ~ e^-u here
    assert exact.item() != 0.0
    w64, x64 = w.double(), x.double()  # float64 has room: it agrees with the exact value
    torch.testing.assert_close(sigmoid_loss_backward(w64, x64)[0], exact, rtol=1e-12, atol=0)


def test_sigmoid_loss_is_one_over_one_plus_exp_u():
    w, x = torch.tensor([0.3, -1.2, 0.7], dtype=DT), torch.tensor([2.0, 0.5], dtype=DT)
    u = 0.3 * 2.0 - 1.2 * 0.5 + 0.7
    torch.testing.assert_close(sigmoid_loss(w, x), torch.tensor(1 / (1 + torch.e**u), dtype=DT))


# ------------------------------------------------------------------ 2. the skip network


def _random_skip(rng_seed):
    g = torch.Generator().manual_seed(rng_seed)
    values = torch.randn(len(SKIP_NAMES) + 2, dtype=DT, generator=g)
    return dict(zip(SKIP_NAMES, values[:-2], strict=True)), values[-2], values[-1]


def _skip_loss_of_vector(v, t):
    """The loss as a function of one vector (the 12 parameters, then x0), for autograd and FD."""
    return skip_forward(dict(zip(SKIP_NAMES, v[:-1], strict=True)), v[-1], t)["loss"]


def _skip_grad_of_vector(v, t):
    """skip_backward as a function of the same vector: the 13 gradients, stacked."""
    grads = skip_backward(dict(zip(SKIP_NAMES, v[:-1], strict=True)), v[-1], t)
    return torch.stack([grads[k] for k in (*SKIP_NAMES, "x0")])


@pytest.mark.parametrize("rng_seed", RNG_SEEDS)
def test_skip_backward_matches_autograd_and_finite_differences(rng_seed):
    params, x0, t = _random_skip(rng_seed)
    v = torch.stack([*params.values(), x0])
    # the gradient, and its derivatives w.r.t. the parameters, x0 and the target t
    assert_parity(_skip_grad_of_vector, autograd_of(_skip_loss_of_vector, wrt=[0]), (v, t))
    assert_matches_finite_differences(
        lambda v: _skip_loss_of_vector(v, t), v, _skip_grad_of_vector(v, t)
    )


@pytest.mark.parametrize("rng_seed", RNG_SEEDS)
def test_skip_backward_activation_gradients_match_autograd(rng_seed):
    params, x0, t = _random_skip(rng_seed)
    nodes = ("x_a", "x_b", "x_c", "x_d", "x_e")
    leaves = {k: v.clone().requires_grad_() for k, v in params.items()}
    x0_leaf = x0.clone().requires_grad_()
    acts = skip_forward(leaves, x0_leaf, t)
    ref = torch.autograd.grad(acts["loss"], [acts[n] for n in nodes])
    grads = skip_backward(params, x0, t)
    torch.testing.assert_close(torch.stack([grads[n] for n in nodes]), torch.stack(ref))


def _notes_dL_dx_b(params, x0, t):
    """The study notes: dL/dx_b = dL/dx_e * dx_e/dx_d * (dx_c/dx_b + 1), dropping w_d and w_d2."""
    x_e = skip_forward(params, x0, t)["x_e"]
    return 2 * (x_e - t) * params["w_e"] * (params["w_c"] + 1)


def _autograd_dL_db_b(params, x0, t):
    leaves = {k: v.clone().requires_grad_() for k, v in params.items()}
    (ref,) = torch.autograd.grad(skip_forward(leaves, x0, t)["loss"], [leaves["b_b"]])
    return ref


@pytest.mark.parametrize("rng_seed", RNG_SEEDS)
def test_notes_dL_dx_b_disagrees_with_autograd(rng_seed):
    params, x0, t = _random_skip(rng_seed)
    ref_b_b = _autograd_dL_db_b(params, x0, t)
    notes_value = _notes_dL_dx_b(params, x0, t)  # the notes' dL/db_b = dL/dx_b
    assert not torch.allclose(notes_value, ref_b_b, rtol=1e-3)
    torch.testing.assert_close(skip_backward(params, x0, t)["b_b"], ref_b_b)


@pytest.mark.parametrize("rng_seed", RNG_SEEDS)
def test_notes_dL_dx_b_is_the_special_case_w_d_equals_w_d2_equals_one(rng_seed):
    params, x0, t = _random_skip(rng_seed)
    params.update(w_d=torch.tensor(1.0, dtype=DT), w_d2=torch.tensor(1.0, dtype=DT))
    torch.testing.assert_close(_notes_dL_dx_b(params, x0, t), _autograd_dL_db_b(params, x0, t))


def test_skip_backward_closed_form_for_dL_dx_b():
    params, x0, t = _random_skip(7)
    p = {k: v.item() for k, v in params.items()}
    # the forward by plain arithmetic, then 2 (x_e - t) w_e (w_d w_c + w_d2)
    x_a = p["w_a"] * x0.item() + p["b_a"]
    x_b = p["w_b"] * x_a + p["b_b"]
    x_c = p["w_c"] * x_b + p["b_c"]
    x_d = p["w_d"] * x_c + p["b_d"] + p["w_d2"] * x_b + p["b_d2"]
    x_e = p["w_e"] * x_d + p["b_e"]
    closed = 2 * (x_e - t.item()) * p["w_e"] * (p["w_d"] * p["w_c"] + p["w_d2"])
    assert skip_backward(params, x0, t)["x_b"].item() == pytest.approx(closed, rel=1e-13)


def test_skip_accepts_python_numbers():
    p = dict(w_a=2, b_a=0, w_b=1, b_b=1, w_c=2, b_c=0, w_d=2, b_d=0, w_d2=3, b_d2=0, w_e=0.5, b_e=0)
    g = skip_backward(p, 1, 10)
    assert skip_forward(p, 1, 10)["loss"].item() == 0.25
    assert (g["x_b"].item(), g["b_b"].item(), g["w_b"].item(), g["x0"].item()) == (3.5, 3.5, 7, 7)


# ------------------------------------------------------------------ 3. one hidden ReLU layer


@pytest.mark.parametrize(("d", "k"), [(1, 1), (3, 5), (7, 4), (16, 32)])
@pytest.mark.parametrize("rng_seed", RNG_SEEDS)
def test_relu_input_grad_matches_autograd_and_finite_differences(d, k, rng_seed):
    g = torch.Generator().manual_seed(rng_seed)
    x, A, w = (torch.randn(s, dtype=DT, generator=g) for s in ((d,), (k, d), (k,)))
    # the gradient in x, and its derivatives w.r.t. x, A and w, on every layout of A
    assert_parity(relu_net_input_grad, autograd_of(relu_net, wrt=[0]), (x, A, w))
    assert relu_net_input_grad(x, A, w).shape == (d,)
    # random points sit at a distance from every kink (A x)_i = 0 far larger than eps = 1e-6
    assert_matches_finite_differences(lambda v: relu_net(v, A, w), x, relu_net_input_grad(x, A, w))
    torch.testing.assert_close(relu_net(x, A, w), w @ (A @ x).clamp_min(0))  # the formula


def test_relu_input_grad_at_a_kink_uses_zero_like_torch():
    A = torch.tensor([[1.0, -1.0], [2.0, 1.0]], dtype=DT)  # (A x)_0 = 0 exactly at x = (1, 1)
    x, w = torch.tensor([1.0, 1.0], dtype=DT), torch.tensor([5.0, 1.0], dtype=DT)
    torch.testing.assert_close(relu_net_input_grad(x, A, w), autograd(relu_net, x, A, w)[0])
    torch.testing.assert_close(relu_net_input_grad(x, A, w), torch.tensor([2.0, 1.0], dtype=DT))


def test_relu_input_grad_with_inf_weight_on_an_inactive_unit_matches_autograd():
    """Z w selects w where a unit is active: 0 * inf would be nan; torch's ReLU backward selects."""
    A = torch.tensor([[1.0, 2.0], [-1.0, -1.0]], dtype=DT)  # unit 1 inactive at x = (1, 1)
    x, w = torch.tensor([1.0, 1.0], dtype=DT), torch.tensor([2.0, float("inf")], dtype=DT)
    x_ = x.clone().requires_grad_()
    (ref,) = torch.autograd.grad(w @ torch.relu(A @ x_), x_)
    torch.testing.assert_close(relu_net_input_grad(x, A, w), ref)
    assert torch.isfinite(ref).all()


@pytest.mark.parametrize("rng_seed", RNG_SEEDS)
def test_quiz_answer_A_transpose_Z_is_a_matrix_not_the_gradient(rng_seed):
    g = torch.Generator().manual_seed(rng_seed)
    d, k = 3, 5
    x, A, w = (torch.randn(s, dtype=DT, generator=g) for s in ((d,), (k, d), (k,)))
    Z = torch.diag((A @ x > 0).to(DT))
    quiz_answer = A.T @ Z
    (ref,) = autograd(relu_net, x, A, w)[:1]
    assert quiz_answer.shape == (d, k) != ref.shape
    # A^T Z is the transpose of the (k, d) Jacobian of x -> max(Ax, 0) ...
    J = torch.autograd.functional.jacobian(lambda v: torch.relu(A @ v), x)
    torch.testing.assert_close(quiz_answer, J.T)
    # ... and still has to meet w: (A^T Z) w is the gradient
    torch.testing.assert_close(quiz_answer @ w, ref)


# ------------------------------------------------------------------ 4. linear layer and FLOPs


@pytest.mark.parametrize(
    ("x_shape", "d_out"), [((3,), 4), ((5, 3), 4), ((2, 5, 3), 1), ((2, 3, 4, 6), 7), ((0, 3), 4)]
)
def test_linear_backward_matches_autograd(x_shape, d_out):
    g = torch.Generator().manual_seed(0)
    X = torch.randn(x_shape, dtype=DT, generator=g)
    W = torch.randn(x_shape[-1], d_out, dtype=DT, generator=g)
    G = torch.randn(*x_shape[:-1], d_out, dtype=DT, generator=g)

    def reference(X, W, G):  # torch's gradients of Y = X W for the upstream G
        return torch.autograd.grad(X @ W, (X, W), G, create_graph=True)

    # dX, dW, and their derivatives w.r.t. X, W and G, on every layout
    assert_parity(linear_backward, reference, (X, W, G))
    dX, dW = linear_backward(X, W, G)
    assert dX.shape == X.shape and dW.shape == W.shape


def test_linear_backward_matches_finite_differences_of_a_scalar_loss():
    g = torch.Generator().manual_seed(1)
    X, W, C = (torch.randn(s, dtype=DT, generator=g) for s in ((4, 3), (3, 2), (4, 2)))
    # L = sum(C * XW), so G = dL/dY = C
    dX, dW = linear_backward(X, W, C)
    assert_matches_finite_differences(lambda v: (C * (v @ W)).sum(), X, dX)
    assert_matches_finite_differences(lambda v: (C * (X @ v)).sum(), W, dW)


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
            r"w must have shape \(w0, w1, w2\) = \(3\), got \(2,\)",
        ),
        (
            lambda: sigmoid_loss_backward(torch.ones(3), torch.ones(1, 2)),
            ValueError,
            r"x must have shape \(x0, x1\) = \(2\), got \(1, 2\)",
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
            r"x must have shape \(d,\) = \(2\), got \(3,\)",
        ),
        (
            lambda: relu_net_input_grad(torch.ones(2), torch.ones(4, 2), torch.ones(2)),
            ValueError,
            r"w must have shape \(k,\) = \(4\), got \(2,\)",
        ),
        (
            lambda: relu_net_input_grad(torch.ones(2), torch.ones(2), torch.ones(2)),
            ValueError,
            r"A must have shape \(k, d\) = \(any, any\), got \(2,\)",
        ),
        (
            lambda: linear_backward(torch.ones(5, 3), torch.ones(4, 2), torch.ones(5, 2)),
            ValueError,
            r"X must have shape \(\*, in\) = \(\.\.\., 4\), got \(5, 3\)",
        ),
        (
            lambda: linear_backward(torch.ones(2, 5, 3), torch.ones(3, 2), torch.ones(5, 2)),
            ValueError,
            r"G must have shape \(\*, out\) = \(2, 5, 2\), got \(5, 2\)",
        ),
        (
            lambda: linear_backward(torch.ones(5, 3, dtype=DT), torch.ones(3, 2), torch.ones(5, 2)),
            TypeError,
            r"X, W and G must have the same dtype, got torch.float64, torch.float32 and "
            r"torch.float32",
        ),
        (
            lambda: linear_backward(torch.ones(5, 3), torch.ones(3), torch.ones(5)),
            ValueError,
            r"W must have shape \(in, out\) = \(any, any\), got \(3,\)",
        ),
        (
            lambda: forward_backward_flops(lambda x: x, torch.ones(2)),
            TypeError,
            r"model must be a torch.nn.Module, got function",
        ),
        (
            lambda: forward_backward_flops(nn.ReLU(), torch.ones(2)),
            ValueError,
            r"nothing to differentiate: neither x nor a model parameter needs grad",
        ),
        (
            lambda: forward_backward_flops(nn.Linear(2, 3), torch.tensor(1.0)),
            ValueError,
            r"model\(x\) failed for x of shape \(\): is it the shape model expects\?",
        ),
        (
            lambda: relu_net(torch.ones(2), torch.ones(3, 2), torch.ones(3, dtype=DT)),
            TypeError,
            r"x, A and w must have the same dtype, got torch.float32, torch.float32 and "
            r"torch.float64",
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
