"""
Initialization: activations through fifty layers
================================================

A 50-layer MLP of width 256 with four initialisations of its weights (zero,
:math:`\\mathcal N(0, 1)`, Xavier, Kaiming) and two activations (tanh, ReLU).
The histograms show how the activations of each layer are spread: which
initialisations make them vanish, which make them explode, and which keep them
of order 1 at every depth. The weights come from
:func:`dlref.init.xavier_normal_` and :func:`dlref.init.kaiming_normal_`.
"""

# %%
# Setup
# -----
# Float64 throughout: with :math:`\mathcal N(0, 1)` weights the ReLU
# activations reach :math:`10^{52}`, beyond float32's range.
import matplotlib.pyplot as plt
import numpy as np
import torch

from dlref import init

torch.manual_seed(0)
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
DEPTH, WIDTH, BATCH = 50, 256, 128
SHOWN = [1, 5, 10, 25, 50]  # layers whose histograms are drawn
INITS = ["zero", "N(0,1)", "Xavier", "Kaiming"]
ACTS = {"tanh": torch.tanh, "relu": torch.relu}

# %%
# Data
# ----
# One batch of standard-normal inputs, drawn on the CPU.
x = torch.randn(BATCH, WIDTH, dtype=torch.float64).to(device)

# %%
# Model
# -----
# The weights of each of the 8 networks, drawn on the CPU (so every device gets
# the same numbers), then moved to the device. Kaiming uses the gain of the
# activation that follows (``nonlinearity="tanh"`` or ``"relu"``).


def weights(init_name, act):
    Ws = [torch.empty(WIDTH, WIDTH, dtype=torch.float64) for _ in range(DEPTH)]
    for W in Ws:
        if init_name == "zero":
            W.zero_()
        elif init_name == "N(0,1)":
            W.normal_(0.0, 1.0)
        elif init_name == "Xavier":
            init.xavier_normal_(W)
        else:
            init.kaiming_normal_(W, nonlinearity=act)
    return [W.to(device) for W in Ws]


# %%
# Training
# --------
# No training: one forward pass, keeping every layer's activations, and the
# standard deviation of each (two transfers to the host per network).
acts, stds = {}, {}
for act_name, f in ACTS.items():
    for init_name in INITS:
        h, hs = x, []
        for W in weights(init_name, act_name):
            h = f(h @ W.T)  # h_l = f(W_l h_{l-1}), (BATCH, WIDTH)
            hs.append(h)
        H = torch.stack(hs)  # (DEPTH, BATCH, WIDTH)
        stds[init_name, act_name] = H.flatten(1).std(1).cpu()
        acts[init_name, act_name] = (
            H[torch.tensor([i - 1 for i in SHOWN])].flatten(1).cpu()
        )
        s = stds[init_name, act_name]
        print(
            f"{init_name:8} {act_name:5} std of h_l at layers 1, 10, 25, 50:",
            # fmt: skip
            " ".join(f"{s[i - 1]:6.0e}" for i in (1, 10, 25, 50)),
        )

# %%
# Results
# -------
# Top: for each initialisation and activation, the histogram of
# :math:`\log_{10}|h|` over the batch and the units, for layers 1, 5, 10, 25
# and 50 (zero activations are left out; with zero weights every activation is
# 0, so those panels are empty). :math:`\mathcal N(0, 1)` saturates tanh at
# :math:`\pm 1` and makes ReLU activations grow ten-fold per layer; Xavier lets
# ReLU activations shrink by :math:`\sqrt 2` per layer; Kaiming keeps ReLU
# activations in place and Xavier keeps tanh activations of order 1 (shrinking
# slowly). Bottom: the standard deviation of each layer's activations against
# depth, for all eight networks.
fig, axes = plt.subplots(2, 4, figsize=(16, 6.5))
colors = plt.cm.viridis(np.linspace(0, 0.9, len(SHOWN)))
for row, act_name in enumerate(ACTS):
    for col, init_name in enumerate(INITS):
        ax = axes[row, col]
        for k, (layer, c) in enumerate(zip(SHOWN, colors, strict=True)):
            a = acts[init_name, act_name][k]
            a = a[a != 0].abs().log10().numpy()
            if a.size:
                ax.hist(
                    a,
                    bins=60,
                    histtype="step",
                    color=c,
                    density=True,
                    label=f"layer {layer}",
                )
        if init_name == "zero":
            ax.text(
                0.5,
                0.5,
                "every activation is 0",
                ha="center",
                transform=ax.transAxes,
            )
        ax.set_title(f"{init_name}, {act_name}")
        ax.set_xlabel(r"$\log_{10}|h|$")
        if col == 0:
            ax.set_ylabel("density")
        if row == 0 and col == 1:
            ax.legend(fontsize=8)
fig.tight_layout()

fig2, (ax_t, ax_r) = plt.subplots(1, 2, figsize=(12, 4), sharey=True)
layers = np.arange(1, DEPTH + 1)
for ax, act_name in ((ax_t, "tanh"), (ax_r, "relu")):
    for init_name in INITS[1:]:
        ax.semilogy(layers, stds[init_name, act_name].numpy(), label=init_name)
    ax.set_title(f"{act_name}: std of the activations (zero init: all 0)")
    ax.set_xlabel("layer")
    ax.legend()
ax_t.set_ylabel("standard deviation")
fig2.tight_layout()
plt.show()
