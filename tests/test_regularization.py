"""dlref.regularization: inverted dropout. E[output] = input measured within its spread, the
identity in eval, p = 0 and p = 1 as torch, the gradient is the same mask over 1 - p, a
generator on the input's device, every error message."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dlref.regularization import Dropout, dropout

DT = torch.float64


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_expected_output_is_the_input_within_its_spread(p):
    n = 200_000
    x = torch.full((n,), 3.0, dtype=DT)
    y = dropout(x, p, generator=torch.Generator().manual_seed(0))
    # y_i = 3 m_i / (1 - p): mean 3, standard deviation 3 sqrt(p / (1 - p))
    sd_of_mean = 3 * math.sqrt(p / (1 - p)) / math.sqrt(n)
    assert abs(y.mean() - 3) < 4 * sd_of_mean
    assert abs((y == 0).double().mean() - p) < 4 * math.sqrt(p * (1 - p) / n)
    assert torch.allclose(y[y != 0], torch.tensor(3 / (1 - p), dtype=DT))


def test_same_statistics_as_torch():
    x = torch.ones(100_000, dtype=DT)
    ours = dropout(x, 0.3, generator=torch.Generator().manual_seed(1))
    ref = F.dropout(x, 0.3)
    assert set(ours.unique().tolist()) == set(ref.unique().tolist()) == {0.0, 1 / 0.7}


def test_gradient_is_the_mask_over_one_minus_p():
    x = torch.randn(50, 4, dtype=DT, requires_grad=True)
    y = dropout(x, 0.4, generator=torch.Generator().manual_seed(2))
    (g,) = torch.autograd.grad(y.sum(), x)
    torch.testing.assert_close(g, (y.detach() != 0).double() / 0.6)


@pytest.mark.parametrize("p", [0.0, 0.5, 1.0])
def test_eval_is_the_identity(p):
    x = torch.randn(10, dtype=DT)
    assert torch.equal(dropout(x, p, training=False), x)
    assert torch.equal(Dropout(p).eval()(x), x)


@pytest.mark.parametrize("p", [0.0, 1.0])
def test_p_zero_and_one_as_torch_values_and_gradients(p):
    x = torch.tensor([1.0, -2.0, float("inf"), 0.0], dtype=DT)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    ours, ref = dropout(x1, p), F.dropout(x2, p)
    torch.testing.assert_close(ours, ref, equal_nan=True)
    g = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=DT)
    grads = [torch.autograd.grad(y, v, g)[0] for y, v in ((ours, x1), (ref, x2))]
    torch.testing.assert_close(*grads)


def test_generator_makes_it_reproducible():
    x = torch.ones(64)
    a = dropout(x, generator=torch.Generator().manual_seed(7))
    b = dropout(x, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a, b)


def test_module_train_and_eval_and_repr():
    d = Dropout(0.5)
    assert repr(d) == "Dropout(p=0.5)"
    torch.manual_seed(0)
    assert (d(torch.ones(1000)) == 0).any()
    assert d.eval()(torch.ones(3)).tolist() == [1.0, 1.0, 1.0]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_generator_on_the_inputs_device():
    x = torch.ones(1000, device="cuda")
    g = torch.Generator(device="cuda").manual_seed(0)
    assert dropout(x, 0.5, generator=g).device == x.device
    with pytest.raises(ValueError, match="generator is on cpu but the tensors are on cuda"):
        dropout(x, 0.5, generator=torch.Generator())


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match=r"p must lie in \[0, 1\], got 1.5"):
        dropout(torch.ones(3), 1.5)
    with pytest.raises(ValueError, match=r"p must lie in \[0, 1\], got -0.1"):
        Dropout(-0.1)
    with pytest.raises(TypeError, match="p must be a real number"):
        dropout(torch.ones(3), "0.5")
    with pytest.raises(TypeError, match="input must be a floating"):
        dropout(torch.ones(3, dtype=torch.long))
    with pytest.raises(TypeError, match="generator must be a torch.Generator"):
        dropout(torch.ones(3), generator=1)
    assert dropout(torch.ones(3), np.float64(0.0)).tolist() == [1.0, 1.0, 1.0]
