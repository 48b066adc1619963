"""dlref.positional against closed forms: the sinusoidal formula, RoPE as a complex rotation,
scores that depend on the offset only, finite differences."""

import math

import pytest
import torch

from dlref.positional import (
    LearnedPositionalEmbedding,
    RotaryEmbedding,
    apply_rotary,
    sinusoidal_positional_encoding,
)

DT = torch.float64


def test_sinusoidal_matches_the_formula():
    P = sinusoidal_positional_encoding(7, 6, dtype=DT)
    for m in range(7):
        for i in range(3):
            w = 10000 ** (-2 * i / 6)
            assert P[m, 2 * i].item() == pytest.approx(math.sin(m * w), abs=1e-15)
            assert P[m, 2 * i + 1].item() == pytest.approx(math.cos(m * w), abs=1e-15)


def test_sinusoidal_rejects_odd_dim():
    with pytest.raises(ValueError, match="embed_dim must be even"):
        sinusoidal_positional_encoding(4, 5)


def test_rotary_is_multiplication_by_a_complex_exponential():
    """(x_i + i x_{i+D/2}) e^{i m theta_i}: the closed form RoPE is built on."""
    rope = RotaryEmbedding(8, 16, dtype=DT)
    x = torch.randn(2, 5, 8, dtype=DT)
    z = torch.complex(x[..., :4], x[..., 4:])
    theta = 10000 ** (-torch.arange(0, 8, 2, dtype=DT) / 8)
    m = torch.arange(3, 8, dtype=DT).unsqueeze(1)
    rotated = z * torch.polar(torch.ones_like(m * theta), m * theta)
    torch.testing.assert_close(rope(x, offset=3), torch.cat([rotated.real, rotated.imag], -1))


def test_rotary_scores_depend_only_on_the_offset():
    rope = RotaryEmbedding(16, 64, dtype=DT)
    q, k = torch.randn(1, 16, dtype=DT), torch.randn(1, 16, dtype=DT)

    def score(m, n):
        return (rope(q, offset=m) * rope(k, offset=n)).sum().item()

    for m, n in [(0, 3), (5, 2), (10, 10)]:
        for shift in (1, 7, 40):
            assert score(m + shift, n + shift) == pytest.approx(score(m, n), rel=1e-12, abs=1e-12)
    assert score(0, 3) != pytest.approx(score(0, 4))  # but it does depend on the offset


def test_rotary_preserves_norms_and_gradients_match_finite_differences():
    rope = RotaryEmbedding(4, 8, dtype=DT)
    x = torch.randn(3, 4, dtype=DT, requires_grad=True)
    torch.testing.assert_close(rope(x, 2).norm(dim=-1), x.norm(dim=-1))
    from parity import assert_matches_finite_differences

    w = torch.randn(3, 4, dtype=DT)
    (g,) = torch.autograd.grad((rope(x, 2) * w).sum(), x)
    assert_matches_finite_differences(lambda t: (rope(t, 2) * w).sum(), x, g)


def test_apply_rotary_quarter_turn():
    out = apply_rotary(torch.tensor([[1.0, 2.0]]), torch.tensor([[0.0]]), torch.tensor([[1.0]]))
    torch.testing.assert_close(out, torch.tensor([[-2.0, 1.0]]))


def test_positional_errors():
    with pytest.raises(ValueError, match="head_dim must be even"):
        RotaryEmbedding(5, 8)
    with pytest.raises(ValueError, match=r"offset \+ T \(x's length\) must be at most 8, got 9"):
        RotaryEmbedding(4, 8)(torch.randn(3, 4), offset=6)
    with pytest.raises(ValueError, match=r"offset \+ seq_len must be at most 16, got 17"):
        LearnedPositionalEmbedding(16, 4)(2, offset=15)


def test_learned_positions_are_rows_of_the_table():
    pe = LearnedPositionalEmbedding(10, 4)
    torch.testing.assert_close(pe(3, offset=4), pe.weight[4:7])


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (
            lambda: sinusoidal_positional_encoding(-7, 4),
            ValueError,
            "num_positions must be at least 0",
        ),
        (lambda: sinusoidal_positional_encoding(3, 4, base=-1.0), ValueError, "base must be a"),
        (
            lambda: sinusoidal_positional_encoding(3, 4, dtype="float"),
            TypeError,
            "dtype must be None or a floating-point torch.dtype, got 'float'",
        ),
        (
            lambda: apply_rotary(torch.ones(1, 2), None, torch.ones(1, 1)),
            TypeError,
            "cos must be a torch.Tensor, got NoneType",
        ),
        (
            lambda: apply_rotary(torch.ones(1, 2), torch.ones(1, 3), torch.ones(1, 1)),
            ValueError,
            r"cos has shape \(1, 3\), which does not broadcast to \(\.\.\., T, D/2\) = \(1, 1\)",
        ),
        (
            lambda: apply_rotary(torch.ones(1, 3), torch.ones(1, 1), torch.ones(1, 1)),
            ValueError,
            r"D, the last dimension of x, must be even, got 3",
        ),
        (lambda: RotaryEmbedding("3", 8), TypeError, "head_dim must be an int, got str '3'"),
        (lambda: RotaryEmbedding(4, 0), ValueError, "max_seq_len must be at least 1, got 0"),
        (lambda: RotaryEmbedding(4, 8, base=math.nan), ValueError, "base must be a finite"),
        (lambda: LearnedPositionalEmbedding(-1, 8), ValueError, "max_seq_len must be at least 1"),
        (
            lambda: apply_rotary(torch.ones(()), torch.ones(()), torch.ones(())),
            ValueError,
            r"x must have shape \(\.\.\., T, D\)",
        ),
        (lambda: LearnedPositionalEmbedding(4, 8)(-1), ValueError, "seq_len must be at least 0"),
        (lambda: RotaryEmbedding(4, 8)(torch.ones(2, 6)), ValueError, "x must have shape"),
    ],
)
def test_errors_name_the_argument(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_old_home_still_imports():
    from dlref import attention, positional

    for name in positional.__all__:
        assert getattr(attention, name) is getattr(positional, name)
        assert name in attention.__all__
