"""
Tensor and pipeline parallelism on two processes
================================================

Two processes on one machine (``torch.distributed`` with gloo, on 127.0.0.1)
split one small float64 model instead of copying it:

- **tensor parallelism**, Megatron-style: each MLP's first linear split by
  columns, the second by rows, one all-reduce forward and one backward; written
  by hand (``MegatronMLP``) and with DTensor's ``parallelize_module``;
- **pipeline parallelism**: a two-block stack, one block per process, fed with
  :math:`m` micro-batches by ``torch.distributed.pipelining``'s
  ``ScheduleGPipe`` and ``Schedule1F1B``.

We check that each gives the single-process output and gradients, count the
bytes their collectives move, and time the pipeline bubble
:math:`(p-1)/(m+p-1)`. The workers live in ``dlref.parallel``.
"""

# %%
# Setup
# -----
import matplotlib.pyplot as plt
import torch

from dlref.parallel import (
    DELAY,
    bubble_fraction,
    make_mlp,
    ring_bytes,
    run_model_parallel,
    single_process_reference,
)

torch.manual_seed(0)
# the workers use the CPU
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

world_size, microbatches = 2, (2, 4, 8)

# %%
# Data
# ----
# A fixed batch of 32 float64 inputs of width 16 and the targets sin(x), drawn
# on the CPU inside ``dlref.parallel`` with its own generator, so every process
# and the reference see the same batch.
#
# Model
# -----
# One transformer MLP block (Linear(16, 64), tanh, Linear(64, 16)), split by
# tensor parallelism; the pipeline stacks ``world_size`` such blocks, one per
# process.
psi = sum(p.numel() for p in make_mlp().parameters())
print(
    f"one MLP block: {psi} parameters, float64; the pipeline stacks "
    f"{world_size} blocks"
)

# %%
# Training
# --------
# One forward and backward on a batch of 32, in one process (the reference) and
# on the two workers: tensor parallel (by hand and with DTensor), then the
# pipeline for each schedule and m.
ref = single_process_reference(num_stages=world_size)
ranks = run_model_parallel(
    world_size=world_size, microbatches=microbatches, timeout=120.0
)

# %%
# Results
# -------
# Equality with one process: the largest difference over the output, the loss,
# the input gradient and every parameter gradient (tensor parallel), and over
# every parameter gradient and the mean micro-batch loss (pipeline). The
# all-reduce adds the partial sums in another order than one matrix product
# does, so the last bits differ with the machine's kernels.
for method, name in (
    ("tp", "Megatron MLP by hand"),
    ("dtensor", "DTensor parallelize_module"),
):
    diff = max(
        (r[method][k] - ref["tp"][k]).abs().max().item()
        for r in ranks
        for k in ref["tp"]
    )
    print(f"{name:27s}: equal to 1e-12: {diff <= 1e-12}")
    print(f"    largest difference {diff:.0e} (varies with the machine)")
for schedule in ("gpipe", "1f1b"):
    for m in microbatches:
        run = [r["pp"][(schedule, m)] for r in ranks]
        grads = torch.cat([p["grads"] for p in run])
        loss = torch.stack(run[-1]["losses"]).mean()
        diff = max(
            (grads - ref["pp"]["grads"]).abs().max().item(),
            abs(loss - ref["pp"]["loss"]),
        )
        print(f"pipeline {schedule:5s} m={m}: equal to 1e-12: {diff <= 1e-12}")

# %%
# Communication per step, counted by wrapping the collectives (the full buffer
# of each call), and the bytes each rank sends in a ring,
# :func:`dlref.parallel.ring_bytes`.
calls = {
    "DDP": ranks[0]["dp"]["ddp"],
    "ZeRO-3 (FSDP2)": ranks[0]["dp"]["fsdp"],
    "tensor parallel": ranks[0]["tp"]["calls"],
}
for name, c in calls.items():
    kinds = sorted({k for k, _ in c})
    counted = ", ".join(
        f"{k} {sum(n for kk, n in c if kk == k)} B" for k in kinds
    )
    sent = sum(ring_bytes(k, n, world_size) for k, n in c)
    print(
        f"{name:15s}: {counted}; sent per rank {sent:.0f} B = "
        f"{sent / (8 * psi):.2f} x 8 Psi"
    )
sent = ranks[0]["pp"][("gpipe", 4)]["sent"]
print(
    f"pipeline, m=4  : stage 0 sends {len(sent)} activations of {sent[0]} B = "
    f"{sum(sent)} B"
)

# %%
# The bubble. During the timed steps each stage waits a fixed ``DELAY`` per
# micro-batch in the forward and again in the backward pass, so that its
# compute time is known; its idle fraction is 1 - busy / step. The measured
# fraction also holds the scheduling and message overhead.
print(f"t_f = t_b = {DELAY * 1e3:.0f} ms per micro-batch and stage")
print(" m | (p-1)/(m+p-1) | idle GPipe | idle 1F1B (measured)")
idle = {}
for m in microbatches:
    row = []
    for schedule in ("gpipe", "1f1b"):
        t = [r["pp"][(schedule, m)] for r in ranks]
        idle[(schedule, m)] = sum(
            1 - x["busy_time"] / x["step_time"] for x in t
        ) / len(t)
        row.append(f"{idle[(schedule, m)]:10.2f}")
    formula = bubble_fraction(world_size, m)
    print(
        f"{m:2d} | {formula:13.3f} | {' | '.join(row)}  (varies with the "
        "machine)"
    )

# %%
ms = range(1, 17)
fig, ax = plt.subplots(figsize=(6, 3.6))
ax.plot(
    ms,
    [bubble_fraction(world_size, m) for m in ms],
    "k-",
    label="(p-1)/(m+p-1), p=2",
)
ax.plot(
    ms, [bubble_fraction(4, m) for m in ms], "k--", label="(p-1)/(m+p-1), p=4"
)
for schedule, marker in (("gpipe", "o"), ("1f1b", "s")):
    ax.plot(
        microbatches,
        [idle[(schedule, m)] for m in microbatches],
        marker,
        label=schedule,
    )
ax.set_xlabel("micro-batches m")
ax.set_ylabel("idle fraction of a stage")
ax.set_title("Pipeline bubble: formula and measured (2 stages)")
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()
