"""
Condition number and momentum
=============================

Gradient descent needs about :math:`\\kappa` times more iterations when a
quadratic is :math:`\\kappa` times worse conditioned; heavy-ball momentum and
Nesterov's method only about :math:`\\sqrt\\kappa` times more. This example
counts the iterations with :func:`dlref.conditioning.iterations_to_tolerance`,
fits the log-log slopes, and draws the three paths on an ill-conditioned
quadratic in two dimensions.
"""

# %%
# Setup
# -----
# Everything here is deterministic (no random numbers); the quadratics are
# small, so the iterations run in NumPy on the CPU whatever the device.
import matplotlib.pyplot as plt
import numpy as np
import torch

from dlref.conditioning import (
    iterations_to_tolerance,
    loglog_slope,
    run_quadratic,
    spectrum,
)

torch.manual_seed(0)
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
METHODS = {
    "gd": "gradient descent",
    "heavy_ball": "heavy ball",
    "nesterov": "Nesterov",
}

# %%
# Data
# ----
# Quadratics :math:`f(w) = \tfrac12 w^\top H w` whose ten eigenvalues run
# evenly from :math:`1/\kappa` to 1.
kappas = [10, 100, 1_000, 10_000]
spectra = {k: spectrum(k) for k in kappas}

# %%
# Model
# -----
# Each method with its classical hyperparameters
# (:func:`dlref.conditioning.optimal_hyperparameters`), run until
# :math:`\|w_t\| \le 10^{-6} \|w_0\|`.
counts = {
    m: [iterations_to_tolerance(m, spectra[k], eps=1e-6) for k in kappas]
    for m in METHODS
}

# %%
# Training
# --------
# The fitted exponent :math:`p` in iterations :math:`\propto \kappa^p`.
slopes = {m: loglog_slope(kappas, c) for m, c in counts.items()}
for m, c in counts.items():
    print(f"{METHODS[m]:>17}: iterations {c}, log-log slope {slopes[m]:.2f}")

# A 2-D quadratic with kappa = 30 for the paths.
H2 = np.array([1.0 / 30.0, 1.0])
w0 = np.array([1.0, 0.15])
paths = {m: run_quadratic(m, H2, steps=60, w0=w0) for m in METHODS}

# %%
# Results
# -------
# Left: iterations against :math:`\kappa` on log-log axes (slope 1 for gradient
# descent, about 1/2 with momentum). Middle: the first 60 iterates on the 2-D
# quadratic with :math:`\kappa = 30`: gradient descent zig-zags across the
# steep direction and creeps along the flat one; the momentum methods overshoot
# but cover the valley in far fewer steps. Right: the distance to the minimum,
# a straight line on a log scale (linear convergence) whose slope is the rate.
fig, (ax_k, ax_path, ax_err) = plt.subplots(1, 3, figsize=(15, 4.5))
for m, c in counts.items():
    ax_k.loglog(kappas, c, "o-", label=f"{METHODS[m]} (slope {slopes[m]:.2f})")
ax_k.set_xlabel(r"condition number $\kappa$")
ax_k.set_ylabel(r"iterations to $\|w_t\| \leq 10^{-6}$")
ax_k.set_title("Iterations grow like $\\kappa$ or $\\sqrt{\\kappa}$")
ax_k.legend()

g1, g2 = np.meshgrid(np.linspace(-1.1, 1.1, 200), np.linspace(-0.7, 0.7, 200))
ax_path.contour(
    g1, g2, 0.5 * (H2[0] * g1**2 + H2[1] * g2**2), levels=12, colors="0.8"
)
for m, path in paths.items():
    ax_path.plot(path[:, 0], path[:, 1], ".-", ms=3, lw=1, label=METHODS[m])
ax_path.plot(0, 0, "k*", ms=10)
ax_path.set_ylim(-0.7, 0.7)
ax_path.set_title(r"60 steps on $\frac{1}{2}(w_1^2/30 + w_2^2)$")
ax_path.legend()
for m, path in paths.items():
    ax_err.semilogy(np.linalg.norm(path, axis=1), label=METHODS[m])
ax_err.set_xlabel("iteration $t$")
ax_err.set_ylabel(r"$\|w_t - w^*\|$")
ax_err.set_title("Distance to the minimum")
ax_err.legend()
fig.tight_layout()
plt.show()
