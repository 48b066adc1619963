"""Exercises on byte-pair encoding (references: :mod:`dlref.tokenization`).

Token ids travel as 1-D int64 tensors, so the grader compares them position by position; a
merge list is an (M, 2) int64 tensor whose row ``r`` makes token ``256 + r``. The decoded text
is returned as its code points (``torch.tensor([ord(c) for c in text])``).
"""

from __future__ import annotations

from itertools import pairwise

import torch
from torch import Tensor

from dlref import tokenization
from dlref.practice._cases import bad_input, shape_check, values_check
from dlref.practice._grader import Check, Mistake, register

PAGE = "topics/tokenization.html"
HAND = f"{PAGE}#one-merge-step-by-hand"
ENCODE = f"{PAGE}#encoding-and-decoding"


def _ids(xs) -> Tensor:
    return torch.tensor(list(xs), dtype=torch.int64)


def _bytes(s: str) -> Tensor:
    return _ids(s.encode("utf-8"))


def _merges(pairs) -> Tensor:
    return torch.tensor(pairs, dtype=torch.int64).reshape(-1, 2)


# ------------------------------------------------------------------------------- references


def bpe_merge_once_reference(ids: Tensor, new_id: int) -> tuple[Tensor, Tensor]:
    """The reference: the most frequent adjacent pair (ties: the smallest), merged left to right.

    Parameters
    ----------
    ids : Tensor
        Token ids, int64, shape (n,), n >= 2.
    new_id : int
        The id of the merged token.

    Returns
    -------
    pair : Tensor
        The merged pair (a, b), int64, shape (2,).
    ids : Tensor
        The ids after the merge, int64, shape (n - occurrences,).

    Examples
    --------
    >>> from dlref.practice.tokenization import bpe_merge_once_reference
    >>> bpe_merge_once_reference(torch.tensor([97, 97, 97, 98, 97, 98]), 256)
    (tensor([97, 97]), tensor([256,  97,  98,  97,  98]))
    """
    if ids.numel() < 2:
        raise ValueError(f"ids must hold at least 2 tokens to have a pair, got {ids.numel()}")
    xs = ids.tolist()
    counts = tokenization.pair_counts(xs)
    pair = min(counts, key=lambda p: (-counts[p], p))  # max count, then the smallest pair
    return _ids(pair), _ids(tokenization.merge(xs, pair, new_id))


def bpe_encode_reference(ids: Tensor, merges: Tensor) -> Tensor:
    """The reference: :class:`dlref.tokenization.BPETokenizer`, lowest rank first.

    Parameters
    ----------
    ids : Tensor
        The bytes of one pre-token, int64, shape (n,).
    merges : Tensor
        int64, shape (M, 2): row r is the pair merged into token 256 + r.

    Returns
    -------
    Tensor
        The token ids, int64, shape (k,), k <= n.

    Examples
    --------
    >>> from dlref.practice.tokenization import bpe_encode_reference
    >>> merges = torch.tensor([[97, 98], [98, 99], [256, 99]])
    >>> bpe_encode_reference(torch.tensor([97, 98, 99]), merges)  # ab first, then ab+c
    tensor([258])
    """
    xs = ids.tolist()
    ranks = {tuple(p): r for r, p in enumerate(merges.tolist())}  # (a, b) -> r
    while len(xs) >= 2:
        # the adjacent pair of lowest rank; pairs without a merge rank last
        pair = min(pairwise(xs), key=lambda p: ranks.get(p, len(ranks)))
        if pair not in ranks:
            break
        xs = tokenization.merge(xs, pair, 256 + ranks[pair])
    return _ids(xs)


def bpe_decode_reference(ids: Tensor, merges: Tensor) -> Tensor:
    """The reference: :meth:`dlref.tokenization.BPETokenizer.decode`, as code points.

    Parameters
    ----------
    ids : Tensor
        Token ids, int64, shape (n,).
    merges : Tensor
        int64, shape (M, 2): row r is the pair merged into token 256 + r.

    Returns
    -------
    Tensor
        The code points of the text, int64, shape (characters,).

    Examples
    --------
    >>> from dlref.practice.tokenization import bpe_decode_reference
    >>> out = bpe_decode_reference(torch.tensor([256, 169]), torch.tensor([[104, 195]]))
    >>> "".join(map(chr, out.tolist()))  # 'h' + the two bytes of 'é', in two tokens
    'hé'
    """
    tok = tokenization.BPETokenizer([tuple(p) for p in merges.tolist()])
    return _ids(map(ord, tok.decode(ids.tolist())))


# --------------------------------------------------------------------------- known mistakes


def _merge_overlapping(xs, pair, new_id):
    """Replace every occurrence of the pair, overlapping ones too: a a a -> X X."""
    out, i = [], 0
    while i < len(xs):
        if i + 1 < len(xs) and (xs[i], xs[i + 1]) == pair:
            out.append(new_id)
            i += 1
            if i + 1 < len(xs) and (xs[i], xs[i + 1]) == pair:
                continue  # the mistake: this token is also the first of an overlapping pair
            i += 1
        else:
            out.append(xs[i])
            i += 1
    return out


def _merge_once_overlapping(ids, new_id):
    pair, _ = bpe_merge_once_reference(ids, new_id)
    return pair, _ids(_merge_overlapping(ids.tolist(), tuple(pair.tolist()), new_id))


def _merge_once_first_seen(ids, new_id):
    xs = ids.tolist()
    counts = tokenization.pair_counts(xs)
    pair = max(counts, key=counts.get)  # ties go to the pair seen first
    return _ids(pair), _ids(tokenization.merge(xs, pair, new_id))


def _encode_by(order):
    def fn(ids, merges):
        xs, pairs = ids.tolist(), [tuple(p) for p in merges.tolist()]
        if order == "reversed":
            for r in reversed(range(len(pairs))):
                xs = tokenization.merge(xs, pairs[r], 256 + r)
            return _ids(xs)
        ranks = {p: r for r, p in enumerate(pairs)}
        while True:
            present = [p for p in pairwise(xs) if p in ranks]
            if not present:
                return _ids(xs)
            if order == "frequent":  # the most frequent mergeable pair, ties to the lower rank
                counts = tokenization.pair_counts(xs)
                pair = min(present, key=lambda p: (-counts[p], ranks[p]))
                xs = tokenization.merge(xs, pair, 256 + ranks[pair])
            else:  # "overlapping": lowest rank, but merged at overlapping positions too
                pair = min(present, key=ranks.get)
                xs = _merge_overlapping(xs, pair, 256 + ranks[pair])

    return fn


def _decode_latin1(ids, merges):
    tok = tokenization.BPETokenizer([tuple(p) for p in merges.tolist()])
    return _ids(map(ord, b"".join(tok.vocab[i] for i in ids.tolist()).decode("latin-1")))


def _decode_per_token(ids, merges):
    tok = tokenization.BPETokenizer([tuple(p) for p in merges.tolist()])
    text = "".join(tok.decode([i]) for i in ids.tolist())
    return _ids(map(ord, text))


# ------------------------------------------------------------------------------------ cases


def _random_ids(seed: int, n: int, alphabet: int = 3) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    return 97 + torch.randint(0, alphabet, (n,), generator=g)


def _trained(text: str, num_merges: int) -> Tensor:
    return _merges(tokenization.train_bpe(text, 256 + num_merges).merges)


STUB_MERGE = r'''
import torch
from torch import Tensor


def bpe_merge_once(ids: Tensor, new_id: int):
    r"""One step of BPE training on one sequence of token ids.

    ids: int64 tensor of shape (n,), n >= 2 (raise a ValueError otherwise).
    1. Count every adjacent pair (ids[i], ids[i+1]); overlapping pairs count: a a a holds
       (a, a) twice.
    2. Pick the most frequent pair; among pairs of equal count, the smallest (compare a, then b).
    3. Replace its occurrences by new_id, scanning left to right without overlap:
       a a a -> new_id a.
    Return (pair, merged): pair as an int64 tensor [a, b], merged as an int64 tensor.
    """
    raise NotImplementedError
'''

register(
    reference=bpe_merge_once_reference,
    stub=STUB_MERGE,
    summary="count adjacent pairs and merge the most frequent one, left to right",
    checks=(
        shape_check(lambda: [{"ids": _ids([1, 2]), "new_id": 256}]),
        values_check(lambda: [{"ids": _bytes("hug pug hugs"), "new_id": 256}]),
        Check(
            "runs of one token: overlapping pairs",
            lambda: [
                {"ids": _bytes("aaab"), "new_id": 256},
                {"ids": _bytes("aaaaab"), "new_id": 300},
            ],
        ),
        Check(
            "ties: the smallest pair wins",
            lambda: [
                {"ids": _bytes("cdab"), "new_id": 256},
                {"ids": _bytes("xyxyabab"), "new_id": 256},
            ],
        ),
        Check(
            "random sequences",
            lambda: [{"ids": _random_ids(s, 40), "new_id": 256 + s} for s in range(4)],
        ),
        bad_input(
            "one token, no pair",
            "ids with fewer than 2 tokens",
            lambda: [{"ids": _ids([97]), "new_id": 256}],
        ),
    ),
    difficulty="easy",
    page=HAND,
    outputs=("pair", "ids"),
    mistakes=(
        Mistake(
            "overlapping_merged_twice",
            _merge_once_overlapping,
            "in a a a the pair (a, a) counts twice but merges once: scan left to right and "
            "skip past each replacement, so a a a becomes X a, not X X.",
            HAND,
        ),
        Mistake(
            "tie_to_first_seen",
            _merge_once_first_seen,
            "pairs of equal count go to the smallest pair (compare a, then b), not to the "
            "one seen first (what max over a dict of counts gives).",
            f"{PAGE}#key-equations",
        ),
    ),
)

STUB_ENCODE = r'''
import torch
from torch import Tensor


def bpe_encode(ids: Tensor, merges: Tensor) -> Tensor:
    r"""Encode one pre-token's bytes with a list of BPE merges.

    ids: int64 tensor (n,), the bytes. merges: int64 tensor (M, 2); row r is the pair (a, b)
    merged into token 256 + r (its rank is r).
    While some adjacent pair has a merge, take the one of lowest rank and replace its
    occurrences, left to right without overlap, by 256 + rank.
    Return the token ids as an int64 tensor.
    """
    raise NotImplementedError
'''

register(
    reference=bpe_encode_reference,
    stub=STUB_ENCODE,
    summary="encode bytes with a given merge list, lowest rank first",
    checks=(
        shape_check(lambda: [{"ids": _bytes("ab"), "merges": _merges([(97, 98)])}]),
        values_check(
            lambda: [{"ids": _bytes("abc"), "merges": _merges([(97, 98), (98, 99), (256, 99)])}]
        ),
        Check(
            "rank beats frequency",
            lambda: [
                {"ids": _bytes("abcbcd"), "merges": _merges([(97, 98), (98, 99), (99, 100)])},
                {"ids": _bytes("abcbcbc"), "merges": _merges([(97, 98), (98, 99)])},
            ],
        ),
        Check(
            "runs of one token: overlapping pairs",
            lambda: [{"ids": _bytes("aaaaa"), "merges": _merges([(97, 97), (256, 97)])}],
        ),
        Check(
            "merges trained on a corpus, new words",
            lambda: [
                {"ids": _bytes(w), "merges": _trained("hug pug pun bun hugs " * 3, 12)}
                for w in (" hugs", " bug", "unhug")
            ],
        ),
        Check(
            "edge: no merges, one byte, nothing to merge",
            lambda: [
                {"ids": _bytes("abc"), "merges": _merges([])},
                {"ids": _bytes("a"), "merges": _merges([(97, 98)])},
                {"ids": _bytes("ba"), "merges": _merges([(97, 98)])},
            ],
        ),
    ),
    difficulty="medium",
    page=ENCODE,
    mistakes=(
        Mistake(
            "ranks_reversed",
            _encode_by("reversed"),
            "the merges apply in the order learned, lowest rank first; you applied the "
            "later merges first.",
            ENCODE,
        ),
        Mistake(
            "most_frequent_first",
            _encode_by("frequent"),
            "encoding does not count pairs: it applies the mergeable pair of lowest rank, "
            "the one training merged first, whatever its frequency in this text.",
            ENCODE,
        ),
        Mistake(
            "overlapping_merged_twice",
            _encode_by("overlapping"),
            "a a a with the merge (a, a) becomes X a, not X X: skip past each replacement.",
            HAND,
        ),
    ),
)

STUB_DECODE = r'''
import torch
from torch import Tensor


def bpe_decode(ids: Tensor, merges: Tensor) -> Tensor:
    r"""Decode BPE token ids back to text.

    merges: int64 tensor (M, 2); row r is the pair (a, b) merged into token 256 + r. Ids 0-255
    are single bytes; token 256 + r is the bytes of a followed by the bytes of b.
    ids: int64 tensor (n,). Turn the ids into bytes and decode UTF-8 with errors="replace".
    Return the text's code points: torch.tensor([ord(c) for c in text], dtype=torch.int64).
    """
    raise NotImplementedError
'''

register(
    reference=bpe_decode_reference,
    stub=STUB_DECODE,
    summary="token ids back to text, through the bytes of each token",
    checks=(
        Check(
            "values on ASCII",
            lambda: [{"ids": _ids([256, 33]), "merges": _merges([(104, 105)])}],
        ),
        Check(
            "nested merges",
            lambda: [
                {
                    "ids": _ids([258, 32, 256]),
                    "merges": _merges([(97, 98), (98, 99), (256, 99)]),
                }
            ],
        ),
        Check(
            "characters split across tokens",
            lambda: [
                {"ids": _ids([256, 169]), "merges": _merges([(104, 195)])},
                {"ids": _bytes("👩‍💻 東京"), "merges": _merges([])},
            ],
        ),
        Check(
            "edge: no ids, a cut character",
            lambda: [
                {"ids": _ids([]), "merges": _merges([])},
                {"ids": _ids([97, 195]), "merges": _merges([])},
            ],
        ),
    ),
    difficulty="easy",
    page=ENCODE,
    mistakes=(
        Mistake(
            "decode_per_token",
            _decode_per_token,
            "a token may hold part of a character (é is 2 bytes, most emoji 4): join the bytes "
            "of all the tokens, then decode UTF-8 once.",
            ENCODE,
        ),
        Mistake(
            "latin1_not_utf8",
            _decode_latin1,
            "bytes.decode('latin-1') never fails but maps each byte to one character: é "
            "(bytes C3 A9) becomes Ã©. The bytes are UTF-8: decode them as UTF-8.",
            ENCODE,
        ),
    ),
)
