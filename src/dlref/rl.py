r"""Policy-gradient reinforcement learning: a batched CartPole, returns, REINFORCE.

:class:`CartPole` is Gymnasium's ``CartPole-v1`` (same constants, Euler integrator, termination,
500-step truncation, reward and initial-state distribution) written for many environments at once
in plain torch tensors, so a rollout of a whole batch of episodes costs a few tensor operations a
step and runs on a GPU when given one. :func:`reinforce` trains a :class:`MLPPolicy` on it with
the score-function (REINFORCE) estimator, reward-to-go and a baseline.
:func:`bandit_policy_gradient` and :func:`score_function_samples` are the smallest case where the
true policy gradient is known in closed form, to check the estimator against.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from dlref._checks import (
    check_broadcast,
    check_dtype_of,
    check_float,
    check_generator,
    check_index_tensor,
    check_int,
    check_shape,
    check_tensor,
    is_int,
    is_real_number,
)

__all__ = [
    "discounted_returns",
    "bandit_policy_gradient",
    "score_function_samples",
    "CartPole",
    "MLPPolicy",
    "Batch",
    "rollout",
    "policy_gradient_loss",
    "History",
    "reinforce",
]

_BASELINES = ("none", "mean", "time")


# ---------------------------------------------------------------------------------------------
# Helpers: argument checks that name the argument.
# ---------------------------------------------------------------------------------------------


def _check_gamma(gamma: float) -> None:
    if not is_real_number(gamma) or not 0.0 <= gamma <= 1.0:
        raise ValueError(f"gamma must be a number in [0, 1], got {gamma!r}")


def _check_positive_int(name: str, x: object) -> None:
    if not is_int(x):
        raise TypeError(f"{name} must be an int, got {type(x).__name__} {x!r}")
    if x < 1:
        raise ValueError(f"{name} must be a positive int, got {x!r}")


def _check_optional_number(name: str, x: object) -> None:
    if x is not None and not is_real_number(x):
        raise TypeError(f"{name} must be a real number or None, got {type(x).__name__} {x!r}")


def _check_env_policy(env: object, policy: object) -> None:
    if not isinstance(env, CartPole):
        raise TypeError(f"env must be a CartPole, got {type(env).__name__}")
    if not callable(getattr(policy, "sample", None)):
        raise TypeError(
            f"policy must have a sample(obs, generator) method (an MLPPolicy), "
            f"got {type(policy).__name__}"
        )


def _check_loss_options(gamma, baseline, entropy_coef) -> None:
    _check_gamma(gamma)
    if not isinstance(baseline, str) or baseline not in _BASELINES:
        raise ValueError(f"baseline must be one of {_BASELINES}, got {baseline!r}")
    if not is_real_number(entropy_coef):
        raise TypeError(
            f"entropy_coef must be a real number, got {type(entropy_coef).__name__} "
            f"{entropy_coef!r}"
        )


def _check_actions(action: Tensor, num_envs: int, num_actions: int) -> None:
    if not isinstance(action, Tensor):
        raise TypeError(f"action must be a torch.Tensor, got {type(action).__name__}")
    if action.is_floating_point() or action.is_complex():
        raise TypeError(f"action must be an integer or bool tensor, got dtype {action.dtype}")
    if tuple(action.shape) != (num_envs,):
        raise ValueError(
            f"action has shape {tuple(action.shape)} but the environment has num_envs={num_envs}: "
            f"expected shape ({num_envs},)"
        )
    if action.dtype == torch.bool or action.numel() == 0:
        return  # False/True are actions 0/1
    if action.device.type != "cpu":  # checked on the device: no host sync per step
        in_range = ((action >= 0) & (action < num_actions)).all()
        message = f"action outside the action space {{0, ..., {num_actions - 1}}}"
        torch._assert_async(in_range, message)  # raises at the device's next sync if False
        return
    lo, hi = (v.item() for v in torch.aminmax(action))  # one call: checks stay cheap per step
    if lo < 0 or hi >= num_actions:
        value = lo if lo < 0 else hi
        raise ValueError(
            f"action holds {value}, outside the action space {{0, ..., {num_actions - 1}}}"
        )


# ---------------------------------------------------------------------------------------------
# Returns
# ---------------------------------------------------------------------------------------------


def discounted_returns(rewards: Tensor, dones: Tensor, gamma: float) -> Tensor:
    r"""Reward-to-go: the discounted sum of the rewards from each step to the end of its episode.

    .. math::

        G_t = r_t + \gamma\,(1 - d_t)\,G_{t+1},\qquad G_T = 0,

    where :math:`d_t = 1` when step :math:`t` ended an episode (terminated or truncated), so no
    reward of the next episode leaks into this one. A rollout that stops mid-episode counts only
    the rewards it saw (no bootstrap).

    Parameters
    ----------
    rewards : Tensor
        Shape (T,) for one environment, or time-major (T, num_envs).
    dones : Tensor
        Bool (or 0/1) tensor of the same shape: ``True`` where the step ended an episode.
    gamma : float
        Discount factor in [0, 1].

    Returns
    -------
    Tensor
        :math:`G_t`, the shape and dtype of ``rewards``.

    Examples
    --------
    >>> import torch
    >>> from dlref.rl import discounted_returns
    >>> r = torch.tensor([1.0, 1.0, 1.0, 1.0, 1.0])
    >>> d = torch.tensor([False, False, True, False, False])  # an episode ends at step 2
    >>> discounted_returns(r, d, gamma=0.5)
    tensor([1.7500, 1.5000, 1.0000, 1.5000, 1.0000])
    """
    check_float("rewards", rewards)
    _check_gamma(gamma)
    if not isinstance(dones, Tensor):
        raise TypeError(f"dones must be a torch.Tensor, got {type(dones).__name__}")
    if dones.is_complex():
        raise TypeError(f"dones must be a bool or real tensor, got dtype {dones.dtype}")
    if dones.shape != rewards.shape:
        raise ValueError(
            f"rewards has shape {tuple(rewards.shape)} but dones has shape "
            f"{tuple(dones.shape)}: they must match"
        )
    if rewards.dim() not in (1, 2):
        raise ValueError(
            f"rewards must have shape (T,) or (T, num_envs), got {tuple(rewards.shape)}"
        )
    keep = gamma * (1.0 - dones.to(rewards.dtype))  # gamma (1 - d_t): 0 at an episode's end
    returns = torch.empty_like(rewards)
    g = rewards.new_zeros(rewards.shape[1:])  # G_{t+1}, (num_envs,) or ()
    for t in range(rewards.shape[0] - 1, -1, -1):
        g = rewards[t] + keep[t] * g  # G_t
        returns[t] = g
    return returns


# ---------------------------------------------------------------------------------------------
# The score-function estimator on a k-armed bandit, where the true gradient is known
# ---------------------------------------------------------------------------------------------


def bandit_policy_gradient(logits: Tensor, rewards: Tensor) -> Tensor:
    r"""Exact gradient of a softmax policy's expected reward on a k-armed bandit.

    With :math:`\pi = \mathrm{softmax}(\theta)` and mean rewards :math:`r`, the objective
    :math:`J(\theta) = \sum_a \pi_a r_a` has the gradient

    .. math::

        \nabla_\theta J = \pi \odot (r - J).

    Parameters
    ----------
    logits : Tensor
        :math:`\theta`, shape (k,).
    rewards : Tensor
        Mean reward of each arm, shape (k,).

    Returns
    -------
    Tensor
        :math:`\nabla_\theta J`, shape (k,).

    Examples
    --------
    >>> import torch
    >>> from dlref.rl import bandit_policy_gradient
    >>> bandit_policy_gradient(torch.zeros(2), torch.tensor([0.0, 1.0]))
    tensor([-0.2500,  0.2500])
    """
    _check_bandit(logits, rewards)
    pi = logits.softmax(-1)  # pi_a
    J = (pi * rewards).sum()  # J = sum_a pi_a r_a
    return pi * (rewards - J)


def score_function_samples(
    logits: Tensor,
    rewards: Tensor,
    num_samples: int,
    baseline: float | Tensor = 0.0,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Single-sample REINFORCE estimates of the bandit policy gradient, one per row.

    Draw :math:`A \sim \pi = \mathrm{softmax}(\theta)`; each row is

    .. math::

        \hat g = (r_A - b)\,\nabla_\theta \log \pi_A = (r_A - b)\,(e_A - \pi).

    Its mean is :func:`bandit_policy_gradient` for every constant baseline :math:`b`, since
    :math:`\mathbb{E}[\nabla_\theta \log \pi_A] = 0`; its variance depends on :math:`b`.

    Parameters
    ----------
    logits : Tensor
        :math:`\theta`, shape (k,).
    rewards : Tensor
        Reward of each arm, shape (k,).
    num_samples : int
        Number of independent estimates n.
    baseline : float or Tensor, optional
        The constant :math:`b` subtracted from the reward.
    generator : torch.Generator, optional
        Source of randomness for the actions, on the device of ``logits``.

    Returns
    -------
    Tensor
        Shape (n, k): one estimate :math:`\hat g` per row.

    Examples
    --------
    >>> import torch
    >>> from dlref.rl import bandit_policy_gradient, score_function_samples
    >>> theta, r = torch.zeros(2), torch.tensor([0.0, 1.0])
    >>> g = score_function_samples(theta, r, 100_000, generator=torch.Generator().manual_seed(0))
    >>> g.mean(0).round(decimals=2), bandit_policy_gradient(theta, r)
    (tensor([-0.2500,  0.2500]), tensor([-0.2500,  0.2500]))
    """
    _check_bandit(logits, rewards)
    if not isinstance(num_samples, int) or isinstance(num_samples, bool) or num_samples < 1:
        raise ValueError(f"num_samples must be a positive int, got {num_samples!r}")
    if not (is_real_number(baseline) or isinstance(baseline, Tensor)):
        raise TypeError(
            f"baseline must be a real number or a tensor, got {type(baseline).__name__} "
            f"{baseline!r}"
        )
    check_generator(generator, logits.device)
    pi = logits.softmax(-1)  # (k,)
    a = torch.multinomial(pi.expand(num_samples, -1), 1, generator=generator).squeeze(1)  # (n,)
    score = nn.functional.one_hot(a, pi.shape[0]).to(pi.dtype) - pi  # e_A - pi, (n, k)
    return (rewards[a] - baseline).unsqueeze(1) * score  # (r_A - b) (e_A - pi), (n, k)


def _check_bandit(logits: Tensor, rewards: Tensor) -> None:
    check_float("logits", logits)
    check_float("rewards", rewards)
    if logits.dim() != 1 or rewards.shape != logits.shape:
        raise ValueError(
            f"logits has shape {tuple(logits.shape)} and rewards has shape "
            f"{tuple(rewards.shape)}: both must be (k,), one entry per arm"
        )


# ---------------------------------------------------------------------------------------------
# The environment
# ---------------------------------------------------------------------------------------------


class CartPole:
    r"""Gymnasium's ``CartPole-v1`` for ``num_envs`` environments at once, in torch tensors.

    The state :math:`s = (x, \dot x, \theta, \dot\theta)` moves by one explicit Euler step of
    :math:`\tau = 0.02` s under the force :math:`F = \pm 10` N of the action (0 pushes left,
    1 right):

    .. math::

        h &= \frac{F + m_p l \dot\theta^2 \sin\theta}{m_c + m_p},\qquad
        \ddot\theta = \frac{g \sin\theta - h \cos\theta}
                           {l\,\bigl(\tfrac43 - \tfrac{m_p \cos^2\theta}{m_c + m_p}\bigr)},\qquad
        \ddot x = h - \frac{m_p l\, \ddot\theta \cos\theta}{m_c + m_p},

        s_{t+1} &= s_t + \tau\,(\dot x, \ddot x, \dot\theta, \ddot\theta),

    with :math:`g = 9.8`, :math:`m_c = 1`, :math:`m_p = 0.1`, :math:`l = 0.5` (half the pole).
    Every step earns reward 1, the step that ends the episode included. An episode terminates
    when :math:`|x| > 2.4` or :math:`|\theta| > 12°` and is truncated after 500 steps. Finished
    environments restart at once from :math:`s \sim U(-0.05, 0.05)^4` (Gymnasium's
    ``AutoresetMode.SAME_STEP``): the state returned for them is the new episode's first state,
    and their last state is kept in :attr:`final_state`.

    Parameters
    ----------
    num_envs : int
        Number of environments stepped together.
    device : torch.device or str, optional
        Where the state lives (CUDA works).
    generator : torch.Generator, optional
        Source of the initial states; it lives on ``device`` (``torch.Generator(device)``).
    dtype : torch.dtype, optional
        Dtype of the state, float32 by default (Gymnasium's observations); float64 reproduces
        Gymnasium's internal state.

    Examples
    --------
    >>> import torch
    >>> from dlref.rl import CartPole
    >>> env = CartPole(3, generator=torch.Generator().manual_seed(0))
    >>> env.state = torch.zeros(3, 4)
    >>> state, reward, terminated, truncated = env.step(torch.tensor([0, 1, 1]))
    >>> state
    tensor([[ 0.0000, -0.1951,  0.0000,  0.2927],
            [ 0.0000,  0.1951,  0.0000, -0.2927],
            [ 0.0000,  0.1951,  0.0000, -0.2927]])
    >>> reward, terminated, truncated
    (tensor([1., 1., 1.]), tensor([False, False, False]), tensor([False, False, False]))
    """

    gravity = 9.8
    masscart = 1.0
    masspole = 0.1
    length = 0.5  # half the pole's length
    force_mag = 10.0
    tau = 0.02  # seconds per step
    x_threshold = 2.4
    theta_threshold_radians = 12 * 2 * math.pi / 360
    max_episode_steps = 500
    observation_size = 4
    num_actions = 2

    def __init__(
        self,
        num_envs: int,
        device: torch.device | str | None = None,
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        if not isinstance(num_envs, int) or isinstance(num_envs, bool) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive int, got {num_envs!r}")
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise TypeError(f"dtype must be a floating-point torch.dtype, got {dtype!r}")
        try:
            self.device = torch.device(device) if device is not None else torch.device("cpu")
        except (RuntimeError, TypeError):
            raise ValueError(
                f"device must name a torch device such as 'cpu', got {device!r}"
            ) from None
        check_generator(generator, self.device)
        self.num_envs = num_envs
        self.generator = generator
        self.dtype = dtype
        M = self.masspole + self.masscart  # total mass
        ml = self.masspole * self.length  # m_p l
        # Constants folded once, so a step is few tensor calls (each costs microseconds).
        self._F_over_M = torch.tensor([-self.force_mag, self.force_mag], dtype=dtype) / M
        self._F_over_M = self._F_over_M.to(self.device)
        self._ml_over_M = ml / M
        # the denominator of θ̈ divided by g, l (4/3 - m_p cos²θ / M) / g, is c0 - c1 cos²θ:
        self._c0 = torch.tensor(4.0 / 3.0 * self.length / self.gravity, dtype=dtype).to(self.device)
        self._c1 = ml / M / self.gravity
        self.reset()

    # The state is stored transposed, (4, num_envs): each variable is one contiguous row, which
    # makes every operation of a step cheaper than on the strided columns of (num_envs, 4).
    @property
    def state(self) -> Tensor:
        r"""The state :math:`(x, \dot x, \theta, \dot\theta)` of each environment, (num_envs, 4).

        May be assigned, e.g. to start every environment from a chosen state.
        """
        return self._state.T

    @state.setter
    def state(self, value: Tensor) -> None:
        check_float("state", value)
        if tuple(value.shape) != (self.num_envs, 4):
            raise ValueError(
                f"state must have shape ({self.num_envs}, 4), got {tuple(value.shape)}"
            )
        self._state = value.to(self.device, self.dtype).T.contiguous()

    @property
    def final_state(self) -> Tensor:
        """The state after the last step, before any restart, shape (num_envs, 4)."""
        return self._final_state.T

    def _initial_states(self, n: int) -> Tensor:
        """U(-0.05, 0.05) in every coordinate, shape (4, n)."""
        s = torch.empty(4, n, device=self.device, dtype=self.dtype)
        return s.uniform_(-0.05, 0.05, generator=self.generator)

    @property
    def steps(self) -> Tensor:
        """Steps taken in the current episode, (num_envs,) int64; may be assigned."""
        return self._steps

    @steps.setter
    def steps(self, value: Tensor) -> None:
        check_index_tensor("steps", value, self.max_episode_steps, "an episode")
        if tuple(value.shape) != (self.num_envs,):
            raise ValueError(f"steps must have shape ({self.num_envs},), got {tuple(value.shape)}")
        self._steps = value.to(self.device, torch.int64)

    def reset(self) -> Tensor:
        """Start a new episode in every environment; returns the state, (num_envs, 4)."""
        self._state = self._final_state = self._initial_states(self.num_envs)
        self._steps = torch.zeros(self.num_envs, dtype=torch.int64, device=self.device)
        return self.state

    def step(self, action: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Advance every environment by one step of 0.02 s.

        Parameters
        ----------
        action : Tensor
            Integer or bool, shape (num_envs,): 0 pushes the cart left, 1 right. An action
            out of range raises ``ValueError`` on the CPU; on an accelerator it is checked on
            the device without a host sync per step, and fails there.

        Returns
        -------
        state : Tensor
            (num_envs, 4), the new state; for finished environments the next episode's first.
        reward : Tensor
            (num_envs,), 1 for every step.
        terminated : Tensor
            (num_envs,) bool: the pole fell or the cart left the track on this step.
        truncated : Tensor
            (num_envs,) bool: the episode reached 500 steps on this step.
        """
        _check_actions(action, self.num_envs, self.num_actions)
        if action.dtype != torch.int64:
            action = action.long()  # a uint8 or bool index would be a mask to torch
        x, x_dot, theta, theta_dot = self._state  # rows, each (N,)
        cos, sin = theta.cos(), theta.sin()
        # h = (F + m_p l θ̇² sinθ) / M
        h = torch.addcmul(self._F_over_M[action], theta_dot.square(), sin, value=self._ml_over_M)
        # θ̈ = (g sinθ - h cosθ) / (l (4/3 - m_p cos²θ / M)), numerator and denominator over g
        theta_acc = torch.addcmul(sin, cos, h, value=-1.0 / self.gravity) / torch.addcmul(
            self._c0, cos, cos, value=-self._c1
        )
        x_acc = torch.addcmul(h, theta_acc, cos, value=-self._ml_over_M)  # ẍ = h - m_p l θ̈ cosθ / M
        derivative = torch.stack((x_dot, x_acc, theta_dot, theta_acc))  # ṡ, (4, N)
        state = torch.add(self._state, derivative, alpha=self.tau)  # s + τ ṡ
        terminated = (state[0].abs() > self.x_threshold) | (  # |x| > 2.4
            state[2].abs() > self.theta_threshold_radians  # |θ| > 12°
        )
        self._steps = self._steps + 1
        truncated = self._steps >= self.max_episode_steps
        done = terminated | truncated
        self._final_state = state
        # restart the finished environments (drawing for all is cheaper than selecting)
        self._state = torch.where(done, self._initial_states(self.num_envs), state)
        self._steps = self._steps.masked_fill(done, 0)
        reward = torch.ones(self.num_envs, dtype=self.dtype, device=self.device)
        return self.state, reward, terminated, truncated


# ---------------------------------------------------------------------------------------------
# Policy, rollout, loss
# ---------------------------------------------------------------------------------------------


class MLPPolicy(nn.Module):
    r"""A categorical policy :math:`\pi(a \mid s) = \mathrm{softmax}(f_\theta(s))_a`, f an MLP.

    :math:`f_\theta`: Linear(observation_size, hidden_size), tanh, Linear(hidden_size,
    num_actions).

    Parameters
    ----------
    observation_size : int
        Length of the state vector (4 for CartPole).
    num_actions : int
        Number of discrete actions (2 for CartPole).
    hidden_size : int, optional
        Width of the hidden layer.

    Examples
    --------
    >>> import torch
    >>> from dlref.rl import MLPPolicy
    >>> _ = torch.manual_seed(0)
    >>> policy = MLPPolicy(4, 2)
    >>> obs = torch.zeros(3, 4)
    >>> policy(obs).shape, policy.sample(obs).shape
    (torch.Size([3, 2]), torch.Size([3]))
    """

    def __init__(self, observation_size: int, num_actions: int, hidden_size: int = 64) -> None:
        for name, v in (
            ("observation_size", observation_size),
            ("num_actions", num_actions),
            ("hidden_size", hidden_size),
        ):
            _check_positive_int(name, v)
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(observation_size, hidden_size),
            nn.Tanh(),
            nn.Linear(hidden_size, num_actions),
        )

    def forward(self, obs: Tensor) -> Tensor:
        """Logits, shape (..., num_actions), for states of shape (..., observation_size)."""
        self._check_obs(obs)
        return self.net(obs)

    def _check_obs(self, obs: object) -> None:
        check_float("obs", obs)
        check_shape("obs", obs, (..., self.net[0].in_features), "(..., observation_size)")
        check_dtype_of("obs", obs, self.net[0].weight)

    @torch.no_grad()
    def sample(self, obs: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Draw :math:`a \\sim \\pi(\\cdot \\mid s)` for a batch of states (N, obs) → (N,).

        ``generator``, if given, lives on the device of ``obs``.
        """
        cdf = self(obs).softmax(-1).cumsum(-1)  # P(a' <= a | s), (N, A)
        check_generator(generator, cdf.device)
        u = torch.rand(cdf.shape[:-1] + (1,), generator=generator, device=cdf.device)
        a = (u > cdf).sum(-1)  # inverse CDF: the first a with u <= P(a' <= a)
        return a.clamp_(max=cdf.shape[-1] - 1)  # u above a rounded-down cdf[-1]

    def log_prob(self, obs: Tensor, action: Tensor) -> Tensor:
        r""":math:`\log \pi(a \mid s)` for states (N, obs) and actions (N,) → (N,)."""
        self._check_obs(obs)
        check_tensor("action", action)
        action = action.long()  # as torch.distributions.Categorical: bool and float too
        check_index_tensor("action", action, self.net[-1].out_features, "the actions")
        check_broadcast(action=action.shape, obs=obs.shape[:-1])
        logp = self(obs).log_softmax(-1)  # (N, A)
        # broadcast the actions against the batch of states, as torch.distributions does
        index, logp = torch.broadcast_tensors(action.unsqueeze(-1), logp)  # (N, A) each
        return logp.gather(-1, index[..., :1]).squeeze(-1)


@dataclass
class Batch:
    """Whole episodes, time-major, one per environment; ``mask`` marks the steps that count.

    Examples
    --------
    >>> import torch
    >>> from dlref.rl import Batch
    >>> T, N = 3, 2
    >>> batch = Batch(torch.zeros(T, N, 4), torch.zeros(T, N, dtype=torch.long), torch.ones(T, N),
    ...               torch.zeros(T, N, dtype=torch.bool), torch.ones(T, N, dtype=torch.bool))
    >>> int(batch.mask.sum())  # steps that count
    6
    """

    obs: Tensor  # (T, N, 4)
    actions: Tensor  # (T, N)
    rewards: Tensor  # (T, N)
    dones: Tensor  # (T, N)
    mask: Tensor  # (T, N): step t belongs to env n's first episode


@torch.no_grad()
def rollout(env: CartPole, policy: MLPPolicy, generator: torch.Generator | None = None) -> Batch:
    """Play one whole episode in each of ``env.num_envs`` environments, without autograd.

    The environments are reset, then stepped together until every one has finished its
    episode; the steps of an environment after its episode ended (it restarted automatically)
    are masked out.

    Parameters
    ----------
    env : CartPole
        The batched environment; its ``num_envs`` is the number of episodes.
    policy : MLPPolicy
        Samples the actions.
    generator : torch.Generator, optional
        Source of the action samples, on ``env.device``.

    Returns
    -------
    Batch
        Time-major tensors (T, num_envs), T the longest episode.

    Examples
    --------
    >>> import torch
    >>> from dlref.rl import CartPole, MLPPolicy, rollout
    >>> _ = torch.manual_seed(0)
    >>> env = CartPole(4, generator=torch.Generator().manual_seed(0))
    >>> batch = rollout(env, MLPPolicy(4, 2), torch.Generator().manual_seed(0))
    >>> batch.mask.sum(0)  # episode lengths
    tensor([36, 13, 11, 38])
    """
    _check_env_policy(env, policy)
    check_generator(generator, env.device)
    obs = env.reset()
    running = torch.ones(env.num_envs, dtype=torch.bool, device=env.device)
    trajectory = []
    while True:
        action = policy.sample(obs, generator)
        next_obs, reward, terminated, truncated = env.step(action)
        done = terminated | truncated
        trajectory.append((obs, action, reward, done, running))
        running = running & ~done
        obs = next_obs
        if not running.any():
            break
    obs, actions, rewards, dones, mask = (torch.stack(x) for x in zip(*trajectory, strict=True))
    return Batch(obs, actions, rewards, dones, mask)


def policy_gradient_loss(
    policy: MLPPolicy,
    batch: Batch,
    gamma: float = 0.99,
    baseline: str = "time",
    normalize_advantages: bool = True,
    entropy_coef: float = 0.0,
) -> Tensor:
    r"""The REINFORCE surrogate loss of a batch of episodes, one forward pass for all steps.

    .. math::

        L(\theta) = -\frac1{|\mathcal D|}\sum_{(s_t, a_t) \in \mathcal D}
                    \log \pi_\theta(a_t \mid s_t)\, \hat A_t
                    \;-\; \beta\, \frac1{|\mathcal D|}\sum_t \mathcal H[\pi_\theta(\cdot\mid s_t)],
        \qquad \hat A_t = G_t - b_t,

    whose gradient is the policy-gradient estimate; :math:`G_t` is the reward-to-go
    (:func:`discounted_returns`) and :math:`b_t` the baseline. As usual, step :math:`t` is not
    weighted by :math:`\gamma^t`: for :math:`\gamma < 1` this is a biased approximation of the
    gradient of the discounted return :math:`\mathbb{E}[\sum_t \gamma^t r_t]`, which it matches for
    :math:`\gamma = 1` (the policy-gradient page shows the size of the bias).

    Parameters
    ----------
    policy : MLPPolicy
        The policy being trained.
    batch : Batch
        Episodes from :func:`rollout`.
    gamma : float, optional
        Discount factor in [0, 1].
    baseline : {"time", "mean", "none"}, optional
        ``"time"``: :math:`b_t` is the mean reward-to-go of the batch's episodes still running
        at step t; ``"mean"``: one number, the mean over all steps of the batch; ``"none"``:
        :math:`b = 0`.
    normalize_advantages : bool, optional
        Divide :math:`\hat A` by its standard deviation over the batch (after subtracting its
        mean), so the step size does not depend on the scale of the returns.
    entropy_coef : float, optional
        :math:`\beta`, weight of the entropy bonus.

    Returns
    -------
    Tensor
        Scalar loss.

    Examples
    --------
    >>> import torch
    >>> from dlref.rl import CartPole, MLPPolicy, policy_gradient_loss, rollout
    >>> _ = torch.manual_seed(0)
    >>> env, policy = CartPole(4, generator=torch.Generator().manual_seed(0)), MLPPolicy(4, 2)
    >>> batch = rollout(env, policy, torch.Generator().manual_seed(0))
    >>> loss = policy_gradient_loss(policy, batch, gamma=0.99)
    >>> loss.shape, loss.requires_grad
    (torch.Size([]), True)
    """
    if not callable(policy):
        raise TypeError(f"policy must be callable (an MLPPolicy), got {type(policy).__name__}")
    if not isinstance(batch, Batch):
        raise TypeError(f"batch must be a Batch (from rollout), got {type(batch).__name__}")
    _check_loss_options(gamma, baseline, entropy_coef)
    m = batch.mask
    G = discounted_returns(batch.rewards, batch.dones, gamma)  # G_t, (T, N)
    if baseline == "time":
        n_t = m.sum(1, keepdim=True).clamp(min=1)  # episodes running at step t, (T, 1)
        G = G - (G * m).sum(1, keepdim=True) / n_t  # G_t - b_t
    steps = m.nonzero(as_tuple=True)  # (t, n) of the steps that count: one host sync, not three
    A = G[steps]  # (|D|,)
    if baseline == "mean":
        A = A - A.mean()
    if normalize_advantages and A.numel() > 1:
        A = (A - A.mean()) / (A.std() + 1e-8)
    logits = policy(batch.obs[steps])  # one forward pass for every step of the batch, (|D|, A)
    logp = logits.log_softmax(-1)
    logp_a = logp.gather(-1, batch.actions[steps].unsqueeze(-1)).squeeze(-1)  # log pi(a_t | s_t)
    loss = -(logp_a * A).mean()
    if entropy_coef:
        entropy = -(logp.exp() * logp).sum(-1).mean()  # H[pi(.|s_t)]
        loss = loss - entropy_coef * entropy
    return loss


# ---------------------------------------------------------------------------------------------
# REINFORCE
# ---------------------------------------------------------------------------------------------


@dataclass
class History:
    """What :func:`reinforce` saw, one entry per update (episode returns: one per episode).

    Examples
    --------
    >>> from dlref.rl import History
    >>> History(episode_returns=[10.0, 20.0, 30.0]).last_mean(2)
    25.0
    """

    episode_returns: list[float] = field(default_factory=list)
    mean_returns: list[float] = field(default_factory=list)  # mean of the batch's episodes
    losses: list[float] = field(default_factory=list)
    env_steps: list[int] = field(default_factory=list)  # cumulative, steps of counted episodes
    seconds: list[float] = field(default_factory=list)  # cumulative training time
    solved_at: int | None = None  # index of the update that reached the target

    def last_mean(self, n: int = 100) -> float:
        """Mean return of the last ``n`` episodes."""
        n = check_int("n", n)
        last = self.episode_returns[-n:]
        return sum(last) / max(len(last), 1)


def reinforce(
    env: CartPole,
    policy: MLPPolicy,
    optimizer: torch.optim.Optimizer,
    num_updates: int = 100,
    gamma: float = 0.99,
    baseline: str = "time",
    normalize_advantages: bool = True,
    entropy_coef: float = 0.0,
    target_return: float | None = None,
    max_seconds: float | None = None,
    max_env_steps: int | None = None,
    generator: torch.Generator | None = None,
) -> History:
    r"""Train ``policy`` with REINFORCE, one batch of ``env.num_envs`` whole episodes per update.

    Each update: :func:`rollout` (no autograd), then :func:`policy_gradient_loss` on all the
    batch's steps in one forward pass, one optimizer step. The gradient estimate is

    .. math::

        \nabla_\theta J \approx \frac1{|\mathcal D|}\sum_{t}
            \nabla_\theta \log \pi_\theta(a_t \mid s_t)\,(G_t - b_t),

    without the factor :math:`\gamma^t` of the exact gradient of the discounted return: the
    usual, biased approximation when :math:`\gamma < 1` (see :func:`policy_gradient_loss`).

    Parameters
    ----------
    env : CartPole
        Batched environment; ``num_envs`` episodes per update.
    policy : MLPPolicy
        The policy to train.
    optimizer : torch.optim.Optimizer
        Optimizer over the policy's parameters (any object with ``zero_grad()`` and ``step()``).
    num_updates : int, optional
        Most updates to run.
    gamma, baseline, normalize_advantages, entropy_coef
        As in :func:`policy_gradient_loss`.
    target_return : float, optional
        Stop once the mean return of the last 100 episodes reaches it.
    max_seconds : float, optional
        Stop after this much training time.
    max_env_steps : int, optional
        Stop after this many environment steps (a budget in samples).
    generator : torch.Generator, optional
        Source of the action samples, on ``env.device``.

    Returns
    -------
    History
        Episode returns, losses, cumulative env steps and seconds, per update.

    Examples
    --------
    >>> import torch
    >>> from dlref.rl import CartPole, MLPPolicy, reinforce
    >>> _ = torch.manual_seed(0)
    >>> env, policy = CartPole(16, generator=torch.Generator().manual_seed(0)), MLPPolicy(4, 2)
    >>> opt = torch.optim.SGD(policy.parameters(), lr=0.1)
    >>> history = reinforce(env, policy, opt, num_updates=3)
    >>> len(history.losses), len(history.episode_returns)
    (3, 48)
    """
    _check_env_policy(env, policy)
    if not all(callable(getattr(optimizer, m, None)) for m in ("zero_grad", "step")):
        raise TypeError(  # a torch.optim.Optimizer, or any object with its two methods
            "optimizer must be a torch.optim.Optimizer (or have zero_grad() and step()), "
            f"got {type(optimizer).__name__}"
        )
    if not is_int(num_updates):
        raise TypeError(f"num_updates must be an int, got {type(num_updates).__name__}")
    if num_updates < 0:
        raise ValueError(f"num_updates must be non-negative, got {num_updates}")
    _check_loss_options(gamma, baseline, entropy_coef)
    for name, v in (
        ("target_return", target_return),
        ("max_seconds", max_seconds),
        ("max_env_steps", max_env_steps),
    ):
        _check_optional_number(name, v)
    check_generator(generator, env.device)
    history = History()
    steps, start = 0, time.perf_counter()
    for update in range(num_updates):
        batch = rollout(env, policy, generator)
        loss = policy_gradient_loss(
            policy, batch, gamma, baseline, normalize_advantages, entropy_coef
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

        lengths = batch.mask.sum(0)  # reward 1 per step, so return = length
        returns = (batch.rewards * batch.mask).sum(0)
        # one copy to the host per update (on a GPU each copy waits for the device)
        numbers = (returns, returns.mean(), loss.detach(), lengths.sum())
        *episode_returns, mean_return, loss_value, new_steps = torch.cat(
            [x.double().reshape(-1) for x in numbers]
        ).tolist()
        steps += int(new_steps)
        history.episode_returns += episode_returns
        history.mean_returns.append(mean_return)
        history.losses.append(loss_value)
        history.env_steps.append(steps)
        history.seconds.append(time.perf_counter() - start)
        if target_return is not None and history.last_mean(100) >= target_return:
            history.solved_at = update
            break
        if max_seconds is not None and history.seconds[-1] >= max_seconds:
            break
        if max_env_steps is not None and steps >= max_env_steps:
            break
    return history
