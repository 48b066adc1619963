"""dlref.attention against torch's fused SDPA (forward + backward), and KV-cache decoding.

The SDPA cases: batch 8, 8 heads, head dim 64, float32, no mask and causal, T = 256 and 512.
On CPU torch runs its flash-attention kernel for these; dlref materialises the (T, T) scores.

Decoding compares dlref with dlref: greedy generation with the KV cache against recomputing the
whole prefix at every step, for a 4-layer, d = 256 model, 16-token prompt, batch 1 (too slow
for 30 repeats, so not in ``CASES``). Run this file directly for its tokens/s table, and with
``--sort`` for the gallery's sorting task trained with five seeds (held-out exact match per
seed, about 15 s each):

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_attention.py
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_attention.py --sort
"""

import math
import statistics
import sys
import time

import torch
import torch.nn.functional as F

from dlref.attention import scaled_dot_product_attention
from dlref.losses import cross_entropy
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


CASES = [
    (
        f"sdpa fwd+bwd T={T} {'causal' if causal else 'no mask'} (8,8,T,64) f32",
        _qkv(T),
        _fwd_bwd(scaled_dot_product_attention, causal),
        _fwd_bwd(F.scaled_dot_product_attention, causal),
    )
    for T in (256, 512)
    for causal in (False, True)
]


def decode_table(lengths=(64, 128, 256, 512), repeats=3):
    """Tokens/s with and without the cache, and the speed-up, median of ``repeats`` runs."""
    model, prompt = _decode_inputs()
    c = DECODE_CONFIG
    print(f"greedy decoding: {c.num_layers} layers, d={c.d_model}, {c.num_heads} heads, batch 1")
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


def _warmup_cosine(step, steps, warmup=50):
    """Learning-rate factor: linear warm-up, then a cosine decay to 0 (as in the gallery)."""
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * (step - warmup) / (steps - warmup)))


def sort_task_seeds(seeds=range(5), steps=1100, positional="learned", n_test=5000):
    """Held-out exact match of the gallery's sorting transformer, one training run per seed."""
    L = 8

    def make_batch(n):
        digits = torch.randint(0, 10, (n, L))
        seq = torch.cat([digits, digits.sort(dim=1).values], dim=1)
        x, y = seq[:, :-1], seq[:, 1:].clone()
        y[:, : L - 1] = -100
        return x, y

    results = []
    for seed in seeds:
        torch.manual_seed(seed)
        x_test, y_test = make_batch(n_test)
        cfg = TransformerConfig(
            vocab_size=10, max_seq_len=2 * L, d_model=32, num_layers=2, num_heads=4,
            positional=positional,
        )  # fmt: skip
        model = Transformer(cfg)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: _warmup_cosine(s, steps))
        t0 = time.perf_counter()
        for _ in range(steps):
            x, y = make_batch(64)
            loss = cross_entropy(model(x).reshape(-1, 10), y.reshape(-1))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        seconds = time.perf_counter() - t0
        out = model.eval().generate(x_test[:, :L], L)
        exact = (out[:, L:] == y_test[:, L - 1 :]).all(dim=1).float().mean().item()
        results.append(exact)
        print(f"seed {seed}: held-out exact match {exact:.2%} ({seconds:.1f} s of training)")
    mean = statistics.mean(results)
    print(f"{len(results)} seeds: mean {mean:.2%}, min {min(results):.2%}, max {max(results):.2%}")


if __name__ == "__main__":
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)")
    if "--sort" in sys.argv:
        sort_task_seeds()
    else:
        decode_table()
