"""The parity harness every topic's tests stand on.

``assert_parity(ours, reference, args)`` calls both functions on the same inputs in float64 and
checks, for each input layout (contiguous, transposed, strided):

- equal values (and dtypes and shapes) of every tensor in the output, ``nan`` where the reference
  has ``nan``, ``±inf`` where it has ``±inf``;
- equal gradients, for a random upstream gradient, with respect to **every** floating-point tensor
  input (targets, weights, masks included) that the reference differentiates; where the reference
  gives no gradient, ours gives none or zeros, and where ours has no graph the reference's
  gradient is zero (a second derivative of a function linear in that input);
- optionally (``double_backward=True``) equal second-order gradients.

``assert_module_parity`` does the same for two ``nn.Module`` objects that share a state dict, with
gradients for every parameter, and ``assert_matches_finite_differences`` checks a hand-derived or
autograd gradient against central differences with a tolerance relative to the gradient's size.

Tests import it as ``from parity import assert_parity`` (pytest puts ``tests/`` on ``sys.path``).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence

import torch
from torch import Tensor

LAYOUTS = ("contiguous", "transposed", "strided")


# ----------------------------------------------------------------------------------- helpers


def _tensors(obj) -> list[Tensor]:
    """Every tensor in a (nested) tuple/list/dict output, in order."""
    if isinstance(obj, Tensor):
        return [obj]
    if isinstance(obj, (tuple, list)):
        return [t for item in obj for t in _tensors(item)]
    if isinstance(obj, dict):
        return [t for key in obj for t in _tensors(obj[key])]
    return []


def _map_tensors(fn, obj):
    if isinstance(obj, Tensor):
        return fn(obj)
    if isinstance(obj, tuple):
        return tuple(_map_tensors(fn, item) for item in obj)
    if isinstance(obj, list):
        return [_map_tensors(fn, item) for item in obj]
    if isinstance(obj, dict):
        return {key: _map_tensors(fn, value) for key, value in obj.items()}
    return obj


def relayout(x: Tensor, layout: str) -> Tensor:
    """The same values as ``x`` in another memory layout (a non-contiguous view)."""
    if layout == "contiguous" or x.dim() == 0:
        return x
    if layout == "transposed":
        if x.dim() < 2:
            return relayout(x, "strided")
        return x.mT.contiguous().mT  # strides (…, 1, rows): column-major in the last two dims
    if layout == "strided":
        return torch.stack([x, torch.zeros_like(x)], dim=-1)[..., 0]  # every other element
    raise ValueError(f"unknown layout {layout!r}")


def _prepare(args, kwargs, layout: str, no_grad=()):
    """Fresh float inputs that require grad (in the given layout); other values as they are.

    ``no_grad`` names positional indices or keyword names whose tensors torch does not
    differentiate (``F.cross_entropy``'s ``weight``): they are passed without ``requires_grad``.
    """
    leaves: list[Tensor] = []

    def prep(t: Tensor, grad: bool = True) -> Tensor:
        if grad and t.is_floating_point():
            base = t.detach().clone().requires_grad_()
            view = relayout(base, layout)
            leaves.append(view)
            return view
        return relayout(t, layout)

    a = tuple(
        _map_tensors(lambda t, g=(i not in no_grad): prep(t, g), v) for i, v in enumerate(args)
    )
    k = {n: _map_tensors(lambda t, g=(n not in no_grad): prep(t, g), v) for n, v in kwargs.items()}
    return a, k, leaves


def assert_close(actual, expected, *, rtol: float, atol: float, what: str) -> None:
    """``torch.testing.assert_close`` over nested outputs, nan where the reference has nan."""
    a, e = _tensors(actual), _tensors(expected)
    assert len(a) == len(e), f"{what}: {len(a)} tensors vs {len(e)} in the reference"
    for i, (x, y) in enumerate(zip(a, e, strict=True)):
        torch.testing.assert_close(
            x, y, rtol=rtol, atol=atol, equal_nan=True, msg=lambda m, i=i: f"{what}[{i}]: {m}"
        )


def _grads(outputs: list[Tensor], upstream: list[Tensor], inputs: list[Tensor], create_graph):
    pairs = [(o, g) for o, g in zip(outputs, upstream, strict=True) if o.requires_grad]
    if not pairs or not inputs:
        return [None] * len(inputs)
    outs, gs = zip(*pairs, strict=True)
    return list(
        torch.autograd.grad(
            outs, inputs, gs, retain_graph=True, create_graph=create_graph, allow_unused=True
        )
    )


def _compare_grads(ours, ref, *, rtol, atol, what):
    for i, (a, b) in enumerate(zip(ours, ref, strict=True)):
        if b is None:
            assert a is None or not a.any(), f"{what} of input {i}: torch gives none, ours non-zero"
            continue
        if a is None:  # no graph to ours: fine where torch's gradient is identically zero
            # (a second gradient of a function linear in that input, say)
            assert not b.any(), f"{what} of input {i}: torch differentiates it, ours does not"
            continue
        torch.testing.assert_close(
            a,
            b,
            rtol=rtol,
            atol=atol,
            equal_nan=True,
            msg=lambda m, i=i: f"{what} of input {i}: {m}",
        )


# ------------------------------------------------------------------------------------ checks


def assert_parity(
    ours: Callable,
    reference: Callable,
    args: Sequence = (),
    kwargs: dict | None = None,
    *,
    rtol: float = 1e-12,
    atol: float = 1e-12,
    grad_rtol: float = 1e-10,
    grad_atol: float = 1e-12,
    layouts: Sequence[str] = LAYOUTS,
    double_backward: bool = False,
    no_grad: Collection[int | str] = (),
    seed: int = 0,
) -> None:
    """Values and gradients of ``ours(*args, **kwargs)`` equal those of ``reference``.

    Floating-point tensors anywhere in ``args``/``kwargs`` (nested in tuples, lists and dicts too)
    are differentiated; integer and bool tensors (targets, masks) are passed through, in the same
    layout. Pass float64 inputs: the point is to compare exact arithmetic, not rounding.
    ``no_grad`` lists the positional indices and keyword names torch refuses to differentiate.
    """
    kwargs = {} if kwargs is None else kwargs
    for layout in layouts:
        a, k, inputs = _prepare(args, kwargs, layout, no_grad)
        out_ours, out_ref = ours(*a, **k), reference(*a, **k)
        assert_close(out_ours, out_ref, rtol=rtol, atol=atol, what=f"value ({layout})")

        outs_ours, outs_ref = _tensors(out_ours), _tensors(out_ref)
        gen = torch.Generator().manual_seed(seed)
        upstream = [
            torch.randn(o.shape, generator=gen, dtype=o.dtype) if o.is_floating_point() else None
            for o in outs_ref
        ]
        g_ours = _grads(outs_ours, upstream, inputs, create_graph=double_backward)
        g_ref = _grads(outs_ref, upstream, inputs, create_graph=double_backward)
        _compare_grads(g_ours, g_ref, rtol=grad_rtol, atol=grad_atol, what=f"gradient ({layout})")

        if double_backward:
            # d/dinputs of <grad, h> for a random h: a Hessian-vector product of each function
            h = [
                None if g is None else torch.randn(g.shape, generator=gen, dtype=g.dtype)
                for g in g_ref
            ]
            gg = []
            for grads in (g_ours, g_ref):
                terms = [
                    (g * v).sum()
                    for g, v in zip(grads, h, strict=True)
                    if g is not None and g.requires_grad
                ]
                gg.append(
                    _grads([sum(terms)], [torch.ones(())], inputs, False)
                    if terms
                    else [None] * len(inputs)
                )
            _compare_grads(*gg, rtol=grad_rtol, atol=grad_atol, what=f"second gradient ({layout})")


def assert_module_parity(
    ours: torch.nn.Module,
    reference: torch.nn.Module,
    args: Sequence = (),
    kwargs: dict | None = None,
    *,
    rtol: float = 1e-12,
    atol: float = 1e-12,
    grad_rtol: float = 1e-10,
    grad_atol: float = 1e-12,
    layouts: Sequence[str] = LAYOUTS,
    seed: int = 0,
) -> None:
    """Two modules with the same parameters give the same outputs and the same gradients.

    ``reference``'s state dict is loaded into ``ours`` first (so the names and shapes must
    match, as for a drop-in replacement). Gradients are compared for every floating input and for
    every parameter, by name.
    """
    ours.load_state_dict(reference.state_dict())
    p_ours, p_ref = dict(ours.named_parameters()), dict(reference.named_parameters())
    assert p_ours.keys() == p_ref.keys(), f"parameters {sorted(p_ours)} vs {sorted(p_ref)}"
    names = list(p_ref)
    kwargs = {} if kwargs is None else kwargs
    for layout in layouts:
        a, k, inputs = _prepare(args, kwargs, layout)
        out_ours, out_ref = ours(*a, **k), reference(*a, **k)
        assert_close(out_ours, out_ref, rtol=rtol, atol=atol, what=f"value ({layout})")
        outs_ours, outs_ref = _tensors(out_ours), _tensors(out_ref)
        gen = torch.Generator().manual_seed(seed)
        upstream = [
            torch.randn(o.shape, generator=gen, dtype=o.dtype) if o.is_floating_point() else None
            for o in outs_ref
        ]
        g_ours = _grads(outs_ours, upstream, inputs + [p_ours[n] for n in names], False)
        g_ref = _grads(outs_ref, upstream, inputs + [p_ref[n] for n in names], False)
        _compare_grads(
            g_ours[: len(inputs)],
            g_ref[: len(inputs)],
            rtol=grad_rtol,
            atol=grad_atol,
            what=f"input gradient ({layout})",
        )
        for n, a_, b_ in zip(names, g_ours[len(inputs) :], g_ref[len(inputs) :], strict=True):
            _compare_grads(
                [a_], [b_], rtol=grad_rtol, atol=grad_atol, what=f"gradient of {n} ({layout})"
            )


def central_differences(f: Callable[[Tensor], Tensor], x: Tensor, eps: float = 1e-6) -> Tensor:
    """∂f/∂x by central differences, f scalar-valued, x float64 (any layout)."""
    x = x.detach().to(torch.float64).contiguous().clone()
    grad = torch.empty_like(x)
    flat_x, flat_g = x.view(-1), grad.view(-1)
    for i in range(flat_x.numel()):
        old = flat_x[i].item()
        flat_x[i] = old + eps
        up = float(f(x))
        flat_x[i] = old - eps
        down = float(f(x))
        flat_x[i] = old
        flat_g[i] = (up - down) / (2 * eps)
    return grad


def assert_matches_finite_differences(
    f: Callable[[Tensor], Tensor], x: Tensor, grad: Tensor, *, eps: float = 1e-6, rtol: float = 1e-6
) -> None:
    """``grad`` equals central differences of ``f`` at ``x``, to ``rtol`` of the gradient's size.

    The tolerance is relative: ``|grad - fd| <= rtol * max(|fd|.max(), 1e-300)`` element-wise, so a
    tiny gradient is not waved through by an absolute tolerance larger than itself. The only
    absolute term is the round-off floor of central differences themselves, ``4 u |f(x)| / eps``
    (``u`` the float64 unit round-off): below it they cannot tell a gradient from 0 (a gradient of
    1e-95 on a function of size 1 reads as 0), so they cannot check it either way.
    """
    fd = central_differences(f, x, eps)
    scale = max(fd.abs().max().item(), 1e-300) if fd.numel() else 1e-300
    x64 = x.detach().to(torch.float64)
    floor = 4 * torch.finfo(torch.float64).eps * abs(float(f(x64))) / eps
    err = (grad.detach().to(torch.float64) - fd).abs().max().item() if fd.numel() else 0.0
    assert err <= rtol * scale + floor, (
        f"gradient differs from central differences by {err:.3g}, more than rtol={rtol:g} of the "
        f"gradient's size {scale:.3g} (+ the differences' round-off floor {floor:.3g})"
    )
