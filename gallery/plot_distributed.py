"""
Data parallelism on two processes: DDP, ZeRO-1 and FSDP
=======================================================

Two processes on one machine train one small model with PyTorch's own
distributed engine (``torch.distributed``, the gloo backend on CPU; the same
code picks NCCL when there is a GPU per process), each on half of every batch.
We check that

- ``DistributedDataParallel`` gives exactly the parameters of single-process
  training on the whole batch;
- ``ZeroRedundancyOptimizer`` (ZeRO stage 1) halves the optimizer state per
  process, as :func:`dlref.llm_systems.zero_memory` predicts;
- ``fully_shard`` (FSDP2, ZeRO stage 3) also halves the weights and gradients.

The workers are in ``dlref.distributed``: ``torch.multiprocessing`` *spawns*
them, and a spawned process imports the function it runs, so it must live in an
importable module. They listen on 127.0.0.1 only.
"""

# %%
# Setup
# -----
import matplotlib.pyplot as plt
import torch

from dlref.distributed import (
    make_model,
    run_data_parallel,
    train_single_process,
)
from dlref.llm_systems import zero_memory

torch.manual_seed(0)
# the workers choose theirs
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

world_size, steps = 2, 5
# 4 layers of 32 x 32 + 32
psi = sum(p.numel() for p in make_model().parameters())
n_tensors = len(list(make_model().parameters()))
print(f"{psi} parameters in {n_tensors} tensors, float64")

# %%
# Training
# --------
# The reference: 5 Adam steps on the global batch of 64 in this process. Then
# the two workers: DDP, ZeRO-1 and FSDP, 5 steps each, each rank on its 32
# examples.
reference, single_bytes = train_single_process(steps=steps)
ref = torch.cat([p.detach().reshape(-1) for p in reference.parameters()])
ranks = run_data_parallel(world_size=world_size, steps=steps, timeout=120.0)
# "address:port" of every listening socket
sockets = [s for r in ranks for s in r["listening"]]
on_loopback = all(s.startswith("127.0.0.1:") for s in sockets)
print(
    f"backend {ranks[0]['backend']}; {len(sockets)} listening sockets, "
    f"all on 127.0.0.1: {on_loopback}"
)

# %%
# Results
# -------
# Equal parameters: the all-reduce averages the two half-batch gradients, which
# is the gradient of the mean loss over the whole batch. Equal up to round-off:
# the all-reduce sums in another order than the single process, so the last
# bits differ (about 1e-14, and by how much depends on the CPU's kernels); the
# bound 1e-12 holds with a wide margin on every CPU.
for method in ("ddp", "zero1"):
    diff = max((r[method]["params"] - ref).abs().max().item() for r in ranks)
    print(f"{method}: max |θ_rank - θ_single| < 1e-12: {diff < 1e-12}")

# %%
# Optimizer-state bytes per rank. Adam keeps m and v, K = 16 bytes per float64
# parameter, plus a 4-byte step counter per tensor that the ZeRO formula leaves
# out.
predicted = zero_memory(
    psi, world_size, stage=1, k=16, weight_bytes=0, grad_bytes=0
)
print(f"single process:  {single_bytes} bytes")
print(f"DDP, per rank:   {[r['ddp']['optimizer_bytes'] for r in ranks]}")
print(f"ZeRO-1 per rank: {[r['zero1']['optimizer_bytes'] for r in ranks]}")
print(
    f"zero_memory(stage=1) predicts {predicted:.0f} + "
    f"{4 * n_tensors // world_size} step bytes"
)

# %%
# FSDP2 on CPU with gloo: it either ran, and every rank holds half of
# everything, or the installed torch refused, and we print why.
fsdp = ranks[0]["fsdp"]
if fsdp["status"] == "ran":
    diff = max((r["fsdp"]["params"] - ref).abs().max().item() for r in ranks)
    print(f"fsdp: max |θ_rank - θ_single| < 1e-12: {diff < 1e-12}")
    print(
        f"fsdp per rank: weights {fsdp['param_bytes']}, gradients "
        f"{fsdp['grad_bytes']}, "
        f"optimizer {fsdp['optimizer_bytes']} bytes"
    )
else:
    print(f"fsdp did not run: {fsdp['status']}")

# %%
# Model-state bytes per rank, measured (bars) and predicted by ``zero_memory``
# (black ticks, without the step counters).
z = ranks[0]["zero1"]
rows = {
    "DDP (stage 0)": (8 * psi, 8 * psi, ranks[0]["ddp"]["optimizer_bytes"], 0),
    "ZeRO-1": (z["param_bytes"], z["grad_bytes"], z["optimizer_bytes"], 1),
}
if fsdp["status"] == "ran":
    rows["FSDP (stage 3)"] = (
        fsdp["param_bytes"],
        fsdp["grad_bytes"],
        fsdp["optimizer_bytes"],
        3,
    )

fig, ax = plt.subplots(figsize=(7, 3.6))
for i, (w, g, o, stage) in enumerate(rows.values()):
    ax.barh(i, w / 1024, color="C0", label="weights" if i == 0 else None)
    ax.barh(
        i,
        g / 1024,
        left=w / 1024,
        color="C1",
        label="gradients" if i == 0 else None,
    )
    ax.barh(
        i,
        o / 1024,
        left=(w + g) / 1024,
        color="C2",
        label="optimizer" if i == 0 else None,
    )
    pred = zero_memory(
        psi, world_size, stage, k=16, weight_bytes=8, grad_bytes=8
    )
    ax.plot([pred / 1024] * 2, [i - 0.4, i + 0.4], color="k", lw=2)
ax.set_yticks(range(len(rows)), list(rows))
ax.invert_yaxis()
ax.set_xlabel("KiB per rank (float64 Adam)")
ax.set_title(f"Model states per rank, {world_size} ranks, {psi} parameters")
ax.legend(loc="lower right", fontsize=8)
fig.tight_layout()
plt.show()
