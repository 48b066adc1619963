"""dlref.llm_systems against trusted references: parameter counts of real torch modules,
published counts and memory figures, a simulated ZeRO partition, the bytes of real tensors, and
FLOPs counted by torch's FlopCounterMode."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from dlref import llm_systems

# ------------------------------------------------------------------------------------ parameters


def test_transformer_parameters_published_counts():
    # Llama 3 8B: 8,030,261,248 (the safetensors total of meta-llama/Meta-Llama-3-8B)
    llama = dict(d_ff=14336, n_kv_head=8, mlp="swiglu", norm="rmsnorm", bias=False)
    assert (
        llm_systems.transformer_parameters(32, 4096, 32, 128256, **llama, tie_embeddings=False)
        == 8_030_261_248
    )
    # GPT-2 small: 124,439,808 (Hugging Face's gpt2 checkpoint)
    assert llm_systems.transformer_parameters(12, 768, 12, 50257, n_positions=1024) == 124_439_808


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
    expected = llm_systems.transformer_parameters(
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
    assert transformer.count_parameters(gpt2) == llm_systems.transformer_parameters(
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
    expected = llm_systems.transformer_parameters(
        n_layer, d, n_head, V, d_ff=d_ff, n_kv_head=n_kv_head, mlp="swiglu", norm="rmsnorm",
        bias=bias, tie_embeddings=tie,
    )  # fmt: skip
    assert _count(nn.ModuleList(parts)) == expected


def test_transformer_parameters_is_kaplans_12_n_layer_d_squared_without_embeddings():
    n_layer, d = 24, 1024
    total = llm_systems.transformer_parameters(n_layer, d, 16, 1, bias=False, tie_embeddings=True)
    non_embedding = total - d - d - n_layer * 2 * d  # vocabulary of 1, bias-free norms
    assert non_embedding == 12 * n_layer * d**2


# ------------------------------------------------------------------------------------ memory


def test_zero_memory_reproduces_the_paper():
    """Rajbhandari et al. (2020), figure 1: 120, 31.4, 16.6, 1.9 GB, with GB = 1e9 bytes."""
    got = [llm_systems.zero_memory(7.5e9, 64, s) for s in range(4)]
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
        assert llm_systems.zero_memory(psi, n, stage) == pytest.approx(device0)


@settings(max_examples=50, deadline=None)
@given(psi=st.integers(1, 10**12), n=st.integers(1, 4096), k=st.sampled_from([0, 8, 12, 16]))
def test_zero_memory_properties(psi, n, k):
    """Stages never add memory; one device is plain training; stage 3 divides the total by n."""
    per_stage = [llm_systems.zero_memory(psi, n, s, k=k) for s in range(4)]
    assert all(per_stage[s] >= per_stage[s + 1] for s in range(3))
    assert per_stage[3] * n == pytest.approx(per_stage[0], rel=1e-12)
    assert [llm_systems.zero_memory(psi, 1, s, k=k) for s in range(4)] == [(4 + k) * psi] * 4


def test_model_state_bytes_mixed_precision_adam():
    w, g, o = llm_systems.model_state_bytes(1000)
    assert (w, g, o) == (2000, 2000, 12000)
    assert sum(llm_systems.model_state_bytes(1000, k=8, weight_bytes=4, grad_bytes=4)) == 16000


def test_activation_bytes_is_korthikanti_eq1():
    s, b, h, a = 2048, 4, 12288, 96  # GPT-3 175B shapes
    assert llm_systems.activation_bytes_per_layer(s, b, h, a) == pytest.approx(
        s * b * h * (34 + 5 * a * s / h)
    )
    assert (
        llm_systems.activation_bytes_per_layer(s, b, h, a, attention_scores=False) == 34 * s * b * h
    )


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
    assert llm_systems.kv_cache_bytes(n_layer, n_kv, hd, T, batch_size=B) == nbytes


@pytest.mark.parametrize(("m", "k", "n"), [(64, 32, 16), (1, 128, 128), (100, 100, 100)])
def test_matmul_intensity_equals_counted_flops_over_bytes(m, k, n):
    A, Bm = torch.randn(m, k, dtype=torch.float16), torch.randn(k, n, dtype=torch.float16)
    with FlopCounterMode(display=False) as counter:
        out = A.float() @ Bm.float()
    nbytes = (A.numel() + Bm.numel() + out.numel()) * 2
    assert llm_systems.matmul_intensity(m, k, n) == pytest.approx(
        counter.get_total_flops() / nbytes
    )


def test_roofline_is_the_minimum_of_the_two_roofs():
    peak, bw = 989e12, 3.35e12
    ridge = peak / bw
    assert llm_systems.roofline(ridge / 2, peak, bw) == pytest.approx(peak / 2)
    assert llm_systems.roofline(ridge * 2, peak, bw) == peak
    np.testing.assert_allclose(llm_systems.roofline(np.array([1.0, 1e4]), peak, bw), [bw, peak])


# ------------------------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    ("call", "exc", "match"),
    [
        (
            lambda: llm_systems.transformer_parameters(2, 30, 4, 10),
            ValueError,
            "n_head=4 must divide the width d_model 30",
        ),
        (
            lambda: llm_systems.transformer_parameters(2, 32, 4, 10, n_kv_head=3),
            ValueError,
            "n_kv_head=3 must divide the query heads n_head 4",
        ),
        (
            lambda: llm_systems.transformer_parameters(2, 32, 4, 10, mlp="relu"),
            ValueError,
            r"mlp must be one of \('gelu', 'swiglu'\), got 'relu'",
        ),
        (
            lambda: llm_systems.transformer_parameters(2, 32, 4, 10, norm="batchnorm"),
            ValueError,
            "norm must be one of",
        ),
        (
            lambda: llm_systems.transformer_parameters(-1, 32, 4, 10),
            ValueError,
            "n_layer must be at least 0, got -1",
        ),
        (
            lambda: llm_systems.transformer_parameters(2, 32, 4, 10, bias="yes"),
            TypeError,
            "bias must be a bool, got str 'yes'",
        ),
        (lambda: llm_systems.zero_memory(1e9, 8, 4), ValueError, r"stage=4 is out of range"),
        (
            lambda: llm_systems.zero_memory(1e9, 0, 1),
            ValueError,
            "num_devices must be at least 1, got 0",
        ),
        (
            lambda: llm_systems.model_state_bytes(1e9, k=-1),
            ValueError,
            "k must be a finite number >= 0, got -1",
        ),
        (
            lambda: llm_systems.model_state_bytes(1e9, k=math.nan),
            ValueError,
            "k must be a finite number >= 0, got nan",
        ),
        (
            lambda: llm_systems.model_state_bytes(1e9, grad_bytes="2"),
            TypeError,
            "grad_bytes must be a real number, got str '2'",
        ),
        (
            lambda: llm_systems.model_state_bytes(0),
            ValueError,
            "num_params must be a finite number > 0, got 0",
        ),
        (
            lambda: llm_systems.activation_bytes_per_layer(8, 1, 16, 2, attention_scores=None),
            TypeError,
            "attention_scores must be a bool, got NoneType",
        ),
        (
            lambda: llm_systems.kv_cache_bytes(32, 8, 128, 0),
            ValueError,
            "seq_len must be at least 1",
        ),
        (
            lambda: llm_systems.matmul_intensity(True, 2, 2),
            TypeError,
            "m must be an int, got bool",
        ),
        (
            lambda: llm_systems.roofline(1.0, 0.0, 1.0),
            ValueError,
            "peak_flops must be a finite number > 0, got 0.0",
        ),
        (
            lambda: llm_systems.roofline(1.0, "1e12", 1.0),
            TypeError,
            "peak_flops must be a real number, got str '1e12'",
        ),
        (
            lambda: llm_systems.roofline([1.0, 0.0], 1e12, 1.0),
            ValueError,
            "intensity must hold finite numbers > 0",
        ),
    ],
)
def test_errors_name_the_argument(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
