"""
Mixed precision: float32, bfloat16, and float16 with and without loss scaling
=============================================================================

The same small network, from the same initial weights, trained four ways: in
float32; under ``torch.autocast`` with bfloat16; under autocast with float16
and no loss scaling; and with float16 and dynamic loss scaling
(:class:`dlref.precision.LossScaler`, which equals ``torch.amp.GradScaler``).
The regression targets are small, as the gradients of a network near the end of
training are: the float16 gradients of the output fall below :math:`2^{-24}`,
round to 0, and the unscaled run stops learning.
"""

# %%
# Setup
# -----
import copy

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import nn

from dlref.precision import FloatFormat, LossScaler

torch.manual_seed(0)
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

# %%
# Data
# ----
# A linear teacher with small outputs (about 1e-2): the loss, a mean over 256 x
# 64 outputs, has output gradients :math:`2 (y - t) / (256 \cdot 64)`, which
# fall below float16's smallest subnormal, :math:`2^{-24}`, once the residuals
# are below about :math:`5 \times 10^{-4}`.
N, D, C = 256, 16, 64
X = torch.randn(N, D)
A = torch.randn(D, C) / D**0.5
Y = 1e-2 * X @ A
X, Y = X.to(device), Y.to(device)  # X: (256, 16), Y: (256, 64)
print(
    "float16: smallest subnormal "
    f"{FloatFormat(torch.float16).smallest_subnormal:.2e}"
)

# %%
# Model
# -----
# One initial model, copied for each run, so the four runs differ only in their
# arithmetic. The output layer starts at the targets' scale.
init = nn.Sequential(nn.Linear(D, 64), nn.Tanh(), nn.Linear(64, C))
with torch.no_grad():
    init[-1].weight.mul_(1e-2)
    init[-1].bias.mul_(1e-2)
init = init.to(device)

# %%
# Training
# --------
# Full batch, Adam, 300 steps. The parameters and the optimizer stay in float32
# in every run (master weights); autocast runs the linear layers in 16 bits and
# ``mse_loss`` in float32. Losses and the fractions of exactly-zero gradients
# are kept as tensors and read at the end. Adam is the fused one
# (``fused=True``): it can skip a step on the device when the scaler flags an
# ``inf`` or ``nan`` gradient, so no step waits for the host to read that flag.
STEPS = 300


def train(dtype, scaler=None):
    model = copy.deepcopy(init)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2, fused=True)
    losses, zeros = [], []
    for _ in range(STEPS):
        opt.zero_grad()
        with torch.autocast(
            device.type, dtype=dtype, enabled=dtype != torch.float32
        ):
            loss = F.mse_loss(model(X), Y)  # float32 under autocast
        (loss if scaler is None else scaler.scale(loss)).backward()
        if scaler is None:
            opt.step()
        else:
            # unscale, then step unless a gradient is inf or nan
            scaler.step(opt)
            scaler.update()
        losses.append(loss.detach())
        grads = torch.cat([p.grad.flatten() for p in model.parameters()])
        zeros.append((grads == 0).float().mean())
    return torch.stack(losses).cpu(), torch.stack(zeros).cpu()


runs = {
    "float32": train(torch.float32),
    "bfloat16 autocast": train(torch.bfloat16),
    "float16, no loss scaling": train(torch.float16),
    "float16 + dynamic loss scaling": train(torch.float16, LossScaler()),
}

# %%
# Results
# -------
# Without scaling, float16 loses the gradients of the first layer (they pass
# through the small output weights) and more and more of the others as the
# residuals shrink: the run stalls, its loss flattens above the others. With
# dynamic loss scaling float16 follows float32. The 16-bit runs round
# differently on CPUs with other vector units, so their last digits move from
# CPU to CPU: the lines below print what holds on every one.
loss32, zero32 = runs["float32"]
print(
    f"float32 loss: step 0 {loss32[0]:.1e}, step {STEPS} {loss32[-1]:.0e}; "
    f"zero gradients at the end {zero32[-1]:.0%}"
)
for name in ("bfloat16 autocast", "float16 + dynamic loss scaling"):
    print(
        f"{name} ends within 4x of float32's loss: "
        f"{bool(runs[name][0][-1] < 4 * loss32[-1])}"
    )
loss16, zero16 = runs["float16, no loss scaling"]
others = [
    loss[-1]
    for name, (loss, _) in runs.items()
    if name != "float16, no loss scaling"
]
print(
    "float16 without loss scaling ends above every other run: "
    f"{bool(loss16[-1] > max(others))}"
)
print(f"over 10% of its gradients are 0 at the end: {bool(zero16[-1] > 0.1)}")
stalled = (zero16[10:] > 0.2).nonzero()
# the first step past 20% (after 10)
stall = int(stalled[0]) + 10 if len(stalled) else None
print(
    "over 20% of its gradients are 0 from a step in 100-150: "
    f"{stall in range(100, 151)}"
)

fig, (ax, az) = plt.subplots(1, 2, figsize=(11, 4.2))
for name, (loss, zero) in runs.items():
    ax.plot(loss, label=name, lw=1.5)
    az.plot(100 * zero, label=name, lw=1.5)
for a in (ax, az):
    if stall is not None:
        a.axvline(stall, color="gray", ls=":", lw=1)
    a.set_xlabel("step")
ax.set_yscale("log")
ax.set_ylabel("mean squared error")
ax.set_title("Loss")
ax.legend()
az.set_ylabel("gradients exactly 0 (%)")
az.set_title("Gradients lost to float16 underflow")
fig.tight_layout()
plt.show()
