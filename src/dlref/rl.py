r"""Policy-gradient reinforcement learning: returns, the score-function estimator, REINFORCE.

:func:`reinforce` trains a :class:`MLPPolicy` on the batched :class:`~dlref.cartpole.CartPole`
(re-exported here) with the score-function (REINFORCE) estimator, reward-to-go and a baseline.
:func:`bandit_policy_gradient` and :func:`score_function_samples` are the smallest case where the
true policy gradient is known in closed form, to check the estimator against.
"""

from __future__ import annotations

import numbers
import time
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from dlref._checks import (
    check_broadcast,
    check_callable,
    check_choice,
    check_dtype_of,
    check_float,
    check_generator,
    check_in_range,
    check_index_tensor,
    check_instance,
    check_int,
    check_optional_real,
    check_real,
    check_shape,
    check_tensor,
)
from dlref.cartpole import CartPole  # re-export: the environment lives in dlref.cartpole

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
        Shape (T,) for one environment, or time-major (T, num_envs) (any trailing dimensions).
    dones : Tensor
        Bool (or 0/1) tensor of the same shape: ``True`` (nonzero) where the step ended an
        episode.
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
    check_int("rewards.dim()", rewards.dim())  # time first: (T, ...)
    check_tensor("dones", dones)
    check_shape("dones", dones, tuple(rewards.shape), "rewards.shape")
    check_in_range("gamma", gamma, 0, 1, closed=True)
    # gamma (1 - d_t): 0 at the last step of an episode
    keep = gamma * (dones == 0).to(rewards.dtype)
    returns = torch.empty_like(rewards)
    g = rewards.new_zeros(rewards.shape[1:])  # G_T = 0, (num_envs,) or ()
    for t in range(rewards.shape[0] - 1, -1, -1):
        # G_t = r_t + gamma (1 - d_t) G_{t+1}
        g = rewards[t] + keep[t] * g
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
    check_float("logits", logits)
    check_float("rewards", rewards)
    check_shape("logits", logits, (None,), "(k,)")
    check_shape("rewards", rewards, tuple(logits.shape), "logits.shape")
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
    check_float("logits", logits)
    check_float("rewards", rewards)
    check_shape("logits", logits, (None,), "(k,)")
    check_shape("rewards", rewards, tuple(logits.shape), "logits.shape")
    check_int("num_samples", num_samples)
    check_instance("baseline", baseline, (numbers.Real, Tensor), "real number or a tensor")
    check_generator(generator, logits.device)
    pi = logits.softmax(-1)  # (k,)
    a = torch.multinomial(pi.expand(num_samples, -1), 1, generator=generator).squeeze(1)  # (n,)
    score = nn.functional.one_hot(a, pi.shape[0]).to(pi.dtype) - pi  # e_A - pi, (n, k)
    return (rewards[a] - baseline).unsqueeze(1) * score  # (r_A - b) (e_A - pi), (n, k)


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
        check_int("observation_size", observation_size)
        check_int("num_actions", num_actions)
        check_int("hidden_size", hidden_size)
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
    are masked out. On the CPU the loop stops once every episode has ended. On an accelerator,
    where reading that flag would make the host wait for the device at every step, it runs the
    whole horizon ``env.max_episode_steps`` (every episode ends by then), reading nothing.

    Parameters
    ----------
    env : ~dlref.cartpole.CartPole
        The batched environment; its ``num_envs`` is the number of episodes.
    policy : MLPPolicy
        Samples the actions.
    generator : torch.Generator, optional
        Source of the action samples, on ``env.device``.

    Returns
    -------
    Batch
        Time-major tensors (T, num_envs), T the longest episode on the CPU and
        ``env.max_episode_steps`` on an accelerator.

    Examples
    --------
    >>> import torch
    >>> from dlref.cartpole import CartPole
    >>> from dlref.rl import MLPPolicy, rollout
    >>> _ = torch.manual_seed(0)
    >>> env = CartPole(4, generator=torch.Generator().manual_seed(0))
    >>> batch = rollout(env, MLPPolicy(4, 2), torch.Generator().manual_seed(0))
    >>> batch.mask.sum(0)  # episode lengths
    tensor([36, 13, 11, 38])
    """
    check_instance("env", env, CartPole)
    check_callable("policy.sample", getattr(policy, "sample", None))
    check_generator(generator, env.device)
    obs = env.reset()
    running = torch.ones(env.num_envs, dtype=torch.bool, device=env.device)
    read_is_free = env.device.type == "cpu"  # elsewhere a read is a host sync
    trajectory = []
    for _ in range(env.max_episode_steps):
        action = policy.sample(obs, generator)
        next_obs, reward, terminated, truncated = env.step(action)
        done = terminated | truncated
        trajectory.append((obs, action, reward, done, running))
        running = running & ~done
        obs = next_obs
        if read_is_free and not running.any():
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
    >>> from dlref.cartpole import CartPole
    >>> from dlref.rl import MLPPolicy, policy_gradient_loss, rollout
    >>> _ = torch.manual_seed(0)
    >>> env, policy = CartPole(4, generator=torch.Generator().manual_seed(0)), MLPPolicy(4, 2)
    >>> batch = rollout(env, policy, torch.Generator().manual_seed(0))
    >>> loss = policy_gradient_loss(policy, batch, gamma=0.99)
    >>> loss.shape, loss.requires_grad
    (torch.Size([]), True)
    """
    check_callable("policy", policy)
    check_instance("batch", batch, Batch, "Batch (from rollout)")
    check_in_range("gamma", gamma, 0, 1, closed=True)
    check_choice("baseline", baseline, _BASELINES)
    check_real("entropy_coef", entropy_coef)
    # Means over D (the steps that count): sums weighted by the mask, no sync.
    G = discounted_returns(batch.rewards, batch.dones, gamma)  # G_t, (T, N)
    m = batch.mask.to(G.dtype)  # 1 for the steps in D, (T, N)
    n = m.sum()  # |D|
    if baseline == "time":
        # b_t: mean G_t of the episodes still running at step t
        n_t = m.sum(1, keepdim=True).clamp(min=1)  # (T, 1)
        G = G - (G * m).sum(1, keepdim=True) / n_t  # A_t = G_t - b_t
    if baseline == "mean":
        G = G - (G * m).sum() / n  # A_t = G_t - b, b the mean over D
    if normalize_advantages:
        centred = G - (G * m).sum() / n
        # std over D, unbiased as Tensor.std
        std = ((centred.square() * m).sum() / (n - 1)).sqrt()
        # A_t <- (A_t - mean) / std; with one step, nothing to normalise
        G = torch.where(n > 1, centred / (std + 1e-8), G)
    # one forward pass for every step, (T, N, A)
    logp = policy(batch.obs).log_softmax(-1)
    # log pi(a_t | s_t), (T, N)
    logp_a = logp.gather(-1, batch.actions.unsqueeze(-1)).squeeze(-1)
    # L = -(1/|D|) sum over D of log pi(a_t | s_t) A_t
    loss = -(logp_a * G * m).sum() / n
    if entropy_coef:
        # mean over D of H[pi(. | s_t)] = -sum_a pi log pi
        entropy = -((logp.exp() * logp).sum(-1) * m).sum() / n
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
    env : ~dlref.cartpole.CartPole
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
    >>> from dlref.rl import MLPPolicy, reinforce
    >>> from dlref.cartpole import CartPole
    >>> _ = torch.manual_seed(0)
    >>> env, policy = CartPole(16, generator=torch.Generator().manual_seed(0)), MLPPolicy(4, 2)
    >>> opt = torch.optim.SGD(policy.parameters(), lr=0.1)
    >>> history = reinforce(env, policy, opt, num_updates=3)
    >>> len(history.losses), len(history.episode_returns)
    (3, 48)
    """
    check_instance("env", env, CartPole)
    check_callable("policy.sample", getattr(policy, "sample", None))
    check_callable("optimizer.zero_grad", getattr(optimizer, "zero_grad", None))
    check_callable("optimizer.step", getattr(optimizer, "step", None))
    check_int("num_updates", num_updates, minimum=0)
    check_in_range("gamma", gamma, 0, 1, closed=True)
    check_choice("baseline", baseline, _BASELINES)
    check_real("entropy_coef", entropy_coef)
    check_optional_real("target_return", target_return)
    check_optional_real("max_seconds", max_seconds)
    check_optional_real("max_env_steps", max_env_steps)
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

        returns = (batch.rewards * batch.mask).sum(0)  # one per episode
        # one copy to the host per update (on a GPU it waits for the device)
        numbers = (returns, returns.mean(), loss.detach(), batch.mask.sum())
        numbers = torch.cat([x.double().reshape(-1) for x in numbers])
        *episode_returns, mean_return, loss_value, new_steps = numbers.tolist()
        steps += int(new_steps)
        history.episode_returns += episode_returns
        history.mean_returns.append(mean_return)
        history.losses.append(loss_value)
        history.env_steps.append(steps)
        history.seconds.append(time.perf_counter() - start)
        if target_return is not None and history.last_mean() >= target_return:
            history.solved_at = update
            break
        if max_seconds is not None and history.seconds[-1] >= max_seconds:
            break
        if max_env_steps is not None and steps >= max_env_steps:
            break
    return history
