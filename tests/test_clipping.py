"""dlref.clipping against torch.nn.utils in float64: the norm, the clipped gradients, errors."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from dlref import clipping

DT = torch.float64


def _params_with_grads(seed=0, nonfinite=None):
    gen = torch.Generator().manual_seed(seed)
    shapes = [(3, 4), (5,), (2, 2, 2)]
    params = [torch.zeros(s, dtype=DT, requires_grad=True) for s in shapes]
    for p in params:
        p.grad = 10 * torch.randn(p.shape, generator=gen, dtype=DT)
    params.append(torch.zeros(3, dtype=DT, requires_grad=True))  # no .grad: skipped
    if nonfinite is not None:
        params[1].grad[2] = nonfinite
    return params


def _clone(params):
    out = []
    for p in params:
        q = p.detach().clone().requires_grad_()
        q.grad = None if p.grad is None else p.grad.clone()
        out.append(q)
    return out


@pytest.mark.parametrize("norm_type", [1.0, 2.0, float("inf"), 3.0, 0.5])
@pytest.mark.parametrize("max_norm", [0.5, 1e6])  # clipping, and no clipping (factor 1)
def test_clip_grad_norm_matches_torch(norm_type, max_norm):
    ours, ref = _params_with_grads(), _params_with_grads()
    n_ours = clipping.clip_grad_norm_(ours, max_norm, norm_type)
    n_ref = nn.utils.clip_grad_norm_(ref, max_norm, norm_type)
    torch.testing.assert_close(n_ours, n_ref, rtol=1e-12, atol=0)
    for a, b in zip(ours, ref, strict=True):
        assert (a.grad is None) == (b.grad is None)
        if a.grad is not None:
            torch.testing.assert_close(a.grad, b.grad, rtol=1e-12, atol=1e-15)


def test_clip_grad_norm_total_is_the_norm_of_all_gradients_concatenated():
    params = _params_with_grads()
    flat = torch.cat([p.grad.flatten() for p in params if p.grad is not None])
    for p in (1.0, 2.0, float("inf")):
        expected = torch.linalg.vector_norm(flat, p)
        torch.testing.assert_close(clipping.clip_grad_norm_(_clone(params), 1.0, p), expected)


def test_clip_grad_norm_of_a_single_tensor_and_of_nothing():
    w = torch.zeros(2, requires_grad=True)
    w.grad = torch.tensor([3.0, 4.0])
    assert clipping.clip_grad_norm_(w, 1.0).item() == pytest.approx(5.0)
    torch.testing.assert_close(w.grad, torch.tensor([0.6, 0.8]), atol=1e-6, rtol=0)
    assert torch.equal(clipping.clip_grad_norm_([], 1.0), nn.utils.clip_grad_norm_([], 1.0))
    with pytest.warns(UserWarning, match="empty generator"):
        clipping.clip_grad_norm_((p for p in []), 1.0)


@pytest.mark.parametrize("bad", [float("inf"), float("nan")])
@pytest.mark.parametrize("norm_type", [2.0, float("inf")])
def test_clip_grad_norm_nonfinite_like_torch(bad, norm_type):
    ours, ref = _params_with_grads(nonfinite=bad), _params_with_grads(nonfinite=bad)
    with pytest.raises(RuntimeError, match="non-finite"):
        clipping.clip_grad_norm_(ours, 1.0, norm_type, error_if_nonfinite=True)
    with pytest.raises(RuntimeError, match="non-finite"):
        nn.utils.clip_grad_norm_(ref, 1.0, norm_type, error_if_nonfinite=True)
    n_ours = clipping.clip_grad_norm_(ours, 1.0, norm_type)  # scaled by the non-finite factor
    n_ref = nn.utils.clip_grad_norm_(ref, 1.0, norm_type)
    torch.testing.assert_close(n_ours, n_ref, equal_nan=True)
    for a, b in zip(ours[:3], ref[:3], strict=True):
        torch.testing.assert_close(a.grad, b.grad, equal_nan=True)


@pytest.mark.parametrize("clip_value", [0.0, 1.5, 100.0])
def test_clip_grad_value_matches_torch(clip_value):
    ours, ref = _params_with_grads(), _params_with_grads()
    assert clipping.clip_grad_value_(ours, clip_value) is None
    nn.utils.clip_grad_value_(ref, clip_value)
    for a, b in zip(ours[:3], ref[:3], strict=True):
        assert torch.equal(a.grad, b.grad)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.floats(1e-3, 1e3), st.sampled_from([1.0, 2.0, float("inf")]))
def test_clipped_gradient_keeps_its_direction_and_has_norm_at_most_max_norm(seed, max_norm, p):
    params = _params_with_grads(seed)
    before = torch.cat([q.grad.flatten() for q in params[:3]])
    total = clipping.clip_grad_norm_(params, max_norm, p)
    after = torch.cat([q.grad.flatten() for q in params[:3]])
    assert torch.linalg.vector_norm(after, p) <= max_norm * (1 + 1e-9) or total <= max_norm
    scale = after.norm() / before.norm()  # one factor for every entry: same direction
    torch.testing.assert_close(after, scale * before, rtol=1e-12, atol=1e-300)
    assert scale <= 1


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda p: clipping.clip_grad_norm_(p, "1"), TypeError, "max_norm must be a real number"),
        (lambda p: clipping.clip_grad_norm_(p, 1.0, None), TypeError, "norm_type must be a real"),
        (
            lambda p: clipping.clip_grad_norm_(p, 1.0, error_if_nonfinite=1),
            TypeError,
            "error_if_nonfinite must be a bool",
        ),
        (lambda p: clipping.clip_grad_value_(p, "1"), TypeError, "clip_value must be a real"),
    ],
)
def test_bad_arguments_name_the_argument(call, error, match):
    with pytest.raises(error, match=match):
        call(_params_with_grads())
