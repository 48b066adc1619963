r"""Convolution and pooling, written as im2col (unfold) and one matrix product.

Names, arguments and defaults are those of :mod:`torch.nn.functional`, and so are the values
and gradients (float64). :func:`conv2d` unfolds each receptive field into a column (im2col) and
multiplies by the weight as a matrix; :func:`conv_transpose2d` does the reverse (a product, then
col2im), the gradient of :func:`conv2d` with respect to its input. :class:`Conv2d` and
:class:`MaxPool2d` share torch's state dicts.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dlref._checks import (
    check_bool,
    check_divides,
    check_factory,
    check_float,
    check_int,
    check_param,
    check_same_dtype,
    is_int,
)

__all__ = [
    "conv2d_output_shape",
    "conv2d",
    "conv1d",
    "conv_transpose2d",
    "max_pool2d",
    "avg_pool2d",
    "Conv2d",
    "MaxPool2d",
]

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


# -------- Helpers: an int or a tuple per spatial dimension, padding, shapes.


def _tuple(name: str, value: object, n: int, minimum: int) -> tuple[int, ...]:
    """``value`` as ``n`` ints >= ``minimum``: one int for every dimension, or one each."""
    if is_int(value):
        check_int(name, value, minimum)
        return (int(value),) * n
    if not isinstance(value, (tuple, list)) or len(value) != n:
        raise TypeError(f"{name} must be an int or a tuple of {n} ints, got {value!r}")
    for v in value:
        check_int(name, v, minimum)
    return tuple(int(v) for v in value)


def _conv_padding(padding, kernel, stride, dilation) -> list[tuple[int, int]]:
    """(before, after) zeros per spatial dimension for an int, a tuple, 'valid' or 'same'."""
    if padding == "valid":
        return [(0, 0)] * len(kernel)
    if padding == "same":
        if any(s != 1 for s in stride):
            raise ValueError(f"padding='same' needs stride=1 (as in torch), got stride={stride}")
        # total d (k - 1) zeros keep the size; an odd total puts the extra one after, as torch
        totals = [d * (k - 1) for k, d in zip(kernel, dilation, strict=True)]
        return [(t // 2, t - t // 2) for t in totals]
    if isinstance(padding, str):
        raise ValueError(f"padding must be an int, a tuple, 'valid' or 'same', got {padding!r}")
    return [(p, p) for p in _tuple("padding", padding, len(kernel), 0)]


def _out_size(size: int, k: int, s: int, before: int, after: int, d: int, name: str) -> int:
    """The output-size formula, floor((H + p_before + p_after - d (k - 1) - 1) / s) + 1."""
    span = d * (k - 1) + 1  # the dilated kernel's extent
    if size + before + after < span:
        raise ValueError(f"{name} has size {size} (padded), less than d (k - 1) + 1 = {span}")
    return (size + before + after - span) // s + 1


def _batched(input: Tensor, spatial: int, name: str = "input") -> tuple[Tensor, bool]:
    """``input`` with a batch dimension, and whether it had one (an unbatched (C, ...) input)."""
    if input.dim() not in (spatial + 1, spatial + 2):
        dims = ", ".join(f"d{i}" for i in range(spatial))
        raise ValueError(
            f"{name} must have shape (N, C, {dims}) or (C, {dims}), got {tuple(input.shape)}"
        )
    return (input, True) if input.dim() == spatial + 2 else (input.unsqueeze(0), False)


def _check_conv_weight(input: Tensor, weight: Tensor, bias, groups: int, spatial: int, t=False):
    """Shapes of weight and bias against the input's channels and the groups."""
    check_float("weight", weight)
    check_same_dtype(input=input, weight=weight)
    check_int("groups", groups, 1)
    if weight.dim() != spatial + 2:
        raise ValueError(f"weight must have {spatial + 2} dimensions, got {tuple(weight.shape)}")
    C_in, (a, b) = input.shape[1], weight.shape[:2]
    # conv: (C_out, C_in / g, k...); transposed: (C_in, C_out / g, k...)
    C_out, expects = (b * groups, a) if t else (a, b * groups)
    if expects != C_in:
        raise ValueError(
            f"input has {C_in} channels but weight of shape {tuple(weight.shape)} with "
            f"groups={groups} expects {expects}"
        )
    if C_in % groups or C_out % groups:
        raise ValueError(f"groups={groups} must divide the channels, in ({C_in}) and out ({C_out})")
    check_param("bias", bias, (C_out,), input)


def _conv2d(x, weight, bias, stride, pads, dilation, groups: int) -> Tensor:
    """Convolution of a batched (N, C_in, H, W) ``x``, (before, after) pads."""
    N, C_in, H, W = x.shape
    C_out, _, kH, kW = weight.shape
    (pt, pb), (pl, pr) = pads
    H_out = _out_size(H, kH, stride[0], pt, pb, dilation[0], "input height")
    W_out = _out_size(W, kW, stride[1], pl, pr, dilation[1], "input width")
    # zeros around: (N, C_in, H + pt + pb, W + pl + pr)
    x = F.pad(x, (pl, pr, pt, pb))
    # im2col: one column per output pixel, holding its receptive field
    # (N, C_in kH kW, L)
    cols = F.unfold(x, (kH, kW), dilation=dilation, stride=stride)
    L = H_out * W_out
    # (N, g, C_in/g kH kW, L) and the weight (g, C_out/g, C_in/g kH kW)
    cols = cols.view(N, groups, C_in // groups * kH * kW, L)
    w = weight.reshape(groups, C_out // groups, cols.shape[2])
    # y = W_mat @ cols: the one matrix product, per group
    # (N, g, C_out/g, L) -> (N, C_out, H_out, W_out)
    y = (w @ cols).view(N, C_out, H_out, W_out)
    if bias is not None:
        y = y + bias.view(1, C_out, 1, 1)  # y + b_o
    return y


# -------- Convolution


def conv2d_output_shape(
    input_size, kernel_size, stride=1, padding=0, dilation=1
) -> tuple[int, int]:
    r"""Height and width of a 2-d convolution's (or pooling's) output.

    .. math::

        H_{\text{out}} = \left\lfloor \frac{H + 2p - d\,(k - 1) - 1}{s} \right\rfloor + 1

    Parameters
    ----------
    input_size : int or tuple
        Input height and width (H, W); the result is (H_out, W_out).
    kernel_size, stride, padding, dilation : int, tuple or str
        As in :func:`conv2d`.

    Examples
    --------
    >>> from dlref.conv import conv2d_output_shape
    >>> conv2d_output_shape(28, 3), conv2d_output_shape(28, 3, padding="same")
    ((26, 26), (28, 28))
    >>> conv2d_output_shape((224, 224), 7, stride=2, padding=3)  # a ResNet stem
    (112, 112)
    """
    size = _tuple("input_size", input_size, 2, 1)
    kernel = _tuple("kernel_size", kernel_size, 2, 1)
    stride = _tuple("stride", stride, 2, 1)
    dilation = _tuple("dilation", dilation, 2, 1)
    pads = _conv_padding(padding, kernel, stride, dilation)
    return tuple(
        _out_size(n, k, s, b, a, d, "input_size")
        for n, k, s, (b, a), d in zip(size, kernel, stride, pads, dilation, strict=True)
    )


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1) -> Tensor:
    r"""2-d convolution (cross-correlation, as in every deep-learning library) by im2col.

    .. math::

        y[n, o, i, j] = b_o + \sum_{c, u, v} w[o, c, u, v]\;
            x[n, g(o) C_g + c,\; s_h i + d_h u - p_h,\; s_w j + d_w v - p_w]

    with :math:`C_g = C_\text{in} / \text{groups}` input channels per group and :math:`g(o)` the
    group of output channel :math:`o`. Written as ``Y = W_mat @ unfold(X)``: each column of
    ``unfold(X)`` is one receptive field (:math:`C_g k_h k_w` numbers), each row of ``W_mat`` one
    filter. The kernel is not flipped (a true convolution would flip it).

    Parameters
    ----------
    input : Tensor
        (N, C_in, H, W), or (C_in, H, W) unbatched.
    weight, bias : Tensor
        (C_out, C_in / groups, kH, kW) and (C_out,); bias optional.
    stride, dilation : int or tuple, default 1
        Step between windows; spacing between kernel taps.
    padding : int, tuple or str, default 0
        Zeros on each side; ``'same'`` (stride 1) adds :math:`d(k-1)`, the odd one after.
    groups : int, default 1
        Independent convolutions of C_in / groups channels; ``groups = C_in``: depthwise.

    Returns
    -------
    Tensor
        (N, C_out, H_out, W_out), or (C_out, H_out, W_out) for unbatched input.

    Examples
    --------
    >>> import torch
    >>> from dlref.conv import conv2d
    >>> x = torch.arange(16.0).view(1, 1, 4, 4)
    >>> w = torch.tensor([[[[1.0, 0.0], [0.0, -1.0]]]])  # x[i, j] - x[i + 1, j + 1]
    >>> conv2d(x, w)
    tensor([[[[-5., -5., -5.],
              [-5., -5., -5.],
              [-5., -5., -5.]]]])
    >>> conv2d(x, w, stride=2, padding=1).shape
    torch.Size([1, 1, 3, 3])
    """
    check_float("input", input)
    x, batched = _batched(input, 2)
    _check_conv_weight(x, weight, bias, groups, 2)
    stride = _tuple("stride", stride, 2, 1)
    dilation = _tuple("dilation", dilation, 2, 1)
    pads = _conv_padding(padding, weight.shape[2:], stride, dilation)
    y = _conv2d(x, weight, bias, stride, pads, dilation, groups)
    return y if batched else y.squeeze(0)


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1) -> Tensor:
    r"""1-d convolution: :func:`conv2d` on a height-1 image.

    .. math::

        y[n, o, i] = b_o + \sum_{c, u} w[o, c, u]\; x[n, g(o) C_g + c,\; s i + d u - p]

    Parameters
    ----------
    input : Tensor
        (N, C_in, L), or (C_in, L) unbatched; the output likewise, with C_out and L_out.
    weight, bias : Tensor
        (C_out, C_in / groups, k) and (C_out,); bias optional.
    stride, padding, dilation, groups : int, tuple or str
        As in :func:`conv2d`, one int (or a tuple of one) each.

    Examples
    --------
    >>> import torch
    >>> from dlref.conv import conv1d
    >>> x = torch.tensor([[[1.0, 2.0, 4.0, 7.0]]])
    >>> conv1d(x, torch.tensor([[[-1.0, 1.0]]]))  # differences x[i + 1] - x[i]
    tensor([[[1., 2., 3.]]])
    >>> conv1d(x, torch.tensor([[[1.0, 1.0, 1.0]]]), padding="same")
    tensor([[[ 3.,  7., 13., 11.]]])
    """
    check_float("input", input)
    x, batched = _batched(input, 1)
    _check_conv_weight(x, weight, bias, groups, 1)
    stride, dilation = _tuple("stride", stride, 1, 1), _tuple("dilation", dilation, 1, 1)
    padding = padding if isinstance(padding, str) else (0, *_tuple("padding", padding, 1, 0))
    # (N, C, L) -> (N, C, 1, L): a 1-d convolution is a 2-d one with a height-1 kernel
    x, weight = x.unsqueeze(2), weight.unsqueeze(2)
    y = conv2d(x, weight, bias, (1, *stride), padding, (1, *dilation), groups).squeeze(2)
    return y if batched else y.squeeze(0)


def conv_transpose2d(
    input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1
) -> Tensor:
    r"""2-d transposed convolution: the gradient of :func:`conv2d` with respect to its input.

    .. math::

        Y = \mathrm{fold}\big(W_\text{mat}^\top X\big),\qquad
        H_{\text{out}} = (H - 1)\,s - 2p + d\,(k - 1) + p_\text{out} + 1

    Each input pixel scatters ``weight`` times its value into a window of the output, and
    overlapping windows add up (``F.fold``, col2im): :func:`conv2d`'s product read backwards, so
    ``conv_transpose2d(g, w, stride=s, padding=p)`` is the gradient in ``x`` of
    ``<conv2d(x, w, stride=s, padding=p), g>`` (``output_padding`` picks a larger ``x``).

    Parameters
    ----------
    input : Tensor
        (N, C_in, H, W), or (C_in, H, W) unbatched; the output likewise, with C_out.
    weight, bias : Tensor
        (C_in, C_out / groups, kH, kW), the weight of the conv it transposes, and (C_out,).
    stride, dilation, groups : int or tuple
        As in :func:`conv2d`.
    padding : int or tuple, default 0
        Removed from each side of the output (the padding of the conv it transposes).
    output_padding : int or tuple, default 0
        Extra rows/columns at the bottom/right (< stride or dilation): a strided conv maps
        several input sizes to one output size; this picks one.

    Examples
    --------
    >>> import torch
    >>> from dlref.conv import conv_transpose2d
    >>> x = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    >>> conv_transpose2d(x, torch.ones(1, 1, 2, 2), stride=2)  # each pixel to a 2x2 block
    tensor([[[[1., 1., 2., 2.],
              [1., 1., 2., 2.],
              [3., 3., 4., 4.],
              [3., 3., 4., 4.]]]])
    """
    check_float("input", input)
    x, batched = _batched(input, 2)
    _check_conv_weight(x, weight, bias, groups, 2, t=True)
    stride = _tuple("stride", stride, 2, 1)
    padding = _tuple("padding", padding, 2, 0)
    output_padding = _tuple("output_padding", output_padding, 2, 0)
    dilation = _tuple("dilation", dilation, 2, 1)
    if any(op >= max(s, d) for op, s, d in zip(output_padding, stride, dilation, strict=True)):
        raise ValueError(
            f"output_padding={output_padding} must be smaller than stride={stride} or "
            f"dilation={dilation} in each dimension"
        )
    N, C_in, H, W = x.shape
    _, C_out_g, kH, kW = weight.shape
    sizes = [
        (n - 1) * s + d * (k - 1) + 1  # the output before padding is removed
        for n, s, d, k in zip((H, W), stride, dilation, (kH, kW), strict=True)
    ]
    out = [f - 2 * p + op for f, p, op in zip(sizes, padding, output_padding, strict=True)]
    if min(out) < 1:
        raise ValueError(f"padding={padding} leaves an output of size {tuple(out)}")
    xm = x.reshape(N, groups, C_in // groups, H * W)  # (N, g, C_in/g, HW)
    w = weight.reshape(groups, C_in // groups, C_out_g * kH * kW)  # (g, C_in/g, C_out/g kH kW)
    # cols = W_mat^T @ X: each input pixel's contribution to its output window
    cols = w.transpose(1, 2) @ xm  # (N, g, C_out/g kH kW, HW)
    cols = cols.reshape(N, groups * C_out_g * kH * kW, H * W)  # (N, C_out kH kW, HW)
    # col2im: overlapping windows add up
    y = F.fold(cols, sizes, (kH, kW), dilation=dilation, stride=stride)  # (N, C_out, *sizes)
    y = F.pad(y, (0, output_padding[1], 0, output_padding[0]))  # zeros at the bottom and right
    y = y[:, :, padding[0] : padding[0] + out[0], padding[1] : padding[1] + out[1]]
    if bias is not None:
        y = y + bias.view(1, -1, 1, 1)  # y + b_o
    return y if batched else y.squeeze(0)


# -------- Pooling


def _pool_geometry(x, kernel_size, stride, padding, dilation, ceil_mode):
    """Resolved (kernel, stride, padding, dilation), output size and extra right/bottom pads."""
    kernel = _tuple("kernel_size", kernel_size, 2, 1)
    stride = kernel if stride is None or stride == () else _tuple("stride", stride, 2, 1)
    padding = _tuple("padding", padding, 2, 0)
    dilation = _tuple("dilation", dilation, 2, 1)
    check_bool("ceil_mode", ceil_mode)
    if any(2 * p > k for p, k in zip(padding, kernel, strict=True)):
        raise ValueError(f"padding={padding} must be at most half of kernel_size={kernel}")
    out, extra = [], []
    for n, k, s, p, d in zip(x.shape[2:], kernel, stride, padding, dilation, strict=True):
        span = d * (k - 1) + 1
        _out_size(n, k, s, p, p, d, "input")  # raises if the window does not fit
        # floor (or ceil) of (H + 2p - d (k - 1) - 1) / s, plus 1
        o = (n + 2 * p - span + (s - 1 if ceil_mode else 0)) // s + 1
        if ceil_mode and (o - 1) * s >= n + p:  # the last window must start inside the input
            o -= 1
        out.append(o)
        extra.append(max((o - 1) * s + span - (n + 2 * p), 0))  # room for ceil_mode's windows
    return kernel, stride, padding, dilation, out, extra


def max_pool2d(
    input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False
):
    r"""2-d max pooling: the largest value of each window.

    .. math::

        y[n, c, i, j] = \max_{u, v}\; x[n, c,\; s_h i + d_h u - p_h,\; s_w j + d_w v - p_w]

    with :math:`-\infty` in the padding. The gradient of each output goes to one input: the
    arg-max of its window. On a tie it goes to the **first** maximum in row-major order of the
    window, as torch's CPU kernel does, not shared among the tied entries.

    Parameters
    ----------
    input : Tensor
        (N, C, H, W), or (C, H, W) unbatched.
    kernel_size, stride, padding, dilation : int or tuple
        ``stride`` defaults to ``kernel_size``; ``padding`` (of -inf) is at most half of it.
    ceil_mode : bool, optional
        Round the output size up: a last, partial window (starting inside the input) is kept.
    return_indices : bool, optional
        Also return the arg-max of each window as a flat index into H * W, as torch does.

    Returns
    -------
    Tensor or tuple
        (N, C, H_out, W_out) (no N if unbatched), and the int64 indices if asked.

    Examples
    --------
    >>> import torch
    >>> from dlref.conv import max_pool2d
    >>> x = torch.tensor([[[[1.0, 5.0, 2.0], [3.0, 4.0, 0.0], [7.0, 6.0, 8.0]]]])
    >>> max_pool2d(x, 2), max_pool2d(x, 2, ceil_mode=True)
    (tensor([[[[5.]]]]), tensor([[[[5., 2.],
              [7., 8.]]]]))
    """
    check_float("input", input)
    x, batched = _batched(input, 2)
    geometry = _pool_geometry(x, kernel_size, stride, padding, dilation, ceil_mode)
    k, s, p, d, (H_out, W_out), (eh, ew) = geometry
    N, C, H, W = x.shape
    xp = F.pad(x, (p[1], p[1] + ew, p[0], p[0] + eh), value=-math.inf)  # -inf never wins
    cols = F.unfold(xp, k, dilation=d, stride=s)  # (N, C kH kW, L)
    # one window per row, contiguous: a reduction over the last dimension is the fast one
    win = cols.view(N, C, k[0] * k[1], H_out * W_out).transpose(2, 3).contiguous()  # (N, C, L, kk)
    arg = win.argmax(dim=3, keepdim=True)  # (N, C, L, 1): the first maximum (a nan, like torch)
    # y = x at the arg-max; gather's gradient goes there and nowhere else
    y = win.gather(3, arg).view(N, C, H_out, W_out)
    y = y if batched else y.squeeze(0)
    if not return_indices:
        return y
    # the arg-max's position in the input: row s_h i + d_h u - p_h, column s_w j + d_w v - p_w
    a = arg.view(N, C, H_out, W_out)
    u, v = a // k[1], a % k[1]  # row and column of the arg-max inside its window
    rows = torch.arange(H_out, device=a.device).view(-1, 1) * s[0] + u * d[0] - p[0]
    columns = torch.arange(W_out, device=a.device) * s[1] + v * d[1] - p[1]
    idx = rows * W + columns  # (N, C, H_out, W_out)
    return y, (idx if batched else idx.squeeze(0))


def avg_pool2d(
    input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
    divisor_override=None,
) -> Tensor:  # fmt: skip
    r"""2-d average pooling: the mean of each window.

    .. math::

        y[n, c, i, j] = \frac{1}{|\mathcal{W}_{ij}|}
            \sum_{(h, w) \in \mathcal{W}_{ij}} x[n, c, h, w]

    :math:`|\mathcal{W}_{ij}|` counts the window's cells in the padded input if
    ``count_include_pad`` (the padding's zeros pull the mean to 0 at the border), in the input
    if not; ``ceil_mode``'s cells never count. Each input gets :math:`1/|\mathcal{W}_{ij}|` of
    the gradient of every window that holds it.

    Parameters
    ----------
    input : Tensor
        (N, C, H, W), or (C, H, W) unbatched; the output likewise.
    kernel_size, stride, padding, ceil_mode : int, tuple or bool
        As in :func:`max_pool2d`; the padding holds zeros.
    count_include_pad : bool, optional
    divisor_override : int, optional
        Divide every window's sum by this instead.

    Examples
    --------
    >>> import torch
    >>> from dlref.conv import avg_pool2d
    >>> x = torch.ones(1, 1, 2, 2)
    >>> avg_pool2d(x, 2, stride=1, padding=1)  # the padding's zeros count: 1/4, 2/4, ...
    tensor([[[[0.2500, 0.5000, 0.2500],
              [0.5000, 1.0000, 0.5000],
              [0.2500, 0.5000, 0.2500]]]])
    >>> avg_pool2d(x, 2, stride=1, padding=1, count_include_pad=False)
    tensor([[[[1., 1., 1.],
              [1., 1., 1.],
              [1., 1., 1.]]]])
    """
    check_float("input", input)
    x, batched = _batched(input, 2)
    check_bool("count_include_pad", count_include_pad)
    if divisor_override is not None:
        check_int("divisor_override", divisor_override, 1)
    geometry = _pool_geometry(x, kernel_size, stride, padding, 1, ceil_mode)
    k, s, p, _, (H_out, W_out), (eh, ew) = geometry
    N, C, H, W = x.shape
    xp = F.pad(x, (p[1], p[1] + ew, p[0], p[0] + eh))  # zeros add nothing to a sum
    sums = F.unfold(xp, k, stride=s).view(N, C, k[0] * k[1], H_out * W_out).sum(2)  # (N, C, L)
    if divisor_override is not None:
        count = torch.tensor(float(divisor_override), dtype=x.dtype)
    else:
        # |W_ij|: a 1 on every cell that counts (the padded input, or the input), 0 elsewhere
        inner = (0, 0) if count_include_pad else p
        ones = x.new_ones(1, 1, H + 2 * p[0] - 2 * inner[0], W + 2 * p[1] - 2 * inner[1])
        mask = F.pad(ones, (inner[1], inner[1] + ew, inner[0], inner[0] + eh))
        count = F.unfold(mask, k, stride=s).sum(1)  # (1, L)
    y = (sums / count).view(N, C, H_out, W_out)  # mean over the window
    return y if batched else y.squeeze(0)


# -------- Modules: torch's names, arguments, defaults and parameter names


class Conv2d(nn.Module):
    r"""A 2-d convolution layer, a drop-in replacement for :class:`torch.nn.Conv2d`.

    .. math::

        y = \mathrm{conv2d}(x, W) + b,\qquad
        W, b \sim \mathcal{U}(-B, B),\quad B = 1 / \sqrt{C_g k_h k_w}

    torch's parameters (``weight`` (C_out, C_in / groups, kH, kW), ``bias`` (C_out,)),
    initialisation and state dict; a ``padding_mode`` other than ``'zeros'`` pads first.

    Parameters
    ----------
    in_channels, out_channels, kernel_size, stride, padding, dilation, groups : int or tuple
        As in :class:`torch.nn.Conv2d` and :func:`conv2d`; so are ``bias``, ``device``, ``dtype``.
    padding_mode : {'zeros', 'reflect', 'replicate', 'circular'}, default 'zeros'

    Examples
    --------
    >>> import torch
    >>> from dlref.conv import Conv2d
    >>> ours, theirs = Conv2d(3, 8, 3, padding=1), torch.nn.Conv2d(3, 8, 3, padding=1)
    >>> ours.load_state_dict(theirs.state_dict())
    <All keys matched successfully>
    >>> x = torch.randn(2, 3, 5, 5)
    >>> ours(x).shape, torch.allclose(ours(x), theirs(x), atol=1e-6)
    (torch.Size([2, 8, 5, 5]), True)
    """

    def __init__(
        self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
        bias=True, padding_mode="zeros", device=None, dtype=None,
    ):  # fmt: skip
        super().__init__()
        check_int("in_channels", in_channels, 1)
        check_int("out_channels", out_channels, 1)
        check_divides("groups", groups, {"in_channels": in_channels, "out_channels": out_channels})
        check_factory(device, dtype)
        if padding_mode not in _PADDING_MODES:
            raise ValueError(f"padding_mode must be one of {_PADDING_MODES}, got {padding_mode!r}")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = _tuple("kernel_size", kernel_size, 2, 1)
        self.stride = _tuple("stride", stride, 2, 1)
        self.dilation = _tuple("dilation", dilation, 2, 1)
        self.padding = padding if isinstance(padding, str) else _tuple("padding", padding, 2, 0)
        self._pads = _conv_padding(padding, self.kernel_size, self.stride, self.dilation)
        self.padding_mode, factory = padding_mode, {"device": device, "dtype": dtype}
        shape = (out_channels, in_channels // groups, *self.kernel_size)
        self.weight = nn.Parameter(torch.empty(shape, **factory))
        self.bias = nn.Parameter(torch.empty(out_channels, **factory)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """torch's initialisation: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias."""
        # kaiming_uniform_ with a = sqrt(5) gives bound sqrt(6 / ((1 + 5) fan_in)) = 1/sqrt(fan_in)
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(self.weight[0].numel())  # fan_in = C_in / groups kH kW
            nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, input: Tensor) -> Tensor:
        """The convolution of ``input`` (N, C_in, H, W) or (C_in, H, W)."""
        padding = self.padding
        if self.padding_mode != "zeros":  # pad by reflection etc. first, then no zeros
            check_float("input", input)
            _batched(input, 2)  # checks the shape before F.pad
            (pt, pb), (pl, pr) = self._pads
            input, padding = F.pad(input, (pl, pr, pt, pb), mode=self.padding_mode), 0
        w, b = self.weight, self.bias
        return conv2d(input, w, b, self.stride, padding, self.dilation, self.groups)


class MaxPool2d(nn.Module):
    r"""2-d max pooling, a drop-in replacement for :class:`torch.nn.MaxPool2d`.

    .. math:: y[n, c, i, j] = \max_{u, v}\; x[n, c,\; s_h i + d_h u - p_h,\; s_w j + d_w v - p_w]

    Parameters
    ----------
    kernel_size, stride, padding, dilation, return_indices, ceil_mode : int, tuple or bool
        As in :func:`max_pool2d` (the same order as torch's class).

    Examples
    --------
    >>> import torch
    >>> from dlref.conv import MaxPool2d
    >>> MaxPool2d(2)(torch.arange(16.0).view(1, 1, 4, 4))
    tensor([[[[ 5.,  7.],
              [13., 15.]]]])
    """

    def __init__(
        self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False, ceil_mode=False
    ):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride or kernel_size, padding
        self.dilation, self.return_indices, self.ceil_mode = dilation, return_indices, ceil_mode

    def forward(self, input: Tensor):
        """The pooled ``input``, and the arg-max indices if ``return_indices``."""
        k, s, p, d = self.kernel_size, self.stride, self.padding, self.dilation
        return max_pool2d(input, k, s, p, d, self.ceil_mode, self.return_indices)
