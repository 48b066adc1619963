"""dlref.practice.conv: the references agree with torch, and wrong code written here is caught.

- each reference equals an independent computation (torch's conv output shape, ``F.conv2d``,
  autograd through ``F.max_pool2d``, autograd through ``F.conv2d``);
- wrong implementations written here (not the grader's own variants), ``WRONG_CONV``, fail the
  expected check with the expected diagnosis: ``tests/test_practice.py`` runs them with the
  other exercises' wrong implementations;
- a right implementation written here, the textbook one, passes.
"""

import itertools

import pytest
import torch
import torch.nn.functional as F

from dlref.practice import check
from dlref.practice import conv as pc

DT = torch.float64


def _randn(*shape, seed=0):
    return torch.randn(shape, dtype=DT, generator=torch.Generator().manual_seed(seed))


# --------------------------------------------------------------- references against torch


@pytest.mark.parametrize(
    ("H", "k", "s", "p", "d"),
    [c for c in itertools.product([4, 9, 16], [1, 2, 3], [1, 2, 3], [0, 1], [1, 2])
     if c[0] + 2 * c[3] >= c[4] * (c[1] - 1) + 1],
)  # fmt: skip
def test_output_shape_reference_matches_torch(H, k, s, p, d):
    y = F.conv2d(
        torch.zeros(1, 1, H, H + 1), torch.zeros(1, 1, k, k), stride=s, padding=p, dilation=d
    )
    assert pc.conv2d_output_shape_reference(H, H + 1, k, s, p, d) == tuple(y.shape[2:])


def test_unfold_reference_matches_f_conv2d():
    x, w, b = _randn(2, 3, 7, 6), _randn(4, 3, 3, 2, seed=1), _randn(4, seed=2)
    ours = pc.conv2d_unfold_reference(x, w, b, stride=2, padding=1)
    torch.testing.assert_close(ours, F.conv2d(x, w, b, stride=2, padding=1))


@pytest.mark.parametrize("k", [2, 3])
def test_pool_backward_reference_matches_autograd_through_torch(k):
    x = torch.cat([_randn(1, 2, 7, 6), torch.zeros(1, 2, 7, 6, dtype=DT)])  # ties in image 2
    x = x.requires_grad_()
    y = F.max_pool2d(x, k)
    g = _randn(*y.shape, seed=3)
    (expected,) = torch.autograd.grad(y, x, g)
    torch.testing.assert_close(pc.max_pool2d_backward_reference(x.detach(), g, k), expected)


@pytest.mark.parametrize("padding", [0, 1, 2])
def test_input_grad_reference_matches_autograd_through_torch(padding):
    x = _randn(2, 3, 6, 7).requires_grad_()
    w = _randn(4, 3, 5, 3, seed=1)
    y = F.conv2d(x, w, padding=padding)
    g = _randn(*y.shape, seed=2)
    (expected,) = torch.autograd.grad(y, x, g)
    torch.testing.assert_close(pc.conv2d_input_grad_reference(g, w, padding), expected)


# ---------------------------------------------------------- right code written here passes


def shape_right(H, W, kernel_size, stride=1, padding=0, dilation=1):
    extent = dilation * (kernel_size - 1) + 1
    if min(H, W) + 2 * padding < extent:
        raise ValueError("kernel larger than the padded input")
    return tuple((n + 2 * padding - extent) // stride + 1 for n in (H, W))


def unfold_right(x, weight, bias=None, stride=1, padding=0):
    if x.shape[1] != weight.shape[1]:
        raise ValueError("channels differ")
    N, C_out, (kH, kW) = x.shape[0], weight.shape[0], weight.shape[2:]
    H, W = ((n + 2 * padding - k) // stride + 1 for n, k in zip(x.shape[2:], (kH, kW), strict=True))
    cols = F.unfold(x, (kH, kW), padding=padding, stride=stride)  # (N, C kH kW, L)
    y = weight.view(C_out, -1) @ cols  # (N, C_out, L)
    if bias is not None:
        y = y + bias[:, None]
    return y.view(N, C_out, H, W)


def pool_right(x, grad_output, kernel_size=2):
    k = kernel_size
    N, C, H, W = x.shape
    if tuple(grad_output.shape) != (N, C, H // k, W // k):
        raise ValueError("grad_output has the wrong shape")
    out = torch.zeros_like(x)
    for n, c, i, j in itertools.product(range(N), range(C), range(H // k), range(W // k)):
        window = x[n, c, i * k : i * k + k, j * k : j * k + k].flatten()
        first = int(window.argmax())  # the first maximum
        out[n, c, i * k + first // k, j * k + first % k] += grad_output[n, c, i, j]
    return out


def input_grad_right(grad_output, weight, padding=0):
    if grad_output.shape[1] != weight.shape[0]:
        raise ValueError("channels differ")
    kH, kW = weight.shape[2:]
    g = F.pad(grad_output, (kW - 1 - padding,) * 2 + (kH - 1 - padding,) * 2)
    return F.conv2d(g, weight.flip(2, 3).transpose(0, 1))


@pytest.mark.parametrize(
    ("fn", "name"),
    [
        (shape_right, "conv2d_output_shape"),
        (unfold_right, "conv2d_unfold"),
        (pool_right, "max_pool2d_backward"),
        (input_grad_right, "conv2d_input_grad"),
    ],
)
def test_right_implementations_written_here_pass(fn, name):
    report = check(fn, name)
    assert report.passed, str(report)


# ------------------------------------------------------------ wrong code written here fails


def shape_one_side(H, W, kernel_size, stride=1, padding=0, dilation=1):
    return tuple((n + padding - dilation * (kernel_size - 1) - 1) // stride + 1 for n in (H, W))


def shape_dilate_after_stride(H, W, kernel_size, stride=1, padding=0, dilation=1):
    out = []
    for n in (H, W):
        strided = (n + 2 * padding - kernel_size) // stride + 1
        out.append(strided - (dilation - 1) * (kernel_size - 1))
    return tuple(out)


def shape_ignores_dilation(H, W, kernel_size, stride=1, padding=0, dilation=1):
    return (
        (H + 2 * padding - kernel_size) // stride + 1,
        (W + 2 * padding - kernel_size) // stride + 1,
    )


def unfold_true_convolution(x, weight, bias=None, stride=1, padding=0):
    return unfold_right(x, weight.flip(-1).flip(-2), bias, stride, padding)


def unfold_pads_top_left_only(x, weight, bias=None, stride=1, padding=0):
    return unfold_right(F.pad(x, (padding, 0, padding, 0)), weight, bias, stride, 0)


def unfold_lc_order(x, weight, bias=None, stride=1, padding=0):
    N, C_out = x.shape[0], weight.shape[0]
    ref = unfold_right(x, weight, bias, stride, padding)
    cols = F.unfold(x, weight.shape[2:], padding=padding, stride=stride)
    y = cols.transpose(1, 2) @ weight.view(C_out, -1).T  # (N, L, C_out)
    if bias is not None:
        y = y + bias
    return y.reshape(N, C_out, *ref.shape[2:])  # forgot to transpose back


def pool_mask_divided(x, grad_output, kernel_size=2):
    k = kernel_size
    N, C, H, W = x.shape
    out = torch.zeros_like(x)
    for n, c, i, j in itertools.product(range(N), range(C), range(H // k), range(W // k)):
        window = x[n, c, i * k : i * k + k, j * k : j * k + k]
        mask = (window == window.max()).to(x.dtype)
        out[n, c, i * k : i * k + k, j * k : j * k + k] = (
            grad_output[n, c, i, j] * mask / mask.sum()
        )
    return out


def pool_mask(x, grad_output, kernel_size=2):
    k = kernel_size
    up = grad_output.repeat_interleave(k, 2).repeat_interleave(k, 3)
    pooled = F.max_pool2d(x, k).repeat_interleave(k, 2).repeat_interleave(k, 3)
    out = torch.zeros_like(x)
    h, w = up.shape[2:]
    out[:, :, :h, :w] = up * (x[:, :, :h, :w] == pooled)
    return out


def pool_upsample(x, grad_output, kernel_size=2):
    k = kernel_size
    up = grad_output.repeat_interleave(k, 2).repeat_interleave(k, 3)
    out = torch.zeros_like(x)
    out[:, :, : up.shape[2], : up.shape[3]] = up
    return out


def input_grad_same_kernel(grad_output, weight, padding=0):
    kH, kW = weight.shape[2:]
    g = F.pad(grad_output, (kW - 1 - padding,) * 2 + (kH - 1 - padding,) * 2)
    return F.conv2d(g, weight.transpose(0, 1))  # forgot the flip


def input_grad_forward_padding(grad_output, weight, padding=0):
    return F.conv2d(grad_output, weight.flip(2, 3).transpose(0, 1), padding=padding)


WRONG_CONV = [
    ("conv2d_output_shape", shape_one_side, "values on a hand-sized case", "padding_counted_once"),
    (
        "conv2d_output_shape",
        shape_dilate_after_stride,
        "stride and dilation together",
        "stride_before_dilation",
    ),
    ("conv2d_output_shape", shape_ignores_dilation, "stride and dilation together", "no_dilation"),
    ("conv2d_unfold", unfold_true_convolution, "values on a hand-sized case", "kernel_flipped"),
    (
        "conv2d_unfold",
        unfold_pads_top_left_only,
        "random shapes, stride and padding",
        "padding_counted_once",
    ),
    (
        "conv2d_unfold",
        unfold_lc_order,
        "random shapes, stride and padding",
        "output_not_transposed",
    ),
    (
        "max_pool2d_backward",
        pool_mask_divided,
        "edge: ties (equal values in a window)",
        "ties_split",
    ),
    ("max_pool2d_backward", pool_mask, "edge: ties (equal values in a window)", "ties_to_all"),
    ("max_pool2d_backward", pool_upsample, "values on a hand-sized case", "gradient_to_all"),
    (
        "conv2d_input_grad",
        input_grad_same_kernel,
        "values on a hand-sized case",
        "kernel_not_flipped",
    ),
    (
        "conv2d_input_grad",
        input_grad_forward_padding,
        "shape on a tiny case",
        "padding_not_adjusted",
    ),
]
