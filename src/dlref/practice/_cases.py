"""Building blocks of the checks: seeded float64 inputs, and cases built from specs."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from dlref.practice._compare import DT
from dlref.practice._grader import Check


def randn(*shape: int, seed: int, scale: float = 1.0) -> Tensor:
    """Seeded standard-normal float64 tensor."""
    g = torch.Generator().manual_seed(seed)
    return scale * torch.randn(shape, generator=g, dtype=DT)


def rand(*shape: int, seed: int) -> Tensor:
    """Seeded uniform [0, 1) float64 tensor."""
    g = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=g, dtype=DT)


def tensor(data) -> Tensor:
    """A float64 tensor."""
    return torch.tensor(data, dtype=DT)


def cases(make: Callable[..., dict], *specs: tuple) -> Callable[[], list[dict]]:
    """The cases of a check, ``make(*spec)`` for each spec, built afresh on each call."""
    return lambda: [make(*spec) for spec in specs]


def variant(fn: Callable, how: str) -> Callable:
    """``fn`` called with ``how=how``: a wrong variant of a reference that has such a switch."""

    def wrong(*args, **kwargs):
        return fn(*args, **kwargs, how=how)

    return wrong


# the standard first, second and last checks of a battery (docs/practice.md lists the order)


def shape_check(cases: Callable[[], list[dict]]) -> Check:
    """The first check: the shape of every output on one tiny case."""
    return Check("shape on a tiny case", cases, kind="shape")


def values_check(cases: Callable[[], list[dict]], **tolerances: float) -> Check:
    """The second check: values on a hand-sized case, small enough to redo on paper."""
    return Check("values on a hand-sized case", cases, **tolerances)


def bad_input(what: str, bad: str, cases: Callable[[], list[dict]]) -> Check:
    """The last check, named ``"bad input: " + what``: the call must raise (``bad``: why)."""
    return Check(f"bad input: {what}", cases, kind="raises", bad=bad)
