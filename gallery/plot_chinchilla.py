"""
Chinchilla: iso-FLOP curves and the compute-optimal frontier
============================================================

For a fixed compute budget :math:`C = 6ND`, a bigger model sees fewer tokens.
Along each budget the Chinchilla fit :math:`L(N, D) = 1.69 + 406.4/N^{0.34} +
410.7/D^{0.28}` (Hoffmann et al., 2022) traces a valley; its bottom is
:func:`dlref.scaling.chinchilla_optimal`, and the bottoms of all budgets lie on
the lines :math:`N_{\\mathrm{opt}} \\propto C^{a}`, :math:`D_{\\mathrm{opt}}
\\propto C^{b}`.
"""

# %%
# Setup
# -----
import matplotlib.pyplot as plt
import numpy as np

from dlref.scaling import (
    CHINCHILLA_ALPHA,
    CHINCHILLA_BETA,
    chinchilla_loss,
    chinchilla_optimal,
)

# Only arithmetic here: no random numbers, no device.

# %%
# Data
# ----
# Six budgets from 1e18 to 1e28 FLOPs; for each, model sizes from 1e6 to 1e13
# parameters.
budgets = np.logspace(18, 28, 6)
N = np.logspace(6, 13, 400)

# %%
# Model
# -----
# The closed form: N_opt ∝ C^a and D_opt ∝ C^b with a = β/(α+β), b = α/(α+β).
a = CHINCHILLA_BETA / (CHINCHILLA_ALPHA + CHINCHILLA_BETA)
b = CHINCHILLA_ALPHA / (CHINCHILLA_ALPHA + CHINCHILLA_BETA)
print(f"N_opt ∝ C^{a:.3f},  D_opt ∝ C^{b:.3f}")
N_opt, D_opt = chinchilla_optimal(budgets)

# %%
# Results
# -------
# Left: the iso-FLOP curves, each budget's optimum marked. Right: the optimal N
# and D against C, with Chinchilla itself (70B parameters, 1.4T tokens, about
# 5.9e23 FLOPs) for comparison.
for C, n, d in zip(budgets, N_opt, D_opt, strict=True):
    print(f"C = {C:.0e}: N_opt = {n:.3g}, D_opt = {d:.3g}, D/N = {d / n:.0f}")

fig, (ax_iso, ax_opt) = plt.subplots(1, 2, figsize=(11, 4.2))
colors = plt.cm.viridis(np.linspace(0, 0.9, len(budgets)))
for C, n, d, color in zip(budgets, N_opt, D_opt, colors, strict=True):
    D = C / (6 * N)
    ok = D > 1e6  # skip absurd corners with fewer tokens than a few books
    ax_iso.plot(
        N[ok], chinchilla_loss(N[ok], D[ok]), color=color, label=f"C = {C:.0e}"
    )
    ax_iso.scatter(
        [n], [chinchilla_loss(n, d)], color=color, edgecolors="k", zorder=3
    )
ax_iso.set_xscale("log")
ax_iso.set_ylim(1.6, 5.0)
ax_iso.set_xlabel("parameters N")
ax_iso.set_ylabel("predicted loss (nats/token)")
ax_iso.set_title("Iso-FLOP curves, C = 6ND")
ax_iso.legend(fontsize=8)

C_line = np.logspace(18, 28, 50)
N_line, D_line = chinchilla_optimal(C_line)
ax_opt.plot(C_line, N_line, label=f"$N_{{opt}} \\propto C^{{{a:.2f}}}$")
ax_opt.plot(C_line, D_line, label=f"$D_{{opt}} \\propto C^{{{b:.2f}}}$")
ax_opt.scatter(
    [6 * 70e9 * 1.4e12] * 2,
    [70e9, 1.4e12],
    color="k",
    zorder=3,
    label="Chinchilla",
)
ax_opt.set_xscale("log")
ax_opt.set_yscale("log")
ax_opt.set_xlabel("compute C (FLOPs)")
ax_opt.set_ylabel("parameters / tokens")
ax_opt.set_title("Compute-optimal model and data")
ax_opt.legend()
fig.tight_layout()
plt.show()
