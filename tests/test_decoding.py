"""dlref.decoding against trusted references: plain-Python greedy and beam search, enumeration of
every sequence with itertools.product, torch.multinomial on distributions truncated by hand, and
sampled frequencies against the known truncated distribution."""

import itertools
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dlref.decoding import (
    WorkCounter,
    beam_search,
    exhaustive_search,
    greedy,
    markov_step_fn,
    sample,
    top_k_filter,
    top_p_filter,
)

DT = torch.float64


# ------------------------------------------------------------------------------ test models


def random_transition(V, seed, concentration=0.5):
    """A row-stochastic (V, V) table with peaky rows (Dirichlet), float64, no ties."""
    g = torch.Generator().manual_seed(seed)
    x = torch.distributions.Gamma(concentration, 1.0).sample((V, V)).to(DT)
    x = x + 1e-3 * torch.rand(V, V, generator=g, dtype=DT)
    return x / x.sum(-1, keepdim=True)


class HashLM:
    """A model whose next-token distribution depends on the whole prefix, through a running hash
    of it: ``h <- (31 h + y) mod M``, ``log p(. | prefix) = W[h]``. ``logp(seq)`` is the same
    model in plain Python, the reference the tests compare with."""

    def __init__(self, V, seed, M=101):
        g = torch.Generator().manual_seed(seed)
        self.V, self.M = V, M
        self.W = (3 * torch.randn(M, V, generator=g, dtype=DT)).log_softmax(-1)  # (M, V)

    def hash(self, tokens):
        h = torch.zeros(tokens.shape[0], dtype=torch.long)
        for column in tokens.T:
            h = (31 * h + column) % self.M
        return h

    def __call__(self, tokens):  # step_fn: (N, T) -> (N, V)
        return self.W[self.hash(tokens)]

    def logp(self, seq):  # plain Python: tuple of ints -> list of V floats
        h = 0
        for y in seq:
            h = (31 * h + y) % self.M
        return self.W[h].tolist()


class CachedHashLM(HashLM):
    """The same model with a cache: it keeps the hash of each row and reads only the newest token,
    as a KV-cache transformer does; ``reorder(rows)`` makes the cache follow the beams."""

    def __init__(self, V, seed, M=101):
        super().__init__(V, seed, M)
        self.h = None

    def __call__(self, tokens):
        if self.h is None:  # prefill: the whole prompt
            self.h = self.hash(tokens)
        else:  # one new token per row
            self.h = (31 * self.h + tokens[:, -1]) % self.M
        return self.W[self.h]

    def reorder(self, rows):
        self.h = self.h[rows]


def ref_greedy(logp, prefix, T, eos=None):
    """Plain-Python greedy decoding of one sequence; returns (sequence, log-probability)."""
    seq, total = tuple(prefix), 0.0
    for _ in range(T):
        lp = logp(seq)
        y = max(range(len(lp)), key=lambda v: lp[v])  # first maximum on ties
        seq, total = seq + (y,), total + lp[y]
        if y == eos:
            break
    return seq, total


def ref_beam(logp, prefix, K, T, eos=None, alpha=1.0):
    """Plain-Python beam search with the documented conventions (finished beams stay, frozen).

    Returns the K best (sequence, log-probability), best first, sequences padded with eos."""
    beams = [(tuple(prefix), 0.0, 0, False)]  # (sequence, log-probability, length, finished)

    def score(c):
        return c[1] / c[2] ** alpha

    for t in range(1, T + 1):
        cands = []
        for seq, s, L, done in beams:
            if done:
                cands.append((seq + (eos,), s, L, True))
                continue
            lp = logp(seq)
            for v in range(len(lp)):
                cands.append((seq + (v,), s + lp[v], t, v == eos))
        beams = sorted(cands, key=score, reverse=True)[:K]
        if eos is not None and all(b[3] for b in beams):
            break
    return [(seq, s) for seq, s, _, _ in sorted(beams, key=score, reverse=True)]


# The constructed case of the docs page: greedy < width 2 < width 3 = the optimum.
P_TRAP = torch.tensor(
    [
        [0.05, 0.5, 0.3, 0.15],
        [0.28, 0.26, 0.24, 0.22],
        [0.12, 0.18, 0.6, 0.1],
        [0.005, 0.01, 0.015, 0.97],
    ],
    dtype=DT,
)


# ------------------------------------------------------------------------------ greedy


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("eos", [None, 2])
def test_greedy_matches_plain_python_loop(seed, eos):
    lm = HashLM(V=5, seed=seed)
    prefix = torch.tensor([[0, 1], [3, 3], [4, 0], [2, 1]])
    out = greedy(lm, prefix, max_new_tokens=6, eos_id=eos)
    for n in range(prefix.shape[0]):
        seq, total = ref_greedy(lm.logp, prefix[n].tolist(), 6, eos)
        got = out.sequences[n].tolist()
        assert tuple(got[: len(seq)]) == seq
        assert all(y == eos for y in got[len(seq) :])  # padded with eos after it
        assert out.logprobs[n].item() == pytest.approx(total, abs=1e-12)


def test_greedy_on_markov_chain_follows_the_largest_transition():
    P = torch.tensor([[0.1, 0.6, 0.3], [0.2, 0.2, 0.6], [0.5, 0.4, 0.1]], dtype=DT)
    out = greedy(markov_step_fn(P), torch.tensor([[0], [1]]), 4)
    assert out.sequences.tolist() == [[0, 1, 2, 0, 1], [1, 2, 0, 1, 2]]
    torch.testing.assert_close(out.logprobs.exp(), torch.tensor([0.6**3 * 0.5] * 2, dtype=DT))


def test_greedy_stops_when_every_row_has_finished():
    P = torch.tensor([[0.1, 0.9], [0.2, 0.8]], dtype=DT)  # token 1 is eos and always wins
    counter = WorkCounter()
    out = greedy(markov_step_fn(P), torch.tensor([[0], [0]]), 10, eos_id=1, counter=counter)
    assert out.sequences.tolist() == [[0, 1], [0, 1]]
    assert counter == WorkCounter(model_calls=1, rows=2, candidates=4)


def test_zero_new_tokens_returns_the_prompt():
    step_fn = markov_step_fn(P_TRAP)
    prefix = torch.tensor([[0, 1]])
    for out in (
        greedy(step_fn, prefix, 0),
        sample(step_fn, prefix, 0),
        exhaustive_search(step_fn, prefix, 0),
    ):
        assert out.sequences.tolist() == [[0, 1]] and out.logprobs.tolist() == [0.0]
    assert beam_search(step_fn, prefix, 2, 0).sequences.tolist() == [[[0, 1], [0, 1]]]


def test_empty_batch():
    step_fn = markov_step_fn(P_TRAP)
    empty = torch.zeros(0, 1, dtype=torch.long)
    assert greedy(step_fn, empty, 3).sequences.shape == (0, 4)
    assert beam_search(step_fn, empty, 2, 3).sequences.shape == (0, 2, 4)
    assert exhaustive_search(step_fn, empty, 2).sequences.shape == (0, 3)


def test_float32_model_gives_float32_logprobs():
    step_fn = markov_step_fn(P_TRAP.float())
    prefix = torch.tensor([[0]])
    assert greedy(step_fn, prefix, 2).logprobs.dtype == torch.float32
    assert beam_search(step_fn, prefix, 2, 2).logprobs.dtype == torch.float32


# ------------------------------------------------------------------------------ beam search


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("K", [1, 2, 3, 5])
def test_beam_search_matches_plain_python_beam_search(seed, K):
    lm = HashLM(V=5, seed=seed)
    prefix = torch.tensor([[0, 1], [3, 3], [4, 0]])
    out = beam_search(lm, prefix, beam_width=K, max_new_tokens=5)
    assert out.sequences.shape == (3, K, 7)
    for n in range(3):
        ref = ref_beam(lm.logp, prefix[n].tolist(), K, 5)
        assert [tuple(s) for s in out.sequences[n].tolist()] == [seq for seq, _ in ref]
        torch.testing.assert_close(out.logprobs[n], torch.tensor([s for _, s in ref], dtype=DT))


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("K", [1, 2, 4])
@pytest.mark.parametrize("alpha", [0.0, 1.0, 2.0])
def test_beam_search_with_eos_and_length_penalty_matches_plain_python(seed, K, alpha):
    lm = HashLM(V=5, seed=seed)
    prefix = torch.tensor([[0, 1], [3, 3], [4, 0], [2, 2]])
    out = beam_search(lm, prefix, K, 6, eos_id=0, length_penalty=alpha)
    for n in range(prefix.shape[0]):
        ref = ref_beam(lm.logp, prefix[n].tolist(), K, 6, eos=0, alpha=alpha)
        L = out.sequences.shape[-1]
        ref_seqs = [seq + (0,) * (L - len(seq)) for seq, _ in ref]  # pad as the batch does
        assert [tuple(s) for s in out.sequences[n].tolist()] == ref_seqs
        torch.testing.assert_close(out.logprobs[n], torch.tensor([s for _, s in ref], dtype=DT))


def test_length_penalty_changes_the_winner_when_lengths_differ():
    # From token 0: eos (token 1) at once with p = 0.4, or token 2 (0.6) then eos (0.5): 0.3.
    P = torch.tensor([[0.0, 0.4, 0.6], [0.0, 1.0, 0.0], [0.0, 0.5, 0.5]], dtype=DT)
    step_fn, prefix = markov_step_fn(P), torch.tensor([[0]])
    short = beam_search(step_fn, prefix, 2, 2, eos_id=1, length_penalty=0.0)
    long = beam_search(step_fn, prefix, 2, 2, eos_id=1, length_penalty=2.0)
    assert short.sequences[0, 0].tolist() == [0, 1, 1]  # log 0.4 > log 0.3
    assert long.sequences[0, 0].tolist() == [0, 2, 1]  # log(0.3) / 4 > log(0.4) / 1
    assert long.logprobs[0, 0].item() == pytest.approx(math.log(0.3))


@pytest.mark.parametrize("eos", [None, 1])
def test_beam_width_one_is_greedy(eos):
    lm = HashLM(V=6, seed=7)
    prefix = torch.tensor([[0], [1], [2], [5]])
    g, b = greedy(lm, prefix, 8, eos_id=eos), beam_search(lm, prefix, 1, 8, eos_id=eos)
    assert torch.equal(b.sequences[:, 0], g.sequences)
    torch.testing.assert_close(b.logprobs[:, 0], g.logprobs)


def test_narrow_beam_misses_the_optimum_that_a_wider_beam_finds():
    step_fn, prefix = markov_step_fn(P_TRAP), torch.tensor([[0]])
    best = exhaustive_search(step_fn, prefix, 3)
    assert best.sequences.tolist() == [[0, 3, 3, 3]]
    found = {K: beam_search(step_fn, prefix, K, 3).logprobs[0, 0].exp().item() for K in (1, 2, 3)}
    assert found[1] == pytest.approx(0.5 * 0.28 * 0.5)  # greedy: 0 -> 1 -> 0 -> 1
    assert found[2] == pytest.approx(0.3 * 0.6 * 0.6)  # 0 -> 2 -> 2 -> 2
    assert found[3] == pytest.approx(0.15 * 0.97 * 0.97)  # 0 -> 3 -> 3 -> 3, the optimum
    assert found[1] < found[2] < found[3] == pytest.approx(best.logprobs.exp().item())


@settings(max_examples=25, deadline=None)
@given(st.integers(2, 4), st.integers(1, 4), st.integers(0, 10_000), st.integers(1, 6))
def test_beam_never_beats_the_optimum_and_a_full_beam_finds_it(V, T, seed, K):
    step_fn = markov_step_fn(random_transition(V, seed))
    prefix = torch.arange(V).unsqueeze(1)  # every start token
    best = exhaustive_search(step_fn, prefix, T).logprobs
    beam = beam_search(step_fn, prefix, K, T).logprobs[:, 0]
    assert (beam <= best + 1e-12).all()
    full = beam_search(step_fn, prefix, V ** (T - 1), T).logprobs[:, 0]  # keeps every prefix
    torch.testing.assert_close(full, best)


# ------------------------------------------------------------------------------ exhaustive


@pytest.mark.parametrize(("V", "T"), [(2, 1), (3, 3), (4, 4)])
def test_exhaustive_search_matches_enumeration(V, T):
    lm = HashLM(V=V, seed=V + T)
    for prompt in ([0], [1, 2 % V]):
        sums = {}
        for ys in itertools.product(range(V), repeat=T):  # every one of the V^T continuations
            seq, total = tuple(prompt), 0.0
            for y in ys:
                total += lm.logp(seq)[y]
                seq += (y,)
            sums[seq] = total
        best = max(sums, key=sums.get)
        out = exhaustive_search(lm, torch.tensor([prompt]), T)
        assert tuple(out.sequences[0].tolist()) == best
        assert out.logprobs[0].item() == pytest.approx(sums[best], abs=1e-12)


# ------------------------------------------------------------------------------ work counter


@pytest.mark.parametrize(
    ("T", "K", "V", "N"), [(1, 1, 2, 1), (4, 3, 5, 1), (7, 4, 6, 2), (3, 8, 3, 3)]
)
def test_counter_beam_is_T_K_rows_and_T_K_V_candidates(T, K, V, N):
    step_fn = markov_step_fn(random_transition(V, seed=T))
    counter = WorkCounter()
    beam_search(step_fn, torch.zeros(N, 1, dtype=torch.long), K, T, counter=counter)
    assert counter == WorkCounter(model_calls=T, rows=N * T * K, candidates=N * T * K * V)


@pytest.mark.parametrize(("T", "V"), [(1, 2), (3, 3), (5, 4)])
def test_counter_exhaustive_is_a_geometric_sum(T, V):
    counter = WorkCounter()
    exhaustive_search(
        markov_step_fn(random_transition(V, 0)), torch.tensor([[0]]), T, counter=counter
    )
    rows = sum(V**t for t in range(T))  # 1 + V + ... + V^(T-1)
    assert counter == WorkCounter(model_calls=T, rows=rows, candidates=V * rows)


def test_counter_greedy_and_sample_score_every_row_once_per_step():
    step_fn = markov_step_fn(random_transition(5, 0))
    for decode in (greedy, sample):
        counter = WorkCounter()
        decode(step_fn, torch.zeros(3, 1, dtype=torch.long), 4, counter=counter)
        assert counter == WorkCounter(model_calls=4, rows=12, candidates=60)


def test_counter_adds_up_over_calls():
    step_fn, counter = markov_step_fn(P_TRAP), WorkCounter()
    for _ in range(2):
        beam_search(step_fn, torch.tensor([[0]]), 2, 3, counter=counter)
    assert counter == WorkCounter(model_calls=6, rows=12, candidates=48)


# ------------------------------------------------------------------------------ KV cache hook


@pytest.mark.parametrize("eos", [None, 0])
def test_cached_model_with_reorder_gives_the_uncached_result(eos):
    prefix = torch.tensor([[0, 1], [3, 3]])
    plain = beam_search(HashLM(5, seed=1), prefix, 3, 6, eos_id=eos)
    cached = CachedHashLM(5, seed=1)
    out = beam_search(cached, prefix, 3, 6, eos_id=eos, reorder=cached.reorder)
    assert torch.equal(out.sequences, plain.sequences)
    torch.testing.assert_close(out.logprobs, plain.logprobs)


def test_cached_model_without_reorder_goes_wrong():
    prefix = torch.tensor([[0, 1], [3, 3]])
    plain = beam_search(HashLM(5, seed=1), prefix, 3, 6)
    stale = beam_search(CachedHashLM(5, seed=1), prefix, 3, 6)  # the cache no longer follows
    assert not torch.equal(stale.sequences, plain.sequences)


def test_reorder_receives_the_parent_row_of_every_new_row():
    lm, seen = HashLM(4, seed=3), []
    prev = {}

    def step_fn(tokens):
        prev["tokens"] = tokens
        return lm(tokens)

    def reorder(rows):
        seen.append((prev["tokens"], rows))

    out = beam_search(step_fn, torch.tensor([[0], [1]]), 3, 4, reorder=reorder)
    assert len(seen) == 4 and all(rows.shape == (6,) for _, rows in seen)
    for (tokens, rows), nxt in zip(
        seen[1:], [t for t, _ in seen[2:]] + [out.sequences.view(6, -1)], strict=True
    ):
        assert torch.equal(nxt[:, :-1], tokens[rows])


# ------------------------------------------------------------------------------ top-k, top-p


def ref_top_p_keep(probs, p):
    """Plain Python: the smallest set of most likely tokens whose mass reaches p."""
    order = sorted(range(len(probs)), key=lambda i: -probs[i])
    keep, mass = set(), 0.0
    for i in order:
        keep.add(i)
        mass += probs[i]
        if mass >= p:
            break
    return keep


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("top_p", [0.05, 0.3, 0.55, 0.9, 0.99])
def test_top_p_filter_matches_plain_python(seed, top_p):
    g = torch.Generator().manual_seed(seed)
    logits = 2 * torch.randn(4, 12, generator=g, dtype=DT)
    out = top_p_filter(logits, top_p)
    for row, kept in zip(logits.softmax(-1).tolist(), out, strict=True):
        assert set(torch.isfinite(kept).nonzero().flatten().tolist()) == ref_top_p_keep(row, top_p)
    torch.testing.assert_close(out[torch.isfinite(out)], logits[torch.isfinite(out)])


def test_top_p_on_known_distributions():
    p = torch.tensor([[0.1, 0.5, 0.15, 0.25]], dtype=DT)
    kept = {
        q: torch.isfinite(top_p_filter(p.log(), q)).tolist()[0] for q in (0.3, 0.6, 0.8, 0.95, 1.0)
    }
    assert kept[0.3] == [False, True, False, False]  # 0.5 >= 0.3 already
    assert kept[0.6] == [False, True, False, True]  # 0.5 < 0.6 <= 0.75
    assert kept[0.8] == [False, True, True, True]  # 0.75 < 0.8 <= 0.9
    assert kept[0.95] == [True, True, True, True]
    assert kept[1.0] == [True, True, True, True]
    assert torch.isfinite(top_p_filter(p.log(), 1e-9)).sum() == 1  # at least one token


def test_top_p_keeps_masked_tokens_masked_and_handles_extreme_logits():
    z = torch.tensor([[1e4, 0.0, -1e4, float("-inf")], [0.0, 0.0, float("-inf"), 0.0]], dtype=DT)
    out = top_p_filter(z, 0.9)
    assert torch.isfinite(out).tolist() == [[True, False, False, False], [True, True, False, True]]


@pytest.mark.parametrize("k", [1, 2, 5, 10, 20])
def test_top_k_filter_matches_torch_topk(k):
    g = torch.Generator().manual_seed(k)
    logits = torch.randn(3, 10, generator=g, dtype=DT)
    out = top_k_filter(logits, k)
    kk = min(k, 10)
    idx = logits.topk(kk, dim=-1).indices
    expected = torch.full_like(logits, float("-inf")).scatter(-1, idx, logits.gather(-1, idx))
    torch.testing.assert_close(out, expected)


def test_top_k_keeps_ties_with_the_kth_value():
    z = torch.tensor([[3.0, 1.0, 2.0, 2.0, 0.0]])
    assert torch.isfinite(top_k_filter(z, 2)).tolist() == [[True, False, True, True, False]]


# ------------------------------------------------------------------------------ sampling


def constant_step_fn(probs):
    """A model whose next-token distribution is always probs, (V,)."""
    logp = probs.log()

    def step_fn(tokens):
        return logp.expand(tokens.shape[0], -1)

    return step_fn


PROBS = torch.tensor([0.05, 0.35, 0.1, 0.2, 0.3], dtype=DT)


def truncated(probs, temperature=1.0, top_k=None, top_p=None):
    """The sampling distribution by hand, in plain Python, in the documented order."""
    q = [x ** (1 / temperature) for x in probs.tolist()]
    q = [x / sum(q) for x in q]
    if top_k is not None:
        kth = sorted(q, reverse=True)[min(top_k, len(q)) - 1]
        q = [x if x >= kth else 0.0 for x in q]
        q = [x / sum(q) for x in q]
    if top_p is not None:
        keep = ref_top_p_keep(q, top_p)
        q = [x if i in keep else 0.0 for i, x in enumerate(q)]
        q = [x / sum(q) for x in q]
    return torch.tensor(q, dtype=DT)


SETTINGS = [
    {},
    {"temperature": 0.5},
    {"temperature": 2.0},
    {"top_k": 2},
    {"top_k": 3},
    {"top_p": 0.6},
    {"top_p": 0.9},
    {"temperature": 2.0, "top_k": 4, "top_p": 0.7},
]


@pytest.mark.parametrize("kwargs", SETTINGS)
def test_sample_draws_what_torch_multinomial_draws_from_the_truncated_distribution(kwargs):
    q = truncated(PROBS, **kwargs)
    prefix = torch.zeros(500, 1, dtype=torch.long)
    out = sample(
        constant_step_fn(PROBS), prefix, 1, generator=torch.Generator().manual_seed(5), **kwargs
    )
    ref = torch.multinomial(q.expand(500, -1), 1, generator=torch.Generator().manual_seed(5))
    assert torch.equal(out.sequences[:, 1:], ref)


@pytest.mark.parametrize("kwargs", SETTINGS)
def test_sampled_frequencies_match_the_truncated_distribution(kwargs):
    q = truncated(PROBS, **kwargs)
    n = 40_000
    out = sample(
        constant_step_fn(PROBS),
        torch.zeros(n, 1, dtype=torch.long),
        1,
        generator=torch.Generator().manual_seed(0),
        **kwargs,
    )
    freq = torch.bincount(out.sequences[:, 1], minlength=5).to(DT) / n
    assert (freq[q == 0] == 0).all()  # truncated tokens are never drawn
    tol = 5 * (q * (1 - q) / n).sqrt() + 1e-12  # five binomial standard deviations
    assert ((freq - q).abs() <= tol).all(), (freq, q)


def test_sample_logprobs_are_the_models_not_the_tempered_ones():
    lm = HashLM(V=6, seed=2)
    prefix = torch.tensor([[0], [1], [2]])
    out = sample(
        lm, prefix, 5, temperature=0.7, top_k=3, generator=torch.Generator().manual_seed(1)
    )
    for n in range(3):
        seq = out.sequences[n].tolist()
        total = sum(lm.logp(tuple(seq[:t]))[seq[t]] for t in range(1, len(seq)))
        assert out.logprobs[n].item() == pytest.approx(total, abs=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_low_temperature_sampling_is_greedy(seed):
    lm = HashLM(V=8, seed=seed)
    prefix = torch.arange(8).unsqueeze(1)
    g = greedy(lm, prefix, 10)
    s = sample(lm, prefix, 10, temperature=1e-3, generator=torch.Generator().manual_seed(seed))
    assert torch.equal(s.sequences, g.sequences)


def test_sample_with_eos_pads_and_never_draws_masked_tokens():
    probs = torch.tensor([0.3, 0.0, 0.7], dtype=DT)  # token 1 has probability 0 (log = -inf)
    out = sample(
        constant_step_fn(probs),
        torch.zeros(200, 1, dtype=torch.long),
        8,
        eos_id=0,
        generator=torch.Generator().manual_seed(0),
    )
    seqs = out.sequences[:, 1:]
    assert (seqs != 1).all()
    first_eos = (seqs == 0).int().argmax(1)
    for row, i in zip(seqs, first_eos, strict=True):
        if (row == 0).any():
            assert (row[i:] == 0).all()
    n_drawn = torch.where((seqs == 0).any(1), first_eos + 1, seqs.shape[1])
    expected = n_drawn * math.log(0.7) + (seqs == 0).any(1) * (math.log(0.3) - math.log(0.7))
    torch.testing.assert_close(out.logprobs, expected.to(DT))


# ------------------------------------------------------------------------------ errors


STEP = markov_step_fn(P_TRAP)
PREFIX = torch.tensor([[0]])


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda: beam_search(STEP, PREFIX, 0, 3),
            ValueError,
            "beam_width must be at least 1, got 0",
        ),
        (
            lambda: beam_search(STEP, PREFIX, 2.0, 3),
            TypeError,
            "beam_width must be an int, got float 2.0",
        ),
        (lambda: sample(STEP, PREFIX, 3, top_k=0), ValueError, "top_k must be at least 1, got 0"),
        (
            lambda: sample(STEP, PREFIX, 3, top_p=0.0),
            ValueError,
            r"top_p must lie in \(0, 1\], got 0.0",
        ),
        (
            lambda: sample(STEP, PREFIX, 3, top_p=1.5),
            ValueError,
            r"top_p must lie in \(0, 1\], got 1.5",
        ),
        (lambda: top_p_filter(torch.zeros(1, 3), -0.1), ValueError, r"top_p must lie in \(0, 1\]"),
        (lambda: top_k_filter(torch.zeros(1, 3), 0), ValueError, "top_k must be at least 1, got 0"),
        (
            lambda: sample(STEP, PREFIX, 3, temperature=0.0),
            ValueError,
            "temperature must be a finite number > 0, got 0.0",
        ),
        (
            lambda: sample(STEP, PREFIX, 3, temperature=-1),
            ValueError,
            "temperature must be a finite number > 0, got -1",
        ),
        (lambda: greedy(STEP, PREFIX, -1), ValueError, "max_new_tokens must be at least 0, got -1"),
        (
            lambda: greedy("model", PREFIX, 3),
            TypeError,
            "step_fn must be callable, got str 'model'",
        ),
        (lambda: greedy(STEP, [[0]], 3), TypeError, "prefix must be a torch.Tensor, got list"),
        (
            lambda: greedy(STEP, torch.tensor([[0.0]]), 3),
            TypeError,
            "prefix must be a LongTensor of token ids, got dtype torch.float32",
        ),
        (
            lambda: greedy(STEP, torch.tensor([0, 1]), 3),
            ValueError,
            r"prefix must have shape \(N, T0\), one row per sequence, got \(2,\)",
        ),
        (
            lambda: greedy(STEP, PREFIX, 3, eos_id=4),
            ValueError,
            r"eos_id=4 is out of range for a vocabulary of 4 tokens: it must lie in \[0, 4\)",
        ),
        (
            lambda: beam_search(STEP, PREFIX, 2, 3, eos_id=-1),
            ValueError,
            r"eos_id=-1 is out of range for a vocabulary of 4 tokens: it must lie in \[0, 4\)",
        ),
        (
            lambda: greedy(STEP, PREFIX, 3, eos_id=1.0),
            TypeError,
            "eos_id must be an int, got float 1.0",
        ),
        (
            lambda: beam_search(STEP, PREFIX, 2, 3, length_penalty="1"),
            TypeError,
            "length_penalty must be a real number, got str '1'",
        ),
        (
            lambda: greedy(STEP, PREFIX, 3, counter=-1),
            TypeError,
            "counter must be a WorkCounter or None, got int",
        ),
        (
            lambda: beam_search(STEP, PREFIX, 2, 3, reorder=-1),
            TypeError,
            "reorder must be callable, got int -1",
        ),
        (
            lambda: top_k_filter(torch.tensor(1.0), top_k=1),
            ValueError,
            r"logits must have a vocabulary dimension, shape \(N, V\) or \(V,\), got shape \(\)",
        ),
        (
            lambda: top_p_filter(torch.tensor(1.0), top_p=0.5),
            ValueError,
            r"logits must have a vocabulary dimension",
        ),
        (
            lambda: markov_step_fn(torch.ones(2, 3) / 3),
            ValueError,
            r"transition must have shape \(V, V\), got \(2, 3\)",
        ),
        (lambda: markov_step_fn(torch.ones(2, 2)), ValueError, "transition must be row-stochastic"),
    ],
)
def test_errors_name_the_argument(call, error, message):
    with pytest.raises(error, match=message):
        call()


@pytest.mark.parametrize(
    ("bad_step", "message"),
    [
        (
            lambda t: torch.zeros(t.shape[0]),
            r"step_fn returned shape \(2,\) for tokens of shape \(2, 1\): expected \(2, V\)",
        ),
        (
            lambda t: torch.zeros(t.shape[0] + 1, 3),
            r"step_fn returned shape \(3, 3\) for tokens of shape \(2, 1\): expected \(2, V\)",
        ),
    ],
)
def test_step_fn_with_the_wrong_shape_is_named(bad_step, message):
    prefix = torch.tensor([[0], [1]])
    for decode in (
        lambda: greedy(bad_step, prefix, 2),
        lambda: sample(bad_step, prefix, 2),
        lambda: beam_search(bad_step, prefix[:1], 2, 2),
        lambda: exhaustive_search(bad_step, prefix, 2),
    ):
        with pytest.raises(ValueError, match=message):
            decode()


def test_step_fn_whose_vocabulary_changes_is_named():
    def step_fn(tokens):  # V = 3 at the first call, then 4
        return torch.zeros(tokens.shape[0], 2 + tokens.shape[1]).log_softmax(-1)

    with pytest.raises(
        ValueError, match=r"returned shape \(1, 4\) for tokens of shape \(1, 2\): expected \(1, 3\)"
    ):
        greedy(step_fn, torch.tensor([[0]]), 3)


def test_step_fn_returning_integers_is_named():
    with pytest.raises(TypeError, match="step_fn output must be a floating-point tensor"):
        greedy(lambda t: torch.zeros(t.shape[0], 3, dtype=torch.long), PREFIX, 2)


# ------------------------------------------------------------------------------ extreme inputs


def test_masked_tokens_are_never_chosen():
    # Token 2 is masked (-inf) everywhere; the other log-probabilities are extreme but finite.
    logp = torch.tensor([[-1e4, 0.0, float("-inf")], [0.0, -1e4, float("-inf")]], dtype=DT)
    table = torch.cat([logp, logp[:1]])  # rows for tokens 0, 1, 2

    def step_fn(tokens):
        return table[tokens[:, -1]]

    prefix = torch.tensor([[0], [1], [2]])
    for out in (
        greedy(step_fn, prefix, 5),
        sample(step_fn, prefix, 5, generator=torch.Generator().manual_seed(0)),
        sample(step_fn, prefix, 5, top_p=0.5, generator=torch.Generator().manual_seed(0)),
    ):
        assert (out.sequences[:, 1:] != 2).all()
    beams = beam_search(step_fn, prefix, 2, 5)
    assert (beams.sequences[:, :, 1:] != 2).all()
    assert torch.isfinite(beams.logprobs).all()


def test_beam_wider_than_the_number_of_sequences_pads_with_minus_inf():
    out = beam_search(markov_step_fn(P_TRAP), PREFIX, beam_width=6, max_new_tokens=1)
    assert out.sequences[0, :4, 1].tolist() == [1, 2, 3, 0]  # the 4 continuations, best first
    torch.testing.assert_close(out.logprobs[0, :4].exp(), P_TRAP[0].sort(descending=True).values)
    assert out.logprobs[0, 4:].tolist() == [float("-inf")] * 2


def test_decoders_leave_the_prefix_alone():
    prefix = torch.tensor([[0, 1], [2, 3]])
    before = prefix.clone()
    step_fn = markov_step_fn(P_TRAP)
    greedy(step_fn, prefix, 3)
    sample(step_fn, prefix, 3)
    beam_search(step_fn, prefix, 3, 3)
    exhaustive_search(step_fn, prefix, 2)
    assert torch.equal(prefix, before)


# ------------------------------------------------------------ with the transformer's KV cache


@pytest.mark.parametrize("beam_width", [1, 3])
def test_beam_search_with_the_transformer_kv_cache_equals_recomputing(beam_width):
    """dlref.transformer's cache, reordered by beam search, gives the uncached search exactly."""
    from dlref.transformer import Transformer, TransformerConfig

    torch.manual_seed(0)
    config = TransformerConfig(vocab_size=11, max_seq_len=32, d_model=16, num_heads=4)
    model = Transformer(config).double().eval()
    prompt = torch.tensor([[1, 2, 3], [4, 5, 6]])
    ref = beam_search(model.next_token_log_probs, prompt, beam_width, 8)
    cache = model.new_kv_cache(batch_size=2 * beam_width)
    out = beam_search(
        lambda t: model.next_token_log_probs(t, cache), prompt, beam_width, 8, reorder=cache.reorder
    )
    assert torch.equal(out.sequences, ref.sequences)
    torch.testing.assert_close(out.logprobs, ref.logprobs, rtol=0, atol=1e-12)
    if beam_width > 1:  # without reorder, the cache rows no longer match their beams
        stale_cache = model.new_kv_cache(batch_size=2 * beam_width)
        stale = beam_search(
            lambda t: model.next_token_log_probs(t, stale_cache), prompt, beam_width, 8
        )
        assert not torch.equal(stale.sequences, ref.sequences)
