"""dlref.attention against torch's fused SDPA (forward + backward), and KV-cache decoding.

The SDPA cases: batch 8, 8 heads, head dim 64, float32, no mask and causal, T = 256 and 512.
On CPU torch runs its flash-attention kernel for these; dlref materialises the (T, T) scores.

The decoding cases compare dlref with dlref: greedy generation with the KV cache ("dlref"
column) against recomputing the whole prefix at every step ("torch" column), for a 4-layer,
d = 256 model, 16-token prompt, batch 1. There the ratio is 1 / speed-up. Run this file directly
for the tokens/s table:

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_attention.py
"""

import statistics
import time

import torch
import torch.nn.functional as F

from dlref.attention import scaled_dot_product_attention
from dlref.transformer import Transformer, TransformerConfig


def _qkv(T):
    def make():
        g = torch.Generator().manual_seed(0)
        return tuple(torch.randn(8, 8, T, 64, generator=g, requires_grad=True) for _ in range(3))

    return make


def _fwd_bwd(attention, is_causal):
    def run(q, k, v):
        attention(q, k, v, is_causal=is_causal).sum().backward()
        q.grad = k.grad = v.grad = None

    return run


DECODE_CONFIG = TransformerConfig(
    vocab_size=256, max_seq_len=16 + 512, d_model=256, num_layers=4, num_heads=4, mlp="gelu_tanh"
)


def _decode_inputs():
    torch.manual_seed(0)
    model = Transformer(DECODE_CONFIG).eval()
    return model, torch.randint(0, 256, (1, 16))


def _generate(n_new, use_cache):
    def run(model, prompt):
        model.generate(prompt, n_new, use_cache=use_cache)

    return run


CASES = [
    (
        f"sdpa fwd+bwd T={T} {'causal' if causal else 'no mask'} (8,8,T,64) f32",
        _qkv(T),
        _fwd_bwd(scaled_dot_product_attention, causal),
        _fwd_bwd(F.scaled_dot_product_attention, causal),
    )
    for T in (256, 512)
    for causal in (False, True)
] + [
    (
        f"greedy decode {n} tokens: KV cache vs recompute",
        _decode_inputs,
        _generate(n, True),
        _generate(n, False),
    )
    for n in (64, 128)
]


def decode_table(lengths=(64, 128, 256, 512), repeats=3):
    """Tokens/s with and without the cache, and the speed-up, median of ``repeats`` runs."""
    model, prompt = _decode_inputs()
    print(f"greedy decoding, {DECODE_CONFIG.num_layers} layers, d={DECODE_CONFIG.d_model}, ")
    print(f"{'new tokens':>10} {'cache tok/s':>12} {'recompute tok/s':>16} {'speed-up':>9}")
    for n in lengths:
        times = {True: [], False: []}
        for _ in range(repeats):
            for use_cache in (True, False):
                t0 = time.perf_counter()
                model.generate(prompt, n, use_cache=use_cache)
                times[use_cache].append(time.perf_counter() - t0)
        t_cache, t_full = statistics.median(times[True]), statistics.median(times[False])
        print(f"{n:>10} {n / t_cache:>12.0f} {n / t_full:>16.0f} {t_full / t_cache:>8.1f}x")


if __name__ == "__main__":
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)")
    decode_table()
