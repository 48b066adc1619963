"""
The five-line training loop
===========================

``zero_grad``, forward, loss, ``backward``, ``step``: the loop that every
PyTorch training script repeats, here training a small MLP to separate a
three-class spiral with :func:`dlref.losses.cross_entropy`.
"""

# %%
# Setup
# -----
# One seed for everything random, and one line choosing the device.
import matplotlib.pyplot as plt
import torch
from torch import nn

from dlref.losses import cross_entropy

torch.manual_seed(0)
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

# %%
# Data
# ----
# Three interleaved spiral arms, 300 points each: no straight line separates
# them.


def make_spiral(n_per_class: int, n_classes: int = 3, noise: float = 0.2):
    xs, ys = [], []
    for k in range(n_classes):
        r = torch.linspace(0.05, 1.0, n_per_class)  # radius
        # angle, one arm per class
        theta = torch.linspace(4.0 * k, 4.0 * (k + 1), n_per_class)
        theta = theta + noise * torch.randn(n_per_class)
        xs.append(torch.stack([r * theta.sin(), r * theta.cos()], dim=1))
        ys.append(torch.full((n_per_class,), k))
    return torch.cat(xs), torch.cat(ys)


X, y = make_spiral(300)
X, y = X.to(device), y.to(device)  # X: (900, 2), y: (900,) class indices

# %%
# Model
# -----
model = nn.Sequential(
    nn.Linear(2, 64),
    nn.ReLU(),
    nn.Linear(64, 64),
    nn.ReLU(),
    # logits, one per class: cross_entropy applies log-softmax itself
    nn.Linear(64, 3),
).to(device)
optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)

# %%
# Why ``zero_grad`` comes first
# -----------------------------
# ``backward()`` *adds* to ``.grad``; it does not overwrite it. Two backward
# passes without ``zero_grad`` in between leave twice the gradient, and
# ``step`` would then use the sum of all the gradients seen so far.
w = model[0].weight
cross_entropy(model(X), y).backward()
g1 = w.grad.clone()
cross_entropy(model(X), y).backward()  # no zero_grad in between
print(
    "|grad| after two backward calls / after one: "
    f"{(w.grad.norm() / g1.norm()).item():.4f}"
)
optimizer.zero_grad()
print(f"after zero_grad, .grad is {w.grad}")

# %%
# Training
# --------
# The five lines, full batch, 600 steps. Each loss stays on the device until
# the loop ends: ``loss.item()`` at every step would make the host wait for the
# device (a GPU) every time.
losses = []
for _ in range(600):
    optimizer.zero_grad()  # forget the last step's gradients
    logits = model(X)  # forward: (900, 3)
    loss = cross_entropy(logits, y)  # mean of -log softmax(logits)[y]
    loss.backward()  # d loss / d parameter, into each .grad
    optimizer.step()  # parameter update from .grad
    losses.append(loss.detach())
losses = torch.stack(losses).tolist()  # one copy to the host

with torch.no_grad():
    accuracy = (model(X).argmax(dim=1) == y).float().mean().item()
print(f"final loss {losses[-1]:.4f}, training accuracy {accuracy:.1%}")

# %%
# Results
# -------
# The loss curve, and the decision regions the network learned.
grid = torch.linspace(-1.1, 1.1, 200)
gx, gy = torch.meshgrid(grid, grid, indexing="xy")
with torch.no_grad():
    regions = model(
        torch.stack([gx, gy], dim=-1).reshape(-1, 2).to(device)
    ).argmax(dim=1)

fig, (ax_loss, ax_map) = plt.subplots(1, 2, figsize=(10, 4.2))
ax_loss.plot(losses)
ax_loss.set_yscale("log")
ax_loss.set_xlabel("step")
ax_loss.set_ylabel("cross-entropy (nats)")
ax_loss.set_title("Training loss")
ax_map.contourf(
    gx,
    gy,
    regions.reshape(200, 200).cpu(),
    levels=[-0.5, 0.5, 1.5, 2.5],
    alpha=0.3,
    cmap="viridis",
)
ax_map.scatter(*X.cpu().T, c=y.cpu(), s=8, cmap="viridis", edgecolors="none")
ax_map.set_aspect("equal")
ax_map.set_title(f"Decision regions (accuracy {accuracy:.1%})")
fig.tight_layout()
plt.show()
