"""Argument checks shared by the topic modules: each error names the argument."""

from __future__ import annotations

import numbers

import torch
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


def is_int(x: object) -> bool:
    """A Python (or NumPy) integer; ``bool`` is not one."""
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


def check_int(name: str, x: object, minimum: int = 1) -> None:
    """Raise naming ``name`` unless ``x`` is an int (Python or NumPy, not bool) >= ``minimum``."""
    if not is_int(x):
        raise TypeError(f"{name} must be an int, got {type(x).__name__} {x!r}")
    if x < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {x}")


def check_real(name: str, x: object) -> None:
    """Raise ``TypeError`` naming ``name`` unless ``x`` is a real number (not a bool)."""
    if not is_real_number(x):
        raise TypeError(f"{name} must be a real number, got {type(x).__name__} {x!r}")


def check_tensor(name: str, x: object) -> None:
    """Raise ``TypeError`` naming ``name`` unless ``x`` is a tensor."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")


def check_callable(name: str, f: object) -> None:
    """Raise ``TypeError`` naming ``name`` unless ``f`` can be called."""
    if not callable(f):
        raise TypeError(f"{name} must be callable, got {type(f).__name__} {f!r}")


def check_dim(name: str, dim: object, shape: tuple[int, ...], of: str = "input") -> None:
    """Raise naming ``name`` unless ``dim`` is an int that indexes a dimension of ``shape``.

    As in torch, negative ``dim`` counts from the end, and a 0-d tensor accepts 0 and -1.
    """
    if not is_int(dim):
        raise TypeError(f"{name} must be an int, got {type(dim).__name__} {dim!r}")
    n = max(len(shape), 1)
    if not -n <= dim < n:
        raise ValueError(
            f"{name}={dim} is out of range for {of} of shape {tuple(shape)}: "
            f"it must lie in [{-n}, {n})"
        )


def check_same_dtype(**tensors: Tensor) -> None:
    """Raise ``TypeError`` naming the keyword tensors unless they share one dtype."""
    dtypes = [t.dtype for t in tensors.values()]
    if len(set(dtypes)) > 1:
        *first, last = tensors
        raise TypeError(
            f"{', '.join(first)} and {last} must have the same dtype, got "
            f"{', '.join(map(str, dtypes[:-1]))} and {dtypes[-1]}"
        )


def check_factory(device: object, dtype: object) -> None:
    """Raise naming ``device`` or ``dtype`` unless ``torch.empty`` takes them (None passes)."""
    if device is not None:
        try:
            torch.device(device)
        except (RuntimeError, TypeError) as e:
            msg = f"device must be None, a torch.device, a string or an index, got {device!r}"
            raise ValueError(f"{msg}: {e}") from None
    if dtype is not None and not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise TypeError(f"dtype must be None or a floating-point torch.dtype, got {dtype!r}")
