"""Exercise on broadcasting (reference: :func:`dlref.tensors.broadcast_shapes`)."""

from __future__ import annotations

from dlref import tensors
from dlref.practice._cases import bad_input, values_check
from dlref.practice._grader import Check, Mistake, register

PAGE = "topics/tensors.html"


def broadcast_shape_reference(a: tuple, b: tuple) -> tuple:
    """The reference: :func:`dlref.tensors.broadcast_shapes` of two shapes, as a tuple.

    Parameters
    ----------
    a, b : tuple of int
        The two shapes.

    Returns
    -------
    tuple of int
        The shape both broadcast to. Raises ``ValueError`` when they do not broadcast.

    Examples
    --------
    >>> import torch
    >>> from dlref.practice.tensors import broadcast_shape_reference
    >>> broadcast_shape_reference((4, 5, 1, 3), (5, 5, 3))
    (4, 5, 5, 3)
    >>> broadcast_shape_reference((1, 0), (3, 1)) == tuple(torch.broadcast_shapes((1, 0), (3, 1)))
    True
    """
    return tuple(tensors.broadcast_shapes(a, b))


def _left_aligned(a, b):
    n = max(len(a), len(b))
    a, b = tuple(a) + (1,) * (n - len(a)), tuple(b) + (1,) * (n - len(b))
    out = []
    for p, q in zip(a, b, strict=True):
        if p != q and 1 not in (p, q):
            raise ValueError(f"{a} and {b} do not broadcast")
        out.append(q if p == 1 else p)
    return tuple(out)


def _max_of_sizes(a, b):
    n = max(len(a), len(b))
    a, b = (1,) * (n - len(a)) + tuple(a), (1,) * (n - len(b)) + tuple(b)
    return tuple(max(p, q) for p, q in zip(a, b, strict=True))


STUB = r'''
def broadcast_shape(a: tuple, b: tuple) -> tuple:
    r"""The shape that tensors of shapes a and b broadcast to, as torch.broadcast_shapes.

    Align the shapes on the right; a missing leading dimension counts as size 1. In each
    dimension the sizes must be equal or one of them 1; the result takes the other size
    (so 1 and 0 give 0). a, b: tuples of ints. Returns a tuple of ints.
    Raise a ValueError when the shapes do not broadcast.
    """
    raise NotImplementedError
'''

register(
    reference=broadcast_shape_reference,
    stub=STUB,
    summary="the broadcast shape of two shapes, or an error",
    checks=(
        values_check(lambda: [{"a": (3, 1), "b": (3,)}, {"a": (4, 5, 1, 3), "b": (5, 5, 3)}]),
        Check(
            "more shapes",
            lambda: [
                {"a": (3,), "b": (2, 1)},
                {"a": (8, 1, 6, 1), "b": (7, 1, 5)},
                {"a": (2, 3), "b": (2, 3)},
            ],
        ),
        Check(
            "edge: scalars and size 0",
            lambda: [
                {"a": (), "b": (2, 3)},
                {"a": (), "b": ()},
                {"a": (0,), "b": (1,)},
                {"a": (2, 0), "b": (2, 1)},
            ],
        ),
        bad_input(
            "shapes that do not broadcast",
            "sizes 2 and 3 in one dimension",
            lambda: [{"a": (2,), "b": (3,)}, {"a": (4, 5, 1, 3), "b": (2, 5, 3)}],
        ),
    ),
    difficulty="easy",
    page=f"{PAGE}#key-equations",
    mistakes=(
        Mistake(
            "left_aligned",
            _left_aligned,
            "shapes are aligned on the right (the last dimensions first): missing "
            "dimensions are added on the left.",
            f"{PAGE}#key-equations",
        ),
        Mistake(
            "max_of_sizes",
            _max_of_sizes,
            "the size is not the maximum: sizes must be equal or one of them 1, and "
            "1 against 0 gives 0 (an empty tensor stays empty).",
            f"{PAGE}#key-equations",
        ),
    ),
)
