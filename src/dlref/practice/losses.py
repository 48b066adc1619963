"""Exercises on softmax, log-softmax and cross-entropy (references: :mod:`dlref.losses`)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from dlref import losses
from dlref.practice._cases import bad_input, randn, shape_check, tensor, values_check
from dlref.practice._grader import Check, Mistake, register

PAGE = "topics/cross-entropy.html"
LSE = f"{PAGE}#the-log-sum-exp-trick"

# ------------------------------------------------------------------------------- references


def softmax_reference(x: Tensor, dim: int = -1) -> Tensor:
    """The reference: :func:`dlref.losses.softmax`, shifted by the row maximum.

    Parameters
    ----------
    x : Tensor
        Logits, any shape.
    dim : int, default -1
        The dimension that sums to 1.

    Returns
    -------
    Tensor
        Shaped like ``x``; sums to 1 along ``dim``.

    Examples
    --------
    >>> import torch
    >>> from dlref.practice.losses import softmax_reference
    >>> x = torch.tensor([[1.0, 2.0, 3.0], [1e4, 0.0, -1e4]], dtype=torch.float64)
    >>> torch.allclose(softmax_reference(x), x.softmax(-1))
    True
    >>> softmax_reference(x)
    tensor([[0.0900, 0.2447, 0.6652],
            [1.0000, 0.0000, 0.0000]], dtype=torch.float64)
    """
    return losses.softmax(x, dim)


def log_softmax_reference(x: Tensor, dim: int = -1) -> Tensor:
    """The reference: :func:`dlref.losses.log_softmax`, by the log-sum-exp trick.

    Parameters
    ----------
    x, dim
        As in :func:`softmax_reference`.

    Returns
    -------
    Tensor
        Shaped like ``x``; its exp sums to 1 along ``dim``.

    Examples
    --------
    >>> import torch
    >>> from dlref.practice.losses import log_softmax_reference
    >>> x = torch.tensor([[1.0, 2.0, 3.0], [1e4, 0.0, -1e4]], dtype=torch.float64)
    >>> log_softmax_reference(x)  # finite where log(softmax(x)) is -inf
    tensor([[-2.4076e+00, -1.4076e+00, -4.0761e-01],
            [ 0.0000e+00, -1.0000e+04, -2.0000e+04]], dtype=torch.float64)
    >>> torch.allclose(log_softmax_reference(x), x.log_softmax(-1))
    True
    """
    return losses.log_softmax(x, dim)


def cross_entropy_reference(logits: Tensor, target: Tensor, ignore_index: int = -100) -> Tensor:
    """The reference: :func:`dlref.losses.cross_entropy` (mean over the rows not ignored).

    Parameters
    ----------
    logits : Tensor
        Shape (N, C).
    target : Tensor
        Class indices, int64, shape (N,).
    ignore_index : int, default -100
        Rows with this target are left out of the loss and of the count.

    Returns
    -------
    Tensor
        The mean loss, shape ().

    Examples
    --------
    >>> import torch
    >>> from dlref.practice.losses import cross_entropy_reference
    >>> logits = torch.tensor([[2.0, 0.5, -1.0], [0.0, 3.0, 0.0], [5.0, 0.0, 0.0]],
    ...                       dtype=torch.float64)
    >>> target = torch.tensor([0, 1, -100])  # the last row is ignored
    >>> loss = cross_entropy_reference(logits, target)
    >>> torch.allclose(loss, torch.nn.functional.cross_entropy(logits, target))
    True
    >>> round(loss.item(), 4)
    0.1681
    """
    return losses.cross_entropy(logits, target, ignore_index=ignore_index)


# --------------------------------------------------------------------------- known mistakes


def _softmax_no_shift(x, dim=-1):
    e = x.exp()
    return e / e.sum(dim, keepdim=True)


def _softmax_global_max(x, dim=-1):
    e = (x - x.max()).exp()
    return e / e.sum(dim, keepdim=True)


def _softmax_dim0(x, dim=-1):
    return torch.softmax(x, 0)


def _log_softmax_naive(x, dim=-1):
    return torch.softmax(x, dim).log()


def _log_softmax_no_shift(x, dim=-1):
    return x - x.exp().sum(dim, keepdim=True).log()


def _log_softmax_max_only(x, dim=-1):
    return x - x.amax(dim, keepdim=True)


def _ce_divide_by_n(logits, target, ignore_index=-100):
    keep = target != ignore_index
    logp = torch.log_softmax(logits, -1)
    picked = logp.gather(1, target.clamp_min(0)[:, None]).squeeze(1)
    return -(picked * keep).sum() / target.shape[0]


def _ce_sum(logits, target, ignore_index=-100):
    return torch.nn.functional.cross_entropy(
        logits, target, ignore_index=ignore_index, reduction="sum"
    )


def _ce_naive_log(logits, target, ignore_index=-100):
    keep = target != ignore_index
    logp = torch.softmax(logits, -1).log()
    picked = logp.gather(1, target.clamp_min(0)[:, None]).squeeze(1)
    return -(picked * keep).sum() / keep.sum()


def _ce_no_log(logits, target, ignore_index=-100):
    keep = target != ignore_index
    p = torch.softmax(logits, -1)
    picked = p.gather(1, target.clamp_min(0)[:, None]).squeeze(1)
    return -(picked * keep).sum() / keep.sum()


# ------------------------------------------------------------------------------------ cases


def _x_cases(dim=-1):
    return lambda: [
        {"x": randn(3, 5, seed=1), "dim": dim},
        {"x": randn(2, 4, 7, seed=2, scale=3.0), "dim": dim},
        {"x": randn(2, 3, 4, seed=3), "dim": 1},
    ]


def _x_checks(bad_dim_msg: str) -> tuple[Check, ...]:
    return (
        shape_check(lambda: [{"x": randn(2, 3, seed=0)}]),
        values_check(lambda: [{"x": tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])}]),
        Check("random shapes, batch dimensions and dim", _x_cases()),
        Check(
            "gradient vs the reference",
            lambda: [{"x": randn(3, 5, seed=4)}, {"x": randn(2, 3, 4, seed=5), "dim": 1}],
            kind="grad",
            grad_wrt=("x",),
        ),
        Check(
            "edge: logits of ±1e4 and a length-1 row",
            lambda: [
                {"x": tensor([[1e4, 0.0, -1e4], [-1e4, -1e4, -1e4]])},
                {"x": tensor([[-1e4], [1e4]])},
            ],
        ),
        Check(
            "edge: masked (-inf) logits and a fully masked row (nan, as in torch)",
            lambda: [{"x": tensor([[0.0, -math.inf, 1.0], [-math.inf, -math.inf, -math.inf]])}],
        ),
        Check(
            "edge: rows at very different scales",
            lambda: [{"x": tensor([[1000.0, 999.0], [-1000.0, -1001.0]])}],
        ),
        Check("edge: empty batch", lambda: [{"x": torch.zeros(0, 4, dtype=torch.float64)}]),
        bad_input("dim out of range", bad_dim_msg, lambda: [{"x": randn(2, 3, seed=6), "dim": 2}]),
    )


# ---------------------------------------------------------------------------------- stubs

SOFTMAX_STUB = r'''
import torch
from torch import Tensor


def softmax(x: Tensor, dim: int = -1) -> Tensor:
    r"""Softmax of x along dim.

        softmax(x)_i = exp(x_i - m) / sum_j exp(x_j - m),   m = max_j x_j

    x: (*, C, *), any shape; the result has the shape of x and sums to 1 along dim.
    Must be finite for logits of +-1e4, and raise for a dim out of range.
    """
    raise NotImplementedError
'''

LOG_SOFTMAX_STUB = r'''
import torch
from torch import Tensor


def log_softmax(x: Tensor, dim: int = -1) -> Tensor:
    r"""Log of the softmax of x along dim, without overflow or log(0).

        log softmax(x)_i = x_i - m - log sum_j exp(x_j - m),   m = max_j x_j

    x: any shape; the result has the shape of x. Must equal -2e4 (not -inf) for
    x = [1e4, -1e4] at the second position, and raise for a dim out of range.
    """
    raise NotImplementedError
'''

CROSS_ENTROPY_STUB = r'''
import torch
from torch import Tensor


def cross_entropy(logits: Tensor, target: Tensor, ignore_index: int = -100) -> Tensor:
    r"""Mean cross-entropy of class indices under softmax(logits), skipping ignored rows.

        loss = -(1 / |K|) sum_{n in K} log softmax(logits_n)[target_n],
        K = {n : target_n != ignore_index}

    logits: (N, C) float; target: (N,) int64 class indices in [0, C) or ignore_index.
    Returns a 0-d tensor. If every row is ignored (or N = 0) the mean is 0/0 = nan, as in
    torch.nn.functional.cross_entropy. Raise for a target of the wrong length.
    """
    raise NotImplementedError
'''


def _ce_cases_random():
    g = torch.Generator().manual_seed(7)
    out = []
    for N, C in [(4, 3), (16, 10)]:
        t = torch.randint(0, C, (N,), generator=g)
        t[::3] = -100
        out.append({"logits": randn(N, C, seed=N), "target": t})
    t = torch.randint(0, 5, (6,), generator=g)
    t[1] = 2
    out.append({"logits": randn(6, 5, seed=9), "target": t.clone(), "ignore_index": 2})
    return out


register(
    reference=softmax_reference,
    stub=SOFTMAX_STUB,
    summary="softmax along a dimension, stable for logits of ±1e4",
    checks=_x_checks("dim=2 for a 2-D x"),
    difficulty="easy",
    page=f"{PAGE}#key-equations",
    mistakes=(
        Mistake(
            "no_max_shift",
            _softmax_no_shift,
            "exp(x) overflows to inf for large logits (inf/inf = nan): subtract the row "
            "maximum before exp; softmax is unchanged by a shift.",
            LSE,
        ),
        Mistake(
            "global_max",
            _softmax_global_max,
            "you subtracted the maximum of the whole tensor, not of each row: a row far "
            "below it underflows to 0/0 = nan; use x.amax(dim, keepdim=True).",
            LSE,
        ),
        Mistake(
            "wrong_dim",
            _softmax_dim0,
            "you normalised along dimension 0 (over the batch), not along dim: each row "
            "must sum to 1 along the class dimension.",
            f"{PAGE}#key-equations",
        ),
    ),
)

register(
    reference=log_softmax_reference,
    stub=LOG_SOFTMAX_STUB,
    summary="log-softmax with the log-sum-exp trick",
    checks=_x_checks("dim=2 for a 2-D x"),
    difficulty="easy",
    page=LSE,
    mistakes=(
        Mistake(
            "log_of_softmax",
            _log_softmax_naive,
            "log(softmax(x)) takes the log of probabilities that underflowed to 0, giving "
            "-inf; compute x - m - log(sum(exp(x - m))) directly.",
            LSE,
        ),
        Mistake(
            "no_max_shift",
            _log_softmax_no_shift,
            "log(sum(exp(x))) overflows for large logits: subtract the maximum m inside "
            "and add it back outside (the log-sum-exp trick).",
            LSE,
        ),
        Mistake(
            "max_only",
            _log_softmax_max_only,
            "you subtracted the maximum but not the log-sum-exp: x - m is not normalised "
            "(its exp does not sum to 1); subtract log(sum(exp(x - m))) as well.",
            LSE,
        ),
    ),
)

register(
    reference=cross_entropy_reference,
    stub=CROSS_ENTROPY_STUB,
    summary="mean cross-entropy from logits with ignore_index",
    checks=(
        shape_check(lambda: [{"logits": randn(2, 3, seed=0), "target": torch.tensor([0, 2])}]),
        values_check(
            lambda: [
                {
                    "logits": tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 1.0, 1.0]]),
                    "target": torch.tensor([0, 2, -100]),
                }
            ]
        ),
        Check("random shapes with ignored rows", _ce_cases_random),
        Check(
            "gradient vs the reference",
            lambda: _ce_cases_random()[1:],
            kind="grad",
            grad_wrt=("logits",),
        ),
        Check(
            "edge: logits of ±1e4",
            lambda: [
                {"logits": tensor([[1e4, -1e4], [1e4, -1e4]]), "target": torch.tensor([1, 0])}
            ],
        ),
        Check(
            "edge: every row ignored, empty batch",
            lambda: [
                {"logits": randn(2, 3, seed=1), "target": torch.tensor([-100, -100])},
                {
                    "logits": torch.zeros(0, 3, dtype=torch.float64),
                    "target": torch.zeros(0, dtype=torch.long),
                },
            ],
        ),
        bad_input(
            "target of the wrong length",
            "3 rows of logits but 2 targets",
            lambda: [{"logits": randn(3, 4, seed=2), "target": torch.tensor([0, 1])}],
        ),
    ),
    difficulty="medium",
    page=f"{PAGE}#cross-entropy-from-logits",
    mistakes=(
        Mistake(
            "mean_over_all_rows",
            _ce_divide_by_n,
            "you divided by N, counting the ignored rows: the mean is over the rows whose "
            "target is not ignore_index.",
            f"{PAGE}#class-weights-the-mean-divides-by-the-total-weight",
        ),
        Mistake(
            "sum_not_mean",
            _ce_sum,
            "you summed the per-row losses; the default reduction is the mean over the "
            "rows not ignored.",
            f"{PAGE}#cross-entropy-from-logits",
        ),
        Mistake(
            "log_of_softmax",
            _ce_naive_log,
            "log(softmax(logits)) is -inf where a probability underflowed to 0: use "
            "log_softmax (the log-sum-exp trick).",
            LSE,
        ),
        Mistake(
            "no_log",
            _ce_no_log,
            "you averaged -p[target] instead of -log p[target]: cross-entropy is the "
            "negative log-probability of the target.",
            f"{PAGE}#key-equations",
        ),
    ),
)
