"""Argument checks shared by the topic modules: each error names the argument."""

from __future__ import annotations

import math
import numbers
import operator
from collections.abc import Sequence

import numpy as np
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


def check_int(name: str, x: object, minimum: int = 1) -> int:
    """Raise naming ``name`` unless ``x`` is an int (Python or NumPy, not bool) >= ``minimum``.

    Returns ``x`` as a Python int: NumPy integers overflow silently in arithmetic.
    """
    if not is_int(x):
        raise TypeError(f"{name} must be an int, got {type(x).__name__} {x!r}")
    if x < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {x}")
    return operator.index(x)


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


def check_index(name: str, i: object, n: int, of: str) -> int:
    """Raise naming ``name`` unless ``i`` is an int in ``[0, n)``; return it as a Python int.

    Negative values are refused, not counted from the end: ``of`` says what is indexed.
    """
    if not is_int(i):
        raise TypeError(f"{name} must be an int, got {type(i).__name__} {i!r}")
    if not 0 <= i < n:
        raise ValueError(f"{name}={i} is out of range for {of}: it must lie in [0, {n})")
    return operator.index(i)


def check_index_tensor(name: str, t: object, n: int, of: str) -> None:
    """Raise naming ``name`` unless ``t`` is an integer tensor (not bool) of values in ``[0, n)``.

    A uint8 or bool tensor is a mask to torch's indexing, not indices, so bool is refused here
    and callers convert other integer dtypes to int64 before they index. The values are checked
    on the CPU only: on an accelerator reading them would cost a host sync on every call, and
    torch's own kernels assert there.
    """
    check_tensor(name, t)
    if t.dtype == torch.bool or t.is_floating_point() or t.is_complex():
        raise TypeError(f"{name} must be an integer tensor of indices, got dtype {t.dtype}")
    if t.numel() and t.device.type == "cpu":
        lo, hi = (int(v) for v in torch.aminmax(t))
        if lo < 0 or hi >= n:
            raise ValueError(
                f"{name} holds {lo if lo < 0 else hi}, out of range for {of}: indices must lie "
                f"in [0, {n})"
            )


def check_bool(name: str, x: object) -> bool:
    """Raise ``TypeError`` naming ``name`` unless ``x`` is a bool (Python or NumPy); return it."""
    if not isinstance(x, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {type(x).__name__} {x!r}")
    return bool(x)


def check_positive_finite(name: str, x: object) -> float:
    """Raise naming ``name`` unless ``x`` is a real number, finite and > 0; return it as float."""
    check_real(name, x)
    if not (math.isfinite(x) and x > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {x}")
    return float(x)


def check_shape(name: str, t: Tensor, shape: tuple, text: str) -> None:
    """Raise ``ValueError`` naming ``name`` unless ``t.shape`` matches ``shape``.

    ``shape`` holds ints (that size), ``None`` (any size) and, first, an optional ``...`` (any
    leading dimensions); ``text`` is the expected shape in words, e.g. ``"(B, S, kdim)"``.
    """
    fixed = shape[1:] if shape[:1] == (...,) else shape
    got = tuple(t.shape)
    ok = len(got) == len(fixed) or (shape[:1] == (...,) and len(got) >= len(fixed))
    tail = got[len(got) - len(fixed) :] if ok else ()
    if not ok or any(want is not None and want != n for want, n in zip(fixed, tail, strict=True)):
        sizes = ", ".join("..." if w is ... else "any" if w is None else str(w) for w in shape)
        raise ValueError(f"{name} must have shape {text} = ({sizes}), got {got}")


def check_optional(name: str, x: object, cls: type) -> None:
    """Raise ``TypeError`` naming ``name`` unless ``x`` is None or an instance of ``cls``."""
    if x is not None and not isinstance(x, cls):
        raise TypeError(f"{name} must be a {cls.__name__} or None, got {type(x).__name__}")


def check_dtype_of(name: str, x: Tensor, weight: Tensor) -> None:
    """Raise ``TypeError`` naming ``name`` unless ``x`` has the dtype of the module's weights."""
    if x.dtype != weight.dtype:
        raise TypeError(
            f"{name} has dtype {x.dtype} but the weights have dtype {weight.dtype}: convert "
            f"{name} ({name}.to({weight.dtype})) or the module (module.to({x.dtype}))"
        )


def check_broadcast(**shapes: tuple[int, ...]) -> None:
    """Raise ``ValueError`` naming the keyword arguments unless their shapes broadcast."""
    try:
        torch.broadcast_shapes(*shapes.values())
    except RuntimeError:
        described = " and ".join(f"{k} of shape {tuple(v)}" for k, v in shapes.items())
        raise ValueError(f"{described} do not broadcast") from None


def check_generator(generator: object, device: torch.device) -> None:
    """Raise naming ``generator`` unless it is None or a ``torch.Generator`` on ``device``'s type.

    torch draws the random numbers of a tensor on a device with a generator of that device
    (``torch.Generator(device=x.device)``): a CPU generator cannot drive CUDA kernels, and
    torch's own message for it does not name the argument.
    """
    if generator is None:
        return
    if not isinstance(generator, torch.Generator):
        raise TypeError(
            f"generator must be a torch.Generator or None, got {type(generator).__name__}"
        )
    if generator.device.type != torch.device(device).type:
        raise ValueError(
            f"generator is on {generator.device.type} but the tensors are on {device}: "
            f"the generator lives on the tensors' device, "
            f"torch.Generator(device={str(device)!r})"
        )


def check_nonnegative(name: str, x: object) -> None:
    """Raise naming ``name`` unless ``x`` is a real number >= 0 (``nan`` is not)."""
    check_real(name, x)
    if not x >= 0:
        raise ValueError(f"{name} must be >= 0, got {x}")


def as_shape(name: str, shape: object) -> tuple[int, ...]:
    """``shape`` as a tuple of sizes >= 0 (an int means a 1-tuple); raise naming ``name`` if not."""
    if is_int(shape):
        shape = (shape,)
    if not (isinstance(shape, (tuple, list)) and all(is_int(s) for s in shape)):  # torch.Size too
        raise TypeError(
            f"{name} must be an int or a sequence of ints, got {type(shape).__name__} {shape!r}"
        )
    if any(s < 0 for s in shape):
        raise ValueError(f"{name} must hold sizes >= 0, got {tuple(int(s) for s in shape)}")
    return tuple(int(s) for s in shape)


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


def check_divides(name: str, x: object, sizes: dict[str, int]) -> int:
    """Raise naming ``name`` unless ``x`` is an int >= 1 dividing each of ``sizes``; return it.

    ``sizes`` maps words to sizes: ``{"batch": 32}`` reads "``name``=3 must divide the batch 32".
    """
    x = check_int(name, x)
    if any(n % x for n in sizes.values()):
        described = " and ".join(f"the {word} {n}" for word, n in sizes.items())
        raise ValueError(f"{name}={x} must divide {described}")
    return x


def check_int_sequence(name: str, x: object, length: int | None = None) -> list[int]:
    """Raise naming ``name`` unless ``x`` is a sequence of ints (of ``length`` if given).

    A str or bytes is refused, and ints are Python or NumPy ones (not bool); returns them as a
    list of Python ints.
    """
    if isinstance(x, (str, bytes)) or not isinstance(x, Sequence):
        raise TypeError(f"{name} must be a sequence of ints, got {type(x).__name__} {x!r}")
    for i, v in enumerate(x):
        if not is_int(v):
            raise TypeError(f"{name}[{i}] must be an int, got {type(v).__name__} {v!r}")
    if length is not None and len(x) != length:
        raise ValueError(f"{name} must hold {length} ints, got {len(x)}: {tuple(x)!r}")
    return [operator.index(v) for v in x]


def check_linear_input(name: str, x: object, weight: Tensor, text: str = "(..., in_features)"):
    """Raise naming ``name`` unless ``x`` can enter ``F.linear`` with ``weight`` (out, in).

    That is a floating-point tensor of the weight's dtype with at least one dimension, the last
    one of size ``in``; ``text`` is that shape in words.
    """
    check_float(name, x)
    check_shape(name, x, (..., weight.shape[-1]), text)
    check_dtype_of(name, x, weight)


def check_finite_nonnegative(name: str, x: object) -> float:
    """Raise naming ``name`` unless ``x`` is a real number, finite and >= 0; return it as float."""
    check_real(name, x)
    if not (math.isfinite(x) and x >= 0):
        raise ValueError(f"{name} must be a finite number >= 0, got {x}")
    return float(x)


def check_positive_array(name: str, x: object) -> float | np.ndarray:
    """Raise naming ``name`` unless ``x`` is a real number or an array-like of them, all finite
    and > 0; return a float, or a float64 array.

    NumPy reads host memory only: a tensor on another device gets a message that says so.
    """
    if is_real_number(x):
        return check_positive_finite(name, x)
    if isinstance(x, Tensor) and x.device.type != "cpu":
        raise TypeError(f"{name} is a tensor on {x.device}: NumPy needs it on the CPU, .cpu()")
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a real number or an array of them, got {x!r}") from None
    if not (np.isfinite(arr).all() and (arr > 0).all()):
        raise ValueError(f"{name} must hold finite numbers > 0, got {x}")
    return arr


def check_instance(name: str, x: object, cls: type, text: str = "") -> None:
    """Raise ``TypeError`` naming ``name`` unless ``x`` is a ``cls`` (``text`` names it)."""
    if not isinstance(x, cls):
        raise TypeError(f"{name} must be a {text or cls.__name__}, got {type(x).__name__}")


def check_in_range(name: str, x: object, low: float, high: float, closed: bool = False) -> float:
    """Raise naming ``name`` unless ``x`` is a real number in ``(low, high)`` (``[low, high]``
    if ``closed``); return it as a float."""

    """Raise naming ``name`` unless ``x`` is a real number in an interval; return it as a float.

    The interval is ``(low, high)``, or ``[low, high]`` if ``closed``; ``nan`` lies in neither.
    """
    check_real(name, x)
    if not (low <= x <= high if closed else low < x < high):
        interval = f"[{low:g}, {high:g}]" if closed else f"({low:g}, {high:g})"
        raise ValueError(f"{name} must lie in {interval}, got {x}")
    return float(x)


def check_choice(name: str, x: object, allowed: tuple) -> None:
    """Raise ``ValueError`` naming ``name`` unless ``x`` is one of ``allowed``."""
    if x not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {x!r}")


def check_fraction(name: str, x: object, low_open: bool = False) -> float:
    """Raise naming ``name`` unless ``x`` is a real number in [0, 1] ((0, 1] if ``low_open``)."""
    check_real(name, x)
    if not (0 < x <= 1 if low_open else 0 <= x <= 1):  # also refuses nan
        raise ValueError(f"{name} must lie in {'(' if low_open else '['}0, 1], got {x}")
    return float(x)


def check_optional_real(name: str, x: object) -> None:
    """Raise ``TypeError`` naming ``name`` unless ``x`` is None or a real number (not a bool)."""
    if x is not None and not is_real_number(x):
        raise TypeError(f"{name} must be a real number or None, got {type(x).__name__} {x!r}")


def check_index_tensor_on_device(name: str, t: object, n: int, of: str) -> None:
    """:func:`check_index_tensor`, plus an assert on an accelerator that costs no host sync.

    On a device a value outside ``[0, n)`` raises ``RuntimeError`` at the device's next sync.
    """
    check_index_tensor(name, t, n, of)
    if t.numel() and t.device.type != "cpu":
        in_range = ((t >= 0) & (t < n)).all()
        torch._assert_async(in_range, f"{name} holds indices outside [0, {n}) for {of}")


def check_even(name: str, x: int) -> None:
    """Raise ``ValueError`` naming ``name`` unless the int ``x`` is even (pairs of features)."""
    if x % 2:
        raise ValueError(f"{name} must be even, got {x}")


def check_at_most(name: str, x: object, high: float) -> float:
    """Raise naming ``name`` unless ``x`` is a real number not above ``high``; return a float.

    Only ``x > high`` is refused: ``nan`` and ``-inf`` pass (torch's ``dropout_p`` takes them).
    """
    check_real(name, x)
    if x > high:
        raise ValueError(f"{name} must be at most {high:g}, got {x}")
    return float(x)


def check_same_size(name_a: str, a: Tensor, name_b: str, b: Tensor, dim: int, what: str) -> None:
    """Raise ``ValueError`` naming both tensors unless ``a.shape[dim] == b.shape[dim]``.

    ``what`` names the dimensions, e.g. ``"the last dimensions"``.
    """
    if a.shape[dim] != b.shape[dim]:
        raise ValueError(
            f"{name_a} has shape {tuple(a.shape)} but {name_b} has shape {tuple(b.shape)}: "
            f"{what} must match"
        )


def check_batch_broadcast(name_a: str, a: Tensor, name_b: str, b: Tensor, skip: int = 2, hint=""):
    """Raise ``ValueError`` naming both tensors unless their dimensions before the last ``skip``
    broadcast, as in a batched matrix product; return the broadcast batch shape.

    ``hint`` is added to the message.
    """
    try:
        return tuple(torch.broadcast_shapes(a.shape[:-skip], b.shape[:-skip]))
    except RuntimeError:
        raise ValueError(
            f"{name_a} has shape {tuple(a.shape)} but {name_b} has shape {tuple(b.shape)}: the "
            f"batch and head dimensions must match or broadcast{hint}"
        ) from None


def check_broadcasts_to(name: str, t: Tensor, shape: tuple[int, ...], text: str) -> None:
    """Raise ``ValueError`` naming ``name`` unless ``t`` broadcasts to ``shape`` without growing.

    ``text`` says what ``shape`` is, e.g. ``"the scores' shape"``.
    """
    try:
        fits = torch.broadcast_shapes(t.shape, shape) == shape
    except RuntimeError:
        fits = False
    if not fits:
        raise ValueError(
            f"{name} has shape {tuple(t.shape)}, which does not broadcast to {text} {shape}"
        )


def check_dtype_in(name: str, t: Tensor, dtypes: Sequence[torch.dtype]) -> None:
    """Raise ``TypeError`` naming ``name`` unless the tensor ``t`` has one of ``dtypes``."""
    if t.dtype not in dtypes:
        allowed = " or ".join(str(d) for d in dict.fromkeys(dtypes))
        raise TypeError(f"{name} must have dtype {allowed}, got {t.dtype}")


def check_param(name: str, p: object, shape: tuple[int, ...], like: Tensor) -> None:
    """Raise naming ``name`` unless ``p`` is None or a parameter fit to apply to ``like``.

    That is a floating-point tensor of shape ``shape`` and of ``like``'s dtype (a weight, a
    bias or a running statistic of the input ``like``).
    """
    if p is not None:
        check_float(name, p)
        check_same_dtype(input=like, **{name: p})
        if tuple(p.shape) != tuple(shape):
            got = f"got {tuple(p.shape)} for input of shape {tuple(like.shape)}"
            raise ValueError(f"{name} must have shape {tuple(shape)}, {got}")
