"""Every public function and method of dlref that takes tensors or a device, on the virtual GPU.

Each case calls part of the API with its tensors (and generators) on ``vgpu:0`` inside
``VirtualGPU()``; a case that raises, and every violation of CUDA's placement and generator
rules, is a failure. While the cases run, the functions that are entered are recorded: every
public function and method of the ``dlref`` modules must be among them, except those in
``EXEMPT`` (which take neither a tensor nor a device). ``python tools/device_check.py`` runs it.
"""

from __future__ import annotations

import collections
import inspect
import sys

import numpy as np
import torch
from vgpu import VDEV as d
from vgpu import VirtualGPU

import dlref
from dlref import (
    activations,
    attention,
    autodiff,
    backprop,
    cartpole,
    clipping,
    conditioning,
    conv,
    decoding,
    distributed,
    init,
    llm_systems,
    losses,
    normalization,
    optim,
    positional,
    precision,
    regularization,
    rl,
    rnn,
    scaling,
    transformer,
)

EXEMPT = {
    "numbers and shapes only": [
        "autodiff.Scalar.*",
        "autodiff.Dual.*",
        "autodiff.reverse_mode_grad",
        "autodiff.forward_mode_grad",
        "conditioning.spectrum",
        "conditioning.optimal_hyperparameters",
        "conditioning.contraction_factor",
        "normalization.LayerNorm.extra_repr",
        "normalization.RMSNorm.extra_repr",
        "normalization.GroupNorm.extra_repr",
        "regularization.Dropout.extra_repr",
        "conv.conv2d_output_shape",
        "init.calculate_gain",
        "precision.FloatFormat.__init__",
        "precision.LossScaler.get_scale",
        "precision.LossScaler.get_growth_tracker",
        "decoding.WorkCounter.__init__",
        "optim.warmup_cosine",
        "rl.History.*",
        "scaling.flops_per_token",
        "llm_systems.transformer_parameters",
        "llm_systems.zero_memory",
        "llm_systems.activation_bytes_per_layer",
        "llm_systems.kv_cache_bytes",
        "llm_systems.matmul_intensity",
        "tensors.*",
        "transformer.TransformerConfig.__init__",
        "transformer.count_parameters",
        "transformer.kv_cache_bytes_per_token",
        "transformer.forward_flops",
    ],
    "CPU processes by design (gloo), seeds in, CPU tensors out": [
        "distributed.make_model",
        "distributed.make_batch",
        "distributed.train_single_process",
        "distributed.run_data_parallel",
        "distributed.run_workers",
        "distributed.allreduce_gradients",
        "parallel.*",
    ],
    "text and token ids (Python str, list and int)": ["tokenization.*"],
}
CASES = []


def case(f):
    CASES.append(f)
    return f


def raises(error: type[Exception], words: str, f, *args, **kwargs) -> None:
    """``f(*args, **kwargs)`` raises ``error`` whose message contains ``words``."""
    try:
        f(*args, **kwargs)
    except error as e:
        assert words in str(e), f"{error.__name__} without {words!r}: {e}"
        return
    raise AssertionError(f"{f.__name__} did not raise {error.__name__}")


@case
def attention_functions():
    q, k, v = (torch.randn(2, 4, 5, 8, device=d) for _ in range(3))
    attention.causal_mask(5, 7, offset=2, device=d)
    attention.scaled_dot_product_attention(q, k, v, is_causal=True)
    m = torch.ones(5, 5, dtype=torch.bool, device=d)
    m[0] = False
    attention.scaled_dot_product_attention(q, k, v, attn_mask=m)
    attention.scaled_dot_product_attention(q, k, v, attn_mask=torch.zeros(5, 5, device=d))
    gqa = dict(enable_gqa=True, scale=torch.tensor(0.3))
    attention.scaled_dot_product_attention(q, k[:, :2], v[:, :2], **gqa)
    pe = positional.sinusoidal_positional_encoding(8, 16, device=d)
    positional.apply_rotary(torch.randn(8, 16, device=d), pe[:, :8], pe[:, 8:])


@case
def attention_modules():
    positional.RotaryEmbedding(8, 16, device=d)(torch.randn(2, 3, 8, device=d), offset=2)
    positional.LearnedPositionalEmbedding(16, 8, device=d)(3, offset=1)
    mha = attention.MultiHeadAttention(16, 4, num_kv_heads=2, device=d).eval()
    cache = attention.KVCache(1, 2, 2, 12, 4, device=d)
    rope = positional.RotaryEmbedding(4, 12, device=d)
    x = torch.randn(2, 10, 16, device=d)
    mha(x[:, :4], is_causal=True, kv_cache=cache, rotary=rope)
    mha(x[:, 4:5], is_causal=True, kv_cache=cache, rotary=rope)
    mha(x[:, 5:8], is_causal=True, kv_cache=cache, rotary=rope)  # a chunk after a prefix
    mha(x[:, 8:10], is_causal=True, kv_cache=cache, attn_mask=torch.zeros(2, 10, device=d))
    cache.update(0, torch.zeros(2, 2, 1, 4, device=d), torch.zeros(2, 2, 1, 4, device=d))
    cache.reorder(torch.tensor([1, 0], device=d))
    cache.reorder(torch.tensor([1, 0]))  # an index on the CPU
    cache.reset()


@case
def transformer_models():
    options = (
        ("learned", "gelu", "layernorm"),
        ("sinusoidal", "gelu_tanh", "rmsnorm"),
        ("rope", "swiglu", "rmsnorm"),
        ("none", "gelu", "layernorm"),
    )
    for pos, mlp, norm in options:
        cfg = transformer.TransformerConfig(
            vocab_size=11, max_seq_len=16, d_model=16, num_layers=2, num_heads=4,
            num_kv_heads=2, positional=pos, mlp=mlp, norm=norm,
        )  # fmt: skip
        model = transformer.Transformer(cfg).to(d).eval()
        prompt = torch.randint(0, 11, (3, 4), device=d)
        model(prompt).sum()
        model.generate(prompt, 5)
        model.generate(prompt, 5, use_cache=False)
        transformer.MLP(cfg).to(d)(torch.randn(2, 3, 16, device=d))
        transformer.Block(cfg).to(d)(torch.randn(2, 3, 16, device=d))
    cache = model.new_kv_cache(3 * 2)
    step = lambda t: model.next_token_log_probs(t, cache)  # noqa: E731
    decoding.beam_search(step, prompt, 2, 4, reorder=cache.reorder)


@case
def decoders():
    P = torch.softmax(torch.randn(5, 5, device=d, dtype=torch.float64), -1)
    f = decoding.markov_step_fn(P)
    prefix = torch.zeros(3, 1, dtype=torch.long, device=d)
    decoding.greedy(f, prefix, 4, eos_id=2)
    generator = torch.Generator(d).manual_seed(0)
    decoding.sample(f, prefix, 4, 0.7, top_k=3, top_p=0.9, generator=generator, eos_id=2)
    decoding.beam_search(f, prefix, 3, 4, eos_id=2, length_penalty=0.7)
    decoding.exhaustive_search(f, prefix, 3)
    decoding.top_k_filter(torch.randn(2, 5, device=d), 2)
    decoding.top_p_filter(torch.randn(2, 5, device=d), 0.8)
    table_on_cpu = decoding.markov_step_fn(torch.softmax(torch.randn(5, 5), -1))
    decoding.greedy(table_on_cpu, prefix, 2)  # a table on the CPU, a prefix on the device
    cpu_generator = torch.Generator().manual_seed(0)
    raises(ValueError, "generator", decoding.sample, f, prefix, 2, generator=cpu_generator)


@case
def reinforcement_learning():
    r = torch.ones(6, 4, device=d)
    rl.discounted_returns(r, torch.zeros(6, 4, dtype=torch.bool, device=d), 0.9)
    theta, rewards = torch.zeros(3, device=d), torch.tensor([0.0, 1.0, 2.0], device=d)
    rl.bandit_policy_gradient(theta, rewards)
    g = torch.Generator(d).manual_seed(0)
    rl.score_function_samples(theta, rewards, 100, baseline=torch.tensor(0.5), generator=g)
    env = cartpole.CartPole(8, device=d, generator=torch.Generator(d).manual_seed(0))
    env.state = torch.zeros(8, 4)
    env.step(torch.ones(8, dtype=torch.long))  # an action on the CPU
    env.step(torch.ones(8, dtype=torch.long, device=d))
    env.reset()
    policy = rl.MLPPolicy(4, 2, 8).to(d)
    policy.log_prob(torch.zeros(3, 4, device=d), torch.zeros(3, dtype=torch.long, device=d))
    batch = rl.rollout(env, policy, torch.Generator(d))
    rl.Batch(batch.obs, batch.actions, batch.rewards, batch.dones, batch.mask)
    for baseline in ("time", "mean", "none"):
        rl.policy_gradient_loss(policy, batch, baseline=baseline, entropy_coef=0.01)
    sgd = torch.optim.SGD(policy.parameters(), lr=0.01)
    rl.reinforce(env, policy, sgd, num_updates=2, generator=torch.Generator(d))
    cpu = torch.Generator().manual_seed(0)
    raises(ValueError, "generator", cartpole.CartPole, 4, device=d, generator=cpu)
    raises(ValueError, "generator", rl.score_function_samples, theta, rewards, 10, generator=cpu)
    raises(ValueError, "generator", policy.sample, torch.zeros(3, 4, device=d), cpu)
    raises(ValueError, "generator", rl.rollout, env, policy, cpu)
    raises(ValueError, "generator", rl.reinforce, env, policy, sgd, 1, generator=cpu)


@case
def recurrent_networks():
    for Cell in (rnn.RNNCell, rnn.LSTMCell, rnn.GRUCell):
        cell = Cell(3, 4, device=d)
        cell(torch.randn(2, 3, device=d))
        cell(torch.randn(3, device=d))
    for Net in (rnn.RNN, rnn.LSTM, rnn.GRU):
        net = Net(3, 4, 2, bidirectional=True, batch_first=True, dropout=0.1, device=d).train()
        net(torch.randn(2, 5, 3, device=d))[0].sum().backward()
        clipping.clip_grad_norm_(net.parameters(), 1.0)
        clipping.clip_grad_norm_(net.parameters(), 1.0, norm_type=float("inf"))
        clipping.clip_grad_value_(net.parameters(), 0.1)


@case
def loss_functions():
    x = torch.randn(6, 4, device=d, requires_grad=True)
    y = torch.tensor([0, 1, 2, 3, -100, 1], device=d)
    w = torch.rand(4, device=d)
    losses.softmax(x, 1)
    losses.log_softmax(x, 1, dtype=torch.float64)
    losses.nll_loss(losses.log_softmax(x, 1), y, w)
    losses.cross_entropy(x, y, w, label_smoothing=0.1).backward()
    losses.cross_entropy(x, torch.softmax(torch.randn(6, 4, device=d), 1))
    t, pos = torch.rand(6, 4, device=d), torch.rand(4, device=d)
    losses.binary_cross_entropy_with_logits(x, t, torch.rand(6, 4, device=d), pos_weight=pos)


@case
def optimizers():
    makers = (
        lambda p: optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.1),
        lambda p: optim.RMSprop(p, centered=True, momentum=0.5, weight_decay=0.1),
        lambda p: optim.Adam(p, amsgrad=True, weight_decay=0.1),
        lambda p: optim.AdamW(p),
        lambda p: optim.UniformAverage(p, lr=0.1),
    )
    for make in makers:
        lin = torch.nn.Linear(3, 2).to(d)
        opt = make(lin.parameters())
        for _ in range(2):
            opt.zero_grad()
            lin(torch.randn(4, 3, device=d)).square().sum().backward()
            opt.step()
        distributed.optimizer_state_bytes(opt)


@case
def activations_autodiff_backprop():
    x = torch.randn(5, device=d, requires_grad=True)
    for f in (activations.relu, activations.sigmoid, activations.tanh, activations.gelu):
        f(x).sum().backward()
    for f in (activations.silu, activations.softplus):
        f(x).sum().backward()
    activations.gelu(x, approximate="tanh")
    v = torch.randn(4, device=d, dtype=torch.float64)
    autodiff.finite_difference_grad(lambda v: (v**2).sum(), v)
    w3, x2 = torch.randn(3, device=d), torch.randn(2, device=d)
    backprop.sigmoid_loss(w3, x2)
    backprop.sigmoid_loss_backward(w3, x2)
    names = ("w_a", "b_a", "w_b", "b_b", "w_c", "b_c", "w_d", "b_d", "w_d2", "b_d2", "w_e", "b_e")
    params = {n: torch.tensor(0.1 * i, device=d) for i, n in enumerate(names)}
    backprop.skip_forward(params, torch.tensor(0.5, device=d), 0.3)
    backprop.skip_backward(params, 0.5, torch.tensor(0.3, device=d))
    A, w = torch.randn(6, 4, device=d), torch.randn(6, device=d)
    backprop.relu_net(torch.randn(4, device=d), A, w)
    backprop.relu_net_input_grad(torch.randn(4, device=d), A, w)
    X, W, G = torch.randn(3, 4, device=d), torch.randn(4, 2, device=d), torch.randn(3, 2, device=d)
    backprop.linear_backward(X, W, G)
    backprop.forward_backward_flops(torch.nn.Linear(4, 2).to(d), torch.randn(3, 4, device=d))


@case
def conditioning_functions():
    H = torch.diag(torch.tensor([1.0, 10.0], device=d))
    conditioning.condition_number(H)
    conditioning.run_quadratic("gd", torch.tensor([0.1, 1.0], device=d), 3)
    conditioning.iterations_to_tolerance("gd", H, w0=torch.ones(2, device=d))
    conditioning.loglog_slope(torch.tensor([1.0, 2.0], device=d), torch.tensor([1.0, 4.0]))
    g = torch.randn(50, 3, device=d)
    conditioning.minibatch_gradient_variance(g, 4, 10)
    conditioning.minibatch_gradient_variance(g, 4, 10, generator=torch.Generator(d))
    raises(ValueError, "generator", conditioning.minibatch_gradient_variance, g, 4, 10,
           generator=torch.Generator())  # fmt: skip


@case
def scaling_functions():
    """NumPy functions: a device tensor gets a message that says where it is."""
    t = torch.tensor([1.0, 2.0, 4.0], device=d)
    raises(TypeError, "x is a tensor on vgpu:0", scaling.fit_power_law, t, np.ones(3))
    raises(TypeError, "x is a tensor on vgpu:0", scaling.power_law, t, 1.0, 0.5)
    raises(TypeError, "N is a tensor on vgpu:0", scaling.chinchilla_loss, t, 1e9)
    raises(TypeError, "N is a tensor on vgpu:0", scaling.training_flops, t, 1e9)
    raises(TypeError, "C is a tensor on vgpu:0", scaling.chinchilla_optimal, t)
    raises(TypeError, "num_params is a tensor on", llm_systems.model_state_bytes, t)
    raises(TypeError, "intensity is a tensor on", llm_systems.roofline, t, 1e12, 1e9)
    scaling.fit_power_law(np.array([1.0, 2.0, 4.0]), t.cpu())
    scaling.PowerLaw(1.0, 0.5, 0.0)


@case
def convolutions():
    x = torch.randn(2, 4, 7, 7, device=d, requires_grad=True)
    w, b = torch.randn(6, 2, 3, 3, device=d), torch.randn(6, device=d)
    conv.conv2d(x, w, b, stride=2, padding="valid", groups=2).sum().backward()
    conv.conv2d(x, w, b, padding="same", dilation=2, groups=2)
    conv.conv1d(torch.randn(2, 4, 9, device=d), torch.randn(3, 4, 3, device=d), padding=1)
    conv.conv_transpose2d(x, torch.randn(4, 3, 3, 3, device=d), stride=2, output_padding=1)
    conv.max_pool2d(x, 3, stride=2, padding=1, ceil_mode=True, return_indices=True)
    conv.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
    layer = conv.Conv2d(4, 6, 3, padding=1, device=d)
    layer.reset_parameters()
    conv.MaxPool2d(2)(layer(x))


@case
def normalization_init_dropout():
    x = torch.randn(8, 6, 5, device=d, requires_grad=True)
    mean, var = torch.zeros(6, device=d), torch.ones(6, device=d)
    normalization.batch_norm(x, mean, var, torch.ones(6, device=d), None, training=True)
    normalization.layer_norm(x, (5,), torch.ones(5, device=d), torch.zeros(5, device=d))
    normalization.rms_norm(x, (5,), torch.ones(5, device=d))
    normalization.group_norm(x, 3, torch.ones(6, device=d), torch.zeros(6, device=d))
    for m in (
        normalization.BatchNorm1d(6, device=d),
        normalization.LayerNorm(5, device=d),
        normalization.RMSNorm(5, device=d),
        normalization.GroupNorm(3, 6, device=d),
    ):
        m(x).sum().backward()
        m.eval()(x)
    normalization.BatchNorm2d(6, device=d)(torch.randn(2, 6, 3, 3, device=d))
    g = torch.Generator(device=d)
    for fill in (init.xavier_uniform_, init.xavier_normal_, init.kaiming_uniform_):
        fill(torch.empty(4, 6, device=d), generator=g)
    init.kaiming_normal_(torch.empty(4, 6, 3, 3, device=d), generator=g)
    regularization.dropout(x, 0.3, generator=g)
    regularization.Dropout(0.3)(x)


@case
def numerics():
    x = torch.randn(100, device=d) * 1e3
    for dtype in (torch.bfloat16, torch.float16):
        precision.round_to(x, dtype)
        precision.sequential_sum(x, dtype)
        precision.kahan_sum(x, dtype)
    w = torch.nn.Parameter(torch.ones(3, device=d))
    opt = torch.optim.SGD([w], lr=0.1)
    scaler = precision.LossScaler()
    scaler.scale((w * 2).sum()).backward()
    scaler.unscale_(opt)
    scaler.step(opt)
    scaler.update()


def public_callables() -> dict[str, object]:
    """Every public function and method of the dlref modules, by dotted name: its code object."""
    found = {}
    for module_name in dlref.__all__:
        module = getattr(dlref, module_name)
        for name in module.__all__:
            obj = getattr(module, name)
            if getattr(obj, "__module__", module.__name__) != module.__name__:
                continue  # re-exported from the module where it now lives
            if inspect.isclass(obj):
                for attr, member in vars(obj).items():
                    if attr.startswith("_") and attr not in ("__init__", "__call__"):
                        continue
                    member = inspect.unwrap(member) if callable(member) else member
                    if inspect.isfunction(member):
                        found[f"{module_name}.{name}.{attr}"] = member.__code__
            elif inspect.isfunction(inspect.unwrap(obj)):
                found[f"{module_name}.{name}"] = inspect.unwrap(obj).__code__
    return found


def exempt(name: str) -> bool:
    patterns = [p for group in EXEMPT.values() for p in group]
    return any(name == p or (p.endswith("*") and name.startswith(p[:-1])) for p in patterns)


def main() -> int:
    entered: set = set()

    def profile(frame, event, arg):
        if event == "call":
            entered.add(frame.f_code)

    failures = 0
    sys.setprofile(profile)
    try:
        for f in CASES:
            torch.manual_seed(0)
            error = None
            with VirtualGPU() as vg:
                try:
                    f()
                except Exception as e:  # noqa: BLE001 - reported, then counted as a failure
                    error = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
            failures += bool(error) + len(vg.violations)
            syncs = collections.Counter()
            for (where, _), n in vg.syncs.items():
                syncs[where] += n
            print(f"sweep {f.__name__:32} {'RAISED ' + error if error else 'ok'}")
            for (where, what), n in sorted(vg.violations.items()):
                print(f"  DEVICE {where}: {what} (x{n})")
            for where, n in sorted(syncs.items()):
                if where.startswith("src/"):
                    print(f"  sync   {where} (x{n})")
    finally:
        sys.setprofile(None)
    callables = public_callables()
    swept = [name for name, code in callables.items() if not exempt(name)]
    missed = [name for name in swept if callables[name] not in entered]
    n_exempt = len(callables) - len(swept)
    print(
        f"sweep covers {len(swept) - len(missed)} of the {len(swept)} public functions and "
        f"methods that take tensors or a device ({n_exempt} more take neither: "
        f"{'; '.join(EXEMPT)})"
    )
    for name in missed:
        print(f"  NOT SWEPT {name}")
    return failures + len(missed)


if __name__ == "__main__":
    sys.exit(1 if main() else 0)
