"""dlref.scaling against trusted references: closed forms, numeric minimisation, published numbers
and FLOPs counted by torch's FlopCounterMode."""

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


@pytest.mark.parametrize(
    ("call", "exc", "match"),
    [
        (
            lambda: scaling.fit_power_law([1, 2], [1, 2, 3]),
            ValueError,
            r"y must have shape \(n,\), the shape of x = \(2\), got \(3,\)",
        ),
        (
            lambda: scaling.fit_power_law([1, 2], [1, -2]),
            ValueError,
            "y must hold finite numbers > 0, got",
        ),
        (
            lambda: scaling.fit_power_law([[1, 2]], [[1, 2]]),
            ValueError,
            r"x must have shape \(n,\) = \(any\), got \(1, 2\)",
        ),
        (
            lambda: scaling.fit_power_law([1, 2], [3, 4], irreducible=True),
            ValueError,
            "at least 3 distinct",
        ),
        (
            lambda: scaling.fit_power_law([1, 2], [3, 4], irreducible=1),
            TypeError,
            "irreducible must be a bool, got int 1",
        ),
        (
            lambda: scaling.chinchilla_loss(0, 1e9),
            ValueError,
            "N must be a finite number > 0, got 0",
        ),
        (
            lambda: scaling.chinchilla_loss(1e9, "many"),
            TypeError,
            "D must be a real number or an array of them, got 'many'",
        ),
        (lambda: scaling.chinchilla_optimal(-1.0), ValueError, "C must be a finite number > 0"),
        (
            lambda: scaling.chinchilla_optimal([1e21, -1.0]),
            ValueError,
            r"C must hold finite numbers > 0, got \[1e\+21, -1.0\]",
        ),
        (
            lambda: scaling.training_flops(1e9, float("inf")),
            ValueError,
            "D must be a finite number > 0, got inf",
        ),
        (
            lambda: scaling.flops_per_token(2.0, 16, 8),
            TypeError,
            "n_layer must be an int, got float",
        ),
        (
            lambda: scaling.flops_per_token(2, 16, 8, causal="yes"),
            TypeError,
            "causal must be a bool, got str 'yes'",
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
            "alpha must be a finite number > 0, got 0.0",
        ),
        (
            lambda: scaling.fit_power_law("a string", [1.0, 2.0]),
            TypeError,
            "x must be a real number or an array of them, got 'a string'",
        ),
    ],
)
def test_errors_name_the_argument(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_the_moved_names_still_import_from_scaling():
    """The LLM-systems arithmetic moved to dlref.llm_systems; dlref.scaling re-exports it."""
    from dlref import llm_systems

    for name in llm_systems.__all__:
        assert name in scaling.__all__
        assert getattr(scaling, name) is getattr(llm_systems, name)
