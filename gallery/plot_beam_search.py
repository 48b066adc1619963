"""
Beam search: what a wider beam finds, and what it costs
=======================================================

On Markov-chain language models with known transition tables, an exhaustive
search over all :math:`V^T` continuations gives the true optimum.
:func:`dlref.decoding.beam_search` is run with widths 1 (greedy) to 32 and
compared with it: how often it finds the optimum, how far below it stays, and
the work it does, counted by :class:`dlref.decoding.WorkCounter`.
"""

# %%
# Setup
# -----
# One seed for everything random, and one line choosing the device: the
# decoders run where the prompts and the model's log-probabilities are.
import matplotlib.pyplot as plt
import torch

from dlref.decoding import (
    WorkCounter,
    beam_search,
    exhaustive_search,
    markov_step_fn,
)

torch.manual_seed(0)
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

# %%
# Data
# ----
# 20 random Markov chains over V = 6 tokens. Each row of a transition table is
# drawn from a Dirichlet distribution with concentration 0.5, so most rows are
# peaked: a likely token is often followed by unlikely ones, the situation
# where greedy decoding goes wrong. Every one of the 6 tokens serves as a
# one-token prompt: 120 searches for each width.
V, T, n_chains = 6, 6, 20
dirichlet = torch.distributions.Dirichlet(
    torch.full((V,), 0.5, dtype=torch.float64)
)
# (chains, V, V), each row sums to 1
tables = dirichlet.sample((n_chains, V)).to(device)
# (V, 1): every start token
prompts = torch.arange(V, device=device).unsqueeze(1)

# %%
# Model
# -----
# One ``step_fn`` per chain: a batch of token sequences (N, t) in, next-token
# log-probabilities (N, V) out. The exhaustive search scores all V^T = 46,656
# continuations of each prompt.
step_fns = [markov_step_fn(P) for P in tables]
exhaustive_work = WorkCounter()
optimum = torch.stack(
    [
        exhaustive_search(f, prompts, T, counter=exhaustive_work).logprobs
        for f in step_fns
    ]
)  # (chains, V)
per_prompt = n_chains * V
print(
    f"exhaustive search, per prompt: {exhaustive_work.rows // per_prompt:,} "
    "rows, "
    f"{exhaustive_work.candidates // per_prompt:,} candidates (V + V^2 + ... "
    "+ V^T)"
)

# %%
# Training
# --------
# Nothing is trained: the tables are the model. Here the beams run, for each
# width K, on all chains and prompts, and the counter adds up the work.
widths = [1, 2, 3, 4, 6, 8, 16, 32]
found, gap, candidates = [], [], []
for K in widths:
    work = WorkCounter()
    best = torch.stack(
        [
            beam_search(f, prompts, K, T, counter=work).logprobs[:, 0]
            for f in step_fns
        ]
    )  # (chains, V)
    # beam search can't beat the optimum
    never_better = (best <= optimum + 1e-12).all().double()
    share, mean_gap = (
        (best > optimum - 1e-9).double().mean(),
        (optimum - best).mean(),
    )
    share, mean_gap, never_better = torch.stack(
        [share, mean_gap, never_better]
    ).tolist()
    # one copy to the host per width, for these three numbers
    assert never_better
    found.append(share)
    gap.append(mean_gap)
    candidates.append(work.candidates // per_prompt)  # per prompt: T * K * V
    print(
        f"K={K:>2}: optimum found for {found[-1]:6.1%} of prompts, mean "
        "log-prob gap "
        f"{gap[-1]:.3f} nats, {candidates[-1]:>5,} candidates per prompt"
    )

# %%
# Results
# -------
# Left: the share of prompts where beam search finds the exhaustive optimum,
# and its mean shortfall in log-probability. Right: the candidates scored per
# prompt, T·K·V for beam search, against K^T (the quiz's answer) and the V +
# ... + V^T of the exhaustive search.
fig, (ax_found, ax_cost) = plt.subplots(1, 2, figsize=(11, 4.2))
ax_found.plot(widths, [100 * f for f in found], "o-", color="C0")
ax_found.set_xscale("log", base=2)
ax_found.set_xticks(widths, [str(k) for k in widths])
ax_found.set_xlabel("beam width K (1 = greedy)")
ax_found.set_ylabel("optimum found (% of prompts)", color="C0")
ax_gap = ax_found.twinx()
ax_gap.plot(widths, gap, "s--", color="C1")
ax_gap.set_ylabel("mean log-prob below the optimum (nats)", color="C1")
ax_found.set_title(f"Beam search vs exhaustive search (V={V}, T={T})")

ax_cost.plot(widths, candidates, "o-", label="beam search, measured: T·K·V")
ax_cost.plot(
    widths, [float(K) ** T for K in widths], ":", label="K^T (not the cost)"
)
ax_cost.axhline(
    exhaustive_work.candidates / per_prompt,
    color="k",
    ls="--",
    label="exhaustive, measured",
)
ax_cost.set_xscale("log", base=2)
ax_cost.set_yscale("log")
ax_cost.set_xticks(widths, [str(k) for k in widths])
ax_cost.set_xlabel("beam width K")
ax_cost.set_ylabel("candidates scored per prompt")
ax_cost.legend()
ax_cost.set_title("Work done")
fig.tight_layout()
plt.show()
