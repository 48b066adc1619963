"""Exercises on layer norm, a batch-norm step with its running statistics, and inverted dropout
(references: :mod:`dlref.normalization` and :mod:`dlref.regularization`)."""

from __future__ import annotations

import torch
from torch import Tensor

from dlref import normalization
from dlref.practice._cases import bad_input, rand, randn, shape_check, tensor, values_check
from dlref.practice._grader import Check, Mistake, register

PAGE = "topics/normalization.html"
EQS = f"{PAGE}#key-equations"
RUNNING = f"{PAGE}#the-running-estimates-converge-to-the-datas-statistics"
MISTAKES = f"{PAGE}#common-mistakes"
DROPOUT = "topics/dropout.html"

# ------------------------------------------------------------------------------- references


def layer_norm_reference(
    x: Tensor, weight: Tensor, bias: Tensor, eps: float = 1e-5
) -> Tensor:  # fmt: skip
    """The reference: :func:`dlref.normalization.layer_norm` over the last dimension.

    Parameters
    ----------
    x : Tensor
        Shape (\\*, D).
    weight, bias : Tensor
        :math:`\\gamma, \\beta`, shape (D,).
    eps : float, default 1e-5
        Inside the square root.

    Returns
    -------
    Tensor
        Shaped like ``x``, normalised over its last dimension.

    Examples
    --------
    >>> import torch
    >>> from dlref.practice.normalization import layer_norm_reference
    >>> x = torch.tensor([[1.0, 2.0, 3.0]], dtype=torch.float64)
    >>> w, b = torch.ones(3, dtype=torch.float64), torch.zeros(3, dtype=torch.float64)
    >>> layer_norm_reference(x, w, b)
    tensor([[-1.2247,  0.0000,  1.2247]], dtype=torch.float64)
    """
    return normalization.layer_norm(x, x.shape[-1], weight, bias, eps)


def batch_norm_reference(
    x: Tensor,
    running_mean: Tensor,
    running_var: Tensor,
    weight: Tensor,
    bias: Tensor,
    training: bool = True,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> dict[str, Tensor]:
    """The reference: :func:`dlref.normalization.batch_norm`, returning the new running estimates.

    Parameters
    ----------
    x : Tensor
        Shape (N, C).
    running_mean, running_var : Tensor
        Shape (C,); not modified (the new values are returned).
    weight, bias : Tensor
        Shape (C,).
    training : bool, optional
    momentum : float, default 0.1 Default True.
    eps : float, default 1e-5

    Returns
    -------
    dict
        ``output`` (N, C), ``running_mean`` (C,), ``running_var`` (C,).

    Examples
    --------
    >>> import torch
    >>> from dlref.practice.normalization import batch_norm_reference
    >>> x = torch.tensor([[1.0], [3.0]], dtype=torch.float64)
    >>> one, zero = torch.ones(1, dtype=torch.float64), torch.zeros(1, dtype=torch.float64)
    >>> out = batch_norm_reference(x, zero, one, one, zero)
    >>> out["running_mean"], out["running_var"]  # 0.1 * 2;  0.9 + 0.1 * 2 (unbiased)
    (tensor([0.2000], dtype=torch.float64), tensor([1.1000], dtype=torch.float64))
    """
    rm, rv = running_mean.clone(), running_var.clone()
    y = normalization.batch_norm(x, rm, rv, weight, bias, training, momentum, eps)
    return {"output": y, "running_mean": rm, "running_var": rv}


def dropout_reference(x: Tensor, keep: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """The reference: inverted dropout with a given mask, as :func:`dlref.regularization.dropout`.

    Parameters
    ----------
    x : Tensor
        Any shape.
    keep : Tensor
        Bool, shaped like ``x``: True where the element is kept (drawn with probability 1 - p).
    p : float, default 0.5
        The drop probability, in [0, 1].
    training : bool, optional
        In evaluation mode the output is ``x``. Default True.

    Returns
    -------
    Tensor
        Shaped like ``x``: 0 where dropped, ``x / (1 - p)`` where kept.

    Examples
    --------
    >>> import torch
    >>> from dlref.practice.normalization import dropout_reference
    >>> x = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64)
    >>> dropout_reference(x, torch.tensor([True, False, True, True]), p=0.25)
    tensor([1.3333, 0.0000, 4.0000, 5.3333], dtype=torch.float64)
    """
    if not 0 <= p <= 1:
        raise ValueError(f"p must be in [0, 1], got {p}")
    if not training:
        return x
    if p == 1:
        return x * 0  # every element dropped: 0, not 0 / 0
    return x * keep / (1 - p)  # m x / (1 - p); the same as regularization.dropout with this mask


# --------------------------------------------------------------------------- known mistakes


def _ln_wrong_axis(x, weight, bias, eps=1e-5):
    mu = x.mean(0, keepdim=True)
    var = x.var(0, unbiased=False, keepdim=True)
    return (x - mu) / torch.sqrt(var + eps) * weight + bias


def _ln_unbiased(x, weight, bias, eps=1e-5):
    mu = x.mean(-1, keepdim=True)
    var = x.var(-1, unbiased=True, keepdim=True)
    return (x - mu) / torch.sqrt(var + eps) * weight + bias


def _ln_eps_outside(x, weight, bias, eps=1e-5):
    mu = x.mean(-1, keepdim=True)
    var = x.var(-1, unbiased=False, keepdim=True)
    return (x - mu) / (torch.sqrt(var) + eps) * weight + bias


def _ln_no_affine(x, weight, bias, eps=1e-5):
    mu = x.mean(-1, keepdim=True)
    var = x.var(-1, unbiased=False, keepdim=True)
    return (x - mu) / torch.sqrt(var + eps)


def _bn(x, rm, rv, w, b, training, momentum, eps, *, unbiased_norm=False, biased_running=False,
        reversed_momentum=False, axis=0, batch_in_eval=False, eps_outside=False):  # fmt: skip
    if training or batch_in_eval:
        mu = x.mean(axis, keepdim=True)
        var = x.var(axis, unbiased=unbiased_norm, keepdim=True)
        n = x.shape[axis]
        new = var.squeeze(axis) * (1 if biased_running else n / (n - 1))
        if training:
            m = 1 - momentum if reversed_momentum else momentum
            if axis == 0:
                rm, rv = (1 - m) * rm + m * mu.squeeze(0), (1 - m) * rv + m * new
    else:
        mu, var = rm, rv
    std = var.sqrt() + eps if eps_outside else (var + eps).sqrt()
    return {"output": (x - mu) / std * w + b, "running_mean": rm, "running_var": rv}


def _bn_mistake(**how):
    def fn(x, running_mean, running_var, weight, bias, training=True, momentum=0.1, eps=1e-5):
        return _bn(x, running_mean, running_var, weight, bias, training, momentum, eps, **how)

    return fn


def _drop_no_rescale(x, keep, p=0.5, training=True):
    return x * keep if training else x


def _drop_divide_by_p(x, keep, p=0.5, training=True):
    return x * keep / p if training else x


def _drop_in_eval(x, keep, p=0.5, training=True):
    return x * 0 if p == 1 else x * keep / (1 - p)


# ------------------------------------------------------------------------------------ stubs

LAYER_NORM_STUB = r'''
import torch
from torch import Tensor


def layer_norm(x: Tensor, weight: Tensor, bias: Tensor, eps: float = 1e-5) -> Tensor:
    r"""Layer norm over the last dimension (torch.nn.functional.layer_norm(x, (D,), ...)).

        mu = mean_i x_i,  var = mean_i (x_i - mu)^2   (biased: divide by D)
        y_i = weight_i (x_i - mu) / sqrt(var + eps) + bias_i

    x: (*, D); weight, bias: (D,). Returns a tensor shaped like x.
    """
    raise NotImplementedError
'''

BATCH_NORM_STUB = r'''
import torch
from torch import Tensor


def batch_norm(x, running_mean, running_var, weight, bias, training=True, momentum=0.1, eps=1e-5):
    r"""One call of batch norm on x of shape (N, C), as torch.nn.functional.batch_norm.

    training=True: normalise each channel c with the batch's mean and biased variance,
        mu_c = mean_n x_nc,  var_c = mean_n (x_nc - mu_c)^2,
        y_nc = weight_c (x_nc - mu_c) / sqrt(var_c + eps) + bias_c,
    and update the running estimates with the UNBIASED variance N / (N - 1) var_c:
        running_mean <- (1 - momentum) running_mean + momentum mu_c
        running_var  <- (1 - momentum) running_var  + momentum N / (N - 1) var_c
    A batch of one (N = 1) in training mode must raise a ValueError.
    training=False: normalise with running_mean and running_var; they stay unchanged.

    Return a dict {"output": y, "running_mean": ..., "running_var": ...} with the new running
    estimates (do not modify the inputs).
    """
    raise NotImplementedError
'''

DROPOUT_STUB = r'''
import torch
from torch import Tensor


def dropout(x: Tensor, keep: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    r"""Inverted dropout with a given mask (the random draw is done for you).

        y = keep * x / (1 - p)   in training mode  (so that E[y] = x),
        y = x                    in evaluation mode.

    keep: bool tensor shaped like x, True where the element survives (probability 1 - p).
    With p = 1 every element is dropped: return zeros, not 0/0. Raise a ValueError for p
    outside [0, 1].
    """
    raise NotImplementedError
'''


# ------------------------------------------------------------------------------------ cases


def _ln_case(*shape, seed):
    D = shape[-1]
    return {"x": randn(*shape, seed=seed, scale=3.0), "weight": randn(D, seed=seed + 1),
            "bias": randn(D, seed=seed + 2)}  # fmt: skip


def _bn_case(N, C, seed, training=True, **kw):
    return {
        "x": randn(N, C, seed=seed, scale=2.0) + 1.0,
        "running_mean": randn(C, seed=seed + 1),
        "running_var": rand(C, seed=seed + 2) + 0.5,
        "weight": randn(C, seed=seed + 3),
        "bias": randn(C, seed=seed + 4),
        "training": training,
        **kw,
    }


def _bn_hand(training=True):
    return {
        "x": tensor([[1.0, 10.0], [3.0, 20.0], [8.0, 0.0]]),
        "running_mean": tensor([0.0, 5.0]),
        "running_var": tensor([1.0, 4.0]),
        "weight": tensor([2.0, 0.5]),
        "bias": tensor([0.0, 1.0]),
        "training": training,
        "momentum": 0.2,
        "eps": 0.1,
    }


def _drop_case(shape, seed, p, training=True):
    keep = rand(*shape, seed=seed + 100) >= p
    return {"x": randn(*shape, seed=seed), "keep": keep, "p": p, "training": training}


register(
    reference=layer_norm_reference,
    stub=LAYER_NORM_STUB,
    summary="layer norm over the last dimension, with weight and bias",
    checks=(
        shape_check(lambda: [_ln_case(2, 3, seed=0)]),
        values_check(
            lambda: [
                {
                    "x": tensor([[1.0, 2.0, 6.0], [0.0, 4.0, 2.0]]),
                    "weight": tensor([1.0, 2.0, 0.5]),
                    "bias": tensor([0.0, 1.0, -1.0]),
                    "eps": 0.1,
                }
            ]
        ),
        Check(
            "random shapes and batch dimensions",
            lambda: [_ln_case(4, 5, seed=1), _ln_case(2, 3, 8, seed=2)],
        ),  # fmt: skip
        Check(
            "gradient vs the reference",
            lambda: [_ln_case(3, 5, seed=3)],
            kind="grad",
            grad_wrt=("x", "weight", "bias"),
        ),
        Check(
            "edge: a constant row (variance 0) and values of 1e4",
            lambda: [
                {
                    "x": tensor([[2.0, 2.0, 2.0], [1e4, -1e4, 0.0]]),
                    "weight": tensor([1.0, 1.0, 1.0]),
                    "bias": tensor([0.0, 0.0, 0.0]),
                },
            ],  # fmt: skip
        ),
    ),
    difficulty="easy",
    page=EQS,
    mistakes=(
        Mistake(
            "wrong_axis",
            _ln_wrong_axis,
            "you normalised over the batch (dim 0), which is batch norm: layer norm takes "
            "the mean and variance of each sample over its features (the last dimension).",
            f"{PAGE}#which-axes-each-norm-averages-over",
        ),
        Mistake(
            "unbiased_variance",
            _ln_unbiased,
            "you divided the variance by D - 1: layer norm (like batch norm's normalisation) "
            "uses the biased variance, the mean of (x - mu)^2 (unbiased=False).",
            EQS,
        ),
        Mistake(
            "eps_outside_sqrt",
            _ln_eps_outside,
            "you added eps to the standard deviation: it goes inside the square root, "
            "sqrt(var + eps).",
            MISTAKES,
        ),
        Mistake(
            "no_affine",
            _ln_no_affine,
            "you forgot weight and bias: y = weight * x_hat + bias.",
            EQS,
        ),
    ),
)

register(
    reference=batch_norm_reference,
    stub=BATCH_NORM_STUB,
    summary="batch norm in training and eval mode, with the running statistics",
    checks=(
        shape_check(lambda: [_bn_case(4, 3, seed=0)]),
        Check("values on a hand-sized case (training)", lambda: [_bn_hand()]),
        Check(
            "evaluation mode: the running estimates, unchanged",
            lambda: [_bn_hand(training=False), _bn_case(5, 3, seed=1, training=False)],
        ),
        Check(
            "random shapes and momenta",
            lambda: [
                _bn_case(8, 4, seed=2),
                _bn_case(2, 6, seed=3, momentum=0.5),
                _bn_case(16, 3, seed=4, momentum=1.0),
            ],  # fmt: skip
        ),
        Check(
            "gradient vs the reference",
            lambda: [_bn_case(6, 3, seed=5)],
            kind="grad",
            grad_wrt=("x", "weight", "bias"),
            grad_of="output",
        ),
        Check(
            "edge: a constant channel",
            lambda: [
                _bn_case(4, 2, seed=6)
                | {"x": tensor([[1.0, 5.0], [2.0, 5.0], [3.0, 5.0], [4.0, 5.0]])}
            ],
        ),  # fmt: skip
        bad_input(
            "a batch of one in training mode",
            "one value per channel: the variance is 0 and every output would be bias",
            lambda: [_bn_case(1, 3, seed=7)],
        ),
    ),
    difficulty="medium",
    page=RUNNING,
    outputs=("output", "running_mean", "running_var"),
    mistakes=(
        Mistake(
            "biased_running_var",
            _bn_mistake(biased_running=True),
            "the running variance uses the unbiased estimate N / (N - 1) * var, while the "
            "batch is normalised with the biased one.",
            RUNNING,
        ),
        Mistake(
            "unbiased_normalisation",
            _bn_mistake(unbiased_norm=True),
            "you normalised the batch with the unbiased variance: torch normalises with the "
            "biased one and uses N / (N - 1) only in the running estimate.",
            RUNNING,
        ),
        Mistake(
            "momentum_reversed",
            _bn_mistake(reversed_momentum=True),
            "momentum is the weight of the new batch in torch: running <- (1 - m) running "
            "+ m batch, not m running + (1 - m) batch.",
            MISTAKES,
        ),
        Mistake(
            "wrong_axis",
            _bn_mistake(axis=1),
            "you normalised each sample over its features, which is layer norm: batch norm "
            "takes the mean and variance of each channel over the batch (dim 0).",
            f"{PAGE}#which-axes-each-norm-averages-over",
        ),
        Mistake(
            "eps_outside_sqrt",
            _bn_mistake(eps_outside=True),
            "you added eps to the standard deviation: it goes inside, sqrt(var + eps).",
            MISTAKES,
        ),
        Mistake(
            "batch_stats_in_eval",
            _bn_mistake(batch_in_eval=True),
            "in evaluation mode batch norm uses the running estimates, not the batch's "
            "statistics: otherwise a prediction depends on the rest of the test batch.",
            f"{PAGE}#batch-norm-training-and-evaluation-differ",
        ),
    ),
)

register(
    reference=dropout_reference,
    stub=DROPOUT_STUB,
    summary="inverted dropout with a given mask, and the identity in eval mode",
    checks=(
        shape_check(lambda: [_drop_case((2, 3), 0, 0.5)]),
        values_check(
            lambda: [
                {
                    "x": tensor([1.0, 2.0, 3.0, 4.0]),
                    "keep": torch.tensor([True, False, True, True]),
                    "p": 0.25,
                }
            ]
        ),
        Check("evaluation mode: the identity", lambda: [_drop_case((3, 4), 1, 0.5, False)]),
        Check(
            "random shapes and p",
            lambda: [_drop_case((5, 6), 2, 0.1), _drop_case((2, 3, 4), 3, 0.8)],
        ),
        Check(
            "gradient vs the reference",
            lambda: [_drop_case((4, 5), 4, 0.3)],
            kind="grad",
            grad_wrt=("x",),
        ),
        Check(
            "edge: p = 0 keeps everything, p = 1 gives zeros (not nan)",
            lambda: [
                _drop_case((3, 3), 5, 0.0),
                {
                    "x": randn(3, 3, seed=6),
                    "keep": torch.zeros(3, 3, dtype=torch.bool),
                    "p": 1.0,
                },
            ],  # fmt: skip
        ),
        bad_input(
            "p = 1.5", "a probability above 1", lambda: [_drop_case((2, 2), 7, 0.5) | {"p": 1.5}]
        ),
    ),
    difficulty="easy",
    page=f"{DROPOUT}#key-equations",
    mistakes=(
        Mistake(
            "no_rescale",
            _drop_no_rescale,
            "without dividing the survivors by 1 - p, E[y] = (1 - p) x in training but x at "
            "test time: scale by 1 / (1 - p).",
            f"{DROPOUT}#what-goes-wrong-without-the-11-p",
        ),
        Mistake(
            "divide_by_p",
            _drop_divide_by_p,
            "you divided by p, the drop probability: the survivors are divided by the keep "
            "probability 1 - p, so that E[y] = x.",
            f"{DROPOUT}#key-equations",
        ),
        Mistake(
            "dropout_in_eval",
            _drop_in_eval,
            "in evaluation mode dropout is the identity: nothing is dropped and nothing is scaled.",
            f"{DROPOUT}#common-mistakes",
        ),
    ),
)
