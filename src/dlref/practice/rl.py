"""Exercises on policy gradients: discounted returns with episode boundaries, and the REINFORCE
loss with a baseline. The references are written here; ``tests/test_practice.py`` checks them
against a plain Python loop and against autograd."""

from __future__ import annotations

import torch
from torch import Tensor

from dlref._checks import is_real_number
from dlref.practice._cases import bad_input, rand, randn, shape_check, tensor, values_check
from dlref.practice._grader import Check, Mistake, register

PAGE = "topics/policy-gradient.html"
RETURNS = f"{PAGE}#reward-to-go-respects-episode-boundaries"
REINFORCE = f"{PAGE}#reinforce"
BASELINE = f"{PAGE}#which-baseline"

# ------------------------------------------------------------------------------- references


def _returns(rewards, dones, gamma, how=""):
    if not is_real_number(gamma) or not 0 <= gamma <= 1:
        raise ValueError(f"gamma must be a number in [0, 1], got {gamma!r}")
    if rewards.shape != dones.shape:
        raise ValueError(
            f"rewards has shape {tuple(rewards.shape)} but dones has shape "
            f"{tuple(dones.shape)}: they must match"
        )
    alive = 1.0 - dones.to(rewards.dtype)  # 1 - done_t
    if how == "ignore_dones":
        alive = torch.ones_like(alive)
    T = rewards.shape[-1]
    G = torch.zeros_like(rewards)
    nxt = torch.zeros_like(rewards[..., 0])  # G_T = 0
    for t in reversed(range(T)):
        cont = alive[..., t - 1] if how == "done_one_step_late" and t > 0 else alive[..., t]
        if how == "done_one_step_late" and t == 0:
            cont = torch.ones_like(cont)
        r = rewards[..., t]
        G[..., t] = r + gamma * cont * nxt  # G_t = r_t + gamma (1 - done_t) G_{t+1}
        nxt = G[..., t]
    return G


def discounted_returns_reference(rewards: Tensor, dones: Tensor, gamma: float) -> Tensor:
    """The reference: :math:`G_t = r_t + \\gamma (1 - d_t) G_{t+1}`, computed backwards.

    Parameters
    ----------
    rewards : Tensor
        :math:`r_t`, shape (\\*, T), time last.
    dones : Tensor
        :math:`d_t`, bool or 0/1, shaped like ``rewards``: the episode ends after step
        :math:`t`.
    gamma : float
        The discount, in [0, 1].

    Returns
    -------
    Tensor
        :math:`G_t`, shaped like ``rewards``.

    Examples
    --------
    >>> import torch
    >>> from dlref.practice.rl import discounted_returns_reference
    >>> rewards = torch.ones(2, 3, dtype=torch.float64)
    >>> dones = torch.tensor([[False, False, False], [False, True, False]])
    >>> discounted_returns_reference(rewards, dones, gamma=0.5)  # row 1: an episode ends at t = 1
    tensor([[1.7500, 1.5000, 1.0000],
            [1.5000, 1.0000, 1.0000]], dtype=torch.float64)
    """
    return _returns(rewards, dones, gamma)


def _returns_gamma_power_from_start(rewards, dones, gamma):
    T = rewards.shape[-1]
    w = gamma ** torch.arange(T, dtype=rewards.dtype)  # gamma^k, from the episode's first step
    G = torch.zeros_like(rewards)
    for t in range(T):
        G[..., t] = (rewards[..., t:] * w[t:]).sum(-1)
    return G


def _returns_undiscounted_forward(rewards, dones, gamma):
    return rewards.cumsum(-1)


def _reinforce(logp, returns, baseline, how=""):
    if logp.shape != returns.shape or logp.shape != baseline.shape:
        raise ValueError(
            f"logp {tuple(logp.shape)}, returns {tuple(returns.shape)} and "
            f"baseline {tuple(baseline.shape)} must have one shape"
        )
    advantage = returns + baseline if how == "baseline_added" else returns - baseline  # A_t
    a = advantage if how == "not_detached" else advantage.detach()
    terms = a * logp  # A_t log pi(a_t | s_t)
    loss = terms.sum() if how == "sum" else terms.mean()
    return {"advantage": advantage, "loss": loss if how == "sign" else -loss}


def reinforce_loss_reference(logp: Tensor, returns: Tensor, baseline: Tensor) -> dict:
    """The reference: :math:`A = G - b`, :math:`L = -\\mathrm{mean}(\\mathrm{sg}(A) \\log\\pi)`.

    :math:`\\mathrm{sg}` stops the gradient: the loss's gradient with respect to
    :math:`\\log\\pi` is :math:`-A / n`, and the baseline gets none through it.

    Parameters
    ----------
    logp, returns, baseline : Tensor
        :math:`\\log\\pi(a_t \\mid s_t)`, :math:`G_t` and :math:`b_t`, one shape.

    Returns
    -------
    dict
        ``"advantage"`` (shaped like ``logp``) and ``"loss"`` (shape ()).

    Examples
    --------
    >>> import math, torch
    >>> from dlref.practice.rl import reinforce_loss_reference
    >>> logp = torch.full((2,), math.log(0.5), dtype=torch.float64, requires_grad=True)
    >>> G, b = torch.tensor([3.0, 0.0], dtype=torch.float64), torch.ones(2, dtype=torch.float64)
    >>> out = reinforce_loss_reference(logp, G, b)
    >>> out["advantage"], round(out["loss"].item(), 4)  # -mean(A log 0.5) = 0.5 log 2
    (tensor([ 2., -1.], dtype=torch.float64), 0.3466)
    >>> torch.autograd.grad(out["loss"], logp)[0]  # -A / 2
    tensor([-1.0000,  0.5000], dtype=torch.float64)
    """
    return _reinforce(logp, returns, baseline)


def _v(how):
    def fn(logp, returns, baseline):
        return _reinforce(logp, returns, baseline, how)

    return fn


# ------------------------------------------------------------------------------------ cases


def _ret_case(shape, seed, gamma=0.9, p_done=0.3):
    return {
        "rewards": randn(*shape, seed=seed),
        "dones": rand(*shape, seed=seed + 1) < p_done,
        "gamma": gamma,
    }


def _rl_case(shape, seed):
    return {
        "logp": -rand(*shape, seed=seed) * 3,
        "returns": randn(*shape, seed=seed + 1) * 5,
        "baseline": randn(*shape, seed=seed + 2),
    }


RET_STUB = r'''
import torch
from torch import Tensor


def discounted_returns(rewards: Tensor, dones: Tensor, gamma: float) -> Tensor:
    r"""Discounted return at every step of a rollout that may hold several episodes.

        G_t = r_t + gamma * (1 - done_t) * G_{t+1},   G_T = 0

    done_t is True when the episode ends at step t (after reward r_t): the return does not
    run past it. rewards: (*, T) float; dones: (*, T) bool; returns (*, T).
    Raise a ValueError for gamma outside [0, 1] or dones of another shape.
    """
    raise NotImplementedError
'''

RF_STUB = r'''
import torch
from torch import Tensor


def reinforce_loss(logp: Tensor, returns: Tensor, baseline: Tensor) -> dict:
    r"""The REINFORCE loss with a baseline, whose gradient is the policy gradient estimate.

        A_t = G_t - b_t                      (the advantage; no gradient flows through it)
        loss = -mean_t( A_t * log pi(a_t | s_t) )

    logp: log pi(a_t | s_t) of the actions taken, any shape, differentiable; returns, baseline:
    the same shape. Return a dict with "advantage" and "loss" (0-d). The baseline lowers the
    variance only: the gradient with respect to the baseline (a value network) must be zero.
    Raise a ValueError when the shapes differ.
    """
    raise NotImplementedError
'''

register(
    reference=discounted_returns_reference,
    stub=RET_STUB,
    summary="discounted returns that stop at episode boundaries",
    checks=(
        shape_check(lambda: [_ret_case((3,), 0)]),
        values_check(
            lambda: [
                {
                    "rewards": tensor([1.0, 1.0, 1.0]),
                    "dones": torch.tensor([False] * 3),
                    "gamma": 0.5,
                },
                {
                    "rewards": tensor([1.0, 2.0, 3.0, 4.0]),
                    "dones": torch.tensor([False, True, False, False]),
                    "gamma": 0.5,
                },
            ]
        ),
        Check(
            "random rollouts with batch dimensions",
            lambda: [_ret_case((2, 6), 10), _ret_case((3, 2, 8), 20, gamma=0.99)],
        ),
        Check(
            "edge: length 1, gamma 0 and 1, every step done, empty batch",
            lambda: [
                _ret_case((2, 1), 30),
                _ret_case((5,), 40, gamma=0.0),
                _ret_case((5,), 50, gamma=1.0),
                _ret_case((4,), 60, p_done=1.1),
                _ret_case((0, 4), 70),
            ],
        ),
        bad_input(
            "gamma = 1.5", "gamma must be in [0, 1]", lambda: [_ret_case((3,), 80, gamma=1.5)]
        ),
    ),
    difficulty="easy",
    page=RETURNS,
    mistakes=(
        Mistake(
            "ignores_episode_boundaries",
            lambda rewards, dones, gamma: _returns(rewards, dones, gamma, "ignore_dones"),
            "the return ran past the end of an episode: multiply by (1 - done_t) so the "
            "next episode's rewards do not count.",
            RETURNS,
        ),
        Mistake(
            "done_one_step_late",
            lambda rewards, dones, gamma: _returns(rewards, dones, gamma, "done_one_step_late"),
            "done_t cuts the link between step t and t + 1; you cut it one step late "
            "(between t + 1 and t + 2).",
            RETURNS,
        ),
        Mistake(
            "discount_from_start",
            _returns_gamma_power_from_start,
            "you weighted r_k by gamma^k from the start of the rollout: G_t discounts "
            "by gamma^(k - t), from step t.",
            RETURNS,
        ),
        Mistake(
            "cumulative_sum_forward",
            _returns_undiscounted_forward,
            "you summed the past rewards (a forward cumsum): the return is the discounted "
            "sum of the future rewards, computed backwards.",
            RETURNS,
        ),
    ),
)

register(
    reference=reinforce_loss_reference,
    stub=RF_STUB,
    summary="the REINFORCE loss with a baseline: advantage and loss",
    checks=(
        shape_check(lambda: [_rl_case((2, 3), 0)]),
        values_check(
            lambda: [
                {
                    "logp": tensor([-0.5, -1.0]),
                    "returns": tensor([2.0, 0.0]),
                    "baseline": tensor([1.0, 1.0]),
                }
            ]
        ),
        Check(
            "random shapes with batch dimensions",
            lambda: [_rl_case((4, 5), 10), _rl_case((2, 3, 4), 20)],
        ),
        Check(
            "gradient of the loss vs the reference (logp and baseline)",
            lambda: [_rl_case((3, 4), 30)],
            kind="grad",
            grad_of="loss",
            grad_wrt=("logp", "baseline"),
        ),
        Check("edge: one step", lambda: [_rl_case((1,), 40)]),
        bad_input(
            "shapes differ",
            "logp (3, 4), returns (3, 5)",
            lambda: [{**_rl_case((3, 4), 50), "returns": randn(3, 5, seed=51)}],
        ),
    ),
    difficulty="medium",
    page=REINFORCE,
    outputs=("advantage", "loss"),
    mistakes=(
        Mistake(
            "sign",
            _v("sign"),
            "the loss is minus the mean of A log pi: minimising it raises the "
            "log-probability of actions with a positive advantage.",
            REINFORCE,
        ),
        Mistake(
            "baseline_added",
            _v("baseline_added"),
            "the advantage is G - b: the baseline is subtracted.",
            BASELINE,
        ),
        Mistake(
            "baseline_not_detached",
            _v("not_detached"),
            "gradient flows into the baseline through A: detach the advantage "
            "(A.detach()); the baseline is fitted by its own loss.",
            BASELINE,
        ),
        Mistake(
            "sum_not_mean",
            _v("sum"),
            "you summed over the steps; this loss is the mean over every step.",
            REINFORCE,
        ),
    ),
)
