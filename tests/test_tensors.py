"""dlref.tensors against torch: torch.broadcast_shapes, torch.matmul's shapes, FlopCounterMode and
a counting loop. These functions take shapes, not tensors, so there are no values or gradients
for the parity harness to compare: the references are torch's own shape rules and counts."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.flop_counter import FlopCounterMode

from dlref.tensors import broadcast_shapes, matmul_flops, matmul_shape

# Sizes 0-3 with 1 drawn often: broadcasting succeeds often enough, and fails often enough.
sizes = st.sampled_from([0, 1, 1, 1, 2, 3])
shapes = st.lists(sizes, min_size=0, max_size=4).map(tuple)


def torch_matmul_shape(a, b, device):
    """The reference: the shape of a real matmul on operands of these shapes."""
    return torch.matmul(torch.empty(a, device=device), torch.empty(b, device=device)).shape


def counted_flops(a, b):
    """FLOPs of torch.matmul on meta tensors of shapes a and b, as FlopCounterMode counts them."""
    with FlopCounterMode(display=False) as counter:
        torch.matmul(torch.empty(a, device="meta"), torch.empty(b, device="meta"))
    return counter.get_total_flops()


# ------------------------------------------------------------------------- broadcast_shapes


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(shapes, shapes.map(list), sizes), min_size=0, max_size=4))
def test_broadcast_shapes_matches_torch(args):
    """Whenever torch succeeds ours gives the same torch.Size; whenever it raises, ours does."""
    try:
        ref = torch.broadcast_shapes(*args)
    except RuntimeError:
        with pytest.raises(ValueError, match="do not broadcast: at dim -"):
            broadcast_shapes(*args)
    else:
        ours = broadcast_shapes(*args)
        assert type(ours) is torch.Size
        assert ours == ref


@settings(max_examples=100, deadline=None)
@given(st.lists(shapes, min_size=1, max_size=4))
def test_broadcast_shapes_is_the_shape_of_a_broadcast_sum(args):
    try:
        total = sum((torch.zeros(s) for s in args[1:]), torch.zeros(args[0]))
    except RuntimeError:
        with pytest.raises(ValueError):
            broadcast_shapes(*args)
    else:
        assert broadcast_shapes(*args) == total.shape


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((), ()),
        (((),), ()),
        ((3,), (3,)),
        ((3, (2, 1)), (2, 3)),
        ((torch.Size([2, 1]), [3]), (2, 3)),
        (((0,), (1,)), (0,)),
        (((8, 1, 6, 1), (7, 1, 5)), (8, 7, 6, 5)),  # NumPy's broadcasting example
        (((4, 5, 1, 3), (1, 5, 3)), (4, 5, 5, 3)),  # the flashcard on broadcasting, p = 1
        (((4, 5, 1, 3), (5, 5, 3)), (4, 5, 5, 3)),  # the flashcard on broadcasting, p = 5
    ],
)
def test_broadcast_shapes_examples(args, expected):
    assert broadcast_shapes(*args) == torch.broadcast_shapes(*args) == torch.Size(expected)


@pytest.mark.parametrize("p", [2, 3, 4, 6])
def test_flashcard_broadcast_other_p_raise_in_torch_and_here(p):
    with pytest.raises(RuntimeError):
        torch.ones(4, 5, 1, 3) + torch.ones(p, 5, 3)
    msg = (
        rf"shapes\[0\] = \(4, 5, 1, 3\) and shapes\[1\] = \({p}, 5, 3\) do not broadcast: "
        rf"at dim -3 \(dim 1 of shapes\[0\], dim 0 of shapes\[1\]\) the sizes are 5 and {p}, "
        r"and sizes must be equal or one of them 1"
    )
    with pytest.raises(ValueError, match=msg):
        broadcast_shapes((4, 5, 1, 3), (p, 5, 3))


def test_broadcast_error_names_the_shape_that_set_the_size():
    """(1, 3) sets nothing, (2, 1) sets dim -2 to 2; the clash at dim -2 is with shapes[1]."""
    with pytest.raises(ValueError, match=r"shapes\[1\] = \(2, 1\) and shapes\[2\] = \(4, 1\)"):
        broadcast_shapes((1, 3), (2, 1), (4, 1))


@pytest.mark.parametrize(
    ("args", "error", "match"),
    [
        (((-1,),), ValueError, r"shapes\[0\] = \(-1,\) has a negative size"),
        ((-2,), ValueError, r"shapes\[0\] = \(-2,\) has a negative size"),
        (((2,), (2.0,)), TypeError, r"shapes\[1\] must hold ints, got float 2.0 at position 0"),
        ((None,), TypeError, r"shapes\[0\] must be an int or a sequence of ints, got NoneType"),
        (("ab",), TypeError, r"shapes\[0\] must be an int or a sequence of ints, got str"),
        ((2.5,), TypeError, r"shapes\[0\] must be an int or a sequence of ints, got float 2.5"),
        (
            (torch.ones(2, 3),),
            TypeError,
            r"shapes\[0\] must be a shape .* got a Tensor of shape \(2, 3\): pass its .shape",
        ),
    ],
)
def test_broadcast_shapes_bad_input(args, error, match):
    with pytest.raises(error, match=match):
        broadcast_shapes(*args)


# ------------------------------------------------------------------------- matmul_shape


@st.composite
def matmul_operands(draw):
    """Shapes of 0 to 4 dims; half the time b's inner dim is made to match a's last."""
    a, b = draw(shapes), draw(shapes)
    if draw(st.booleans()) and a and b:
        k = -2 if len(b) >= 2 else 0
        b = list(b)
        b[k] = a[-1]
        b = tuple(b)
    return a, b


@settings(max_examples=400, deadline=None)
@given(matmul_operands(), st.sampled_from(["cpu", "meta"]))
def test_matmul_shape_matches_torch(operands, device):
    a, b = operands
    try:
        ref = torch_matmul_shape(a, b, device)
    except RuntimeError:
        with pytest.raises(ValueError, match=r"a has shape \(.*\) and b has shape \(.*\): "):
            matmul_shape(a, b)
    else:
        ours = matmul_shape(a, b)
        assert type(ours) is torch.Size
        assert ours == ref


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ((3,), (3,), ()),  # dot product
        ((2, 3), (3,), (2,)),  # matrix @ vector: (m,), not (m, 1)
        ((2, 3), (3, 1), (2, 1)),  # (m x n)(n x 1) -> (m x 1)
        ((3,), (3, 4), (4,)),
        ((5, 2, 3), (3,), (5, 2)),
        ((3,), (5, 3, 4), (5, 4)),
        ((7, 2, 3), (3, 4), (7, 2, 4)),
        ((2, 1, 4, 3), (5, 3, 6), (2, 5, 4, 6)),  # batch (2, 1) and (5,) broadcast to (2, 5)
        ((6, 2, 3), (6, 3, 4), (6, 2, 4)),
    ],
)
def test_matmul_shape_examples(a, b, expected):
    assert matmul_shape(a, b) == torch_matmul_shape(a, b, "cpu") == torch.Size(expected)


@pytest.mark.parametrize(
    ("a", "b", "error", "match"),
    [
        (
            (),
            (3,),
            ValueError,
            r"a has shape \(\) and b has shape \(3,\): matmul needs operands of at least 1 "
            r"dimension, but a is 0-d",
        ),
        ((3,), (), ValueError, r"at least 1 dimension, but b is 0-d"),
        ((), (), ValueError, r"at least 1 dimension, but both are 0-d"),
        (
            (2, 3),
            (4, 5),
            ValueError,
            r"a has shape \(2, 3\) and b has shape \(4, 5\): the inner dimensions must be equal, "
            r"but a\[-1\] = 3 and b\[-2\] = 4",
        ),
        (
            (2, 3),
            (5,),
            ValueError,
            r"a has shape \(2, 3\) and b has shape \(5,\): .* a\[-1\] = 3 and b\[0\] = 5",
        ),
        ((3,), (4,), ValueError, r"a\[-1\] = 3 and b\[0\] = 4"),
        (
            (5, 2, 3),
            (4, 3, 2),
            ValueError,
            r"a has shape \(5, 2, 3\) and b has shape \(4, 3, 2\): the batch dimensions "
            r"a\[:-2\] = \(5,\) and b\[:-2\] = \(4,\) do not broadcast: at dim 0 of a and dim 0 "
            r"of b the sizes are 5 and 4, and sizes must be equal or one of them 1",
        ),
        (
            (2, 5, 2, 3),
            (4, 3, 2),
            ValueError,
            r"at dim 1 of a and dim 0 of b the sizes are 5 and 4",
        ),
        (3, (3,), TypeError, r"a must be a shape .* got the int 3: write \(3,\) for a 1-D"),
        ((3,), [3.0], TypeError, r"b must hold ints, got float 3.0 at position 0"),
        ((3,), (-3,), ValueError, r"b = \(-3,\) has a negative size"),
        (
            torch.ones(2, 3),
            (3,),
            TypeError,
            r"a must be a shape .* got a Tensor of shape \(2, 3\): pass its .shape",
        ),
    ],
)
def test_matmul_shape_bad_input(a, b, error, match):
    with pytest.raises(error, match=match):
        matmul_shape(a, b)
    with pytest.raises(error, match=match):
        matmul_flops(a, b)


def test_flashcard_transpose_of_3d_raises_and_mT_works():
    X, Y = torch.ones(2, 3, 4), torch.ones(2, 5, 4)  # (B, m, d), (B, n, d)
    with pytest.raises(RuntimeError, match=r"t\(\) expects a tensor with <= 2 dimensions"):
        X @ Y.t()
    assert (X @ Y.mT).shape == (X @ Y.transpose(-2, -1)).shape == matmul_shape(X.shape, Y.mT.shape)
    assert matmul_shape(X.shape, Y.mT.shape) == (2, 3, 5)


# ------------------------------------------------------------------------- matmul_flops

# Cases FlopCounterMode counts directly: torch.matmul lowers them to aten.mm or aten.bmm.
COUNTED = [
    ((2, 3), (3, 4)),
    ((64, 128), (128, 32)),
    ((3,), (3, 4)),  # 1-D @ 2-D
    ((3,), (5, 3, 4)),  # 1-D @ 3-D
    ((7, 2, 3), (3, 4)),  # 3-D @ 2-D, folded into one mm
    ((5, 2, 3), (5, 3, 4)),  # batched
    ((1, 2, 3), (5, 3, 4)),  # batch broadcast
    ((2, 1, 8, 16), (3, 16, 4)),  # 4-D batch broadcast
    ((32, 128, 64), (32, 64, 128)),  # (B, m, d) @ (B, d, n)
    ((0, 3), (3, 4)),  # empty output: 0 FLOPs
]


@pytest.mark.parametrize(("a", "b"), COUNTED)
def test_matmul_flops_matches_flop_counter(a, b):
    assert matmul_flops(a, b) == counted_flops(a, b)


@pytest.mark.parametrize(
    ("a", "b"), [((5,), (5,)), ((2, 5), (5,)), ((3, 2, 5), (5,)), ((1000, 512), (512,))]
)
def test_matmul_flops_with_1d_b_matches_flop_counter_of_the_same_product_as_mm(a, b):
    """torch runs these as aten.dot / aten.mv, for which FlopCounterMode has no formula (it counts
    0, see below); the same product with b as a (d, 1) matrix (and a 1-D a as (1, d)) is counted."""
    a2 = (1, *a) if len(a) == 1 else a
    assert matmul_flops(a, b) == counted_flops(a2, (*b, 1))


@pytest.mark.parametrize(("a", "b"), [((5,), (5,)), ((2, 5), (5,))])
def test_flop_counter_counts_nothing_for_dot_and_mv(a, b):
    """Pins the torch gap that the page mentions; if this fails, torch now counts dot and mv,
    the test above can compare directly, and the page's sentence should change."""
    assert counted_flops(a, b) == 0 < matmul_flops(a, b)


def loop_matmul_counting(x, y):
    """(B, m, d) @ (B, d, n) by three nested loops over Python floats, counting every multiply
    and every add: the trusted count."""
    B, m, d = len(x), len(x[0]), len(x[0][0])
    n = len(y[0][0])
    multiplies = adds = 0
    z = [[[0.0] * n for _ in range(m)] for _ in range(B)]
    for b in range(B):
        for i in range(m):
            for j in range(n):
                acc = x[b][i][0] * y[b][0][j]
                multiplies += 1
                for k in range(1, d):
                    acc = acc + x[b][i][k] * y[b][k][j]
                    multiplies += 1
                    adds += 1
                z[b][i][j] = acc
    return z, multiplies, adds


@pytest.mark.parametrize(("B", "m", "d", "n"), [(1, 1, 1, 1), (3, 4, 5, 6), (2, 7, 1, 3)])
def test_matmul_flops_against_a_counting_loop_and_the_flop_counter(B, m, d, n):
    """2 B m n d = multiplies + adds + B m n: B m n d multiplies, B m n (d - 1) adds, counted by
    a plain loop (whose product equals torch's), and the number FlopCounterMode reports."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(B, m, d, dtype=torch.float64, generator=g)
    y = torch.randn(B, d, n, dtype=torch.float64, generator=g)
    z, multiplies, adds = loop_matmul_counting(x.tolist(), y.tolist())
    torch.testing.assert_close(torch.tensor(z, dtype=torch.float64), x @ y)
    assert matmul_flops(x.shape, y.shape) == counted_flops(x.shape, y.shape)
    assert matmul_flops(x.shape, y.shape) == 2 * multiplies == multiplies + adds + B * m * n


@settings(max_examples=200, deadline=None)
@given(matmul_operands())
def test_matmul_flops_is_twice_outputs_times_d_and_matches_counter(operands):
    a, b = operands
    try:
        out = torch_matmul_shape(a, b, "meta")
    except RuntimeError:
        with pytest.raises(ValueError):
            matmul_flops(a, b)
        return
    flops = matmul_flops(a, b)
    assert flops == 2 * math.prod(out) * a[-1]
    a2 = (1, *a) if len(a) == 1 else a  # the same product with 1-D operands as matrices,
    b2 = (*b, 1) if len(b) == 1 else b  # which FlopCounterMode counts (it skips dot and mv)
    assert flops == counted_flops(a2, b2)
