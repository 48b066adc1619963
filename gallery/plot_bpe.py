"""
Byte-pair encoding on this site's own pages
===========================================

A byte-level BPE vocabulary of 2,048 tokens is trained with
:func:`dlref.tokenization.train_bpe` on the Markdown of this site's pages, all
but the self-test, which is held out. The curve shows how many bytes one token
covers as the vocabulary grows, on the training text and on the held-out page;
the table lists the first merges learned; the last panel, what the shorter
sequences do to the size of attention's score matrix (:math:`n^2` for :math:`n`
tokens).
"""

# %%
# Setup
# -----
from collections import Counter
from pathlib import Path

import matplotlib.pyplot as plt
import torch

from dlref.tokenization import BPETokenizer, pretokenize, train_bpe

# nothing here is random; kept for the gallery's one-seed rule
torch.manual_seed(0)
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

# %%
# Data
# ----
# The pages are read from the repository: the gallery runs next to ``docs/``.
root = next(
    p
    for p in [Path.cwd(), *Path.cwd().parents]
    if (p / "docs" / "topics").is_dir()
)
docs = root / "docs"
pages = sorted(
    [*docs.glob("*.md"), *docs.glob("topics/*.md"), *docs.glob("api/*.md")]
)
held_out_page = docs / "self-test.md"
train_text = "\n".join(
    p.read_text(encoding="utf-8") for p in pages if p != held_out_page
)
held_out = held_out_page.read_text(encoding="utf-8")
print(
    f"training text: {len(pages) - 1} pages, "
    f"{len(train_text.encode('utf-8')):,} bytes"
)
print(f"held out: self-test.md, {len(held_out.encode('utf-8')):,} bytes")

# %%
# Model
# -----
# One training run gives every smaller vocabulary: the first k merges of a run
# are the merges of a run stopped at k.
big = train_bpe(train_text, 2048)
print(
    "first 16 merges:", [big.vocab[256 + r].decode("utf-8") for r in range(16)]
)

# %%
# Training
# --------
# Bytes per token for each vocabulary size. Each distinct pre-token is encoded
# once and counted as often as it occurs, which gives the same number of tokens
# as encoding the whole text.


def bytes_per_token(vocab_size: int, text: str) -> float:
    tok = BPETokenizer(big.merges[: vocab_size - 256])
    n_tokens = sum(
        f * len(tok.encode(w)) for w, f in Counter(pretokenize(text)).items()
    )
    return len(text.encode("utf-8")) / n_tokens


sizes = [256, 512, 1024, 2048]
rho_train = [bytes_per_token(V, train_text) for V in sizes]
rho_held = [bytes_per_token(V, held_out) for V in sizes]
print(" vocab  train  held-out")
for V, a, b in zip(sizes, rho_train, rho_held, strict=True):
    print(f"{V:>6}  {a:5.2f}  {b:8.2f}")

# %%
# Results
# -------
# Sequence length n = bytes / (bytes per token) on the held-out page, and
# attention's n^2 scores.
n_bytes = len(held_out.encode("utf-8"))
# (len(sizes),)
n = (n_bytes / torch.tensor(rho_held, dtype=torch.float64)).to(device)
n, scores = torch.stack([n, n**2]).cpu()  # one transfer to the host
shorter, fewer = n[0] / n[-1], scores[0] / scores[-1]
print(
    f"V = 2048 vs 256: n is {shorter:.2f}x shorter, n^2 is {fewer:.2f}x "
    "smaller"
)

fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(13, 4))
ax1.plot(sizes, rho_train, "o-", label="training pages")
ax1.plot(sizes, rho_held, "s--", label="held out (self-test)")
ax1.set(xscale="log", xlabel="vocabulary size V", ylabel="bytes per token")
ax1.set_title("Compression")
ax1.legend()
ax2.axis("off")
rows = [
    [str(256 + r), repr(big.vocab[256 + r].decode("utf-8"))] for r in range(16)
]
ax2.table(cellText=rows, colLabels=["id", "token"], loc="center")
ax2.set_title("First merges learned")
ax3.plot(sizes, scores / 1e6, "o-")
ax3.set(
    xscale="log",
    yscale="log",
    xlabel="vocabulary size V",
    ylabel="attention scores (M)",
)
ax3.set_title("Held-out page: n² scores")
fig.tight_layout()
plt.show()
