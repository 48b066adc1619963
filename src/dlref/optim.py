r"""Optimizers that follow :mod:`torch.optim` step for step: SGD, RMSprop, Adam, AdamW.

Each class subclasses :class:`torch.optim.Optimizer`, keeps torch's name, positional arguments
and defaults, and gives torch's parameters (float64, to 1e-10 after 100 steps) for every option,
with parameter groups and ``state_dict`` save/load. The state keys are torch's too
(``momentum_buffer``, ``square_avg``, ``exp_avg``, ...), so a state saved by either loads into
the other. Left out: torch's switches after the algorithm's own arguments (``maximize``,
``foreach``, ``fused``, ``capturable``, ``differentiable``, and Adam's
``decoupled_weight_decay``: use :class:`AdamW`), a tensor ``lr``, complex and sparse gradients.

Every update is written in place, for speed, and the one temporary a step needs (the denominator
of Adam and RMSprop, SGD's decayed gradient) goes into a scratch buffer reused by every parameter,
so a step allocates nothing per parameter. The textbook equation sits in a comment above the
in-place line that computes it; where the line folds the algebra (Adam's bias correction
:math:`1/(1 - \beta_1^t)` into the step size, as torch does), the comment says how, and the
optimizers page shows by a doctest that the folded and the textbook forms give the same update.

:class:`UniformAverage` is the "running-average" optimizer of the quiz, and
:func:`warmup_cosine` the usual learning-rate schedule (linear warmup, then cosine decay).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable

import torch
from torch import Tensor

from dlref._checks import check_callable, check_fraction, check_int, is_real_number

__all__ = ["SGD", "RMSprop", "Adam", "AdamW", "UniformAverage", "warmup_cosine"]


# ---------------------------------------------------------------------------------------------
# Helpers: hyperparameter checks (torch's messages, plus the argument's name) and gradients.
# ---------------------------------------------------------------------------------------------


def _check_nonnegative(value: object, name: str, torch_words: str) -> None:
    """``ValueError`` starting with torch's own message, e.g. ``Invalid learning rate: -1``."""
    if not is_real_number(value):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    if not value >= 0.0:  # also catches nan
        raise ValueError(f"Invalid {torch_words}: {value} ({name} must be >= 0)")


def _check_betas(betas: object) -> None:
    if not (isinstance(betas, (tuple, list)) and len(betas) == 2):
        raise TypeError(f"betas must be a pair (beta1, beta2), got {betas!r}")
    for i, beta in enumerate(betas):
        if not is_real_number(beta):
            raise TypeError(f"betas[{i}] must be a real number, got {type(beta).__name__}")
        if not 0.0 <= beta < 1.0:
            raise ValueError(
                f"Invalid beta parameter at index {i}: {beta} (betas[{i}] must lie in [0, 1))"
            )


def _init(optimizer: torch.optim.Optimizer, params: object, defaults: dict) -> None:
    """``torch.optim.Optimizer.__init__``, with ``params`` named in its errors (torch's first)."""
    try:
        torch.optim.Optimizer.__init__(optimizer, params, defaults)
    except (TypeError, ValueError) as e:
        if re.search(r"\bparams\b", str(e)):
            raise
        raise type(e)(
            f"{e} (params must be an iterable of parameters or of parameter groups, "
            f"got {type(params).__name__} {params!r})"
        ) from None


def _grads(optimizer: torch.optim.Optimizer, group: dict) -> Iterable[tuple[Tensor, Tensor]]:
    """(parameter, gradient) for each parameter of the group that has a gradient."""
    name = type(optimizer).__name__
    for p in group["params"]:
        if p.grad is None:
            continue
        if p.grad.is_sparse:
            raise RuntimeError(
                f"{name} does not support sparse gradients (dlref.optim handles dense gradients "
                "only); use torch.optim.SparseAdam, or a dense embedding (sparse=False)"
            )
        if p.is_complex():
            raise TypeError(f"{name} does not support complex parameters, got dtype {p.dtype}")
        yield p, p.grad


def _buffer_like(optimizer: torch.optim.Optimizer, p: Tensor) -> Tensor:
    """A scratch tensor shaped like ``p``, reused by every parameter and every step.

    One per device and dtype, as large as the largest parameter, so a step allocates no
    temporary per parameter. It is not part of the state, so ``state_dict`` is unchanged.
    """
    buffers = optimizer.__dict__.setdefault("_scratch", {})
    key = (p.device, p.dtype)
    if key not in buffers or buffers[key].numel() < p.numel():
        buffers[key] = torch.empty(p.numel(), dtype=p.dtype, device=p.device)
    return buffers[key][: p.numel()].view(p.shape)


def _closure_loss(closure: Callable[[], Tensor] | None) -> Tensor | None:
    if closure is None:
        return None
    check_callable("closure", closure)
    with torch.enable_grad():
        return closure()


# ---------------------------------------------------------------------------------------------
# Schedule
# ---------------------------------------------------------------------------------------------


def warmup_cosine(
    warmup_steps: int, total_steps: int, min_factor: float = 0.0
) -> Callable[[int], float]:
    r"""Linear warmup then cosine decay, as a factor for :class:`torch.optim.lr_scheduler.LambdaLR`.

    .. math::

        \eta_t / \eta = \begin{cases}
            t / T_w & t < T_w \\
            f + (1 - f)\,\tfrac12\bigl(1 + \cos(\pi\,\tfrac{t - T_w}{T - T_w})\bigr)
                & T_w \le t \le T \\
            f & t > T
        \end{cases}

    With ``warmup_steps=0`` it equals :class:`~torch.optim.lr_scheduler.CosineAnnealingLR` with
    ``T_max=total_steps`` and ``eta_min=min_factor * lr`` for :math:`t \le T` (past ``T_max``
    torch's cosine climbs back up; this one stays at :math:`f`).

    Parameters
    ----------
    warmup_steps : int
        :math:`T_w`: steps of linear warmup from 0 (the factor at step 0 is 0 when
        :math:`T_w > 0`).
    total_steps : int
        :math:`T`: the step at which the factor reaches ``min_factor``.
    min_factor : float, optional
        :math:`f`: the final learning rate as a fraction of the initial one.

    Returns
    -------
    collections.abc.Callable
        ``lr_lambda`` for :class:`~torch.optim.lr_scheduler.LambdaLR`: step :math:`t` to the
        factor multiplying the initial learning rate.

    Examples
    --------
    >>> from dlref.optim import warmup_cosine
    >>> f = warmup_cosine(warmup_steps=2, total_steps=6)
    >>> [round(f(t), 3) for t in range(8)]
    [0.0, 0.5, 1.0, 0.854, 0.5, 0.146, 0.0, 0.0]
    """
    warmup_steps = check_int("warmup_steps", warmup_steps, minimum=0)
    total_steps = check_int("total_steps", total_steps, minimum=1)
    if total_steps <= warmup_steps:
        raise ValueError(f"total_steps={total_steps} must exceed warmup_steps={warmup_steps}")
    min_factor = check_fraction("min_factor", min_factor)

    def factor(t: int) -> float:
        if t < warmup_steps:
            return t / warmup_steps  # linear warmup
        progress = min(1.0, (t - warmup_steps) / (total_steps - warmup_steps))
        return min_factor + (1.0 - min_factor) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


# ---------------------------------------------------------------------------------------------
# Optimizers
# ---------------------------------------------------------------------------------------------


class SGD(torch.optim.Optimizer):
    r"""Stochastic gradient descent, with optional (Nesterov) momentum and weight decay.

    .. math::

        g_t &= \nabla_\theta L(\theta_{t-1}) + \lambda\,\theta_{t-1} \\
        b_t &= \mu\, b_{t-1} + (1 - \tau)\, g_t \qquad (b_1 = g_1) \\
        \theta_t &= \theta_{t-1} - \gamma\,
            \begin{cases} g_t + \mu\, b_t & \text{Nesterov} \\ b_t & \text{otherwise}
            \end{cases}

    with :math:`b_t = g_t` when :math:`\mu = 0`. As in torch, the buffer starts as the first
    gradient (no dampening at step 1), and the learning rate multiplies the whole buffer
    (the "PyTorch form" of momentum; Sutskever et al. put :math:`\gamma` inside the buffer).

    Parameters
    ----------
    params : collections.abc.Iterable
        Parameters, or parameter groups (dicts with ``"params"`` and any hyperparameter).
    lr : float, optional
        :math:`\gamma`, the learning rate.
    momentum : float, optional
        :math:`\mu`, the momentum factor.
    dampening : float, optional
        :math:`\tau`, dampening of the momentum.
    weight_decay : float, optional
        :math:`\lambda`, the coefficient of the L2 penalty added to the gradient.
    nesterov : bool, optional
        Nesterov momentum (needs ``momentum > 0`` and ``dampening == 0``).

    Examples
    --------
    >>> import torch
    >>> from dlref.optim import SGD
    >>> w = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    >>> opt = SGD([w], lr=0.1, momentum=0.9)
    >>> for _ in range(2):
    ...     opt.zero_grad()
    ...     (w**2).sum().backward()  # gradient 2w
    ...     opt.step()
    >>> w.detach()
    tensor([ 0.4600, -0.9200])
    """

    # fmt: off
    def __init__(self, params, lr: float = 1e-3, momentum: float = 0, dampening: float = 0,
                 weight_decay: float = 0, nesterov: bool = False):
        # fmt: on
        _check_nonnegative(lr, "lr", "learning rate")
        _check_nonnegative(momentum, "momentum", "momentum value")
        _check_nonnegative(weight_decay, "weight_decay", "weight_decay value")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError(
                "Nesterov momentum requires a momentum and zero dampening "
                f"(got momentum={momentum}, dampening={dampening})"
            )
        defaults = dict(
            lr=lr,
            momentum=momentum,
            dampening=dampening,
            weight_decay=weight_decay,
            nesterov=nesterov,
        )
        _init(self, params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        """Update each parameter with a gradient; return ``closure()`` if given."""
        loss = _closure_loss(closure)
        for group in self.param_groups:
            lr, wd = group["lr"], group["weight_decay"]
            mu, tau = group["momentum"], group["dampening"]
            for p, g in _grads(self, group):
                if wd != 0:
                    # g_t = ∇L + λ θ_{t-1}
                    g = torch.add(g, p, alpha=wd, out=_buffer_like(self, p))
                if mu == 0:
                    # θ_t = θ_{t-1} − γ g_t
                    p.add_(g, alpha=-lr)
                    continue
                state = self.state[p]
                b = state.get("momentum_buffer")
                if b is None:
                    # b_1 = g_1
                    b = state["momentum_buffer"] = g.clone()
                else:
                    # b_t = μ b_{t-1} + (1 − τ) g_t
                    b.mul_(mu).add_(g, alpha=1 - tau)
                if group["nesterov"]:
                    # θ_t = θ_{t-1} − γ (g_t + μ b_t), as two in-place updates
                    p.add_(g, alpha=-lr).add_(b, alpha=-lr * mu)
                else:
                    # θ_t = θ_{t-1} − γ b_t
                    p.add_(b, alpha=-lr)
        return loss


class RMSprop(torch.optim.Optimizer):
    r"""RMSprop: divide the gradient by a running root-mean-square of recent gradients.

    .. math::

        g_t &= \nabla_\theta L(\theta_{t-1}) + \lambda\,\theta_{t-1} \\
        v_t &= \alpha\, v_{t-1} + (1 - \alpha)\, g_t^2 \\
        \bar g_t &= \alpha\, \bar g_{t-1} + (1 - \alpha)\, g_t
            \qquad\text{(centered only; then } \tilde v_t = v_t - \bar g_t^2
            \text{, else } \tilde v_t = v_t) \\
        b_t &= \mu\, b_{t-1} + g_t / (\sqrt{\tilde v_t} + \epsilon) \\
        \theta_t &= \theta_{t-1} - \gamma\, b_t
            \qquad (b_t = g_t / (\sqrt{\tilde v_t} + \epsilon) \text{ when } \mu = 0)

    :math:`\epsilon` is added *outside* the square root, as in torch (Hinton's lecture 6e
    leaves it out; TensorFlow puts it inside).

    Parameters
    ----------
    params : collections.abc.Iterable
    lr : float, optional
        As in :class:`SGD`.
    alpha : float, optional
        :math:`\alpha`, the smoothing constant of the running averages.
    eps : float, optional
        :math:`\epsilon`, added to the denominator.
    weight_decay : float, optional
        :math:`\lambda`, the coefficient of the L2 penalty added to the gradient.
    momentum : float, optional
        :math:`\mu`, momentum on the normalised gradient.
    centered : bool, optional
        Normalise by an estimate of the gradient's variance instead of its second moment.

    Examples
    --------
    >>> import torch
    >>> from dlref.optim import RMSprop
    >>> w = torch.nn.Parameter(torch.tensor([1.0, -100.0]))
    >>> w.grad = 2 * w.detach()  # the gradient of (w**2).sum()
    >>> RMSprop([w], lr=0.01).step()  # step 1: lr / sqrt(1 - alpha) = 0.1 each, whatever |g|
    >>> w.detach()
    tensor([  0.9000, -99.9000])
    """

    # fmt: off
    def __init__(self, params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0, momentum: float = 0, centered: bool = False):
        # fmt: on
        _check_nonnegative(lr, "lr", "learning rate")
        _check_nonnegative(eps, "eps", "epsilon value")
        _check_nonnegative(momentum, "momentum", "momentum value")
        _check_nonnegative(weight_decay, "weight_decay", "weight_decay value")
        _check_nonnegative(alpha, "alpha", "alpha value")
        defaults = dict(
            lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
            centered=centered,
        )  # fmt: skip
        _init(self, params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        """Update each parameter with a gradient; return ``closure()`` if given."""
        loss = _closure_loss(closure)
        for group in self.param_groups:
            lr, alpha, eps, mu = group["lr"], group["alpha"], group["eps"], group["momentum"]
            wd = group["weight_decay"]
            for p, g in _grads(self, group):
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["square_avg"] = torch.zeros_like(p)
                    if mu > 0:
                        state["momentum_buffer"] = torch.zeros_like(p)
                    if group["centered"]:
                        state["grad_avg"] = torch.zeros_like(p)
                state["step"] = int(state["step"]) + 1
                if wd != 0:
                    # g_t = ∇L + λ θ_{t-1}
                    g = g.add(p, alpha=wd)
                v = state["square_avg"]
                # v_t = α v_{t-1} + (1 − α) g_t²
                v.mul_(alpha).addcmul_(g, g, value=1 - alpha)
                if group["centered"]:
                    g_bar = state["grad_avg"]
                    # ḡ_t = α ḡ_{t-1} + (1 − α) g_t
                    g_bar.lerp_(g, 1 - alpha)
                    # √(v_t − ḡ_t²) + ε
                    denom = torch.addcmul(v, g_bar, g_bar, value=-1, out=_buffer_like(self, p))
                    denom.sqrt_().add_(eps)
                else:
                    # √v_t + ε
                    denom = torch.sqrt(v, out=_buffer_like(self, p)).add_(eps)
                if mu > 0:
                    b = state["momentum_buffer"]
                    # b_t = μ b_{t-1} + g_t / (√v_t + ε)
                    b.mul_(mu).addcdiv_(g, denom)
                    # θ_t = θ_{t-1} − γ b_t
                    p.add_(b, alpha=-lr)
                else:
                    # θ_t = θ_{t-1} − γ g_t / (√v_t + ε)
                    p.addcdiv_(g, denom, value=-lr)
        return loss


class Adam(torch.optim.Optimizer):
    r"""Adam: momentum on the gradient, RMSprop's scaling, and bias correction of both.

    .. math::

        g_t &= \nabla_\theta L(\theta_{t-1}) + \lambda\,\theta_{t-1} \\
        m_t &= \beta_1 m_{t-1} + (1 - \beta_1)\, g_t \\
        v_t &= \beta_2 v_{t-1} + (1 - \beta_2)\, g_t^2 \\
        \hat m_t &= m_t / (1 - \beta_1^t), \qquad \hat v_t = v_t / (1 - \beta_2^t) \\
        \theta_t &= \theta_{t-1} - \gamma\, \hat m_t / (\sqrt{\hat v_t} + \epsilon)

    With ``amsgrad=True``, :math:`\hat v_t` uses :math:`\max_{s \le t} v_s` instead of
    :math:`v_t`. The code divides :math:`\sqrt{v_t}` by the scalar :math:`\sqrt{1 - \beta_2^t}`
    and folds :math:`1/(1 - \beta_1^t)` into the step size, as torch does, so no tensor is ever
    multiplied by a bias correction:

    .. math::

        \theta_t = \theta_{t-1} - \frac{\gamma}{1 - \beta_1^t}\,
            \frac{m_t}{\sqrt{v_t} / \sqrt{1 - \beta_2^t} + \epsilon},

    the same number as the textbook form up to rounding.

    Parameters
    ----------
    params : collections.abc.Iterable
    lr : float, optional
        As in :class:`SGD`.
    betas : tuple of float, optional
        :math:`(\beta_1, \beta_2)`, decay rates of the two running averages, each in [0, 1).
    eps : float, optional
        :math:`\epsilon`, added to the denominator.
    weight_decay : float, optional
        :math:`\lambda`, the coefficient of the L2 penalty added to the gradient (use
        :class:`AdamW` for decoupled weight decay).
    amsgrad : bool, optional
        Use the running maximum of :math:`v_t` (AMSGrad).

    Examples
    --------
    >>> import torch
    >>> from dlref.optim import Adam
    >>> w = torch.nn.Parameter(torch.tensor([1.0, -100.0]))
    >>> opt = Adam([w], lr=0.1)
    >>> (w**2).sum().backward()
    >>> opt.step()  # step 1: m̂ / √v̂ = g / |g|, so each coordinate moves by lr
    >>> w.detach()
    tensor([  0.9000, -99.9000])
    """

    _decoupled = False

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        amsgrad: bool = False,
    ):
        _check_nonnegative(lr, "lr", "learning rate")
        _check_nonnegative(eps, "eps", "epsilon value")
        _check_betas(betas)
        _check_nonnegative(weight_decay, "weight_decay", "weight_decay value")
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad)
        _init(self, params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        """Update each parameter with a gradient; return ``closure()`` if given."""
        loss = _closure_loss(closure)
        for group in self.param_groups:
            lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
            wd, amsgrad = group["weight_decay"], group["amsgrad"]
            for p, g in _grads(self, group):
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                    if amsgrad:
                        state["max_exp_avg_sq"] = torch.zeros_like(p)
                # t ← t + 1 (int(): a state saved by torch holds a tensor)
                t = state["step"] = int(state["step"]) + 1
                m, v = state["exp_avg"], state["exp_avg_sq"]
                if wd != 0:
                    if self._decoupled:
                        # θ ← (1 − γλ) θ_{t-1}  (AdamW: decay θ, not the gradient)
                        p.mul_(1 - lr * wd)
                    else:
                        # g_t = ∇L + λ θ_{t-1}
                        g = g.add(p, alpha=wd)
                # m_t = β1 m_{t-1} + (1 − β1) g_t
                m.lerp_(g, 1 - beta1)
                # v_t = β2 v_{t-1} + (1 − β2) g_t²
                v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
                if amsgrad:
                    v_max = state["max_exp_avg_sq"]
                    # v_t ← max(v_1, …, v_t)
                    v = torch.maximum(v_max, v, out=v_max)
                # √v̂_t + ε = √v_t / √(1 − β2ᵗ) + ε
                denom = torch.sqrt(v, out=_buffer_like(self, p))
                denom.div_(math.sqrt(1 - beta2**t)).add_(eps)
                # θ_t = θ_{t-1} − γ m̂_t / (√v̂_t + ε),  m̂_t = m_t / (1 − β1ᵗ)
                p.addcdiv_(m, denom, value=-lr / (1 - beta1**t))
        return loss


class AdamW(Adam):
    r"""AdamW: Adam with decoupled weight decay (Loshchilov & Hutter).

    The weights decay by a factor :math:`1 - \gamma\lambda` before the Adam step, instead of
    :math:`\lambda\theta` being added to the gradient (where Adam's :math:`1/\sqrt{\hat v_t}`
    would rescale it, so parameters with large gradients would barely decay):

    .. math::

        \theta_t = (1 - \gamma\lambda)\,\theta_{t-1}
            - \gamma\, \hat m_t / (\sqrt{\hat v_t} + \epsilon),

    with :math:`m_t, v_t, \hat m_t, \hat v_t` as in :class:`Adam`, computed from the plain
    gradient. Arguments as :class:`Adam`, with ``weight_decay`` the decoupled coefficient
    :math:`\lambda`; only its default, ``1e-2``, differs.

    Examples
    --------
    >>> import torch
    >>> from dlref.optim import AdamW
    >>> w = torch.nn.Parameter(torch.tensor([1.0, -100.0]))
    >>> (w**2).sum().backward()  # gradient 2w
    >>> AdamW([w], lr=0.1, weight_decay=0.5).step()  # (1 - 0.05) w, then Adam's step of 0.1
    >>> w.detach()
    tensor([  0.8500, -94.9000])
    """

    _decoupled = True

    # fmt: off
    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False):
        # fmt: on
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad)


class UniformAverage(torch.optim.Optimizer):
    r"""The quiz's "running-average" optimizer: step along the mean of *all* past gradients.

    .. math::

        n &\leftarrow n + 1 \\
        g &\leftarrow \tfrac{1}{n}\, \nabla_\theta L(\theta) + \tfrac{n-1}{n}\, g
            \qquad (g = \text{the mean of the } n \text{ gradients seen so far}) \\
        \theta &\leftarrow \theta - \alpha\, g

    Every past gradient has the same weight :math:`1/n`, old and new alike. It is heavy-ball
    momentum with :math:`\beta = 1` (the buffer :math:`b = n g` sums the gradients) and a step
    :math:`\alpha / n` that shrinks with :math:`n`; on a quadratic it converges only
    sublinearly (see the conditioning page).

    Parameters
    ----------
    params : collections.abc.Iterable
        Parameters, or parameter groups.
    lr : float
        :math:`\alpha`, the learning rate.

    Examples
    --------
    >>> import torch
    >>> from dlref.optim import UniformAverage
    >>> w = torch.nn.Parameter(torch.tensor(0.0))
    >>> opt = UniformAverage([w], lr=1.0)
    >>> for grad in [3.0, 1.0, 2.0]:
    ...     w.grad = torch.tensor(grad)
    ...     opt.step()
    ...     print(f"{opt.state[w]['grad_avg'].item():.1f} {w.item():.1f}")
    3.0 -3.0
    2.0 -5.0
    2.0 -7.0
    """

    def __init__(self, params, lr: float):
        _check_nonnegative(lr, "lr", "learning rate")
        _init(self, params, dict(lr=lr))

    @torch.no_grad()
    def step(self, closure=None):
        """Update each parameter with a gradient; return ``closure()`` if given."""
        loss = _closure_loss(closure)
        for group in self.param_groups:
            for p, grad in _grads(self, group):
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["grad_avg"] = torch.zeros_like(p)
                n = state["step"] = state["step"] + 1  # n ← n + 1
                # g ← (1/n) ∇L + ((n−1)/n) g
                state["grad_avg"].lerp_(grad, 1 / n)
                # θ ← θ − α g
                p.add_(state["grad_avg"], alpha=-group["lr"])
        return loss
