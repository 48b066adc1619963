"""Values: copy a call's inputs, compare its outputs with the reference's, show them in a report.

The comparison is in float64, with ``nan`` and ``±inf`` required exactly where the reference has
them; the message names the largest error and where it is.
"""

from __future__ import annotations

import math
import types
from collections.abc import Mapping

import torch
from torch import Tensor

DT = torch.float64


def _indent(text: str, pad: str) -> str:
    first, *rest = text.split("\n")
    return "\n".join([pad + first] + [pad + "  " + r for r in rest])


def _show(v: object) -> str:
    """A value as the report prints it: small tensors in full, large ones by shape."""
    if isinstance(v, Tensor):
        desc = f"shape {tuple(v.shape)}, {str(v.dtype).replace('torch.', '')}"
        if v.numel() <= 24:
            body = _fmt_tensor(v.detach())
            return f"{body}  ({desc})"
        finite = v.detach()[torch.isfinite(v.detach())] if v.is_floating_point() else v
        if finite.numel():
            desc += f", values in [{float(finite.min()):.4g}, {float(finite.max()):.4g}]"
        return f"<tensor of {desc}>"
    if isinstance(v, Mapping):
        return "{" + ", ".join(f"{k}: {_show(x)}" for k, x in v.items()) + "}"
    if isinstance(v, (tuple, list)):
        if all(isinstance(x, int) for x in v):  # a shape
            return repr(tuple(v))
        return "(" + ", ".join(_show(x) for x in v) + ")"
    if isinstance(v, (types.FunctionType, types.BuiltinFunctionType)):
        return f"<function {v.__name__}>"
    return repr(v)


def _fmt_tensor(t: Tensor) -> str:
    """Nested lists of numbers with 4 significant digits: ``[[1, 0.5], [nan, -inf]]``."""

    def fmt(x):
        if isinstance(x, list):
            return "[" + ", ".join(fmt(y) for y in x) + "]"
        return f"{x:.4g}" if isinstance(x, float) else str(x)

    return fmt(t.tolist())


def clone_inputs(obj):
    """A fresh copy of the inputs (the learner's code may change them in place)."""
    if isinstance(obj, Tensor):
        return obj.detach().clone()
    if isinstance(obj, dict):
        return {k: clone_inputs(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [clone_inputs(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(clone_inputs(v) for v in obj)
    return obj


def _same(a, b) -> bool:
    """``a`` and ``b`` hold the same values (nan equal to nan), tensors compared by value."""
    if isinstance(a, Tensor):
        if not isinstance(b, Tensor) or a.shape != b.shape or a.dtype != b.dtype:
            return False
        if a.is_floating_point() or a.is_complex():
            return bool(((a == b) | (a.isnan() & b.isnan())).all())
        return torch.equal(a, b)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return True  # not a tensor: nothing a solution could change in place that matters here


def _changed_input(kwargs: dict, after: dict) -> str | None:
    """The first argument whose tensors a call changed in place (``after`` was passed to it)."""
    return next((k for k in kwargs if not _same(kwargs[k], after[k])), None)


def _as_tensor(x) -> Tensor | None:
    if isinstance(x, Tensor):
        return x
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        return torch.tensor(x, dtype=DT)
    return None


def compare(expected, got, rtol: float, atol: float, shape_only: bool = False):
    """``None`` when ``got`` matches ``expected``, else (message, max_abs, max_rel)."""
    if isinstance(expected, tuple):  # a shape: compare as tuples of ints
        if not isinstance(got, (tuple, list)) or tuple(got) != expected:
            return f"is {got!r}, expected {expected!r}", None, None
        return None
    e, g = _as_tensor(expected), _as_tensor(got)
    if g is None:
        return f"returned {type(got).__name__}, expected a tensor", None, None
    if tuple(e.shape) != tuple(g.shape):
        return f"has shape {tuple(g.shape)}, expected {tuple(e.shape)}", None, None
    if shape_only:
        return None
    e, g = e.detach(), g.detach()
    if not e.is_floating_point():
        if g.is_floating_point() or g.is_complex() or not torch.equal(g.to(e.dtype), e):
            if not g.is_floating_point() and not g.is_complex():
                bad = int((g.to(e.dtype) != e).sum())
                return f"differs at {bad} of {e.numel()} positions", None, None
            return f"has dtype {g.dtype}, expected integers ({e.dtype})", None, None
        return None
    if g.is_complex():
        return f"has dtype {g.dtype}, expected a real tensor ({e.dtype})", None, None
    if g.dtype != e.dtype and g.is_floating_point():
        dtype = str(g.dtype).replace("torch.", "")
        note = f" (your output is {dtype}: compute in the dtype of the inputs)"
    else:
        note = ""
    g, e = g.to(DT), e.to(DT)
    if torch.isclose(g, e, rtol=rtol, atol=atol, equal_nan=True).all():
        return None
    both = torch.isfinite(e) & torch.isfinite(g)
    nan_bad = int((torch.isnan(g) & ~torch.isnan(e)).sum())
    inf_bad = int((torch.isinf(g) & ~torch.isinf(e)).sum())
    lost = int((~torch.isfinite(e) & torch.isfinite(g)).sum())
    msg = "values differ" + note
    if nan_bad:
        msg += f"; nan at {nan_bad} position(s) where the expected value is not nan"
    if inf_bad:
        msg += f"; ±inf at {inf_bad} position(s) where the expected value is finite"
    if lost:
        msg += f"; finite at {lost} position(s) where the expected value is ±inf or nan"
    err = (g - e).abs()[both]
    if not err.numel() or float(err.max()) == 0:  # only nan/inf differ: no error to measure
        return msg, None, None
    nonzero = e[both] != 0
    rel = err[nonzero] / e[both][nonzero].abs()  # relative to the expected value, where != 0
    max_abs = float(err.max())
    max_rel = float(rel.max()) if rel.numel() else math.nan
    if e.dim():
        full = torch.where(both, (g - e).abs(), torch.zeros_like(e))
        where = torch.unravel_index(full.argmax(), e.shape)
        msg += (
            f"; the largest error is at index {tuple(int(i) for i in where)}: expected "
            f"{float(e[where]):.4g}, got {float(g[where]):.4g}"
        )
    if not both.all():
        msg += f" (errors below over the {int(both.sum())} positions where both are finite)"
    return msg, max_abs, max_rel
