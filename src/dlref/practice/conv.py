"""Exercises on convolutions and pooling (references: :mod:`dlref.conv`)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from dlref import conv
from dlref.practice._cases import bad_input, cases, randn, shape_check, tensor, values_check
from dlref.practice._grader import Check, Mistake, register

PAGE = "topics/conv.html"
SIZE = f"{PAGE}#the-output-size-checked-against-torch"
MISTAKES = f"{PAGE}#common-mistakes"
BACKWARD = f"{PAGE}#the-backward-pass-is-a-convolution-too"
POOLING = f"{PAGE}#pooling-and-its-gradient"
IM2COL = f"{PAGE}#im2col-the-unfolded-matrix-of-a-tiny-case"

# ------------------------------------------------------------------------------- references


def conv2d_output_shape_reference(
    H: int, W: int, kernel_size: int, stride: int = 1, padding: int = 0, dilation: int = 1
) -> tuple:
    """The reference: :func:`dlref.conv.conv2d_output_shape` for a square kernel.

    Parameters
    ----------
    H, W : int
        Input height and width.
    kernel_size, stride, padding, dilation : int
        As in :func:`torch.nn.functional.conv2d`.

    Returns
    -------
    tuple of int
        (H_out, W_out); ``ValueError`` when the dilated kernel does not fit the padded input.

    Examples
    --------
    >>> from dlref.practice.conv import conv2d_output_shape_reference
    >>> conv2d_output_shape_reference(28, 28, 3, padding=1)
    (28, 28)
    >>> conv2d_output_shape_reference(32, 20, 3, stride=2, dilation=2)
    (14, 8)
    """
    return conv.conv2d_output_shape((H, W), kernel_size, stride, padding, dilation)


def conv2d_unfold_reference(
    x: Tensor, weight: Tensor, bias: Tensor | None = None, stride: int = 1, padding: int = 0
) -> Tensor:
    """The reference: :func:`dlref.conv.conv2d` (im2col and one matrix product).

    Parameters
    ----------
    x : Tensor
        (N, C_in, H, W).
    weight : Tensor
        (C_out, C_in, kH, kW).
    bias : Tensor, optional
        (C_out,).
    stride, padding : int
        As in :func:`torch.nn.functional.conv2d`.

    Returns
    -------
    Tensor
        (N, C_out, H_out, W_out).

    Examples
    --------
    >>> import torch
    >>> from dlref.practice.conv import conv2d_unfold_reference
    >>> x = torch.arange(9.0, dtype=torch.float64).view(1, 1, 3, 3)
    >>> conv2d_unfold_reference(x, torch.ones(1, 1, 2, 2, dtype=torch.float64))
    tensor([[[[ 8., 12.],
              [20., 24.]]]], dtype=torch.float64)
    """
    return conv.conv2d(x, weight, bias, stride=stride, padding=padding)


def max_pool2d_backward_reference(x: Tensor, grad_output: Tensor, kernel_size: int = 2) -> Tensor:
    """The reference: autograd through :func:`dlref.conv.max_pool2d` (stride = kernel_size).

    Parameters
    ----------
    x : Tensor
        (N, C, H, W), the input of the pooling.
    grad_output : Tensor
        (N, C, H // k, W // k), the gradient with respect to the pooled output.
    kernel_size : int, default 2
        Window size k, also the stride.

    Returns
    -------
    Tensor
        (N, C, H, W): each window's gradient at its first maximum, 0 elsewhere.

    Examples
    --------
    >>> import torch
    >>> from dlref.practice.conv import max_pool2d_backward_reference
    >>> x = torch.tensor([[[[1.0, 3.0], [3.0, 2.0]]]], dtype=torch.float64)
    >>> max_pool2d_backward_reference(x, torch.tensor([[[[5.0]]]], dtype=torch.float64))
    tensor([[[[0., 5.],
              [0., 0.]]]], dtype=torch.float64)
    """
    _check_grad_output(x, grad_output, kernel_size)
    x = x.detach().requires_grad_()
    with torch.enable_grad():
        y = conv.max_pool2d(x, kernel_size)
        return torch.autograd.grad(y, x, grad_output)[0]


def conv2d_input_grad_reference(grad_output: Tensor, weight: Tensor, padding: int = 0) -> Tensor:
    """The reference: :func:`dlref.conv.conv_transpose2d`, the input gradient of a stride-1 conv.

    Parameters
    ----------
    grad_output : Tensor
        (N, C_out, H_out, W_out), the gradient with respect to ``conv2d(x, weight, padding)``.
    weight : Tensor
        (C_out, C_in, kH, kW).
    padding : int, default 0
        The forward convolution's padding.

    Returns
    -------
    Tensor
        (N, C_in, H, W), with H = H_out + kH - 1 - 2 padding.

    Examples
    --------
    >>> import torch
    >>> from dlref.practice.conv import conv2d_input_grad_reference
    >>> g = torch.ones(1, 1, 2, 2, dtype=torch.float64)
    >>> w = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]], dtype=torch.float64)
    >>> conv2d_input_grad_reference(g, w)  # each input pixel: the weights that touched it
    tensor([[[[ 1.,  3.,  2.],
              [ 4., 10.,  6.],
              [ 3.,  7.,  4.]]]], dtype=torch.float64)
    """
    if grad_output.shape[1] != weight.shape[0]:
        raise ValueError(
            f"grad_output has {grad_output.shape[1]} channels but weight {tuple(weight.shape)} "
            f"has C_out = {weight.shape[0]}"
        )
    return conv.conv_transpose2d(grad_output, weight, padding=padding)


def _check_grad_output(x, grad_output, k):
    expected = (*x.shape[:2], x.shape[2] // k, x.shape[3] // k)
    if tuple(grad_output.shape) != expected:
        raise ValueError(f"grad_output must have shape {expected}, got {tuple(grad_output.shape)}")


# --------------------------------------------------------------------------- known mistakes


def _shape_padding_once(H, W, kernel_size, stride=1, padding=0, dilation=1):
    return tuple((n + padding - dilation * (kernel_size - 1) - 1) // stride + 1 for n in (H, W))


def _shape_stride_before_dilation(H, W, kernel_size, stride=1, padding=0, dilation=1):
    # the strided size of the undilated kernel, then shrunk by the dilation's extra extent
    k = kernel_size
    return tuple((n + 2 * padding - k) // stride + 1 - (dilation - 1) * (k - 1) for n in (H, W))


def _shape_no_dilation(H, W, kernel_size, stride=1, padding=0, dilation=1):
    return tuple((n + 2 * padding - kernel_size) // stride + 1 for n in (H, W))


def _conv_flipped(x, weight, bias=None, stride=1, padding=0):
    return F.conv2d(x, weight.flip(2, 3), bias, stride=stride, padding=padding)


def _conv_padding_once(x, weight, bias=None, stride=1, padding=0):
    return F.conv2d(F.pad(x, (padding, 0, padding, 0)), weight, bias, stride=stride)


def _conv_no_bias(x, weight, bias=None, stride=1, padding=0):
    return F.conv2d(x, weight, None, stride=stride, padding=padding)


def _conv_output_not_transposed(x, weight, bias=None, stride=1, padding=0):
    y = F.conv2d(x, weight, bias, stride=stride, padding=padding)  # (N, C_out, H, W)
    N, C, H, W = y.shape
    return y.permute(0, 2, 3, 1).reshape(N, C, H, W)  # (N, L, C_out) read as (N, C_out, L)


def _windows(x, k):
    N, C, H, W = x.shape
    x = x[:, :, : H // k * k, : W // k * k]
    return x.reshape(N, C, H // k, k, W // k, k)  # (N, C, i, u, j, v)


def _scatter(x, grad_output, k, share):
    win = _windows(x, k)
    is_max = win == win.amax(dim=(3, 5), keepdim=True)
    g = grad_output[:, :, :, None, :, None] * share(is_max.to(x.dtype))
    out = torch.zeros_like(x)
    N, C, Hk, _, Wk, _ = g.shape
    out[:, :, : Hk * k, : Wk * k] = g.reshape(N, C, Hk * k, Wk * k)
    return out


def _pool_ties_split(x, grad_output, kernel_size=2):
    return _scatter(x, grad_output, kernel_size, lambda m: m / m.sum(dim=(3, 5), keepdim=True))


def _pool_ties_all(x, grad_output, kernel_size=2):
    return _scatter(x, grad_output, kernel_size, lambda m: m)


def _pool_to_all(x, grad_output, kernel_size=2):
    return _scatter(x, grad_output, kernel_size, torch.ones_like)


def _grad_not_flipped(grad_output, weight, padding=0):
    kH, kW = weight.shape[2:]
    g = F.pad(grad_output, (kW - 1 - padding, kW - 1 - padding, kH - 1 - padding, kH - 1 - padding))
    return F.conv2d(g, weight.transpose(0, 1))


def _grad_padding_not_adjusted(grad_output, weight, padding=0):
    return F.conv2d(grad_output, weight.flip(2, 3).transpose(0, 1), padding=padding)


# ------------------------------------------------------------------------------------ stubs

SHAPE_STUB = r'''
def conv2d_output_shape(H: int, W: int, kernel_size: int, stride: int = 1, padding: int = 0,
                        dilation: int = 1) -> tuple:
    r"""(H_out, W_out) of torch.nn.functional.conv2d with a square kernel.

        H_out = floor((H + 2 padding - dilation (kernel_size - 1) - 1) / stride) + 1

    All arguments are ints. Return a tuple of two ints. Raise a ValueError when the dilated
    kernel, dilation (kernel_size - 1) + 1, is larger than the padded input.
    """
    raise NotImplementedError
'''

UNFOLD_STUB = r'''
import torch
import torch.nn.functional as F
from torch import Tensor


def conv2d_unfold(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride: int = 1,
                  padding: int = 0) -> Tensor:
    r"""torch.nn.functional.conv2d(x, weight, bias, stride, padding), as im2col and one matmul.

        cols = F.unfold(x, (kH, kW), padding=padding, stride=stride)   # (N, C_in kH kW, L)
        y = weight.view(C_out, -1) @ cols + bias                       # (N, C_out, L)

    x: (N, C_in, H, W); weight: (C_out, C_in, kH, kW); bias: (C_out,) or None.
    Returns (N, C_out, H_out, W_out). No kernel flip: deep-learning convolution is a
    cross-correlation. Raise a ValueError when x and weight disagree on C_in.
    """
    raise NotImplementedError
'''

POOL_STUB = r'''
import torch
from torch import Tensor


def max_pool2d_backward(x: Tensor, grad_output: Tensor, kernel_size: int = 2) -> Tensor:
    r"""The gradient with respect to x of max_pool2d(x, kernel_size) (stride = kernel_size).

    Each window's gradient grad_output[n, c, i, j] goes to the window's maximum, and nothing
    to the other entries. On a tie, all of it goes to the FIRST maximum in row-major order
    of the window, as in torch. Rows and columns that no window covers (H or W not a
    multiple of kernel_size) get 0.

    x: (N, C, H, W); grad_output: (N, C, H // k, W // k). Returns (N, C, H, W).
    Raise a ValueError when grad_output has the wrong shape.
    """
    raise NotImplementedError
'''

INPUT_GRAD_STUB = r'''
import torch
import torch.nn.functional as F
from torch import Tensor


def conv2d_input_grad(grad_output: Tensor, weight: Tensor, padding: int = 0) -> Tensor:
    r"""dL/dx for y = conv2d(x, weight, padding=padding), stride 1, given G = dL/dy.

        dL/dx = conv2d(pad(G, k - 1 - padding), flip(weight) with C_in and C_out swapped)

    grad_output: (N, C_out, H_out, W_out); weight: (C_out, C_in, kH, kW).
    Returns (N, C_in, H_out + kH - 1 - 2 padding, W_out + kW - 1 - 2 padding).
    Raise a ValueError when grad_output and weight disagree on C_out.
    """
    raise NotImplementedError
'''


def _conv_random():
    return [
        {"x": randn(2, 3, 7, 6, seed=1), "weight": randn(4, 3, 3, 3, seed=2)},
        {
            "x": randn(2, 2, 8, 9, seed=3),
            "weight": randn(3, 2, 3, 2, seed=4),
            "bias": randn(3, seed=5),
            "stride": 2,
            "padding": 1,
        },
        {
            "x": randn(1, 4, 6, 6, seed=6),
            "weight": randn(2, 4, 5, 5, seed=7),
            "bias": randn(2, seed=8),
            "padding": 2,
        },
    ]


def _ig_case(go: tuple, w: tuple, seed: int, padding: int = 0) -> dict:
    """A conv2d_input_grad case: grad_output of shape ``go``, weight of shape ``w``."""
    case = {"grad_output": randn(*go, seed=seed), "weight": randn(*w, seed=seed + 1)}
    return case | ({"padding": padding} if padding else {})


def _pool_ties():
    zeros = torch.zeros(1, 2, 4, 4, dtype=torch.float64)
    steps = tensor([[[[1.0, 3.0, 2.0, 2.0], [3.0, 0.0, 2.0, 2.0], [5.0, 5.0, 0.0, 1.0]]]])
    return [
        {"x": steps[..., :2, :], "grad_output": tensor([[[[1.0, 2.0]]]])},
        {"x": zeros, "grad_output": randn(1, 2, 2, 2, seed=8)},
        {"x": steps, "grad_output": tensor([[[[-2.0]]]]), "kernel_size": 3},
    ]


register(
    reference=conv2d_output_shape_reference,
    stub=SHAPE_STUB,
    summary="the output height and width of a convolution",
    checks=(
        values_check(
            lambda: [
                {"H": 28, "W": 28, "kernel_size": 3},
                {"H": 28, "W": 20, "kernel_size": 3, "padding": 1},
            ]
        ),
        Check(
            "stride",
            lambda: [
                {"H": 224, "W": 224, "kernel_size": 7, "stride": 2, "padding": 3},
                {"H": 8, "W": 9, "kernel_size": 2, "stride": 3},
            ],
        ),
        Check(
            "stride and dilation together",
            lambda: [
                {"H": 32, "W": 20, "kernel_size": 3, "stride": 2, "dilation": 2},
                {"H": 17, "W": 30, "kernel_size": 5, "stride": 3, "padding": 2, "dilation": 3},
            ],
        ),
        Check(
            "edge: kernel as large as the padded input, 1x1 kernel",
            lambda: [
                {"H": 3, "W": 5, "kernel_size": 5, "padding": 1},
                {"H": 1, "W": 1, "kernel_size": 1, "stride": 4},
            ],
        ),
        bad_input(
            "a kernel larger than the padded input",
            "a dilated kernel of extent 5 on a 4x4 input",
            lambda: [{"H": 4, "W": 4, "kernel_size": 3, "dilation": 2}],
        ),
    ),
    difficulty="easy",
    page=SIZE,
    mistakes=(
        Mistake(
            "padding_counted_once",
            _shape_padding_once,
            "padding adds zeros on both sides: the padded size is H + 2 padding, not H + padding.",
            MISTAKES,
        ),
        Mistake(
            "stride_before_dilation",
            _shape_stride_before_dilation,
            "dilate the kernel first (extent dilation (k - 1) + 1), then count the stride "
            "steps that fit: floor((H + 2p - d (k - 1) - 1) / s) + 1.",
            MISTAKES,
        ),
        Mistake(
            "no_dilation",
            _shape_no_dilation,
            "dilation spreads the kernel to an extent of dilation (k - 1) + 1: use it in "
            "place of k.",
            SIZE,
        ),
    ),
)

register(
    reference=conv2d_unfold_reference,
    stub=UNFOLD_STUB,
    summary="conv2d as unfold (im2col) and one matrix product",
    checks=(
        shape_check(
            lambda: [{"x": randn(1, 1, 3, 3, seed=0), "weight": randn(2, 1, 2, 2, seed=1)}]
        ),
        values_check(
            lambda: [
                {
                    "x": tensor([[[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]]]]),
                    "weight": tensor([[[[1.0, 0.0], [0.0, -2.0]]]]),
                    "bias": tensor([0.5]),
                }
            ]
        ),
        Check("random shapes, stride and padding", _conv_random),
        Check(
            "gradient vs the reference",
            lambda: _conv_random()[1:],
            kind="grad",
            grad_wrt=("x", "weight", "bias"),
        ),
        Check(
            "edge: 1x1 kernel, kernel as large as the input",
            lambda: [
                {"x": randn(2, 3, 4, 4, seed=9), "weight": randn(5, 3, 1, 1, seed=10)},
                {"x": randn(1, 2, 3, 3, seed=11), "weight": randn(1, 2, 3, 3, seed=12)},
            ],
        ),
        bad_input(
            "channels of x and weight disagree",
            "x has 3 channels, weight expects 2",
            lambda: [{"x": randn(1, 3, 5, 5, seed=13), "weight": randn(2, 2, 3, 3, seed=14)}],
        ),
    ),
    difficulty="medium",
    page=IM2COL,
    mistakes=(
        Mistake(
            "kernel_flipped",
            _conv_flipped,
            "deep-learning convolution is a cross-correlation: the kernel is not flipped "
            "(unfold's columns meet the weight's rows in the same order).",
            IM2COL,
        ),
        Mistake(
            "padding_counted_once",
            _conv_padding_once,
            "padding adds zeros on both sides (top and bottom, left and right), not only "
            "before the input.",
            MISTAKES,
        ),
        Mistake(
            "bias_ignored",
            _conv_no_bias,
            "add bias[o] to every position of output channel o.",
            f"{PAGE}#key-equations",
        ),
        Mistake(
            "output_not_transposed",
            _conv_output_not_transposed,
            "the product is (C_out, L) per image: view it as (C_out, H_out, W_out); a "
            "(L, C_out) result must be transposed before the reshape.",
            IM2COL,
        ),
    ),
)

register(
    reference=max_pool2d_backward_reference,
    stub=POOL_STUB,
    summary="the input gradient of max pooling, ties as in torch",
    checks=(
        shape_check(
            lambda: [{"x": randn(1, 1, 2, 2, seed=0), "grad_output": randn(1, 1, 1, 1, seed=1)}]
        ),
        values_check(
            lambda: [
                {
                    "x": tensor([[[[1.0, 5.0, 2.0, 0.0], [3.0, 4.0, 7.0, 6.0]]]]),
                    "grad_output": tensor([[[[1.0, -2.0]]]]),
                }
            ]
        ),
        Check(
            "random inputs and kernel sizes",
            lambda: [
                {"x": randn(2, 3, 6, 8, seed=2), "grad_output": randn(2, 3, 3, 4, seed=3)},
                {
                    "x": randn(1, 2, 9, 6, seed=4),
                    "grad_output": randn(1, 2, 3, 2, seed=5),
                    "kernel_size": 3,
                },
            ],
        ),
        Check("edge: ties (equal values in a window)", _pool_ties),
        Check(
            "edge: a size not a multiple of the kernel (the last row is never pooled)",
            lambda: [{"x": randn(1, 1, 5, 4, seed=6), "grad_output": randn(1, 1, 2, 2, seed=7)}],
        ),
        bad_input(
            "grad_output of the wrong shape",
            "grad_output (1, 1, 4, 4) for a pooled output (1, 1, 2, 2)",
            lambda: [{"x": randn(1, 1, 4, 4, seed=8), "grad_output": randn(1, 1, 4, 4, seed=9)}],
        ),
    ),
    difficulty="medium",
    page=POOLING,
    mistakes=(
        Mistake(
            "ties_split",
            _pool_ties_split,
            "on a tie torch gives the whole gradient to the first maximum of the window "
            "(row-major), not a share to each.",
            POOLING,
        ),
        Mistake(
            "ties_to_all",
            _pool_ties_all,
            "a mask x == max gives the full gradient to every tied entry: only the first "
            "maximum of the window gets it.",
            POOLING,
        ),
        Mistake(
            "gradient_to_all",
            _pool_to_all,
            "the gradient of a max goes to the arg-max only; the other entries of the "
            "window did not affect the output and get 0.",
            POOLING,
        ),
    ),
)

register(
    reference=conv2d_input_grad_reference,
    stub=INPUT_GRAD_STUB,
    summary="the input gradient of a conv: a conv with the flipped kernel",
    checks=(
        shape_check(cases(_ig_case, ((1, 1, 2, 2), (1, 1, 2, 2), 0))),
        values_check(
            lambda: [
                {
                    "grad_output": tensor([[[[1.0, 0.0], [0.0, 2.0]]]]),
                    "weight": tensor([[[[1.0, 2.0], [3.0, 4.0]]]]),
                }
            ]
        ),
        Check(
            "random shapes, channels and padding",
            cases(_ig_case, ((2, 4, 5, 4), (4, 3, 3, 3), 2), ((1, 2, 6, 6), (2, 5, 3, 2), 4, 1)),
        ),
        Check(
            "edge: 1x1 kernel, padding as large as allowed",
            cases(_ig_case, ((1, 3, 3, 3), (3, 2, 1, 1), 6), ((1, 1, 5, 5), (1, 2, 3, 3), 8, 1)),
        ),
        bad_input(
            "channels of grad_output and weight disagree",
            "grad_output has 3 channels, weight has C_out = 2",
            cases(_ig_case, ((1, 3, 4, 4), (2, 3, 3, 3), 10)),
        ),
    ),
    difficulty="medium",
    page=BACKWARD,
    mistakes=(
        Mistake(
            "kernel_not_flipped",
            _grad_not_flipped,
            "output (i, j) saw input (i + u, j + v) through w[u, v], so gathering back runs "
            "the kernel backwards: flip it by 180 degrees (and swap C_in and C_out).",
            BACKWARD,
        ),
        Mistake(
            "padding_not_adjusted",
            _grad_padding_not_adjusted,
            "the transposed convolution pads the gradient by k - 1 - padding, not by the "
            "forward padding.",
            BACKWARD,
        ),
    ),
)
