"""dlref.tokenization against references written here, each as plain as it can be.

Training against a naive trainer that recounts every pair at every step (minbpe's loop, with the
same tie-break); encoding against applying the merges one by one, in the order learned, to the
whole pre-token; ``decode(encode(s)) == s`` for any string (hypothesis: emoji, combining marks,
NUL, the special tokens); hand-checked merges; every error message.

Hugging Face ``tokenizers`` is not a reference here: its byte-level trainer numbers the 256 bytes
by the code points of GPT-2's byte-to-character table (the space, 0x20, is 'Ġ', id 220) so
equal counts are broken in another order, and its pre-tokenizer is GPT-2's ``regex`` pattern, not
ours (``²`` is a number there, a letter here).
"""

import random
import re
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dlref.tokenization import (
    PATTERN,
    BPETokenizer,
    merge,
    pair_counts,
    pretokenize,
    train_bpe,
)

# ------------------------------------------------------------------------------- references


def naive_train(text, vocab_size, special_tokens=()):
    """Recount every pair of every pre-token at every step; ties to the smallest pair."""
    parts = [text]
    if special_tokens:
        alternation = "|".join(re.escape(s) for s in sorted(special_tokens, key=len)[::-1])
        parts = re.split(alternation, text)
    words = [list(w.encode("utf-8")) for p in parts for w in re.findall(PATTERN, p)]
    merges = []
    while len(merges) < vocab_size - 256 - len(special_tokens):
        counts = {}
        for w in words:
            for pair in pairwise(w):
                counts[pair] = counts.get(pair, 0) + 1
        if not counts:
            break
        best = min(counts, key=lambda p: (-counts[p], p))
        new_id = 256 + len(merges)
        merges.append(best)
        for k, w in enumerate(words):
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and (w[i], w[i + 1]) == best:
                    out.append(new_id)
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            words[k] = out
    return merges


def encode_one_by_one(merges, text):
    """Apply merges[0], then merges[1], ... to each pre-token's bytes."""
    ids = []
    for piece in re.findall(PATTERN, text):
        w = list(piece.encode("utf-8"))
        for r, pair in enumerate(merges):
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and (w[i], w[i + 1]) == pair:
                    out.append(256 + r)
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            w = out
        ids += w
    return ids


def random_corpus(seed, n_words=300, alphabet="abcde"):
    rng = random.Random(seed)
    words = [
        "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 6))) for _ in range(n_words)
    ]
    seps = [" ", " ", " ", ", ", "\n", "  ", "1", "12 "]
    return "".join(w + rng.choice(seps) for w in words)


SPECIAL = "<|endoftext|>"

# --------------------------------------------------------------------------------- training


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("alphabet", ["ab", "abcde", "aé😀 x\u0301"])
def test_train_equals_naive_recount(seed, alphabet):
    text = random_corpus(seed, alphabet=alphabet)
    vocab_size = 256 + 60
    assert train_bpe(text, vocab_size).merges == naive_train(text, vocab_size)


@pytest.mark.parametrize("seed", range(3))
def test_train_equals_naive_recount_with_special_tokens(seed):
    text = random_corpus(seed) + SPECIAL + random_corpus(seed + 100) + "<|pad|>ab"
    specials = (SPECIAL, "<|pad|>")
    tok = train_bpe(text, 256 + 40 + 2, specials)
    assert tok.merges == naive_train(text, 256 + 40 + 2, specials)
    assert len(tok.vocab) == 256 + 40 + 2
    assert tok.encode(SPECIAL + "<|pad|>") == [256 + 40, 256 + 40 + 1]


def test_train_by_hand():
    # pre-tokens 'aaab' and ' aaab': (a, a) is counted twice in each, 4 in all; then
    # (X, a) and (a, b) both occur twice: the tie goes to the smaller pair, (97, 98)
    tok = train_bpe("aaab aaab", 258)
    assert tok.merges == [(97, 97), (97, 98)]
    assert tok.encode("aaab") == [256, 257]


def test_train_stops_when_nothing_is_left_to_merge():
    tok = train_bpe("ab ab", 1000)
    assert tok.merges == [(97, 98), (32, 256)]
    assert train_bpe("", 300).merges == []


def test_train_never_merges_across_special_tokens_or_pretokens():
    tok = train_bpe(f"ab{SPECIAL}ab{SPECIAL}ab", 300, [SPECIAL])
    assert tok.merges == [(97, 98)]
    assert train_bpe("a.a.a.a.", 300).merges == []


def test_train_accepts_numpy_int_vocab_size():
    np = pytest.importorskip("numpy")
    assert train_bpe("abab", np.int64(257)).merges == [(97, 98)]


# --------------------------------------------------------------------------------- encoding


@pytest.mark.parametrize("seed", range(6))
def test_encode_equals_merges_applied_one_by_one(seed):
    text = random_corpus(seed, alphabet="abcé")
    tok = train_bpe(text, 256 + 80)
    other = random_corpus(seed + 50, alphabet="abcé")  # text not seen in training
    for t in (text, other):
        assert tok.encode(t) == encode_one_by_one(tok.merges, t)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 300), st.integers(0, 300)), max_size=40), st.text())
def test_encode_with_any_valid_merge_list_equals_one_by_one(raw, text):
    merges, seen = [], set()
    for a, b in raw:  # keep the pairs whose ids exist already
        if a < 256 + len(merges) and b < 256 + len(merges) and (a, b) not in seen:
            merges.append((a, b))
            seen.add((a, b))
    tok = BPETokenizer(merges)
    assert tok.encode(text) == encode_one_by_one(merges, text)


TRAINED = train_bpe(random_corpus(0, alphabet="abcdeé😀") + " " + SPECIAL, 256 + 50, [SPECIAL])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.text(), st.just(SPECIAL), st.sampled_from(["😀", "e\u0301", "\0"]))))
def test_decode_encode_roundtrip(pieces):
    s = "".join(pieces)
    ids = TRAINED.encode(s)
    assert TRAINED.decode(ids) == s
    assert ids.count(TRAINED.special_ids[SPECIAL]) == s.count(SPECIAL)


@pytest.mark.parametrize(
    "s", ["", "\0", "👩‍👩‍👧 family", "e\u0301\u0301", "日本語", "ab" * 50, SPECIAL * 2, "\r\n\t "]
)
def test_roundtrip_examples(s):
    assert TRAINED.decode(TRAINED.encode(s)) == s


def test_decode_joins_bytes_before_utf8():
    tok = BPETokenizer([])
    ids = tok.encode("é")  # two bytes, two tokens
    assert ids == [0xC3, 0xA9]
    assert tok.decode(ids) == "é"
    assert tok.decode(ids[:1]) == "\ufffd"  # half a character


def test_pretokenize_covers_the_text_and_matches_gpt2_on_ascii():
    s = "Hello world, it's 2024!  I'll go_to x  \n\n y"
    assert "".join(pretokenize(s)) == s
    assert pretokenize(s) == [
        "Hello", " world", ",", " it", "'s", " 2024", "!", " ", " I", "'ll", " go", "_", "to",
        " x", "  \n\n", " y",
    ]  # fmt: skip


def test_pair_counts_and_merge():
    assert pair_counts([1, 1, 1]) == {(1, 1): 2}
    assert pair_counts([1, 2], {(1, 2): 3}, weight=2) == {(1, 2): 5}
    assert merge([1, 1, 1], (1, 1), 9) == [9, 1]
    assert merge([1, 1, 1, 1], (1, 1), 9) == [9, 9]
    assert merge([], (1, 1), 9) == []


def test_tokenizer_vocab_and_repr():
    tok = BPETokenizer([(104, 105)], ["<s>"])
    assert tok.vocab[256] == b"hi" and tok.vocab[257] == b"<s>" and len(tok) == 258
    assert repr(tok) == "BPETokenizer(vocab_size=258, merges=1, special_tokens=['<s>'])"


# ----------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("call", "exc", "msg"),
    [
        (lambda: train_bpe(b"ab", 300), TypeError, "text must be a str"),
        (lambda: train_bpe("ab", 255), ValueError, "vocab_size must be at least 256"),
        (lambda: train_bpe("ab", 257, ["<s>", "<t>"]), ValueError, "vocab_size must be at le"),
        (lambda: train_bpe("ab", 300.0), TypeError, "vocab_size must be an int"),
        (lambda: train_bpe("ab", 300, "<s>"), TypeError, "special_tokens must be a sequence"),
        (lambda: train_bpe("ab", 300, ["<s>", ""]), ValueError, r"special_tokens\[1\]"),
        (lambda: train_bpe("ab", 300, ["<s>", "<s>"]), ValueError, "must be distinct"),
        (lambda: BPETokenizer([(1, 2, 3)]), TypeError, r"merges\[0\] must be a pair"),
        (lambda: BPETokenizer([(1, 256)]), ValueError, r"merges\[0\] = \(1, 256\) uses an id"),
        (lambda: BPETokenizer([(1, -1)]), ValueError, r"merges\[0\] = \(1, -1\) uses an id"),
        (lambda: BPETokenizer([(1, 2), (1, 2)]), ValueError, r"repeats merges\[0\]"),
        (lambda: BPETokenizer(5), TypeError, "merges must be a sequence"),
        (lambda: BPETokenizer([]).encode(3), TypeError, "text must be a str"),
        (lambda: BPETokenizer([]).encode("\ud800"), ValueError, "text cannot be encoded"),
        (lambda: BPETokenizer([]).decode([256]), ValueError, r"ids\[0\] = 256 is out of range"),
        (lambda: BPETokenizer([]).decode([1, -1]), ValueError, r"ids\[1\] = -1 is out of range"),
        (lambda: BPETokenizer([]).decode([1.0]), TypeError, r"ids\[0\] must be an int"),
        (lambda: BPETokenizer([]).decode("ab"), TypeError, "ids must be a sequence of int"),
    ],
)
def test_errors_name_the_argument(call, exc, msg):
    with pytest.raises(exc, match=msg):
        call()
