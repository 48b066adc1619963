"""dlref.practice.normalization: the references agree with torch, and wrong implementations
written here (not the grader's own variants) are caught by the expected check with the expected
diagnosis. ``WRONG`` is also run by ``tests/test_practice.py`` with every other exercise's."""

import pytest
import torch
import torch.nn.functional as F

from dlref.practice import check
from dlref.practice import normalization as pn
from dlref.regularization import dropout

DT = torch.float64


# ---------------------------------------------------- the references agree with torch


def test_layer_norm_reference_matches_torch():
    g = torch.Generator().manual_seed(0)
    x, w, b = (torch.randn(s, dtype=DT, generator=g) for s in ((3, 4, 5), (5,), (5,)))
    torch.testing.assert_close(pn.layer_norm_reference(x, w, b), F.layer_norm(x, (5,), w, b))


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_reference_matches_torch_and_leaves_its_inputs(training):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(6, 3, dtype=DT, generator=g)
    rm, rv = torch.randn(3, dtype=DT, generator=g), torch.rand(3, dtype=DT, generator=g) + 0.5
    w, b = torch.randn(3, dtype=DT, generator=g), torch.randn(3, dtype=DT, generator=g)
    rm0, rv0 = rm.clone(), rv.clone()
    out = pn.batch_norm_reference(x, rm, rv, w, b, training=training, momentum=0.3)
    rm_t, rv_t = rm.clone(), rv.clone()
    y = F.batch_norm(x, rm_t, rv_t, w, b, training=training, momentum=0.3)
    torch.testing.assert_close(out["output"], y)
    torch.testing.assert_close(out["running_mean"], rm_t)
    torch.testing.assert_close(out["running_var"], rv_t)
    assert torch.equal(rm, rm0) and torch.equal(rv, rv0)


def test_dropout_reference_is_dlref_dropout_with_the_same_mask():
    x = torch.randn(1000, dtype=DT)
    y = dropout(x, 0.3, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(pn.dropout_reference(x, y != 0, 0.3), y)
    assert torch.equal(pn.dropout_reference(x, y != 0, 0.3, training=False), x)


# --------------------------------------------------------- wrong implementations, written here


def ln_over_batch(x, weight, bias, eps=1e-5):
    m, s = x.mean(0), x.std(0, unbiased=False)
    return weight * (x - m) / (s**2 + eps) ** 0.5 + bias


def ln_std_plus_eps(x, weight, bias, eps=1e-5):
    m = x.mean(-1, keepdim=True)
    s = ((x - m) ** 2).mean(-1, keepdim=True).sqrt()
    return weight * (x - m) / (s + eps) + bias


def bn_biased_running(x, running_mean, running_var, weight, bias, training=True, momentum=0.1,
                      eps=1e-5):  # fmt: skip
    if not training:
        y = (x - running_mean) / torch.sqrt(running_var + eps)
        return {
            "output": weight * y + bias,
            "running_mean": running_mean,
            "running_var": running_var,
        }
    if x.shape[0] < 2:
        raise ValueError("need more than one sample")
    mu = x.mean(0)
    var = ((x - mu) ** 2).mean(0)
    return {
        "output": weight * (x - mu) / torch.sqrt(var + eps) + bias,
        "running_mean": (1 - momentum) * running_mean + momentum * mu,
        "running_var": (1 - momentum) * running_var + momentum * var,  # biased
    }


def bn_batch_in_eval(x, running_mean, running_var, weight, bias, training=True, momentum=0.1,
                     eps=1e-5):  # fmt: skip
    if x.shape[0] < 2:
        raise ValueError("need more than one sample")
    mu, var = x.mean(0), x.var(0, unbiased=False)
    n = x.shape[0]
    if training:
        running_mean = (1 - momentum) * running_mean + momentum * mu
        running_var = (1 - momentum) * running_var + momentum * var * n / (n - 1)
    y = weight * (x - mu) / torch.sqrt(var + eps) + bias  # batch statistics in both modes
    return {"output": y, "running_mean": running_mean, "running_var": running_var}


def drop_forgot_scale(x, keep, p=0.5, training=True):
    if not 0 <= p <= 1:
        raise ValueError("p")
    return torch.where(keep, x, 0.0) if training else x


def drop_always(x, keep, p=0.5, training=True):
    if not 0 <= p <= 1:
        raise ValueError("p")
    return torch.zeros_like(x) if p == 1 else torch.where(keep, x / (1 - p), 0.0)


WRONG = [
    ("layer_norm", ln_over_batch, "values on a hand-sized case", "wrong_axis"),
    ("layer_norm", ln_std_plus_eps, "values on a hand-sized case", "eps_outside_sqrt"),
    ("batch_norm", bn_biased_running, "values on a hand-sized case (training)",
     "biased_running_var"),
    ("batch_norm", bn_batch_in_eval, "evaluation mode: the running estimates, unchanged",
     "batch_stats_in_eval"),
    ("dropout", drop_forgot_scale, "values on a hand-sized case", "no_rescale"),
    ("dropout", drop_always, "evaluation mode: the identity", "dropout_in_eval"),
]  # fmt: skip


@pytest.mark.parametrize(
    "name, fn, failed_check, diagnosis", WRONG, ids=[f"{w[0]}-{w[1].__name__}" for w in WRONG]
)
def test_wrong_implementation_is_caught_and_diagnosed(name, fn, failed_check, diagnosis):
    report = check(fn, name)
    assert not report.passed
    assert report.failed_check == failed_check, str(report)
    assert report.diagnosis == diagnosis, str(report)
    assert f"diagnosis ({diagnosis})" in str(report)


@pytest.mark.parametrize("name", ["layer_norm", "batch_norm", "dropout"])
def test_the_reference_passes(name):
    assert check(pn.__dict__[f"{name}_reference"], name).passed
