"""dlref.losses against torch.nn.functional in float64, on the parity harness (tests/parity.py).

Values and gradients with respect to every floating input torch differentiates (logits,
probability targets, soft binary targets, the weight of probability targets), on contiguous,
transposed and strided inputs, with double backward, for every option; gradients torch refuses
to give (the class-index ``weight``, BCE's ``weight`` and ``pos_weight``) against central
differences; ``-inf`` and ``nan`` at ignored or masked positions; empty batches; every error.
"""

import functools
import itertools

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from parity import assert_matches_finite_differences, assert_parity

from dlref import losses

DT = torch.float64
INF, NAN = float("inf"), float("nan")


# ------------------------------------------------------------------------------------- softmax

SOFTMAX_FNS = [(losses.softmax, torch.softmax), (losses.log_softmax, torch.log_softmax)]
SOFTMAX_IDS = ["softmax", "log_softmax"]


@pytest.mark.parametrize(("ours", "ref"), SOFTMAX_FNS, ids=SOFTMAX_IDS)
@pytest.mark.parametrize(
    ("shape", "dim"), [((5,), 0), ((3, 5), -1), ((3, 5), 0), ((2, 4, 7), 1), ((), 0)]
)
def test_softmax_family_matches_torch(ours, ref, shape, dim):
    x = 3 * torch.randn(shape, dtype=DT, generator=torch.Generator().manual_seed(0))
    assert_parity(
        functools.partial(ours, dim=dim),
        functools.partial(ref, dim=dim),
        (x,),
        double_backward=True,
    )


@pytest.mark.parametrize(("ours", "ref"), SOFTMAX_FNS, ids=SOFTMAX_IDS)
def test_softmax_dtype_argument_casts_first(ours, ref):
    x = torch.randn(4, 3)
    assert_parity(
        functools.partial(ours, dim=1, dtype=DT), functools.partial(ref, dim=1, dtype=DT), (x,)
    )
    assert ours(x, 1, dtype=DT).dtype == DT


@pytest.mark.parametrize(("ours", "ref"), SOFTMAX_FNS, ids=SOFTMAX_IDS)
@pytest.mark.parametrize(
    "x",
    [
        [[1e4, 0.0, -1e4], [-1e4, -1e4, -1e4]],  # extreme logits
        [[-INF, 1.0, 2.0], [0.5, -INF, -INF]],  # masked positions, as in attention
    ],
    ids=["extreme", "masked"],
)
def test_softmax_extreme_and_masked_logits_match_torch(ours, ref, x):
    x = torch.tensor(x, dtype=DT)
    assert not torch.isnan(ours(x, 1)).any()
    assert_parity(
        functools.partial(ours, dim=1), functools.partial(ref, dim=1), (x,), double_backward=True
    )


@pytest.mark.parametrize(("ours", "ref"), SOFTMAX_FNS, ids=SOFTMAX_IDS)
@pytest.mark.parametrize(("shape", "dim"), [((0,), 0), ((0, 3), 1), ((0, 3), 0), ((2, 0), 1)])
def test_softmax_of_an_empty_tensor_is_empty_like_torch(ours, ref, shape, dim):
    x = torch.empty(shape, dtype=DT)
    assert_parity(functools.partial(ours, dim=dim), functools.partial(ref, dim=dim), (x,))


def test_naive_softmax_is_nan_at_extreme_logits():
    """The failure the stable formula exists for: e^1e4 overflows to inf, and inf/inf is nan."""
    x = torch.tensor([1e4, 0.0])
    assert torch.isnan(x.exp() / x.exp().sum()).any()
    torch.testing.assert_close(losses.softmax(x, 0), torch.softmax(x, 0))


finite_floats = st.floats(-50, 50, allow_nan=False, allow_infinity=False)
vectors = st.lists(finite_floats, min_size=1, max_size=12)


@settings(max_examples=60, deadline=None)
@given(vectors, finite_floats)
def test_softmax_matches_torch_and_is_shift_invariant(values, shift):
    x = torch.tensor(values, dtype=DT)
    p = losses.softmax(x, 0)
    torch.testing.assert_close(p, torch.softmax(x, 0), rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(losses.softmax(x + shift, 0), torch.softmax(x, 0))


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 6), st.integers(2, 6), st.data())
def test_cross_entropy_is_nonnegative_and_matches_torch(n, c, data):
    x = torch.tensor(data.draw(st.lists(finite_floats, min_size=n * c, max_size=n * c)), dtype=DT)
    x = x.reshape(n, c)
    y = torch.tensor(data.draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n)))
    loss = losses.cross_entropy(x, y, reduction="none")
    assert (loss >= 0).all()
    torch.testing.assert_close(loss, F.cross_entropy(x, y, reduction="none"))
    torch.testing.assert_close(
        losses.nll_loss(losses.log_softmax(x, 1), y, reduction="none"),
        F.nll_loss(F.log_softmax(x, 1), y, reduction="none"),
    )


# ------------------------------------------------------------------------- class-index targets

# (input shape, target shape): one sample, a batch, a batch with extra dims (N, C, d1, d2)
INDEX_SHAPES = [((5,), ()), ((6, 5), (6,)), ((3, 5, 4), (3, 4)), ((2, 5, 3, 2), (2, 3, 2))]
REDUCTIONS = ["mean", "sum", "none"]


def _index_case(in_shape, t_shape, ignore):
    g = torch.Generator().manual_seed(1)
    x = 2 * torch.randn(in_shape, dtype=DT, generator=g)
    C = in_shape[0] if len(in_shape) == 1 else in_shape[1]
    t = torch.randint(0, C, t_shape, generator=g)
    if ignore is not None and t.dim() > 0:
        t.view(-1)[::3] = ignore  # every third position ignored (never all of them)
    elif t.dim() == 0 and t.item() == ignore:
        t = (t + 1) % C  # a single sample that is ignored would make the mean 0/0
    w = torch.rand(C, dtype=DT, generator=g) + 0.5
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
    # torch does not differentiate the weight of class-index targets: see the next test
    assert_parity(
        losses.cross_entropy, F.cross_entropy, (x, t), kw, double_backward=True, no_grad={"weight"}
    )


@pytest.mark.parametrize("fn", ["cross_entropy", "nll_loss"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("label_smoothing", [0.0, 0.25])
def test_class_index_weight_gradient_matches_finite_differences(fn, reduction, label_smoothing):
    """torch refuses d loss / d weight here (nll_loss_forward is not differentiable in weight)."""
    x, t, w = _index_case((6, 5), (6,), ignore=-100)
    if fn == "nll_loss":
        x, kw = torch.log_softmax(x, 1), {}
    else:
        kw = {"label_smoothing": label_smoothing}

    def f(weight):
        return getattr(losses, fn)(x, t, weight, reduction=reduction, **kw).sum()

    w_ = w.clone().requires_grad_()
    (grad,) = torch.autograd.grad(f(w_), w_)
    assert_matches_finite_differences(f, w, grad)


def _torch_nll_loss(input, *args, **kwargs):
    """F.nll_loss on a contiguous copy: torch 2.13's backward of nll_loss2d raises "grad_input
    must be contiguous" for a transposed (N, C, d1, d2) input. The values are the same."""
    return F.nll_loss(input.contiguous(), *args, **kwargs)


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
    assert_parity(
        losses.nll_loss, _torch_nll_loss, (logp, t), kw, double_backward=True, no_grad={"weight"}
    )


@pytest.mark.parametrize("bad", [-INF, NAN])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
def test_cross_entropy_with_inf_or_nan_at_an_ignored_position_matches_torch(
    bad, reduction, weighted, label_smoothing
):
    """An ignored row may hold -inf (a masked vocabulary) or nan (padding): it must not leak."""
    x = torch.tensor([[bad, 1.0, 2.0], [0.5, 0.2, 0.1], [bad, bad, bad]], dtype=DT)
    t = torch.tensor([-100, 1, -100])
    kw = dict(
        weight=torch.tensor([1.0, 2.0, 3.0], dtype=DT) if weighted else None,
        reduction=reduction,
        label_smoothing=label_smoothing,
    )
    out = losses.cross_entropy(x, t, **kw)
    assert torch.isfinite(out).all()
    assert_parity(losses.cross_entropy, F.cross_entropy, (x, t), kw, no_grad={"weight"})


def test_cross_entropy_example_of_the_issue_with_inf_at_an_ignored_position():
    x = torch.tensor([[-INF, 1.0, 2.0], [0.5, 0.2, 0.1]], dtype=DT)
    t = torch.tensor([-100, 1])
    for kw in ({}, {"label_smoothing": 0.1, "reduction": "none"}):
        torch.testing.assert_close(losses.cross_entropy(x, t, **kw), F.cross_entropy(x, t, **kw))
    assert round(losses.cross_entropy(x, t).item(), 4) == 1.1801


@pytest.mark.parametrize("bad", [-INF, NAN])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
def test_nll_loss_with_inf_or_nan_at_an_ignored_position_matches_torch(bad, reduction, weighted):
    logp = torch.tensor([[bad, 0.0], [-0.5, -0.9]], dtype=DT)
    t = torch.tensor([-100, 0])
    kw = dict(weight=torch.tensor([2.0, 1.0], dtype=DT) if weighted else None, reduction=reduction)
    assert torch.isfinite(losses.nll_loss(logp, t, **kw)).all()
    assert_parity(losses.nll_loss, _torch_nll_loss, (logp, t), kw, no_grad={"weight"})
    if not weighted and reduction == "mean":
        assert losses.nll_loss(logp, t).item() == 0.5


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_with_a_masked_vocabulary_matches_torch(label_smoothing, reduction):
    """-inf at non-target classes of kept rows: finite without smoothing, inf with it, as torch."""
    x = torch.tensor([[-INF, 1.0, 2.0], [0.5, -INF, 0.1]], dtype=DT)
    t = torch.tensor([1, 2])
    kw = dict(label_smoothing=label_smoothing, reduction=reduction)
    assert_parity(losses.cross_entropy, F.cross_entropy, (x, t), kw)


def test_cross_entropy_weighted_mean_divides_by_total_weight_not_n():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 3, dtype=DT, generator=g)
    t = torch.tensor([0, 0, 2, 2])
    w = torch.tensor([1.0, 1.0, 5.0], dtype=DT)
    closed_form = F.cross_entropy(x, t, w, reduction="none").sum() / (1 + 1 + 5 + 5)
    torch.testing.assert_close(losses.cross_entropy(x, t, w), closed_form)


def test_all_targets_ignored_gives_nan_like_torch():
    x, t = torch.randn(3, 4, dtype=DT), torch.full((3,), -100)
    assert torch.isnan(losses.cross_entropy(x, t)) and torch.isnan(F.cross_entropy(x, t))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
def test_empty_batch_matches_torch(reduction, label_smoothing):
    """N = 0: 'mean' is 0/0 = nan, 'sum' is 0 and 'none' is empty, as in torch."""
    x = torch.empty(0, 4, dtype=DT)
    kw = dict(reduction=reduction, label_smoothing=label_smoothing)
    t = torch.empty(0, dtype=torch.long)
    assert_parity(losses.cross_entropy, F.cross_entropy, (x, t), kw)
    assert_parity(losses.cross_entropy, F.cross_entropy, (x, torch.empty(0, 4, dtype=DT)), kw)
    assert_parity(losses.nll_loss, _torch_nll_loss, (x, t), {"reduction": reduction})
    e = torch.empty(0, dtype=DT)
    assert_parity(
        losses.binary_cross_entropy_with_logits,
        F.binary_cross_entropy_with_logits,
        (e, e),
        {"reduction": reduction},
    )


# ------------------------------------------------------------------------- probability targets


@pytest.mark.parametrize("in_shape", [(5,), (6, 5), (3, 5, 4)])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.3])
def test_cross_entropy_probabilities_match_torch(in_shape, reduction, weighted, label_smoothing):
    g = torch.Generator().manual_seed(2)
    cdim = 0 if len(in_shape) == 1 else 1
    x = torch.randn(in_shape, dtype=DT, generator=g)
    q = torch.softmax(torch.randn(in_shape, dtype=DT, generator=g), dim=cdim)
    w = torch.rand(in_shape[cdim], dtype=DT, generator=g) if weighted else None
    kw = dict(weight=w, reduction=reduction, label_smoothing=label_smoothing)
    # gradients w.r.t. the logits, the target probabilities and the weight: torch gives all three
    assert_parity(losses.cross_entropy, F.cross_entropy, (x, q), kw, double_backward=True)


def test_label_smoothing_equals_the_smoothed_target_only_without_weight():
    """The page's claim, on torch itself and on ours: equal without weight; with weight the
    class-index mean divides by sum_n w[y_n], the probability mean by N."""
    g = torch.Generator().manual_seed(3)
    x, y, eps = torch.randn(5, 4, dtype=DT, generator=g), torch.tensor([0, 1, 2, 3, 0]), 0.2
    smooth = (1 - eps) * F.one_hot(y, 4).to(DT) + eps / 4
    w = torch.tensor([1.0, 1.0, 3.0, 0.5], dtype=DT)
    for fn in (losses.cross_entropy, F.cross_entropy):
        torch.testing.assert_close(fn(x, y, label_smoothing=eps), fn(x, smooth))
        for reduction in ("sum", "none"):
            torch.testing.assert_close(
                fn(x, y, w, label_smoothing=eps, reduction=reduction),
                fn(x, smooth, w, reduction=reduction),
            )
        by_index, by_prob = fn(x, y, w, label_smoothing=eps), fn(x, smooth, w)
        torch.testing.assert_close(by_index * w[y].sum(), by_prob * len(y))
        assert not torch.isclose(by_index, by_prob)


# ------------------------------------------------------------------------- extreme logits


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
def test_cross_entropy_extreme_logits_finite_and_match_torch(label_smoothing):
    x = torch.tensor([[1e4, -1e4, 0.0], [-1e4, -1e4, 1e4]], dtype=DT)
    t = torch.tensor([1, 2])
    kw = {"label_smoothing": label_smoothing}
    assert torch.isfinite(losses.cross_entropy(x, t, **kw))
    assert_parity(losses.cross_entropy, F.cross_entropy, (x, t), kw, double_backward=True)
    assert losses.cross_entropy(x, t, reduction="none")[0].item() == 2e4


# ------------------------------------------------------------------------- binary


@pytest.mark.parametrize("shape", [(7,), (4, 3), (2, 3, 5)])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize(("weighted", "pos_weighted"), list(itertools.product([0, 1], [0, 1])))
def test_bce_with_logits_matches_torch(shape, reduction, weighted, pos_weighted):
    g = torch.Generator().manual_seed(3)
    x = 3 * torch.randn(shape, dtype=DT, generator=g)
    t = torch.rand(shape, dtype=DT, generator=g)  # soft targets: gradient w.r.t. them too
    kw = dict(
        weight=torch.rand(shape[-1], dtype=DT, generator=g) if weighted else None,  # broadcast
        pos_weight=3 * torch.rand(shape[-1], dtype=DT, generator=g) if pos_weighted else None,
        reduction=reduction,
    )
    # torch refuses gradients w.r.t. weight and pos_weight: see the next test
    assert_parity(
        losses.binary_cross_entropy_with_logits,
        F.binary_cross_entropy_with_logits,
        (x, t),
        kw,
        double_backward=True,
        no_grad={"weight", "pos_weight"},
    )


@pytest.mark.parametrize("name", ["weight", "pos_weight"])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_bce_weight_and_pos_weight_gradients_match_finite_differences(name, reduction):
    g = torch.Generator().manual_seed(4)
    x = 3 * torch.randn(4, 3, dtype=DT, generator=g)
    t = torch.rand(4, 3, dtype=DT, generator=g)
    kw = {"weight": torch.rand(3, dtype=DT, generator=g) + 0.5, "pos_weight": None}
    kw["pos_weight"] = 3 * torch.rand(3, dtype=DT, generator=g)

    def f(v):
        return losses.binary_cross_entropy_with_logits(x, t, reduction=reduction, **{**kw, name: v})

    v = kw[name].clone().requires_grad_()
    (grad,) = torch.autograd.grad(f(v), v)
    assert_matches_finite_differences(f, kw[name], grad)


def test_bce_with_logits_extreme_and_zero_logits_match_torch():
    x = torch.tensor([-1e4, 1e4, -1e4, 1e4, 0.0], dtype=DT)
    t = torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0], dtype=DT)
    for kw in ({}, {"pos_weight": torch.tensor(2.0, dtype=DT)}):
        kw["reduction"] = "none"
        assert torch.isfinite(losses.binary_cross_entropy_with_logits(x, t, **kw)).all()
        assert_parity(
            losses.binary_cross_entropy_with_logits,
            F.binary_cross_entropy_with_logits,
            (x, t),
            kw,
            no_grad={"pos_weight"},
        )


def test_bce_equals_torch_two_class_cross_entropy():
    g = torch.Generator().manual_seed(5)
    x = torch.randn(6, dtype=DT, generator=g)
    t = torch.randint(0, 2, (6,), generator=g)
    two_class = torch.stack([torch.zeros_like(x), x], dim=1)
    torch.testing.assert_close(
        losses.binary_cross_entropy_with_logits(x, t.to(DT)), F.cross_entropy(two_class, t)
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
            r"weight must have shape \(C,\) = \(4\), got \(3,\)",
        ),
        (
            lambda x: losses.cross_entropy(x, torch.tensor([0, 1, 2]), torch.ones(4).long()),
            TypeError,
            r"weight must be a floating-point tensor, got dtype torch.int64",
        ),
        (
            lambda x: losses.nll_loss(x, torch.tensor([0, 1, 2]), torch.ones(4, dtype=torch.int32)),
            TypeError,
            r"weight must be a floating-point tensor, got dtype torch.int32",
        ),
        (
            lambda x: losses.cross_entropy(x, torch.tensor([0, 1, 2]), reduction="avg"),
            ValueError,
            r"reduction must be one of",
        ),
        (
            lambda x: losses.cross_entropy(x, torch.tensor([0, 1, 2]), label_smoothing=1.5),
            ValueError,
            r"label_smoothing must lie in \[0, 1\], got 1.5",
        ),
        (
            lambda x: losses.cross_entropy(x, torch.tensor([0, 1, 2]), label_smoothing="0.1"),
            TypeError,
            r"label_smoothing must be a real number, got str '0.1'",
        ),
        (
            lambda x: losses.cross_entropy(x, torch.tensor([0, 1, 2]), ignore_index=1.5),
            TypeError,
            r"ignore_index must be an int, got float 1.5",
        ),
        (
            lambda x: losses.nll_loss(x, torch.tensor([0, 1, 2]), ignore_index=None),
            TypeError,
            r"ignore_index must be an int, got NoneType None",
        ),
        (
            lambda x: losses.cross_entropy(torch.empty(2, 0), torch.tensor([0, 0])),
            ValueError,
            r"input has shape \(2, 0\): C = 0 classes on dim 1, a loss needs at least one class",
        ),
        (
            lambda x: losses.cross_entropy(torch.empty(2, 0), torch.empty(2, 0)),
            ValueError,
            r"input has shape \(2, 0\): C = 0 classes",
        ),
        (
            lambda x: losses.nll_loss(torch.empty(0), torch.tensor(0)),
            ValueError,
            r"input has shape \(0,\): C = 0 classes on dim 0",
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
            r"target must have shape input.shape = \(3, 4\), got \(3,\)",
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
            r"pos_weight of shape \(3,\) and input of shape \(3, 4\) do not broadcast",
        ),
        (
            lambda x: losses.softmax(torch.tensor([1, 2]), 0),
            TypeError,
            r"input must be a floating-point tensor, got dtype torch.int64",
        ),
        (
            lambda x: losses.softmax(x, dim=None),
            TypeError,
            r"dim must be an int, got NoneType None",
        ),
        (
            lambda x: losses.softmax(x, dim=1.0),
            TypeError,
            r"dim must be an int, got float 1.0",
        ),
        (
            lambda x: losses.log_softmax(x, dim=True),
            TypeError,
            r"dim must be an int, got bool True",
        ),
        (
            lambda x: losses.softmax(x, dim=2),
            ValueError,
            r"dim=2 is out of range for input of shape \(3, 4\): it must lie in \[-2, 2\)",
        ),
        (
            lambda x: losses.log_softmax(x, dim=-3),
            ValueError,
            r"dim=-3 is out of range for input of shape \(3, 4\): it must lie in \[-2, 2\)",
        ),
        (
            lambda x: losses.nll_loss(x, None),
            TypeError,
            r"target must be a torch.Tensor, got NoneType",
        ),
        (
            lambda x: losses.nll_loss(x, torch.tensor([0.0, 1.0, 2.0])),
            TypeError,
            r"class-index target must be an integer tensor, got dtype torch.float32",
        ),
        (
            lambda x: losses.binary_cross_entropy_with_logits(x, torch.rand(3, 4), weight=-1),
            TypeError,
            r"weight must be a torch.Tensor, got int",
        ),
        (
            lambda x: losses.binary_cross_entropy_with_logits(x, torch.rand(3, 4), pos_weight=2.0),
            TypeError,
            r"pos_weight must be a torch.Tensor, got float",
        ),
        (
            lambda x: losses.log_softmax(x, dim=0, dtype=torch.int64),
            TypeError,
            r"dtype must be None or a floating-point torch.dtype, got torch.int64",
        ),
        (
            lambda x: losses.softmax(x, dim=0, dtype="float64"),
            TypeError,
            r"dtype must be None or a floating-point torch.dtype, got 'float64'",
        ),
    ],
)
def test_bad_input_raises_clear_error(call, error, match):
    with pytest.raises(error, match=match):
        call(torch.randn(3, 4))


@pytest.mark.parametrize(
    "call",
    [
        lambda x: F.softmax(x, dim=1.0),
        lambda x: F.cross_entropy(x, torch.tensor([0, 1, 2]), label_smoothing="0.1"),
        lambda x: F.cross_entropy(x, torch.tensor([0, 1, 2]), ignore_index=1.5),
        lambda x: F.cross_entropy(x, torch.tensor([0, 1, 2]), torch.ones(4).long()),
        lambda x: F.cross_entropy(torch.empty(2, 0), torch.tensor([0, 0])),
        lambda x: F.log_softmax(x, dim=0, dtype=torch.int64),
        lambda x: F.softmax(x, dim=2),
        lambda x: F.nll_loss(x, torch.tensor([0.0, 1.0, 2.0])),
    ],
)
def test_torch_refuses_the_same_inputs(call):
    """Where we raise, torch raises too (TypeError, RuntimeError, IndexError or
    NotImplementedError); we raise TypeError or ValueError naming the argument."""
    with pytest.raises((TypeError, RuntimeError, IndexError, NotImplementedError)):
        call(torch.randn(3, 4))
