"""The tokenization exercises: references against independent computations, and wrong
implementations a learner might write, caught by the right check and diagnosed by name.

``WRONG_TOKENIZATION`` is also added to ``WRONG`` in ``tests/test_practice.py``, whose tests
require at least two wrong implementations per exercise.
"""

import re

import pytest
import torch

from dlref.practice import check
from dlref.practice.tokenization import (
    bpe_decode_reference,
    bpe_encode_reference,
    bpe_merge_once_reference,
)
from dlref.tokenization import PATTERN, BPETokenizer, train_bpe

# ------------------------------------------------------------------ references are trustworthy


def _t(xs):
    return torch.tensor(list(xs), dtype=torch.int64)


def test_merge_once_reference_against_a_plain_loop():
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        ids = 97 + torch.randint(0, 3, (30,), generator=g)
        xs = ids.tolist()
        counts = {}
        for i in range(len(xs) - 1):
            counts[(xs[i], xs[i + 1])] = counts.get((xs[i], xs[i + 1]), 0) + 1
        best = max(sorted(counts), key=lambda p: counts[p])  # sorted: ties to the smallest
        out, i = [], 0
        while i < len(xs):
            if xs[i : i + 2] == list(best):
                out, i = [*out, 999], i + 2
            else:
                out, i = [*out, xs[i]], i + 1
        pair, merged = bpe_merge_once_reference(ids, 999)
        assert pair.tolist() == list(best) and merged.tolist() == out


def test_encode_and_decode_references_against_the_tokenizer():
    text = "hug pug pun bun hugs, the cat sat on the mat; naïve café " * 3
    tok = train_bpe(text, 256 + 30)
    merges = torch.tensor(tok.merges, dtype=torch.int64)
    for piece in re.findall(PATTERN, text + " unhug 東京"):
        ids = bpe_encode_reference(_t(piece.encode("utf-8")), merges)
        assert ids.tolist() == BPETokenizer(tok.merges).encode(piece)
        assert "".join(map(chr, bpe_decode_reference(ids, merges).tolist())) == piece


# ------------------------------------------------------------- wrong implementations, by hand


def merge_once_no_skip(ids, new_id):
    """Scans every position and merges each occurrence it sees, overlapping ones too."""
    xs = ids.tolist()
    counts = {}
    for p in zip(xs, xs[1:], strict=False):
        counts[p] = counts.get(p, 0) + 1
    pair = min(counts, key=lambda p: (-counts[p], p))
    out, i = [], 0
    while i < len(xs):
        if i + 1 < len(xs) and (xs[i], xs[i + 1]) == pair:
            out.append(new_id)
            i += 1 if i + 2 < len(xs) and xs[i + 2] == pair[1] and pair[0] == pair[1] else 2
        else:
            out.append(xs[i])
            i += 1
    return _t(pair), _t(out)


def merge_once_counter_max(ids, new_id):
    """collections.Counter.most_common: ties go to the pair seen first."""
    from collections import Counter

    xs = ids.tolist()
    pair = Counter(zip(xs, xs[1:], strict=False)).most_common(1)[0][0]
    out, i = [], 0
    while i < len(xs):
        if i + 1 < len(xs) and (xs[i], xs[i + 1]) == pair:
            out, i = [*out, new_id], i + 2
        else:
            out, i = [*out, xs[i]], i + 1
    return _t(pair), _t(out)


def _merge(xs, pair, new_id):
    out, i = [], 0
    while i < len(xs):
        if i + 1 < len(xs) and (xs[i], xs[i + 1]) == pair:
            out, i = [*out, new_id], i + 2
        else:
            out, i = [*out, xs[i]], i + 1
    return out


def encode_last_merge_first(ids, merges):
    """Walks the merge list from the end."""
    xs = ids.tolist()
    for r in range(len(merges) - 1, -1, -1):
        xs = _merge(xs, tuple(merges[r].tolist()), 256 + r)
    return _t(xs)


def encode_greedy_by_count(ids, merges):
    """Merges the most frequent pair of the text that has a merge, as in training."""
    xs, ranks = ids.tolist(), {tuple(p): r for r, p in enumerate(merges.tolist())}
    while True:
        counts = {}
        for p in zip(xs, xs[1:], strict=False):
            if p in ranks:
                counts[p] = counts.get(p, 0) + 1
        if not counts:
            return _t(xs)
        pair = min(counts, key=lambda p: (-counts[p], ranks[p]))
        xs = _merge(xs, pair, 256 + ranks[pair])


def decode_each_token(ids, merges):
    """Decodes every token's bytes on its own."""
    vocab = {i: bytes([i]) for i in range(256)}
    for r, (a, b) in enumerate(merges.tolist()):
        vocab[256 + r] = vocab[a] + vocab[b]
    text = "".join(vocab[i].decode("utf-8", errors="replace") for i in ids.tolist())
    return _t(map(ord, text))


def decode_latin1(ids, merges):
    """Decodes the bytes as Latin-1: no error, and the wrong text."""
    vocab = {i: bytes([i]) for i in range(256)}
    for r, (a, b) in enumerate(merges.tolist()):
        vocab[256 + r] = vocab[a] + vocab[b]
    return _t(map(ord, b"".join(vocab[i] for i in ids.tolist()).decode("latin-1")))


WRONG_TOKENIZATION = [
    ("bpe_merge_once", merge_once_no_skip, "runs of one token: overlapping pairs",
     "overlapping_merged_twice"),
    ("bpe_merge_once", merge_once_counter_max, "ties: the smallest pair wins",
     "tie_to_first_seen"),
    ("bpe_encode", encode_last_merge_first, "values on a hand-sized case", "ranks_reversed"),
    ("bpe_encode", encode_greedy_by_count, "rank beats frequency", "most_frequent_first"),
    ("bpe_decode", decode_each_token, "characters split across tokens", "decode_per_token"),
    ("bpe_decode", decode_latin1, "characters split across tokens", "latin1_not_utf8"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "fn", "failed_check", "diagnosis"),
    WRONG_TOKENIZATION,
    ids=[w[1].__name__ for w in WRONG_TOKENIZATION],
)
def test_wrong_tokenization_code_is_caught(name, fn, failed_check, diagnosis):
    report = check(fn, name)
    assert not report.passed
    assert report.failed_check == failed_check, str(report)
    assert report.diagnosis == diagnosis, str(report)
