"""Exercise on compute-optimal scaling: Chinchilla's optimal model size and data (Hoffmann et
al., 2022, approach 3). The reference is the closed form, written here; ``tests/test_practice.py``
checks it against a numerical minimisation of the loss along the compute budget."""

from __future__ import annotations

import torch
from torch import Tensor

from dlref.practice._cases import DT, bad_input, shape_check, tensor, values_check
from dlref.practice._grader import Check, Mistake, register

PAGE = "topics/scaling-laws.html"
CHINCHILLA = f"{PAGE}#chinchilla-the-compute-optimal-model"

#: The fitted loss L(N, D) = E + A / N^alpha + B / D^beta (Hoffmann et al., 2022, eq. 10).
A, B, ALPHA, BETA, E = 406.4, 410.7, 0.34, 0.28, 1.69


def _optimal(C, how=""):
    C = torch.as_tensor(C, dtype=DT)
    if (C <= 0).any() or not torch.isfinite(C).all():
        raise ValueError("C (training FLOPs) must be positive and finite")
    if how == "tokens_20_per_param":
        N = (C / 120).sqrt()  # C = 6 N D with D = 20 N
        return {"N": N, "D": 20 * N}
    a, b = BETA / (ALPHA + BETA), ALPHA / (ALPHA + BETA)  # N ~ C^a, D ~ C^b
    if how == "exponents_swapped":
        a, b = b, a
    G = (ALPHA * A / (BETA * B)) ** (1 / (ALPHA + BETA))
    if how == "G_inverted":
        G = 1 / G
    flops_per_token_param = 1.0 if how == "no_factor_6" else 6.0
    N = G * (C / flops_per_token_param) ** a  # N_opt = G (C/6)^a
    D = (C / flops_per_token_param) ** b / G  # D_opt = G^-1 (C/6)^b
    return {"N": N, "D": D}


def chinchilla_optimal_reference(C: Tensor) -> dict:
    r"""The reference: :math:`N = G (C/6)^{\beta/(\alpha+\beta)}`, :math:`D = C / (6 N)`.

    With the fitted constants of the module, ``A``, ``B``, ``ALPHA``, ``BETA`` (Hoffmann et al.,
    2022, eq. 10) and :math:`G = (\alpha A / (\beta B))^{1/(\alpha+\beta)}`.

    Parameters
    ----------
    C : Tensor
        Training FLOPs, positive, any shape.

    Returns
    -------
    dict
        ``"N"`` (parameters) and ``"D"`` (training tokens), float64, shaped like ``C``.

    Examples
    --------
    >>> import torch
    >>> from dlref.practice.scaling import chinchilla_optimal_reference
    >>> C = torch.tensor([1e21, 5.76e23], dtype=torch.float64)  # the second: Gopher's budget
    >>> out = chinchilla_optimal_reference(C)
    >>> torch.allclose(6 * out["N"] * out["D"], C)  # on the budget
    True
    >>> (out["N"] / 1e9).round(decimals=1)  # parameters, in billions
    tensor([ 1.8000, 32.2000], dtype=torch.float64)
    >>> (out["D"] / out["N"]).round()  # tokens per parameter grow with C: not a fixed 20
    tensor([50., 93.], dtype=torch.float64)
    """
    return _optimal(C)


def _v(how):
    def fn(C):
        return _optimal(C, how)

    return fn


STUB = r'''
import torch
from torch import Tensor

A, B, ALPHA, BETA, E = 406.4, 410.7, 0.34, 0.28, 1.69


def chinchilla_optimal(C: Tensor) -> dict:
    r"""Compute-optimal parameters N and training tokens D for a budget of C FLOPs.

    Minimise L(N, D) = E + A / N^ALPHA + B / D^BETA subject to C = 6 N D (Hoffmann et al.,
    2022, approach 3). The closed form:

        G = (ALPHA A / (BETA B))^(1 / (ALPHA + BETA))
        N_opt = G (C / 6)^(BETA / (ALPHA + BETA)),   D_opt = (C / 6)^(ALPHA / (ALPHA + BETA)) / G

    C: float64 tensor of any shape. Return a dict with "N" and "D" (the shape of C).
    Raise a ValueError for C <= 0.
    """
    raise NotImplementedError
'''

register(
    reference=chinchilla_optimal_reference,
    stub=STUB,
    summary="Chinchilla's compute-optimal N and D in closed form",
    checks=(
        shape_check(lambda: [{"C": tensor(1e21)}]),
        values_check(lambda: [{"C": tensor([1e21, 5.76e23])}]),
        Check(
            "a batch of budgets",
            lambda: [{"C": 10 ** torch.linspace(18, 26, 12, dtype=DT).reshape(3, 4)}],
        ),
        Check(
            "edge: tiny budget, empty batch",
            lambda: [{"C": tensor([6.0])}, {"C": torch.zeros(0, dtype=DT)}],
        ),
        bad_input("C <= 0", "a negative budget", lambda: [{"C": tensor([1e21, -1.0])}]),
    ),
    difficulty="easy",
    page=CHINCHILLA,
    outputs=("N", "D"),
    mistakes=(
        Mistake(
            "exponents_swapped",
            _v("exponents_swapped"),
            "N grows as C^(beta/(alpha+beta)) and D as C^(alpha/(alpha+beta)): you swapped "
            "the exponents.",
            CHINCHILLA,
        ),
        Mistake(
            "no_factor_6",
            _v("no_factor_6"),
            "the budget is C = 6 N D (6 FLOPs per parameter per token, forward and "
            "backward): use C / 6, not C.",
            CHINCHILLA,
        ),
        Mistake(
            "tokens_20_per_param",
            _v("tokens_20_per_param"),
            "D = 20 N is Chinchilla's own ratio (70B parameters, 1.4T tokens) and about what "
            "approaches 1 and 2 give; the fitted law of approach 3, as published, gives a "
            "ratio that grows with C (about 50 at C = 1e21).",
            CHINCHILLA,
        ),
        Mistake(
            "G_inverted",
            _v("G_inverted"),
            "G = (alpha A / (beta B))^(1/(alpha+beta)) multiplies N and divides D; you "
            "inverted it.",
            CHINCHILLA,
        ),
    ),
)
