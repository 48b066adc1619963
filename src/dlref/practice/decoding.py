"""Exercise on beam search (reference: :func:`dlref.decoding.beam_search`, ranked by
log-probability: ``length_penalty=0``)."""

from __future__ import annotations

import torch
from torch import Tensor

from dlref import decoding
from dlref.practice._cases import DT, bad_input, rand, shape_check, values_check
from dlref.practice._grader import Check, Mistake, register

PAGE = "topics/decoding.html"


class MarkovModel:
    """A ``step_fn`` with a readable repr: next-token log-probabilities from a transition table.

    Parameters
    ----------
    P : Tensor
        Row-stochastic transition table, (V, V): row ``i`` is the distribution of the token
        after token ``i`` (:func:`dlref.decoding.markov_step_fn`).

    Examples
    --------
    >>> import torch
    >>> from dlref.practice.decoding import MarkovModel
    >>> model = MarkovModel(torch.tensor([[0.9, 0.1], [0.5, 0.5]], dtype=torch.float64))
    >>> model
    MarkovModel(P=[[0.9, 0.1], [0.5, 0.5]]), step_fn(tokens) = log P[tokens[:, -1]]
    >>> model(torch.tensor([[0, 1], [1, 0]])).exp()  # rows of P after the last tokens, 1 and 0
    tensor([[0.5000, 0.5000],
            [0.9000, 0.1000]], dtype=torch.float64)
    """

    def __init__(self, P: Tensor):
        self.P = P
        self._step = decoding.markov_step_fn(P)

    def __call__(self, tokens: Tensor) -> Tensor:
        return self._step(tokens)

    def __repr__(self) -> str:
        rows = ", ".join("[" + ", ".join(f"{p:.3g}" for p in row) + "]" for row in self.P.tolist())
        return f"MarkovModel(P=[{rows}]), step_fn(tokens) = log P[tokens[:, -1]]"


def beam_search_reference(step_fn, prefix, beam_width, max_new_tokens, eos_id=None):
    """The reference: :func:`dlref.decoding.beam_search` with ``length_penalty=0``.

    Parameters
    ----------
    step_fn : callable
        ``(N*K, T)`` token ids to ``(N*K, V)`` next-token log-probabilities.
    prefix : Tensor
        Prompts, int64, (N, T0).
    beam_width : int
        :math:`K`.
    max_new_tokens : int
        Steps, fewer when every beam has emitted ``eos_id``.
    eos_id : int, optional
        End-of-sequence token: a beam that emits it stays, frozen.

    Returns
    -------
    sequences : Tensor
        (N, K, T0 + L), best first.
    logprobs : Tensor
        (N, K), the total log-probability of each sequence.

    Examples
    --------
    >>> import torch
    >>> from dlref.practice.decoding import MarkovModel, beam_search_reference
    >>> P = torch.tensor([[0.1, 0.6, 0.3], [0.2, 0.2, 0.6], [0.5, 0.4, 0.1]], dtype=torch.float64)
    >>> seqs, logprobs = beam_search_reference(MarkovModel(P), torch.tensor([[0]]), 2, 3)
    >>> seqs[0], logprobs.exp()  # 0.6 * 0.6 * 0.5 and 0.6 * 0.6 * 0.4
    (tensor([[0, 1, 2, 0],
            [0, 1, 2, 1]]), tensor([[0.1800, 0.1440]], dtype=torch.float64))
    """
    out = decoding.beam_search(
        step_fn, prefix, beam_width, max_new_tokens, eos_id, length_penalty=0.0
    )
    return out.sequences, out.logprobs


def _beam(step_fn, prefix, beam_width, max_new_tokens, eos_id=None, how=""):
    """A plain beam search with the conventions of the exercise, or (``how``) a known mistake."""
    N, K = prefix.shape[0], beam_width
    tokens = prefix.repeat_interleave(K, 0)  # (N*K, T0)
    s = torch.zeros(N, K, dtype=DT)
    if how != "duplicate_start":
        s[:, 1:] = float("-inf")  # one live copy of the prompt
    finished = torch.zeros(N, K, dtype=torch.bool)
    for _ in range(max_new_tokens):
        logp = step_fn(tokens).to(DT)  # (N*K, V)
        V = logp.shape[1]
        logp = logp.view(N, K, V).clone()
        if eos_id is not None:
            frozen = torch.full((V,), float("-inf"), dtype=DT)
            if how != "drop_finished":
                frozen[eos_id] = 0.0
            logp[finished] = frozen
        cand = s[..., None] + logp  # (N, K, V)
        if how == "per_beam":
            best = cand.max(-1)  # each beam's best token only
            s, order = best.values.sort(-1, descending=True)
            beam, y = order, best.indices.gather(1, order)
        else:
            top = cand.view(N, K * V).topk(K, dim=-1)
            s, beam, y = top.values, top.indices // V, top.indices % V
        rows = (beam + K * torch.arange(N)[:, None]).view(-1)
        tokens = torch.cat([tokens[rows], y.reshape(-1, 1)], 1)
        if eos_id is not None:
            finished = finished.gather(1, beam) | (y == eos_id)
            if finished.all():
                break
    return tokens.view(N, K, -1), s


def _variant(how):
    def fn(step_fn, prefix, beam_width, max_new_tokens, eos_id=None):
        return _beam(step_fn, prefix, beam_width, max_new_tokens, eos_id, how)

    return fn


def _case(V, N, K, T, seed, eos_id=None, T0=1, temp=1.0):
    g = torch.Generator().manual_seed(seed)
    P = torch.softmax(torch.randn(V, V, generator=g, dtype=DT) * 2.0 / temp, -1)
    prefix = (rand(N, T0, seed=seed + 1) * V).long()
    return {
        "step_fn": MarkovModel(P),
        "prefix": prefix,
        "beam_width": K,
        "max_new_tokens": T,
        "eos_id": eos_id,
    }


def _markov_case(P: list, max_new_tokens: int, **eos) -> dict:
    """Two beams from token 0 of the Markov chain with transition matrix ``P``."""
    step_fn = MarkovModel(torch.tensor(P, dtype=DT))
    prefix = torch.tensor([[0]])
    return {
        "step_fn": step_fn,
        "prefix": prefix,
        "beam_width": 2,
        "max_new_tokens": max_new_tokens,
    } | eos


def _hand():
    return _markov_case([[0.1, 0.6, 0.3], [0.2, 0.2, 0.6], [0.5, 0.4, 0.1]], 3)


def _eos_trap():
    # token 2 is eos; from 0, eos is likely (0.5) but the best path continues 0 -> 1 -> 1 ...
    return _markov_case([[0.05, 0.45, 0.5], [0.02, 0.9, 0.08], [0.3, 0.3, 0.4]], 4, eos_id=2)


STUB = r'''
import torch
from torch import Tensor


def beam_search(step_fn, prefix: Tensor, beam_width: int, max_new_tokens: int, eos_id=None):
    r"""Beam search ranked by total log-probability.

    step_fn(tokens): (N*K, T) token ids -> (N*K, V) next-token log-probabilities; row n*K + b
    is beam b of prompt n. prefix: (N, T0) int64 prompts. K = beam_width.

    Start every prompt with K rows: one live copy of the prompt with score 0 and K - 1 copies
    with score -inf (so no beam is duplicated). At each step extend every beam by every token:
        s_{b,v} = s_b + log p(v | beam b)
    and keep the K best of the K*V candidates per prompt (torch.topk order).
    A beam that has emitted eos_id stays in the beam, frozen: its only continuation is eos_id
    at log-probability 0. Stop after max_new_tokens steps, or as soon as all N*K beams have
    finished. Return (sequences (N, K, T0 + steps) int64, scores (N, K)), best first.
    Raise a ValueError for beam_width < 1.
    """
    raise NotImplementedError
'''

register(
    reference=beam_search_reference,
    stub=STUB,
    summary="beam search over K*V candidates, finished beams kept frozen",
    checks=(
        shape_check(lambda: [_case(3, 1, 2, 2, 0, T0=2)]),
        values_check(lambda: [_hand()]),
        Check(
            "random models, batches of prompts",
            lambda: [_case(5, 2, 3, 4, 10), _case(6, 3, 4, 3, 20, T0=2)],
        ),
        Check(
            "end of sequence: finished beams stay in the beam",
            lambda: [_eos_trap(), _case(5, 2, 3, 5, 30, eos_id=0)],
        ),
        Check(
            "edge: width 1 (greedy), width > V, no new tokens",
            lambda: [_case(4, 2, 1, 3, 40), _case(2, 1, 3, 1, 50), _case(3, 2, 2, 0, 60)],
        ),
        bad_input(
            "beam_width = 0",
            "beam_width must be at least 1",
            lambda: [{**_hand(), "beam_width": 0}],
        ),
    ),
    difficulty="hard",
    page=f"{PAGE}#key-equations",
    outputs=("sequences", "logprobs"),
    mistakes=(
        Mistake(
            "per_beam_top1",
            _variant("per_beam"),
            "you extended each beam by its own best token: beam search ranks all K*V "
            "candidates together and keeps the K best (several may extend one beam).",
            f"{PAGE}#key-equations",
        ),
        Mistake(
            "drops_finished",
            _variant("drop_finished"),
            "a beam that emitted eos must stay in the beam (frozen, continuing with eos "
            "at log-probability 0); you dropped it, losing complete hypotheses.",
            f"{PAGE}#end-of-sequence-and-the-length-penalty",
        ),
        Mistake(
            "duplicate_start",
            _variant("duplicate_start"),
            "all K copies of the prompt start at score 0, so the first step keeps K "
            "copies of the same candidate: start one copy at 0 and the rest at -inf.",
            f"{PAGE}#key-equations",
        ),
    ),
)
