"""The precision exercises: references against torch, and wrong implementations written here.

- ``round_to_bfloat16``'s reference equals ``x.to(torch.bfloat16)`` (bits; nan as nan);
- ``loss_scaler_update``'s reference equals ``torch._amp_update_scale_``, the kernel behind
  ``GradScaler.update``, on every branch;
- wrong implementations written here (not the grader's own variants) fail the expected check with
  the expected diagnosis, and a right one written from the stub's formula passes.
"""

import math

import pytest
import torch

from dlref.practice import check, get
from dlref.practice.precision import loss_scaler_update_reference, round_to_bfloat16_reference


def test_round_reference_equals_torch():
    g = torch.Generator().manual_seed(0)
    bits = torch.randint(-(2**31), 2**31, (200_000,), generator=g, dtype=torch.int64)
    x = bits.to(torch.int32).view(torch.float32)
    ours, ref = round_to_bfloat16_reference(x), x.to(torch.bfloat16)
    nan = torch.isnan(ref)
    assert torch.equal(torch.isnan(ours), nan)
    assert torch.equal(ours.view(torch.int16)[~nan], ref.view(torch.int16)[~nan])


@pytest.mark.parametrize(
    "scale, tracker, found_inf, growth, backoff, interval",
    [
        (65536.0, 0, False, 2.0, 0.5, 2000),
        (65536.0, 17, True, 2.0, 0.5, 2000),
        (65536.0, 1999, False, 2.0, 0.5, 2000),
        (3.0, 4, False, 3.0, 0.25, 5),
        (2.0**127, 9, False, 2.0, 0.5, 10),
        (1e-30, 0, True, 1.7, 0.3, 1),
        (1e-30, 0, False, 1.7, 0.3, 1),
    ],
)
def test_update_reference_equals_torch_kernel(scale, tracker, found_inf, growth, backoff, interval):
    s = torch.tensor([scale], dtype=torch.float32)
    t = torch.tensor([tracker], dtype=torch.int32)
    inf = torch.tensor([float(found_inf)])
    torch._amp_update_scale_(s, t, inf, growth, backoff, interval)
    assert loss_scaler_update_reference(
        s.new_tensor([scale]).item(), tracker, found_inf, growth, backoff, interval
    ) == (s.item(), t.item())


# ------------------------------------------------------------ wrong implementations, ours


def round_truncating(x):
    if x.dtype != torch.float32:
        raise TypeError("x must be float32")
    b = x.view(torch.int32).long() & 0xFFFFFFFF
    out = b >> 16
    return torch.where(out >= 2**15, out - 2**16, out).to(torch.int16).view(torch.bfloat16)


def round_half_up(x):
    if x.dtype != torch.float32:
        raise TypeError("x must be float32")
    b = x.view(torch.int32).long() & 0xFFFFFFFF
    out = (b + 2**15) >> 16
    out = torch.where(torch.isnan(x), torch.full_like(out, 0x7FC0), out)
    return torch.where(out >= 2**15, out - 2**16, out).to(torch.int16).view(torch.bfloat16)


def round_right(x):
    if x.dtype != torch.float32:
        raise TypeError(f"x must be float32, got {x.dtype}")
    b = x.view(torch.int32).long() & 0xFFFFFFFF
    out = (b + 0x7FFF + ((b >> 16) & 1)) >> 16
    out = torch.where(torch.isnan(x), torch.full_like(out, 0x7FC0), out)
    return torch.where(out >= 2**15, out - 2**16, out).to(torch.int16).view(torch.bfloat16)


def update_grows_on_inf(scale, growth_tracker, found_inf, growth_factor=2.0,
                        backoff_factor=0.5, growth_interval=2000):  # fmt: skip
    new = scale * (growth_factor if found_inf else 1.0)
    return new, 0 if found_inf else growth_tracker + 1


def update_keeps_count(scale, growth_tracker, found_inf, growth_factor=2.0,
                       backoff_factor=0.5, growth_interval=2000):  # fmt: skip
    if growth_interval < 1:
        raise ValueError("growth_interval")
    if found_inf:
        return scale * backoff_factor, growth_tracker
    if growth_tracker + 1 >= growth_interval:
        return scale * growth_factor, 0
    return scale, growth_tracker + 1


def update_right(scale, growth_tracker, found_inf, growth_factor=2.0,
                 backoff_factor=0.5, growth_interval=2000):  # fmt: skip
    if growth_interval < 1:
        raise ValueError(f"growth_interval must be >= 1, got {growth_interval}")
    if found_inf:
        return scale * backoff_factor, 0
    if growth_tracker + 1 == growth_interval:
        grown = scale * growth_factor
        return (grown if grown <= 3.4028234663852886e38 else scale), 0
    return scale, growth_tracker + 1


# (exercise, wrong implementation, the check it fails, the diagnosis); tests/test_practice.py
# counts these with its own list: at least two per exercise.
WRONG = [
    ("round_to_bfloat16", round_truncating, "values on a hand-sized case (no ties)",
     "truncation"),
    ("round_to_bfloat16", round_half_up, "ties go to the even neighbour",
     "ties_away_from_zero"),
    ("loss_scaler_update", update_grows_on_inf, "values on a hand-sized case",
     "grow_after_overflow"),
    ("loss_scaler_update", update_keeps_count, "an overflow after some clean steps",
     "tracker_not_reset"),
]  # fmt: skip


@pytest.mark.parametrize(
    "name, fn, failed_check, diagnosis", WRONG, ids=[f"{w[0]}-{w[1].__name__}" for w in WRONG]
)
def test_wrong_implementation_is_caught_and_diagnosed(name, fn, failed_check, diagnosis):
    report = check(fn, name)
    assert not report.passed
    assert report.failed_check == failed_check, str(report)
    assert report.diagnosis == diagnosis, str(report)


@pytest.mark.parametrize(
    "name, fn", [("round_to_bfloat16", round_right), ("loss_scaler_update", update_right)]
)
def test_a_right_implementation_passes(name, fn):
    report = check(fn, name)
    assert report.passed, str(report)
    assert len(report.passed_checks) == len(get(name).checks)


def test_the_known_mistakes_are_named_as_the_issue_asks():
    names = {m.name for n in ("round_to_bfloat16", "loss_scaler_update") for m in get(n).mistakes}
    assert {"truncation", "ties_away_from_zero", "grow_after_overflow"} <= names
    assert get("round_to_bfloat16").topic == get("loss_scaler_update").topic == "precision"
    assert math.isinf(round_to_bfloat16_reference(torch.tensor([3.4e38])).item())
