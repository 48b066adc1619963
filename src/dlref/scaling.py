r"""Scaling laws and the arithmetic of training large models: power laws, Chinchilla, FLOPs, memory.

Everything here is arithmetic on floats (and NumPy arrays where a function says so): the formulas
a reader evaluates on paper, stated once with their source.

- Power laws :math:`y = a x^{-b}` and :math:`y = a x^{-b} + c`, fitted by least squares.
- The Chinchilla fit :math:`L(N, D) = E + A/N^\alpha + B/D^\beta` (Hoffmann et al., 2022) and its
  compute-optimal :math:`(N, D)` in closed form under :math:`C = 6ND`.
- FLOPs: :math:`6ND` for a training run, and the per-token count of Kaplan et al. (2020) with
  the attention term.
- Parameters of a decoder-only transformer (GPT-2 and Llama layouts).
- Memory: mixed-precision Adam's :math:`2 + 2 + 12` bytes per parameter, ZeRO stages 0-3
  (Rajbhandari et al., 2020), activations per layer (Korthikanti et al., 2022), the KV cache,
  and the arithmetic intensity of a matmul against a roofline.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from torch import Tensor

from dlref._checks import check_index, check_int, is_real_number

__all__ = [
    "PowerLaw",
    "power_law",
    "fit_power_law",
    "chinchilla_loss",
    "chinchilla_optimal",
    "training_flops",
    "flops_per_token",
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
# Helpers: checks that name the argument.
# ---------------------------------------------------------------------------------------------


def _check_on_host(name: str, x: object) -> None:
    """NumPy reads host memory only: a tensor on another device gets a message that says so."""
    if isinstance(x, Tensor) and x.device.type != "cpu":
        raise TypeError(f"{name} is a tensor on {x.device}: NumPy needs it on the CPU, .cpu()")


def _check_positive(name: str, x: object) -> None:
    """A positive real number, or an array-like of them."""
    if is_real_number(x):
        if not x > 0 or not math.isfinite(x):
            raise ValueError(f"{name} must be positive and finite, got {x}")
        return
    _check_on_host(name, x)
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a real number or an array of them, got {x!r}") from None
    if not (np.isfinite(arr).all() and (arr > 0).all()):
        raise ValueError(f"{name} must be positive and finite, got {x}")


def _check_number(name: str, x: object, positive: bool = False) -> None:
    """A real number (not bool); with ``positive``, one that is positive and finite."""
    if not is_real_number(x):
        raise TypeError(f"{name} must be a real number, got {type(x).__name__} {x!r}")
    if positive and (not x > 0 or not math.isfinite(x)):
        raise ValueError(f"{name} must be positive and finite, got {x}")


def _as_float(x: object) -> float | np.ndarray:
    """A float for a real number, else a float64 array (``x`` already passed the checks)."""
    return float(x) if is_real_number(x) else np.asarray(x, dtype=np.float64)


def _as_positive_1d(name: str, x: object) -> np.ndarray:
    _check_on_host(name, x)
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be an array of real numbers, got {x!r}") from None
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if not (np.isfinite(arr).all() and (arr > 0).all()):
        raise ValueError(f"{name} must hold positive finite numbers (a log-log fit needs them)")
    return arr


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
    _check_positive("x", x)
    for name, v in (("a", a), ("b", b), ("c", c)):
        _check_number(name, v)
    x = _as_float(x)
    return a * x ** (-b) + c  # a x^-b + c


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
    x, y = _as_positive_1d("x", x), _as_positive_1d("y", y)
    if x.shape != y.shape:
        raise ValueError(f"x has shape {x.shape} but y has shape {y.shape}: they must match")
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
    _check_positive("N", N)
    _check_positive("D", D)
    for name, v in (("E", E), ("A", A), ("B", B), ("alpha", alpha), ("beta", beta)):
        _check_number(name, v)
    if is_real_number(N) and is_real_number(D):
        return E + A / float(N) ** alpha + B / float(D) ** beta
    N, D = np.asarray(N, dtype=np.float64), np.asarray(D, dtype=np.float64)
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
    _check_positive("C", C)
    for name, v in (("A", A), ("B", B), ("alpha", alpha), ("beta", beta)):
        _check_number(name, v, positive=True)  # the optimum exists for positive constants only
    C = _as_float(C)
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
    _check_positive("N", N)
    _check_positive("D", D)
    return 6.0 * _as_float(N) * _as_float(D)  # C = 6 N D


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
    N = 2 * d_model * n_layer * (2 * d_attn + d_ff)  # non-embedding parameters
    attention = (2 if causal else 4) * n_layer * n_ctx * d_attn  # QK^T and AV per token
    forward = 2 * N + attention
    return 3 * forward if training else forward


def transformer_parameters(
    n_layer: int,
    d_model: int,
    n_head: int,
    vocab_size: int,
    d_ff: int | None = None,
    n_kv_head: int | None = None,
    mlp: str = "gelu",
    norm: str = "layernorm",
    bias: bool = True,
    tie_embeddings: bool = True,
    n_positions: int = 0,
) -> int:
    r"""Number of parameters of a decoder-only transformer, counted tensor by tensor.

    Per layer, with head size :math:`d_h = d/n_{\text{head}}` and :math:`n_{kv}` key/value heads
    (grouped-query attention when :math:`n_{kv} < n_{\text{head}}`):

    .. math::

        \underbrace{2d^2 + 2 d\, n_{kv} d_h}_{W_Q, W_O,\ W_K, W_V}
        + \underbrace{k\, d\, d_{\text{ff}}}_{\text{MLP}}
        + \underbrace{2 \cdot \text{norm}}_{\text{two norms}} \;(+\ \text{biases})

    with :math:`k = 2` for a GELU MLP and :math:`k = 3` for SwiGLU (gate, up, down), a norm of
    :math:`d` (RMSNorm, or LayerNorm without bias) or :math:`2d` (LayerNorm with bias)
    parameters. Add a final norm, the token embedding :math:`V d`, learned positions
    :math:`n_{\text{positions}} d` and, when the output projection is not tied to the embedding,
    another :math:`V d`. Biases (``bias=True``) sit on every projection, as in GPT-2. With
    :math:`d_{\text{ff}} = 4d`, one head group, no biases and no embeddings this is Kaplan et
    al.'s :math:`N \approx 12\, n_{\text{layer}} d^2`.

    Parameters
    ----------
    n_layer, d_model, n_head, vocab_size : int
        Layers, width :math:`d`, query heads, vocabulary :math:`V`.
    d_ff : int, optional
        Hidden width of the MLP; default ``4 * d_model``.
    n_kv_head : int, optional
        Key/value heads; default ``n_head`` (multi-head attention). Must divide ``n_head``.
    mlp : {"gelu", "swiglu"}, optional
        Two matrices, or three (SwiGLU).
    norm : {"layernorm", "rmsnorm"}, optional
        LayerNorm has a weight and (with ``bias``) a bias, RMSNorm a weight only.
    bias : bool, optional
        Biases on the attention and MLP projections and in LayerNorm.
    tie_embeddings : bool, optional
        The output projection reuses the token embedding (GPT-2) or has its own (Llama 3).
    n_positions : int, optional
        Rows of a learned position embedding (GPT-2: 1024); 0 for rotary positions.

    Returns
    -------
    int
        The parameter count.

    Examples
    --------
    >>> from dlref.scaling import transformer_parameters
    >>> transformer_parameters(12, 768, 12, 50257, n_positions=1024)  # GPT-2 (124M)
    124439808
    >>> transformer_parameters(32, 4096, 32, 128256, d_ff=14336, n_kv_head=8, mlp="swiglu",
    ...                        norm="rmsnorm", bias=False, tie_embeddings=False)  # Llama 3 8B
    8030261248
    """
    n_layer = check_int("n_layer", n_layer)
    d_model = check_int("d_model", d_model)
    n_head = check_int("n_head", n_head)
    vocab_size = check_int("vocab_size", vocab_size)
    n_positions = check_int("n_positions", n_positions, minimum=0)
    d_ff = check_int("d_ff", 4 * d_model if d_ff is None else d_ff)
    n_kv_head = check_int("n_kv_head", n_head if n_kv_head is None else n_kv_head)
    if d_model % n_head:
        raise ValueError(f"d_model={d_model} must be divisible by n_head={n_head}")
    if n_head % n_kv_head:
        raise ValueError(f"n_kv_head={n_kv_head} must divide n_head={n_head}")
    for name, v in (("bias", bias), ("tie_embeddings", tie_embeddings)):
        if not isinstance(v, bool):
            raise TypeError(f"{name} must be a bool, got {type(v).__name__} {v!r}")
    if mlp not in ("gelu", "swiglu"):
        raise ValueError(f"mlp must be 'gelu' or 'swiglu', got {mlp!r}")
    if norm not in ("layernorm", "rmsnorm"):
        raise ValueError(f"norm must be 'layernorm' or 'rmsnorm', got {norm!r}")
    d, d_kv = d_model, n_kv_head * (d_model // n_head)  # d_kv = n_kv * d_h
    attn = 2 * d * d + 2 * d * d_kv + bias * (2 * d + 2 * d_kv)  # W_Q, W_O, W_K, W_V
    n_mat = 3 if mlp == "swiglu" else 2
    ffn = n_mat * d * d_ff + bias * ((n_mat - 1) * d_ff + d)  # up (and gate), down
    norm_size = 2 * d if norm == "layernorm" and bias else d  # LayerNorm's bias follows ``bias``
    layer = attn + ffn + 2 * norm_size
    embeddings = vocab_size * d * (1 if tie_embeddings else 2) + n_positions * d
    return n_layer * layer + norm_size + embeddings


# ---------------------------------------------------------------------------------------------
# Memory
# ---------------------------------------------------------------------------------------------


class ModelStateBytes(NamedTuple):
    """Bytes of the model states: weights, gradients, optimizer states.

    Returned by :func:`model_state_bytes`; ``sum(...)`` is the total.

    Examples
    --------
    >>> from dlref.scaling import ModelStateBytes
    >>> m = ModelStateBytes(weights=2.0, gradients=2.0, optimizer_states=12.0)  # per parameter
    >>> m.optimizer_states, sum(m)
    (12.0, 16.0)
    """

    weights: float
    gradients: float
    optimizer_states: float


def model_state_bytes(
    num_params, k: float = 12, weight_bytes: float = 2, grad_bytes: float = 2
) -> ModelStateBytes:
    r"""Bytes of weights, gradients and optimizer state for training with Adam.

    Mixed-precision Adam (Rajbhandari et al., 2020, section 3.1) keeps 16-bit weights and
    gradients and, in 32-bit, a master copy of the weights, the momentum and the variance:

    .. math:: (2 + 2 + K)\,\Psi \text{ bytes},\qquad K = 4 + 4 + 4 = 12

    for :math:`\Psi` parameters: 16 bytes per parameter. Plain float32 Adam is
    ``weight_bytes=4, grad_bytes=4, k=8`` (no master copy).

    Parameters
    ----------
    num_params : float
        :math:`\Psi`.
    k : float, optional
        Optimizer-state bytes per parameter.
    weight_bytes, grad_bytes : float, optional
        Bytes per weight and per gradient.

    Returns
    -------
    ModelStateBytes
        ``(weights, gradients, optimizer_states)`` in bytes; ``sum(...)`` is the total.

    Examples
    --------
    >>> from dlref.scaling import model_state_bytes
    >>> m = model_state_bytes(7.5e9)
    >>> [f"{b / 1e9:g} GB" for b in m], f"{sum(m) / 1e9:g} GB"
    (['15 GB', '15 GB', '90 GB'], '120 GB')
    """
    _check_positive("num_params", num_params)
    for name, v in (("k", k), ("weight_bytes", weight_bytes), ("grad_bytes", grad_bytes)):
        if not is_real_number(v) or not 0 <= v < math.inf:
            raise ValueError(f"{name} must be a non-negative number of bytes, got {v!r}")
    num_params = _as_float(num_params)
    return ModelStateBytes(weight_bytes * num_params, grad_bytes * num_params, k * num_params)


def zero_memory(
    num_params,
    num_devices: int,
    stage: int,
    k: float = 12,
    weight_bytes: float = 2,
    grad_bytes: float = 2,
) -> float:
    r"""Bytes of model states per device under ZeRO data parallelism (Rajbhandari et al., 2020).

    ZeRO partitions what plain data parallelism replicates over :math:`N_d` devices: stage 1 the
    optimizer states (:math:`P_{os}`), stage 2 the gradients too (:math:`P_{os+g}`), stage 3 the
    weights too (:math:`P_{os+g+p}`). Per device, with 2-byte weights and gradients:

    .. math::

        \text{stage 0: } (2 + 2 + K)\Psi,\quad
        \text{1: } 4\Psi + \frac{K\Psi}{N_d},\quad
        \text{2: } 2\Psi + \frac{(2 + K)\Psi}{N_d},\quad
        \text{3: } \frac{(2 + 2 + K)\Psi}{N_d}

    Activations, temporary buffers and fragmentation come on top.

    Parameters
    ----------
    num_params : float
        :math:`\Psi`.
    num_devices : int
        :math:`N_d`, the data-parallel degree.
    stage : int
        0 (plain data parallelism), 1, 2 or 3.
    k, weight_bytes, grad_bytes : float, optional
        As in :func:`model_state_bytes`.

    Returns
    -------
    float
        Bytes per device.

    Examples
    --------
    The paper's figure 1: :math:`\Psi = 7.5` B, :math:`N_d = 64`, :math:`K = 12`, in GB of
    :math:`10^9` bytes:

    >>> from dlref.scaling import zero_memory
    >>> [round(zero_memory(7.5e9, 64, s) / 1e9, 1) for s in range(4)]
    [120.0, 31.4, 16.6, 1.9]
    """
    num_devices = check_int("num_devices", num_devices)
    stage = check_index("stage", stage, 4, "ZeRO's stages")
    w, g, o = model_state_bytes(num_params, k, weight_bytes, grad_bytes)
    n = num_devices
    shared = ((0, 0, 0), (0, 0, 1), (0, 1, 1), (1, 1, 1))[stage]  # which of (w, g, o) is split
    return float(sum(x / n if split else x for x, split in zip((w, g, o), shared, strict=True)))


def activation_bytes_per_layer(
    seq_len: int, batch_size: int, d_model: int, n_head: int, attention_scores: bool = True
) -> int:
    r"""Bytes of activations one transformer layer keeps for the backward pass (16-bit).

    Korthikanti et al. (2022), "Reducing Activation Recomputation in Large Transformer Models",
    eq. (1), for sequence length :math:`s`, batch :math:`b`, width :math:`h`, :math:`a` heads,
    16-bit activations and 1-byte dropout masks, no parallelism and no recomputation:

    .. math:: s\,b\,h\,\Bigl(34 + 5\,\frac{a\,s}{h}\Bigr)

    The :math:`5as^2b` bytes are the attention scores, their softmax and its dropout mask,
    quadratic in :math:`s`. A fused attention kernel that recomputes them in the backward pass
    (FlashAttention, or "selective recomputation") keeps none: ``attention_scores=False`` gives
    :math:`34\,sbh`.

    Parameters
    ----------
    seq_len, batch_size, d_model, n_head : int
        :math:`s, b, h, a`.
    attention_scores : bool, optional
        Count the stored attention matrices.

    Returns
    -------
    int
        Bytes.

    Examples
    --------
    >>> from dlref.scaling import activation_bytes_per_layer
    >>> activation_bytes_per_layer(2048, 1, 4096, 32) / 2**20  # MiB, one sequence, one layer
    912.0
    >>> activation_bytes_per_layer(2048, 1, 4096, 32, attention_scores=False) / 2**20
    272.0
    """
    s = check_int("seq_len", seq_len)
    b = check_int("batch_size", batch_size)
    h = check_int("d_model", d_model)
    a = check_int("n_head", n_head)
    return 34 * s * b * h + (5 * a * s * s * b if attention_scores else 0)  # sbh(34 + 5as/h)


def kv_cache_bytes(
    n_layer: int,
    n_kv_head: int,
    head_dim: int,
    seq_len: int,
    batch_size: int = 1,
    bytes_per_element: int = 2,
) -> int:
    r"""Bytes of the key/value cache of a decoder during generation.

    .. math:: 2 \cdot n_{\text{layer}} \cdot n_{kv} \cdot d_h \cdot s \cdot b \cdot
              \text{bytes per element}

    one key and one value vector per layer, key/value head, position and sequence. Grouped-query
    attention shrinks it by :math:`n_{\text{head}}/n_{kv}`.

    Parameters
    ----------
    n_layer, n_kv_head, head_dim, seq_len : int
        Layers, key/value heads, head size, cached positions.
    batch_size : int, optional
        Sequences decoded together.
    bytes_per_element : int, optional
        2 for bfloat16/float16.

    Returns
    -------
    int
        Bytes.

    Examples
    --------
    Llama 3 8B (32 layers, 8 key/value heads of size 128) at its 8192-token context:

    >>> from dlref.scaling import kv_cache_bytes
    >>> kv_cache_bytes(32, 8, 128, seq_len=1) // 1024  # KiB per token
    128
    >>> kv_cache_bytes(32, 8, 128, seq_len=8192) / 2**30  # GiB per sequence
    1.0
    """
    n_layer = check_int("n_layer", n_layer)
    n_kv_head = check_int("n_kv_head", n_kv_head)
    head_dim = check_int("head_dim", head_dim)
    seq_len = check_int("seq_len", seq_len)
    batch_size = check_int("batch_size", batch_size)
    bytes_per_element = check_int("bytes_per_element", bytes_per_element)
    return 2 * n_layer * n_kv_head * head_dim * seq_len * batch_size * bytes_per_element


def matmul_intensity(m: int, k: int, n: int, bytes_per_element: int = 2) -> float:
    r"""Arithmetic intensity of :math:`(m \times k) \cdot (k \times n)`: FLOPs per byte moved.

    .. math:: I = \frac{2mkn}{(mk + kn + mn)\cdot\text{bytes per element}}

    reading both inputs once and writing the output once. For a square :math:`n \times n` matmul
    in 16-bit, :math:`I = n/3`; for a matrix-vector product (:math:`m = 1`) about 1 FLOP per
    byte, whatever the size.

    Parameters
    ----------
    m, k, n : int
        The shapes.
    bytes_per_element : int, optional
        2 for bfloat16.

    Returns
    -------
    float
        FLOPs per byte.

    Examples
    --------
    >>> from dlref.scaling import matmul_intensity
    >>> round(matmul_intensity(4096, 4096, 4096), 1), round(matmul_intensity(1, 4096, 4096), 4)
    (1365.3, 0.9995)
    """
    m, k, n = check_int("m", m), check_int("k", k), check_int("n", n)
    bytes_per_element = check_int("bytes_per_element", bytes_per_element)
    return 2 * m * k * n / ((m * k + k * n + m * n) * bytes_per_element)


def roofline(intensity, peak_flops: float, bandwidth: float):
    r"""Attainable FLOP/s of a kernel with a given arithmetic intensity (the roofline model).

    .. math:: P = \min\bigl(P_{\text{peak}},\ I \cdot \beta\bigr)

    Below the ridge point :math:`I^* = P_{\text{peak}}/\beta` the kernel waits for memory
    (memory-bound); above it, for the arithmetic units (compute-bound). Williams, Waterman and
    Patterson (2009).

    Parameters
    ----------
    intensity : float or numpy.ndarray
        FLOPs per byte, positive.
    peak_flops : float
        The device's peak FLOP/s.
    bandwidth : float
        Memory bandwidth in bytes/s.

    Returns
    -------
    float or numpy.ndarray
        FLOP/s.

    Examples
    --------
    An H100 SXM: 989 TFLOP/s dense bfloat16, 3.35 TB/s:

    >>> from dlref.scaling import roofline
    >>> f"{roofline(1.0, 989e12, 3.35e12):.3g}"  # matrix-vector: 0.3% of the peak
    '3.35e+12'
    >>> f"{roofline(1365.3, 989e12, 3.35e12):.3g}"
    '9.89e+14'
    """
    _check_positive("intensity", intensity)
    _check_number("peak_flops", peak_flops, positive=True)
    _check_number("bandwidth", bandwidth, positive=True)
    if is_real_number(intensity):
        return min(peak_flops, intensity * bandwidth)
    return np.minimum(peak_flops, np.asarray(intensity, dtype=np.float64) * bandwidth)
