"""dlref.conv against torch.nn.functional and torch.nn in float64, on the parity harness.

Values and gradients with respect to input, weight and bias on contiguous, transposed and strided
inputs, over grids of shapes, strides, paddings (int, pair, 'valid', 'same'), dilations and
groups (depthwise included), unbatched inputs and empty batches; max pooling's gradient on ties;
the output-size formula against torch's output shapes; the modules' state dicts both ways;
conv_transpose2d as the input gradient of conv2d; every error message.
"""

import functools
import itertools
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from parity import assert_module_parity, assert_parity

from dlref import conv

DT = torch.float64


def _quiet(fn):
    """torch warns on padding='same' with an even kernel (a padded copy); the value is right."""

    @functools.wraps(fn)
    def run(*args, **kwargs):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return fn(*args, **kwargs)

    return run


def _randn(*shape, seed=0):
    return torch.randn(shape, dtype=DT, generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------------------------- conv2d

CONV2D_GRID = [
    # (N, C_in, H, W), (C_out, kH, kW), stride, padding, dilation, groups
    ((2, 3, 7, 6), (4, 3, 3), 1, 0, 1, 1),
    ((2, 3, 7, 6), (4, 3, 3), 2, 1, 1, 1),
    ((2, 3, 7, 6), (4, 3, 2), (2, 1), (1, 2), 1, 1),
    ((2, 4, 8, 8), (6, 3, 3), 1, "same", 2, 2),
    ((2, 4, 8, 7), (4, 2, 2), 1, "same", 1, 1),  # even kernel: the extra zero goes after
    ((1, 4, 9, 9), (8, 3, 3), 3, "valid", (2, 1), 4),
    ((2, 4, 6, 6), (4, 3, 3), 1, 1, 1, 4),  # depthwise
    ((2, 4, 6, 6), (8, 3, 3), 2, 1, 1, 4),  # depthwise, channel multiplier 2
    ((2, 6, 5, 5), (3, 1, 1), 1, 0, 1, 1),  # 1x1
    ((1, 2, 5, 5), (3, 5, 5), 1, 0, 1, 1),  # kernel as large as the input
    ((2, 2, 4, 9), (2, 1, 3), (1, 3), (0, 2), (1, 3), 2),
]


@pytest.mark.parametrize(
    ("x_shape", "w_shape", "stride", "padding", "dilation", "groups"), CONV2D_GRID
)
@pytest.mark.parametrize("with_bias", [True, False])
def test_conv2d_matches_torch(x_shape, w_shape, stride, padding, dilation, groups, with_bias):
    C_out, kH, kW = w_shape
    x = _randn(*x_shape, seed=1)
    w = _randn(C_out, x_shape[1] // groups, kH, kW, seed=2)
    kwargs = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}
    if with_bias:
        kwargs["bias"] = _randn(C_out, seed=3)
    assert_parity(conv.conv2d, _quiet(F.conv2d), (x, w), kwargs)


def test_conv2d_unbatched_and_double_backward_match_torch():
    x, w, b = _randn(3, 6, 5, seed=0), _randn(4, 3, 3, 3, seed=1), _randn(4, seed=2)
    assert conv.conv2d(x, w, b).shape == (4, 4, 3)
    assert_parity(conv.conv2d, F.conv2d, (x, w, b), {"padding": 1}, double_backward=True)


def test_conv2d_accepts_numpy_ints_and_lists():
    x, w = _randn(1, 2, 6, 6), _randn(3, 2, 3, 3)
    ours = conv.conv2d(x, w, stride=np.int64(2), padding=[np.int32(1), 0], dilation=(1, 1))
    torch.testing.assert_close(ours, F.conv2d(x, w, stride=2, padding=(1, 0)))


def test_conv2d_of_an_empty_batch_matches_torch():
    x, w = torch.empty(0, 2, 5, 5, dtype=DT), _randn(3, 2, 3, 3)
    assert_parity(conv.conv2d, F.conv2d, (x, w), {"padding": 1}, layouts=["contiguous"])


def test_conv2d_float32_is_close_to_torch():
    x, w = torch.randn(2, 3, 8, 8), torch.randn(5, 3, 3, 3)
    torch.testing.assert_close(conv.conv2d(x, w, padding=1), F.conv2d(x, w, padding=1))


# ------------------------------------------------------------------------------------- conv1d

CONV1D_GRID = [
    # (N, C_in, L), (C_out, k), stride, padding, dilation, groups
    ((2, 3, 9), (4, 3), 1, 0, 1, 1),
    ((2, 3, 9), (4, 3), 2, 1, 2, 1),
    ((2, 4, 10), (4, 4), 1, "same", 1, 2),
    ((2, 4, 10), (4, 3), 1, "same", 3, 4),
    ((1, 2, 7), (6, 2), (3,), (2,), (1,), 2),
    ((2, 2, 6), (2, 1), 1, "valid", 1, 1),
]


@pytest.mark.parametrize(
    ("x_shape", "w_shape", "stride", "padding", "dilation", "groups"), CONV1D_GRID
)
def test_conv1d_matches_torch(x_shape, w_shape, stride, padding, dilation, groups):
    C_out, k = w_shape
    x, w, b = (
        _randn(*x_shape, seed=1),
        _randn(C_out, x_shape[1] // groups, k, seed=2),
        _randn(C_out),
    )
    kwargs = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}
    assert_parity(conv.conv1d, _quiet(F.conv1d), (x, w, b), kwargs)


def test_conv1d_unbatched_matches_torch():
    x, w = _randn(3, 8), _randn(2, 3, 3, seed=1)
    assert_parity(conv.conv1d, F.conv1d, (x, w), {"padding": "same"})


# --------------------------------------------------------------------------- conv_transpose2d

CONVT_GRID = [
    # (N, C_in, H, W), (C_out/g, kH, kW), stride, padding, output_padding, groups, dilation
    ((2, 4, 4, 5), (3, 3, 3), 1, 0, 0, 1, 1),
    ((2, 4, 4, 5), (3, 3, 3), 2, 1, 1, 1, 1),
    ((2, 4, 3, 3), (2, 2, 2), 2, 0, 0, 2, 1),
    ((1, 4, 3, 4), (1, 3, 2), (3, 2), (1, 0), (2, 1), 4, 1),
    ((2, 2, 4, 4), (3, 3, 3), 1, 2, 1, 1, 2),  # output_padding < dilation
    ((2, 2, 4, 4), (3, 2, 3), (2, 1), (0, 1), 0, 2, (1, 2)),
]


@pytest.mark.parametrize(
    ("x_shape", "w_shape", "stride", "padding", "output_padding", "groups", "dilation"), CONVT_GRID
)
def test_conv_transpose2d_matches_torch(
    x_shape, w_shape, stride, padding, output_padding, groups, dilation
):
    x, w = _randn(*x_shape, seed=1), _randn(x_shape[1], *w_shape, seed=2)
    b = _randn(w_shape[0] * groups, seed=3)
    kwargs = {
        "stride": stride,
        "padding": padding,
        "output_padding": output_padding,
        "groups": groups,
        "dilation": dilation,
    }
    assert_parity(conv.conv_transpose2d, F.conv_transpose2d, (x, w, b), kwargs)


def test_conv_transpose2d_unbatched_matches_torch():
    x, w = _randn(2, 3, 3), _randn(2, 3, 2, 2, seed=1)
    assert_parity(conv.conv_transpose2d, F.conv_transpose2d, (x, w), {"stride": 2})


@pytest.mark.parametrize(
    ("stride", "padding", "groups"), [(1, 0, 1), (2, 1, 1), (2, 1, 2), (3, 2, 4)]
)
def test_conv_transpose2d_is_the_input_gradient_of_conv2d(stride, padding, groups):
    """<conv2d(x, w), g> differentiated with respect to x is conv_transpose2d(g, w)."""
    x = _randn(2, 4, 9, 8, seed=0).requires_grad_()
    w = _randn(8, 4 // groups, 3, 3, seed=1)
    y = F.conv2d(x, w, stride=stride, padding=padding, groups=groups)
    g = _randn(*y.shape, seed=2)
    (dx,) = torch.autograd.grad(y, x, g)
    op = tuple(
        n - ((m - 1) * stride - 2 * padding + 3)
        for n, m in zip(x.shape[2:], y.shape[2:], strict=True)
    )  # the rows and columns the strided conv never reached
    ours = conv.conv_transpose2d(
        g, w, stride=stride, padding=padding, output_padding=op, groups=groups
    )
    torch.testing.assert_close(ours, dx)


# ---------------------------------------------------------------------------------- pooling

POOL_GRID = [
    # kernel_size, stride, padding, dilation, ceil_mode
    (2, None, 0, 1, False),
    (2, None, 0, 1, True),
    (3, 2, 1, 1, False),
    (3, 2, 1, 1, True),
    ((3, 2), (2, 1), (1, 0), 1, True),
    (2, 1, 1, 2, False),
    (3, 3, 1, (2, 1), True),
    (1, 2, 0, 1, False),
]


@pytest.mark.parametrize(("kernel_size", "stride", "padding", "dilation", "ceil_mode"), POOL_GRID)
@pytest.mark.parametrize("shape", [(2, 3, 7, 6), (3, 5, 5)])
def test_max_pool2d_matches_torch(shape, kernel_size, stride, padding, dilation, ceil_mode):
    x = _randn(*shape, seed=4)
    kwargs = {"padding": padding, "dilation": dilation, "ceil_mode": ceil_mode}
    f = functools.partial(conv.max_pool2d, kernel_size=kernel_size, stride=stride, **kwargs)
    g = functools.partial(F.max_pool2d, kernel_size=kernel_size, stride=stride, **kwargs)
    assert_parity(f, g, (x,))
    y, idx = conv.max_pool2d(x, kernel_size, stride, return_indices=True, **kwargs)
    y_ref, idx_ref = F.max_pool2d(x, kernel_size, stride, return_indices=True, **kwargs)
    assert torch.equal(y, y_ref) and torch.equal(idx, idx_ref)


@pytest.mark.parametrize(
    "x",
    [
        torch.zeros(1, 1, 4, 4, dtype=DT),  # every window a tie
        torch.tensor([[[[1.0, 3.0, 3.0], [3.0, 2.0, 3.0], [0.0, 3.0, 1.0]]]], dtype=DT),
        torch.tensor([[[[2.0, 2.0], [2.0, 2.0]]]], dtype=DT).repeat(2, 3, 2, 3),
    ],
    ids=["zeros", "some-ties", "tiled"],
)
@pytest.mark.parametrize(("kernel_size", "stride", "padding"), [(2, 1, 0), (2, 2, 0), (3, 1, 1)])
def test_max_pool2d_ties_send_the_gradient_where_torch_does(x, kernel_size, stride, padding):
    """On a tie the whole gradient goes to the first maximum of the window (row-major)."""
    f = functools.partial(conv.max_pool2d, kernel_size=kernel_size, stride=stride, padding=padding)
    g = functools.partial(F.max_pool2d, kernel_size=kernel_size, stride=stride, padding=padding)
    assert_parity(f, g, (x,))


def test_max_pool2d_tie_goes_to_the_first_maximum_not_shared():
    x = torch.tensor([[[[1.0, 1.0], [0.0, 1.0]]]], dtype=DT, requires_grad=True)
    (grad,) = torch.autograd.grad(conv.max_pool2d(x, 2).sum(), x)
    assert grad.flatten().tolist() == [1.0, 0.0, 0.0, 0.0]  # amax would give 1/3 to each


def test_max_pool2d_nan_and_inf_match_torch():
    x = _randn(1, 2, 4, 4)
    x[0, 0, 0, 1], x[0, 1, 2, 2], x[0, 1, 0, 0] = float("nan"), float("inf"), -float("inf")
    torch.testing.assert_close(conv.max_pool2d(x, 2), F.max_pool2d(x, 2), equal_nan=True)


@pytest.mark.parametrize(("kernel_size", "stride", "padding", "ceil_mode"), [
    (2, None, 0, False),
    (3, 2, 1, False),
    (3, 2, 1, True),
    ((3, 2), (2, 3), (1, 1), True),
    (2, 3, 1, True),
])  # fmt: skip
@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("divisor_override", [None, 5])
def test_avg_pool2d_matches_torch(
    kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override
):
    x = _randn(2, 3, 7, 6, seed=5)
    kwargs = {
        "kernel_size": kernel_size,
        "stride": stride,
        "padding": padding,
        "ceil_mode": ceil_mode,
        "count_include_pad": count_include_pad,
        "divisor_override": divisor_override,
    }
    assert_parity(
        functools.partial(conv.avg_pool2d, **kwargs),
        functools.partial(F.avg_pool2d, **kwargs),
        (x,),
    )


def test_avg_pool2d_unbatched_matches_torch():
    x = _randn(3, 5, 5)
    assert_parity(
        functools.partial(conv.avg_pool2d, kernel_size=3, stride=2, padding=1, ceil_mode=True),
        functools.partial(F.avg_pool2d, kernel_size=3, stride=2, padding=1, ceil_mode=True),
        (x,),
    )


@pytest.mark.parametrize("fn", [conv.max_pool2d, conv.avg_pool2d])
def test_pooling_an_empty_batch_matches_torch(fn):
    x = torch.empty(0, 2, 6, 6, dtype=DT)
    ref = getattr(F, fn.__name__)
    assert_parity(
        functools.partial(fn, kernel_size=2),
        functools.partial(ref, kernel_size=2),
        (x,),
        layouts=["contiguous"],
    )


# -------------------------------------------------------------------------- output shape


def _valid(H, k, s, p, d):
    if isinstance(p, str):
        return s == 1 if p == "same" else H >= d * (k - 1) + 1
    return H + 2 * p >= d * (k - 1) + 1


PADDINGS = [0, 1, 2, "same", "valid"]
OUTPUT_GRID = [
    c
    for c in itertools.product([1, 5, 8, 28], [1, 2, 3, 5], [1, 2, 3], PADDINGS, [1, 2])
    if _valid(*c)
]


@pytest.mark.parametrize(("H", "k", "s", "p", "d"), OUTPUT_GRID)
def test_conv2d_output_shape_matches_torch(H, k, s, p, d):
    W = H + 3
    x, w = torch.zeros(1, 1, H, W), torch.zeros(1, 1, k, k)
    ref = _quiet(F.conv2d)(x, w, stride=s, padding=p, dilation=d).shape[2:]
    assert conv.conv2d_output_shape((H, W), k, s, p, d) == tuple(ref)


# -------------------------------------------------------------------------------- modules


@pytest.mark.parametrize(
    "kwargs",
    [
        {"in_channels": 3, "out_channels": 4, "kernel_size": 3},
        {"in_channels": 4, "out_channels": 8, "kernel_size": (3, 2), "stride": 2, "padding": 1},
        {"in_channels": 4, "out_channels": 4, "kernel_size": 3, "padding": "same", "groups": 4},
        {"in_channels": 2, "out_channels": 6, "kernel_size": 2, "padding": "same", "dilation": 2},
        {"in_channels": 3, "out_channels": 2, "kernel_size": 1, "bias": False},
        {
            "in_channels": 3,
            "out_channels": 3,
            "kernel_size": 3,
            "padding": 2,
            "padding_mode": "reflect",
        },
        {
            "in_channels": 3,
            "out_channels": 3,
            "kernel_size": 3,
            "padding": 1,
            "padding_mode": "replicate",
        },
        {
            "in_channels": 3,
            "out_channels": 3,
            "kernel_size": 3,
            "padding": (1, 2),
            "padding_mode": "circular",
        },
    ],
)
@pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")
def test_conv2d_module_matches_torch_and_state_dicts_load_both_ways(kwargs):
    torch.manual_seed(0)
    theirs = torch.nn.Conv2d(**kwargs, dtype=DT)
    ours = conv.Conv2d(**kwargs, dtype=DT)
    assert ours.state_dict().keys() == theirs.state_dict().keys()
    assert all(ours.state_dict()[k].shape == v.shape for k, v in theirs.state_dict().items())
    x = _randn(2, kwargs["in_channels"], 7, 6, seed=1)
    assert_module_parity(ours, theirs, (x,))
    fresh = torch.nn.Conv2d(**kwargs, dtype=DT)
    fresh.load_state_dict(ours.state_dict())  # and the other way
    torch.testing.assert_close(fresh(x), ours(x))
    assert ours(x[0]).shape == fresh(x[0]).shape  # unbatched


def test_conv2d_module_initialisation_has_torchs_distribution():
    """Same bound 1/sqrt(fan_in), and with the same seed the very same numbers."""
    torch.manual_seed(0)
    ours = conv.Conv2d(16, 32, 3, groups=2)
    torch.manual_seed(0)
    theirs = torch.nn.Conv2d(16, 32, 3, groups=2)
    torch.testing.assert_close(ours.weight, theirs.weight)
    torch.testing.assert_close(ours.bias, theirs.bias)
    bound = 1 / (8 * 9) ** 0.5
    assert ours.weight.abs().max() <= bound and ours.weight.abs().max() > 0.9 * bound


@pytest.mark.parametrize(
    "kwargs",
    [
        {"kernel_size": 2},
        {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True},
        {"kernel_size": 2, "stride": 1, "dilation": 2},
        {"kernel_size": 2, "return_indices": True},
    ],
)
def test_maxpool2d_module_matches_torch(kwargs):
    x = _randn(2, 3, 7, 7)
    ours, theirs = conv.MaxPool2d(**kwargs), torch.nn.MaxPool2d(**kwargs)
    assert_module_parity(ours, theirs, (x,))
    assert ours.state_dict().keys() == theirs.state_dict().keys() == set()


def test_conv2d_module_in_a_sequential_swaps_for_torchs():
    torch.manual_seed(0)
    ref = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2)
    )
    ours = torch.nn.Sequential(conv.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), conv.MaxPool2d(2))
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(3, 1, 8, 8)
    torch.testing.assert_close(ours(x), ref(x))


# --------------------------------------------------------------------------------- errors

X, W = torch.zeros(1, 4, 5, 5), torch.zeros(2, 4, 3, 3)
WT = W.transpose(0, 1)  # (C_in = 4, C_out = 2, 3, 3), a transposed conv's weight


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: conv.conv2d([1.0], W), TypeError, "input must be a torch.Tensor"),
        (lambda: conv.conv2d(X.long(), W), TypeError, "input must be a floating-point"),
        (lambda: conv.conv2d(X, W.double()), TypeError, "input and weight must have the same"),
        (lambda: conv.conv2d(X[0, 0], W), ValueError, r"input must have shape \(N, C, d0, d1\) or"),
        (lambda: conv.conv2d(X, W[0]), ValueError, r"weight must have 4 dim"),
        (lambda: conv.conv2d(X, W[:, :3]), ValueError, r"has 4 channels but .* expects 3"),
        (
            lambda: conv.conv2d(X, torch.zeros(3, 2, 3, 3), groups=2),
            ValueError,
            r"groups=2 must divide",
        ),
        (lambda: conv.conv2d(X, W, groups=0), ValueError, "groups must be at least 1"),
        (lambda: conv.conv2d(X, W, torch.zeros(3)), ValueError, r"bias must have shape \(2,\)"),
        (lambda: conv.conv2d(X, W, stride=0), ValueError, "stride must be at least 1, got 0"),
        (
            lambda: conv.conv2d(X, W, stride=1.5),
            TypeError,
            "stride must be an int or a tuple of 2 ints, got 1.5",
        ),
        (lambda: conv.conv2d(X, W, stride=(1, 2, 3)), TypeError, "an int or a tuple of 2"),
        (lambda: conv.conv2d(X, W, padding=-1), ValueError, "padding must be at least 0, got -1"),
        (lambda: conv.conv2d(X, W, padding="full"), ValueError, "padding must be an int, a"),
        (lambda: conv.conv2d(X, W, padding="same", stride=2), ValueError, "'same' needs stride=1"),
        (lambda: conv.conv2d(X, W, dilation=0), ValueError, "dilation must be at least 1"),
        (
            lambda: conv.conv2d(X, W, dilation=3),
            ValueError,
            r"height has size 5 \(padded\), less than d \(k - 1\) \+ 1 = 7",
        ),
        (
            lambda: conv.conv1d(X[0, :, 0], W[..., 0], padding=(1, 1)),
            TypeError,
            "a tuple of 1 ints",
        ),
        (lambda: conv.conv_transpose2d(X, W), ValueError, r"4 channels but .* expects 2"),
        (
            lambda: conv.conv_transpose2d(X, WT, stride=2, output_padding=2),
            ValueError,
            "must be smaller",
        ),
        (
            lambda: conv.conv_transpose2d(X[..., :1, :1], WT[..., :1, :1], padding=1),
            ValueError,
            "leaves an output",
        ),
        (lambda: conv.max_pool2d(X, 2, padding=2), ValueError, "at most half of"),
        (lambda: conv.max_pool2d(X, 6), ValueError, r"input has size 5 \(padded\), less than"),
        (lambda: conv.max_pool2d(X, 0), ValueError, "kernel_size must be at least 1"),
        (lambda: conv.max_pool2d(X, 2, ceil_mode=1), TypeError, "ceil_mode must be a bool"),
        (lambda: conv.avg_pool2d(X, 2, count_include_pad="yes"), TypeError, "must be a bool"),
        (lambda: conv.avg_pool2d(X, 2, divisor_override=0), ValueError, "divisor_override must"),
        (lambda: conv.conv2d_output_shape(0, 3), ValueError, "input_size must be at least 1"),
        (lambda: conv.conv2d_output_shape(2, 3), ValueError, r"input_size has size 2 \(padded\)"),
        (
            lambda: conv.Conv2d(4, 6, 3, groups=4),
            ValueError,
            "groups=4 must divide the in_channels 4 and the out_channels 6",
        ),
        (lambda: conv.Conv2d(0, 6, 3), ValueError, "in_channels must be at least 1"),
        (lambda: conv.Conv2d(4, 6, 3, padding_mode="zero"), ValueError, "padding_mode must"),
        (
            lambda: conv.Conv2d(4, 6, 3, stride=2, padding="same"),
            ValueError,
            "'same' needs stride=1",
        ),
        (lambda: conv.Conv2d(3, 2, 3)(X), ValueError, "input has 4 channels but weight"),
    ],
)
def test_bad_input_raises_clear_error(call, error, match):
    with pytest.raises(error, match=match):
        call()


@pytest.mark.parametrize(
    "call",
    [
        lambda: F.conv2d(X, W[:, :3]),
        lambda: F.conv2d(X, W, stride=0),
        lambda: F.conv2d(X, W, padding="same", stride=2),
        lambda: F.conv2d(X, W, dilation=3),
        lambda: F.conv_transpose2d(X, WT, stride=2, output_padding=2),
        lambda: F.max_pool2d(X, 2, padding=2),
        lambda: torch.nn.Conv2d(4, 6, 3, groups=4),
    ],
)
def test_torch_refuses_the_same_inputs(call):
    with pytest.raises((RuntimeError, ValueError)):
        call()
