"""dlref.activations against torch in float64: values and gradients, extremes, errors, shape."""

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from parity import assert_matches_finite_differences, assert_parity

from dlref import activations

DT = torch.float64

# (ours, torch's, keyword arguments)
CASES = [
    ("relu", F.relu, {}),
    ("sigmoid", torch.sigmoid, {}),
    ("tanh", torch.tanh, {}),
    ("gelu", F.gelu, {}),
    ("gelu", F.gelu, {"approximate": "tanh"}),
    ("silu", F.silu, {}),
    ("softplus", F.softplus, {}),
    ("softplus", F.softplus, {"beta": 2.0, "threshold": 5.0}),
    ("softplus", F.softplus, {"beta": 0.5, "threshold": 30.0}),
]
IDS = [f"{name}{kwargs or ''}" for name, _, kwargs in CASES]


def _inputs():
    torch.manual_seed(0)
    x = 4 * torch.randn(3, 5, dtype=DT)
    x[0, :3] = torch.tensor([0.0, 25.0, -25.0], dtype=DT)  # the origin and the softplus switch
    return x


@pytest.mark.parametrize(("name", "reference", "kwargs"), CASES, ids=IDS)
def test_matches_torch_values_and_gradients(name, reference, kwargs):
    ours = getattr(activations, name)
    # ReLU's second derivative is 0 wherever it exists; torch returns zeros, ours no graph
    assert_parity(ours, reference, (_inputs(),), kwargs, double_backward=name != "relu")


@pytest.mark.parametrize(("name", "reference", "kwargs"), CASES, ids=IDS)
def test_gradient_at_zero_matches_torch(name, reference, kwargs):
    """At x = 0 a formula written with |x| gets the gradient wrong (|x|' = 0 there)."""
    assert_parity(getattr(activations, name), reference, (torch.zeros(4, dtype=DT),), kwargs)


@pytest.mark.parametrize(("name", "reference", "kwargs"), CASES, ids=IDS)
def test_extreme_inputs_give_what_torch_gives(name, reference, kwargs):
    x = torch.tensor([-1e4, -800.0, -50.0, 50.0, 800.0, 1e4], dtype=DT)
    assert_parity(getattr(activations, name), reference, (x,), kwargs)
    for dtype in (torch.float32, DT):  # no overflow to inf or nan in either precision
        big = x.to(dtype)
        torch.testing.assert_close(
            getattr(activations, name)(big, **kwargs), reference(big, **kwargs)
        )


@pytest.mark.parametrize(("name", "reference", "kwargs"), CASES, ids=IDS)
def test_infinities_and_nan_give_what_torch_gives(name, reference, kwargs):
    x = torch.tensor([-math.inf, math.inf, math.nan], dtype=DT)
    torch.testing.assert_close(
        getattr(activations, name)(x, **kwargs), reference(x, **kwargs), equal_nan=True
    )


@pytest.mark.parametrize(("name", "reference", "kwargs"), CASES, ids=IDS)
def test_tiny_inputs_keep_relative_precision(name, reference, kwargs):
    x = torch.tensor([1e-300, -1e-20, 1e-10], dtype=DT)
    torch.testing.assert_close(
        getattr(activations, name)(x, **kwargs), reference(x, **kwargs), rtol=1e-14, atol=0
    )


@pytest.mark.parametrize(("name", "reference", "kwargs"), CASES, ids=IDS)
def test_empty_input_and_float32(name, reference, kwargs):
    fn = getattr(activations, name)
    assert fn(torch.empty(0, 3, dtype=DT), **kwargs).shape == (0, 3)
    x = _inputs().float()
    out = fn(x, **kwargs)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, reference(x, **kwargs))


@pytest.mark.parametrize("name", ["sigmoid", "tanh", "gelu", "silu", "softplus"])
def test_gradient_matches_finite_differences(name):
    fn = getattr(activations, name)
    x = _inputs().requires_grad_()
    (grad,) = torch.autograd.grad(fn(x).sum(), x)
    assert_matches_finite_differences(lambda v: fn(v).sum(), x.detach(), grad)


def test_closed_form_derivatives():
    x = torch.linspace(-5, 5, 101, dtype=DT, requires_grad=True)
    s, phi = torch.sigmoid(x.detach()), torch.exp(-(x.detach() ** 2) / 2) / math.sqrt(2 * math.pi)
    expected = {
        "sigmoid": s * (1 - s),
        "tanh": 1 - torch.tanh(x.detach()) ** 2,
        "gelu": 0.5 * (1 + torch.erf(x.detach() / math.sqrt(2))) + x.detach() * phi,
        "silu": s * (1 + x.detach() * (1 - s)),
        "softplus": s,
    }
    for name, derivative in expected.items():
        (grad,) = torch.autograd.grad(getattr(activations, name)(x).sum(), x)
        torch.testing.assert_close(grad, derivative, rtol=1e-12, atol=1e-14, msg=name)


def test_minima_of_gelu_and_silu():
    """GELU and SiLU are not monotone: their derivative vanishes at -0.7518 and -1.2785."""
    for name, x_min, f_min in (("gelu", -0.751791, -0.169971), ("silu", -1.278465, -0.278465)):
        x = torch.tensor(x_min, dtype=DT, requires_grad=True)
        y = getattr(activations, name)(x)
        (grad,) = torch.autograd.grad(y, x)
        assert abs(grad.item()) < 1e-5
        assert y.item() == pytest.approx(f_min, abs=1e-6)


finite = st.floats(-30, 30, allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None)
@given(a=finite, b=finite)
def test_monotone_and_convex_as_the_page_says(a, b):
    """sigmoid, tanh, softplus are non-decreasing; relu and softplus satisfy midpoint convexity."""
    lo, hi = torch.tensor(sorted((a, b)), dtype=DT)
    for name in ("relu", "sigmoid", "tanh", "softplus"):
        fn = getattr(activations, name)
        assert fn(lo) <= fn(hi)
    for name in ("relu", "softplus"):
        fn = getattr(activations, name)
        assert fn((lo + hi) / 2) <= (fn(lo) + fn(hi)) / 2 + 1e-12


@settings(max_examples=60, deadline=None)
@given(a=finite)
def test_softplus_is_a_smooth_relu(a):
    """max(0, x) <= softplus(x) <= max(0, x) + log 2."""
    x = torch.tensor(a, dtype=DT)
    sp, r = activations.softplus(x), activations.relu(x)
    assert r <= sp <= r + math.log(2) + 1e-12


@pytest.mark.parametrize("name", ["relu", "sigmoid", "tanh", "gelu", "silu", "softplus"])
def test_errors_name_the_argument(name):
    fn = getattr(activations, name)
    with pytest.raises(TypeError, match="input must be a torch.Tensor, got list"):
        fn([1.0, 2.0])
    with pytest.raises(
        TypeError, match="input must be a floating-point tensor, got dtype torch.int64"
    ):
        fn(torch.tensor([1, 2]))


def test_gelu_rejects_unknown_approximation():
    with pytest.raises(
        ValueError, match=r"approximate must be one of \('none', 'tanh'\), got 'erf'"
    ):
        activations.gelu(torch.zeros(2), approximate="erf")


@pytest.mark.parametrize("param", ["beta", "threshold"])
def test_softplus_numbers_must_be_real(param):
    with pytest.raises(TypeError, match=f"{param} must be a real number, got str '1'"):
        activations.softplus(torch.zeros(2), **{param: "1"})


@pytest.mark.parametrize("name", ["relu", "silu"])
def test_inplace_is_refused_clearly(name):
    with pytest.raises(ValueError, match="inplace=True is not supported"):
        getattr(activations, name)(torch.zeros(2), inplace=True)
