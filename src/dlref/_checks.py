"""Argument checks shared by the topic modules: each error names the argument."""

from __future__ import annotations

import numbers

from torch import Tensor


def is_real_number(x: object) -> bool:
    """A Python (or NumPy) real number; ``bool`` is not one."""
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


def check_float(name: str, x: object) -> None:
    """Raise ``TypeError`` naming ``name`` unless ``x`` is a floating-point tensor."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
