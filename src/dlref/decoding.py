r"""Decoding a language model: greedy, sampling (temperature, top-k, top-p) and beam search.

Every function drives a ``step_fn`` that maps a batch of token sequences ``(N, T)`` to the
log-probabilities of the next token, ``(N, V)``. A toy model (:func:`markov_step_fn`) and a
transformer with a KV cache plug in the same way; beam search calls ``reorder(rows)`` after each
step so that a cached model can permute its cache to follow the surviving beams.

A :class:`WorkCounter` passed as ``counter=`` adds up the work done: model calls, rows pushed
through the model, and next-token candidates scored. Beam search of width :math:`K` for
:math:`T` new tokens over a vocabulary of size :math:`V` costs :math:`T` calls, :math:`TK` rows
and :math:`TKV` candidates; :func:`exhaustive_search` scores all :math:`V + V^2 + \dots + V^T`.

The decoders work on the device of ``prefix``; ``step_fn`` must return its log-probabilities
there. PyTorch has no built-in decoder; the conventions (order of the sampling filters, ties, length
penalty) follow the common libraries and are stated in each docstring.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor

from dlref._checks import (
    check_callable,
    check_float,
    check_fraction,
    check_generator,
    check_index,
    check_int,
    check_optional,
    check_positive_finite,
    check_real,
    check_tensor,
)

__all__ = [
    "WorkCounter",
    "Generation",
    "markov_step_fn",
    "top_k_filter",
    "top_p_filter",
    "greedy",
    "sample",
    "beam_search",
    "exhaustive_search",
]

StepFn = Callable[[Tensor], Tensor]


@dataclass
class WorkCounter:
    """Work done by a decoder: model calls, rows through the model, candidates scored.

    Attributes
    ----------
    model_calls : int
        Calls of ``step_fn`` (each one batched).
    rows : int
        Sequences pushed through the model, summed over the calls (the batch sizes).
    candidates : int
        Next-token candidates scored and ranked: ``rows * V``.

    Examples
    --------
    >>> from dlref.decoding import WorkCounter
    >>> WorkCounter()
    WorkCounter(model_calls=0, rows=0, candidates=0)
    """

    model_calls: int = 0
    rows: int = 0
    candidates: int = 0


class Generation(NamedTuple):
    r"""Decoded sequences and their log-probabilities under the model.

    Examples
    --------
    >>> import torch
    >>> from dlref.decoding import greedy, markov_step_fn
    >>> out = greedy(markov_step_fn(torch.tensor([[0.3, 0.7], [0.6, 0.4]])), torch.tensor([[0]]), 2)
    >>> out.sequences, out.logprobs.exp()  # 0.7 * 0.6
    (tensor([[0, 1, 0]]), tensor([0.4200]))
    """

    #: Prefix followed by the new tokens, ``(N, T0 + L)`` (``(N, K, T0 + L)`` for beam search,
    #: best beam first). After ``eos_id`` a sequence is padded with ``eos_id``.
    sequences: Tensor
    #: :math:`\sum_t \log p(y_t \mid y_{<t})` over the new tokens, up to and including the first
    #: ``eos_id``: ``(N,)`` (``(N, K)`` for beam search).
    logprobs: Tensor


# ---------------------------------------------------------------------------------------------
# Helpers: argument checks, one model step, the two sampling filters
# ---------------------------------------------------------------------------------------------


def _check_logits(logits: object) -> None:
    check_float("logits", logits)
    if logits.dim() == 0:
        raise ValueError(
            "logits must have a vocabulary dimension, shape (N, V) or (V,), got shape ()"
        )


def _check_prefix(step_fn: object, prefix: object) -> None:
    check_callable("step_fn", step_fn)
    check_tensor("prefix", prefix)
    if prefix.dtype != torch.long:
        raise TypeError(f"prefix must be a LongTensor of token ids, got dtype {prefix.dtype}")
    if prefix.dim() != 2:
        raise ValueError(
            f"prefix must have shape (N, T0), one row per sequence, got {tuple(prefix.shape)}"
        )


def _step(step_fn, tokens, counter, V, eos_id=None, finished=None) -> Tensor:
    """One batched model call, shape-checked and counted: (N, T) -> (N, V).

    ``V`` is None at the first call, where ``eos_id`` is checked against the vocabulary; with
    ``eos_id``, the rows ``finished`` (N,) may only repeat it.
    """
    logp = step_fn(tokens)  # log p(. | tokens[n]), (N, V)
    check_float("step_fn output", logp)
    N = tokens.shape[0]
    shape_ok = logp.dim() == 2 and logp.shape[0] == N and logp.shape[1] > 0
    if not shape_ok or V not in (None, logp.shape[1]):
        expected = f"({N}, V)" if V is None else f"({N}, {V})"
        empty = " over at least one token" if logp.shape[-1:] == (0,) else ""
        raise ValueError(
            f"step_fn returned shape {tuple(logp.shape)} for tokens of shape "
            f"{tuple(tokens.shape)}: expected {expected}, next-token log-probabilities per "
            f"row{empty}"
        )
    if V is None and eos_id is not None:  # the first call: eos_id must be a token
        check_index("eos_id", eos_id, logp.shape[1], of=f"a vocabulary of {logp.shape[1]} tokens")
    if counter is not None:
        counter.model_calls += 1
        counter.rows += N
        counter.candidates += N * logp.shape[1]
    return logp if eos_id is None else _freeze_finished(logp, finished, eos_id)


def _freeze_finished(logp: Tensor, finished: Tensor, eos_id: int) -> Tensor:
    """A finished row may only repeat ``eos_id``, at log-probability 0 (padding)."""
    pad = torch.full_like(logp, float("-inf"))
    pad[:, eos_id] = 0.0
    return torch.where(finished.unsqueeze(-1), pad, logp)


def top_k_filter(logits: Tensor, top_k: int) -> Tensor:
    r"""Keep the ``top_k`` largest entries of each row, set the others to :math:`-\infty`.

    .. math::

        \tilde z_i = \begin{cases} z_i & z_i \ge z_{(k)} \\ -\infty & \text{otherwise}
        \end{cases}

    where :math:`z_{(k)}` is the k-th largest entry. As in common libraries, entries tied with the
    k-th largest are kept, so a row may keep more than ``top_k``; ``top_k`` larger than the
    vocabulary keeps everything.

    Parameters
    ----------
    logits : Tensor
        Logits or log-probabilities, ``(N, V)``.
    top_k : int
        Number of entries to keep per row, ``>= 1``.

    Examples
    --------
    >>> import torch
    >>> from dlref.decoding import top_k_filter
    >>> top_k_filter(torch.tensor([[1.0, 3.0, 2.0, 0.0]]), top_k=2)
    tensor([[-inf, 3., 2., -inf]])
    """
    _check_logits(logits)
    k = min(check_int("top_k", top_k), logits.shape[-1])
    kth = logits.topk(k, dim=-1).values[..., -1:]  # z_(k), (N, 1)
    return logits.masked_fill(logits < kth, float("-inf"))


def top_p_filter(logits: Tensor, top_p: float) -> Tensor:
    r"""Keep the smallest set of most likely tokens whose probability adds up to at least ``top_p``.

    Nucleus filtering: sort the probabilities :math:`p = \mathrm{softmax}(z)` in decreasing order
    :math:`p_{(1)} \ge p_{(2)} \ge \dots` and keep token :math:`(i)` while the mass before it is
    still short of :math:`p`:

    .. math::

        \text{keep } (i) \iff \sum_{j < i} p_{(j)} < \texttt{top\_p}

    The most likely token is always kept (its mass before is 0). This is the definition of
    Holtzman et al. (2020) and of the common libraries. Where a partial sum lands exactly on
    ``top_p`` the outcome depends on floating-point rounding.

    Parameters
    ----------
    logits : Tensor
        Logits or log-probabilities, ``(N, V)``.
    top_p : float
        Probability mass to keep, in (0, 1].

    Examples
    --------
    >>> import torch
    >>> from dlref.decoding import top_p_filter
    >>> p = torch.tensor([[0.1, 0.5, 0.15, 0.25]], dtype=torch.float64)
    >>> top_p_filter(p.log(), top_p=0.7).exp()  # 0.5 < 0.7 <= 0.5 + 0.25
    tensor([[0.0000, 0.5000, 0.0000, 0.2500]], dtype=torch.float64)
    """
    _check_logits(logits)
    top_p = check_fraction("top_p", top_p, low_open=True)
    if top_p == 1.0:  # keep everything, whatever the rounding of the partial sums
        return logits
    p_sorted, order = logits.softmax(dim=-1).sort(dim=-1, descending=True)  # p_(1) >= p_(2) ...
    mass_before = p_sorted.cumsum(dim=-1) - p_sorted  # sum_{j<i} p_(j)
    drop_sorted = mass_before >= top_p
    drop = drop_sorted.scatter(-1, order, drop_sorted)  # back to vocabulary order
    return logits.masked_fill(drop, float("-inf"))


# ---------------------------------------------------------------------------------------------
# A known model: a Markov chain over tokens
# ---------------------------------------------------------------------------------------------


def markov_step_fn(transition: Tensor) -> StepFn:
    r"""A ``step_fn`` for a Markov-chain language model with a known transition table.

    .. math:: p(y_t = j \mid y_{<t}) = P_{y_{t-1},\, j}

    Parameters
    ----------
    transition : Tensor
        Row-stochastic table :math:`P`, ``(V, V)``: row ``i`` is the next-token distribution
        after token ``i``.

    Returns
    -------
    callable
        ``step_fn(tokens)`` mapping ``(N, T)`` token ids (``T >= 1``) to ``(N, V)`` log-probs,
        on the device of ``tokens`` (the table is copied there once, on first use).

    Examples
    --------
    >>> import torch
    >>> from dlref.decoding import markov_step_fn
    >>> step_fn = markov_step_fn(torch.tensor([[0.9, 0.1], [0.5, 0.5]]))
    >>> step_fn(torch.tensor([[0, 1], [1, 0]])).exp()
    tensor([[0.5000, 0.5000],
            [0.9000, 0.1000]])
    """
    check_float("transition", transition)
    if transition.dim() != 2 or transition.shape[0] != transition.shape[1]:
        raise ValueError(f"transition must have shape (V, V), got {tuple(transition.shape)}")
    row_sums = transition.sum(-1)
    if (transition < 0).any() or not torch.allclose(row_sums, torch.ones_like(row_sums)):
        raise ValueError("transition must be row-stochastic: entries >= 0, each row summing to 1")
    log_P = {transition.device: transition.log()}  # log P, (V, V), on each device it is used

    def step_fn(tokens: Tensor) -> Tensor:
        if tokens.device not in log_P:
            log_P[tokens.device] = log_P[transition.device].to(tokens.device)
        return log_P[tokens.device][tokens[:, -1]]  # log P[y_{t-1}], (N, V)

    return step_fn


# ---------------------------------------------------------------------------------------------
# Decoders
# ---------------------------------------------------------------------------------------------


def _decode(
    step_fn: StepFn,
    prefix: Tensor,
    max_new_tokens: int,
    choose: Callable[[Tensor], Tensor],
    eos_id: int | None,
    counter: WorkCounter | None,
) -> Generation:
    """The loop shared by greedy and sampling: one token per row and step, ``choose(logp)``."""
    tokens, V = prefix, None
    dev = prefix.device
    logprobs = torch.zeros(prefix.shape[0], device=dev)  # sum_t log p(y_t | y_<t), (N,)
    finished = torch.zeros(prefix.shape[0], dtype=torch.bool, device=dev)
    for _ in range(max_new_tokens):
        logp = _step(step_fn, tokens, counter, V, eos_id, finished)  # (N, V)
        V, logprobs = logp.shape[1], logprobs.to(logp.dtype)
        y = choose(logp)  # y_t, (N,)
        logprobs = logprobs + logp.gather(1, y[:, None]).squeeze(1)  # += log p(y_t)
        tokens = torch.cat([tokens, y[:, None]], dim=1)  # (N, T + 1)
        if eos_id is not None:
            finished = finished | (y == eos_id)
            if finished.all():
                break
    return Generation(tokens, logprobs)


# fmt: off
def greedy(step_fn: StepFn, prefix: Tensor, max_new_tokens: int, eos_id: int | None = None, *,
           counter: WorkCounter | None = None) -> Generation:
    # fmt: on
    r"""Greedy decoding: take the most likely next token at every step.

    .. math:: y_t = \arg\max_{v} \log p(v \mid y_{<t})

    Ties go to the smallest token id (as :func:`torch.argmax`). Greedy costs one model call of N
    rows per step, but can miss the most likely *sequence*: a likely first token may lead only
    to unlikely continuations.

    Parameters
    ----------
    step_fn : callable
        ``step_fn(tokens)``: ``(N, T)`` token ids to next-token log-probabilities ``(N, V)``.
    prefix : Tensor
        Prompt token ids, LongTensor ``(N, T0)``.
    max_new_tokens : int
        Number of tokens to generate (fewer if every row has emitted ``eos_id``).
    eos_id : int, optional
        End-of-sequence token: a row that emits it is padded with it, at log-probability 0.
    counter : WorkCounter, optional
        Adds this call's model calls, rows and candidates to it.

    Returns
    -------
    Generation
        ``sequences`` ``(N, T0 + L)`` and their ``logprobs`` ``(N,)``.

    Examples
    --------
    >>> import torch
    >>> from dlref.decoding import greedy, markov_step_fn
    >>> P = torch.tensor([[0.1, 0.6, 0.3], [0.2, 0.2, 0.6], [0.5, 0.4, 0.1]])
    >>> out = greedy(markov_step_fn(P), torch.tensor([[0]]), max_new_tokens=3)
    >>> out.sequences, round(out.logprobs.exp().item(), 3)  # 0.6 * 0.6 * 0.5
    (tensor([[0, 1, 2, 0]]), 0.18)
    """
    _check_prefix(step_fn, prefix)
    max_new_tokens = check_int("max_new_tokens", max_new_tokens, minimum=0)
    check_optional("counter", counter, WorkCounter)
    return _decode(step_fn, prefix, max_new_tokens, lambda lp: lp.argmax(-1), eos_id, counter)


def sample(
    step_fn: StepFn,
    prefix: Tensor,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
    eos_id: int | None = None,
    *,
    counter: WorkCounter | None = None,
) -> Generation:
    r"""Ancestral sampling with temperature, top-k and top-p (nucleus) filtering.

    .. math::

        y_t \sim \mathrm{softmax}\bigl(\mathrm{filter}(\log p(\cdot \mid y_{<t}) / \tau)\bigr)

    The filters apply in the order of the common libraries: temperature :math:`\tau` first, then
    :func:`top_k_filter`, then :func:`top_p_filter` on the tempered, top-k-filtered
    distribution. :math:`\tau \to 0` approaches greedy decoding, :math:`\tau = 1` with no filter
    samples from the model itself.

    Parameters
    ----------
    step_fn, prefix, max_new_tokens, eos_id, counter
        As in :func:`greedy`.
    temperature : float, default 1.0
        :math:`\tau > 0`.
    top_k : int, optional
        Keep only the ``top_k`` most likely tokens (``>= 1``).
    top_p : float, optional
        Keep the smallest set of most likely tokens with probability ``>= top_p``, in (0, 1].
    generator : torch.Generator, optional
        Source of randomness for :func:`torch.multinomial`; it lives on the tensors' device
        (``torch.Generator(device=prefix.device)``).

    Returns
    -------
    Generation
        ``sequences`` ``(N, T0 + L)`` and their ``logprobs`` ``(N,)`` under the model itself
        (:math:`\tau = 1`, unfiltered), not under the sampling distribution.

    Examples
    --------
    >>> import torch
    >>> from dlref.decoding import markov_step_fn, sample
    >>> P = torch.tensor([[0.1, 0.6, 0.3], [0.2, 0.2, 0.6], [0.5, 0.4, 0.1]])
    >>> out = sample(markov_step_fn(P), torch.zeros(4, 1, dtype=torch.long), 3, top_k=1)
    >>> out.sequences  # top_k=1 is greedy
    tensor([[0, 1, 2, 0],
            [0, 1, 2, 0],
            [0, 1, 2, 0],
            [0, 1, 2, 0]])
    """
    _check_prefix(step_fn, prefix)
    max_new_tokens = check_int("max_new_tokens", max_new_tokens, minimum=0)
    check_optional("counter", counter, WorkCounter)
    check_positive_finite("temperature", temperature)
    top_k = None if top_k is None else check_int("top_k", top_k)
    top_p = None if top_p is None else check_fraction("top_p", top_p, low_open=True)
    check_generator(generator, prefix.device)

    def choose(logp: Tensor) -> Tensor:
        z = logp / temperature  # z / tau
        if top_k is not None:
            z = top_k_filter(z, top_k)
        if top_p is not None:
            z = top_p_filter(z, top_p)
        probs = z.softmax(dim=-1)  # the sampling distribution, (N, V)
        return torch.multinomial(probs, 1, generator=generator).squeeze(1)

    return _decode(step_fn, prefix, max_new_tokens, choose, eos_id, counter)


def beam_search(
    step_fn: StepFn,
    prefix: Tensor,
    beam_width: int,
    max_new_tokens: int,
    eos_id: int | None = None,
    length_penalty: float = 1.0,
    *,
    reorder: Callable[[Tensor], None] | None = None,
    counter: WorkCounter | None = None,
) -> Generation:
    r"""Beam search: keep the ``beam_width`` best partial sequences, extend all, keep the best.

    At step :math:`t` every beam :math:`b` with log-probability :math:`s_b` proposes every token
    :math:`v`; of the :math:`KV` candidates the :math:`K` with the best score are kept:

    .. math::

        s_{b,v} = s_b + \log p(v \mid y^{(b)}_{<t}),\qquad
        \mathrm{score}_{b,v} = \frac{s_{b,v}}{L_{b,v}^{\,\alpha}}

    where :math:`L` is the number of generated tokens (up to and including ``eos_id``) and
    :math:`\alpha` is ``length_penalty``. Without ``eos_id`` every candidate has length
    :math:`t`, so the ranking is by :math:`s` alone and :math:`\alpha` changes nothing.

    Conventions. The prompt is copied into :math:`K` rows with scores :math:`(0, -\infty, \dots)`
    so that every step is one model call of exactly :math:`NK` rows and no beam is duplicated.
    A beam that emits ``eos_id`` stays in the beam, frozen: its only continuation is ``eos_id``
    at log-probability 0, so it keeps competing, with its final score, for one of the :math:`K`
    places. The search stops when all :math:`K` beams have finished or after ``max_new_tokens``
    steps. Ties between scores are broken by :func:`torch.topk`. Width 1 is greedy decoding.

    Parameters
    ----------
    step_fn, prefix, max_new_tokens, eos_id, counter
        As in :func:`greedy`; ``step_fn`` gets ``(N*K, T)`` tokens, row ``n*K + b`` being beam
        ``b`` of prompt ``n``.
    beam_width : int
        :math:`K \ge 1`.
    length_penalty : float, default 1.0
        :math:`\alpha`; 0 ranks by log-probability alone, larger values favour longer
        sequences (log-probabilities are negative).
    reorder : callable, optional
        Called after each step with a LongTensor ``(N*K,)``: new row ``r`` continues old row
        ``rows[r]``. A ``step_fn`` that caches per-row state (a KV cache) reorders it here.

    Returns
    -------
    Generation
        ``sequences`` ``(N, K, T0 + L)`` and ``logprobs`` ``(N, K)``, best score first. Where
        fewer than :math:`K` continuations exist (:math:`K > V^T`), the extra beams have
        log-probability :math:`-\infty`.

    Examples
    --------
    >>> import torch
    >>> from dlref.decoding import beam_search, markov_step_fn
    >>> P = torch.tensor([[0.1, 0.6, 0.3], [0.2, 0.2, 0.6], [0.5, 0.4, 0.1]])
    >>> out = beam_search(markov_step_fn(P), torch.tensor([[0]]), beam_width=2, max_new_tokens=3)
    >>> out.sequences[0]
    tensor([[0, 1, 2, 0],
            [0, 1, 2, 1]])
    >>> out.logprobs.exp()  # 0.6 * 0.6 * 0.5 and 0.6 * 0.6 * 0.4
    tensor([[0.1800, 0.1440]])
    """
    _check_prefix(step_fn, prefix)
    beam_width = check_int("beam_width", beam_width)
    max_new_tokens = check_int("max_new_tokens", max_new_tokens, minimum=0)
    check_optional("counter", counter, WorkCounter)
    if reorder is not None:
        check_callable("reorder", reorder)
    check_real("length_penalty", length_penalty)
    N, K, dev = prefix.shape[0], beam_width, prefix.device
    tokens = prefix.repeat_interleave(K, dim=0)  # (N*K, T0), row n*K + b
    s = torch.full((N, K), float("-inf"), device=dev)
    s[:, 0] = 0.0  # s_b: one live copy of the prompt
    length = torch.zeros(N, K, device=dev)  # L_b, generated tokens
    finished = torch.zeros(N, K, dtype=torch.bool, device=dev)
    # the row of beam 0 of prompt n, (N, 1)
    first_row = K * torch.arange(N, device=dev).unsqueeze(1)
    V = None
    for t in range(1, max_new_tokens + 1):
        logp = _step(step_fn, tokens, counter, V, eos_id, finished.view(-1))
        V, s = logp.shape[1], s.to(logp.dtype)  # logp: (N*K, V)
        cand = s.unsqueeze(-1) + logp.view(N, K, V)  # s_{b,v}, (N, K, V)
        # L_{b,v}, (N, K, V)
        cand_len = torch.where(finished, length, t)[..., None].expand(N, K, V)
        score = cand / cand_len.to(cand.dtype) ** length_penalty  # s / L^alpha
        # the K best of the K*V candidates, (N, K)
        top = score.view(N, K * V).topk(K, dim=-1).indices
        # which beam each survivor extends, and with which token
        beam, y = top // V, top % V
        # (N*K,): the row of tokens each survivor extends
        rows = (beam + first_row).view(-1)
        s = cand.view(N, K * V).gather(1, top)  # (N, K)
        length = cand_len.reshape(N, K * V).gather(1, top)
        tokens = torch.cat([tokens[rows], y.view(-1, 1)], dim=1)  # (N*K, T+1)
        if reorder is not None:
            reorder(rows)
        if eos_id is not None:
            finished = finished.gather(1, beam) | (y == eos_id)
            if finished.all():
                break
    sequences = tokens.view(N, K, tokens.shape[1])  # (N, K, T0 + L)
    if max_new_tokens > 0:  # rank by the final, length-penalised score
        final = s / length.to(s.dtype) ** length_penalty  # s / L^alpha, (N, K)
        order = final.argsort(dim=1, descending=True)
        s = s.gather(1, order)
        sequences = sequences[torch.arange(N, device=dev).unsqueeze(1), order]
    return Generation(sequences, s)


def exhaustive_search(
    step_fn: StepFn, prefix: Tensor, max_new_tokens: int, *, counter: WorkCounter | None = None
) -> Generation:
    r"""The most likely continuation, found by scoring all :math:`V^T` of them.

    .. math:: y^\star = \arg\max_{y \in \{0..V-1\}^T} \sum_{t=1}^{T} \log p(y_t \mid y_{<t})

    The tree is expanded one level per model call: level :math:`t` pushes :math:`V^{t}` rows
    per prompt through the model, so the search costs :math:`T` calls,
    :math:`1 + V + \dots + V^{T-1}` rows and :math:`V + V^2 + \dots + V^T` candidates. That is
    exponential in :math:`T`: use it as ground truth on small problems only.

    Parameters
    ----------
    step_fn, prefix, counter
        As in :func:`greedy`.
    max_new_tokens : int
        Length :math:`T` of the continuation.

    Returns
    -------
    Generation
        The best ``sequences`` ``(N, T0 + T)`` and their ``logprobs`` ``(N,)``.

    Examples
    --------
    >>> import torch
    >>> from dlref.decoding import exhaustive_search, markov_step_fn
    >>> P = torch.tensor([[0.1, 0.5, 0.4], [0.34, 0.33, 0.33], [0.9, 0.05, 0.05]])
    >>> step_fn = markov_step_fn(P)
    >>> best = exhaustive_search(step_fn, torch.tensor([[0]]), max_new_tokens=2)
    >>> best.sequences, f"{best.logprobs.exp().item():.2f}"  # 0.4 * 0.9; greedy: 0.5 * 0.34
    (tensor([[0, 2, 0]]), '0.36')
    """
    _check_prefix(step_fn, prefix)
    max_new_tokens = check_int("max_new_tokens", max_new_tokens, minimum=0)
    check_optional("counter", counter, WorkCounter)
    N, M, V = prefix.shape[0], 1, None
    tokens = prefix  # all continuations so far, (N*M, T0 + t) with M = V^t
    s = torch.zeros(N, M, device=prefix.device)  # their log-probabilities, (N, M)
    for _ in range(max_new_tokens):
        logp = _step(step_fn, tokens, counter, V)  # (N*M, V)
        V = logp.shape[1]
        s = (s.to(logp.dtype).unsqueeze(-1) + logp.view(N, M, V)).view(N, M * V)  # (N, M*V)
        y = torch.arange(V, device=prefix.device).repeat(N * M)  # each row extended by 0..V-1
        tokens = torch.cat([tokens.repeat_interleave(V, dim=0), y.unsqueeze(1)], dim=1)
        M *= V
    best = s.argmax(dim=1)  # y*, (N,)
    n = torch.arange(N, device=prefix.device)
    sequences = tokens.view(N, M, tokens.shape[1])[n, best]  # (N, T0 + T)
    return Generation(sequences, s[n, best])
