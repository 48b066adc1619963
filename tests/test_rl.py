"""dlref.rl against trusted references: Gymnasium's CartPole (step for step), plain Python loops
for the returns and the loss, autograd and finite differences for the bandit gradient,
torch.distributions.Categorical for the policy. No timed test: speed and the 5-seed robustness
run are in benchmarks/bench_rl.py."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from parity import assert_matches_finite_differences

from dlref import rl
from dlref.cartpole import CartPole

gymnasium = pytest.importorskip("gymnasium")
from gymnasium.envs.classic_control.cartpole import CartPoleEnv  # noqa: E402

DT = torch.float64


# ------------------------------------------------------------------------ discounted returns


def returns_loop(rewards, dones, gamma):
    """The definition, one number at a time: G_t = r_t + gamma G_{t+1}, reset after a done."""
    rewards, dones = rewards.tolist(), dones.tolist()
    out, g = [0.0] * len(rewards), 0.0
    for t in reversed(range(len(rewards))):
        g = rewards[t] + (0.0 if dones[t] else gamma * g)
        out[t] = g
    return out


@settings(max_examples=50, deadline=None)
@given(
    T=st.integers(1, 30),
    N=st.integers(1, 4),
    gamma=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**16),
)
def test_discounted_returns_matches_loop(T, N, gamma, seed):
    gen = torch.Generator().manual_seed(seed)
    rewards = torch.randn(T, N, generator=gen, dtype=DT)
    dones = torch.rand(T, N, generator=gen) < 0.2
    ours = rl.discounted_returns(rewards, dones, gamma)
    for n in range(N):  # time-major: each column is one environment
        expected = torch.tensor(returns_loop(rewards[:, n], dones[:, n], gamma), dtype=DT)
        torch.testing.assert_close(ours[:, n], expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(  # 1-D input: one environment
        rl.discounted_returns(rewards[:, 0], dones[:, 0], gamma), ours[:, 0], rtol=0, atol=0
    )


def test_discounted_returns_gamma_one_counts_the_steps_left():
    rewards, dones = torch.ones(6), torch.tensor([0, 0, 1, 0, 0, 1])
    assert rl.discounted_returns(rewards, dones, 1.0).tolist() == [3, 2, 1, 3, 2, 1]


@pytest.mark.parametrize("gamma", [-0.1, 1.5, float("nan")])
def test_discounted_returns_rejects_gamma(gamma):
    with pytest.raises(ValueError, match=r"gamma must lie in \[0, 1\], got"):
        rl.discounted_returns(torch.ones(3), torch.zeros(3, dtype=torch.bool), gamma)


@pytest.mark.parametrize("gamma", [True, "0.9", None])
def test_discounted_returns_rejects_gamma_of_another_type(gamma):
    with pytest.raises(TypeError, match="gamma must be a real number, got"):
        rl.discounted_returns(torch.ones(3), torch.zeros(3, dtype=torch.bool), gamma)


def test_discounted_returns_errors():
    with pytest.raises(
        ValueError, match=r"dones must have shape rewards.shape = \(3\), got \(4,\)"
    ):
        rl.discounted_returns(torch.ones(3), torch.zeros(4, dtype=torch.bool), 0.9)
    with pytest.raises(ValueError, match=r"rewards.dim\(\) must be at least 1, got 0"):
        rl.discounted_returns(torch.tensor(1.0), torch.tensor(False), 0.9)
    with pytest.raises(TypeError, match="rewards must be a floating-point tensor"):
        rl.discounted_returns(torch.ones(3, dtype=torch.int64), torch.zeros(3), 0.9)
    with pytest.raises(TypeError, match="dones must be a torch.Tensor"):
        rl.discounted_returns(torch.ones(3), [0, 0, 1], 0.9)


# ------------------------------------------------------------------------------ the bandit


def test_bandit_gradient_matches_autograd_and_finite_differences():
    theta = torch.tensor([0.3, -1.0, 0.5, 2.0], dtype=DT, requires_grad=True)
    r = torch.tensor([1.0, 2.0, -0.5, 0.7], dtype=DT)

    def J(t):
        return (t.softmax(-1) * r).sum()

    (autograd,) = torch.autograd.grad(J(theta), theta)
    ours = rl.bandit_policy_gradient(theta.detach(), r)
    torch.testing.assert_close(ours, autograd, rtol=1e-12, atol=1e-14)
    assert_matches_finite_differences(J, theta.detach(), ours, rtol=1e-8)


@pytest.mark.parametrize("baseline", [0.0, 5.0, "J"])
def test_score_function_estimator_is_unbiased(baseline):
    """The sample mean lies within 5 standard errors of the closed form, with or without b."""
    theta = torch.tensor([0.0, 0.5, 1.0], dtype=DT)
    r = torch.tensor([1.0, 2.0, 3.0], dtype=DT) + 10.0
    true = rl.bandit_policy_gradient(theta, r)
    b = (theta.softmax(-1) * r).sum() if baseline == "J" else baseline
    n = 200_000
    g = rl.score_function_samples(theta, r, n, b, torch.Generator().manual_seed(1))
    assert g.shape == (n, 3)
    stderr = g.std(0) / math.sqrt(n)
    assert ((g.mean(0) - true).abs() <= 5 * stderr).all(), (g.mean(0), true, stderr)


def test_baseline_cuts_the_variance_as_the_formula_says():
    """Total variance, exact: sum_a pi_a (r_a - b)^2 |e_a - pi|^2 - |grad J|^2."""
    theta = torch.tensor([0.0, 0.5, 1.0], dtype=DT)
    r = torch.tensor([11.0, 12.0, 13.0], dtype=DT)
    pi = theta.softmax(-1)
    J = (pi * r).sum()
    grad = rl.bandit_policy_gradient(theta, r)
    score_sq = ((torch.eye(3, dtype=DT) - pi) ** 2).sum(1)  # |e_a - pi|^2

    def exact_var(b):
        return (pi * (r - b) ** 2 * score_sq).sum() - grad.pow(2).sum()

    for b in (0.0, J):
        g = rl.score_function_samples(theta, r, 400_000, b, torch.Generator().manual_seed(2))
        measured = g.var(0).sum()
        assert abs(measured / exact_var(b) - 1) < 0.02, (b, measured, exact_var(b))
    assert exact_var(0.0) / exact_var(J) > 50


def test_bandit_errors():
    with pytest.raises(
        ValueError, match=r"rewards must have shape logits.shape = \(3\), got \(2,\)"
    ):
        rl.bandit_policy_gradient(torch.zeros(3), torch.zeros(2))
    with pytest.raises(ValueError, match=r"logits must have shape \(k,\) = \(any\), got \(2, 3\)"):
        rl.bandit_policy_gradient(torch.zeros(2, 3), torch.zeros(2, 3))
    with pytest.raises(TypeError, match="num_samples must be an int, got float 10.0"):
        rl.score_function_samples(torch.zeros(3), torch.zeros(3), 10.0)
    with pytest.raises(ValueError, match="num_samples must be at least 1, got 0"):
        rl.score_function_samples(torch.zeros(3), torch.zeros(3), 0)
    with pytest.raises(TypeError, match="logits must be a floating-point tensor"):
        rl.bandit_policy_gradient(torch.zeros(3, dtype=torch.int64), torch.zeros(3))


# --------------------------------------------------------------- CartPole against Gymnasium


def controller(state, rng):
    """A mostly-balancing policy with random pushes: long episodes that still end."""
    x, x_dot, theta, theta_dot = state
    if rng.random() < 0.6:
        return int(rng.integers(2))
    return int(theta + 0.5 * theta_dot + 0.02 * x + 0.05 * x_dot > 0)


def test_cartpole_steps_like_gymnasium_float64():
    """From Gymnasium's float64 state, one step of ours equals one of Gymnasium's, every step.

    Tolerance 1e-14: both compute the same ~20 float64 operations on numbers of size < 10, but
    we fold the constants (F/M, m_p l/M, 4l/3) and use fused multiply-adds, so each result can
    differ in its last bits (a few times 1e-16). Flags must agree exactly.
    """
    ref, ours = CartPoleEnv(), CartPole(1, dtype=DT)
    rng = np.random.default_rng(0)
    steps = terminations = 0
    for episode in range(30):
        ref.reset(seed=episode)
        for _ in range(500):
            ours.state = torch.tensor(ref.state, dtype=DT).unsqueeze(0)
            action = controller(ref.state, rng)
            _, reward, terminated, _, _ = ref.step(action)
            _, our_reward, our_terminated, _ = ours.step(torch.tensor([action]))
            np.testing.assert_allclose(ours.final_state[0].numpy(), ref.state, rtol=0, atol=1e-14)
            assert bool(our_terminated[0]) == terminated
            assert our_reward.item() == reward
            steps += 1
            if terminated:
                terminations += 1
                break
    assert steps > 2_000 and terminations >= 25  # long episodes, and most of them do end


def test_cartpole_free_run_drifts_only_by_rounding_chaos():
    """Without re-syncing, the last-bit differences grow like e^{4 t} (an inverted pendulum is
    unstable, λ = sqrt(g / (l (4/3 - m_p/M))) ≈ 4 /s): still below 1e-10 after 100 steps (2 s)."""
    ref, ours = CartPoleEnv(), CartPole(1, dtype=DT)
    rng = np.random.default_rng(1)
    ref.reset(seed=0)
    ours.state = torch.tensor(ref.state, dtype=DT).unsqueeze(0)
    for _ in range(100):
        action = controller(ref.state, rng)
        _, _, terminated, _, _ = ref.step(action)
        ours.step(torch.tensor([action]))
        assert not terminated
        np.testing.assert_allclose(ours.state[0].numpy(), ref.state, rtol=0, atol=1e-10)


def test_cartpole_float32_matches_gymnasium_observation():
    """float32 ours from the float32 observation vs Gymnasium's float32 observation (its float64
    step rounded): float32 rounding (eps 1.2e-7) on values < 10 through ~20 operations."""
    ref, ours = CartPoleEnv(), CartPole(1)
    rng = np.random.default_rng(2)
    obs, _ = ref.reset(seed=0)
    for _ in range(2000):
        ref.state = obs.astype(np.float64)  # both start from the same float32 numbers
        ours.state = torch.from_numpy(obs).unsqueeze(0).clone()
        action = controller(obs, rng)
        obs, _, terminated, _, _ = ref.step(action)
        ours.step(torch.tensor([action]))
        np.testing.assert_allclose(ours.final_state[0].numpy(), obs, rtol=1e-5, atol=1e-6)
        if terminated:
            obs, _ = ref.reset()


def test_cartpole_truncates_at_500_steps_like_gymnasium():
    ref = gymnasium.make("CartPole-v1")  # with its TimeLimit wrapper
    ours = CartPole(1, dtype=DT)
    obs, _ = ref.reset(seed=3)
    for t in range(1, 501):  # noqa: B007 (t is checked after the loop)
        ours.state = torch.tensor(ref.unwrapped.state, dtype=DT).unsqueeze(0)
        action = int(obs[2] + 0.5 * obs[3] + 0.02 * obs[0] + 0.05 * obs[1] > 0)
        obs, _, terminated, truncated, _ = ref.step(action)
        _, _, our_terminated, our_truncated = ours.step(torch.tensor([action]))
        assert (our_terminated.item(), our_truncated.item()) == (terminated, truncated)
        if terminated or truncated:
            break
    assert t == 500 and truncated  # the controller balanced it; both truncate on step 500


def test_cartpole_initial_states_are_uniform():
    """U(-0.05, 0.05) in every coordinate: bounds, and the Kolmogorov-Smirnov distance."""
    env = CartPole(50_000, generator=torch.Generator().manual_seed(1), dtype=DT)
    s = env.reset()
    assert s.shape == (50_000, 4)
    assert (s >= -0.05).all() and (s < 0.05).all()
    for j in range(4):
        u = np.sort(s[:, j].numpy()) / 0.1 + 0.5  # should be U(0, 1)
        n = len(u)
        ks = max((np.arange(1, n + 1) / n - u).max(), (u - np.arange(n) / n).max())
        assert ks < 1.63 / math.sqrt(n)  # the 1% critical value


def test_cartpole_autoreset_and_final_state():
    env = CartPole(3, generator=torch.Generator().manual_seed(0), dtype=DT)
    env.state = torch.tensor(
        [[2.399, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]], dtype=DT
    )
    env.steps = torch.tensor([10, 499, 7])
    state, reward, terminated, truncated = env.step(torch.tensor([1, 1, 0]))
    assert terminated.tolist() == [True, False, False]
    assert truncated.tolist() == [False, True, False]
    assert reward.tolist() == [1.0, 1.0, 1.0]
    assert env.final_state[0, 0] > 2.4  # the cart left the track...
    assert (state[:2].abs() < 0.05).all()  # ...and both finished environments restarted
    assert env.steps.tolist() == [0, 0, 8]
    torch.testing.assert_close(state[2], env.final_state[2])  # the running one did not


def test_cartpole_errors():
    env = CartPole(3)
    with pytest.raises(
        ValueError, match=r"action holds 2, out of range for the action space: .* in \[0, 2\)"
    ):
        env.step(torch.tensor([0, 2, 1]))
    with pytest.raises(ValueError, match="action holds -1"):
        env.step(torch.tensor([0, -1, 1]))
    with pytest.raises(
        ValueError, match=r"action must have shape \(num_envs,\) = \(3\), got \(2,\)"
    ):
        env.step(torch.tensor([0, 1]))
    with pytest.raises(TypeError, match="action must be an integer tensor of indices, got dtype"):
        env.step(torch.tensor([0.0, 1.0, 1.0]))
    with pytest.raises(TypeError, match="action must be a torch.Tensor"):
        env.step([0, 1, 1])
    with pytest.raises(ValueError, match="num_envs must be at least 1, got 0"):
        CartPole(0)
    with pytest.raises(TypeError, match="num_envs must be an int, got float 2.0"):
        CartPole(2.0)
    with pytest.raises(
        ValueError, match=r"state must have shape \(num_envs, 4\) = \(3, 4\), got \(4, 3\)"
    ):
        env.state = torch.zeros(4, 3)
    with pytest.raises(TypeError, match="state must be a floating-point tensor"):
        env.state = torch.zeros(3, 4, dtype=torch.int64)
    env.step(torch.tensor([False, True, True]))  # bool actions are 0/1


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cartpole_on_cuda_matches_cpu():
    cpu, gpu = CartPole(64, dtype=DT), CartPole(64, device="cuda", dtype=DT)
    gpu.state = cpu.state.cuda()
    for t in range(50):
        a = torch.arange(64) % 2 if t % 3 else torch.zeros(64, dtype=torch.int64)
        cpu.step(a)
        gpu.step(a.cuda())
        torch.testing.assert_close(gpu.final_state.cpu(), cpu.final_state, rtol=0, atol=1e-12)
        gpu.state = cpu.state.cuda()  # same restarts


# -------------------------------------------------------------------- policy, rollout, loss


def test_policy_log_prob_and_sampling_match_categorical():
    torch.manual_seed(0)
    policy = rl.MLPPolicy(4, 3, hidden_size=8).double()
    obs = torch.randn(5, 4, dtype=DT)
    actions = torch.tensor([0, 1, 2, 1, 0])
    reference = torch.distributions.Categorical(logits=policy(obs))
    torch.testing.assert_close(policy.log_prob(obs, actions), reference.log_prob(actions))
    n = 40_000
    a = policy.sample(obs[:1].expand(n, 4), torch.Generator().manual_seed(0))
    freq = torch.bincount(a, minlength=3) / n
    p = reference.probs[0].detach()
    assert ((freq - p).abs() <= 5 * (p * (1 - p) / n).sqrt()).all(), (freq, p)


def test_rollout_collects_whole_episodes():
    torch.manual_seed(0)
    env = CartPole(8, generator=torch.Generator().manual_seed(0))
    batch = rl.rollout(env, rl.MLPPolicy(4, 2), torch.Generator().manual_seed(0))
    T, N = batch.mask.shape
    assert batch.obs.shape == (T, N, 4) and N == 8
    lengths = batch.mask.sum(0)
    assert lengths.max() == T
    for n in range(N):
        L = lengths[n]
        assert batch.mask[:L, n].all() and not batch.mask[L:, n].any()  # a prefix
        assert batch.dones[L - 1, n] and not batch.dones[: L - 1, n].any()  # ends at its done
        assert (batch.obs[0, n].abs() <= 0.05).all()  # starts from a reset


@pytest.mark.parametrize("baseline", ["none", "mean", "time"])
@pytest.mark.parametrize("normalize", [False, True])
def test_policy_gradient_loss_matches_a_loop(baseline, normalize):
    torch.manual_seed(0)
    policy = rl.MLPPolicy(4, 2).double()
    env = CartPole(6, generator=torch.Generator().manual_seed(1), dtype=DT)
    batch = rl.rollout(env, policy, torch.Generator().manual_seed(1))
    gamma = 0.9
    # reference: one episode at a time, Python lists and torch.distributions
    G = {}  # (t, n) -> reward-to-go of step t of episode n
    for n in range(6):
        L = int(batch.mask[:, n].sum())
        for t, g in enumerate(returns_loop(batch.rewards[:L, n], batch.dones[:L, n], gamma)):
            G[(t, n)] = g
    keys = sorted(G)  # time-major, the order of batch.obs[batch.mask]
    b = {}
    for t in {t for t, _ in keys}:
        alive = [G[k] for k in keys if k[0] == t]
        b[t] = sum(alive) / len(alive) if baseline == "time" else 0.0
    A = torch.tensor([G[(t, n)] - b[t] for t, n in keys], dtype=DT)
    if baseline == "mean":
        A = A - A.mean()
    if normalize:
        A = (A - A.mean()) / (A.std() + 1e-8)
    terms = [
        torch.distributions.Categorical(logits=policy(batch.obs[t, n])).log_prob(
            batch.actions[t, n]
        )
        * A[i]
        for i, (t, n) in enumerate(keys)
    ]
    expected = -torch.stack(terms).mean()
    ours = rl.policy_gradient_loss(policy, batch, gamma, baseline, normalize)
    torch.testing.assert_close(ours, expected, rtol=1e-12, atol=1e-12)
    params = list(policy.parameters())
    for g_ours, g_ref in zip(
        torch.autograd.grad(ours, params), torch.autograd.grad(expected, params), strict=True
    ):
        torch.testing.assert_close(g_ours, g_ref, rtol=1e-10, atol=1e-12)


def test_entropy_bonus_subtracts_mean_entropy():
    torch.manual_seed(0)
    policy = rl.MLPPolicy(4, 2).double()
    batch = rl.rollout(CartPole(4, dtype=DT), policy)
    base = rl.policy_gradient_loss(policy, batch, entropy_coef=0.0)
    with_bonus = rl.policy_gradient_loss(policy, batch, entropy_coef=0.1)
    entropy = torch.distributions.Categorical(logits=policy(batch.obs[batch.mask])).entropy()
    torch.testing.assert_close(with_bonus, base - 0.1 * entropy.mean())


def test_reinforce_history_and_learning():
    """Not timed: 12 updates of 16 episodes lift the mean return well above a random policy's."""
    torch.manual_seed(0)
    env = CartPole(16, generator=torch.Generator().manual_seed(0))
    policy = rl.MLPPolicy(4, 2)
    opt = torch.optim.Adam(policy.parameters(), lr=0.05)
    h = rl.reinforce(env, policy, opt, num_updates=12, generator=torch.Generator().manual_seed(0))
    assert len(h.losses) == len(h.env_steps) == len(h.seconds) == len(h.mean_returns) == 12
    assert len(h.episode_returns) == 12 * 16
    assert h.env_steps[-1] == sum(h.episode_returns)  # reward 1 per step: return = length
    assert h.mean_returns[-1] > 4 * h.mean_returns[0]


def test_reinforce_stops_at_target():
    torch.manual_seed(0)
    env, policy = CartPole(8), rl.MLPPolicy(4, 2)
    opt = torch.optim.SGD(policy.parameters(), lr=0.01)
    h = rl.reinforce(env, policy, opt, num_updates=50, target_return=1.0)
    assert h.solved_at == 0 and len(h.losses) == 1


def test_reinforce_stops_at_env_step_budget():
    torch.manual_seed(0)
    env, policy = CartPole(4), rl.MLPPolicy(4, 2)
    opt = torch.optim.SGD(policy.parameters(), lr=0.0)
    h = rl.reinforce(env, policy, opt, num_updates=50, max_env_steps=200)
    assert h.env_steps[-1] >= 200 and (len(h.env_steps) == 1 or h.env_steps[-2] < 200)
    assert h.solved_at is None


def test_reinforce_errors():
    env, policy = CartPole(2), rl.MLPPolicy(4, 2)
    opt = torch.optim.SGD(policy.parameters(), lr=0.01)
    with pytest.raises(ValueError, match=r"gamma must lie in \[0, 1\], got 1.1"):
        rl.reinforce(env, policy, opt, gamma=1.1)
    with pytest.raises(ValueError, match="baseline must be one of"):
        rl.reinforce(env, policy, opt, baseline="value")
    with pytest.raises(TypeError, match="env must be a CartPole, got str"):
        rl.reinforce("CartPole-v1", policy, opt)
    with pytest.raises(TypeError, match=r"policy.sample must be callable, got NoneType"):
        rl.reinforce(env, object(), opt)
    with pytest.raises(TypeError, match=r"optimizer.zero_grad must be callable, got NoneType"):
        rl.reinforce(env, policy, "adam")
    with pytest.raises(TypeError, match="num_updates must be an int, got float"):
        rl.reinforce(env, policy, opt, num_updates=2.5)
    with pytest.raises(ValueError, match="num_updates must be at least 0, got -1"):
        rl.reinforce(env, policy, opt, num_updates=-1)
    with pytest.raises(TypeError, match="entropy_coef must be a real number, got str '0.1'"):
        rl.reinforce(env, policy, opt, entropy_coef="0.1")
    with pytest.raises(TypeError, match="target_return must be a real number or None, got str"):
        rl.reinforce(env, policy, opt, target_return="a string")
    with pytest.raises(TypeError, match="generator must be a torch.Generator or None, got int"):
        rl.reinforce(env, policy, opt, generator=-1)


def test_rollout_and_loss_errors():
    env, policy = CartPole(2), rl.MLPPolicy(4, 2)
    with pytest.raises(TypeError, match="env must be a CartPole, got int"):
        rl.rollout(-1, policy)
    with pytest.raises(TypeError, match="generator must be a torch.Generator or None, got str"):
        rl.rollout(env, policy, "a string")
    batch = rl.rollout(env, policy)
    with pytest.raises(TypeError, match="policy must be callable"):
        rl.policy_gradient_loss("a string", batch)
    with pytest.raises(TypeError, match="batch must be a Batch"):
        rl.policy_gradient_loss(policy, [1, 2])
    with pytest.raises(ValueError, match="baseline must be one of"):
        rl.policy_gradient_loss(policy, batch, baseline=3)


def test_constructor_errors():
    with pytest.raises(
        TypeError, match="dtype must be None or a floating-point torch.dtype, got 'a"
    ):
        CartPole(2, dtype="a string")
    with pytest.raises(
        ValueError, match="device must be None, a torch.device, a string or an index"
    ):
        CartPole(2, device="a string")
    with pytest.raises(TypeError, match="generator must be a torch.Generator or None"):
        CartPole(2, generator=object())
    with pytest.raises(TypeError, match="hidden_size must be an int, got float 2.5"):
        rl.MLPPolicy(4, 2, hidden_size=2.5)
    with pytest.raises(ValueError, match="observation_size must be at least 1, got -7"):
        rl.MLPPolicy(-7, 2)


def test_new_argument_errors_of_the_estimators():
    r, d = torch.ones(3), torch.tensor([False, True, False])
    for dones in (d.to(torch.complex64), d.to(torch.uint8), d.double()):  # nonzero: done
        torch.testing.assert_close(
            rl.discounted_returns(r, dones, 0.9), rl.discounted_returns(r, d, 0.9)
        )
    theta, r = torch.zeros(2), torch.tensor([0.0, 1.0])
    with pytest.raises(TypeError, match="baseline must be a real number or a tensor, got str"):
        rl.score_function_samples(theta, r, 10, baseline="0.1")
    with pytest.raises(TypeError, match="generator must be a torch.Generator or None, got str"):
        rl.score_function_samples(theta, r, 10, generator="a string")


def test_cartpole_is_re_exported_by_rl():
    assert rl.CartPole is CartPole and "CartPole" in rl.__all__


@pytest.mark.parametrize("baseline", ["time", "mean", "none"])
def test_policy_gradient_loss_ignores_steps_after_the_episodes(baseline):
    """On an accelerator the rollout runs the whole horizon: masked-out steps must not count."""
    torch.manual_seed(0)
    env, policy = CartPole(4, generator=torch.Generator().manual_seed(0)), rl.MLPPolicy(4, 2)
    b = rl.rollout(env, policy, torch.Generator().manual_seed(0))
    pad = 7  # steps after every episode ended, with anything in them

    def padded(x, fill):
        return torch.cat([x, torch.full((pad, *x.shape[1:]), fill, dtype=x.dtype)])

    longer = rl.Batch(
        padded(b.obs, 0.3),
        padded(b.actions, 1),
        padded(b.rewards, 1.0),
        padded(b.dones, False),
        padded(b.mask, False),
    )
    for entropy_coef in (0.0, 0.1):
        ours = rl.policy_gradient_loss(policy, longer, 0.9, baseline, True, entropy_coef)
        ref = rl.policy_gradient_loss(policy, b, 0.9, baseline, True, entropy_coef)
        torch.testing.assert_close(ours, ref)
