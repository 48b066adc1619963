"""dlref.rl: CartPole steps against Gymnasium's vectorised CartPole, and REINFORCE's robustness.

Needs gymnasium, which is in the ``test`` extra (so ``make install`` puts it in the venv and
``make bench`` has it): ``CartPoleVectorEnv`` is Gymnasium's own NumPy implementation of many
CartPoles at once, the fair reference for :class:`dlref.cartpole.CartPole`.

``EXTRA()`` runs the two training tables of the policy-gradient page:

* robustness: the gallery's settings (64 episodes per update, per-step batch-mean baseline,
  normalised advantages, 4-64-2 tanh policy, Adam lr 0.05, gamma 0.99) with 5 seeds; for each,
  the updates, environment steps and seconds of training until the mean return of the last 100
  episodes reaches 475;
* ablation: the same with one ingredient changed at a time, 3 seeds each.

Seconds are wall time of training (rollouts and updates, not imports) on one thread: on a
loaded machine they grow, environment steps do not.
"""

import contextlib
import io
import statistics
import time

import numpy as np
import torch
from gymnasium.envs.classic_control.cartpole import CartPoleVectorEnv

from dlref.cartpole import CartPole
from dlref.rl import MLPPolicy, reinforce


def _cartpole_inputs(num_envs, steps):
    def make():
        ours = CartPole(num_envs, generator=torch.Generator().manual_seed(0))
        ref = CartPoleVectorEnv(num_envs=num_envs)
        ref.reset(seed=0)
        actions = np.random.default_rng(0).integers(0, 2, size=(steps, num_envs))
        return ours, ref, actions, torch.from_numpy(actions)

    return make


def _step_ours(ours, ref, actions, torch_actions):
    for a in torch_actions:
        ours.step(a)


def _step_gymnasium(ours, ref, actions, torch_actions):
    for a in actions:
        ref.step(a)


# Random actions: episodes last ~20 steps, so every step also restarts some environments.
CASES = [
    (
        f"CartPole {steps} steps x {num_envs} envs vs Gymnasium",
        _cartpole_inputs(num_envs, steps),
        _step_ours,
        _step_gymnasium,
    )
    for num_envs, steps in ((1024, 100), (16384, 20))
]


# ------------------------------------------------------------------- robustness and ablation


def train(seed, num_envs=64, baseline="time", normalize=True, lr=0.05, **limits):
    """One REINFORCE run with the gallery's settings unless told otherwise."""
    torch.manual_seed(seed)
    env = CartPole(num_envs, generator=torch.Generator().manual_seed(seed))
    policy = MLPPolicy(4, 2, hidden_size=64)
    optimizer = torch.optim.Adam(policy.parameters(), lr=lr)
    cpu = time.process_time()
    history = reinforce(
        env,
        policy,
        optimizer,
        num_updates=10_000,
        gamma=0.99,
        baseline=baseline,
        normalize_advantages=normalize,
        target_return=475.0,
        **limits,
        generator=torch.Generator().manual_seed(seed),
    )
    history.cpu_seconds = time.process_time() - cpu  # what a quiet machine's wall time would be
    return history


def robustness(seeds=range(5), budget=3.0):
    print(
        "\nREINFORCE on CartPole, the gallery's settings, until the last 100 episodes average 475;"
        "\none run per random seed (it fixes the initial weights, the episode starts and the"
        " sampled actions)"
    )
    print(
        f"{'seed':>4} {'reached':>8} {'updates':>8} {'env steps':>10} {'seconds':>8} {'CPU s':>6}"
    )
    runs = [train(seed, max_env_steps=500_000) for seed in seeds]
    for seed, h in zip(seeds, runs, strict=True):
        print(
            f"{seed:>4} {'yes' if h.solved_at is not None else 'NO':>8} {len(h.losses):>8} "
            f"{h.env_steps[-1]:>10} {h.seconds[-1]:>8.2f} {h.cpu_seconds:>6.2f}"
        )
    solved = [h for h in runs if h.solved_at is not None]
    fast = sum(h.seconds[-1] <= budget for h in solved)
    fast_cpu = sum(h.cpu_seconds <= budget for h in solved)
    print(
        f"reached 475: {len(solved)}/{len(runs)}; within {budget:.0f} s of training: {fast}/"
        f"{len(runs)} (wall clock), {fast_cpu}/{len(runs)} (CPU time)"
    )


ABLATION = [
    ("64 episodes, per-step baseline, normalised (gallery)", {}),
    ("64 episodes, constant baseline (batch mean), normalised", {"baseline": "mean"}),
    ("64 episodes, per-step baseline, not normalised", {"normalize": False}),
    ("64 episodes, no baseline, not normalised", {"baseline": "none", "normalize": False}),
    ("64 episodes, per-step baseline, normalised, Adam lr 0.01", {"lr": 0.01}),
    ("8 episodes, per-step baseline, normalised", {"num_envs": 8}),
    ("1 episode, returns normalised within it", {"num_envs": 1, "baseline": "mean"}),
    (
        "1 episode, no baseline, not normalised",
        {"num_envs": 1, "baseline": "none", "normalize": False},
    ),
]


def ablation(seeds=range(3), max_env_steps=300_000, max_seconds=30.0):
    """Env steps and seconds: medians over the solved runs; return at stop: each run's."""
    print(
        f"\nAblation, {len(seeds)} random seeds each (as above); each run stopped at 475 or after "
        f"{max_env_steps} env steps or {max_seconds:.0f} s of training\n(a run stopped by the "
        "time limit gets further, and may end at another return, on a faster machine)"
    )
    print(f"{'setting':<56} {'solved':>6} {'env steps':>10} {'seconds':>8} {'return at stop':>15}")
    for name, kwargs in ABLATION:
        limits = {"max_env_steps": max_env_steps, "max_seconds": max_seconds}
        runs = [train(seed, **limits, **kwargs) for seed in seeds]
        solved = [h for h in runs if h.solved_at is not None]
        steps = statistics.median(h.env_steps[-1] for h in solved) if solved else float("nan")
        secs = statistics.median(h.seconds[-1] for h in solved) if solved else float("nan")
        last = "/".join(f"{h.last_mean():.0f}" for h in runs)  # return at stop, each run
        print(f"{name:<56} {len(solved)}/{len(runs):<4} {steps:>10.0f} {secs:>8.2f} {last:>15}")
    print()


def EXTRA():
    """The robustness and ablation tables, as text for the performance page."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        robustness()
        ablation()
    return "```text\n" + out.getvalue().strip() + "\n```"
