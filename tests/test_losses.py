"""dlref.losses against torch.nn.functional in float64: values and gradients, every option."""

import itertools

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from dlref import losses

DT = torch.float64


def assert_same_value_and_grad(ours, ref, inputs):
    """Equal values, and equal gradients w.r.t. every input for a random upstream gradient."""
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)
    g = torch.randn_like(ref)
    grads_ours = torch.autograd.grad(ours, inputs, g, retain_graph=True)
    grads_ref = torch.autograd.grad(ref, inputs, g, retain_graph=True)
    for a, b in zip(grads_ours, grads_ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


# ------------------------------------------------------------------------------------- softmax


@pytest.mark.parametrize("fn", ["softmax", "log_softmax"])
@pytest.mark.parametrize(("shape", "dim"), [((5,), 0), ((3, 5), -1), ((3, 5), 0), ((2, 4, 7), 1)])
def test_softmax_family_matches_torch(fn, shape, dim):
    torch.manual_seed(0)
    x = (3 * torch.randn(shape, dtype=DT)).requires_grad_()
    assert_same_value_and_grad(getattr(losses, fn)(x, dim), getattr(torch, fn)(x, dim), [x])


@pytest.mark.parametrize("fn", ["softmax", "log_softmax"])
def test_softmax_dtype_argument_casts_first(fn):
    x = torch.randn(4, 3)
    ours, ref = getattr(losses, fn)(x, 1, dtype=DT), getattr(torch, fn)(x, 1, dtype=DT)
    assert ours.dtype == DT
    torch.testing.assert_close(ours, ref)


@pytest.mark.parametrize("fn", ["softmax", "log_softmax"])
def test_softmax_extreme_logits_are_finite_and_match_torch(fn):
    x = torch.tensor([[1e4, 0.0, -1e4], [-1e4, -1e4, -1e4]], dtype=DT, requires_grad=True)
    ours = getattr(losses, fn)(x, 1)
    assert torch.isfinite(ours).all()
    assert_same_value_and_grad(ours, getattr(torch, fn)(x, 1), [x])


def test_naive_softmax_is_nan_at_extreme_logits():
    """The failure the stable formula exists for: e^1e4 overflows to inf, and inf/inf is nan."""
    x = torch.tensor([1e4, 0.0])
    assert torch.isnan(x.exp() / x.exp().sum()).any()
    assert not torch.isnan(losses.softmax(x, 0)).any()


finite_floats = st.floats(-50, 50, allow_nan=False, allow_infinity=False)
vectors = st.lists(finite_floats, min_size=1, max_size=12)


@settings(max_examples=60, deadline=None)
@given(vectors, finite_floats)
def test_softmax_sums_to_one_and_is_shift_invariant(values, shift):
    x = torch.tensor(values, dtype=DT)
    p = losses.softmax(x, 0)
    torch.testing.assert_close(p.sum(), torch.tensor(1.0, dtype=DT))
    assert (p >= 0).all()
    torch.testing.assert_close(losses.softmax(x + shift, 0), p)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 6), st.integers(2, 6), st.data())
def test_cross_entropy_is_nonnegative_and_equals_nll_of_log_softmax(n, c, data):
    x = torch.tensor(data.draw(st.lists(finite_floats, min_size=n * c, max_size=n * c)), dtype=DT)
    x = x.reshape(n, c)
    y = torch.tensor(data.draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n)))
    loss = losses.cross_entropy(x, y, reduction="none")
    assert (loss >= 0).all()
    torch.testing.assert_close(loss, losses.nll_loss(losses.log_softmax(x, 1), y, reduction="none"))
    torch.testing.assert_close(loss, F.cross_entropy(x, y, reduction="none"))


# ------------------------------------------------------------------------- class-index targets

# (input shape, target shape): one sample, a batch, a batch with extra dims (N, C, d1, d2)
INDEX_SHAPES = [((5,), ()), ((6, 5), (6,)), ((3, 5, 4), (3, 4)), ((2, 5, 3, 2), (2, 3, 2))]
REDUCTIONS = ["mean", "sum", "none"]


def _index_case(in_shape, t_shape, ignore):
    torch.manual_seed(1)
    x = (2 * torch.randn(in_shape, dtype=DT)).requires_grad_()
    C = in_shape[0] if len(in_shape) == 1 else in_shape[1]
    t = torch.randint(0, C, t_shape)
    if ignore is not None and t.dim() > 0:
        t.view(-1)[::3] = ignore  # every third position ignored (never all of them)
    elif t.dim() == 0 and t.item() == ignore:
        t = (t + 1) % C  # a single sample that is ignored would make the mean 0/0
    w = torch.rand(C, dtype=DT) + 0.5
    return x, t, w


@pytest.mark.parametrize(("in_shape", "t_shape"), INDEX_SHAPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("ignore", [None, -100, 1])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.25])
def test_cross_entropy_class_indices_match_torch(
    in_shape, t_shape, reduction, weighted, ignore, label_smoothing
):
    x, t, w = _index_case(in_shape, t_shape, ignore)
    kw = dict(
        weight=w if weighted else None,
        reduction=reduction,
        label_smoothing=label_smoothing,
        ignore_index=-100 if ignore is None else ignore,
    )
    ours, ref = losses.cross_entropy(x, t, **kw), F.cross_entropy(x, t, **kw)
    assert_same_value_and_grad(ours, ref, [x])


@pytest.mark.parametrize(("in_shape", "t_shape"), INDEX_SHAPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("ignore", [None, 2])
def test_nll_loss_matches_torch(in_shape, t_shape, reduction, weighted, ignore):
    x, t, w = _index_case(in_shape, t_shape, ignore)
    kw = dict(weight=w if weighted else None, reduction=reduction)
    if ignore is not None:
        kw["ignore_index"] = ignore
    logp = torch.log_softmax(x, dim=0 if x.dim() == 1 else 1)
    assert_same_value_and_grad(losses.nll_loss(logp, t, **kw), F.nll_loss(logp, t, **kw), [x])


def test_weighted_mean_divides_by_total_weight_not_n():
    x = torch.randn(4, 3, dtype=DT)
    t = torch.tensor([0, 0, 2, 2])
    w = torch.tensor([1.0, 1.0, 5.0], dtype=DT)
    per = losses.cross_entropy(x, t, w, reduction="none")
    torch.testing.assert_close(losses.cross_entropy(x, t, w), per.sum() / 12.0)


def test_all_targets_ignored_gives_nan_like_torch():
    x, t = torch.randn(3, 4, dtype=DT), torch.full((3,), -100)
    assert torch.isnan(losses.cross_entropy(x, t)) and torch.isnan(F.cross_entropy(x, t))


# ------------------------------------------------------------------------- probability targets


@pytest.mark.parametrize("in_shape", [(5,), (6, 5), (3, 5, 4)])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.3])
def test_cross_entropy_probabilities_match_torch(in_shape, reduction, weighted, label_smoothing):
    torch.manual_seed(2)
    cdim = 0 if len(in_shape) == 1 else 1
    x = torch.randn(in_shape, dtype=DT, requires_grad=True)
    q = torch.softmax(torch.randn(in_shape, dtype=DT), dim=cdim).requires_grad_()
    w = torch.rand(in_shape[cdim], dtype=DT) if weighted else None
    kw = dict(weight=w, reduction=reduction, label_smoothing=label_smoothing)
    ours, ref = losses.cross_entropy(x, q, **kw), F.cross_entropy(x, q, **kw)
    assert_same_value_and_grad(ours, ref, [x, q])  # gradients w.r.t. logits and target


def test_label_smoothing_equals_smoothed_probability_target():
    x, y, eps = torch.randn(5, 4, dtype=DT), torch.tensor([0, 1, 2, 3, 0]), 0.2
    smooth = (1 - eps) * F.one_hot(y, 4).to(DT) + eps / 4
    torch.testing.assert_close(
        losses.cross_entropy(x, y, label_smoothing=eps), losses.cross_entropy(x, smooth)
    )


# ------------------------------------------------------------------------- extreme logits


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
def test_cross_entropy_extreme_logits_finite_and_match_torch(label_smoothing):
    x = torch.tensor([[1e4, -1e4, 0.0], [-1e4, -1e4, 1e4]], dtype=DT, requires_grad=True)
    t = torch.tensor([1, 2])
    ours = losses.cross_entropy(x, t, label_smoothing=label_smoothing)
    assert torch.isfinite(ours)
    assert_same_value_and_grad(ours, F.cross_entropy(x, t, label_smoothing=label_smoothing), [x])
    torch.testing.assert_close(
        losses.cross_entropy(x, t, reduction="none")[0].detach(), torch.tensor(2e4, dtype=DT)
    )


# ------------------------------------------------------------------------- binary


@pytest.mark.parametrize("shape", [(7,), (4, 3), (2, 3, 5)])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize(("weighted", "pos_weighted"), list(itertools.product([0, 1], [0, 1])))
def test_bce_with_logits_matches_torch(shape, reduction, weighted, pos_weighted):
    torch.manual_seed(3)
    x = (3 * torch.randn(shape, dtype=DT)).requires_grad_()
    t = torch.rand(shape, dtype=DT).requires_grad_()  # soft targets, gradient w.r.t. them too
    kw = dict(
        weight=torch.rand(shape[-1], dtype=DT) if weighted else None,  # broadcast
        pos_weight=torch.rand(shape[-1], dtype=DT) * 3 if pos_weighted else None,
        reduction=reduction,
    )
    ours = losses.binary_cross_entropy_with_logits(x, t, **kw)
    ref = F.binary_cross_entropy_with_logits(x, t, **kw)
    assert_same_value_and_grad(ours, ref, [x, t])


def test_bce_with_logits_extreme_and_zero_logits_match_torch():
    x = torch.tensor([-1e4, 1e4, -1e4, 1e4, 0.0], dtype=DT, requires_grad=True)
    t = torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0], dtype=DT)
    pw = torch.tensor(2.0, dtype=DT)
    for kw in ({}, {"pos_weight": pw}):
        ours = losses.binary_cross_entropy_with_logits(x, t, reduction="none", **kw)
        assert torch.isfinite(ours).all()
        ref = F.binary_cross_entropy_with_logits(x, t, reduction="none", **kw)
        assert_same_value_and_grad(ours, ref, [x])


def test_bce_equals_two_class_cross_entropy():
    x = torch.randn(6, dtype=DT)
    t = torch.randint(0, 2, (6,))
    two_class = torch.stack([torch.zeros_like(x), x], dim=1)
    torch.testing.assert_close(
        losses.binary_cross_entropy_with_logits(x, t.to(DT)), losses.cross_entropy(two_class, t)
    )


# ------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (
            lambda x: losses.cross_entropy(x, torch.tensor([0.0, 1.0, 2.0])),
            TypeError,
            r"floating-point with shape \(3,\).*input's shape \(3, 4\)",
        ),
        (
            lambda x: losses.cross_entropy(x, torch.tensor([0, 4, 1])),
            ValueError,
            r"class index 4 .* shape \(3, 4\) has C=4",
        ),
        (
            lambda x: losses.cross_entropy(x, torch.tensor([0, -1, 1])),
            ValueError,
            r"class index -1",
        ),
        (
            lambda x: losses.cross_entropy(x, torch.tensor([0, 1])),
            ValueError,
            r"input has shape \(3, 4\).*must have shape \(3,\), got \(2,\)",
        ),
        (
            lambda x: losses.cross_entropy(x, torch.rand(3, 5)),
            TypeError,
            r"shape \(3, 5\).*input's shape \(3, 4\)",
        ),
        (
            lambda x: losses.cross_entropy(x, torch.tensor([True, False, True])),
            TypeError,
            r"integer tensor, got dtype torch.bool",
        ),
        (
            lambda x: losses.cross_entropy(x, torch.tensor([0, 1, 2]), torch.ones(3)),
            ValueError,
            r"weight must have shape \(4,\).*got \(3,\)",
        ),
        (
            lambda x: losses.cross_entropy(x, torch.tensor([0, 1, 2]), reduction="avg"),
            ValueError,
            r"reduction must be one of",
        ),
        (
            lambda x: losses.cross_entropy(x, torch.tensor([0, 1, 2]), label_smoothing=1.5),
            ValueError,
            r"label_smoothing must be in \[0, 1\]",
        ),
        (
            lambda x: losses.cross_entropy(torch.tensor([[1, 2]]), torch.tensor([0])),
            TypeError,
            r"input must be a floating-point tensor",
        ),
        (lambda x: losses.cross_entropy(x, [0, 1, 2]), TypeError, r"target must be a torch.Tensor"),
        (
            lambda x: losses.cross_entropy(torch.tensor(1.0), torch.tensor(0)),
            ValueError,
            r"input must have a class dimension",
        ),
        (
            lambda x: losses.nll_loss(x, torch.tensor([[0, 1, 2]])),
            ValueError,
            r"must have shape \(3,\), got \(1, 3\)",
        ),
        (
            lambda x: losses.binary_cross_entropy_with_logits(x, torch.rand(3)),
            ValueError,
            r"target must have the input's shape \(3, 4\), got \(3,\)",
        ),
        (
            lambda x: losses.binary_cross_entropy_with_logits(
                x, torch.ones(3, 4, dtype=torch.long)
            ),
            TypeError,
            r"target must be a floating-point tensor",
        ),
        (
            lambda x: losses.binary_cross_entropy_with_logits(
                x, torch.rand(3, 4), pos_weight=torch.ones(3)
            ),
            ValueError,
            r"pos_weight of shape \(3,\) does not broadcast to the input's shape \(3, 4\)",
        ),
        (
            lambda x: losses.softmax(torch.tensor([1, 2]), 0),
            TypeError,
            r"input must be a floating-point tensor, got dtype torch.int64",
        ),
    ],
)
def test_bad_input_raises_clear_error(call, error, match):
    with pytest.raises(error, match=match):
        call(torch.randn(3, 4))
