"""
How small a step for a gradient check?
======================================

A hand-derived gradient is checked against central differences,
:func:`dlref.autodiff.finite_difference_grad`. Their error has two parts: the
truncation error of the formula, which falls as :math:`\\varepsilon^2`, and the
round-off error of subtracting two nearly equal function values, which grows as
:math:`u / \\varepsilon` for unit round-off :math:`u`. The sum is smallest near
:math:`\\varepsilon \\approx u^{1/3}`, where the error is about
:math:`u^{2/3}`. Here the step sweeps from :math:`10^{-1}` to :math:`10^{-15}`,
in float32 and float64, on :math:`L = 1/(1 + e^{w_0 x_0 + w_1 x_1 + w_2})` from
:ref:`the study notes <notes-sigmoid-partials>`
(:func:`dlref.backprop.sigmoid_loss`), whose gradient
:func:`dlref.backprop.sigmoid_loss_backward` gives by hand.
"""

# %%
# Setup
# -----
# One seed for everything random, and one line choosing the device. The check
# runs on the CPU whatever the device: it is five numbers, and the round-off it
# measures should be the CPU's.
import matplotlib.pyplot as plt
import torch

from dlref.autodiff import finite_difference_grad
from dlref.backprop import sigmoid_loss, sigmoid_loss_backward

torch.manual_seed(0)
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

# %%
# Data
# ----
# One random point :math:`v = (w_0, w_1, w_2, x_0, x_1)`, and the function of
# all five.
v64 = torch.randn(5, dtype=torch.float64)


def f(v):
    return sigmoid_loss(v[:3], v[3:])  # L(w, x), a 0-d tensor


# %%
# The reference gradient
# ----------------------
# Autograd in float64 is the judge; the hand-derived gradient agrees with it to
# the last bits, so it is as good a reference.
v_ = v64.clone().requires_grad_()
(reference,) = torch.autograd.grad(f(v_), v_)
_, dL_dw, dL_dx = sigmoid_loss_backward(v64[:3], v64[3:])
by_hand = torch.cat([dL_dw, dL_dx])
print(
    "|by hand - autograd| / |autograd| = "
    f"{((by_hand - reference).norm() / reference.norm()):.1e}"
)

# %%
# The sweep
# ---------
# For each dtype, the central-difference gradient at the point rounded to that
# dtype, and its relative error against the float64 reference.
# 4 steps per decade
eps_grid = torch.logspace(-1, -15, 57, dtype=torch.float64)
errors = {}
for dtype in (torch.float32, torch.float64):
    v = v64.to(dtype)
    err = []
    for eps in eps_grid.tolist():
        fd = finite_difference_grad(f, v, eps=eps).to(torch.float64)
        err.append(((fd - reference).norm() / reference.norm()).item())
    errors[dtype] = torch.tensor(err, dtype=torch.float64)

# %%
# The other derivations
# ---------------------
# The same check, in float64 with the default step :math:`10^{-6}`, for the
# other hand-derived gradients of ``dlref.backprop``: the skip network of the
# study notes, the ReLU layer's input gradient :math:`A^\top Z w`, and the
# linear layer's :math:`G W^\top` and :math:`X^\top G` (for :math:`L = \sum C
# \odot XW`, whose upstream gradient is :math:`G = C`).
from dlref.backprop import (
    linear_backward,
    relu_net,
    relu_net_input_grad,
    skip_backward,
    skip_forward,
)

names = (
    "w_a",
    "b_a",
    "w_b",
    "b_b",
    "w_c",
    "b_c",
    "w_d",
    "b_d",
    "w_d2",
    "b_d2",
    "w_e",
    "b_e",
)


def skip_loss(q, t):
    """The skip network's loss as a function of one vector.

    The vector holds the 12 parameters, then x0.
    """
    return skip_forward(dict(zip(names, q[:12], strict=True)), q[12], t)[
        "loss"
    ]


q, t = (
    torch.randn(13, dtype=torch.float64),
    torch.tensor(0.5, dtype=torch.float64),
)
g = skip_backward(dict(zip(names, q[:12], strict=True)), q[12], t)
A, w, x = (torch.randn(s, dtype=torch.float64) for s in ((16, 8), (16,), (8,)))
X, W, C = (
    torch.randn(s, dtype=torch.float64) for s in ((6, 5), (5, 4), (6, 4))
)
dX, dW = linear_backward(X, W, C)

checks = [  # (name, by hand, central differences)
    (
        "skip network: 12 parameters and x0",
        torch.stack([g[k] for k in (*names, "x0")]),
        finite_difference_grad(lambda v: skip_loss(v, t), q),
    ),
    (
        "ReLU layer: A^T Z w",
        relu_net_input_grad(x, A, w),
        finite_difference_grad(lambda v: relu_net(v, A, w), x),
    ),
    (
        "linear layer: G W^T",
        dX,
        finite_difference_grad(lambda v: (C * (v @ W)).sum(), X),
    ),
    (
        "linear layer: X^T G",
        dW,
        finite_difference_grad(lambda v: (C * (X @ v)).sum(), W),
    ),
]
# The relative errors are near 1e-10 (the round-off of the default step, about
# u / 1e-6), and their last digit depends on the order in which the CPU's
# kernels sum; the bound 1e-8 holds with a wide margin on every CPU, while a
# wrong derivation gives an error near 1.
for name, by_hand, fd in checks:
    rel = ((fd - by_hand).norm() / by_hand.norm()).item()
    print(f"{name:<36} relative error < 1e-8: {rel < 1e-8}")

# %%
# Results
# -------
# The best step of each dtype, next to the rule of thumb :math:`u^{1/3}` (here
# :math:`u = \text{eps}/2`, with eps from :func:`torch.finfo`). The plot clips
# errors at 1: an error of 1 or more means the estimate is round-off only
# (exactly 1 when the two function values were equal, so that the estimate is
# 0).
fig, ax = plt.subplots(figsize=(7, 4.5))
for dtype, color in (
    (torch.float32, "tab:orange"),
    (torch.float64, "tab:blue"),
):
    u = torch.finfo(dtype).eps / 2  # unit round-off
    e = errors[dtype].clamp_max(1.0)  # an error above 1 is just "wrong"
    best = int(e.argmin())
    name = str(dtype).removeprefix("torch.")
    print(
        f"{name}: best eps {eps_grid[best].item():.1e}, relative error "
        f"{e[best].item():.1e}; "
        f"u^(1/3) = {u ** (1 / 3):.1e}, u^(2/3) = {u ** (2 / 3):.1e}"
    )
    ax.loglog(eps_grid, e, "o-", ms=3, color=color, label=f"{name}")
    ax.loglog(
        eps_grid[best],
        e[best],
        "*",
        ms=16,
        color=color,
        markeredgecolor="black",
    )
    ax.axvline(u ** (1 / 3), color=color, ls=":", lw=1)
    ax.text(u ** (1 / 3), 2.0, r" $u^{1/3}$", color=color, va="bottom")
    # the model: truncation C eps^2 (fitted at the largest step) plus round-off
    # u / eps
    C = errors[torch.float64][0].item() / eps_grid[0].item() ** 2
    ax.loglog(
        eps_grid,
        C * eps_grid**2 + u / eps_grid,
        "--",
        lw=1,
        color=color,
        alpha=0.7,
    )
ax.loglog(
    [], [], "k--", lw=1, alpha=0.7, label=r"$C\varepsilon^2 + u/\varepsilon$"
)
ax.set_ylim(1e-13, 10)
ax.invert_xaxis()
ax.set_xlabel(r"step $\varepsilon$ (shrinking to the right)")
ax.set_ylabel("relative error of the gradient")
ax.set_title("Central differences against autograd")
ax.legend(loc="lower left")
fig.tight_layout()
plt.show()
