"""Exercises on number formats and loss scaling (references: :mod:`dlref.precision`)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from dlref import precision
from dlref.practice._cases import bad_input, shape_check, values_check
from dlref.practice._grader import Check, Mistake, register

PAGE = "topics/precision.html"
ROUNDING = f"{PAGE}#rounding-by-bits-to-nearest-ties-to-even"
SCALING = f"{PAGE}#gradients-that-underflow-in-float16-and-loss-scaling"
F32_MAX = torch.finfo(torch.float32).max

# ------------------------------------------------------------------------------- references


def round_to_bfloat16_reference(x: Tensor) -> Tensor:
    """The reference: :func:`dlref.precision.round_to` with ``dtype=torch.bfloat16``.

    Parameters
    ----------
    x : Tensor
        float32, any shape.

    Returns
    -------
    Tensor
        bfloat16, shaped like ``x``: the nearest bfloat16, ties to the even one.

    Examples
    --------
    >>> import torch
    >>> from dlref.practice.precision import round_to_bfloat16_reference
    >>> x = torch.tensor([1 + 2**-8, 1 + 3 * 2**-8, 3.4e38])
    >>> round_to_bfloat16_reference(x).double().tolist()
    [1.0, 1.015625, inf]
    """
    return precision.round_to(x, torch.bfloat16)


def loss_scaler_update_reference(
    scale: float,
    growth_tracker: int,
    found_inf: bool,
    growth_factor: float = 2.0,
    backoff_factor: float = 0.5,
    growth_interval: int = 2000,
) -> tuple[float, int]:
    """The reference: one ``update`` of dynamic loss scaling, as ``torch.amp.GradScaler``.

    Parameters
    ----------
    scale : float
        The current scale (a float32 value).
    growth_tracker : int
        Finite steps in a row so far.
    found_inf : bool
        Whether this step's gradients held an inf or a nan.
    growth_factor, backoff_factor : float
    growth_interval : int

    Returns
    -------
    tuple of (float, int)
        The new scale (rounded to float32, never grown to inf) and the new tracker.

    Examples
    --------
    >>> from dlref.practice.precision import loss_scaler_update_reference as update
    >>> for args in [(65536.0, 5, True), (65536.0, 1999, False), (65536.0, 5, False)]:
    ...     scale, tracker = update(*args)
    ...     print(f"{scale:g}", tracker)
    32768 0
    131072 0
    65536 6
    """
    if not (isinstance(growth_interval, int) and growth_interval >= 1):
        raise ValueError(f"growth_interval must be an int >= 1, got {growth_interval!r}")
    f32 = torch.tensor([scale * backoff_factor, scale * growth_factor], dtype=torch.float32)
    if found_inf:
        return f32[0].item(), 0
    if growth_tracker + 1 == growth_interval:
        grown = f32[1].item()
        return (grown if math.isfinite(grown) else scale), 0
    return scale, growth_tracker + 1


# --------------------------------------------------------------------------- known mistakes


def _bf16_truncate(x):
    return (x.view(torch.int32) >> 16).to(torch.int16).view(torch.bfloat16)


def _bf16_ties_away(x):
    bits = x.view(torch.int32).long() & 0xFFFFFFFF
    out = (bits + 0x8000) >> 16  # round half up on the magnitude: ties away from zero
    out = torch.where(torch.isnan(x), torch.full_like(out, 0x7FC0), out)
    out = torch.where(out >= 2**15, out - 2**16, out)
    return out.to(torch.int16).view(torch.bfloat16)


def _bf16_via_float16(x):
    return x.to(torch.float16).to(torch.bfloat16)


def _update_grow_after_overflow(scale, growth_tracker, found_inf, growth_factor=2.0,
                                backoff_factor=0.5, growth_interval=2000):  # fmt: skip
    if found_inf or growth_tracker + 1 == growth_interval:
        return scale * growth_factor, 0
    return scale, growth_tracker + 1


def _update_tracker_not_reset(scale, growth_tracker, found_inf, growth_factor=2.0,
                              backoff_factor=0.5, growth_interval=2000):  # fmt: skip
    if found_inf:
        return scale * backoff_factor, growth_tracker
    if growth_tracker + 1 == growth_interval:
        return scale * growth_factor, 0
    return scale, growth_tracker + 1


def _update_grows_to_inf(scale, growth_tracker, found_inf, growth_factor=2.0,
                         backoff_factor=0.5, growth_interval=2000):  # fmt: skip
    if found_inf:
        return scale * backoff_factor, 0
    if growth_tracker + 1 == growth_interval:
        return scale * growth_factor, 0
    return scale, growth_tracker + 1


# ------------------------------------------------------------------------------------ cases


def _f32(values) -> Tensor:
    return torch.tensor(values, dtype=torch.float32)


def _random_bits(n: int, seed: int) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    k = torch.randint(-120, 120, (n,), generator=g).float()
    return torch.randn(n, generator=g) * torch.exp2(k)


ROUND_STUB = r'''
import torch
from torch import Tensor


def round_to_bfloat16(x: Tensor) -> Tensor:
    r"""Round float32 to bfloat16 with integer operations on the bits (not x.to()).

    bfloat16 is the top 16 bits of a float32 (1 sign, 8 exponent, 7 mantissa bits). Round to
    the nearest, ties to the even neighbour (the one whose last kept bit is 0), on the bits
    b = x.view(torch.int32) (as unsigned: b & 0xFFFFFFFF in int64):

        result = (b + 0x7FFF + ((b >> 16) & 1)) >> 16

    A carry into the exponent is right (it can give inf); a nan must stay a nan.
    x: float32, any shape. Returns bfloat16 of x's shape (via .to(torch.int16).view(...)).
    Raise for an x that is not float32.
    """
    raise NotImplementedError
'''

UPDATE_STUB = r'''
import math


def loss_scaler_update(scale: float, growth_tracker: int, found_inf: bool,
                       growth_factor: float = 2.0, backoff_factor: float = 0.5,
                       growth_interval: int = 2000) -> tuple[float, int]:
    r"""One update of dynamic loss scaling, as torch.amp.GradScaler.update().

        found_inf:                        scale <- scale * backoff_factor, tracker <- 0
        else, tracker + 1 == interval:    scale <- scale * growth_factor,  tracker <- 0
        else:                             tracker <- tracker + 1

    The scale is a float32 value: never grow it past float32's largest finite number
    (3.4028234663852886e38); keep it instead. Returns (new_scale, new_growth_tracker).
    Raise for growth_interval < 1.
    """
    raise NotImplementedError
'''


def _update_cases(*rows):
    names = ("scale", "growth_tracker", "found_inf", "growth_interval")
    return lambda: [dict(zip(names, r, strict=True)) for r in rows]


register(
    reference=round_to_bfloat16_reference,
    stub=ROUND_STUB,
    summary="float32 to bfloat16 by bits: round to nearest, ties to even",
    checks=(
        shape_check(lambda: [{"x": _f32([[1.0, 2.0]])}]),
        Check(
            "values on a hand-sized case (no ties)",
            lambda: [{"x": _f32([1.0, -2.5, 1 + 2**-8 + 2**-20, 3.14159, -1e-3, 1e5])}],
        ),
        Check(
            "ties go to the even neighbour",
            lambda: [{"x": _f32([1 + 2**-8, 1 + 3 * 2**-8, -(1 + 2**-8), 256 + 1])}],
        ),
        Check(
            "random numbers over the whole range",
            lambda: [{"x": _random_bits(1000, seed=0).reshape(10, 100)}],
        ),
        Check(
            "edge: overflow to inf, subnormals, ±0, ±inf, nan",
            lambda: [
                {"x": _f32([F32_MAX, -F32_MAX, 3.3961e38, 1e-40, 1e-45, 0.0, -0.0])},
                {"x": _f32([math.inf, -math.inf, math.nan])},
                {"x": torch.zeros(0, dtype=torch.float32)},
            ],
        ),
        bad_input(
            "a float64 x", "x of dtype float64", lambda: [{"x": torch.ones(2, dtype=torch.float64)}]
        ),
    ),
    difficulty="medium",
    page=ROUNDING,
    mistakes=(
        Mistake(
            "truncation",
            _bf16_truncate,
            "you kept the top 16 bits (truncation): every value moves toward zero, by up "
            "to a whole gap; add 0x7FFF plus the last kept bit before shifting.",
            ROUNDING,
        ),
        Mistake(
            "ties_away_from_zero",
            _bf16_ties_away,
            "you added 0x8000 (round half up): exact ties all go away from zero, a bias; "
            "a tie must go to the neighbour whose last kept bit is 0.",
            ROUNDING,
        ),
        Mistake(
            "via_float16",
            _bf16_via_float16,
            "you went through float16: it has 5 exponent bits, so large and small values "
            "overflow or flush, and rounding twice is not rounding once.",
            f"{PAGE}#the-formats-derived-from-their-bits",
        ),
    ),
)

register(
    reference=loss_scaler_update_reference,
    stub=UPDATE_STUB,
    summary="one update of a dynamic loss scaler (GradScaler.update)",
    checks=(
        values_check(_update_cases((65536.0, 0, False, 2000), (65536.0, 0, True, 2000))),
        Check(
            "an overflow after some clean steps",
            _update_cases((1024.0, 7, True, 2000), (1024.0, 1999, True, 2000)),
        ),
        Check(
            "growth at the interval",
            _update_cases((1024.0, 1999, False, 2000), (8.0, 2, False, 3), (8.0, 0, False, 1)),
        ),
        Check(
            "edge: growth that would overflow float32",
            _update_cases((2.0**127, 9, False, 10), (2.0**120, 9, False, 10)),
        ),
        bad_input("growth_interval = 0", "growth_interval=0", _update_cases((1024.0, 0, False, 0))),
    ),
    difficulty="easy",
    page=SCALING,
    outputs=("scale", "growth_tracker"),
    mistakes=(
        Mistake(
            "grows_to_inf",
            _update_grows_to_inf,
            "the scale is a float32: 2^127 * 2 is inf there; keep the scale when the "
            "grown one is not finite in float32.",
            SCALING,
        ),
        Mistake(
            "grow_after_overflow",
            _update_grow_after_overflow,
            "the scale grew after an overflow: a step with inf or nan gradients must "
            "halve it (backoff_factor), or the next step overflows again.",
            f"{PAGE}#common-mistakes",
        ),
        Mistake(
            "tracker_not_reset",
            _update_tracker_not_reset,
            "after an overflow the count of clean steps must restart at 0; yours kept "
            "counting, so the scale grows back too soon.",
            SCALING,
        ),
    ),
)
