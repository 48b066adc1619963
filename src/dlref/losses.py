r"""Softmax, log-softmax and the cross-entropy family of losses.

Every function here has the name, arguments and defaults of its counterpart in
:mod:`torch.nn.functional` and equals it in float64, values and gradients. The deprecated
``size_average`` and ``reduce`` arguments are left out, so the arguments after ``weight`` are
keyword-only: a call that passed them by position to torch would fail here instead of silently
meaning something else.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from dlref._checks import (
    check_broadcast,
    check_choice,
    check_dim,
    check_factory,
    check_float,
    check_in_range,
    check_int,
    check_shape,
    check_tensor,
)

__all__ = [
    "softmax",
    "log_softmax",
    "nll_loss",
    "cross_entropy",
    "binary_cross_entropy_with_logits",
]

# ---------------------------------------------------------------------------------------------
# Helpers: the class dimension, the checks of weights and targets, and the three reductions.
# ---------------------------------------------------------------------------------------------


def _class_dim(input: Tensor) -> int:
    """Classes sit on dim 1 of a batch (N, C, d1, ...) and on dim 0 of one sample (C,)."""
    if input.dim() == 0:
        raise ValueError("input must have a class dimension: shape (C,), (N, C) or (N, C, d1, ...)")
    cdim = 0 if input.dim() == 1 else 1
    if input.shape[cdim] == 0:
        raise ValueError(
            f"input has shape {tuple(input.shape)}: C = 0 classes on dim {cdim}, "
            "a loss needs at least one class"
        )
    return cdim


def _check_weight(weight: Tensor | None, C: int) -> None:
    """None, or one floating-point weight per class: shape (C,)."""
    if weight is not None:
        check_float("weight", weight)
        check_shape("weight", weight, (C,), "(C,)")


def _check_elementwise(input: Tensor, **weights: Tensor | None) -> None:
    """Each weight None, or a floating-point tensor that broadcasts with ``input``."""
    for name, weight in weights.items():
        if weight is not None:
            check_float(name, weight)
            check_broadcast(**{name: weight.shape, "input": input.shape})


def _check_target(
    input: Tensor, target: Tensor, ignore_index: int, probabilities: bool = False
) -> None:
    """Integer class indices, one per position, each in [0, C) or ``ignore_index`` (an int);
    or, where ``probabilities`` are allowed, a floating-point target of the input's shape."""
    check_int("ignore_index", ignore_index, minimum=-math.inf)
    check_tensor("target", target)
    if probabilities and target.is_floating_point():
        if target.shape != input.shape:
            raise TypeError(
                f"target is floating-point with shape {tuple(target.shape)}: class probabilities "
                f"must have the input's shape {tuple(input.shape)}, and class indices must be an "
                f"integer tensor (torch.long), not {target.dtype}"
            )
        return
    if target.is_floating_point() or target.is_complex() or target.dtype == torch.bool:
        raise TypeError(f"class-index target must be an integer tensor, got dtype {target.dtype}")
    cdim = _class_dim(input)
    C = input.shape[cdim]
    expected = input.shape[:cdim] + input.shape[cdim + 1 :]
    if target.shape != expected:
        raise ValueError(
            f"input has shape {tuple(input.shape)} (classes on dim {cdim}), so class-index target "
            f"must have shape {tuple(expected)}, got {tuple(target.shape)}"
        )
    bad = (target != ignore_index) & ((target < 0) | (target >= C))
    if target.device.type != "cpu":  # checked on the device, as torch's kernels do: no host sync
        message = f"target holds class indices outside [0, {C}) other than ignore_index"
        torch._assert_async(~bad.any(), message)  # raises at the device's next sync
        return
    if bad.any():
        value = target[bad].flatten()[0].item()
        raise ValueError(
            f"target holds class index {value} but input of shape {tuple(input.shape)} has "
            f"C={C} classes: indices must lie in [0, {C}) or equal ignore_index={ignore_index}"
        )


_REDUCTIONS = ("none", "mean", "sum")


def _reduce(loss: Tensor, reduction: str, total_weight: Tensor | None = None) -> Tensor:
    """'none': per element; 'sum': sum; 'mean': sum / total_weight (plain mean when None)."""
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    # sum / count rather than loss.mean(): the same value, and its backward is a broadcast view
    # of one number, where mean()'s backward writes a full tensor of grad / count
    return loss.sum() / (loss.numel() if total_weight is None else total_weight)


def _nll_terms(
    logp: Tensor,
    target: Tensor,
    weight: Tensor | None,
    ignore_index: int,
    lse: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Per-element ``-w[y_n] * logp[n, y_n]`` and the weights ``w[y_n]`` (0 where ignored).

    Given ``lse``, ``logp`` holds the shifted logits z and log p = z - lse is formed at the
    targets only: N subtractions instead of N x C (see :func:`_shifted_logits`).
    """
    cdim = _class_dim(logp)
    keep = target != ignore_index
    y = target.long().where(keep, 0)  # ignored positions read class 0, then get weight 0
    picked = logp.gather(cdim, y.unsqueeze(cdim))  # logp[n, y_n]
    if lse is not None:
        picked = picked - lse  # z[n, y_n] - lse_n
    picked = picked.squeeze(cdim)
    # select, not multiply by the mask: an ignored row may hold -inf or nan, and 0 * (-inf) is nan
    picked = torch.where(keep, picked, 0)
    w = weight[y] if weight is not None else torch.ones_like(picked)
    w_n = torch.where(keep, w, 0)  # w[y_n], 0 where ignored
    return -w_n * picked, w_n


def _minus_max(input: Tensor, dim: int) -> Tensor:
    """x_i - m with m = max_j x_j along ``dim``, a constant shift (no gradient through m).

    An empty input has no maximum; it passes through as a copy, so that the softmaxes of an
    empty tensor are empty, as in torch.
    """
    if input.numel() == 0:
        return input.clone()
    return input - input.detach().amax(dim=dim, keepdim=True)


def _shifted_logits(input: Tensor, dim: int) -> tuple[Tensor, Tensor]:
    """The log-sum-exp trick: z = x - m and lse = log sum_j e^{z_j}, so that log p = z - lse."""
    z = _minus_max(input, dim)  # x_i - m
    return z, z.exp().sum(dim=dim, keepdim=True).log()  # z, log sum_j e^{x_j - m}


def _class_shaped(weight: Tensor, ndim: int, cdim: int) -> Tensor:
    """View a (C,) weight so it broadcasts along the class dimension of an ndim tensor."""
    shape = [1] * ndim
    shape[cdim] = -1
    return weight.view(shape)


# ---------------------------------------------------------------------------------------------
# Softmax
# ---------------------------------------------------------------------------------------------


def softmax(input: Tensor, dim: int, dtype: torch.dtype | None = None) -> Tensor:
    r"""Softmax along ``dim``, computed without overflow.

    .. math::

        \mathrm{softmax}(x)_i = \frac{e^{x_i - m}}{\sum_j e^{x_j - m}},\qquad m = \max_j x_j

    Subtracting :math:`m` changes nothing mathematically (numerator and denominator are both
    multiplied by :math:`e^{-m}`) but keeps every exponent :math:`\le 0`, so nothing overflows.

    Parameters
    ----------
    input : Tensor
        Logits of any shape.
    dim : int
        Dimension along which the outputs sum to 1. Required, as in :func:`torch.softmax`
        (the implicit choice of ``torch.nn.functional.softmax(x)`` is deprecated).
    dtype : torch.dtype, optional
        If given, ``input`` is cast to it first.

    Returns
    -------
    Tensor
        Same shape as ``input``; entries in [0, 1] summing to 1 along ``dim``.

    Examples
    --------
    >>> import torch
    >>> from dlref.losses import softmax
    >>> softmax(torch.tensor([1.0, 2.0, 3.0]), dim=0)
    tensor([0.0900, 0.2447, 0.6652])
    >>> softmax(torch.tensor([1e4, 0.0, -1e4]), dim=0)
    tensor([1., 0., 0.])
    """
    check_float("input", input)
    check_dim("dim", dim, input.shape)
    check_factory(device=None, dtype=dtype)
    input = input if dtype is None else input.to(dtype)
    e = _minus_max(input, dim).exp()  # e^{x_i - m} <= 1
    return e / e.sum(dim=dim, keepdim=True)


def log_softmax(
    input: Tensor,
    dim: int,
    dtype: torch.dtype | None = None,
) -> Tensor:
    r"""Log of the softmax along ``dim``, without overflow (log-sum-exp trick).

    .. math::

        \log \mathrm{softmax}(x)_i = x_i - m - \log \sum_j e^{x_j - m},
        \qquad m = \max_j x_j

    Parameters
    ----------
    input, dim, dtype
        As in :func:`softmax`; ``dim`` is required, as in
        :func:`torch.log_softmax`.

    Returns
    -------
    Tensor
        Same shape as ``input``; ``exp`` of it sums to 1 along ``dim``.

    Examples
    --------
    >>> import torch
    >>> from dlref.losses import log_softmax
    >>> log_softmax(torch.tensor([1000.0, 1000.0]), dim=0)
    tensor([-0.6931, -0.6931])
    >>> e = torch.tensor([1000.0, 1000.0]).exp()  # naive: inf / inf
    >>> (e / e.sum()).log()
    tensor([nan, nan])
    """
    check_float("input", input)
    check_dim("dim", dim, input.shape)
    check_factory(device=None, dtype=dtype)
    input = input if dtype is None else input.to(dtype)
    z, lse = _shifted_logits(input, dim)  # x_i - m, log sum_j e^{x_j - m}
    return z - lse


# ---------------------------------------------------------------------------------------------
# Losses
# ---------------------------------------------------------------------------------------------


# fmt: off
def nll_loss(input: Tensor, target: Tensor, weight: Tensor | None = None, *,
             ignore_index: int = -100, reduction: str = "mean") -> Tensor:
    # fmt: on
    r"""Negative log-likelihood of class indices, given log-probabilities.

    .. math::

        \ell_n = -w_{y_n}\, x_{n, y_n},\qquad
        \text{mean} = \frac{\sum_n \ell_n}{\sum_{n:\,y_n \ne \text{ignore}} w_{y_n}}

    Positions whose target equals ``ignore_index`` contribute 0 to the sum and to the weight
    total, whatever their input holds (``-inf`` and ``nan`` included: they are selected out, not
    multiplied by 0). Note that the ``'mean'`` of a weighted loss divides by the total weight,
    not by N.

    Parameters
    ----------
    input : Tensor
        Log-probabilities, shape (C,), (N, C) or (N, C, d1, ...).
    target : Tensor
        Integer class indices, shape (), (N,) or (N, d1, ...), each in [0, C) or ``ignore_index``.
        An index out of range raises ``ValueError`` on the CPU; on an accelerator it is checked
        on the device without waiting for it, and fails there, as torch's kernels do.
    weight : Tensor, optional
        Per-class weights, shape (C,).
    ignore_index : int, default -100
        Target value that is skipped.
    reduction : {'mean', 'sum', 'none'}, default 'mean'

    Examples
    --------
    >>> import torch
    >>> from dlref.losses import nll_loss
    >>> logp = torch.tensor([[0.5, 0.25, 0.25], [0.1, 0.8, 0.1]]).log()
    >>> nll_loss(logp, torch.tensor([0, 1]))  # (-log 0.5 - log 0.8) / 2
    tensor(0.4581)
    """
    check_float("input", input)
    check_choice("reduction", reduction, _REDUCTIONS)
    _check_weight(weight, input.shape[_class_dim(input)])
    _check_target(input, target, ignore_index)
    loss, w_n = _nll_terms(input, target, weight, ignore_index)
    return _reduce(loss, reduction, w_n.sum())


def cross_entropy(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    *,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Tensor:
    r"""Cross-entropy of softmax(``input``) and class indices or probabilities.

    With class indices :math:`y_n` and label smoothing :math:`\varepsilon`
    over C classes:

    .. math::

        \ell_n = (1-\varepsilon)\bigl(-w_{y_n} \log p_{n,y_n}\bigr)
               + \frac{\varepsilon}{C}\Bigl(-\sum_c w_c \log p_{n,c}\Bigr),
        \qquad p_n = \mathrm{softmax}(x_n)

    and ``'mean'`` divides :math:`\sum_n \ell_n` by :math:`\sum_n w_{y_n}` over
    non-ignored positions. With class probabilities :math:`q_n` (``target``
    shaped like ``input``):

    .. math::

        \ell_n = -\sum_c w_c\, \tilde q_{n,c} \log p_{n,c},\qquad
        \tilde q = (1-\varepsilon)\, q + \varepsilon / C

    and ``'mean'`` divides by the number of positions (N × d1 × ...), whatever
    the weights.

    Parameters
    ----------
    input : Tensor
        Logits (unnormalised), shape (C,), (N, C) or (N, C, d1, ...).
    target : Tensor
        Either integer class indices of shape (), (N,) or (N, d1, ...), or
        floating class probabilities with the shape of ``input``. An index out
        of range raises ``ValueError`` on the CPU; on an accelerator it is
        checked on the device, as torch's kernels do.
    weight : Tensor, optional
        Per-class weights, shape (C,).
    ignore_index : int, default -100
        Class-index target value that is skipped (not used with
        probabilities); the logits of a skipped position may hold ``-inf`` or
        ``nan``, as in torch.
    reduction : {'mean', 'sum', 'none'}, default 'mean'
    label_smoothing : float, default 0.0
        :math:`\varepsilon \in [0, 1]`: mixes the target with the uniform
        distribution.

    Examples
    --------
    >>> import torch
    >>> from dlref.losses import cross_entropy
    >>> logits = torch.tensor([[2.0, 0.5, -1.0], [0.0, 3.0, 0.0]])
    >>> cross_entropy(logits, torch.tensor([0, 1]))
    tensor(0.1681)
    >>> cross_entropy(torch.tensor([[1e4, -1e4]]), torch.tensor([1]))  # 2e4
    tensor(20000.)
    """
    check_float("input", input)
    check_choice("reduction", reduction, _REDUCTIONS)
    check_in_range("label_smoothing", label_smoothing, 0, 1, closed=True)
    _check_weight(weight, input.shape[_class_dim(input)])
    _check_target(input, target, ignore_index, probabilities=True)
    cdim = _class_dim(input)
    C = input.shape[cdim]
    # log p_{n,c} = z_{n,c} - lse_n, as in log_softmax
    z, lse = _shifted_logits(input, cdim)
    w = _class_shaped(weight, input.dim(), cdim) if weight is not None else 1.0

    if target.is_floating_point():  # class probabilities
        q = target * (1 - label_smoothing) + label_smoothing / C  # smoothed q
        return _reduce(-(w * q * (z - lse)).sum(cdim), reduction)

    # only log p_{n,y_n} is needed: z - lse at the targets, not all N x C
    loss, w_n = _nll_terms(z, target, weight, ignore_index, lse)
    if label_smoothing > 0:
        logp = z - lse  # log p_{n,c}
        keep = (target != ignore_index).unsqueeze(cdim)
        # selected, not multiplied, as in _nll_terms: a row may be -inf
        kept_logp = torch.where(keep, logp, 0)
        # -sum_c w_c log p_{n,c}, 0 where ignored
        smooth = -(w * kept_logp).sum(cdim)
        loss = (1 - label_smoothing) * loss + label_smoothing / C * smooth
    return _reduce(loss, reduction, w_n.sum())


def binary_cross_entropy_with_logits(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    *,
    reduction: str = "mean",
    pos_weight: Tensor | None = None,
) -> Tensor:
    r"""Binary cross-entropy of ``sigmoid(input)`` against ``target``, computed from the logits.

    .. math::

        \ell = -w\,\bigl[\,p_w\, y \log \sigma(x) + (1-y) \log(1-\sigma(x))\,\bigr]
             = w\,\bigl[(1-y)\,x - \bigl(1 + (p_w - 1)\,y\bigr)\,\log \sigma(x)\bigr]

    The right-hand form uses :math:`\log(1-\sigma(x)) = \log \sigma(x) - x`, so only
    :math:`\log\sigma(x) = -\log(1+e^{-x})` is needed; it is computed by
    :func:`torch.nn.functional.logsigmoid`, finite for any finite :math:`x` (the naive
    ``sigmoid(x).log()`` gives ``-inf`` for large negative :math:`x`). One fused
    function there instead of a composition saves a full pass forward and backward.

    Parameters
    ----------
    input : Tensor
        Logits, any shape.
    target : Tensor
        Floating targets in [0, 1], same shape as ``input``.
    weight : Tensor, optional
        Per-element weight :math:`w`, broadcast to ``input``.
    reduction : {'mean', 'sum', 'none'}, default 'mean'
    pos_weight : Tensor, optional
        Weight :math:`p_w` of the positive term, broadcast along the last dimension (one per
        class in multi-label problems).

    Examples
    --------
    >>> import torch
    >>> from dlref.losses import binary_cross_entropy_with_logits
    >>> binary_cross_entropy_with_logits(torch.tensor([0.0, 2.0]), torch.tensor([1.0, 0.0]))
    tensor(1.4100)
    >>> binary_cross_entropy_with_logits(torch.tensor([-1e4]), torch.tensor([1.0]))
    tensor(10000.)
    """
    check_float("input", input)
    check_float("target", target)
    check_choice("reduction", reduction, _REDUCTIONS)
    check_shape("target", target, tuple(input.shape), "input.shape")
    _check_elementwise(input, weight=weight, pos_weight=pos_weight)
    log_sigmoid = torch.nn.functional.logsigmoid(input)  # log sigma(x) = -log(1 + e^{-x})
    if pos_weight is not None:
        log_sigmoid = (1 + (pos_weight - 1) * target) * log_sigmoid  # (1 + (p_w - 1) y) log sigma
    loss = (1 - target) * input - log_sigmoid
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)
