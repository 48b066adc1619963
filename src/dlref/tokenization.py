r"""Byte-level byte-pair encoding (BPE): training, encoding and decoding.

The vocabulary starts from the 256 byte values, so every string has an encoding and there is no
unknown token. Training (Sennrich et al., 2016; byte-level as in GPT-2, Radford et al., 2019)
repeatedly merges the most frequent adjacent pair of tokens into a new token. Text is first cut
into pre-tokens (words with their leading space, runs of digits, of punctuation, of white space)
by :data:`PATTERN`; no merge crosses a pre-token boundary or a special token.

Token ids: ``0..255`` are the bytes, ``256 + r`` is the token made by merge ``r``, and the special
tokens come last, in the order given.
"""

from __future__ import annotations

import heapq
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from itertools import pairwise

from dlref._checks import check_int, check_int_sequence, check_optional, is_int

__all__ = ["PATTERN", "pretokenize", "pair_counts", "merge", "train_bpe", "BPETokenizer"]

#: GPT-2's pre-tokenisation pattern written for Python's built-in ``re``. GPT-2 writes it
#: with the ``regex`` module's classes: ``'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+|
#: ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+``. Here letters are ``[^\W\d_]`` (word characters that are
#: not decimal digits nor ``_``) and numbers are ``\d`` (decimal digits, Unicode category Nd).
#: The differences: other numeric characters (``²``, ``½``, ``Ⅻ``: categories No and Nl) are
#: numbers for GPT-2 and letters here; the controls U+001C to U+001F are white space for ``re``
#: and punctuation for ``regex``; characters newer than Python's ``unicodedata`` are unassigned
#: (punctuation) for ``re``. ``_`` is punctuation in both.
PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?[^\W\d_]+| ?\d+| ?(?:[^\s\w]|_)+|\s+(?!\S)|\s+"""

_PRETOKEN = re.compile(PATTERN)


# ---------------------------------------------------------------------------------------------
# Helpers: argument checks, special tokens, one merge on a list of ids.
# ---------------------------------------------------------------------------------------------


def _check_text(name: str, text: object) -> None:
    if not isinstance(text, str):
        raise TypeError(f"{name} must be a str, got {type(text).__name__}")


def _check_special_tokens(special_tokens: object) -> tuple[str, ...]:
    if isinstance(special_tokens, str) or not isinstance(special_tokens, Iterable):
        raise TypeError(
            f"special_tokens must be a sequence of str, got {type(special_tokens).__name__}"
        )
    out = tuple(special_tokens)
    for i, s in enumerate(out):
        if not isinstance(s, str) or not s:
            raise ValueError(f"special_tokens[{i}] must be a non-empty str, got {s!r}")
    if len(set(out)) != len(out):
        raise ValueError(f"special_tokens must be distinct, got {out!r}")
    return out


def _split_special(text: str, special_tokens: tuple[str, ...]) -> list[str]:
    """``text`` cut around the special tokens, which are kept: ``['a', '<|eot|>', 'b']``."""
    if not special_tokens:
        return [text]
    # longest first, so that a special token that contains another one wins
    alternation = "|".join(re.escape(s) for s in sorted(special_tokens, key=len, reverse=True))
    return [part for part in re.split(f"({alternation})", text) if part]


def pretokenize(text: str) -> list[str]:
    """Cut ``text`` into the pre-tokens that BPE merges within, by :data:`PATTERN`.

    The pieces concatenate back to ``text``: the pattern matches every character.

    Parameters
    ----------
    text : str

    Returns
    -------
    list of str

    Examples
    --------
    >>> from dlref.tokenization import pretokenize
    >>> pretokenize("Hello world, it's 2024!  ok")
    ['Hello', ' world', ',', ' it', "'s", ' 2024', '!', ' ', ' ok']
    >>> s = "x² = ½ · Ⅻ_3\x1f\t東京 👩‍💻"
    >>> "".join(pretokenize(s)) == s  # every character lands in exactly one piece
    True
    """
    _check_text("text", text)
    return _PRETOKEN.findall(text)


def pair_counts(ids: Sequence[int], counts: dict | None = None, weight: int = 1) -> dict:
    r"""Count the adjacent pairs of ``ids`` (overlapping ones too: ``aaa`` holds ``aa`` twice).

    .. math:: c(a, b) = \#\{i : t_i = a,\ t_{i+1} = b\}

    Parameters
    ----------
    ids : list of int
        Token ids, length n.
    counts : dict, optional
        Counts to add to (a new dict by default).
    weight : int, default 1
        How many times ``ids`` occurs (a pre-token's frequency in the corpus).

    Returns
    -------
    dict
        ``(a, b) -> count``.

    Examples
    --------
    >>> from dlref.tokenization import pair_counts
    >>> pair_counts([97, 97, 97, 98])
    {(97, 97): 2, (97, 98): 1}
    """
    check_optional("counts", counts, dict)
    check_int("weight", weight)
    counts = {} if counts is None else counts
    for pair in pairwise(ids):
        counts[pair] = counts.get(pair, 0) + weight
    return counts


def merge(ids: Sequence[int], pair: tuple[int, int], new_id: int) -> list[int]:
    r"""Replace each occurrence of ``pair`` in ``ids`` by ``new_id``, left to right.

    Occurrences are taken without overlap, scanning from the left: ``a a a`` with the pair
    ``(a, a)`` becomes ``X a``, never ``X X``.

    Parameters
    ----------
    ids : list of int
        Token ids, length n.
    pair : tuple of int
        The pair ``(a, b)`` to replace.
    new_id : int
        The id of the merged token.

    Returns
    -------
    list of int
        Length n minus the number of replacements.

    Examples
    --------
    >>> from dlref.tokenization import merge
    >>> merge([97, 97, 97, 98], (97, 97), 256)
    [256, 97, 98]
    """
    a, b = check_int_sequence("pair", pair, length=2)
    check_int("new_id", new_id, minimum=0)
    out, i, n = [], 0, len(ids)
    while i < n:
        if i + 1 < n and ids[i] == a and ids[i + 1] == b:
            out.append(new_id)
            i += 2  # skip both: the next pair starts after this occurrence
        else:
            out.append(ids[i])
            i += 1
    return out


# ---------------------------------------------------------------------------------------------
# Core: training with incrementally updated pair counts.
# ---------------------------------------------------------------------------------------------


def _pretoken_counts(text: str, special_tokens: tuple[str, ...]) -> Counter:
    """How often each pre-token occurs; special tokens are cut out and never merged."""
    words: Counter = Counter()
    for part in _split_special(text, special_tokens):
        if part not in special_tokens:
            words.update(_PRETOKEN.findall(part))
    return words


def train_bpe(text: str, vocab_size: int, special_tokens: Sequence[str] = ()) -> BPETokenizer:
    r"""Learn byte-level BPE merges from ``text`` until the vocabulary has ``vocab_size`` tokens.

    Each step merges the most frequent adjacent pair, counted inside pre-tokens and weighted by
    how often each pre-token occurs; ties go to the smallest pair :math:`(a, b)` (compare ``a``,
    then ``b``):

    .. math:: (a, b)^\star = \arg\max_{(a, b)}\ \big(c(a, b),\ -a,\ -b\big), \qquad
              c(a, b) = \sum_{w} f_w \, \#\{i : w_i = a,\ w_{i+1} = b\}

    The counts are not recounted at each step: a merge only changes the pre-tokens that hold the
    pair, so only their pairs are taken out and put back (an index maps each pair to the
    pre-tokens that hold it), and a heap with lazy deletion gives the most frequent pair.
    Training stops early when no pair is left (every pre-token is a single token).

    Parameters
    ----------
    text : str
        The training corpus. Occurrences of the special tokens are cut out of it.
    vocab_size : int
        256 bytes + the merges + the special tokens; at least ``256 + len(special_tokens)``.
    special_tokens : list of str, optional
        Strings that always encode to one id of their own (``"<|endoftext|>"``), placed last
        (none by default).

    Returns
    -------
    BPETokenizer
        With ``merges`` in the order learned.

    Examples
    --------
    >>> from dlref.tokenization import train_bpe
    >>> tok = train_bpe("low lower lowest", 259)
    >>> tok.merges  # 'l'+'o' (3 times), then 'lo'+'w', then ' '+'low'
    [(108, 111), (256, 119), (32, 257)]
    >>> tok.encode(" lowest")
    [258, 101, 115, 116]
    """
    _check_text("text", text)
    special_tokens = _check_special_tokens(special_tokens)
    check_int("vocab_size", vocab_size, minimum=256 + len(special_tokens))
    num_merges = vocab_size - 256 - len(special_tokens)

    words_and_freqs = _pretoken_counts(text, special_tokens)
    words = [list(w.encode("utf-8")) for w in words_and_freqs]  # pre-tokens as byte ids
    freqs = list(words_and_freqs.values())  # f_w
    counts: dict[tuple[int, int], int] = {}  # c(a, b), over the whole corpus
    where: defaultdict[tuple[int, int], set[int]] = defaultdict(set)  # pair -> pre-tokens
    for j, (w, f) in enumerate(zip(words, freqs, strict=True)):
        pair_counts(w, counts, f)
        for pair in pairwise(w):
            where[pair].add(j)
    # max count, then smallest pair = the smallest (-count, pair) of a min-heap
    heap = [(-c, pair) for pair, c in counts.items()]
    heapq.heapify(heap)

    merges: list[tuple[int, int]] = []
    while len(merges) < num_merges:
        while heap and counts.get(heap[0][1], 0) != -heap[0][0]:
            heapq.heappop(heap)  # stale entry: the pair's count has changed since
        if not heap:
            break
        _, pair = heapq.heappop(heap)
        new_id = 256 + len(merges)
        merges.append(pair)
        changed = set()
        for j in where.pop(pair):
            w, f = words[j], freqs[j]
            # take the old pre-token's pairs out, merge, put the new one's pairs in
            for p in pairwise(w):
                counts[p] -= f
                changed.add(p)
            w = words[j] = merge(w, pair, new_id)
            for p in pairwise(w):
                counts[p] = counts.get(p, 0) + f
                where[p].add(j)
                changed.add(p)
        counts.pop(pair, None)
        for p in changed:
            c = counts.get(p, 0)
            if c > 0:
                heapq.heappush(heap, (-c, p))
            else:
                counts.pop(p, None)
    return BPETokenizer(merges, special_tokens)


# ---------------------------------------------------------------------------------------------
# The tokenizer: merges applied in rank order.
# ---------------------------------------------------------------------------------------------


class BPETokenizer:
    r"""Encode text to token ids with a list of BPE merges, and decode ids back to text.

    Encoding cuts the text around the special tokens, then into pre-tokens (:data:`PATTERN`),
    turns each into its UTF-8 bytes and, while some adjacent pair has a merge, applies the merge
    of lowest rank :math:`r` (the earliest learned) to every occurrence of its pair:

    .. math:: (a, b)^\star = \arg\min_{(a, b) \text{ adjacent}} \operatorname{rank}(a, b),
              \qquad (a, b)^\star \to 256 + \operatorname{rank}(a, b)^\star

    Decoding concatenates the bytes of the ids and decodes them as UTF-8 once, at the end, so a
    character split across tokens is put back together.

    Parameters
    ----------
    merges : list of tuple
        Pairs ``(a, b)`` of ints: ``merges[r]`` is the pair merged into token ``256 + r``; its
        ids must already exist (each below ``256 + r``), and no pair may repeat.
    special_tokens : list of str, optional
        Strings that always encode to one id of their own, ``256 + len(merges) + i`` (none by
        default).

    Attributes
    ----------
    vocab : dict
        ``id -> bytes`` for every id; ``len(vocab)`` is the vocabulary size.

    Examples
    --------
    >>> from dlref.tokenization import BPETokenizer
    >>> tok = BPETokenizer([(104, 105), (32, 256)], special_tokens=["<|eot|>"])
    >>> tok.encode("hi hi!<|eot|>")  # 'hi' -> 256, ' hi' -> 257, '!' is byte 33
    [256, 257, 33, 258]
    >>> tok.decode([256, 257, 33, 258])
    'hi hi!<|eot|>'
    >>> tok.vocab[257], len(tok.vocab)
    (b' hi', 259)
    """

    def __init__(self, merges: Sequence[tuple[int, int]], special_tokens: Sequence[str] = ()):
        self.special_tokens = _check_special_tokens(special_tokens)
        self.merges = self._checked_merges(merges)
        self.ranks = {pair: r for r, pair in enumerate(self.merges)}  # (a, b) -> r
        self.vocab = {i: bytes([i]) for i in range(256)}
        for r, (a, b) in enumerate(self.merges):
            self.vocab[256 + r] = self.vocab[a] + self.vocab[b]
        n = 256 + len(self.merges)
        self.special_ids = {s: n + i for i, s in enumerate(self.special_tokens)}
        for s, i in self.special_ids.items():
            self.vocab[i] = s.encode("utf-8")
        self._cache: dict[str, list[int]] = {}

    @staticmethod
    def _checked_merges(merges: object) -> list[tuple[int, int]]:
        if isinstance(merges, (str, bytes)) or not isinstance(merges, Iterable):
            raise TypeError(f"merges must be a sequence of (int, int) pairs, got {merges!r}")
        out, seen = [], {}
        for r, pair in enumerate(merges):
            if not (isinstance(pair, Sequence) and len(pair) == 2 and all(map(is_int, pair))):
                raise TypeError(f"merges[{r}] must be a pair of ints, got {pair!r}")
            a, b = int(pair[0]), int(pair[1])
            if not (0 <= a < 256 + r and 0 <= b < 256 + r):
                raise ValueError(
                    f"merges[{r}] = {(a, b)} uses an id that does not exist yet: "
                    f"ids must lie in [0, {256 + r}) (the bytes and the earlier merges)"
                )
            if (a, b) in seen:
                raise ValueError(f"merges[{r}] = {(a, b)} repeats merges[{seen[(a, b)]}]")
            seen[(a, b)] = r
            out.append((a, b))
        return out

    def _encode_pretoken(self, piece: str) -> list[int]:
        ids = list(piece.encode("utf-8"))
        while len(ids) >= 2:
            # the adjacent pair of lowest rank; pairs without a merge rank last
            pair = min(pairwise(ids), key=lambda p: self.ranks.get(p, len(self.ranks)))
            if pair not in self.ranks:
                break
            ids = merge(ids, pair, 256 + self.ranks[pair])
        return ids

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text``.

        Parameters
        ----------
        text : str
            Any string that UTF-8 can encode (lone surrogates cannot be).

        Returns
        -------
        list of int
        """
        _check_text("text", text)
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as err:
            raise ValueError(f"text cannot be encoded as UTF-8: {err.reason}") from None
        ids: list[int] = []
        for part in _split_special(text, self.special_tokens):
            if part in self.special_ids:
                ids.append(self.special_ids[part])
                continue
            for piece in _PRETOKEN.findall(part):
                if piece not in self._cache:  # a pre-token always encodes the same way
                    self._cache[piece] = self._encode_pretoken(piece)
                ids.extend(self._cache[piece])
        return ids

    def decode(self, ids: Sequence[int]) -> str:
        """The text of token ids ``ids``; invalid UTF-8 (a cut character) becomes ``'\\ufffd'``.

        Parameters
        ----------
        ids : list of int
            Each in ``[0, len(vocab))``.

        Returns
        -------
        str
        """
        if isinstance(ids, (str, bytes)) or not isinstance(ids, Iterable):
            raise TypeError(f"ids must be a sequence of int, got {type(ids).__name__}")
        chunks = []
        for k, i in enumerate(ids):
            if not is_int(i):
                raise TypeError(f"ids[{k}] must be an int, got {type(i).__name__} {i!r}")
            if not 0 <= i < len(self.vocab):
                raise ValueError(f"ids[{k}] = {i} is out of range [0, {len(self.vocab)})")
            chunks.append(self.vocab[int(i)])
        # decode once, at the end: a character's bytes may sit in several tokens
        return b"".join(chunks).decode("utf-8", errors="replace")

    def __len__(self) -> int:
        return len(self.vocab)

    def __repr__(self) -> str:
        return (
            f"BPETokenizer(vocab_size={len(self.vocab)}, merges={len(self.merges)}, "
            f"special_tokens={list(self.special_tokens)!r})"
        )
