"""Exercises on optimizer steps: SGD with momentum, Adam, AdamW.

The references are single steps of ``torch.optim.SGD``, ``torch.optim.Adam`` and
``torch.optim.AdamW`` with their state set from the exercise's inputs; the bias-corrected moments
:math:`\\hat m, \\hat v`, which torch does not store, are computed from its :math:`m, v`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from dlref.practice._cases import bad_input, randn, shape_check, tensor, values_check
from dlref.practice._grader import Check, Mistake, register

PAGE = "topics/optimizers.html"
KEY = f"{PAGE}#key-equations"
ADAM = f"{PAGE}#adam--rmsprop--momentum--bias-correction"
BIAS = f"{PAGE}#why-bias-correction-matters-at-step-1"
ADAMW = f"{PAGE}#adam-with-l2-is-not-adamw"
ADAM_OUTPUTS = ("m", "v", "m_hat", "v_hat", "param")

# ------------------------------------------------------------------------------- references


def sgd_momentum_step_reference(
    param: Tensor,
    grad: Tensor,
    buf: Tensor | None,
    lr: float = 0.1,
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    nesterov: bool = False,
) -> dict:
    """The reference: one step of :class:`torch.optim.SGD` (``buf=None`` at the first step).

    Parameters
    ----------
    param, grad : Tensor
        The parameter and its gradient, one shape.
    buf : Tensor or None
        The momentum buffer, shaped like ``param``; ``None`` at the first step.
    lr : float, default 0.1
    momentum : float, default 0.9
    weight_decay : float, default 0.0
    nesterov : bool, default False
        As in :class:`torch.optim.SGD`.

    Returns
    -------
    dict
        ``"buf"`` and ``"param"`` after the step, shaped like ``param``.

    Examples
    --------
    >>> import torch
    >>> from dlref.practice.optim import sgd_momentum_step_reference
    >>> p, g = torch.tensor([[1.0, 2.0], [0.5, -1.0]], dtype=torch.float64)  # param, grad
    >>> out = sgd_momentum_step_reference(p, g, buf=None)  # first step: buf = g
    >>> out["buf"], out["param"]  # param - lr buf
    (tensor([ 0.5000, -1.0000], dtype=torch.float64), tensor([0.9500, 2.1000], dtype=torch.float64))
    >>> sgd_momentum_step_reference(p, g, buf=out["buf"])["buf"]  # momentum buf + g
    tensor([ 0.9500, -1.9000], dtype=torch.float64)
    """
    p = param.detach().clone().requires_grad_(True)
    p.grad = grad.detach().clone()
    opt = torch.optim.SGD(
        [p], lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov
    )
    if buf is not None:
        opt.state[p]["momentum_buffer"] = buf.detach().clone()
    opt.step()
    return {"buf": opt.state[p]["momentum_buffer"].clone(), "param": p.detach().clone()}


def _adam_like(cls, param, grad, m, v, t, lr, betas, eps, **kw) -> dict:
    p = param.detach().clone().requires_grad_(True)
    p.grad = grad.detach().clone()
    opt = cls([p], lr=lr, betas=betas, eps=eps, **kw)
    opt.state[p]["step"] = torch.tensor(float(t - 1))
    opt.state[p]["exp_avg"] = m.detach().clone()
    opt.state[p]["exp_avg_sq"] = v.detach().clone()
    opt.step()
    m_t, v_t = opt.state[p]["exp_avg"].clone(), opt.state[p]["exp_avg_sq"].clone()
    return {
        "m": m_t,
        "v": v_t,
        "m_hat": m_t / (1 - betas[0] ** t),
        "v_hat": v_t / (1 - betas[1] ** t),
        "param": p.detach().clone(),
    }


def adam_step_reference(param, grad, m, v, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8) -> dict:
    """The reference: step ``t`` of :class:`torch.optim.Adam` from the moments ``m``, ``v``.

    Parameters
    ----------
    param, grad, m, v : Tensor
        The parameter, its gradient and the moments after step ``t - 1``, one shape.
    t : int
        The step, from 1.
    lr : float, default 1e-3
    betas : tuple of float, default (0.9, 0.999)
    eps : float, default 1e-8
        As in :class:`torch.optim.Adam`.

    Returns
    -------
    dict
        ``"m"``, ``"v"``, the bias-corrected ``"m_hat"``, ``"v_hat"`` and ``"param"`` after the
        step, each shaped like ``param``.

    Examples
    --------
    >>> import torch
    >>> from dlref.practice.optim import adam_step_reference
    >>> p, g = torch.tensor([[1.0, 2.0], [0.5, -1.0]], dtype=torch.float64)  # param, grad
    >>> out = adam_step_reference(p, g, torch.zeros_like(p), torch.zeros_like(p), t=1, lr=0.1)
    >>> out["m_hat"], out["v_hat"]  # at t = 1 the bias corrections give back g and g^2
    (tensor([ 0.5000, -1.0000], dtype=torch.float64), tensor([0.2500, 1.0000], dtype=torch.float64))
    >>> out["param"]  # so the first step is lr sign(g)
    tensor([0.9000, 2.1000], dtype=torch.float64)
    >>> from dlref.practice import get
    >>> no_correction = get("adam_step").mistakes[0]
    >>> z = torch.zeros_like(p)
    >>> no_correction.name, no_correction.fn(p, g, z, z, t=1, lr=0.1)["param"] - p  # 3.16 lr
    ('no_bias_correction', tensor([-0.3162,  0.3162], dtype=torch.float64))
    """
    return _adam_like(torch.optim.Adam, param, grad, m, v, t, lr, betas, eps)


def adamw_step_reference(
    param, grad, m, v, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2
) -> dict:
    """The reference: step ``t`` of :class:`torch.optim.AdamW` from the moments ``m``, ``v``.

    Parameters
    ----------
    param, grad, m, v, t, lr, betas, eps
        As in :func:`adam_step_reference`.
    weight_decay : float, default 1e-2
        As in :class:`torch.optim.AdamW`: decoupled, ``param`` shrinks by ``lr * weight_decay``.

    Returns
    -------
    dict
        ``"m"``, ``"v"``, ``"m_hat"``, ``"v_hat"`` and ``"param"`` after the step, each shaped
        like ``param``.

    Examples
    --------
    >>> import torch
    >>> from dlref.practice.optim import adamw_step_reference
    >>> p, g = torch.tensor([[1.0, 2.0], [0.5, -1.0]], dtype=torch.float64)  # param, grad
    >>> z = torch.zeros_like(p)
    >>> out = adamw_step_reference(p, g, z, z, t=1, lr=0.1, weight_decay=0.5)
    >>> out["param"]  # p (1 - lr wd) - lr sign(g): the decay is not in m or v
    tensor([0.8500, 2.0000], dtype=torch.float64)
    """
    return _adam_like(
        torch.optim.AdamW, param, grad, m, v, t, lr, betas, eps, weight_decay=weight_decay
    )


# --------------------------------------------------------------------------- known mistakes


def _sgd(param, grad, buf, lr=0.1, momentum=0.9, weight_decay=0.0, nesterov=False, how=""):
    d = grad if how == "decay_outside" else grad + weight_decay * param
    if how == "lr_in_buffer":
        d = lr * d
    if buf is None:
        b = d if how != "ema" else (1 - momentum) * d
    else:
        b = momentum * buf + ((1 - momentum) * d if how == "ema" else d)
    step = d + momentum * b if nesterov and how != "nesterov_as_plain" else b
    if how == "lr_in_buffer":
        new = param - step
    else:
        new = param - lr * step
    if how == "decay_outside":
        new = new - lr * weight_decay * param
    return {"buf": b, "param": new}


def _adam(
    param,
    grad,
    m,
    v,
    t,
    lr=1e-3,
    betas=(0.9, 0.999),
    eps=1e-8,
    weight_decay=0.0,
    how="",
    decoupled=False,
):
    b1, b2 = betas
    if how == "betas_swapped":
        b1, b2 = b2, b1
    g = grad
    if weight_decay and (not decoupled or how == "l2_in_gradient"):
        g = g + weight_decay * param
    m_t = b1 * m + (1 - b1) * g
    v_t = b2 * v + (1 - b2) * (g.abs() if how == "abs_grad" else g * g)
    m_hat, v_hat = m_t / (1 - b1**t), v_t / (1 - b2**t)
    if how == "no_bias_correction":
        m_hat, v_hat = m_t, v_t
    denom = (v_hat + eps).sqrt() if how == "eps_inside_sqrt" else v_hat.sqrt() + eps
    p = param
    if decoupled and how not in ("l2_in_gradient", "decay_after_update"):
        p = p * (1 - (1.0 if how == "decay_without_lr" else lr) * weight_decay)
    p = p - lr * m_hat / denom
    if decoupled and how == "decay_after_update":
        p = p * (1 - lr * weight_decay)
    return {"m": m_t, "v": v_t, "m_hat": m_hat, "v_hat": v_hat, "param": p}


def _adamw(how):
    def fn(param, grad, m, v, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        return _adam(param, grad, m, v, t, lr, betas, eps, weight_decay, how, decoupled=True)

    return fn


def _adam_variant(how):
    def fn(param, grad, m, v, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        return _adam(param, grad, m, v, t, lr, betas, eps, 0.0, how)

    return fn


# ------------------------------------------------------------------------------------ cases


def _sgd_case(shape, seed, first=False, **kw):
    return {
        "param": randn(*shape, seed=seed),
        "grad": randn(*shape, seed=seed + 1),
        "buf": None if first else randn(*shape, seed=seed + 2),
        **kw,
    }


def _adam_case(shape, seed, t, **kw):
    return {
        "param": randn(*shape, seed=seed),
        "grad": randn(*shape, seed=seed + 1),
        "m": randn(*shape, seed=seed + 2, scale=0.1),
        "v": randn(*shape, seed=seed + 3).square() * 0.01,
        "t": t,
        **kw,
    }


def _adam_hand():
    # gradients of 1e-6 make eps = 1e-8 matter (sqrt(v_hat) ~ 1e-6)
    return [
        {
            "param": tensor([1.0, -2.0, 0.5]),
            "grad": tensor([0.1, -0.2, 1e-6]),
            "m": tensor([0.0, 0.0, 0.0]),
            "v": tensor([0.0, 0.0, 0.0]),
            "t": 1,
            "lr": 0.1,
        },
        {
            "param": tensor([1.0, -2.0]),
            "grad": tensor([0.5, 2e-6]),
            "m": tensor([0.1, 0.0]),
            "v": tensor([0.01, 1e-12]),
            "t": 3,
            "lr": 0.1,
        },
    ]


def _adam_checks(extra: dict) -> tuple[Check, ...]:
    return (
        shape_check(lambda: [_adam_case((3,), 0, 1, **extra)]),
        values_check(lambda: [{**c, **extra} for c in _adam_hand()]),
        Check(
            "random shapes and steps",
            lambda: [
                _adam_case((4,), 1, 2, lr=0.1, **extra),
                _adam_case((2, 3, 4), 2, 10, lr=0.05, betas=(0.8, 0.99), **extra),
                _adam_case((5, 2), 3, 1, eps=1e-3, **extra),
            ],
        ),
        Check(
            "edge: zero gradient and moments at t = 1, a late step, an empty tensor",
            lambda: [
                {
                    **_adam_case((3,), 4, 1, **extra),
                    "grad": torch.zeros(3, dtype=torch.float64),
                    "m": torch.zeros(3, dtype=torch.float64),
                    "v": torch.zeros(3, dtype=torch.float64),
                },
                _adam_case((3,), 5, 10_000, **extra),
                _adam_case((0,), 6, 1, **extra),
            ],
        ),
        bad_input(
            "t = 0",
            "steps count from t = 1; at t = 0 the bias correction divides by 0",
            lambda: [_adam_case((3,), 7, 0, **extra)],
        ),
    )


ADAM_DOC = """
        m_t = beta1 m + (1 - beta1) g,          v_t = beta2 v + (1 - beta2) g^2
        m_hat = m_t / (1 - beta1^t),            v_hat = v_t / (1 - beta2^t)
        param_t = param - lr m_hat / (sqrt(v_hat) + eps)

    param, grad, m, v: tensors of one shape (any); m, v are the moments after step t - 1
    (zeros before the first step); t >= 1 is this step's number. Return a dict with the
    keys "m", "v", "m_hat", "v_hat", "param" (the new values; do not modify the inputs).
    Raise a ValueError for t < 1.
"""

SGD_STUB = r'''
import torch
from torch import Tensor


def sgd_momentum_step(param, grad, buf, lr=0.1, momentum=0.9, weight_decay=0.0, nesterov=False):
    r"""One step of SGD with momentum, as torch.optim.SGD (dampening 0).

        d = grad + weight_decay * param
        buf_t = d at the first step (buf is None), else momentum * buf + d
        step = d + momentum * buf_t if nesterov else buf_t
        param_t = param - lr * step

    param, grad, buf: tensors of one shape (buf may be None). Return a dict with the keys
    "buf" and "param" (the new values; do not modify the inputs).
    """
    raise NotImplementedError
'''

ADAM_STUB = (
    r'''
import torch
from torch import Tensor


def adam_step(param, grad, m, v, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
    r"""Step t of Adam (torch.optim.Adam without weight decay).
'''
    + ADAM_DOC
    + '''    """
    raise NotImplementedError
'''
)

ADAMW_STUB = (
    r'''
import torch
from torch import Tensor


def adamw_step(param, grad, m, v, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
    r"""Step t of AdamW (torch.optim.AdamW): Adam with decoupled weight decay.

        param <- param (1 - lr weight_decay), then the Adam step on the decayed param:
'''
    + ADAM_DOC
    + '''    The decay never enters m or v (that would be L2 regularisation, Adam's weight_decay).
    """
    raise NotImplementedError
'''
)


register(
    reference=sgd_momentum_step_reference,
    stub=SGD_STUB,
    summary="one step of SGD with momentum, weight decay and Nesterov, as torch.optim.SGD",
    checks=(
        shape_check(lambda: [_sgd_case((3,), 0, first=True)]),
        values_check(
            lambda: [
                {"param": tensor([1.0, -1.0]), "grad": tensor([0.5, 2.0]), "buf": None},
                {
                    "param": tensor([1.0, -1.0]),
                    "grad": tensor([0.5, 2.0]),
                    "buf": tensor([1.0, 1.0]),
                    "weight_decay": 0.1,
                },
            ]
        ),
        Check(
            "random shapes and options",
            lambda: [
                _sgd_case((4,), 1, first=True, weight_decay=0.01),
                _sgd_case((2, 3), 2, lr=0.05, momentum=0.5),
                _sgd_case((3, 2, 2), 3, nesterov=True, weight_decay=0.1),
            ],
        ),
        Check("edge: an empty tensor", lambda: [_sgd_case((0,), 4)]),
    ),
    difficulty="easy",
    page=KEY,
    outputs=("buf", "param"),
    mistakes=(
        Mistake(
            "ema_momentum",
            lambda *a, **k: _sgd(*a, **k, how="ema"),
            "torch's momentum buffer is buf = momentum * buf + grad, not the average "
            "momentum * buf + (1 - momentum) * grad (that is dampening = momentum).",
            KEY,
        ),
        Mistake(
            "lr_in_buffer",
            lambda *a, **k: _sgd(*a, **k, how="lr_in_buffer"),
            "you folded lr into the buffer (buf = momentum * buf + lr * grad): torch keeps "
            "lr out of it, which matters as soon as lr changes or you read the buffer.",
            KEY,
        ),
        Mistake(
            "decay_outside_momentum",
            lambda *a, **k: _sgd(*a, **k, how="decay_outside"),
            "torch adds weight_decay * param to the gradient before the momentum buffer; "
            "you applied it to the parameter separately.",
            KEY,
        ),
        Mistake(
            "nesterov_ignored",
            lambda *a, **k: _sgd(*a, **k, how="nesterov_as_plain"),
            "with nesterov=True the step is grad + momentum * buf_t, not buf_t.",
            KEY,
        ),
    ),
)

register(
    reference=adam_step_reference,
    stub=ADAM_STUB,
    summary="one Adam step, returning m, v, m_hat, v_hat and the parameter",
    checks=_adam_checks({}),
    difficulty="medium",
    page=ADAM,
    outputs=ADAM_OUTPUTS,
    mistakes=(
        Mistake(
            "no_bias_correction",
            _adam_variant("no_bias_correction"),
            "Adam divides m by 1 - beta1^t and v by 1 - beta2^t: both start at 0, so "
            "without this bias correction they are too small early on and the step too "
            "large (at t = 1 with the default betas, (1 - 0.9) / sqrt(1 - 0.999), about 3.16 "
            "times lr instead of lr).",
            BIAS,
        ),
        Mistake(
            "eps_inside_sqrt",
            _adam_variant("eps_inside_sqrt"),
            "eps is added after the square root, sqrt(v_hat) + eps, not inside it.",
            ADAM,
        ),
        Mistake(
            "betas_swapped",
            _adam_variant("betas_swapped"),
            "beta1 (0.9) averages the gradient into m and beta2 (0.999) the squared "
            "gradient into v: you swapped them.",
            ADAM,
        ),
        Mistake(
            "abs_grad",
            _adam_variant("abs_grad"),
            "v averages the squared gradient g * g, not |g|.",
            ADAM,
        ),
    ),
)

register(
    reference=adamw_step_reference,
    stub=ADAMW_STUB,
    summary="one AdamW step with decoupled weight decay",
    checks=_adam_checks({"weight_decay": 0.1}),
    difficulty="medium",
    page=ADAMW,
    outputs=ADAM_OUTPUTS,
    mistakes=(
        Mistake(
            "l2_in_gradient",
            _adamw("l2_in_gradient"),
            "you added weight_decay * param to the gradient (L2, Adam's weight_decay): "
            "AdamW decays the parameter directly, outside m and v.",
            ADAMW,
        ),
        Mistake(
            "decay_without_lr",
            _adamw("decay_without_lr"),
            "AdamW multiplies the parameter by 1 - lr * weight_decay, not 1 - weight_decay.",
            ADAMW,
        ),
        Mistake(
            "decay_after_update",
            _adamw("decay_after_update"),
            "torch decays the parameter before the Adam update, not after it.",
            ADAMW,
        ),
        Mistake(
            "no_bias_correction",
            _adamw("no_bias_correction"),
            "Adam divides m by 1 - beta1^t and v by 1 - beta2^t: both start at 0, so "
            "without this bias correction they are too small early on and the step too "
            "large (at t = 1 with the default betas, (1 - 0.9) / sqrt(1 - 0.999), about 3.16 "
            "times lr instead of lr).",
            BIAS,
        ),
    ),
)
