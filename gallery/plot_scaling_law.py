"""
A scaling law from small models
===============================

Networks of seven widths learn the same function for the same number of steps;
their test loss falls as a power of their size, :math:`L \\approx a N^{-b}`: a
straight line on log-log axes, fitted with :func:`dlref.scaling.fit_power_law`.
Each width is trained from five initialisations, so the fitted exponent comes
with its spread.
"""

# %%
# Setup
# -----
import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

from dlref.scaling import fit_power_law

torch.manual_seed(0)
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

# %%
# Data
# ----
# The task is a fixed random "teacher" network on 4 inputs; fresh inputs every
# step, so data is unlimited: what limits the loss is the model size (and the
# fixed number of steps). Every random number is drawn on the CPU and then
# moved, so a GPU run trains on the same data as the numbers printed below.
d_in = 4
teacher = nn.Sequential(
    nn.Linear(d_in, 64),
    nn.Tanh(),
    nn.Linear(64, 64),
    nn.Tanh(),
    nn.Linear(64, 1),
).to(device)
teacher.requires_grad_(False)
with torch.no_grad():
    teacher[0].weight.mul_(2.0)  # a wigglier function
X_test = torch.randn(8192, d_in).to(device)
y_test = teacher(X_test).squeeze(1)  # (8192,)

# %%
# Model
# -----
# Students: one hidden ReLU layer of width w, so N = w (d_in + 1) + w + 1
# parameters. All 35 students (7 widths x 5 initialisations) sit side by side
# in one wide layer: unit j belongs to student ``owner[j]``, and each student's
# output sums only its own units. The summed loss gives each student the
# gradient of its own loss, and Adam works element by element, so this is
# exactly 35 separate training runs in one set of tensor operations.
widths = [2, 4, 8, 16, 32, 64, 128]
n_init = 5
student_widths = [w for w in widths for _ in range(n_init)]
n_students, hidden = len(student_widths), sum(student_widths)
owner = torch.repeat_interleave(
    torch.arange(n_students), torch.tensor(student_widths)
)
# (hidden,): unit j -> its student

layer1 = nn.Linear(d_in, hidden).to(device)  # every student's first layer
# 1/sqrt(width) scale
w2 = torch.randn(hidden) / torch.tensor(student_widths).sqrt()[owner]
w2, owner = nn.Parameter(w2.to(device)), owner.to(device)
b2 = nn.Parameter(torch.zeros(n_students, device=device))
# parameters per student
N = np.array([w * (d_in + 1) + w + 1 for w in widths])


def students(X):
    h = torch.relu(layer1(X))  # (B, hidden)
    out = torch.zeros(X.shape[0], n_students, device=device)
    # (B, students): each sums its own units
    return out.index_add(1, owner, h * w2) + b2


# %%
# Training
# --------
# The same budget for everyone: 800 Adam steps of 128 examples, cosine
# learning-rate decay.
steps, batch = 800, 128
optimizer = torch.optim.Adam([*layer1.parameters(), w2, b2], lr=1e-2)
schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
for _ in range(steps):
    X = torch.randn(batch, d_in).to(device)
    # sum of the 35 students' MSEs
    loss = ((students(X) - teacher(X)) ** 2).mean(0).sum()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    schedule.step()

with torch.no_grad():
    # (students,)
    test_loss = ((students(X_test) - y_test[:, None]) ** 2).mean(0)
# (widths, inits)
test_loss = test_loss.cpu().double().numpy().reshape(len(widths), n_init)

# %%
# Results
# -------
# One fit per initialisation gives the spread of the exponent; the line drawn
# is the fit of the mean loss. On a GPU, ``index_add`` sums with atomic
# additions in no fixed order, so the last digits of the losses (and of the
# fit) can differ from the CPU numbers below and between runs.
exponents = [fit_power_law(N, test_loss[:, i]).b for i in range(n_init)]
fit = fit_power_law(N, test_loss.mean(1))
print(
    f"exponent b over {n_init} initialisations: {np.mean(exponents):.2f} ± "
    f"{np.std(exponents):.2f}"
)
print(f"fit of the mean loss: L = {fit.a:.3g} * N^-{fit.b:.2f}")
for n, row in zip(N, test_loss, strict=True):
    print(
        f"N = {n:5d}: test MSE {row.mean():.2e} (min {row.min():.2e}, max "
        f"{row.max():.2e})"
    )

fig, ax = plt.subplots(figsize=(6, 4.2))
for i in range(n_init):
    ax.scatter(N, test_loss[:, i], s=12, color="C0", alpha=0.5)
ax.plot(
    N,
    fit.a * N**-fit.b,
    color="C1",
    label=f"$L = {fit.a:.3g}\\,N^{{-{fit.b:.2f}}}$",
)
ax.set_xscale("log")
ax.set_yscale("log")
ax.tick_params(axis="x", which="minor", bottom=False, labelbottom=False)
ax.set_xticks(N, [str(n) for n in N])
ax.set_xlabel("parameters N")
ax.set_ylabel("test MSE")
ax.set_title("Loss vs model size at a fixed training budget")
ax.legend()
fig.tight_layout()
plt.show()
