"""dlref.init against torch.nn.init: the same numbers from the same generator state, torch's fans
(linear and conv weights) and gains, the moments of each distribution, every error message."""

import math

import numpy as np
import pytest
import torch
import torch.nn.init as I

from dlref import init

SHAPES = [(64, 32), (16, 8, 3, 3), (8, 4, 5), (5, 7, 2, 2, 2)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("xavier_uniform_", {}),
        ("xavier_uniform_", {"gain": 5 / 3}),
        ("xavier_normal_", {}),
        ("xavier_normal_", {"gain": 2.0}),
        ("kaiming_uniform_", {}),
        ("kaiming_uniform_", {"a": math.sqrt(5)}),
        ("kaiming_uniform_", {"mode": "fan_out", "nonlinearity": "relu"}),
        ("kaiming_normal_", {}),
        ("kaiming_normal_", {"mode": "FAN_OUT", "nonlinearity": "tanh"}),
        ("kaiming_normal_", {"a": 0.2, "nonlinearity": "leaky_relu"}),
    ],
)
def test_same_numbers_as_torch_from_the_same_generator_state(name, kwargs, shape, dtype):
    ours = getattr(init, name)(
        torch.empty(shape, dtype=dtype), **kwargs, generator=torch.Generator().manual_seed(3)
    )
    ref = getattr(I, name)(
        torch.empty(shape, dtype=dtype), **kwargs, generator=torch.Generator().manual_seed(3)
    )
    assert torch.equal(ours, ref)


def test_same_numbers_from_the_default_generator():
    torch.manual_seed(5)
    ours = init.kaiming_uniform_(torch.empty(20, 10))
    torch.manual_seed(5)
    assert torch.equal(ours, I.kaiming_uniform_(torch.empty(20, 10)))


def test_nn_linear_default_init_is_kaiming_uniform_with_a_sqrt5():
    torch.manual_seed(0)
    lin = torch.nn.Linear(30, 20)
    torch.manual_seed(0)
    assert torch.equal(init.kaiming_uniform_(torch.empty(20, 30), a=math.sqrt(5)), lin.weight)


@pytest.mark.parametrize(
    ("fn", "kwargs", "var", "kind"),
    [
        (init.xavier_uniform_, {}, 2 / (400 + 300), "uniform"),
        (init.xavier_normal_, {"gain": 5 / 3}, (5 / 3) ** 2 * 2 / 700, "normal"),
        (init.kaiming_uniform_, {"nonlinearity": "relu"}, 2 / 300, "uniform"),
        (init.kaiming_normal_, {"mode": "fan_out", "nonlinearity": "relu"}, 2 / 400, "normal"),
    ],
)
def test_moments_are_the_closed_form(fn, kwargs, var, kind):
    w = fn(torch.empty(400, 300, dtype=torch.float64), **kwargs,
           generator=torch.Generator().manual_seed(0))  # fmt: skip
    n = w.numel()
    assert abs(w.mean()) < 4 * math.sqrt(var / n)
    # Var of the sample variance: 2 var^2 / n (normal), 0.8 var^2 / n (uniform)
    assert abs(w.var() - var) < 5 * var * math.sqrt((2 if kind == "normal" else 0.8) / n)
    if kind == "uniform":
        bound = math.sqrt(3 * var)
        assert w.abs().max() <= bound and w.abs().max() > 0.99 * bound


@pytest.mark.parametrize(
    ("shape", "fans"), [((20, 30), (30, 20)), ((16, 8, 3, 3), (72, 144)), ((8, 4, 5), (20, 40))]
)
def test_fan_in_and_fan_out_as_torch(shape, fans):
    assert fans == I._calculate_fan_in_and_fan_out(torch.empty(shape))
    # kaiming's std = gain / sqrt(fan) tells the fan: check both modes
    for mode in ("fan_in", "fan_out"):
        g = torch.Generator().manual_seed(0)
        w = torch.empty(200, *shape[1:], dtype=torch.float64)
        init.kaiming_normal_(w, mode=mode, nonlinearity="linear", generator=g)
        fan_here = I._calculate_fan_in_and_fan_out(w)[0 if mode == "fan_in" else 1]
        assert abs(w.std() * math.sqrt(fan_here) - 1) < 0.05


@pytest.mark.parametrize(
    ("nonlinearity", "param"),
    [
        ("linear", None), ("conv2d", None), ("conv_transpose3d", None), ("sigmoid", None),
        ("tanh", None), ("relu", None), ("leaky_relu", None), ("leaky_relu", 0.2),
        ("leaky_relu", 1), ("selu", None),
    ],
)  # fmt: skip
def test_calculate_gain_as_torch(nonlinearity, param):
    assert init.calculate_gain(nonlinearity, param) == I.calculate_gain(nonlinearity, param)


def test_relu_gain_restores_unit_second_moment():
    x = torch.randn(1_000_000, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    m2 = (init.calculate_gain("relu") * torch.relu(x)).square().mean()
    assert abs(m2 - 1) < 0.01


def test_numpy_scalars_accepted():
    w = init.xavier_uniform_(torch.empty(4, 4), gain=np.float64(2.0),
                             generator=torch.Generator().manual_seed(0))  # fmt: skip
    ref = I.xavier_uniform_(torch.empty(4, 4), gain=2.0, generator=torch.Generator().manual_seed(0))
    assert torch.equal(w, ref)
    assert init.calculate_gain("leaky_relu", np.float64(0.2)) == I.calculate_gain("leaky_relu", 0.2)


def test_zero_element_tensor_warns_and_is_unchanged_as_torch():
    with pytest.warns(UserWarning, match="zero-element"):
        assert init.kaiming_normal_(torch.empty(0, 3)).shape == (0, 3)


@pytest.mark.parametrize(
    ("call", "err", "match"),
    [
        (lambda: init.xavier_uniform_(torch.empty(5)), ValueError,
         r"tensor must have shape \(out_features, in_features, \*kernel\)"),
        (lambda: init.kaiming_normal_(torch.empty(5)), ValueError,
         r"tensor must have shape \(out_features, in_features, \*kernel\)"),
        (lambda: init.xavier_normal_([[1.0]]), TypeError, "tensor must be a torch.Tensor"),
        (lambda: init.kaiming_uniform_(torch.empty(3, 3, dtype=torch.long)), TypeError,
         "tensor must be a floating"),
        (lambda: init.kaiming_uniform_(torch.empty(3, 3), mode="fan_avg"), ValueError,
         "mode must be 'fan_in' or 'fan_out'"),
        (lambda: init.calculate_gain("softmax"), ValueError, "nonlinearity 'softmax' is not"),
        (lambda: init.calculate_gain("leaky_relu", "0.1"), ValueError, "param"),
        (lambda: init.xavier_uniform_(torch.empty(3, 3), gain="1"), TypeError,
         "gain must be a real number"),
        (lambda: init.xavier_uniform_(torch.empty(3, 3), generator=0), TypeError,
         "generator must be a torch.Generator"),
    ],
)  # fmt: skip
def test_errors_name_the_argument(call, err, match):
    with pytest.raises(err, match=match):
        call()


@pytest.mark.parametrize("gain", [-1.0, math.nan, math.inf])
def test_gain_torch_refuses_is_a_value_error_naming_gain(gain):
    with pytest.raises(RuntimeError):  # torch's own, deep inside uniform_
        I.xavier_uniform_(torch.empty(3, 4), gain=gain)
    with pytest.raises(ValueError, match="gain must be a finite number >= 0"):
        init.xavier_uniform_(torch.empty(3, 4), gain=gain)
    if math.isinf(gain):  # torch's normal_ fills with +-inf: so do we
        assert init.xavier_normal_(torch.empty(3, 4), gain=gain).isinf().all()
        return
    with pytest.raises(RuntimeError):
        I.xavier_normal_(torch.empty(3, 4), gain=gain)
    with pytest.raises(ValueError, match="gain must be >= 0"):
        init.xavier_normal_(torch.empty(3, 4), gain=gain)
