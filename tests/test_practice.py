"""dlref.practice: the grader can fail.

- every reference passes every check, and the references written in the exercise modules agree
  with an independent computation (a torch module, a plain loop, autograd, complex numbers,
  numerical minimisation);
- for every exercise, wrong implementations written here (not the grader's own variants) are
  caught by the expected check with the expected diagnosis;
- every known mistake of the grader is reachable (diagnosed as itself);
- a stub says "not implemented yet" (exit code 1), a syntax error gives its line, an exception
  or an endless loop is reported, ``start`` never overwrites a file.
"""

import math
import pathlib
import re
import subprocess
import sys
import time

import pytest
import torch
import torch.nn.functional as F
from test_practice_conv import WRONG_CONV
from test_practice_normalization import WRONG as WRONG_NORMALIZATION
from test_practice_precision import WRONG as WRONG_PRECISION

from dlref.practice import (
    REGISTRY,
    check,
    check_file,
    check_file_isolated,
    docs_url,
    exercises,
    get,
    start,
)
from dlref.practice import attention as pa
from dlref.practice import decoding as pd
from dlref.practice import rl as prl
from dlref.practice import rnn as prnn
from dlref.practice import scaling as ps
from dlref.practice.__main__ import main

DT = torch.float64
NAMES = list(REGISTRY)


# ----------------------------------------------------------------- every reference passes


def test_at_least_15_exercises_over_the_topics():
    assert len(REGISTRY) >= 15
    assert len({e.topic for e in REGISTRY.values()}) >= 8


@pytest.mark.parametrize("name", NAMES)
def test_reference_passes_every_check(name):
    report = check(get(name).reference, name)
    assert report.passed, str(report)
    assert len(report.passed_checks) == len(get(name).checks)


@pytest.mark.parametrize(
    "name, mistake",
    [(n, m.name) for n in NAMES for m in REGISTRY[n].mistakes],
)
def test_every_known_mistake_is_diagnosed_as_itself(name, mistake):
    m = next(m for m in get(name).mistakes if m.name == mistake)
    report = check(m.fn, name)
    assert not report.passed
    assert report.diagnosis == mistake, str(report)
    assert m.link.startswith("topics/") and ".html" in m.link
    assert m.explanation.endswith(".")


# ------------------------------------------- wrong implementations written here, not the grader's


def bc_left(a, b):
    n = max(len(a), len(b))
    a, b = list(a) + [1] * (n - len(a)), list(b) + [1] * (n - len(b))
    if any(p != q and p != 1 and q != 1 for p, q in zip(a, b, strict=True)):
        raise ValueError("incompatible")
    return tuple(max(p, q) if min(p, q) > 0 else 0 for p, q in zip(a, b, strict=True))


def bc_max(a, b):
    a, b = a[::-1], b[::-1]
    out = [
        max(a[i] if i < len(a) else 1, b[i] if i < len(b) else 1)
        for i in range(max(len(a), len(b)))
    ]
    return tuple(out[::-1])


def fd_forward(f, x, eps=1e-6):
    g = torch.zeros_like(x).reshape(-1)
    for i in range(g.numel()):
        xp = x.clone().reshape(-1)
        xp[i] += eps
        g[i] = (f(xp.reshape(x.shape)) - f(x)) / eps
    return g.reshape(x.shape)


def fd_all_at_once(f, x, eps=1e-6):
    return torch.full_like(x, ((f(x + eps) - f(x - eps)) / (2 * eps)).item())


def sm_naive(x, dim=-1):
    return torch.exp(x) / torch.exp(x).sum(dim, keepdim=True)


def sm_dim0(x, dim=-1):
    return x.exp() / x.exp().sum(0, keepdim=True)


def sm_global(x, dim=-1):
    e = torch.exp(x - torch.max(x))
    return e / torch.sum(e, dim=dim, keepdim=True)


def lsm_log_of_softmax(x, dim=-1):
    return torch.log(F.softmax(x, dim=dim))


def lsm_no_shift(x, dim=-1):
    return x - torch.log(torch.sum(torch.exp(x), dim, keepdim=True))


def ce_mean_over_n(logits, target, ignore_index=-100):
    keep = target != ignore_index
    lp = F.log_softmax(logits, dim=1)
    picked = lp[torch.arange(len(target)), torch.where(keep, target, 0)]
    return -(picked * keep).mean()


def ce_log_of_softmax(logits, target, ignore_index=-100):
    keep = target != ignore_index
    p = torch.softmax(logits[keep], dim=1)
    return -torch.log(p[torch.arange(int(keep.sum())), target[keep]]).mean()


def sig_sign(w, x):
    u = w[0] * x[0] + w[1] * x[1] + w[2]
    L = 1 / (1 + torch.exp(u))
    d = L * (1 - L)
    return d, d * torch.stack([x[0], x[1], torch.ones_like(x[0])]), d * w[:2]


def sig_overflow(w, x):
    if w.shape != (3,):
        raise ValueError("w must have shape (3,)")
    u = w @ torch.cat([x, torch.ones(1, dtype=x.dtype)])
    d = -torch.exp(u) / (1 + torch.exp(u)) ** 2
    return d, d * torch.cat([x, torch.ones(1, dtype=x.dtype)]), d * w[:2]


def _skip(params, x0, t, skip, two):
    p = params
    xa = p["w_a"] * x0 + p["b_a"]
    xb = p["w_b"] * xa + p["b_b"]
    xc = p["w_c"] * xb + p["b_c"]
    xd = p["w_d"] * xc + p["b_d"] + p["w_d2"] * xb + p["b_d2"]
    xe = p["w_e"] * xd + p["b_e"]
    ge = two * (xe - t)
    gd = ge * p["w_e"]
    gc = gd * p["w_d"]
    gb = gc * p["w_c"] + (gd * p["w_d2"] if skip else 0.0)
    return {"dx_e": ge, "dx_d": gd, "dx_c": gc, "dx_b": gb, "db_b": gb}


def skip_no_skip(params, x0, t):
    return _skip(params, x0, t, skip=False, two=2.0)


def skip_no_two(params, x0, t):
    return _skip(params, x0, t, skip=True, two=1.0)


def lin_no_batch_sum(X, W, G):
    return G @ W.T, X.mT @ G


def lin_no_transpose(X, W, G):
    return G @ W, X.reshape(-1, X.shape[-1]).T @ G.reshape(-1, G.shape[-1])


def sgd_ema(param, grad, buf, lr=0.1, momentum=0.9, weight_decay=0.0, nesterov=False):
    d = grad + weight_decay * param
    b = (1 - momentum) * d if buf is None else momentum * buf + (1 - momentum) * d
    step = d + momentum * b if nesterov else b
    return {"buf": b, "param": param - lr * step}


def sgd_plain_nesterov(param, grad, buf, lr=0.1, momentum=0.9, weight_decay=0.0, nesterov=False):
    d = grad + weight_decay * param
    b = d.clone() if buf is None else momentum * buf + d
    return {"buf": b, "param": param - lr * b}


def _adam(
    param,
    grad,
    m,
    v,
    t,
    lr,
    betas,
    eps,
    correct=True,
    eps_in=False,
    wd=0.0,
    l2=False,
    decay_after=False,
    in_place=False,
):
    if t < 1:
        raise ValueError("t must be >= 1")
    if l2:
        grad = grad + wd * param
    elif not decay_after:
        param = param * (1 - lr * wd)
    if in_place:  # on the inputs, which the stub forbids: the grader reports it
        m.mul_(betas[0]).add_((1 - betas[0]) * grad)
        v.mul_(betas[1]).add_((1 - betas[1]) * grad**2)
    else:
        m = betas[0] * m + (1 - betas[0]) * grad
        v = betas[1] * v + (1 - betas[1]) * grad**2
    mh = m / (1 - betas[0] ** t) if correct else m
    vh = v / (1 - betas[1] ** t) if correct else v
    den = torch.sqrt(vh + eps) if eps_in else torch.sqrt(vh) + eps
    new = param - lr * mh / den
    if decay_after:
        new = new * (1 - lr * wd)
    return {"m": m, "v": v, "m_hat": mh, "v_hat": vh, "param": new}


def adam_no_correction(param, grad, m, v, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
    return _adam(param, grad, m, v, t, lr, betas, eps, correct=False)


def adam_eps_inside(param, grad, m, v, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
    return _adam(param, grad, m, v, t, lr, betas, eps, eps_in=True)


def adam_in_place_correct(param, grad, m, v, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
    return _adam(param, grad, m, v, t, lr, betas, eps, in_place=True)


def adamw_l2(param, grad, m, v, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
    return _adam(param, grad, m, v, t, lr, betas, eps, wd=weight_decay, l2=True)


def adamw_decay_after(
    param, grad, m, v, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2
):
    return _adam(param, grad, m, v, t, lr, betas, eps, wd=weight_decay, decay_after=True)


def _lstm(x, h, c, W_ih, W_hh, b_ih, b_hh, order="ifgo", tanh_c=True):
    z = F.linear(x, W_ih, b_ih) + F.linear(h, W_hh, b_hh)
    blocks = dict(zip(order, z.chunk(4, 1), strict=True))
    i, f, o = (torch.sigmoid(blocks[k]) for k in "ifo")
    g = torch.tanh(blocks["g"])
    c2 = f * c + i * g
    h2 = o * (torch.tanh(c2) if tanh_c else c2)
    return {"i": i, "f": f, "g": g, "o": o, "c": c2, "h": h2}


def lstm_ifog(x, h, c, W_ih, W_hh, b_ih, b_hh):
    return _lstm(x, h, c, W_ih, W_hh, b_ih, b_hh, order="ifog")


def lstm_no_tanh(x, h, c, W_ih, W_hh, b_ih, b_hh):
    return _lstm(x, h, c, W_ih, W_hh, b_ih, b_hh, tanh_c=False)


def _att(q, k, v, scale, allowed_diag=0):
    s = torch.einsum("...td,...sd->...ts", q, k) * scale
    T = s.shape[-1]
    mask = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=allowed_diag + 1)
    w = s.masked_fill(mask, -math.inf).softmax(-1)
    return {"scores": s, "weights": w, "output": w @ v}


def att_scale_d(q, k, v):
    return _att(q, k, v, 1 / q.shape[-1])


def att_sees_next(q, k, v):
    return _att(q, k, v, q.shape[-1] ** -0.5, allowed_diag=1)


def _mha(x, Wi, bi, Wo, bo, h, view_heads=False, scale_E=False):
    B, T, E = x.shape
    q, k, v = F.linear(x, Wi, bi).split(E, -1)
    if view_heads:
        q, k, v = (t.reshape(B, h, T, E // h) for t in (q, k, v))
    else:
        q, k, v = (t.view(B, T, h, E // h).permute(0, 2, 1, 3) for t in (q, k, v))
    w = (q @ k.mT / math.sqrt(E if scale_E else E // h)).softmax(-1)
    out = F.linear((w @ v).permute(0, 2, 1, 3).reshape(B, T, E), Wo, bo)
    return {"q": q, "k": k, "v": v, "weights": w, "output": out}


def mha_view(x, in_proj_weight, in_proj_bias, out_proj_weight, out_proj_bias, num_heads):
    return _mha(x, in_proj_weight, in_proj_bias, out_proj_weight, out_proj_bias, num_heads, True)


def mha_scale_E(x, in_proj_weight, in_proj_bias, out_proj_weight, out_proj_bias, num_heads):
    return _mha(
        x, in_proj_weight, in_proj_bias, out_proj_weight, out_proj_bias, num_heads, scale_E=True
    )


def kv_attend_first(x, W_q, W_k, W_v, k_cache, v_cache):
    q, k, v = F.linear(x, W_q), F.linear(x, W_k), F.linear(x, W_v)
    w = torch.softmax(torch.einsum("bd,btd->bt", q, k_cache) / math.sqrt(q.shape[-1]), -1)
    out = torch.einsum("bt,btd->bd", w, v_cache)
    return {
        "k_cache": torch.cat([k_cache, k[:, None]], 1),
        "v_cache": torch.cat([v_cache, v[:, None]], 1),
        "output": out,
    }


def kv_prepend(x, W_q, W_k, W_v, k_cache, v_cache):
    q, k, v = F.linear(x, W_q), F.linear(x, W_k), F.linear(x, W_v)
    K, V = torch.cat([k[:, None], k_cache], 1), torch.cat([v[:, None], v_cache], 1)
    w = torch.softmax(torch.einsum("bd,btd->bt", q, K) / math.sqrt(q.shape[-1]), -1)
    return {"k_cache": K, "v_cache": V, "output": torch.einsum("bt,btd->bd", w, V)}


def _rope_angles(T, d, base, start=0):
    inv = 1.0 / base ** (torch.arange(0, d, 2, dtype=DT) / d)
    return torch.outer(torch.arange(start, start + T, dtype=DT), inv)


def rope_rotate_half(x, base=10000.0):
    T, d = x.shape[-2:]
    a = _rope_angles(T, d, base).repeat(1, 2)  # the GPT-NeoX layout
    x1, x2 = x[..., : d // 2], x[..., d // 2 :]
    return x * a.cos() + torch.cat([-x2, x1], -1) * a.sin()


def rope_from_1(x, base=10000.0):
    T, d = x.shape[-2:]
    z = torch.view_as_complex(x.reshape(*x.shape[:-1], d // 2, 2).contiguous())
    return torch.view_as_real(
        z * torch.polar(torch.ones(T, d // 2, dtype=DT), _rope_angles(T, d, base, 1))
    ).flatten(-2)


def py_beam(step_fn, prefix, beam_width, max_new_tokens, eos_id=None, per_beam=False, dup=False):
    """A plain-Python beam search without eos: lists of (score, tokens)."""
    seqs, scores = [], []
    for row in prefix.tolist():
        beams = [(0.0, row)] + [(-math.inf, row)] * (beam_width - 1)
        if dup:
            beams = [(0.0, row)] * beam_width
        for _ in range(max_new_tokens):
            logp = step_fn(torch.tensor([b[1] for b in beams])).tolist()
            per = [
                [(s + lp[v], seq + [v]) for v in range(len(lp))]
                for (s, seq), lp in zip(beams, logp, strict=True)
            ]
            cands = [max(c, key=lambda z: z[0]) for c in per] if per_beam else sum(per, [])
            beams = sorted(cands, key=lambda z: -z[0])[:beam_width]
        seqs.append([b[1] for b in beams])
        scores.append([b[0] for b in beams])
    return torch.tensor(seqs), torch.tensor(scores, dtype=DT)


def beam_per_beam(step_fn, prefix, beam_width, max_new_tokens, eos_id=None):
    return py_beam(step_fn, prefix, beam_width, max_new_tokens, per_beam=True)


def beam_dup(step_fn, prefix, beam_width, max_new_tokens, eos_id=None):
    return py_beam(step_fn, prefix, beam_width, max_new_tokens, dup=True)


def beam_drops_finished(step_fn, prefix, beam_width, max_new_tokens, eos_id=None):
    """Right without eos; with eos, a beam that ends is dropped instead of kept frozen."""
    if eos_id is None:
        return py_beam(step_fn, prefix, beam_width, max_new_tokens)
    seqs, scores = [], []
    for row in prefix.tolist():
        beams = [(0.0, row)] + [(-math.inf, row)] * (beam_width - 1)
        for _ in range(max_new_tokens):
            logp = step_fn(torch.tensor([b[1] for b in beams])).tolist()
            cands = [
                (s + lp[v], seq + [v])
                for (s, seq), lp in zip(beams, logp, strict=True)
                if not (len(seq) > len(row) and seq[-1] == eos_id)  # finished: dropped
                for v in range(len(lp))
            ]
            beams = sorted(cands, key=lambda z: -z[0])[:beam_width]
            if all(seq[-1] == eos_id for _, seq in beams):
                break
        seqs.append([b[1] for b in beams])
        scores.append([b[0] for b in beams])
    return torch.tensor(seqs), torch.tensor(scores, dtype=DT)


def ret_no_dones(rewards, dones, gamma):
    G, out = torch.zeros_like(rewards[..., 0]), torch.zeros_like(rewards)
    for t in range(rewards.shape[-1] - 1, -1, -1):
        G = rewards[..., t] + gamma * G
        out[..., t] = G
    return out


def ret_from_start(rewards, dones, gamma):
    T = rewards.shape[-1]
    return torch.stack([sum(gamma**k * rewards[..., k] for k in range(t, T)) for t in range(T)], -1)


def rf_not_detached(logp, returns, baseline):
    A = returns - baseline
    return {"advantage": A, "loss": -(A * logp).mean()}


def rf_sign(logp, returns, baseline):
    A = returns - baseline
    return {"advantage": A, "loss": (A.detach() * logp).mean()}


def chin_20(C):
    N = torch.sqrt(C / 120)
    return {"N": N, "D": 20 * N}


def chin_no_6(C):
    a, b = 0.34, 0.28
    G = (a * 406.4 / (b * 410.7)) ** (1 / (a + b))
    return {"N": G * C ** (b / (a + b)), "D": C ** (a / (a + b)) / G}


WRONG = [
    ("broadcast_shape", bc_left, "values on a hand-sized case", "left_aligned"),
    ("broadcast_shape", bc_max, "edge: scalars and size 0", "max_of_sizes"),
    ("finite_difference_grad", fd_forward, "values on a hand-sized case", "forward_difference"),
    (
        "finite_difference_grad",
        fd_all_at_once,
        "values on a hand-sized case",
        "all_coordinates_at_once",
    ),
    ("softmax", sm_naive, "edge: logits of ±1e4 and a length-1 row", "no_max_shift"),
    ("softmax", sm_dim0, "values on a hand-sized case", "wrong_dim"),
    ("softmax", sm_global, "edge: logits of ±1e4 and a length-1 row", "global_max"),
    (
        "log_softmax",
        lsm_log_of_softmax,
        "edge: logits of ±1e4 and a length-1 row",
        "log_of_softmax",
    ),
    ("log_softmax", lsm_no_shift, "edge: logits of ±1e4 and a length-1 row", "no_max_shift"),
    ("cross_entropy", ce_mean_over_n, "values on a hand-sized case", "mean_over_all_rows"),
    ("cross_entropy", ce_log_of_softmax, "edge: logits of ±1e4", "log_of_softmax"),
    ("sigmoid_partials", sig_sign, "values on a hand-sized case", "sign"),
    ("sigmoid_partials", sig_overflow, "edge: u = ±1000 (exp(u) overflows)", "overflow"),
    ("skip_grads", skip_no_skip, "values on a hand-sized case", "missing_skip_path"),
    ("skip_grads", skip_no_two, "values on a hand-sized case", "missing_factor_2"),
    ("linear_backward", lin_no_batch_sum, "random shapes with batch dimensions", "no_batch_sum"),
    ("linear_backward", lin_no_transpose, "shape on a tiny case", "missing_transpose"),
    ("sgd_momentum_step", sgd_ema, "values on a hand-sized case", "ema_momentum"),
    ("sgd_momentum_step", sgd_plain_nesterov, "random shapes and options", "nesterov_ignored"),
    ("adam_step", adam_no_correction, "values on a hand-sized case", "no_bias_correction"),
    ("adam_step", adam_eps_inside, "values on a hand-sized case", "eps_inside_sqrt"),
    ("adamw_step", adamw_l2, "values on a hand-sized case", "l2_in_gradient"),
    ("adamw_step", adamw_decay_after, "values on a hand-sized case", "decay_after_update"),
    ("lstm_cell", lstm_ifog, "values on a hand-sized case", "gate_order"),
    ("lstm_cell", lstm_no_tanh, "values on a hand-sized case", "no_tanh_c"),
    ("causal_attention", att_scale_d, "values on a hand-sized case", "scale_1_over_d"),
    ("causal_attention", att_sees_next, "values on a hand-sized case", "mask_shifted_future"),
    ("multi_head_attention", mha_view, "values on a hand-sized case", "split_without_transpose"),
    ("multi_head_attention", mha_scale_E, "values on a hand-sized case", "scale_by_embed_dim"),
    ("kv_cache_step", kv_attend_first, "values on a hand-sized case", "without_current"),
    ("kv_cache_step", kv_prepend, "values on a hand-sized case", "prepend"),
    ("rope", rope_rotate_half, "values on a hand-sized case", "half_split"),
    ("rope", rope_from_1, "values on a hand-sized case", "positions_from_1"),
    ("beam_search", beam_per_beam, "values on a hand-sized case", "per_beam_top1"),
    ("beam_search", beam_dup, "values on a hand-sized case", "duplicate_start"),
    (
        "beam_search",
        beam_drops_finished,
        "end of sequence: finished beams stay in the beam",
        "drops_finished",
    ),
    (
        "discounted_returns",
        ret_no_dones,
        "values on a hand-sized case",
        "ignores_episode_boundaries",
    ),
    ("discounted_returns", ret_from_start, "values on a hand-sized case", "discount_from_start"),
    (
        "reinforce_loss",
        rf_not_detached,
        "gradient of the loss vs the reference (logp and baseline)",
        "baseline_not_detached",
    ),
    ("reinforce_loss", rf_sign, "values on a hand-sized case", "sign"),
    ("chinchilla_optimal", chin_20, "values on a hand-sized case", "tokens_20_per_param"),
    ("chinchilla_optimal", chin_no_6, "values on a hand-sized case", "no_factor_6"),
    *WRONG_CONV,  # tests/test_practice_conv.py
]
WRONG += WRONG_NORMALIZATION
WRONG += WRONG_PRECISION

# the tokenization exercises' wrong implementations live with their tests
from test_practice_tokenization import WRONG_TOKENIZATION  # noqa: E402

WRONG += WRONG_TOKENIZATION


def test_two_wrong_implementations_per_exercise():
    counts = {n: sum(w[0] == n for w in WRONG) for n in NAMES}
    assert min(counts.values()) >= 2, counts


@pytest.mark.parametrize(
    "name, fn, failed_check, diagnosis", WRONG, ids=[f"{w[0]}-{w[1].__name__}" for w in WRONG]
)
def test_wrong_implementation_is_caught_and_diagnosed(name, fn, failed_check, diagnosis):
    report = check(fn, name)
    assert not report.passed
    assert report.failed_check == failed_check, str(report)
    assert report.diagnosis == diagnosis, str(report)
    text = str(report)
    link = next(m.link for m in get(name).mistakes if m.name == diagnosis)
    assert f"diagnosis ({diagnosis})" in text and f"  see {docs_url(link)}" in text


def test_in_place_update_of_the_inputs_is_reported():
    report = check(adam_in_place_correct, "adam_step")  # right values, but m and v overwritten
    assert not report.passed and report.failed_check == "shape on a tiny case"
    assert "adam_in_place_correct changed its input m in place" in str(report)
    assert "do not modify the inputs" in str(report)


def test_a_diverging_intermediate_is_named():
    report = check(adamw_l2, "adamw_step")  # the decay enters the gradient: m is the first
    assert report.failure.output == "m"
    assert "m (the first of m, v, m_hat, v_hat, param to diverge): values differ" in str(report)


def test_report_shows_input_expected_got_and_errors():
    text = str(check(sm_naive, "softmax"))
    assert "FAILED check 'edge: logits of ±1e4 and a length-1 row' (4 of 9 passed)" in text
    assert "x = [[1e+04, 0, -1e+04], [-1e+04, -1e+04, -1e+04]]  (shape (2, 3), float64)" in text
    assert "expected [[1, 0, 0], [0.3333, 0.3333, 0.3333]]" in text
    assert "got      [[nan, 0, 0], [nan, nan, nan]]" in text
    assert "nan at 4 position(s) where the expected value is not nan" in text
    assert f"see {docs_url('topics/cross-entropy.html#the-log-sum-exp-trick')}" in text
    text = str(check(sm_dim0, "softmax"))
    assert "the largest error is at index (0, 0): expected 0.09003, got 0.7311" in text
    assert "largest absolute error 0.641,\n  largest relative error 7.12" in text
    assert repr(check(lambda x, dim=-1: torch.softmax(x, dim), "softmax")).startswith(
        "softmax: all 9 checks passed"
    )


def test_wrong_shape_and_wrong_return_type_are_reported():
    r = check(lambda x, dim=-1: torch.softmax(x, dim).sum(dim), "softmax")
    assert r.failed_check == "shape on a tiny case"
    assert "has shape (2,), expected (2, 3)" in str(r)
    r = check(lambda **kw: (1, 2), "adam_step")
    assert "returned 2 values; expected 5: m, v, m_hat, v_hat, param" in str(r)


def test_detached_output_is_reported_in_the_gradient_check():
    r = check(lambda x, dim=-1: torch.softmax(x.detach(), dim), "softmax")
    assert r.failed_check == "gradient vs the reference"
    assert "no gradient flows" in str(r)


def test_a_changed_signature_is_explained():
    r = check(lambda inp: torch.softmax(inp, -1), "softmax")
    assert "keep the stub's signature: the checks pass the arguments by name (x)" in str(r)


def test_bad_input_that_returns_a_value_fails():
    def returns(rewards, dones, gamma):  # correct, but accepts gamma = 1.5
        return prl._returns(rewards, dones, 0.5 if gamma > 1 else gamma)

    r = check(returns, "discounted_returns")
    assert r.failed_check == "bad input: gamma = 1.5"
    assert "returned a value for bad input (gamma must be in [0, 1])" in str(r)


def test_exception_is_reported_with_its_line():
    def softmax(x, dim=-1):
        return x / 0 if x.numel() > 100 else 1 / 0

    r = check(softmax, "softmax")
    assert r.failed_check == "shape on a tiny case"
    assert "raised ZeroDivisionError: division by zero (line" in str(r)


def test_call_that_does_not_return_is_reported_not_hung():
    def softmax(x, dim=-1):
        time.sleep(1.0)  # (an endless loop would keep spinning in its thread after the test)

    r = check(softmax, "softmax", timeout=0.3)
    assert "did not return within 0.3 s" in str(r)


# ----------------------------------------------------------------- files and command line


@pytest.mark.parametrize("name", NAMES)
def test_stub_is_not_implemented_yet(name, tmp_path):
    path = start(name, str(tmp_path))
    (report,) = check_file(path)
    assert report.exercise == name and not report.passed
    assert f"not implemented yet: {name} raises NotImplementedError" in str(report)


def test_start_never_overwrites(tmp_path, capsys):
    assert main(["start", "softmax", str(tmp_path)]) == 0
    (tmp_path / "softmax.py").write_text("# my work\n")
    assert main(["start", "softmax", str(tmp_path)]) == 1
    assert (tmp_path / "softmax.py").read_text() == "# my work\n"
    assert "exists; not overwriting it" in capsys.readouterr().err
    assert main(["start", "no_such_exercise", str(tmp_path)]) == 2


def test_check_file_exit_codes(tmp_path, capsys):
    good = tmp_path / "good.py"
    good.write_text("import torch\n\ndef softmax(x, dim=-1):\n    return torch.softmax(x, dim)\n")
    assert main(["check", str(good)]) == 0
    assert "softmax: all 9 checks passed" in capsys.readouterr().out
    bad = tmp_path / "bad.py"
    bad.write_text("import torch\n\ndef softmax(x, dim=-1):\n    return torch.softmax(x, 0)\n")
    assert main(["check", str(bad)]) == 1
    assert "diagnosis (wrong_dim)" in capsys.readouterr().out


@pytest.mark.parametrize(
    "body, why",
    [
        ("import os\nos._exit(3)\n", "exited with code 3"),
        ("import ctypes\nctypes.string_at(0)\n", "was killed by signal 11"),
    ],
    ids=["os._exit", "segfault"],
)
def test_a_crash_of_the_learners_code_is_reported(tmp_path, capfd, body, why):
    f = tmp_path / "softmax.py"
    f.write_text(
        "import torch\n\ndef softmax(x, dim=-1):\n    return torch.softmax(x, dim)\n" + body
    )
    assert main(["check", str(f)]) == 1
    assert f"the Python process running your code {why}" in capfd.readouterr().out


def test_syntax_error_gives_its_line(tmp_path, capsys):
    f = tmp_path / "softmax.py"
    f.write_text("import torch\n\ndef softmax(x, dim=-1):\n    return torch.softmax(x, dim\n")
    assert main(["check", str(f)]) == 1
    out = capsys.readouterr().out
    assert "SyntaxError at line 4" in out and "return torch.softmax(x, dim" in out


def test_module_level_error_and_no_exercise(tmp_path):
    f = tmp_path / "a.py"
    f.write_text("x = 1\ny = undefined_name\n")
    (r,) = check_file(str(f))
    assert "raised NameError: name 'undefined_name' is not defined at line 2" in str(r)
    f.write_text("def my_softmax(x):\n    return x\n")
    (r,) = check_file(str(f))
    assert "defines no function named after an exercise" in str(r)
    (r,) = check_file(str(tmp_path / "missing.py"))
    assert "cannot read" in str(r)


def test_list_and_the_real_command_line(tmp_path, capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert all(n in out for n in NAMES)
    assert [e[0] for e in exercises()] == NAMES
    path = start("rope", str(tmp_path))
    run = subprocess.run(
        [sys.executable, "-m", "dlref.practice", "check", path], capture_output=True, text=True
    )
    assert run.returncode == 1
    assert "not implemented yet: rope raises NotImplementedError" in run.stdout


# ------------------------------------------------------- references against independent ones


def test_lstm_reference_matches_nn_lstmcell():
    torch.manual_seed(0)
    cell = torch.nn.LSTMCell(3, 4, dtype=DT)
    x, h, c = torch.randn(2, 3, dtype=DT), torch.randn(2, 4, dtype=DT), torch.randn(2, 4, dtype=DT)
    out = prnn.lstm_cell_reference(
        x, h, c, cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh
    )
    h_t, c_t = cell(x, (h, c))
    torch.testing.assert_close(out["h"], h_t)
    torch.testing.assert_close(out["c"], c_t)


def test_causal_attention_reference_matches_sdpa():
    q, k, v = (torch.randn(2, 3, 5, 4, dtype=DT, requires_grad=True) for _ in range(3))
    ours = pa.causal_attention_reference(q, k, v)
    ref = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    torch.testing.assert_close(ours["output"], ref)
    g = torch.randn_like(ref)
    torch.testing.assert_close(
        torch.autograd.grad(ours["output"], (q, k, v), g), torch.autograd.grad(ref, (q, k, v), g)
    )
    t, s = 3, 2  # weights by hand for one entry: exp(score) over the allowed keys
    sc = (q[0, 0] @ k[0, 0].T / 2.0)[t, : t + 1]
    torch.testing.assert_close(ours["weights"][0, 0, t, s], sc.exp()[s] / sc.exp().sum())


def test_mha_reference_matches_nn_multiheadattention():
    torch.manual_seed(1)
    mha = torch.nn.MultiheadAttention(6, 3, batch_first=True, dtype=DT)
    torch.nn.init.normal_(mha.in_proj_bias)
    x = torch.randn(2, 5, 6, dtype=DT)
    out, w = mha(x, x, x, need_weights=True, average_attn_weights=False)
    ours = pa.multi_head_attention_reference(
        x, mha.in_proj_weight, mha.in_proj_bias, mha.out_proj.weight, mha.out_proj.bias, 3
    )
    torch.testing.assert_close(ours["output"], out)
    torch.testing.assert_close(ours["weights"], w)


def test_kv_cache_step_reference_matches_full_causal_attention():
    torch.manual_seed(2)
    B, T, D, d = 2, 6, 5, 4
    X = torch.randn(B, T + 1, D, dtype=DT)
    Wq, Wk, Wv = (torch.randn(d, D, dtype=DT) for _ in range(3))
    full = F.scaled_dot_product_attention(X @ Wq.T, X @ Wk.T, X @ Wv.T, is_causal=True)
    out = pa.kv_cache_step_reference(X[:, T], Wq, Wk, Wv, (X[:, :T] @ Wk.T), (X[:, :T] @ Wv.T))
    torch.testing.assert_close(out["output"], full[:, T])
    torch.testing.assert_close(out["k_cache"], X @ Wk.T)


def test_rope_reference_matches_complex_rotation_and_is_relative():
    x = torch.randn(2, 7, 8, dtype=DT)
    T, d = 7, 8
    z = torch.view_as_complex(x.reshape(2, T, d // 2, 2))
    rot = torch.polar(torch.ones(T, d // 2, dtype=DT), _rope_angles(T, d, 10000.0))
    torch.testing.assert_close(pa.rope_reference(x), torch.view_as_real(z * rot).flatten(-2))
    # <rope(q)_m, rope(k)_n> depends on m - n only
    q, k = torch.randn(d, dtype=DT), torch.randn(d, dtype=DT)
    Q, K = (pa.rope_reference(t.expand(T, d)) for t in (q, k))
    torch.testing.assert_close(Q[5] @ K[3], Q[3] @ K[1])


def test_beam_references_agree_with_plain_python_and_dlref():
    ex = get("beam_search")
    for c in ex.checks[:5]:
        for kw in c.cases():
            seq, lp = ex.reference(**kw)
            seq2, lp2 = pd._beam(**kw)
            assert torch.equal(seq, seq2)
            torch.testing.assert_close(lp, lp2, check_dtype=False)
            if kw.get("eos_id") is None and kw["beam_width"] <= kw["step_fn"].P.shape[0]:
                seq3, lp3 = py_beam(**kw)
                assert torch.equal(seq, seq3)
                torch.testing.assert_close(lp, lp3, check_dtype=False)


def test_returns_reference_matches_a_plain_loop():
    rewards = torch.randn(3, 9, dtype=DT)
    dones = torch.rand(3, 9) < 0.3
    G = prl.discounted_returns_reference(rewards, dones, 0.9)
    for b in range(3):
        for t in range(9):
            total, k, disc = 0.0, t, 1.0
            while k < 9:
                total += disc * rewards[b, k].item()
                if dones[b, k]:
                    break
                disc *= 0.9
                k += 1
            assert G[b, t].item() == pytest.approx(total, rel=1e-12, abs=1e-12)


def test_reinforce_reference_gradient_is_the_policy_gradient():
    logp = torch.randn(4, 5, dtype=DT, requires_grad=True)
    G, b = torch.randn(4, 5, dtype=DT), torch.randn(4, 5, dtype=DT, requires_grad=True)
    out = prl.reinforce_loss_reference(logp, G, b)
    g_logp, g_b = torch.autograd.grad(out["loss"], (logp, b), allow_unused=True)
    torch.testing.assert_close(g_logp, -(G - b.detach()) / 20)
    assert g_b is None or torch.all(g_b == 0)


def test_chinchilla_reference_minimises_the_loss_on_the_budget():
    def loss(N, C):
        D = C / (6 * N)
        return ps.E + ps.A / N**ps.ALPHA + ps.B / D**ps.BETA

    for C in (1e19, 5.76e23):
        lo, hi = math.log(1e3), math.log(1e15)  # golden-section search on log N
        r = (math.sqrt(5) - 1) / 2
        for _ in range(200):
            a, b = hi - r * (hi - lo), lo + r * (hi - lo)
            if loss(math.exp(a), C) < loss(math.exp(b), C):
                hi = b
            else:
                lo = a
        out = ps.chinchilla_optimal_reference(torch.tensor(C, dtype=DT))
        assert out["N"].item() == pytest.approx(math.exp(lo), rel=1e-6)
        assert (6 * out["N"] * out["D"]).item() == pytest.approx(C, rel=1e-12)


def test_adam_reference_intermediates_give_torchs_parameter():
    kw = get("adam_step").checks[2].cases()[1]
    out = get("adam_step").reference(**kw)
    torch.testing.assert_close(
        out["param"], kw["param"] - kw["lr"] * out["m_hat"] / (out["v_hat"].sqrt() + 1e-8)
    )


def test_adamw_reference_intermediates_give_torchs_parameter():
    kw = get("adamw_step").checks[1].cases()[1]  # lr 0.1, weight decay 0.1, t = 3
    out = get("adamw_step").reference(**kw)
    decayed = kw["param"] * (1 - kw["lr"] * kw["weight_decay"])
    torch.testing.assert_close(
        out["param"], decayed - kw["lr"] * out["m_hat"] / (out["v_hat"].sqrt() + 1e-8)
    )
    torch.testing.assert_close(out["m"], 0.9 * kw["m"] + 0.1 * kw["grad"])


FUTURE_PAGES = {"optimizers", "rnn", "attention", "transformer", "policy-gradient", "scaling-laws"}


def _slug(heading: str) -> str:  # MyST's heading anchors: lower case, no punctuation, "-"
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


@pytest.mark.parametrize("name", NAMES)
def test_links_point_at_a_page_and_a_heading(name, request):
    root = pathlib.Path(request.config.rootpath)
    ex = get(name)
    for link in [ex.page] + [m.link for m in ex.mistakes]:
        page, _, anchor = link.partition("#")
        stem = page.removeprefix("topics/").removesuffix(".html")
        md = root / "docs" / "topics" / f"{stem}.md"
        if not md.exists():
            assert stem in FUTURE_PAGES, link
            continue
        headings = [_slug(h) for h in re.findall(r"^#+ (.*)$", md.read_text(), re.M)]
        assert not anchor or anchor in headings, link


def test_every_mistake_links_to_a_section():
    unanchored = [(n, m.name) for n in NAMES for m in get(n).mistakes if "#" not in m.link]
    assert not unanchored


def test_report_links_start_with_dlref_docs_url(monkeypatch):
    link = "topics/cross-entropy.html#the-log-sum-exp-trick"  # no_max_shift's
    monkeypatch.setenv("DLREF_DOCS_URL", "https://docs.example/dlref/")
    assert str(check(sm_naive, "softmax")).endswith(f"\n  see https://docs.example/dlref/{link}")
    assert docs_url(link) == f"https://docs.example/dlref/{link}"
    # the argument wins over the variable; a missing or doubled "/" is made one
    text = str(check(sm_naive, "softmax", docs_url="http://localhost:8000"))
    assert text.endswith(f"\n  see http://localhost:8000/{link}")
    assert docs_url(link, base="http://localhost:8000//") == f"http://localhost:8000/{link}"


def test_links_default_to_the_local_build_of_a_checkout(monkeypatch, request, tmp_path):
    from dlref.practice import _links

    link = "topics/optimizers.html#why-bias-correction-matters-at-step-1"
    site = pathlib.Path(request.config.rootpath) / "docs" / "_build" / "html"
    for unset in (None, ""):  # unset, or set to nothing
        if unset is None:
            monkeypatch.delenv("DLREF_DOCS_URL", raising=False)
        else:
            monkeypatch.setenv("DLREF_DOCS_URL", unset)
        assert docs_url(link) == f"{site.as_uri()}/{link}"
        assert docs_url(link).startswith("file:///")
    # installed outside a checkout (no docs/conf.py above the package): relative to the site
    monkeypatch.setattr(_links, "__file__", str(tmp_path / "lib" / "dlref" / "practice" / "x.py"))
    assert docs_url(link) == link
    text = str(check(adam_no_correction, "adam_step"))
    assert text.endswith(f"\n  see {link}")


def test_start_header_and_command_line_report_use_the_docs_url(monkeypatch, tmp_path):
    monkeypatch.setenv("DLREF_DOCS_URL", "https://docs.example/dlref")
    path = start("softmax", str(tmp_path))
    first = pathlib.Path(path).read_text().splitlines()[0]
    assert first.endswith(
        "Explained at https://docs.example/dlref/topics/cross-entropy.html#key-equations"
    )
    pathlib.Path(path).write_text(
        "def softmax(x, dim=-1):\n    e = x.exp()\n    return e / e.sum(dim, keepdim=True)\n"
    )
    ((text, passed),) = check_file_isolated(path)  # the child process reads the same variable
    assert not passed
    assert "see https://docs.example/dlref/topics/cross-entropy.html#the-log-sum-exp-trick" in text
    ((text, _),) = check_file_isolated(path, docs_url="")  # "": relative to the site's root
    assert text.endswith("\n  see topics/cross-entropy.html#the-log-sum-exp-trick")
    (report,) = check_file(path, docs_url="http://localhost:8000")
    assert str(report).endswith(
        "see http://localhost:8000/topics/cross-entropy.html#the-log-sum-exp-trick"
    )


def test_a_docs_url_of_the_wrong_type_is_a_type_error():
    with pytest.raises(TypeError, match="base"):
        docs_url("topics/tensors.html", base=3)
    with pytest.raises(TypeError, match="docs_url"):
        check(sm_naive, "softmax", docs_url=pathlib.Path("site"))


def test_outputs_of_another_kind_are_reported_not_crashed():
    r = check(lambda x, dim=-1: torch.softmax(x, dim).to(torch.complex128), "softmax")
    assert "has dtype torch.complex128, expected a real tensor" in str(r)
    r = check(lambda x, dim=-1: torch.softmax(x, dim).tolist(), "softmax")
    assert "output: returned list, expected a tensor" in str(r)
    r = check(lambda x, dim=-1: None, "softmax")
    assert "returned NoneType, expected a tensor" in str(r)


# ------------------------------------------------- the grader never loses or mislabels a report

SOFTMAX = "import torch\n\ndef softmax(x, dim=-1):\n    return torch.softmax(x, dim)\n"
LOG_SOFTMAX = "import torch\n\ndef log_softmax(x, dim=-1):\n    return torch.log_softmax(x, dim)\n"
# holds the GIL (PyDLL does not release it) for 10 minutes: no thread-level time limit can stop it
HOLDS_THE_GIL = "import ctypes\n\ndef broadcast_shape(a, b):\n    ctypes.PyDLL(None).sleep(600)\n"


def test_finished_reports_are_kept_when_a_later_exercise_overruns(tmp_path, monkeypatch, capsys):
    from dlref.practice import _files

    monkeypatch.setattr(_files, "SLACK_SECONDS", 2.0)  # the bound past the per-call limits
    f = tmp_path / "many.py"
    f.write_text(SOFTMAX + LOG_SOFTMAX + HOLDS_THE_GIL)
    t0 = time.monotonic()
    assert main(["check", str(f), "--timeout", "0.2"]) == 1
    assert time.monotonic() - t0 < 60
    out = capsys.readouterr().out
    assert "softmax: all 9 checks passed" in out and "log_softmax: all" in out
    assert "broadcast_shape: FAILED" in out
    assert "did not finish within" in out and "was stopped" in out
    assert "signal" not in out and "a crash" not in out


def test_each_exercise_has_its_own_limit(tmp_path, monkeypatch):
    from dlref.practice import _files

    monkeypatch.setattr(_files, "SLACK_SECONDS", 2.0)
    # four solutions each taking ~2 s in all: together far more than one exercise's bound
    slow = "import time\n\n_sleep = time.sleep\n"
    body = "".join(
        s.replace("    return", "    _sleep(0.05)\n    return") for s in (SOFTMAX, LOG_SOFTMAX)
    )
    f = tmp_path / "slow.py"
    f.write_text(slow + body)
    reports = check_file_isolated(str(f), timeout=1.0)
    assert [passed for _, passed in reports] == [True, True], reports


@pytest.mark.parametrize(
    "body, says",
    [
        ("import sys\nsys.exit(0)\n", "called sys.exit(0)"),
        ("import sys\nsys.exit()\n", "called sys.exit(None)"),
        ("import os\nos._exit(0)\n", "ended (exit code 0) without a report"),
    ],
    ids=["sys.exit(0)", "sys.exit()", "os._exit(0)"],
)
def test_an_exit_of_the_learners_code_is_named(tmp_path, capfd, body, says):
    f = tmp_path / "softmax.py"
    f.write_text(SOFTMAX + body)
    t0 = time.monotonic()
    assert main(["check", str(f)]) == 1
    out = capfd.readouterr().out
    assert says in out and "did not finish" not in out, out
    assert time.monotonic() - t0 < 30


def test_sys_exit_inside_a_solution_is_a_failed_check():
    def softmax(x, dim=-1):
        raise SystemExit(3)

    report = check(softmax, "softmax")
    assert not report.passed and "called sys.exit(3)" in str(report)


def test_pep_263_coding_line_is_honoured(tmp_path):
    f = tmp_path / "softmax.py"
    f.write_bytes(b"# -*- coding: latin-1 -*-\n# caf\xe9\n" + SOFTMAX.encode())
    (report,) = check_file(str(f))
    assert report.passed, str(report)
    assert [p for _, p in check_file_isolated(str(f))] == [True]


def test_a_null_byte_is_named_not_line_none(tmp_path):
    f = tmp_path / "softmax.py"
    f.write_bytes(SOFTMAX.encode() + b"\x00\n")
    (report,) = check_file(str(f))
    assert "null byte" in str(report) and "line None" not in str(report), str(report)


def test_a_helper_module_next_to_the_file_is_importable(tmp_path, monkeypatch):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "helper_for_dlref_test.py").write_text(
        "import torch\n\ndef sm(x, dim):\n    return torch.softmax(x, dim)\n"
    )
    f = tmp_path / "mine" / "softmax.py"
    f.write_text(
        "from helper_for_dlref_test import sm\n\ndef softmax(x, dim=-1):\n    return sm(x, dim)\n"
    )
    monkeypatch.chdir(tmp_path)
    (report,) = check_file(str(f))
    assert report.passed, str(report)
    assert [p for _, p in check_file_isolated(str(f))] == [True]


def test_start_into_a_directory_that_cannot_be_written(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    assert main(["start", "softmax", str(blocker / "sub")]) == 1
    err = capsys.readouterr().err
    assert "cannot write" in err and "Traceback" not in err


@pytest.mark.parametrize("value", ["nan", "inf", "0", "-1", "ten"])
def test_bad_timeout_is_refused_with_a_clear_message(value, tmp_path, capsys):
    f = tmp_path / "softmax.py"
    f.write_text(SOFTMAX)
    with pytest.raises(SystemExit) as info:
        main(["check", str(f), "--timeout", value])
    assert info.value.code == 2
    assert "--timeout must be a finite number of seconds > 0" in capsys.readouterr().err


@pytest.mark.parametrize("timeout", [math.nan, math.inf, 0.0, -1.0, "10"])
def test_bad_timeout_of_the_functions_names_timeout(timeout, tmp_path):
    f = tmp_path / "softmax.py"
    f.write_text(SOFTMAX)
    for fn in (check_file, check_file_isolated):
        with pytest.raises((TypeError, ValueError), match="timeout"):
            fn(str(f), timeout=timeout)
    with pytest.raises((TypeError, ValueError), match="timeout"):
        check(lambda x, dim=-1: x, "softmax", timeout=timeout)


def test_check_of_an_exercise_name_gives_a_hint(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["check", "softmax"]) == 1
    out = capsys.readouterr().out
    assert "cannot read softmax" in out and "softmax.py" in out and "start softmax" in out
    (tmp_path / "softmax.py").write_text(SOFTMAX)
    assert main(["check", "softmax"]) == 1
    assert "did you mean softmax.py?" in capsys.readouterr().out
