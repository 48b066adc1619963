r"""Scaling laws: power laws, the Chinchilla fit and its compute-optimal model, training FLOPs.

Everything here is arithmetic on floats (and NumPy arrays where a function says so): the formulas
a reader evaluates on paper, stated once with their source.

- Power laws :math:`y = a x^{-b}` and :math:`y = a x^{-b} + c`, fitted by least squares.
- The Chinchilla fit :math:`L(N, D) = E + A/N^\alpha + B/D^\beta` (Hoffmann et al., 2022) and its
  compute-optimal :math:`(N, D)` in closed form under :math:`C = 6ND`.
- FLOPs: :math:`6ND` for a training run, and the per-token count of Kaplan et al. (2020) with
  the attention term.

Parameter counts, memory (model states, ZeRO, activations, the KV cache) and the roofline moved
to ``dlref.llm_systems``; their names still import from here.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from dlref._checks import (
    check_bool,
    check_int,
    check_positive_array,
    check_positive_finite,
    check_real,
    check_shape,
)
from dlref.llm_systems import (  # re-export: these names lived here
    ModelStateBytes,
    activation_bytes_per_layer,
    kv_cache_bytes,
    matmul_intensity,
    model_state_bytes,
    roofline,
    transformer_parameters,
    zero_memory,
)

__all__ = [
    "PowerLaw",
    "power_law",
    "fit_power_law",
    "chinchilla_loss",
    "chinchilla_optimal",
    "training_flops",
    "flops_per_token",
    # re-exported from dlref.llm_systems
    "transformer_parameters",
    "ModelStateBytes",
    "model_state_bytes",
    "zero_memory",
    "activation_bytes_per_layer",
    "kv_cache_bytes",
    "matmul_intensity",
    "roofline",
]

# Hoffmann et al. (2022), "Training Compute-Optimal Large Language Models", eq. (10): the fit of
# their approach 3, L(N, D) = E + A / N^alpha + B / D^beta, N parameters, D training tokens.
CHINCHILLA_E = 1.69
CHINCHILLA_A = 406.4
CHINCHILLA_B = 410.7
CHINCHILLA_ALPHA = 0.34
CHINCHILLA_BETA = 0.28


# ---------------------------------------------------------------------------------------------
# Power laws
# ---------------------------------------------------------------------------------------------


class PowerLaw(NamedTuple):
    r"""The parameters of :math:`y = a\,x^{-b} + c` (``c = 0`` for a pure power law).

    Returned by :func:`fit_power_law`; unpacks into the arguments of :func:`power_law`.

    Examples
    --------
    >>> from dlref.scaling import PowerLaw, power_law
    >>> law = PowerLaw(a=406.4, b=0.34, c=1.69)  # Hoffmann et al.'s model-size term
    >>> round(power_law(1e9, *law), 3)  # the loss term of a 1e9-parameter model, plus 1.69
    2.044
    """

    a: float
    b: float
    c: float = 0.0


def power_law(x, a: float, b: float, c: float = 0.0):
    r"""Evaluate a power law with an optional irreducible term.

    .. math:: y = a\,x^{-b} + c

    On log-log axes (and with :math:`c = 0`) it is the straight line
    :math:`\log y = \log a - b \log x`: the coefficient :math:`a` moves the line up or down,
    the exponent :math:`b` alone sets its slope :math:`-b`.

    Parameters
    ----------
    x : float or numpy.ndarray
        Positive inputs (model size, data, compute), any shape.
    a, b : float
        Coefficient and exponent.
    c : float, optional
        Irreducible term, the value approached as :math:`x \to \infty`.

    Returns
    -------
    float or numpy.ndarray
        :math:`y`, the shape of ``x``.

    Examples
    --------
    >>> from dlref.scaling import power_law
    >>> round(power_law(1e3, a=2.57, b=0.048), 4)
    1.8447
    """
    x = check_positive_array("x", x)
    for name, v in dict(a=a, b=b, c=c).items():
        check_real(name, v)
    # y = a x^-b + c
    return a * x ** (-b) + c


def _fit_log_linear(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Least squares of log y = log a - b log x: returns (a, b)."""
    A = np.stack([np.ones_like(x), -np.log(x)], axis=1)  # (n, 2): columns for log a and b
    (log_a, b), *_ = np.linalg.lstsq(A, np.log(y), rcond=None)
    return float(np.exp(log_a)), float(b)


def _fit_a_c(x: np.ndarray, y: np.ndarray, b: float) -> tuple[float, float, float]:
    """For a fixed b, y = a x^-b + c is linear in (a, c): relative least squares, and its cost."""
    A = np.stack([x ** (-b), np.ones_like(x)], axis=1) / y[:, None]  # rows divided by y_i
    (a, c), *_ = np.linalg.lstsq(A, np.ones_like(y), rcond=None)
    r = A @ np.array([a, c]) - 1.0  # relative residuals (y_hat - y) / y
    return float(a), float(c), float(r @ r)


def fit_power_law(x, y, irreducible: bool = False) -> PowerLaw:
    r"""Fit :math:`y = a\,x^{-b}` (or :math:`y = a\,x^{-b} + c`) by least squares.

    Without the irreducible term the fit is a straight line in log-log space:

    .. math:: \min_{a, b} \sum_i \bigl(\log y_i - \log a + b \log x_i\bigr)^2

    With it, the fit minimises the relative residuals
    :math:`\sum_i \bigl((a x_i^{-b} + c - y_i)/y_i\bigr)^2`: for each :math:`b` the best
    :math:`(a, c)` is a linear least-squares problem, and :math:`b` is found by a grid over
    :math:`[10^{-3}, 10]` refined by golden-section search. Without noise both recover the
    parameters exactly (to rounding).

    Parameters
    ----------
    x, y : numpy.ndarray or list
        Positive values, shape ``(n,)``; :math:`n \ge 2` (:math:`n \ge 3` with ``irreducible``).
    irreducible : bool, optional
        Also fit the constant :math:`c` (the loss of a perfect model: the entropy of the data).

    Returns
    -------
    PowerLaw
        ``(a, b, c)``; ``c = 0.0`` when ``irreducible`` is False.

    Examples
    --------
    >>> import numpy as np
    >>> from dlref.scaling import fit_power_law
    >>> N = np.array([1e6, 1e7, 1e8, 1e9])
    >>> fit = fit_power_law(N, 406.4 * N**-0.34)
    >>> round(fit.a, 6), round(fit.b, 6)
    (406.4, 0.34)
    >>> fit = fit_power_law(N, 406.4 * N**-0.34 + 1.69, irreducible=True)
    >>> round(fit.a, 4), round(fit.b, 6), round(fit.c, 6)
    (406.4, 0.34, 1.69)
    """
    x = np.asarray(check_positive_array("x", x))  # a number becomes a 0-d array
    check_shape("x", x, (None,), "(n,)")
    y = np.asarray(check_positive_array("y", y))
    check_shape("y", y, x.shape, "(n,), the shape of x")
    irreducible = check_bool("irreducible", irreducible)
    need = 3 if irreducible else 2
    if x.size < need or np.unique(x).size < need:
        raise ValueError(f"x must hold at least {need} distinct values for this fit, got {x.size}")
    if not irreducible:
        a, b = _fit_log_linear(x, y)
        return PowerLaw(a, b, 0.0)
    # Profile over b: coarse grid in log b, then golden section around the best grid point.
    grid = np.geomspace(1e-3, 10.0, 241)
    costs = [_fit_a_c(x, y, b)[2] for b in grid]
    i = int(np.argmin(costs))
    lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, grid.size - 1)]
    inv_phi = (math.sqrt(5.0) - 1.0) / 2.0
    for _ in range(200):
        if hi - lo < 1e-14 * hi:
            break
        m1, m2 = hi - inv_phi * (hi - lo), lo + inv_phi * (hi - lo)
        if _fit_a_c(x, y, m1)[2] < _fit_a_c(x, y, m2)[2]:
            hi = m2
        else:
            lo = m1
    b = 0.5 * (lo + hi)
    a, c, _ = _fit_a_c(x, y, b)
    return PowerLaw(a, float(b), c)


# ---------------------------------------------------------------------------------------------
# Chinchilla
# ---------------------------------------------------------------------------------------------


def chinchilla_loss(
    N,
    D,
    E: float = CHINCHILLA_E,
    A: float = CHINCHILLA_A,
    B: float = CHINCHILLA_B,
    alpha: float = CHINCHILLA_ALPHA,
    beta: float = CHINCHILLA_BETA,
):
    r"""Predicted loss of a model with ``N`` parameters trained on ``D`` tokens (Chinchilla fit).

    .. math:: L(N, D) = E + \frac{A}{N^{\alpha}} + \frac{B}{D^{\beta}}

    with the published approach-3 fit :math:`E = 1.69,\ A = 406.4,\ B = 410.7,\ \alpha = 0.34,
    \ \beta = 0.28` (Hoffmann et al., 2022, eq. 10). :math:`E` is the irreducible loss; the two
    power laws are the penalties for a finite model and for finite data.

    Parameters
    ----------
    N, D : float or numpy.ndarray
        Parameters and training tokens, positive; broadcast together.
    E, A, B, alpha, beta : float, optional
        The fit's constants.

    Returns
    -------
    float or numpy.ndarray
        Loss in nats per token.

    Examples
    --------
    >>> from dlref.scaling import chinchilla_loss
    >>> round(chinchilla_loss(70e9, 1.4e12), 4)  # Chinchilla: 70B parameters, 1.4T tokens
    1.9366
    >>> round(chinchilla_loss(280e9, 300e9), 4)  # Gopher: 280B parameters, 300B tokens
    1.9933
    """
    N, D = check_positive_array("N", N), check_positive_array("D", D)
    for name, v in dict(E=E, A=A, B=B, alpha=alpha, beta=beta).items():
        check_real(name, v)
    # L(N, D) = E + A / N^alpha + B / D^beta
    return E + A / N**alpha + B / D**beta


def chinchilla_optimal(
    C,
    A: float = CHINCHILLA_A,
    B: float = CHINCHILLA_B,
    alpha: float = CHINCHILLA_ALPHA,
    beta: float = CHINCHILLA_BETA,
):
    r"""Compute-optimal parameters and tokens for a budget of ``C`` FLOPs, in closed form.

    Minimising :math:`L(N, D)` subject to :math:`C = 6ND` (Hoffmann et al., 2022, eq. 4 and
    appendix D.2):

    .. math::

        N_{\mathrm{opt}} = G \left(\frac{C}{6}\right)^{\frac{\beta}{\alpha+\beta}},\qquad
        D_{\mathrm{opt}} = G^{-1} \left(\frac{C}{6}\right)^{\frac{\alpha}{\alpha+\beta}},\qquad
        G = \left(\frac{\alpha A}{\beta B}\right)^{\frac{1}{\alpha+\beta}}

    Setting :math:`dL/dN = 0` along :math:`D = C/(6N)` gives
    :math:`\alpha A N^{-\alpha} = \beta B D^{-\beta}`, whose solution is the above.
    :math:`E` does not move the optimum, so it is not an argument.

    Parameters
    ----------
    C : float or numpy.ndarray
        Training compute in FLOPs, positive.
    A, B, alpha, beta : float, optional
        The fit's constants (defaults: the published Chinchilla fit).

    Returns
    -------
    tuple
        ``(N_opt, D_opt)``, floats or arrays shaped like ``C``; ``6 * N_opt * D_opt == C``.

    Examples
    --------
    >>> from dlref.scaling import chinchilla_optimal
    >>> N, D = chinchilla_optimal(5.76e23)  # the Gopher / Chinchilla budget
    >>> f"N = {N:.3g}, D = {D:.3g}, D/N = {D / N:.1f}"
    'N = 3.22e+10, D = 2.98e+12, D/N = 92.6'
    """
    C = check_positive_array("C", C)
    for name, v in dict(A=A, B=B, alpha=alpha, beta=beta).items():
        check_positive_finite(name, v)  # an optimum needs positive constants
    # G = (alpha A / (beta B))^(1 / (alpha + beta))
    G = (alpha * A / (beta * B)) ** (1.0 / (alpha + beta))
    N_opt = G * (C / 6.0) ** (beta / (alpha + beta))  # N ∝ C^a, a = β/(α+β)
    D_opt = (C / 6.0) ** (alpha / (alpha + beta)) / G  # D ∝ C^b, b = α/(α+β)
    return N_opt, D_opt


# ---------------------------------------------------------------------------------------------
# FLOPs and parameters
# ---------------------------------------------------------------------------------------------


def training_flops(N, D):
    r"""FLOPs to train a dense model with ``N`` parameters on ``D`` tokens.

    .. math:: C \approx 6 N D

    Per token, each parameter takes part in one multiply-add (2 FLOPs) in the forward pass and
    two in the backward pass (the gradients with respect to the input and to the weight): 6 FLOPs.
    The attention term :math:`6\,n_{\text{layer}} n_{\text{ctx}} d` per token is left out (see
    :func:`flops_per_token`).

    Parameters
    ----------
    N, D : float or numpy.ndarray
        Parameters and tokens, positive.

    Returns
    -------
    float or numpy.ndarray
        FLOPs.

    Examples
    --------
    >>> from dlref.scaling import training_flops
    >>> f"{training_flops(70e9, 1.4e12):.3g}"  # Chinchilla
    '5.88e+23'
    """
    N, D = check_positive_array("N", N), check_positive_array("D", D)
    # C = 6 N D
    return 6.0 * N * D


def flops_per_token(
    n_layer: int,
    d_model: int,
    n_ctx: int,
    d_attn: int | None = None,
    d_ff: int | None = None,
    training: bool = True,
    causal: bool = True,
) -> int:
    r"""FLOPs per token of a decoder-only transformer, with the attention term (Kaplan et al.).

    Kaplan et al. (2020), table 1, count the non-embedding parameters and the forward FLOPs per
    token as

    .. math::

        N = 2\,d_{\text{model}}\,n_{\text{layer}}\,(2 d_{\text{attn}} + d_{\text{ff}}),\qquad
        C_{\text{forward}} = 2N + 2\,n_{\text{layer}}\,n_{\text{ctx}}\,d_{\text{attn}}

    and a training step costs three forward passes: :math:`C = 6N + 6\,n_{\text{layer}}
    n_{\text{ctx}} d_{\text{attn}}`. The second term is attention: the scores :math:`QK^\top` and
    the weighted sum of values cost :math:`2 n_{\text{ctx}} d_{\text{attn}}` each per token, and
    a causal mask halves the work on average. With ``causal=False`` (a dense kernel computing the
    whole square) the term is :math:`4\,n_{\text{layer}} n_{\text{ctx}} d_{\text{attn}}`.
    Embeddings and the output projection are not counted, as in Kaplan et al.

    Parameters
    ----------
    n_layer, d_model, n_ctx : int
        Layers, width, context length.
    d_attn, d_ff : int, optional
        Attention and feed-forward widths; default ``d_model`` and ``4 * d_model``.
    training : bool, optional
        Forward and backward (``3 ×`` forward) if True, forward only if False.
    causal : bool, optional
        Count the causal half of the attention square (Kaplan et al.'s convention).

    Returns
    -------
    int
        FLOPs per token.

    Examples
    --------
    GPT-2 XL's shape at its 1024-token context, forward only:

    >>> from dlref.scaling import flops_per_token
    >>> flops_per_token(n_layer=48, d_model=1600, n_ctx=1024, training=False)  # GPT-2 XL shape
    3106406400
    >>> 2 * 12 * 48 * 1600**2  # 2N alone: attention adds 5%
    2949120000
    """
    n_layer = check_int("n_layer", n_layer)
    d_model = check_int("d_model", d_model)
    n_ctx = check_int("n_ctx", n_ctx)
    d_attn = check_int("d_attn", d_model if d_attn is None else d_attn)
    d_ff = check_int("d_ff", 4 * d_model if d_ff is None else d_ff)
    training, causal = check_bool("training", training), check_bool("causal", causal)
    # N = 2 d_model n_layer (2 d_attn + d_ff), the non-embedding parameters
    N = 2 * d_model * n_layer * (2 * d_attn + d_ff)
    # 2 n_layer n_ctx d_attn (causal) or twice that: QK^T and AV per token
    attention = (2 if causal else 4) * n_layer * n_ctx * d_attn
    # C_forward = 2N + attention; a training step is three forward passes
    forward = 2 * N + attention
    return 3 * forward if training else forward
