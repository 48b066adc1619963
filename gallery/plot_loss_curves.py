"""
Reading loss curves
===================

Four loss curves that go wrong, each produced for real on a small
classification problem and drawn next to the same run with its fix:

* **spikes**: the learning rate is too high (numerical trouble, a ``log(0)`` or
  a division by zero, spikes too, and is shown on the training topic page);
* **wild and noisy**: one example per step, so each step follows a different
  gradient;
* **validation loss above training loss, and rising**: a small training set,
  memorised;
* **cyclic**: the data are stored sorted by class and never shuffled.
"""

# %%
# Setup
# -----
# One seed, one device line. The update is plain SGD written out, ``p -= lr *
# p.grad``: what ``torch.optim.SGD`` does without momentum, and (with
# ``weight_decay``) what it does with it.
import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import nn

torch.manual_seed(0)
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

# %%
# Data
# ----
# Three interleaved spiral arms. The points come sorted by class, as rows read
# from a file often do: all of class 0, then all of class 1, then all of class
# 2.


def make_spiral(n_per_class: int, noise: float = 0.2):
    xs, ys = [], []
    for k in range(3):
        r = torch.linspace(0.05, 1.0, n_per_class)  # radius
        # angle, one arm per class
        theta = torch.linspace(4.0 * k, 4.0 * (k + 1), n_per_class)
        theta = theta + noise * torch.randn(n_per_class)
        xs.append(torch.stack([r * theta.sin(), r * theta.cos()], dim=1))
        ys.append(torch.full((n_per_class,), k))
    return torch.cat(xs).to(device), torch.cat(ys).to(device)


X, y = make_spiral(100)  # (300, 2), (300,): the training set of most panels
X_few, y_few = make_spiral(10, noise=0.6)  # 30 noisy points: easy to memorise
# held out, from the same distribution as X_few
X_val, y_val = make_spiral(100, noise=0.6)

# %%
# Model
# -----
# A two-hidden-layer MLP. Every run of the same width starts from the same
# initial weights, so a problem and its fix differ only in what the panel
# changes.


def mlp(width: int) -> nn.Module:
    return nn.Sequential(
        nn.Linear(2, width),
        nn.ReLU(),
        nn.Linear(width, width),
        nn.ReLU(),
        nn.Linear(width, 3),
    ).to(device)


initial_weights = {width: mlp(width).state_dict() for width in (64, 128)}


def train(
    width,
    X,
    y,
    *,
    lr,
    batch_size,
    steps,
    shuffle=True,
    weight_decay=0.0,
    val=False,
):
    """Minibatch SGD; the loss on all of X after every step (and on X_val).

    X_val's loss only if asked. The losses stay on the device until the run
    ends: reading each one at once would make the host wait for the device at
    every step. The order is drawn on the CPU and moved, so a GPU run sees the
    same batches.
    """
    model = mlp(width)
    model.load_state_dict(initial_weights[width])
    params = list(model.parameters())
    train_loss, val_loss = [], []
    order, i = torch.arange(len(X), device=device), len(X)
    for _ in range(steps):
        if i >= len(X):  # a new epoch: a new order, or the same one again
            order = torch.randperm(len(X)).to(device) if shuffle else order
            i = 0
        batch, i = order[i : i + batch_size], i + batch_size
        for p in params:  # zero_grad
            p.grad = None
        loss = F.cross_entropy(model(X[batch]), y[batch])  # forward and loss
        loss.backward()  # d loss / d p into p.grad
        with torch.no_grad():
            for p in params:  # step: p <- p - lr * (grad + weight_decay * p)
                if weight_decay:
                    p.grad.add_(p, alpha=weight_decay)
                p.add_(p.grad, alpha=-lr)
            train_loss.append(F.cross_entropy(model(X), y))
            if val:
                val_loss.append(F.cross_entropy(model(X_val), y_val))
    return (
        torch.stack(c).cpu() if c else torch.tensor([])
        for c in (train_loss, val_loss)
    )


# %%
# Training
# --------
# Eight runs of 240 or 300 steps, two per panel: the problem, then the fix.
spiky, _ = train(64, X, y, lr=1.0, batch_size=32, steps=240)
spiky_fixed, _ = train(64, X, y, lr=0.1, batch_size=32, steps=240)

noisy, _ = train(64, X, y, lr=0.1, batch_size=1, steps=240)
noisy_fixed, _ = train(64, X, y, lr=0.1, batch_size=32, steps=240)

overfit_train, overfit_val = train(
    128, X_few, y_few, lr=0.5, batch_size=30, steps=300, val=True
)
decay_train, decay_val = train(
    128,
    X_few,
    y_few,
    lr=0.5,
    batch_size=30,
    steps=300,
    weight_decay=1e-2,
    val=True,
)

cyclic, _ = train(64, X, y, lr=0.3, batch_size=10, steps=240, shuffle=False)
cyclic_fixed, _ = train(64, X, y, lr=0.3, batch_size=10, steps=240)


# %%
# Results
# -------
# A number for each pathology: how often the loss jumps up by half or more in
# one step (spikes), the typical step-to-step change of the log-loss over the
# last 100 steps (noise), where the validation loss is lowest (overfitting),
# and how much the loss swings in step with the epoch (cycles: how well the ups
# and downs of one epoch, 30 steps = 300 examples / batch 10, predict those of
# the next; high when the order never changes, near 0 when it is shuffled).


def jumps(curve):
    return int((curve[1:] > 1.5 * curve[:-1]).sum())


def noise(curve):
    return curve[-100:].log().diff().abs().median().item()


def repeat(curve, period=30):
    """Correlation of the log-loss changes of each of the last 5 epochs.

    Each epoch's changes are correlated with those of the epoch before.
    """
    change = curve.log().diff()[-6 * period :]  # the last 6 epochs
    # each step, and the same step one epoch later
    a, b = change[:-period], change[period:]
    return torch.corrcoef(torch.stack([a, b]))[0, 1].item()


# The counts and losses themselves depend on the CPU: a float32 training loop
# amplifies the last-bit differences of sums (the run at lr 1.0 makes 20 jumps
# on one CPU and 25 on another), so each line prints what holds with a margin
# on every CPU.
best = int(overfit_val.argmin())
print(
    f"spikes:   ≥ 10 jumps at lr 1.0: {jumps(spiky) >= 10}, "
    f"none at lr 0.1: {jumps(spiky_fixed) == 0}"
)
print(
    f"noisy:    step-to-step change over 3× larger at batch 1 than at 32: "
    f"{noise(noisy) > 3 * noise(noisy_fixed)}"
)
print(
    f"overfit:  final validation loss over 3× the training loss: "
    f"{bool(overfit_val[-1] > 3 * overfit_train[-1])}, over 0.1 above its "
    "lowest: "
    f"{bool(overfit_val[-1] > overfit_val[best] + 0.1)}; "
    "weight decay ends over 0.1 lower: "
    f"{bool(decay_val[-1] < overfit_val[-1] - 0.1)}"
)
print(
    "cyclic:   epoch-to-epoch correlation over 0.5 unshuffled: "
    f"{repeat(cyclic) > 0.5}, "
    f"under 0.3 shuffled: {repeat(cyclic_fixed) < 0.3}"
)

panels = [
    (
        "Spikes: learning rate too high",
        [(spiky, "lr 1.0"), (spiky_fixed, "fix: lr 0.1")],
    ),
    (
        "Wild and noisy: batch of 1",
        [(noisy, "batch 1"), (noisy_fixed, "fix: batch 32")],
    ),
    (
        "Validation ≫ training: overfitting",
        [
            (overfit_train, "train"),
            (overfit_val, "validation"),
            (decay_train, "train, weight decay"),
            (decay_val, "validation, weight decay"),
        ],
    ),
    (
        "Cyclic: data never shuffled",
        [(cyclic, "sorted, not shuffled"), (cyclic_fixed, "fix: shuffle")],
    ),
]
fig, axes = plt.subplots(1, 4, figsize=(16, 3.8))
for ax, (title, curves) in zip(axes, panels, strict=True):
    for curve, label in curves:
        ax.plot(curve, label=label, linewidth=1)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
axes[0].set_ylabel("cross-entropy on the training set")
# early stopping would stop here
axes[2].axvline(best, color="gray", linestyle=":", linewidth=1)
fig.tight_layout()
plt.show()
