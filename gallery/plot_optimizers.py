"""
One network, six optimizers
===========================

The same small network, from the same initial weights, trained with each
optimizer of ``dlref.optim``: plain SGD, SGD with Nesterov momentum, RMSprop,
Adam, AdamW with a warmup and cosine schedule, and the quiz's running-average
optimizer. Only the line that builds the optimizer changes; the five-line loop
of :ref:`the study notes <notes-training-loop>` stays the same.
"""

# %%
# Setup
# -----
import matplotlib.pyplot as plt
import torch
from torch import nn

from dlref import optim
from dlref.losses import cross_entropy

torch.manual_seed(0)
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

# %%
# Data
# ----
# Two interleaved half-moons, 300 points, with a little noise.
n = 150
t = torch.rand(n) * torch.pi
upper = torch.stack([t.cos(), t.sin()], dim=1)
lower = torch.stack([1 - t.cos(), 0.5 - t.sin()], dim=1)
X = torch.cat([upper, lower]) + 0.1 * torch.randn(2 * n, 2)  # (300, 2)
y = torch.cat([torch.zeros(n), torch.ones(n)]).long()  # (300,)
X, y = X.to(device), y.to(device)

# %%
# Model
# -----
# One initial state, copied into every run.
model = nn.Sequential(
    nn.Linear(2, 32), nn.Tanh(), nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, 2)
)
init = {k: v.clone() for k, v in model.to(device).state_dict().items()}
STEPS = 150
optimizers = {
    "SGD": lambda p: optim.SGD(p, lr=0.1),
    "SGD, Nesterov 0.9": lambda p: optim.SGD(
        p, lr=0.1, momentum=0.9, nesterov=True
    ),
    "RMSprop": lambda p: optim.RMSprop(p, lr=1e-2),
    "Adam": lambda p: optim.Adam(p, lr=1e-2),
    "AdamW + warmup/cosine": lambda p: optim.AdamW(
        p, lr=2e-2, weight_decay=1e-2
    ),
    "UniformAverage": lambda p: optim.UniformAverage(p, lr=0.1),
}

# %%
# Training
# --------
# The five lines of the loop; AdamW also steps a ``LambdaLR`` schedule built
# from :func:`dlref.optim.warmup_cosine`. The losses stay on the device until a
# run ends: reading each one at once (``loss.item()``) would make the host wait
# for the device at every step.
curves = {}
for name, make in optimizers.items():
    model.load_state_dict(init)
    opt = make(model.parameters())
    schedule = None
    if "warmup" in name:
        schedule = torch.optim.lr_scheduler.LambdaLR(
            opt, optim.warmup_cosine(15, STEPS, 0.05)
        )
    losses = []
    for _ in range(STEPS):
        opt.zero_grad()  # forget the last gradients
        loss = cross_entropy(model(X), y)  # forward
        loss.backward()  # gradients into .grad
        opt.step()  # the update rule of this optimizer
        if schedule is not None:
            schedule.step()
        losses.append(loss.detach())
    # one copy to the host per run
    curves[name] = losses = torch.stack(losses).tolist()
    print(f"{name:>22}: loss after {STEPS} steps {losses[-1]:.3f}")

# %%
# Results
# -------
# The adaptive methods (RMSprop, Adam, AdamW) drop fastest at these settings;
# Nesterov momentum beats plain SGD; the running average, which never forgets
# its first gradients, lags behind (its steps keep pointing where the early
# gradients pointed).
fig, ax = plt.subplots(figsize=(7, 4.5))
for name, losses in curves.items():
    ax.plot(losses, label=name)
ax.set_yscale("log")
ax.set_xlabel("step")
ax.set_ylabel("cross-entropy (nats)")
ax.set_title("Same network, same start, six optimizers")
ax.legend()
fig.tight_layout()
plt.show()
