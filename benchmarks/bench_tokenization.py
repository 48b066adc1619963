"""dlref.tokenization: training a byte-level BPE vocabulary, incremental counts vs a naive recount.

There is no built-in to compare with (torch has no tokenizer), so there are no ``CASES``.
``EXTRA()`` trains a 2,000-token vocabulary on about 1 MB of text, the site's own Markdown
(``docs/**/*.md``) repeated, with :func:`dlref.tokenization.train_bpe` (pair counts updated
incrementally) and with a naive trainer that recounts every pair of every distinct pre-token at
every step (minbpe's loop, on pre-token counts rather than the raw text, so already the faster
form of the naive method). Both must learn the same merges; the table gives seconds on one thread
and the ratio. Seconds are CPU time of the process (``time.process_time``, one thread), which other
jobs on the machine inflate less than wall time.
"""

import pathlib
import re
import time
from collections import Counter
from itertools import pairwise

from dlref.tokenization import PATTERN, merge, train_bpe

DOCS = pathlib.Path(__file__).resolve().parent.parent / "docs"
VOCAB_SIZE = 2000
TARGET_CHARS = 1_000_000


def corpus() -> str:
    """The site's Markdown, repeated and cut to 1,000,000 characters (about 1 MB)."""
    pages = sorted(p for p in DOCS.rglob("*.md") if "_build" not in p.parts)
    text = "\n".join(p.read_text(encoding="utf-8") for p in pages)
    return (text * (TARGET_CHARS // len(text) + 1))[:TARGET_CHARS]


def naive_train(text: str, vocab_size: int) -> list[tuple[int, int]]:
    """Recount all pairs of all distinct pre-tokens at every step; ties to the smallest pair."""
    words = Counter(re.findall(PATTERN, text))
    ids = [list(w.encode("utf-8")) for w in words]
    freqs = list(words.values())
    merges = []
    while len(merges) < vocab_size - 256:
        counts: dict = {}
        for w, f in zip(ids, freqs, strict=True):
            for pair in pairwise(w):
                counts[pair] = counts.get(pair, 0) + f
        if not counts:
            break
        best = min(counts, key=lambda p: (-counts[p], p))
        merges.append(best)
        ids = [merge(w, best, 255 + len(merges)) for w in ids]
    return merges


def EXTRA():
    text = corpus()
    t0 = time.process_time()
    ours = train_bpe(text, VOCAB_SIZE).merges
    t_ours = time.process_time() - t0
    t0 = time.process_time()
    ref = naive_train(text, VOCAB_SIZE)
    t_naive = time.process_time() - t0
    same = "yes" if ours == ref else "NO"
    mb = len(text.encode("utf-8")) / 1e6
    return "\n".join(
        [
            f"Training a {VOCAB_SIZE:,}-token byte-level BPE vocabulary on {mb:.2f} MB of the "
            f"site's Markdown ({len(ours)} merges; same merges as the naive recount: {same}).",
            "",
            "| trainer | CPU seconds | ratio |",
            "|---|---:|---:|",
            f"| `train_bpe` (incremental counts, heap) | {t_ours:.2f} s | 1.00× |",
            f"| naive recount at every step | {t_naive:.2f} s | {t_naive / t_ours:.1f}× |",
        ]
    )
