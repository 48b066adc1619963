"""
A small CNN on handwritten digits
=================================

Two convolution layers, two max-pools and one linear layer, built from
:class:`dlref.conv.Conv2d` and :class:`dlref.conv.MaxPool2d`, trained on
scikit-learn's bundled 8×8 digits (1,797 images, no download). The first
layer's filters and the confusion matrix on the held-out images show what it
learned.
"""

# %%
# Setup
# -----
# One seed for everything random, and one line choosing the device.
import matplotlib.pyplot as plt
import torch
from sklearn.datasets import load_digits
from torch import nn

from dlref.conv import Conv2d, MaxPool2d, conv2d_output_shape
from dlref.losses import cross_entropy

torch.manual_seed(0)
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

# %%
# Data
# ----
# Grey levels 0..16 scaled to [0, 1]; a fixed shuffle, then 80% to train on and
# 20% held out.
digits = load_digits()
# (1797, 1, 8, 8)
images = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
labels = torch.tensor(digits.target)
order = torch.randperm(len(labels))
n_test = len(labels) // 5
test, train = order[:n_test], order[n_test:]
X_train, y_train = images[train].to(device), labels[train].to(device)
X_test, y_test = images[test].to(device), labels[test].to(device)
print(f"{len(train)} training images, {len(test)} held out")

# %%
# Model
# -----
# 8×8 → conv 3×3 (same) → 8×8 → pool → 4×4 → conv 3×3 (same) → 4×4 → pool →
# 2×2, with 64 channels: 256 features for the linear classifier. Adam with a
# one-cycle learning rate (warm up to 0.01, then anneal to almost 0).
print("after the first conv:", conv2d_output_shape(8, 3, padding=1))
model = nn.Sequential(
    Conv2d(1, 32, 3, padding=1),  # (N, 32, 8, 8)
    nn.ReLU(),
    MaxPool2d(2),  # (N, 32, 4, 4)
    Conv2d(32, 64, 3, padding=1),  # (N, 64, 4, 4)
    nn.ReLU(),
    MaxPool2d(2),  # (N, 64, 2, 2)
    nn.Flatten(),  # (N, 256)
    nn.Linear(256, 10),  # logits
).to(device)
print(f"{sum(p.numel() for p in model.parameters())} parameters")
epochs, batch = 12, 128
steps = epochs * -(-len(y_train) // batch)  # minibatches per epoch, rounded up
optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
schedule = torch.optim.lr_scheduler.OneCycleLR(
    optimizer, max_lr=1e-2, total_steps=steps
)

# %%
# Training
# --------
# Minibatches of 128, 12 epochs; the mean loss of each epoch is read once, at
# its end.
losses = []
for _ in range(epochs):
    perm = torch.randperm(len(y_train)).to(device)
    total = torch.zeros((), device=device)
    for i in range(0, len(perm), batch):
        idx = perm[i : i + batch]
        loss = cross_entropy(model(X_train[idx]), y_train[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        total += loss.detach() * len(idx)
    losses.append((total / len(perm)).item())  # one host sync per epoch

# The last digits of a float32 training run change with the CPU's summation
# order: the lines below print what holds on every CPU (the plot shows the
# losses themselves).
print(f"mean training loss below 0.5 after epoch 4: {losses[3] < 0.5}")
print(
    f"mean training loss below 0.05 after epoch {epochs}: {losses[-1] < 0.05}"
)
with torch.no_grad():
    predicted = model(X_test).argmax(dim=1)
correct = int((predicted == y_test).sum())
print(
    f"held-out accuracy at least 98% ({len(y_test)} images): "
    f"{correct / len(y_test) >= 0.98}"
)

# %%
# Results
# -------
# The accuracy above is one seed's: over seeds 0 to 5 (each seed draws the
# split, the initial weights and the minibatch order) the held-out accuracy
# ranges from 98.1% to 98.9%. 16 of the 32 first-layer filters (3×3, red
# positive, blue negative), the loss curve, and the confusion matrix of the
# held-out images (rows: true digit, columns: predicted).
confusion = torch.zeros(10, 10, dtype=torch.long)
confusion.index_put_(
    (y_test.cpu(), predicted.cpu()),
    torch.ones(len(y_test), dtype=torch.long),
    True,
)

fig = plt.figure(figsize=(12, 4.2))
grid = fig.add_gridspec(4, 10)
filters = model[0].weight.detach().cpu()[:, 0]  # (32, 3, 3)
scale = filters.abs().max()
for k in range(16):
    ax = fig.add_subplot(grid[k // 4, k % 4])
    ax.imshow(filters[k], cmap="RdBu_r", vmin=-scale, vmax=scale)
    ax.set_xticks([])
    ax.set_yticks([])
fig.text(0.17, 0.97, "first-layer filters", ha="center")
ax_loss = fig.add_subplot(grid[:, 4:6])
ax_loss.plot(range(1, epochs + 1), losses)
ax_loss.set_yscale("log")
ax_loss.set_xlabel("epoch")
ax_loss.set_title("training loss")
ax_conf = fig.add_subplot(grid[:, 6:])
ax_conf.imshow(confusion, cmap="Blues")
for t in range(10):
    for p in range(10):
        if confusion[t, p]:
            color = "white" if t == p else "black"
            ax_conf.text(
                p,
                t,
                int(confusion[t, p]),
                ha="center",
                va="center",
                color=color,
            )
ax_conf.set_xticks(range(10))
ax_conf.set_yticks(range(10))
ax_conf.set_xlabel("predicted")
ax_conf.set_ylabel("true")
ax_conf.set_title(f"held-out confusion ({correct / len(y_test):.1%} correct)")
fig.tight_layout()
plt.show()
