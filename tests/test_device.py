"""Device handling on a virtual GPU (``tools/vgpu.py``): CUDA's placement and generator rules,
checked without a GPU. ``VirtualGPU(strict=True)`` raises torch's CUDA error at the first broken
rule, so a test that runs to the end proves the call would not crash on CUDA; results are
compared with the same call on the CPU (the trusted reference: the virtual device computes on
the CPU, so the numbers must be identical)."""

import numpy as np
import pytest
import torch
import vgpu  # tools/vgpu.py, registered by conftest.py before any backward pass

from dlref import attention, cartpole, conditioning, decoding, llm_systems, losses, rl, scaling

D = vgpu.VDEV


def on_host(x):
    return x.elem if isinstance(x, vgpu.V) else x


def sync_lines(vg, module):
    """Host syncs counted on lines of ``src/dlref/<module>.py``."""
    return sum(n for (where, _), n in vg.syncs.items() if where.startswith(f"src/dlref/{module}"))


# ---------------------------------------------------------------- generators: the right device


def test_sample_draws_with_a_generator_on_the_prefix_device():
    P = torch.tensor([[0.1, 0.6, 0.3], [0.2, 0.2, 0.6], [0.5, 0.4, 0.1]])
    ref = decoding.sample(
        decoding.markov_step_fn(P), torch.zeros(4, 1, dtype=torch.long), 5,
        generator=torch.Generator().manual_seed(0),
    )  # fmt: skip
    with vgpu.VirtualGPU(strict=True):
        prefix = torch.zeros(4, 1, dtype=torch.long, device=D)
        out = decoding.sample(
            decoding.markov_step_fn(P.to(D)), prefix, 5, generator=torch.Generator(D).manual_seed(0)
        )
    torch.testing.assert_close(on_host(out.sequences), ref.sequences)


@pytest.mark.parametrize("where", ["prefix on the device", "generator on the device"])
def test_sample_rejects_a_generator_on_another_device(where):
    P = torch.tensor([[0.5, 0.5], [0.5, 0.5]])
    with vgpu.VirtualGPU(strict=True):
        on_device = where == "prefix on the device"
        prefix = torch.zeros(2, 1, dtype=torch.long, device=D if on_device else "cpu")
        generator = torch.Generator("cpu" if on_device else D)
        with pytest.raises(ValueError, match=r"generator is on .* but the tensors are on"):
            decoding.sample(decoding.markov_step_fn(P), prefix, 2, generator=generator)


def test_rl_generators_must_live_on_the_tensors_device():
    with vgpu.VirtualGPU(strict=True):
        cpu = torch.Generator().manual_seed(0)
        theta, r = torch.zeros(3, device=D), torch.ones(3, device=D)
        env = rl.CartPole(4, device=D, generator=torch.Generator(D).manual_seed(0))
        policy = rl.MLPPolicy(4, 2, 8).to(D)
        opt = torch.optim.SGD(policy.parameters(), lr=0.1)
        message = r"generator is on cpu but the tensors are on vgpu:0"
        with pytest.raises(ValueError, match=message):
            rl.score_function_samples(theta, r, 10, generator=cpu)
        with pytest.raises(ValueError, match=message):
            rl.CartPole(4, device=D, generator=cpu)
        with pytest.raises(ValueError, match=message):
            policy.sample(torch.zeros(3, 4, device=D), cpu)
        with pytest.raises(ValueError, match=message):
            rl.rollout(env, policy, cpu)
        with pytest.raises(ValueError, match=message):
            rl.reinforce(env, policy, opt, 1, generator=cpu)
        with pytest.raises(TypeError, match="generator must be a torch.Generator"):
            rl.rollout(env, policy, 0)


def test_rl_on_the_device_matches_the_cpu():
    """The same seeds on both devices (the virtual one draws CPU numbers): the same episodes.

    One update: on a device the rollout runs the whole horizon, past the end of the batch's
    episodes, so its generators then stand further on than the CPU's.
    """

    def run(device):
        torch.manual_seed(0)
        env = cartpole.CartPole(8, device=device, generator=torch.Generator(device).manual_seed(0))
        policy = rl.MLPPolicy(4, 2, 8).to(device)
        actions = torch.Generator(device).manual_seed(1)
        opt = torch.optim.SGD(policy.parameters(), lr=0.1)
        history = rl.reinforce(env, policy, opt, num_updates=1, generator=actions)
        theta = torch.zeros(3, device=device)
        r = torch.arange(3.0, device=device)
        g = rl.score_function_samples(
            theta, r, 50, generator=torch.Generator(device).manual_seed(2)
        )
        return history, on_host(g)

    ref_history, ref_g = run("cpu")
    with vgpu.VirtualGPU(strict=True):
        history, g = run(D)
    assert history.episode_returns == ref_history.episode_returns
    assert history.env_steps == ref_history.env_steps
    assert history.losses == pytest.approx(ref_history.losses, rel=1e-6)
    torch.testing.assert_close(g, ref_g)


def test_minibatch_variance_draws_indices_on_the_device():
    g = torch.randn(50, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    ref = conditioning.minibatch_gradient_variance(g, 4, 20, torch.Generator().manual_seed(1))
    with vgpu.VirtualGPU(strict=True):
        gd = g.to(D)
        got = conditioning.minibatch_gradient_variance(gd, 4, 20, torch.Generator(D).manual_seed(1))
        with pytest.raises(ValueError, match="generator is on cpu but the tensors are on vgpu"):
            conditioning.minibatch_gradient_variance(gd, 4, 20, torch.Generator())
    assert got == ref


# ---------------------------------------------------------------- tensors on two devices


def test_kv_cache_reorder_accepts_an_index_on_the_cpu():
    keys = torch.randn(1, 3, 1, 4, 2)
    with vgpu.VirtualGPU(strict=True):
        cache = attention.KVCache(1, 3, 1, 4, 2, device=D)
        cache.update(0, keys[0].to(D), keys[0].to(D))
        cache.reorder(torch.tensor([2, 0, 0]))
        got = on_host(cache.keys)
    torch.testing.assert_close(got[0, :, :, :4], keys[0].index_select(0, torch.tensor([2, 0, 0])))


def test_markov_table_on_the_cpu_with_a_prefix_on_the_device():
    P = torch.softmax(torch.randn(5, 5, generator=torch.Generator().manual_seed(0)), -1)
    ref = decoding.greedy(decoding.markov_step_fn(P), torch.tensor([[0], [3]]), 4)
    with vgpu.VirtualGPU(strict=True):
        out = decoding.greedy(decoding.markov_step_fn(P), torch.tensor([[0], [3]], device=D), 4)
        assert out.sequences.device == D and out.logprobs.device == D
    torch.testing.assert_close(on_host(out.sequences), ref.sequences)
    torch.testing.assert_close(on_host(out.logprobs), ref.logprobs)


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda t: scaling.fit_power_law(t, np.ones(3)), "x"),
        (lambda t: scaling.power_law(t, 1.0, 0.5), "x"),
        (lambda t: scaling.chinchilla_loss(1e9, t), "D"),
        (lambda t: llm_systems.roofline(t, 1e12, 1e9), "intensity"),
    ],
)
def test_scaling_says_a_device_tensor_must_come_to_the_cpu(call, name):
    with vgpu.VirtualGPU(strict=True):
        t = torch.tensor([1.0, 2.0, 4.0], device=D)
        with pytest.raises(TypeError, match=rf"^{name} is a tensor on vgpu:0: NumPy needs it on"):
            call(t)


# ---------------------------------------------------------------- checks without host syncs


def test_cross_entropy_checks_targets_on_the_device_without_a_host_sync():
    x = torch.randn(4, 3, generator=torch.Generator().manual_seed(0))
    y = torch.tensor([0, 2, -100, 1])
    ref = torch.nn.functional.cross_entropy(x, y)
    with vgpu.VirtualGPU(strict=True) as vg:
        got = losses.cross_entropy(x.to(D), y.to(D))
        assert sync_lines(vg, "losses") == 0
        with pytest.raises(RuntimeError, match=r"target holds class indices outside \[0, 3\)"):
            losses.cross_entropy(x.to(D), torch.tensor([0, 3, 1, 1], device=D))
    torch.testing.assert_close(on_host(got), ref)
    with pytest.raises(ValueError, match="target holds class index 3"):  # on the CPU: at once
        losses.cross_entropy(x, torch.tensor([0, 3, 1, 1]))


def test_cartpole_checks_actions_on_the_device_without_a_host_sync():
    with vgpu.VirtualGPU(strict=True) as vg:
        env = cartpole.CartPole(3, device=D, generator=torch.Generator(D).manual_seed(0))
        env.step(torch.tensor([0, 1, 1], device=D))
        assert sync_lines(vg, "cartpole") == 0
        with pytest.raises(
            RuntimeError, match=r"action holds indices outside \[0, 2\) for the action space"
        ):
            env.step(torch.tensor([0, 2, 1], device=D))
    with pytest.raises(ValueError, match="action holds 2, out of range for the action space"):
        cartpole.CartPole(3).step(torch.tensor([0, 2, 1]))


def test_reinforce_waits_for_the_device_once_per_update():
    """The rollout runs the whole horizon and the loss masks: only the history reads, once."""
    with vgpu.VirtualGPU(strict=True) as vg:
        torch.manual_seed(0)
        env = cartpole.CartPole(4, device=D, generator=torch.Generator(D).manual_seed(0))
        policy = rl.MLPPolicy(4, 2, 8).to(D)
        opt = torch.optim.SGD(policy.parameters(), lr=0.1)
        history = rl.reinforce(env, policy, opt, 2, generator=torch.Generator(D).manual_seed(0))
    assert len(history.losses) == 2
    assert sync_lines(vg, "rl") == 2
    assert sync_lines(vg, "cartpole") == 0
