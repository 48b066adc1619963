"""dlref.rl: CartPole steps against Gymnasium's vectorised CartPole, and REINFORCE's robustness.

Needs gymnasium, which is in the ``test`` extra (so ``make install`` puts it in the venv and
``make bench`` has it): ``CartPoleVectorEnv`` is Gymnasium's own NumPy implementation of many
CartPoles at once, the fair reference for :class:`dlref.rl.CartPole`.

Loading this file also runs, once, the two training tables of the policy-gradient page:

* robustness: the gallery's settings (64 episodes per update, per-step batch-mean baseline,
  normalised advantages, 4-64-2 tanh policy, Adam lr 0.05, gamma 0.99) with 5 seeds; for each,
  the updates, environment steps and seconds of training until the mean return of the last 100
  episodes reaches 475;
* ablation: the same with one ingredient changed at a time, 3 seeds each.

Seconds are wall time of training (rollouts and updates, not imports) on one thread: on a
loaded machine they grow, environment steps do not.
"""

import statistics

import numpy as np
import torch
from gymnasium.envs.classic_control.cartpole import CartPoleVectorEnv

from dlref.rl import CartPole, MLPPolicy, reinforce

NUM_ENVS, STEPS = 1024, 100


def _cartpole_inputs():
    ours = CartPole(NUM_ENVS, generator=torch.Generator().manual_seed(0))
    ref = CartPoleVectorEnv(num_envs=NUM_ENVS)
    ref.reset(seed=0)
    actions = np.random.default_rng(0).integers(0, 2, size=(STEPS, NUM_ENVS))
    return ours, ref, actions, torch.from_numpy(actions)


def _step_ours(ours, ref, actions, torch_actions):
    for a in torch_actions:
        ours.step(a)


def _step_gymnasium(ours, ref, actions, torch_actions):
    for a in actions:
        ref.step(a)


CASES = [
    (
        f"CartPole {STEPS} steps x {NUM_ENVS} envs vs Gymnasium",
        _cartpole_inputs,
        _step_ours,
        _step_gymnasium,
    ),
]


# ------------------------------------------------------------------- robustness and ablation


def train(seed, num_envs=64, baseline="time", normalize=True, lr=0.05, max_seconds=10.0):
    """One REINFORCE run with the gallery's settings unless told otherwise."""
    torch.manual_seed(seed)
    env = CartPole(num_envs, generator=torch.Generator().manual_seed(seed))
    policy = MLPPolicy(4, 2, hidden_size=64)
    optimizer = torch.optim.Adam(policy.parameters(), lr=lr)
    return reinforce(
        env,
        policy,
        optimizer,
        num_updates=10_000,
        gamma=0.99,
        baseline=baseline,
        normalize_advantages=normalize,
        target_return=475.0,
        max_seconds=max_seconds,
        generator=torch.Generator().manual_seed(seed),
    )


def robustness(seeds=range(5)):
    print("\nREINFORCE on CartPole, the gallery's settings: mean return of the last 100 episodes")
    print(f"{'seed':>4} {'solved':>7} {'updates':>8} {'env steps':>10} {'seconds':>8}")
    for seed in seeds:
        h = train(seed)
        solved = h.solved_at is not None and h.seconds[-1] <= 3.0
        print(
            f"{seed:>4} {'yes' if solved else 'NO':>7} {len(h.losses):>8} "
            f"{h.env_steps[-1]:>10} {h.seconds[-1]:>8.2f}"
        )


ABLATION = [
    ("64 episodes, per-step baseline, normalised (gallery)", {}),
    ("64 episodes, constant baseline (batch mean), normalised", {"baseline": "mean"}),
    ("64 episodes, per-step baseline, not normalised", {"normalize": False}),
    ("64 episodes, no baseline, not normalised", {"baseline": "none", "normalize": False}),
    ("8 episodes, per-step baseline, normalised", {"num_envs": 8}),
    ("1 episode, returns normalised within it", {"num_envs": 1, "baseline": "mean"}),
]


def ablation(seeds=range(3), max_seconds=10.0):
    print(f"\nAblation, {len(seeds)} seeds each, at most {max_seconds:.0f} s of training per run")
    print(f"{'setting':<56} {'solved':>6} {'env steps (median)':>19} {'seconds (median)':>17}")
    for name, kwargs in ABLATION:
        runs = [train(seed, max_seconds=max_seconds, **kwargs) for seed in seeds]
        solved = [h for h in runs if h.solved_at is not None]
        steps = statistics.median(h.env_steps[-1] for h in solved) if solved else float("nan")
        secs = statistics.median(h.seconds[-1] for h in solved) if solved else float("nan")
        print(f"{name:<56} {len(solved)}/{len(runs):<4} {steps:>19.0f} {secs:>17.2f}")
    print()


robustness()  # printed when `make bench` (or `benchmarks/run.py rl`) loads this file
ablation()
