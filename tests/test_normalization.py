"""dlref.normalization against torch.nn.functional and torch.nn in float64 (tests/parity.py).

Values and gradients with respect to input, weight and bias, on contiguous, transposed and
strided inputs, with double backward; the running-statistics update in training mode (unbiased
variance in the estimate, biased in the normalisation); modules whose state dicts load both ways
and whose train()/eval() behave as torch's, momentum=None included; every error message.
"""

import functools

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from parity import assert_module_parity, assert_parity

from dlref import normalization as N

DT = torch.float64


def randn(*shape, seed=0, scale=1.0, shift=0.0):
    g = torch.Generator().manual_seed(seed)
    return scale * torch.randn(shape, dtype=DT, generator=g) + shift


# ----------------------------------------------------------------------------- batch norm


@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 5), (2, 3, 4, 5)])
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_training_matches_torch(shape, affine):
    C = shape[1]
    x = randn(*shape, seed=1, scale=3.0, shift=2.0)
    wb = (randn(C, seed=2), randn(C, seed=3)) if affine else (None, None)
    kw = {"training": True, "momentum": 0.3, "eps": 1e-3}
    assert_parity(
        lambda x, w, b: N.batch_norm(x, None, None, w, b, **kw),
        lambda x, w, b: F.batch_norm(x, None, None, w, b, **kw),
        (x, *wb),
        double_backward=True,
    )


@pytest.mark.parametrize("shape", [(6, 3), (2, 3, 4, 5)])
def test_batch_norm_eval_matches_torch(shape):
    C = shape[1]
    rm, rv = randn(C, seed=4), randn(C, seed=5).abs() + 0.5
    assert_parity(
        N.batch_norm,
        F.batch_norm,
        (randn(*shape, seed=6), rm, rv, randn(C, seed=7), randn(C, seed=8)),
        no_grad=(1, 2),
        double_backward=True,
    )


@pytest.mark.parametrize("shape", [(6, 3), (5, 3, 4), (2, 3, 4, 5), (2, 3)])
@pytest.mark.parametrize("momentum", [0.1, 0.5, 1.0])
def test_batch_norm_running_update_matches_torch(shape, momentum):
    x = randn(*shape, seed=9, scale=2.0, shift=-1.0)
    C = shape[1]
    ours = [randn(C, seed=10), randn(C, seed=11).abs()]
    ref = [t.clone() for t in ours]
    y = N.batch_norm(x, *ours, training=True, momentum=momentum)
    y_ref = F.batch_norm(x, *ref, training=True, momentum=momentum)
    torch.testing.assert_close(y, y_ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(ours, ref, rtol=1e-13, atol=1e-14)
    # the closed form: unbiased variance in the estimate
    dims = [0] + list(range(2, x.dim()))
    expected = (1 - momentum) * randn(C, seed=11).abs() + momentum * x.var(dims, correction=1)
    torch.testing.assert_close(ours[1], expected)


def test_batch_norm_running_update_on_a_strided_buffer_and_no_grad_kept():
    x = randn(8, 3, seed=12)
    x.requires_grad_()
    base = torch.zeros(6, dtype=DT)
    rm = base[::2]  # a strided view: updated in place through it
    rv = torch.ones(3, dtype=DT)
    N.batch_norm(x, rm, rv, training=True)
    torch.testing.assert_close(base[::2], 0.1 * x.detach().mean(0))
    assert not rm.requires_grad and not rv.requires_grad


def test_batch_norm_batch_of_one_in_training_raises_as_torch():
    x = randn(1, 3)
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        F.batch_norm(x, None, None, training=True)
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        N.batch_norm(x, None, None, training=True)
    # a batch of one with spatial positions is fine, and equal to torch
    x = randn(1, 3, 4)
    torch.testing.assert_close(
        N.batch_norm(x, None, None, training=True), F.batch_norm(x, None, None, training=True)
    )


def test_batch_norm_extreme_and_constant_inputs_match_torch():
    x = torch.tensor([[1e4, 5.0], [-1e4, 5.0], [3e4, 5.0]], dtype=DT)  # a constant channel
    assert_parity(
        functools.partial(N.batch_norm, training=True),
        functools.partial(F.batch_norm, training=True),
        (x, None, None),
    )


def test_batch_norm_empty_channels():
    x = torch.zeros(4, 0, dtype=DT)
    y = N.batch_norm(x, None, None, training=True)
    assert y.shape == F.batch_norm(x, None, None, training=True).shape == (4, 0)


@pytest.mark.parametrize(
    ("kwargs", "err", "match"),
    [
        ({"input": torch.ones(4, 3, dtype=torch.long)}, TypeError, "input must be a floating"),
        ({"input": torch.ones(4, dtype=DT)}, ValueError, r"input must have shape \(N, C, \*\)"),
        ({"running_mean": torch.zeros(2, dtype=DT)}, ValueError, r"running_mean must have shape"),
        ({"running_var": [1.0, 1.0, 1.0]}, TypeError, "running_var must be a torch.Tensor"),
        ({"weight": torch.ones(4, dtype=DT)}, ValueError, r"weight must have shape \(3,\)"),
        ({"bias": torch.ones(3, 1, dtype=DT)}, ValueError, r"bias must have shape \(3,\)"),
        ({"momentum": "0.1"}, TypeError, "momentum must be a real number"),
        ({"eps": -1.0}, ValueError, r"eps must lie in \(0, inf\), got -1.0"),
        ({"eps": 0.0}, ValueError, r"eps must lie in \(0, inf\), got 0.0"),
        ({"running_mean": None, "training": False}, ValueError, "running_mean and running_var"),
    ],
)
def test_batch_norm_errors_name_the_argument(kwargs, err, match):
    args = {
        "input": randn(4, 3),
        "running_mean": torch.zeros(3, dtype=DT),
        "running_var": torch.ones(3, dtype=DT),
        "training": True,
    }
    with pytest.raises(err, match=match):
        N.batch_norm(**(args | kwargs))


def test_batch_norm_accepts_numpy_scalars():
    x = randn(5, 3)
    torch.testing.assert_close(
        N.batch_norm(x, None, None, training=True, momentum=np.float64(0.2), eps=np.float32(1e-3)),
        F.batch_norm(x, None, None, training=True, momentum=0.2, eps=1e-3),
    )


# ----------------------------------------------------------------------------- layer norm


@pytest.mark.parametrize(
    ("shape", "ns"), [((4, 5), 5), ((4, 5), (5,)), ((2, 3, 4), (3, 4)), ((7,), [7])]
)
@pytest.mark.parametrize("affine", ["both", "weight", "none"])
def test_layer_norm_matches_torch(shape, ns, affine):
    nshape = (ns,) if isinstance(ns, int) else tuple(ns)
    w = randn(*nshape, seed=2) if affine != "none" else None
    b = randn(*nshape, seed=3) if affine == "both" else None
    assert_parity(
        lambda x, w, b: N.layer_norm(x, ns, w, b, eps=1e-4),
        lambda x, w, b: F.layer_norm(x, nshape, w, b, eps=1e-4),
        (randn(*shape, seed=1, scale=4.0, shift=3.0), w, b),
        double_backward=True,
    )


def test_layer_norm_extreme_constant_and_empty_batch():
    x = torch.tensor([[1e4, -1e4, 0.0], [2.0, 2.0, 2.0]], dtype=DT)
    assert_parity(functools.partial(N.layer_norm, normalized_shape=3),
                  functools.partial(F.layer_norm, normalized_shape=(3,)), (x,))  # fmt: skip
    e = torch.zeros(0, 3, dtype=DT)
    assert N.layer_norm(e, 3).shape == F.layer_norm(e, (3,)).shape


@pytest.mark.parametrize(
    ("args", "err", "match"),
    [
        (
            (torch.ones(2, 3), 4),
            ValueError,
            r"input must have shape \(\*, \*normalized_shape\) = \(\.\.\., 4\)",
        ),
        ((torch.ones(2, 3), (2, 3, 1)), ValueError, "normalized_shape"),
        ((torch.ones(2, 3), ()), ValueError, "normalized_shape"),
        ((torch.ones(2, 3), 3.0), TypeError, "normalized_shape must be an int"),
        ((torch.ones(2, 3), 3, torch.ones(2)), ValueError, r"weight must have shape \(3,\)"),
        ((torch.ones(2, 3), 3, None, torch.ones(4)), ValueError, r"bias must have shape \(3,\)"),
        ((torch.ones(2, 3, dtype=torch.int32), 3), TypeError, "input must be a floating"),
        ((torch.ones(2, 3), 3, None, None, float("nan")), ValueError, "eps must be >= 0"),
    ],
)
def test_layer_norm_errors(args, err, match):
    with pytest.raises(err, match=match):
        N.layer_norm(*args)


# ------------------------------------------------------------------------------- RMS norm


@pytest.mark.parametrize(("shape", "ns"), [((4, 5), 5), ((2, 3, 4), (3, 4))])
@pytest.mark.parametrize("eps", [None, 1e-3])
@pytest.mark.parametrize("weighted", [True, False])
def test_rms_norm_matches_torch(shape, ns, eps, weighted):
    nshape = (ns,) if isinstance(ns, int) else tuple(ns)
    w = randn(*nshape, seed=2) if weighted else None
    assert_parity(
        lambda x, w: N.rms_norm(x, ns, w, eps),
        lambda x, w: F.rms_norm(x, nshape, w, eps),
        (randn(*shape, seed=1, scale=2.0), w),
        double_backward=True,
    )


def test_rms_norm_equals_layer_norm_without_bias_for_zero_mean_rows():
    x = randn(4, 6, seed=3)
    x = x - x.mean(-1, keepdim=True)
    w = randn(6, seed=4)
    torch.testing.assert_close(N.rms_norm(x, 6, w, eps=1e-5), F.layer_norm(x, (6,), w, None, 1e-5))


def test_rms_norm_errors():
    with pytest.raises(ValueError, match="normalized_shape"):
        N.rms_norm(torch.ones(2, 3), 2)
    with pytest.raises(ValueError, match=r"weight must have shape \(3,\)"):
        N.rms_norm(torch.ones(2, 3), 3, torch.ones(2))
    with pytest.raises(TypeError, match="eps must be a real number"):
        N.rms_norm(torch.ones(2, 3), 3, eps="1e-6")


# ----------------------------------------------------------------------------- group norm


@pytest.mark.parametrize(("shape", "G"), [((3, 6), 2), ((2, 6, 5), 3), ((2, 4, 3, 3), 1),
                                          ((2, 4, 3, 3), 4)])  # fmt: skip
@pytest.mark.parametrize("affine", [True, False])
def test_group_norm_matches_torch(shape, G, affine):
    C = shape[1]
    wb = (randn(C, seed=2), randn(C, seed=3)) if affine else (None, None)
    assert_parity(
        lambda x, w, b: N.group_norm(x, G, w, b, eps=1e-4),
        lambda x, w, b: F.group_norm(x, G, w, b, eps=1e-4),
        (randn(*shape, seed=1, scale=3.0, shift=-2.0), *wb),
        double_backward=True,
    )


def test_group_norm_errors():
    with pytest.raises(ValueError, match="num_groups=4 must divide the number of channels 6"):
        N.group_norm(torch.ones(2, 6), 4)
    with pytest.raises(ValueError, match="num_groups must be at least 1"):
        N.group_norm(torch.ones(2, 6), 0)
    with pytest.raises(TypeError, match="num_groups must be an int"):
        N.group_norm(torch.ones(2, 6), 2.0)
    with pytest.raises(ValueError, match=r"input must have shape \(N, C, \*\)"):
        N.group_norm(torch.ones(6), 2)
    assert N.group_norm(torch.ones(2, 6), np.int64(3)).shape == (2, 6)


# -------------------------------------------------------------------------------- modules

MODULES = [
    (lambda: N.BatchNorm1d(3, momentum=0.2), lambda: torch.nn.BatchNorm1d(3, momentum=0.2), (5, 3)),
    (lambda: N.BatchNorm1d(3), lambda: torch.nn.BatchNorm1d(3), (4, 3, 6)),
    (lambda: N.BatchNorm2d(3, eps=1e-3), lambda: torch.nn.BatchNorm2d(3, eps=1e-3), (2, 3, 4, 4)),
    (lambda: N.LayerNorm((3, 4)), lambda: torch.nn.LayerNorm((3, 4)), (2, 3, 4)),
    (lambda: N.LayerNorm(4, bias=False), lambda: torch.nn.LayerNorm(4, bias=False), (5, 4)),
    (lambda: N.RMSNorm(4), lambda: torch.nn.RMSNorm(4), (5, 4)),
    (lambda: N.GroupNorm(2, 6), lambda: torch.nn.GroupNorm(2, 6), (3, 6, 5)),
    (lambda: N.BatchNorm1d(3, bias=False), lambda: torch.nn.BatchNorm1d(3, bias=False), (5, 3)),
    (
        lambda: N.GroupNorm(3, 6, affine=False),
        lambda: torch.nn.GroupNorm(3, 6, affine=False),
        (3, 6),
    ),
]
IDS = ["bn1d", "bn1d-3d", "bn2d", "ln", "ln-nobias", "rms", "gn", "bn-nobias", "gn-noaffine"]


def _randomise(module, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype))
    return module


@pytest.mark.parametrize(("ours", "ref", "shape"), MODULES, ids=IDS)
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_modules_match_torch(ours, ref, shape, mode):
    o, r = ours().double(), _randomise(ref().double(), 0)
    getattr(o, mode)(), getattr(r, mode)()
    if mode == "eval" and hasattr(r, "running_var"):
        r.running_mean.copy_(randn(shape[1], seed=1))
        r.running_var.copy_(randn(shape[1], seed=2).abs() + 0.1)
    assert_module_parity(o, r, (randn(*shape, seed=3, scale=2.0),), layouts=("contiguous",))


@pytest.mark.parametrize(("ours", "ref", "shape"), MODULES, ids=IDS)
def test_state_dicts_load_both_ways(ours, ref, shape):
    o, r = ours(), _randomise(ref(), 1)
    assert list(o.state_dict()) == list(r.state_dict())
    o.load_state_dict(r.state_dict())
    r2 = ref()
    r2.load_state_dict(_randomise(ours(), 2).state_dict())
    for (k, a), (_, b) in zip(o.state_dict().items(), r.state_dict().items(), strict=True):
        assert torch.equal(a, b), k


@pytest.mark.parametrize("momentum", [0.1, None])
@pytest.mark.parametrize("track", [True, False])
def test_batch_norm_module_train_eval_sequence_matches_torch(momentum, track):
    o = N.BatchNorm1d(4, momentum=momentum, track_running_stats=track).double()
    r = torch.nn.BatchNorm1d(4, momentum=momentum, track_running_stats=track).double()
    for step in range(5):
        x = randn(8, 4, seed=step, scale=2.0, shift=step)
        torch.testing.assert_close(o(x), r(x))
    o.eval(), r.eval()
    x = randn(3, 4, seed=99)
    torch.testing.assert_close(o(x), r(x))
    for (k, a), (_, b) in zip(o.state_dict().items(), r.state_dict().items(), strict=True):
        torch.testing.assert_close(a, b, msg=k)
    if track and momentum is None:  # a cumulative average: the plain mean of the batch means
        means = torch.stack([randn(8, 4, seed=s, scale=2.0, shift=s).mean(0) for s in range(5)])
        torch.testing.assert_close(o.running_mean, means.mean(0))


def test_batch_norm_module_errors():
    with pytest.raises(ValueError, match=r"BatchNorm1d expects input with 2 or 3 dimensions"):
        N.BatchNorm1d(3)(torch.ones(2, 3, 4, 5))
    with pytest.raises(ValueError, match=r"BatchNorm2d expects input with 4 dimensions"):
        N.BatchNorm2d(3)(torch.ones(2, 3))
    with pytest.raises(ValueError, match="num_features must be at least 1"):
        N.BatchNorm1d(0)
    with pytest.raises(TypeError, match="momentum must be a real number"):
        N.BatchNorm1d(3, momentum="fast")
    with pytest.raises(ValueError, match="num_groups=4 must divide the number of channels 6"):
        N.GroupNorm(4, 6)
    with pytest.raises(TypeError, match="normalized_shape must be an int"):
        N.LayerNorm("3")


def test_module_reprs_read_like_torch():
    assert repr(N.BatchNorm1d(3)) == repr(torch.nn.BatchNorm1d(3))
    assert repr(N.GroupNorm(2, 4)) == repr(torch.nn.GroupNorm(2, 4))
    assert repr(N.BatchNorm2d(3, bias=False)) == repr(torch.nn.BatchNorm2d(3, bias=False))


def test_reliability_fixes_name_the_argument_and_match_torch():
    # device and dtype of the modules, negative sizes, mixed dtypes: errors naming the argument
    for cls, args in [(N.LayerNorm, (3,)), (N.RMSNorm, (3,)), (N.GroupNorm, (1, 3)),
                      (N.BatchNorm1d, (3,))]:  # fmt: skip
        with pytest.raises(ValueError, match="device must be"):
            cls(*args, device=-1)
        with pytest.raises(TypeError, match="dtype must be"):
            cls(*args, dtype="a string")
    with pytest.raises(ValueError, match="normalized_shape must hold sizes >= 0"):
        N.LayerNorm(-7)
    with pytest.raises(RuntimeError):  # torch refuses float32 input with float64 weights too
        torch.nn.LayerNorm(3, dtype=DT)(torch.ones(2, 3))
    with pytest.raises(TypeError, match="input and weight must have the same dtype"):
        N.LayerNorm(3, dtype=DT)(torch.ones(2, 3))
    with pytest.raises(ValueError, match=r"weight must have shape \(2,\), got \(4,\) for input"):
        N.GroupNorm(2, 4)(torch.ones(2, 2, 3))
    # empty inputs give torch's empty outputs
    for shape in [(0, 4), (0, 4, 3), (2, 4, 0)]:
        x = torch.ones(shape, dtype=DT)
        assert N.group_norm(x, 2).shape == F.group_norm(x, 2).shape == shape
