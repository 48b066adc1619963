"""dlref.scaling against trusted references: closed forms, numeric minimisation, published numbers,
parameter counts of real torch modules, and FLOPs counted by torch's FlopCounterMode."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from dlref import scaling

# ------------------------------------------------------------------------------------ power laws


@settings(max_examples=40, deadline=None)
@given(a=st.floats(0.1, 1e3), b=st.floats(0.01, 2.0))
def test_fit_power_law_recovers_noise_free_parameters(a, b):
    x = np.geomspace(1e3, 1e9, 7)
    fit = scaling.fit_power_law(x, a * x**-b)
    assert fit.a == pytest.approx(a, rel=1e-9)
    assert fit.b == pytest.approx(b, rel=1e-9)
    assert fit.c == 0.0


@pytest.mark.parametrize(
    ("a", "b", "c"), [(406.4, 0.34, 1.69), (2.0, 0.076, 0.5), (50.0, 1.2, 3.0)]
)
def test_fit_power_law_with_irreducible_term_recovers_noise_free_parameters(a, b, c):
    x = np.geomspace(1e4, 1e10, 9)
    fit = scaling.fit_power_law(x, a * x**-b + c, irreducible=True)
    np.testing.assert_allclose([fit.a, fit.b, fit.c], [a, b, c], rtol=1e-6)


def test_fit_power_law_equals_least_squares_line_in_log_log_space():
    """The reference: numpy's degree-1 polynomial fit of log y on log x."""
    rng = np.random.default_rng(0)
    x = np.geomspace(10, 1e6, 15)
    y = 3.0 * x**-0.3 * np.exp(0.05 * rng.standard_normal(x.size))
    slope, intercept = np.polyfit(np.log(x), np.log(y), 1)
    fit = scaling.fit_power_law(x, y)
    assert fit.b == pytest.approx(-slope, rel=1e-10)
    assert fit.a == pytest.approx(math.exp(intercept), rel=1e-10)


@pytest.mark.parametrize("seed", range(5))
def test_fit_power_law_accuracy_with_noise(seed):
    """Stated accuracy: 2% multiplicative noise on 20 points over 6 decades gives b to +-0.01;
    with 1% noise and an irreducible term, b to +-0.05 and c to +-5%."""
    rng = np.random.default_rng(seed)
    x = np.geomspace(1e3, 1e9, 20)
    y = 5.0 * x**-0.2 * np.exp(0.02 * rng.standard_normal(x.size))
    assert abs(scaling.fit_power_law(x, y).b - 0.2) < 0.01
    y = (406.4 * x**-0.34 + 1.69) * np.exp(0.01 * rng.standard_normal(x.size))
    fit = scaling.fit_power_law(x, y, irreducible=True)
    assert abs(fit.b - 0.34) < 0.05
    assert abs(fit.c - 1.69) < 0.05 * 1.69


def test_power_law_slope_on_log_log_axes_is_minus_b_whatever_the_coefficient():
    C = np.array([1e-3, 1e3])
    for a in (2.57, 3.0):
        y = scaling.power_law(C, a, 0.048)
        slope = np.diff(np.log(y)) / np.diff(np.log(C))
        assert slope[0] == pytest.approx(-0.048, rel=1e-12)


# ------------------------------------------------------------------------------------ Chinchilla


def test_chinchilla_loss_is_the_published_fit():
    N, D = 70e9, 1.4e12
    assert scaling.chinchilla_loss(N, D) == pytest.approx(1.69 + 406.4 / N**0.34 + 410.7 / D**0.28)
    arr = scaling.chinchilla_loss(np.array([N, 2 * N]), np.array([D, D]))
    assert arr.shape == (2,) and arr[1] < arr[0]


def _numeric_optimum(C):
    """Minimise L(N, C / 6N) over log N: a grid, then golden-section search."""

    def loss(log_n):
        N = math.exp(log_n)
        return scaling.chinchilla_loss(N, C / (6 * N))

    grid = np.linspace(math.log(1e3), math.log(C / 6 / 1e3), 2000)
    i = int(np.argmin([loss(t) for t in grid]))
    lo, hi = grid[i - 1], grid[i + 1]
    r = (math.sqrt(5) - 1) / 2
    while hi - lo > 1e-12:
        m1, m2 = hi - r * (hi - lo), lo + r * (hi - lo)
        lo, hi = (lo, m2) if loss(m1) < loss(m2) else (m1, hi)
    return math.exp((lo + hi) / 2)


@pytest.mark.parametrize("C", [1e18, 1e21, 5.76e23, 1e26])
def test_chinchilla_optimal_matches_numeric_minimisation(C):
    N, D = scaling.chinchilla_optimal(C)
    assert 6 * N * D == pytest.approx(C, rel=1e-12)
    assert N == pytest.approx(_numeric_optimum(C), rel=1e-6)


def test_chinchilla_optimal_exponents_match_the_paper():
    """Hoffmann et al. (2022), table 2, approach 3: N_opt ∝ C^0.46, D_opt ∝ C^0.54 (the paper's
    unrounded fit; the rounded alpha, beta give 0.452 and 0.548)."""
    (N1, D1), (N2, D2) = scaling.chinchilla_optimal(1e20), scaling.chinchilla_optimal(1e24)
    a, b = math.log10(N2 / N1) / 4, math.log10(D2 / D1) / 4
    assert a == pytest.approx(0.28 / 0.62, rel=1e-12)
    assert abs(a - 0.46) < 0.01 and abs(b - 0.54) < 0.01
    N, D = scaling.chinchilla_optimal(np.array([1e20, 1e24]))
    np.testing.assert_allclose(N, [N1, N2], rtol=1e-14)


# ------------------------------------------------------------------------------------ FLOPs


class _Block(nn.Module):
    """A pre-norm GPT block written with explicit matmuls, so FlopCounterMode sees every one."""

    def __init__(self, d, n_head, d_ff):
        super().__init__()
        self.n_head = n_head
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.up, self.down = nn.Linear(d, d_ff), nn.Linear(d_ff, d)
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)

    def forward(self, x):
        B, T, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=-1)
        q, k, v = (t.view(B, T, self.n_head, -1).transpose(1, 2) for t in (q, k, v))  # (B,h,T,dh)
        att = (q @ k.transpose(-2, -1) / math.sqrt(d // self.n_head)).softmax(-1)  # (B,h,T,T)
        x = x + self.proj((att @ v).transpose(1, 2).reshape(B, T, d))
        return x + self.down(F.gelu(self.up(self.ln2(x))))


@pytest.mark.parametrize(
    ("n_layer", "d", "n_head", "T", "d_ff"), [(2, 16, 2, 8, 64), (3, 24, 4, 5, 40)]
)
def test_flops_per_token_matches_flop_counter(n_layer, d, n_head, T, d_ff):
    """torch counts 2mnk per matmul and computes the whole attention square: causal=False."""
    model = nn.Sequential(*[_Block(d, n_head, d_ff) for _ in range(n_layer)])
    B = 3
    x = torch.randn(B, T, d, requires_grad=True)  # so the first layer's input gradient counts too
    with FlopCounterMode(display=False) as fwd:
        y = model(x)
    with FlopCounterMode(display=False) as bwd:
        y.sum().backward()
    kw = dict(n_layer=n_layer, d_model=d, n_ctx=T, d_ff=d_ff, causal=False)
    assert fwd.get_total_flops() == B * T * scaling.flops_per_token(**kw, training=False)
    total = fwd.get_total_flops() + bwd.get_total_flops()
    assert total == B * T * scaling.flops_per_token(**kw, training=True)


def test_flops_per_token_kaplan_convention():
    """Kaplan et al. (2020), table 1: C_forward = 2N + 2 n_layer n_ctx d_attn, N = 12 n_layer d²."""
    n_layer, d, n_ctx = 48, 1600, 1024
    N = 12 * n_layer * d**2
    assert scaling.flops_per_token(n_layer, d, n_ctx, training=False) == 2 * N + 2 * 48 * 1024 * d
    assert scaling.flops_per_token(n_layer, d, n_ctx) == 3 * (2 * N + 2 * 48 * 1024 * d)
    assert scaling.training_flops(N, 1e9) == pytest.approx(6 * N * 1e9)


# ------------------------------------------------------------------------------------ parameters


def test_transformer_parameters_published_counts():
    # Llama 3 8B: 8,030,261,248 (the safetensors total of meta-llama/Meta-Llama-3-8B)
    llama = dict(d_ff=14336, n_kv_head=8, mlp="swiglu", norm="rmsnorm", bias=False)
    assert (
        scaling.transformer_parameters(32, 4096, 32, 128256, **llama, tie_embeddings=False)
        == 8_030_261_248
    )
    # GPT-2 small: 124,439,808 (Hugging Face's gpt2 checkpoint)
    assert scaling.transformer_parameters(12, 768, 12, 50257, n_positions=1024) == 124_439_808


def _count(module):
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("bias", [True, False])
def test_transformer_parameters_equals_gpt2_style_torch_model(bias):
    """GPT-2 layout from torch's own layers: TransformerEncoderLayer, LayerNorm, tied head."""
    n_layer, d, n_head, V, d_ff, P = 2, 32, 4, 50, 96, 16
    layers = [
        nn.TransformerEncoderLayer(d, n_head, d_ff, norm_first=True, bias=bias)
        for _ in range(n_layer)
    ]
    final_norm = nn.LayerNorm(d, bias=bias)
    model = nn.ModuleList([nn.Embedding(V, d), nn.Embedding(P, d), *layers, final_norm])
    expected = scaling.transformer_parameters(
        n_layer, d, n_head, V, d_ff=d_ff, n_positions=P, bias=bias
    )
    assert _count(model) == expected


def test_transformer_parameters_agrees_with_the_transformer_topic():
    """The transformer topic's count_parameters, where that module is installed."""
    transformer = pytest.importorskip("dlref.transformer")
    Config = transformer.TransformerConfig
    llama = Config(
        vocab_size=128256, max_seq_len=8192, d_model=4096, num_layers=32, num_heads=32,
        num_kv_heads=8, d_ff=14336, mlp="swiglu", norm="rmsnorm", positional="rope",
        tie_embeddings=False, bias=False,
    )  # fmt: skip
    gpt2 = Config(
        vocab_size=50257, max_seq_len=1024, d_model=768, num_layers=12, num_heads=12,
        d_ff=3072, mlp="gelu", norm="layernorm", positional="learned", tie_embeddings=True,
        bias=True,
    )  # fmt: skip
    assert transformer.count_parameters(llama) == 8_030_261_248
    assert transformer.count_parameters(gpt2) == scaling.transformer_parameters(
        12, 768, 12, 50257, n_positions=1024
    )


class _LlamaLayer(nn.Module):
    def __init__(self, d, n_head, n_kv_head, d_ff):
        super().__init__()
        d_kv = n_kv_head * d // n_head
        self.q, self.k, self.v, self.o = (
            nn.Linear(d, d, bias=False),
            nn.Linear(d, d_kv, bias=False),
            nn.Linear(d, d_kv, bias=False),
            nn.Linear(d, d, bias=False),
        )
        self.gate, self.up = nn.Linear(d, d_ff, bias=False), nn.Linear(d, d_ff, bias=False)
        self.down = nn.Linear(d_ff, d, bias=False)
        self.n1, self.n2 = nn.RMSNorm(d), nn.RMSNorm(d)


@pytest.mark.parametrize(
    ("n_kv_head", "tie", "bias"), [(2, False, False), (8, True, False), (4, False, True)]
)
def test_transformer_parameters_equals_llama_style_torch_model(n_kv_head, tie, bias):
    n_layer, d, n_head, V, d_ff = 3, 64, 8, 100, 176
    layers = [_LlamaLayer(d, n_head, n_kv_head, d_ff) for _ in range(n_layer)]
    if bias:  # the same layout with a bias on every projection
        for layer in layers:
            for name in ("q", "k", "v", "o", "gate", "up", "down"):
                lin = getattr(layer, name)
                setattr(layer, name, nn.Linear(lin.in_features, lin.out_features))
    parts = [nn.Embedding(V, d), *layers, nn.RMSNorm(d)]
    if not tie:
        parts.append(nn.Linear(d, V, bias=False))
    expected = scaling.transformer_parameters(
        n_layer, d, n_head, V, d_ff=d_ff, n_kv_head=n_kv_head, mlp="swiglu", norm="rmsnorm",
        bias=bias, tie_embeddings=tie,
    )  # fmt: skip
    assert _count(nn.ModuleList(parts)) == expected


def test_transformer_parameters_is_kaplans_12_n_layer_d_squared_without_embeddings():
    n_layer, d = 24, 1024
    total = scaling.transformer_parameters(n_layer, d, 16, 1, bias=False, tie_embeddings=True)
    non_embedding = total - d - d - n_layer * 2 * d  # vocabulary of 1, bias-free norms
    assert non_embedding == 12 * n_layer * d**2


# ------------------------------------------------------------------------------------ memory


def test_zero_memory_reproduces_the_paper():
    """Rajbhandari et al. (2020), figure 1: 120, 31.4, 16.6, 1.9 GB, with GB = 1e9 bytes."""
    got = [scaling.zero_memory(7.5e9, 64, s) for s in range(4)]
    assert [round(g / 1e9, 1) for g in got] == [120.0, 31.4, 16.6, 1.9]
    assert [round(g / 2**30, 1) for g in got] == [111.8, 29.2, 15.5, 1.7]  # not GiB


@pytest.mark.parametrize("n", [1, 2, 3, 8])
def test_zero_memory_equals_a_simulated_partition(n):
    """Reference: split each state over n devices as a list and sum what device 0 holds."""
    psi = 1200
    state = {"w": 2 * psi, "g": 2 * psi, "o": 12 * psi}
    split = {0: (), 1: ("o",), 2: ("o", "g"), 3: ("o", "g", "w")}
    for stage, parts in split.items():
        device0 = sum(
            np.array_split(np.ones(b), n)[0].sum() if k in parts else b for k, b in state.items()
        )
        assert scaling.zero_memory(psi, n, stage) == pytest.approx(device0)


@settings(max_examples=50, deadline=None)
@given(psi=st.integers(1, 10**12), n=st.integers(1, 4096), k=st.sampled_from([0, 8, 12, 16]))
def test_zero_memory_properties(psi, n, k):
    """Stages never add memory; one device is plain training; stage 3 divides the total by n."""
    per_stage = [scaling.zero_memory(psi, n, s, k=k) for s in range(4)]
    assert all(per_stage[s] >= per_stage[s + 1] for s in range(3))
    assert per_stage[3] * n == pytest.approx(per_stage[0], rel=1e-12)
    assert [scaling.zero_memory(psi, 1, s, k=k) for s in range(4)] == [(4 + k) * psi] * 4


def test_model_state_bytes_mixed_precision_adam():
    w, g, o = scaling.model_state_bytes(1000)
    assert (w, g, o) == (2000, 2000, 12000)
    assert sum(scaling.model_state_bytes(1000, k=8, weight_bytes=4, grad_bytes=4)) == 16000


def test_activation_bytes_is_korthikanti_eq1():
    s, b, h, a = 2048, 4, 12288, 96  # GPT-3 175B shapes
    assert scaling.activation_bytes_per_layer(s, b, h, a) == pytest.approx(
        s * b * h * (34 + 5 * a * s / h)
    )
    assert scaling.activation_bytes_per_layer(s, b, h, a, attention_scores=False) == 34 * s * b * h


def test_kv_cache_bytes_equals_the_tensors_of_a_real_cache():
    n_layer, n_kv, hd, T, B = 3, 2, 16, 10, 4
    cache = [
        (
            torch.empty(B, n_kv, T, hd, dtype=torch.bfloat16),
            torch.empty(B, n_kv, T, hd, dtype=torch.bfloat16),
        )
        for _ in range(n_layer)
    ]
    nbytes = sum(t.numel() * t.element_size() for kv in cache for t in kv)
    assert scaling.kv_cache_bytes(n_layer, n_kv, hd, T, batch_size=B) == nbytes


@pytest.mark.parametrize(("m", "k", "n"), [(64, 32, 16), (1, 128, 128), (100, 100, 100)])
def test_matmul_intensity_equals_counted_flops_over_bytes(m, k, n):
    A, Bm = torch.randn(m, k, dtype=torch.float16), torch.randn(k, n, dtype=torch.float16)
    with FlopCounterMode(display=False) as counter:
        out = A.float() @ Bm.float()
    nbytes = (A.numel() + Bm.numel() + out.numel()) * 2
    assert scaling.matmul_intensity(m, k, n) == pytest.approx(counter.get_total_flops() / nbytes)


def test_roofline_is_the_minimum_of_the_two_roofs():
    peak, bw = 989e12, 3.35e12
    ridge = peak / bw
    assert scaling.roofline(ridge / 2, peak, bw) == pytest.approx(peak / 2)
    assert scaling.roofline(ridge * 2, peak, bw) == peak
    np.testing.assert_allclose(scaling.roofline(np.array([1.0, 1e4]), peak, bw), [bw, peak])


# ------------------------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    ("call", "exc", "match"),
    [
        (
            lambda: scaling.fit_power_law([1, 2], [1, 2, 3]),
            ValueError,
            r"x has shape \(2,\) but y has shape \(3,\)",
        ),
        (lambda: scaling.fit_power_law([1, 2], [1, -2]), ValueError, "y must hold positive"),
        (
            lambda: scaling.fit_power_law([[1, 2]], [[1, 2]]),
            ValueError,
            r"x must be one-dimensional, got shape \(1, 2\)",
        ),
        (
            lambda: scaling.fit_power_law([1, 2], [3, 4], irreducible=True),
            ValueError,
            "at least 3 distinct",
        ),
        (lambda: scaling.chinchilla_loss(0, 1e9), ValueError, "N must be positive"),
        (lambda: scaling.chinchilla_loss(1e9, "many"), TypeError, "D must be a real number"),
        (lambda: scaling.chinchilla_optimal(-1.0), ValueError, "C must be positive"),
        (
            lambda: scaling.training_flops(1e9, float("inf")),
            ValueError,
            "D must be positive and finite",
        ),
        (
            lambda: scaling.flops_per_token(2.0, 16, 8),
            TypeError,
            "n_layer must be an int, got float",
        ),
        (
            lambda: scaling.transformer_parameters(2, 30, 4, 10),
            ValueError,
            "d_model=30 must be divisible by n_head=4",
        ),
        (
            lambda: scaling.transformer_parameters(2, 32, 4, 10, n_kv_head=3),
            ValueError,
            "n_kv_head=3 must divide n_head=4",
        ),
        (
            lambda: scaling.transformer_parameters(2, 32, 4, 10, mlp="relu"),
            ValueError,
            "mlp must be 'gelu' or 'swiglu'",
        ),
        (
            lambda: scaling.transformer_parameters(2, 32, 4, 10, norm="batchnorm"),
            ValueError,
            "norm must be",
        ),
        (lambda: scaling.zero_memory(1e9, 8, 4), ValueError, r"stage=4 is out of range"),
        (
            lambda: scaling.zero_memory(1e9, 0, 1),
            ValueError,
            "num_devices must be at least 1, got 0",
        ),
        (lambda: scaling.model_state_bytes(1e9, k=-1), ValueError, "k must be a non-negative"),
        (lambda: scaling.kv_cache_bytes(32, 8, 128, 0), ValueError, "seq_len must be at least 1"),
        (lambda: scaling.matmul_intensity(True, 2, 2), TypeError, "m must be an int, got bool"),
        (lambda: scaling.roofline(1.0, 0.0, 1.0), ValueError, "peak_flops must be positive"),
        (
            lambda: scaling.roofline(1.0, "1e12", 1.0),
            TypeError,
            "peak_flops must be a real number, got str '1e12'",
        ),
        (
            lambda: scaling.power_law(10.0, a="2", b=0.5),
            TypeError,
            "a must be a real number, got str '2'",
        ),
        (
            lambda: scaling.chinchilla_loss(1e9, 1e10, E="1.69"),
            TypeError,
            "E must be a real number, got str '1.69'",
        ),
        (
            lambda: scaling.chinchilla_optimal(1e21, alpha=0.0),
            ValueError,
            "alpha must be positive and finite, got 0.0",
        ),
        (
            lambda: scaling.fit_power_law("a string", [1.0, 2.0]),
            TypeError,
            "x must be an array of real numbers, got 'a string'",
        ),
        (
            lambda: scaling.transformer_parameters(2, 32, 4, 10, bias="yes"),
            TypeError,
            "bias must be a bool, got str 'yes'",
        ),
        (
            lambda: scaling.model_state_bytes(1e9, k=math.nan),
            ValueError,
            "k must be a non-negative number of bytes, got nan",
        ),
    ],
)
def test_errors_name_the_argument(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
