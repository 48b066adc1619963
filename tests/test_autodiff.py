"""dlref.autodiff against torch autograd in float64: values and gradients, both modes.

Every operation runs through the parity harness (tests/parity.py): ``via_scalar`` and ``via_dual``
turn a function of Scalars or Duals into an elementwise torch function whose backward is our
reverse or forward mode, so values and gradients are compared with torch's on contiguous,
transposed and strided inputs. Finite differences are checked with relative tolerances.
"""

import importlib.util
import math
import pathlib
import sys

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from parity import LAYOUTS, assert_matches_finite_differences, assert_parity, relayout

from dlref.autodiff import (
    Dual,
    Scalar,
    finite_difference_grad,
    forward_mode_grad,
    reverse_mode_grad,
)

DT = torch.float64
NAN = float("nan")


def leaf(v):
    return torch.tensor(v, dtype=DT, requires_grad=True)


def torch_grads(out, leaves):
    """d out / d leaf for every leaf, 0 for a leaf out does not depend on."""
    grads = torch.autograd.grad(out, leaves, allow_unused=True, retain_graph=True)
    return [0.0 if g is None else g.item() for g in grads]


# ---------------------------------------------------------------------------------------------
# Every operation, in both modes, against torch: numbers on either side, one and two variables.
# ---------------------------------------------------------------------------------------------

UNARY_CASES = {
    "x + 2": lambda x: x + 2,
    "2 + x": lambda x: 2 + x,
    "x - 2": lambda x: x - 2,
    "2 - x": lambda x: 2 - x,
    "x * 3": lambda x: x * 3,
    "3 * x": lambda x: 3 * x,
    "x / 4": lambda x: x / 4,
    "1 / x": lambda x: 1 / x,
    "-x": lambda x: -x,
    "x ** 3": lambda x: x**3,
    "x ** 0.5": lambda x: x**0.5,
    "x ** -2": lambda x: x**-2,
    "exp": lambda x: x.exp(),
    "log": lambda x: x.log(),
    "tanh": lambda x: x.tanh(),
    "sigmoid": lambda x: x.sigmoid(),
    "relu": lambda x: x.relu(),
    "x * x": lambda x: x * x,
    "x / x": lambda x: x / x,
    "x - x": lambda x: x - x,
}
BINARY_CASES = {
    "a + b": lambda a, b: a + b,
    "a - b": lambda a, b: a - b,
    "a * b": lambda a, b: a * b,
    "a / b": lambda a, b: a / b,
}
POINTS = [0.7, 1.3, 2.5]  # in every function's domain (log, x ** 0.5)


def via_scalar(f):
    """f of Scalars as an elementwise torch function: values by Scalar, backward by
    Scalar.backward at each element (reverse mode)."""

    class ViaScalar(torch.autograd.Function):
        @staticmethod
        def forward(ctx, *xs):
            values, grads = [], []
            for point in zip(*(x.reshape(-1).tolist() for x in xs), strict=True):
                leaves = [Scalar(v) for v in point]
                out = f(*leaves)
                out.backward()
                values.append(out.data)
                grads.append([leaf.grad for leaf in leaves])
            ctx.shape = xs[0].shape
            ctx.grads = torch.tensor(grads, dtype=DT).reshape(-1, len(xs))
            return torch.tensor(values, dtype=DT).reshape(ctx.shape)

        @staticmethod
        def backward(ctx, g):
            return tuple(g * ctx.grads[:, i].reshape(ctx.shape) for i in range(ctx.grads.shape[1]))

    return ViaScalar.apply


def via_dual(f):
    """f of Duals as an elementwise torch function: one forward-mode pass per input gives the
    partial derivative with respect to it (tangent e_i)."""

    class ViaDual(torch.autograd.Function):
        @staticmethod
        def forward(ctx, *xs):
            values, grads = [], []
            for point in zip(*(x.reshape(-1).tolist() for x in xs), strict=True):
                n = len(point)
                outs = [f(*(Dual(v, float(i == j)) for j, v in enumerate(point))) for i in range(n)]
                values.append(outs[0].value)
                grads.append([o.tangent for o in outs])
            ctx.shape = xs[0].shape
            ctx.grads = torch.tensor(grads, dtype=DT).reshape(-1, len(xs))
            return torch.tensor(values, dtype=DT).reshape(ctx.shape)

        @staticmethod
        def backward(ctx, g):
            return tuple(g * ctx.grads[:, i].reshape(ctx.shape) for i in range(ctx.grads.shape[1]))

    return ViaDual.apply


VIA = {"reverse": via_scalar, "forward": via_dual}


@pytest.mark.parametrize("mode", list(VIA))
@pytest.mark.parametrize("name", list(UNARY_CASES))
def test_every_unary_operation_matches_torch_in_both_modes(name, mode):
    points = POINTS + [0.4] if name in ("log", "x ** 0.5") else POINTS + [-1.2]  # log, sqrt: x > 0
    x = torch.tensor(points, dtype=DT).reshape(2, 2)
    f = UNARY_CASES[name]
    assert_parity(VIA[mode](f), f, (x,), rtol=1e-13, atol=0, grad_rtol=1e-12, grad_atol=1e-15)


@pytest.mark.parametrize("mode", list(VIA))
@pytest.mark.parametrize("name", list(BINARY_CASES))
def test_every_binary_operation_matches_torch_in_both_modes(name, mode):
    a = torch.tensor([0.7, -2.0, 3.0], dtype=DT)
    b = torch.tensor([1.3, 0.4, -1.5], dtype=DT)
    f = BINARY_CASES[name]
    assert_parity(VIA[mode](f), f, (a, b), rtol=1e-13, atol=0, grad_rtol=1e-12, grad_atol=0)


@pytest.mark.parametrize("mode", list(VIA))
@pytest.mark.parametrize("k", [0, 0.5, 1, 1.5, 2, 3])
def test_power_at_zero_matches_torch(k, mode):
    """0 ** 0 = 1 with slope 0; 0 ** 0.5 = 0 with slope inf; as torch (the issue's defect 2)."""
    x = torch.tensor([0.0, 0.5], dtype=DT)
    assert_parity(VIA[mode](lambda v: v**k), lambda v: v**k, (x,))


def test_power_at_zero_examples_of_the_issue():
    s = Scalar(0.0)
    y = s**0
    y.backward()
    assert (y.data, s.grad) == (1.0, 0.0)
    d = Dual(0.0, 1.0) ** 0
    assert (d.value, d.tangent) == (1.0, 0.0)
    s = Scalar(0.0)
    y = s**0.5
    y.backward()
    assert (y.data, s.grad) == (0.0, math.inf)


@pytest.mark.parametrize("cls", [Scalar, Dual])
def test_negative_power_of_zero_raises_as_python_floats_do(cls):
    """torch gives inf here; Scalar and Dual follow Python's floats, as for 1 / 0."""
    with pytest.raises(ZeroDivisionError):
        cls(0.0) ** -1


@pytest.mark.parametrize("mode", list(VIA))
def test_sigmoid_is_finite_and_matches_torch_at_extreme_inputs(mode):
    x = torch.tensor([-800.0, -30.0, 0.0, 30.0, 800.0], dtype=DT)
    assert_parity(VIA[mode](lambda v: v.sigmoid()), torch.sigmoid, (x,), atol=0, grad_atol=0)


@pytest.mark.parametrize("mode", list(VIA))
def test_relu_at_zero_and_nan_matches_torch(mode):
    """relu'(0) = 0 as in torch; relu(nan) = nan with slope 1, as torch's relu."""
    x = torch.tensor([0.0, NAN, -1.0, 2.0], dtype=DT)
    assert_parity(VIA[mode](lambda v: v.relu()), torch.relu, (x,))


@pytest.mark.parametrize("cls", [Scalar, Dual])
def test_relu_of_nan_is_nan_as_in_torch(cls):
    out = cls(NAN).relu()
    assert math.isnan(out.data if cls is Scalar else out.value)
    assert math.isnan(torch.relu(torch.tensor(NAN)).item())


# ---------------------------------------------------------------------------------------------
# Random expression graphs, built identically from Scalars, Duals and float64 torch tensors.
# ---------------------------------------------------------------------------------------------

OPS = ["add", "sub", "mul", "div", "pow", "exp", "log", "tanh", "sigmoid", "relu", "rconst"]
POWERS = [2, 3, -1, 0.5, -0.5]


def build(program, nodes, value):
    """Apply program to nodes (leaves first); every op picks its operands among all nodes so far,
    so nodes are reused and subexpressions shared. ``value(node)`` reads the current value, used
    only to keep each op in its domain. Returns the sum of all non-leaf nodes and the last one.
    """
    nodes = list(nodes)
    n_leaves = len(nodes)
    for op, i, j, k in program:
        a, b = nodes[i % len(nodes)], nodes[j % len(nodes)]
        va, vb = value(a), value(b)
        if op == "add":
            y = a + b
        elif op == "sub":
            y = a - b
        elif op == "mul" and abs(va * vb) < 1e3:
            y = a * b
        elif op == "div" and abs(vb) > 0.2 and abs(va / vb) < 1e3:
            y = a / b
        elif op == "pow" and abs(va) > 0.2 and abs(va) < 10:
            p = POWERS[k % len(POWERS)]
            y = a**p if va > 0 or float(p).is_integer() else (a * a) ** p
        elif op == "exp" and va < 5:
            y = a.exp()
        elif op == "log" and va > 0.2:
            y = a.log()
        elif op == "sigmoid":
            y = a.sigmoid()
        elif op == "relu":
            y = a.relu()
        elif op == "rconst" and abs(va) > 0.2:
            y = (k % 5 + 1) / a + (k % 3 - 1) - 2 * a
        else:  # tanh, and the fallback that keeps every value bounded
            y = a.tanh()
        nodes.append(y)
    out = nodes[n_leaves]
    for y in nodes[n_leaves + 1 :]:
        out = out + y
    return out, nodes


leaf_values = st.lists(
    st.floats(-3, 3, allow_nan=False).filter(lambda v: abs(v) > 1e-3), min_size=1, max_size=4
)
programs = st.lists(
    st.tuples(st.sampled_from(OPS), st.integers(0, 50), st.integers(0, 50), st.integers(0, 10)),
    min_size=1,
    max_size=25,
)


@settings(max_examples=150, deadline=None)
@given(leaf_values, programs)
def test_random_graphs_match_torch_values_and_gradients(values, program):
    xs = [Scalar(v) for v in values]
    out, _ = build(program, xs, lambda n: n.data)
    ts = [leaf(v) for v in values]
    ref, _ = build(program, ts, lambda n: n.item())
    assert out.data == pytest.approx(ref.item(), rel=1e-10, abs=1e-10)
    out.backward()
    ref_grads = torch_grads(ref, ts)
    assert [x.grad for x in xs] == pytest.approx(ref_grads, rel=1e-9, abs=1e-9)
    # forward mode: one pass per input, tangent e_i
    fwd = forward_mode_grad(lambda v: build(program, v, lambda n: n.value)[0], values)
    assert fwd == pytest.approx(ref_grads, rel=1e-9, abs=1e-9)


@settings(max_examples=80, deadline=None)
@given(leaf_values, programs)
def test_second_backward_matches_torch_retain_graph(values, program):
    """Leaves accumulate (exactly doubled); intermediates hold one pass's adjoint."""
    xs = [Scalar(v) for v in values]
    out, nodes = build(program, xs, lambda n: n.data)
    ts = [leaf(v) for v in values]
    ref, ref_nodes = build(program, ts, lambda n: n.item())
    out.backward()
    first_leaf = [x.grad for x in xs]
    first_inner = [n.grad for n in nodes[len(xs) :]]
    out.backward()
    ref.backward(retain_graph=True)
    ref.backward(retain_graph=True)
    ref_leaf = [0.0 if t.grad is None else t.grad.item() for t in ts]
    assert [x.grad for x in xs] == pytest.approx(ref_leaf, rel=1e-9, abs=1e-9)
    assert [x.grad for x in xs] == [2 * g for g in first_leaf]  # exactly, in floating point
    assert [n.grad for n in nodes[len(xs) :]] == first_inner
    inner_ref = torch_grads(ref, ref_nodes[len(ts) :])  # d out / d node, one pass
    assert first_inner == pytest.approx(inner_ref, rel=1e-9, abs=1e-9)


# ---------------------------------------------------------------------------------------------
# Reuse, diamonds, depth, second backward and zero_grad, by hand
# ---------------------------------------------------------------------------------------------


def test_node_used_twice_gets_both_contributions():
    x = Scalar(3.0)
    (x * x).backward()
    assert x.grad == 6.0  # 2x, not x
    a = Scalar(-1.5)
    (a + a).backward()
    assert a.grad == 2.0


def test_diamond_matches_torch():
    # x -> (u, w) -> y: the shared x is reached along two paths; u is used by two children
    def f(x):
        u = x.tanh()
        w = x * 2 + u
        return u * w + w / u

    x = Scalar(0.8)
    out = f(x)
    out.backward()
    t = leaf(0.8)
    (g,) = torch_grads(f(t), [t])
    assert x.grad == pytest.approx(g, rel=1e-13)


def test_deep_graph_beyond_the_recursion_limit():
    depth = 5 * sys.getrecursionlimit()
    x = Scalar(0.5)
    y = x
    for _ in range(depth):
        y = y + x  # y = (k + 1) x
    y.backward()
    assert x.grad == depth + 1
    assert len(y.topological_order()) == depth + 1


def micrograd_style_backward(root):
    """The naive version: sets the root to 1 but leaves intermediate grads from a previous call."""
    order = root.topological_order()
    root.grad = 1.0
    for node in reversed(order):
        for parent, d in zip(node._parents, node._partials, strict=True):
            parent.grad += node.grad * d


def test_second_backward_doubles_leaves_and_the_naive_version_does_not():
    # L = x*y + z with x=2, y=3: dL/dx = y = 3
    x, y, z = Scalar(2.0), Scalar(3.0), Scalar(1.0)
    L = x * y + z
    L.backward()
    L.backward()
    tx, ty, tz = leaf(2.0), leaf(3.0), leaf(1.0)
    tL = tx * ty + tz
    tL.backward(retain_graph=True)
    tL.backward()
    assert (x.grad, y.grad, z.grad) == (tx.grad.item(), ty.grad.item(), tz.grad.item())
    assert (x.grad, y.grad, z.grad) == (6.0, 4.0, 2.0)

    x, y, z = Scalar(2.0), Scalar(3.0), Scalar(1.0)
    L = x * y + z
    micrograd_style_backward(L)
    micrograd_style_backward(L)
    assert x.grad == 9.0  # y + 2y: the stale intermediate adjoint is counted again


def test_backward_on_a_leaf_accumulates_the_seed():
    x = Scalar(4.0)
    x.backward()
    x.backward(gradient=2.5)
    assert x.grad == 3.5


def test_backward_seed_is_dl_dl_and_scales_every_gradient():
    x = Scalar(1.5)
    L = x.exp() * x
    L.backward()
    assert L.grad == 1.0  # dL/dL
    g1 = x.grad
    x.zero_grad()
    L.backward(gradient=3.0)
    assert L.grad == 3.0
    assert x.grad == pytest.approx(3 * g1, rel=1e-15)
    tx = leaf(1.5)
    (tx.exp() * tx).backward(torch.tensor(3.0, dtype=DT))
    assert x.grad == pytest.approx(tx.grad.item(), rel=1e-14)


def test_zero_grad_resets_leaves_and_intermediates():
    x, y = Scalar(1.0), Scalar(2.0)
    u = x * y
    L = u.tanh() + y
    L.backward()
    assert x.grad != 0 and u.grad != 0
    L.zero_grad()
    assert [n.grad for n in (x, y, u, L)] == [0.0] * 4
    L.backward()
    t = [leaf(1.0), leaf(2.0)]
    assert [x.grad, y.grad] == pytest.approx(torch_grads((t[0] * t[1]).tanh() + t[1], t))


# ---------------------------------------------------------------------------------------------
# Gradients of f: R^n -> R, and what each costs in calls of f
# ---------------------------------------------------------------------------------------------


def rosenbrock(v):
    return sum(100 * (v[i + 1] - v[i] ** 2) ** 2 + (1 - v[i]) ** 2 for i in range(len(v) - 1))


def rosenbrock_grad(x):
    n = len(x)
    g = [0.0] * n
    for i in range(n - 1):
        g[i] += -400 * x[i] * (x[i + 1] - x[i] ** 2) - 2 * (1 - x[i])
        g[i + 1] += 200 * (x[i + 1] - x[i] ** 2)
    return g


@pytest.mark.parametrize("n", [2, 5, 9])
def test_three_gradients_agree_with_the_closed_form(n):
    x = [0.3 * i - 0.7 for i in range(n)]
    exact = rosenbrock_grad(x)
    assert reverse_mode_grad(rosenbrock, x) == pytest.approx(exact, rel=1e-12, abs=1e-12)
    assert forward_mode_grad(rosenbrock, x) == pytest.approx(exact, rel=1e-12, abs=1e-12)
    fd = finite_difference_grad(rosenbrock, torch.tensor(x, dtype=DT), eps=1e-6)
    assert_close_to_scale(fd, torch.tensor(exact, dtype=DT), rtol=1e-8)


def assert_close_to_scale(actual, expected, rtol):
    """|actual - expected| <= rtol * max|expected|: a tolerance relative to the gradient's size,
    so that small gradients are not waved through by a fixed atol larger than themselves."""
    scale = expected.abs().max().item()
    err = (actual - expected).abs().max().item()
    assert err <= rtol * scale, f"max error {err:.3g} > {rtol:g} * gradient size {scale:.3g}"


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("scale", [1.0, 1e-8])
def test_finite_difference_grad_closed_form_on_any_layout(layout, scale):
    """Contiguous, transposed and strided x; a tiny function too (relative tolerance)."""
    x = relayout(torch.linspace(-2, 2, 12, dtype=DT).reshape(3, 4), layout)
    fd = finite_difference_grad(lambda v: scale * (v.sin() * v).sum(), x)
    assert fd.shape == x.shape and fd.dtype == DT
    assert_close_to_scale(fd, scale * (x.cos() * x + x.sin()), rtol=1e-8)
    x_ = x.clone().requires_grad_()
    (ref,) = torch.autograd.grad(scale * (x_.sin() * x_).sum(), x_)
    assert_close_to_scale(fd, ref, rtol=1e-8)


def test_finite_difference_grad_of_a_transposed_tensor_the_issue():
    x = torch.arange(6.0, dtype=DT).reshape(2, 3).T
    torch.testing.assert_close(finite_difference_grad(lambda v: (v**2).sum(), x), 2 * x)


@pytest.mark.parametrize("mode", ["reverse", "forward"])
def test_grad_helpers_match_the_harness_finite_differences(mode):
    x = [0.3, -1.1, 0.8, 2.0]
    grad = (reverse_mode_grad if mode == "reverse" else forward_mode_grad)(rosenbrock, x)
    assert_matches_finite_differences(
        rosenbrock, torch.tensor(x, dtype=DT), torch.tensor(grad, dtype=DT), rtol=1e-8
    )


@pytest.mark.parametrize("n", [1, 3, 8])
def test_forward_mode_needs_n_passes_reverse_mode_one(n):
    calls = {"fwd": 0, "rev": 0, "fd": 0}

    def counted(key):
        def f(v):  # works on lists of Scalar or Dual and on tensors
            calls[key] += 1
            return (v[0] * v[-1]).tanh()

        return f

    x = [0.1 * (i + 1) for i in range(n)]
    forward_mode_grad(counted("fwd"), x)
    reverse_mode_grad(counted("rev"), x)
    finite_difference_grad(counted("fd"), torch.tensor(x, dtype=DT))
    assert calls == {"fwd": n, "rev": 1, "fd": 2 * n}


def _load_bench():
    path = pathlib.Path(__file__).parents[1] / "benchmarks" / "bench_autodiff.py"
    spec = importlib.util.spec_from_file_location("bench_autodiff", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# torch's first forward-mode call scripts its jvp decompositions, which warns inside torch
@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
def test_benchmarked_jvp_loop_and_vjp_compute_the_same_gradient_as_autograd():
    bench = _load_bench()
    x = torch.randn(17, dtype=DT, generator=torch.Generator().manual_seed(0))
    xg = x.clone().requires_grad_()
    (ref,) = torch.autograd.grad(bench.f(xg), xg)
    torch.testing.assert_close(bench.grad_by_jvps(x), ref)
    torch.testing.assert_close(bench.grad_by_vjp(x), ref)
    assert [name for name, *_ in bench.CASES][:3] == [
        f"grad of R^{n}->R: {n} jvps vs 1 vjp" for n in bench.SIZES
    ]


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["a", None, True, torch.tensor(1.0), [1.0]])
def test_scalar_rejects_non_numbers(bad):
    with pytest.raises(TypeError, match=r"data must be a real number, got "):
        Scalar(bad)


def test_dual_names_the_bad_argument():
    with pytest.raises(TypeError, match="value must be a real number, got str 'a'"):
        Dual("a", 1.0)
    with pytest.raises(TypeError, match="tangent must be a real number, got NoneType None"):
        Dual(1.0, None)


@pytest.mark.parametrize("cls", [Scalar, Dual])
def test_power_with_a_differentiable_exponent_is_refused(cls):
    with pytest.raises(TypeError, match=r"exponent k of x \*\* k must be a real number, got "):
        cls(2.0) ** cls(3.0)


@pytest.mark.parametrize("cls", [Scalar, Dual])
def test_fractional_power_of_a_negative_number_is_refused(cls):
    with pytest.raises(ValueError, match=r"x \*\* k with x < 0 needs an integer k, got x = -8.0"):
        cls(-8.0) ** (1 / 3)


@pytest.mark.parametrize("cls", [Scalar, Dual])
@pytest.mark.parametrize("x0", [0.0, -1.0])
def test_log_of_a_non_positive_value_raises(cls, x0):
    with pytest.raises(ValueError, match=f"log needs a positive input, got {x0}"):
        cls(x0).log()
    assert not math.isfinite(torch.log(torch.tensor(x0)).item())  # where torch gives -inf/nan


@pytest.mark.parametrize("cls", [Scalar, Dual])
def test_division_by_zero_raises_as_python_floats_do(cls):
    with pytest.raises(ZeroDivisionError):
        cls(1.0) / cls(0.0)
    with pytest.raises(ZeroDivisionError):
        1 / cls(0.0)


def test_mixing_scalar_dual_or_strings_is_a_type_error():
    with pytest.raises(TypeError, match="unsupported operand"):
        Scalar(1.0) + Dual(1.0)
    with pytest.raises(TypeError, match="unsupported operand"):
        Scalar(1.0) / "a"
    with pytest.raises(TypeError, match="unsupported operand"):
        "a" - Dual(1.0)


def test_backward_gradient_must_be_a_number():
    with pytest.raises(TypeError, match="gradient must be a real number, got Tensor"):
        Scalar(1.0).backward(torch.tensor(1.0))


def test_grad_helpers_check_their_arguments():
    with pytest.raises(TypeError, match="x must be a sequence of real numbers, got float"):
        reverse_mode_grad(lambda v: v[0], 1.0)
    with pytest.raises(TypeError, match="got an element of type str"):
        forward_mode_grad(lambda v: v[0], [1.0, "b"])
    with pytest.raises(TypeError, match="f must return a Scalar, got float"):
        reverse_mode_grad(lambda v: 1.0, [1.0])
    with pytest.raises(TypeError, match="f must return a Dual, got Scalar"):
        forward_mode_grad(lambda v: Scalar(1.0), [1.0])
    with pytest.raises(TypeError, match=r"f must be callable, got int 3"):
        reverse_mode_grad(3, [1.0])
    with pytest.raises(TypeError, match=r"f must be callable, got list \[1.0\]"):
        forward_mode_grad([1.0], lambda v: v[0])


def test_finite_difference_grad_errors():
    with pytest.raises(
        ValueError,
        match=r"f must return a scalar \(a 0-d tensor\), got a tensor of "
        r"shape \(2,\): reduce it first",
    ):
        finite_difference_grad(lambda v: v**2, torch.tensor([1.0, 2.0]))
    with pytest.raises(TypeError, match="f must return a 0-d tensor or a real number, got list"):
        finite_difference_grad(lambda v: [1.0], torch.tensor([1.0]))
    with pytest.raises(TypeError, match="f must be callable, got int 3"):
        finite_difference_grad(3, torch.tensor([1.0]))
    with pytest.raises(TypeError, match="x must be a torch.Tensor, got list"):
        finite_difference_grad(lambda v: v.sum(), [1.0])
    with pytest.raises(TypeError, match="got dtype torch.int64"):
        finite_difference_grad(lambda v: v.sum(), torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="eps must be a finite number > 0, got 0"):
        finite_difference_grad(lambda v: v.sum(), torch.tensor([1.0]), eps=0)
    with pytest.raises(TypeError, match="eps must be a real number, got str '0.1'"):
        finite_difference_grad(lambda v: v.sum(), torch.tensor([1.0]), eps="0.1")


@pytest.mark.parametrize("grad", [reverse_mode_grad, forward_mode_grad])
def test_an_empty_point_is_refused_before_f_is_called(grad):
    with pytest.raises(ValueError, match=r"x must hold at least one coordinate .*, got \(\)"):
        grad(lambda v: v[0] * v[1], ())


def test_repr_is_short_and_stable():
    assert repr(Scalar(2)) == "Scalar(data=2.0000, grad=0.0000)"
    assert repr(Dual(2, 1)) == "Dual(value=2.0000, tangent=1.0000)"
