r"""Batch, layer, RMS and group normalisation, as functions and as modules.

Each subtracts a mean, divides by a standard deviation taken over some axes of the input, then
applies a learned scale :math:`\gamma` and shift :math:`\beta`; they differ only in the axes.
The functions have the names, arguments and defaults of :mod:`torch.nn.functional`; the modules
have torch's parameter and buffer names, so state dicts load either way.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from dlref._checks import (
    as_shape,
    check_divides,
    check_factory,
    check_float,
    check_in_range,
    check_int,
    check_nonnegative,
    check_param,
    check_real,
    check_shape,
)

__all__ = ["batch_norm", "layer_norm", "rms_norm", "group_norm"]
__all__ += ["BatchNorm1d", "BatchNorm2d", "LayerNorm", "RMSNorm", "GroupNorm"]


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


def _affine(y: Tensor, weight, bias, per_channel: bool = False) -> Tensor:
    """gamma y + beta, either optional; ``per_channel``: (C,) parameters on (N, C, *)."""
    if weight is not None:
        y = y * (_per_channel(weight, y.dim()) if per_channel else weight)  # gamma y
    if bias is not None:
        y = y + (_per_channel(bias, y.dim()) if per_channel else bias)  # + beta
    return y


def _param(on: bool, fill, shape, device, dtype) -> nn.Parameter | None:
    return nn.Parameter(fill(shape, device=device, dtype=dtype)) if on else None  # ones/zeros


def _per_channel(t: Tensor, ndim: int) -> Tensor:
    return t.view([1, -1] + [1] * (ndim - 2))  # (C,) -> (1, C, 1, ...), broadcasts on (N, C, *)


# ---------------------------------------------------------------------------------------------
# Functions
# ---------------------------------------------------------------------------------------------


def batch_norm(
    input: Tensor,
    running_mean: Tensor | None,
    running_var: Tensor | None,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    r"""Batch normalisation: per channel, over the batch and every position.

    .. math::

        \mu_c = \frac{1}{n}\sum_{b, s} x_{bcs},\quad
        \sigma_c^2 = \frac{1}{n}\sum_{b, s} (x_{bcs} - \mu_c)^2,\quad
        y_{bcs} = \gamma_c\,\frac{x_{bcs} - \mu_c}{\sqrt{\sigma_c^2 + \epsilon}} + \beta_c

    In training mode :math:`\mu, \sigma^2` are the batch's (biased variance) and the running
    estimates, if given, are updated in place with the **unbiased** variance:

    .. math::

        \hat\mu \leftarrow (1 - m)\,\hat\mu + m\,\mu,\qquad
        \hat\sigma^2 \leftarrow (1 - m)\,\hat\sigma^2 + m\,\frac{n}{n - 1}\,\sigma^2

    In evaluation mode the running estimates are used instead, so the output of one sample does
    not depend on the rest of the batch.

    Parameters
    ----------
    input : Tensor
        Shape (N, C) or (N, C, \*); the output has the same shape.
    running_mean, running_var : Tensor or None
        Shape (C,). Updated in place in training mode; required in evaluation mode.
    weight, bias : Tensor, optional
        :math:`\gamma, \beta`, shape (C,).
    training : bool, optional
        Normalise with the batch's statistics (and update the running ones). Default False.
    momentum : float, default 0.1
        :math:`m` in the running update (torch's convention: the weight of the new batch).
    eps : float, default 1e-5
        Added to the variance inside the square root.

    Examples
    --------
    >>> import torch
    >>> from dlref.normalization import batch_norm
    >>> x = torch.tensor([[1.0, 10.0], [3.0, 30.0]])
    >>> rm, rv = torch.zeros(2), torch.ones(2)
    >>> batch_norm(x, rm, rv, training=True)
    tensor([[-1.0000, -1.0000],
            [ 1.0000,  1.0000]])
    >>> rm, rv  # 0.9 * 0 + 0.1 * mean;  0.9 * 1 + 0.1 * unbiased variance
    (tensor([0.2000, 2.0000]), tensor([ 1.1000, 20.9000]))
    """
    check_float("input", input)
    check_shape("input", input, (..., None, None), "(N, C, *)")
    check_param("running_mean", running_mean, input.shape[1:2], input)
    check_param("running_var", running_var, input.shape[1:2], input)
    check_param("weight", weight, input.shape[1:2], input)
    check_param("bias", bias, input.shape[1:2], input)
    check_real("momentum", momentum)
    check_in_range("eps", eps, 0, math.inf, closed=not training)  # torch: no 0 / 0 in training
    if not training and (running_mean is None or running_var is None):
        raise ValueError("running_mean and running_var are required when training=False")
    dims = [0] + list(range(2, input.dim()))  # every axis but the channel's
    n = input.shape[0] * math.prod(input.shape[2:])  # values per channel
    if training and n <= 1:
        raise ValueError(
            "Expected more than 1 value per channel when training, got input of shape "
            f"{tuple(input.shape)}"
        )  # torch's message
    if training:
        mu = input.mean(dims)  # mu_c, (C,)
        var = (input - _per_channel(mu, input.dim())).square().mean(dims)  # sigma_c^2, (C,)
        with torch.no_grad():
            if running_mean is not None:
                # mu_hat <- (1 - m) mu_hat + m mu
                running_mean.mul_(1 - momentum).add_(mu, alpha=momentum)
            if running_var is not None:
                # sigma_hat^2 <- (1 - m) sigma_hat^2 + m n / (n - 1) sigma^2
                running_var.mul_(1 - momentum).add_(var * (n / (n - 1)), alpha=momentum)
    else:
        mu, var = running_mean, running_var
    # (x - mu) / sqrt(sigma^2 + eps), (N, C, *)
    y = (input - _per_channel(mu, input.dim())) * _per_channel(var + eps, input.dim()).rsqrt()
    return _affine(y, weight, bias, per_channel=True)  # gamma_c y + beta_c


def layer_norm(
    input: Tensor,
    normalized_shape: int | tuple[int, ...],
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    eps: float = 1e-5,
) -> Tensor:
    r"""Layer normalisation: per sample, over the last ``normalized_shape``.

    .. math::

        \mu = \frac{1}{D}\sum_i x_i,\quad
        \sigma^2 = \frac{1}{D}\sum_i (x_i - \mu)^2,\quad
        y_i = \gamma_i\,\frac{x_i - \mu}{\sqrt{\sigma^2 + \epsilon}} + \beta_i

    Parameters
    ----------
    input : Tensor
        Shape (\*, \*normalized_shape); the output has the same shape.
    normalized_shape : int or tuple of int
        The trailing shape normalised over (D is its product).
    weight, bias : Tensor, optional
        :math:`\gamma, \beta`, shape ``normalized_shape``.
    eps : float, default 1e-5
        Added to :math:`\sigma^2`: the division stays finite on a constant
        sample.

    Examples
    --------
    >>> import torch
    >>> from dlref.normalization import layer_norm
    >>> layer_norm(torch.tensor([[1.0, 2.0, 3.0], [10.0, 20.0, 30.0]]), 3)
    tensor([[-1.2247,  0.0000,  1.2247],
            [-1.2247,  0.0000,  1.2247]])
    """
    check_float("input", input)
    shape = as_shape("normalized_shape", normalized_shape)
    check_int("len(normalized_shape)", len(shape))  # () as torch: refused
    check_shape("input", input, (..., *shape), "(*, *normalized_shape)")
    check_param("weight", weight, shape, input)
    check_param("bias", bias, shape, input)
    check_nonnegative("eps", eps)
    dims = tuple(range(-len(shape), 0))  # the normalised axes
    mu = input.mean(dims, keepdim=True)  # mu, (*, 1, ..., 1)
    var = (input - mu).square().mean(dims, keepdim=True)  # sigma^2 (biased)
    y = (input - mu) * (var + eps).rsqrt()  # (x - mu) / sqrt(sigma^2 + eps)
    return _affine(y, weight, bias)  # gamma_i y_i + beta_i


def rms_norm(
    input: Tensor,
    normalized_shape: int | tuple[int, ...],
    weight: Tensor | None = None,
    eps: float | None = None,
) -> Tensor:
    r"""Root-mean-square normalisation: layer norm without the mean and without a bias.

    .. math:: y_i = \gamma_i\,\frac{x_i}{\sqrt{\frac{1}{D}\sum_j x_j^2 + \epsilon}}

    It equals :func:`layer_norm` (without bias) exactly when every sample has mean 0.

    Parameters
    ----------
    input, normalized_shape
        As in :func:`layer_norm`.
    weight : Tensor, optional
        :math:`\gamma`, shape ``normalized_shape``.
    eps : float, optional
        Added inside the square root; ``None`` means ``torch.finfo(input.dtype).eps``, as in torch.

    Examples
    --------
    >>> import torch
    >>> from dlref.normalization import rms_norm
    >>> rms_norm(torch.tensor([[3.0, 4.0], [-1.0, 1.0]]), 2)  # RMS of (3, 4) is sqrt(12.5)
    tensor([[ 0.8485,  1.1314],
            [-1.0000,  1.0000]])
    """
    check_float("input", input)
    shape = as_shape("normalized_shape", normalized_shape)
    check_int("len(normalized_shape)", len(shape))  # () as torch: refused
    check_shape("input", input, (..., *shape), "(*, *normalized_shape)")
    check_param("weight", weight, shape, input)
    if eps is None:
        eps = torch.finfo(input.dtype).eps  # torch's default
    check_nonnegative("eps", eps)
    dims = tuple(range(-len(shape), 0))
    ms = input.square().mean(dims, keepdim=True)  # (1/D) sum_j x_j^2, (*, 1, ..., 1)
    y = input * (ms + eps).rsqrt()  # x_i / sqrt(ms + eps)
    return _affine(y, weight, None)  # gamma_i y_i


def group_norm(
    input: Tensor,
    num_groups: int,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    eps: float = 1e-5,
) -> Tensor:
    r"""Group normalisation: per sample, over the channels of each group and every position.

    .. math::

        y_{bcs} = \gamma_c\,\frac{x_{bcs} - \mu_{bg}}{\sqrt{\sigma^2_{bg} + \epsilon}} + \beta_c,
        \qquad c \in \text{group } g

    with :math:`\mu_{bg}, \sigma^2_{bg}` (biased) over the :math:`C/G` channels of group
    :math:`g` and all positions :math:`s` of sample :math:`b`. One group is layer norm over
    (C, \*); C groups is instance norm.

    Parameters
    ----------
    input : Tensor
        Shape (N, C, \*); the output has the same shape.
    num_groups : int
        G, which must divide C.
    weight, bias : Tensor, optional
        :math:`\gamma, \beta`, shape (C,).
    eps : float, default 1e-5
        As in :func:`layer_norm`.

    Examples
    --------
    >>> import torch
    >>> from dlref.normalization import group_norm
    >>> x = torch.tensor([[1.0, 3.0, 10.0, 30.0]])  # (N, C) = (1, 4), two groups of two
    >>> group_norm(x, 2)
    tensor([[-1.0000,  1.0000, -1.0000,  1.0000]])
    """
    check_float("input", input)
    check_shape("input", input, (..., None, None), "(N, C, *)")
    check_divides("num_groups", num_groups, {"number of channels": input.shape[1]})
    check_param("weight", weight, input.shape[1:2], input)
    check_param("bias", bias, input.shape[1:2], input)
    check_nonnegative("eps", eps)
    N, C = input.shape[:2]
    xg = input.reshape(N, num_groups, C // num_groups * math.prod(input.shape[2:]))  # (N, G, C/G S)
    mu = xg.mean(-1, keepdim=True)  # mu_bg, (N, G, 1)
    var = (xg - mu).square().mean(-1, keepdim=True)  # sigma^2_bg (biased)
    y = ((xg - mu) * (var + eps).rsqrt()).reshape(input.shape)  # (N, C, *)
    return _affine(y, weight, bias, per_channel=True)  # gamma_c y + beta_c


# ---------------------------------------------------------------------------------------------
# Modules: torch's parameter and buffer names, so state dicts load either way.
# ---------------------------------------------------------------------------------------------


class _BatchNorm(nn.Module):
    _dims: tuple[int, ...] = ()

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True,
                 track_running_stats=True, device=None, dtype=None, *,
                 bias=True) -> None:  # fmt: skip
        super().__init__()
        check_int("num_features", num_features, minimum=1)
        check_nonnegative("eps", eps)
        if momentum is not None:
            check_real("momentum", momentum)
        check_factory(device, dtype)
        kw = {"device": device, "dtype": dtype}
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats, self._bias = affine, track_running_stats, bias
        self.weight = _param(affine, torch.ones, num_features, device, dtype)
        self.bias = _param(affine and bias, torch.zeros, num_features, device, dtype)
        if track_running_stats:
            self.register_buffer("running_mean", torch.zeros(num_features, **kw))
            self.register_buffer("running_var", torch.ones(num_features, **kw))
            self.register_buffer("num_batches_tracked", torch.tensor(0, device=device))  # int64
        else:  # registered as None, as torch does
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                self.register_buffer(name, None)

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
            f"affine={self.affine}, bias={self._bias}, "
            f"track_running_stats={self.track_running_stats}"
        )

    def forward(self, input: Tensor) -> Tensor:
        """Normalise ``input``; see :func:`batch_norm`."""
        check_float("input", input)
        if input.dim() not in self._dims:
            raise ValueError(
                f"{type(self).__name__} expects input with {' or '.join(map(str, self._dims))} "
                f"dimensions, got shape {tuple(input.shape)}"
            )
        m = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:  # a cumulative average: m = 1 / (number of batches)
                m = 1.0 / float(self.num_batches_tracked)
        # without running estimates, the batch's statistics are used in eval mode too (as torch)
        use_batch = self.training or self.running_mean is None
        stats_and_affine = (self.running_mean, self.running_var, self.weight, self.bias)
        return batch_norm(input, *stats_and_affine, use_batch, m, self.eps)


class BatchNorm1d(_BatchNorm):
    r"""Batch normalisation of (N, C) or (N, C, L) inputs; see :func:`batch_norm`.

    .. math:: y = \gamma\,\frac{x - \mu}{\sqrt{\sigma^2 + \epsilon}} + \beta

    ``train()`` normalises with the batch's statistics and updates ``running_mean`` and
    ``running_var`` (with momentum, or a cumulative average when ``momentum=None``); ``eval()``
    uses them. ``track_running_stats=False`` keeps no estimates and uses the batch's statistics
    in both modes, as torch does.

    Parameters
    ----------
    num_features : int
        C.
    eps : float, default 1e-5
    momentum : float or None, default 0.1
        Weight of the new batch in the running estimates; ``None`` for a cumulative average.
    affine : bool, optional
        Learn ``weight`` (:math:`\gamma`, ones) and ``bias`` (:math:`\beta`, zeros), shape
        (C,). Default True.
    track_running_stats : bool, optional
        Keep the buffers ``running_mean``, ``running_var`` and ``num_batches_tracked``.
        Default True.
    device, dtype : optional
        Of the parameters and buffers.
    bias : bool, optional
        Keyword-only: learn ``bias`` too, when ``affine``. Default True.

    Examples
    --------
    >>> import torch
    >>> from dlref.normalization import BatchNorm1d
    >>> bn = BatchNorm1d(2)
    >>> x = torch.tensor([[1.0, 10.0], [3.0, 30.0]])
    >>> bn(x)  # training mode: the batch's statistics
    tensor([[-1.0000, -1.0000],
            [ 1.0000,  1.0000]], grad_fn=<AddBackward0>)
    >>> bn.eval()(x)  # evaluation: (x - running_mean) / sqrt(running_var + eps)
    tensor([[0.7628, 1.7499],
            [2.6697, 6.1247]], grad_fn=<AddBackward0>)
    >>> sorted(bn.state_dict()) == sorted(torch.nn.BatchNorm1d(2).state_dict())
    True
    """

    _dims = (2, 3)


class BatchNorm2d(_BatchNorm):
    r"""Batch normalisation of (N, C, H, W) inputs, per channel; see :class:`BatchNorm1d`.

    .. math:: y_{nchw} = \gamma_c\,\frac{x_{nchw} - \mu_c}{\sqrt{\sigma_c^2 + \epsilon}} + \beta_c

    Parameters
    ----------
    num_features : int
        C; the other arguments are those of :class:`BatchNorm1d`.

    Examples
    --------
    >>> import torch
    >>> from dlref.normalization import BatchNorm2d
    >>> bn = BatchNorm2d(3)
    >>> y = bn(torch.randn(4, 3, 5, 5, generator=torch.Generator().manual_seed(0)) * 7 + 2)
    >>> y.mean((0, 2, 3)).abs().max() < 1e-6, bn.num_batches_tracked
    (tensor(True), tensor(1))
    """

    _dims = (4,)


class LayerNorm(nn.Module):
    r"""Layer normalisation over the trailing ``normalized_shape``; see :func:`layer_norm`.

    .. math:: y = \gamma\,\frac{x - \mu}{\sqrt{\sigma^2 + \epsilon}} + \beta

    Parameters
    ----------
    normalized_shape : int or tuple of int
    eps : float, default 1e-5
    elementwise_affine : bool, optional
        Learn ``weight`` (ones), shape ``normalized_shape``. Default True.
    bias : bool, optional
        Learn ``bias`` (zeros) too, when ``elementwise_affine``. Default True.
    device, dtype : optional

    Examples
    --------
    >>> import torch
    >>> from dlref.normalization import LayerNorm
    >>> ln = LayerNorm(3)
    >>> ln(torch.tensor([[1.0, 2.0, 3.0]]))
    tensor([[-1.2247,  0.0000,  1.2247]], grad_fn=<AddBackward0>)
    >>> ln.load_state_dict(torch.nn.LayerNorm(3).state_dict())
    <All keys matched successfully>
    """

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True,
                 device=None, dtype=None) -> None:  # fmt: skip
        super().__init__()
        self.normalized_shape = shape = as_shape("normalized_shape", normalized_shape)
        check_nonnegative("eps", eps)
        check_factory(device, dtype)
        self.eps, self.elementwise_affine = eps, elementwise_affine
        self.weight = _param(elementwise_affine, torch.ones, shape, device, dtype)
        self.bias = _param(elementwise_affine and bias, torch.zeros, shape, device, dtype)

    def extra_repr(self) -> str:
        affine = self.elementwise_affine
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={affine}"

    def forward(self, input: Tensor) -> Tensor:
        """Normalise ``input``; see :func:`layer_norm`."""
        return layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)


class RMSNorm(nn.Module):
    r"""RMS normalisation over the trailing ``normalized_shape``; see :func:`rms_norm`.

    .. math:: y = \gamma\,\frac{x}{\sqrt{\mathrm{mean}(x^2) + \epsilon}}

    Parameters
    ----------
    normalized_shape : int or tuple of int
    eps : float, optional
        ``None`` means ``torch.finfo(input.dtype).eps``, as in torch.
    elementwise_affine : bool, optional
        Learn ``weight`` (ones), shape ``normalized_shape``. Default True.
    device, dtype : optional

    Examples
    --------
    >>> import torch
    >>> from dlref.normalization import RMSNorm
    >>> RMSNorm(2)(torch.tensor([[3.0, 4.0]]))
    tensor([[0.8485, 1.1314]], grad_fn=<MulBackward0>)
    """

    def __init__(self, normalized_shape, eps=None, elementwise_affine=True, device=None,
                 dtype=None) -> None:  # fmt: skip
        super().__init__()
        self.normalized_shape = shape = as_shape("normalized_shape", normalized_shape)
        if eps is not None:
            check_nonnegative("eps", eps)
        check_factory(device, dtype)
        self.eps, self.elementwise_affine = eps, elementwise_affine
        self.weight = _param(elementwise_affine, torch.ones, shape, device, dtype)

    extra_repr = LayerNorm.extra_repr  # torch's RMSNorm prints the same

    def forward(self, input: Tensor) -> Tensor:
        """Normalise ``input``; see :func:`rms_norm`."""
        return rms_norm(input, self.normalized_shape, self.weight, self.eps)


class GroupNorm(nn.Module):
    r"""Group normalisation of (N, C, \*) inputs; see :func:`group_norm`.

    .. math:: y = \gamma\,\frac{x - \mu_g}{\sqrt{\sigma_g^2 + \epsilon}} + \beta

    Parameters
    ----------
    num_groups : int
        G, dividing ``num_channels``.
    num_channels : int
        C.
    eps : float, default 1e-5
    affine : bool, optional
        Learn ``weight`` (ones) and ``bias`` (zeros), shape (C,). Default True.
    device, dtype : optional
        Of the parameters.
    bias : bool, optional
        Keyword-only; as in :class:`BatchNorm1d`.

    Examples
    --------
    >>> import torch
    >>> from dlref.normalization import GroupNorm
    >>> GroupNorm(2, 4)(torch.tensor([[1.0, 3.0, 10.0, 30.0]]))
    tensor([[-1.0000,  1.0000, -1.0000,  1.0000]], grad_fn=<AddBackward0>)
    """

    def __init__(self, num_groups, num_channels, eps=1e-5, affine=True, device=None, dtype=None,
                 *, bias=True) -> None:  # fmt: skip
        super().__init__()
        check_int("num_channels", num_channels, minimum=1)
        check_divides("num_groups", num_groups, {"number of channels": num_channels})
        check_nonnegative("eps", eps)
        check_factory(device, dtype)
        self.num_groups, self.num_channels, self.eps = num_groups, num_channels, eps
        self.affine, self._bias = affine, bias
        self.weight = _param(affine, torch.ones, num_channels, device, dtype)
        self.bias = _param(affine and bias, torch.zeros, num_channels, device, dtype)

    def extra_repr(self) -> str:
        return (
            f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, "
            f"bias={self._bias}"
        )

    def forward(self, input: Tensor) -> Tensor:
        """Normalise ``input``; see :func:`group_norm`."""
        return group_norm(input, self.num_groups, self.weight, self.bias, self.eps)
