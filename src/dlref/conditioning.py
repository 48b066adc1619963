r"""Conditioning, measured: how the condition number sets the speed of first-order methods.

On a quadratic :math:`f(w) = \tfrac12 w^\top H w` with eigenvalues in :math:`[\mu, L]`, the
condition number is :math:`\kappa = L/\mu`. Gradient descent needs :math:`O(\kappa \log 1/\epsilon)`
iterations, heavy-ball momentum and Nesterov's method :math:`O(\sqrt\kappa \log 1/\epsilon)`.
The functions here run the methods and count; nothing is read off a formula.

A quadratic is given by its Hessian, either a symmetric ``(d, d)`` array or a ``(d,)`` array of
eigenvalues (a diagonal Hessian). Both kinds of method are rotation invariant, so a diagonal
Hessian loses nothing and runs faster. The iterations run in NumPy float64: each is a handful of
operations on a short vector, where NumPy's per-call cost is a fraction of torch's.
"""

from __future__ import annotations

import math
import sys

import numpy as np
import torch
from torch import Tensor

from dlref._checks import (
    check_choice,
    check_float,
    check_generator,
    check_in_range,
    check_int,
    check_real,
    check_shape,
)

__all__ = [
    "condition_number",
    "spectrum",
    "optimal_hyperparameters",
    "contraction_factor",
    "run_quadratic",
    "iterations_to_tolerance",
    "loglog_slope",
    "minibatch_gradient_variance",
]

METHODS = ("gd", "heavy_ball", "nesterov", "uniform_average")


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


def _as_array(name: str, x: object) -> np.ndarray:
    """``x`` (array, list or real tensor) as a float64 array; ``TypeError`` naming ``name``."""
    if isinstance(x, Tensor):
        if x.is_complex():
            raise TypeError(f"{name} must be real, got dtype {x.dtype}")
        x = x.detach().cpu().double().numpy()
    if isinstance(x, (str, bytes)) or np.iscomplexobj(x):
        raise TypeError(f"{name} must be an array of real numbers, got {type(x).__name__}")
    try:
        out = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise TypeError(
            f"{name} must be an array of real numbers, got {type(x).__name__}: {e}"
        ) from None
    if not np.isfinite(out).all():
        raise ValueError(f"{name} must be finite, got {out}")
    return out


def _eigenvalues(H: np.ndarray) -> np.ndarray:
    """Eigenvalues of a symmetric positive definite Hessian, given as (d, d) or (d,)."""
    H = np.asarray(H, dtype=np.float64)
    if H.ndim == 1:
        lam = H
    elif H.ndim == 2 and H.shape[0] == H.shape[1]:
        if not np.allclose(H, H.T):
            raise ValueError("H must be symmetric: a Hessian of a quadratic is")
        lam = np.linalg.eigvalsh(H)
    else:
        raise ValueError(f"H must have shape (d, d) or (d,) (eigenvalues), got {H.shape}")
    if lam.size == 0 or not (lam > 0).all():
        raise ValueError(
            f"H must be positive definite, but its smallest eigenvalue is {lam.min(initial=0.0)}"
        )
    return lam


def _gradient(H: np.ndarray):
    """w -> H w, for a (d, d) Hessian or a (d,) diagonal."""
    return (lambda w: H @ w) if H.ndim == 2 else (lambda w: H * w)


# ---------------------------------------------------------------------------------------------
# Condition number and the methods' hyperparameters
# ---------------------------------------------------------------------------------------------


def condition_number(H) -> float:
    r"""Condition number :math:`\kappa = L / \mu` of a quadratic's Hessian.

    .. math:: \kappa = \frac{\lambda_{\max}(H)}{\lambda_{\min}(H)}

    Parameters
    ----------
    H : numpy.ndarray or Tensor
        A symmetric positive definite Hessian, shape ``(d, d)``, or its eigenvalues, ``(d,)``.

    Returns
    -------
    float
        :math:`\kappa \ge 1`.

    Examples
    --------
    >>> import numpy as np
    >>> from dlref.conditioning import condition_number
    >>> condition_number(np.diag([1.0, 10.0]))
    10.0
    >>> condition_number(np.diag([1.0, 10.0]) + 5.0 * np.eye(2))  # l2 with lambda = 5: (10+5)/(1+5)
    2.5
    """
    lam = _eigenvalues(_as_array("H", H))
    return float(lam.max() / lam.min())


def spectrum(kappa: float, d: int = 10) -> np.ndarray:
    r"""Eigenvalues :math:`\mu = 1/\kappa, \dots, L = 1`, evenly spaced: a diagonal Hessian.

    Parameters
    ----------
    kappa : float
        The condition number, :math:`\ge 1`.
    d : int, optional
        Dimension (number of eigenvalues), at least 2.

    Returns
    -------
    numpy.ndarray
        Shape ``(d,)``, from :math:`1/\kappa` to 1.

    Examples
    --------
    >>> from dlref.conditioning import spectrum
    >>> spectrum(4.0, d=4)
    array([0.25, 0.5 , 0.75, 1.  ])
    """
    check_in_range("kappa", kappa, 1, sys.float_info.max, closed=True)  # finite
    check_int("d", d, minimum=2)  # one eigenvalue for mu, one for L
    return np.linspace(1.0 / kappa, 1.0, d)


def optimal_hyperparameters(method: str, L: float, mu: float) -> dict[str, float]:
    r"""The classical step size (and momentum) of each method on a quadratic in :math:`[\mu, L]`.

    .. math::

        \text{gd: } \alpha = \tfrac{2}{L + \mu};\quad
        \text{heavy ball: } \alpha = \tfrac{4}{(\sqrt L + \sqrt\mu)^2},\
            \beta = \Bigl(\tfrac{\sqrt\kappa - 1}{\sqrt\kappa + 1}\Bigr)^2;\quad
        \text{nesterov: } \alpha = \tfrac1L,\ \beta = \tfrac{\sqrt\kappa - 1}{\sqrt\kappa + 1};\quad
        \text{uniform average: } \alpha = \tfrac1L

    Parameters
    ----------
    method : {"gd", "heavy_ball", "nesterov", "uniform_average"}
        The method.
    L, mu : float
        Largest and smallest eigenvalue of the Hessian, :math:`L \ge \mu > 0`.

    Returns
    -------
    dict
        ``{"lr": alpha}`` and, for the momentum methods, ``"beta"``.

    Examples
    --------
    >>> from dlref.conditioning import optimal_hyperparameters
    >>> optimal_hyperparameters("heavy_ball", L=1.0, mu=0.01)
    {'lr': 3.305..., 'beta': 0.669...}
    """
    check_choice("method", method, METHODS)
    check_real("L", L)
    check_real("mu", mu)
    if not math.inf > L >= mu > 0:
        raise ValueError(f"need L >= mu > 0, got L={L}, mu={mu}")
    root_kappa = math.sqrt(L / mu)
    if method == "gd":
        return {"lr": 2.0 / (L + mu)}
    if method == "heavy_ball":
        beta = ((root_kappa - 1) / (root_kappa + 1)) ** 2
        return {"lr": 4.0 / (math.sqrt(L) + math.sqrt(mu)) ** 2, "beta": beta}
    if method == "nesterov":
        return {"lr": 1.0 / L, "beta": (root_kappa - 1) / (root_kappa + 1)}
    return {"lr": 1.0 / L}


def contraction_factor(method: str, kappa: float) -> float:
    r"""The theoretical rate :math:`r`: the error shrinks like :math:`r^t` (worst case).

    .. math::

        \text{gd: } \frac{\kappa - 1}{\kappa + 1};\qquad
        \text{heavy ball: } \frac{\sqrt\kappa - 1}{\sqrt\kappa + 1};\qquad
        \text{nesterov: } 1 - \frac{1}{\sqrt\kappa}

    These are the spectral radii of each method's iteration on a quadratic (for Nesterov with
    :math:`\alpha = 1/L`, :math:`\beta = \frac{\sqrt\kappa - 1}{\sqrt\kappa + 1}` the slowest
    direction is critically damped, radius :math:`\sqrt{\beta(1 - 1/\kappa)} = 1 - 1/\sqrt\kappa`).
    The uniform average has no such factor: it converges sublinearly.

    Parameters
    ----------
    method : {"gd", "heavy_ball", "nesterov"}
        The method, with :func:`optimal_hyperparameters`.
    kappa : float
        Condition number.

    Returns
    -------
    float
        :math:`r \in [0, 1)`.

    Examples
    --------
    >>> from dlref.conditioning import contraction_factor
    >>> round(contraction_factor("gd", 100.0), 4), round(contraction_factor("heavy_ball", 100.0), 4)
    (0.9802, 0.8182)
    """
    check_choice("method", method, ("gd", "heavy_ball", "nesterov"))
    check_in_range("kappa", kappa, 1, sys.float_info.max, closed=True)  # finite
    if method == "gd":
        return (kappa - 1) / (kappa + 1)
    if method == "heavy_ball":
        return (math.sqrt(kappa) - 1) / (math.sqrt(kappa) + 1)
    return 1 - 1 / math.sqrt(kappa)  # nesterov


# ---------------------------------------------------------------------------------------------
# Running the methods
# ---------------------------------------------------------------------------------------------


def _iterates(
    method: str,
    H: np.ndarray,
    w0: np.ndarray,
    lr: float,
    beta: float = 0.0,
):
    """Yield w_1, w_2, ... of a method on f(w) = ½ wᵀHw (gradient H w)."""
    grad = _gradient(H)
    w, w_prev = w0.copy(), w0.copy()
    g_avg = np.zeros_like(w0)
    n = 0
    while True:
        if method == "gd":
            # w_{t+1} = w_t − α ∇f(w_t)
            w = w - lr * grad(w)
        elif method == "heavy_ball":
            # w_{t+1} = w_t − α ∇f(w_t) + β (w_t − w_{t−1})
            w, w_prev = w - lr * grad(w) + beta * (w - w_prev), w
        elif method == "nesterov":
            # y_t = w_t + β (w_t − w_{t−1});  w_{t+1} = y_t − α ∇f(y_t)
            y = w + beta * (w - w_prev)
            w, w_prev = y - lr * grad(y), w
        else:
            # n ← n + 1;  g ← (1/n) ∇f(w) + ((n−1)/n) g;  w ← w − α g
            n += 1
            g_avg += (grad(w) - g_avg) / n
            w = w - lr * g_avg
        yield w


def _setup(method, H, w0):
    """The checked Hessian and start, and the method's hyperparameters."""
    check_choice("method", method, METHODS)
    H = _as_array("H", H)
    lam = _eigenvalues(H)
    d = lam.shape[0]
    w0 = np.full(d, 1.0 / math.sqrt(d)) if w0 is None else _as_array("w0", w0)
    if w0.shape != (d,):
        raise ValueError(f"H has shape {H.shape} but w0 has shape {w0.shape}: need ({d},)")
    return H, w0, optimal_hyperparameters(method, float(lam.max()), float(lam.min()))


def run_quadratic(method: str, H, steps: int, w0=None) -> np.ndarray:
    r"""The iterates of a method on :math:`f(w) = \tfrac12 w^\top H w`, with its optimal settings.

    Parameters
    ----------
    method : {"gd", "heavy_ball", "nesterov", "uniform_average"}
        The method; hyperparameters from :func:`optimal_hyperparameters`.
    H : numpy.ndarray
        Hessian, shape ``(d, d)``, or its eigenvalues, ``(d,)``.
    steps : int
        Number of iterations.
    w0 : numpy.ndarray, optional
        Start, shape ``(d,)``; default all entries :math:`1/\sqrt d` (unit norm).

    Returns
    -------
    numpy.ndarray
        Shape ``(steps + 1, d)``: :math:`w_0, \dots, w_{\text{steps}}`.

    Examples
    --------
    >>> import numpy as np
    >>> from dlref.conditioning import run_quadratic
    >>> w = run_quadratic("gd", np.array([0.5, 1.0]), steps=3, w0=[1.0, 1.0])
    >>> w[:, 0]  # the slow direction shrinks by (kappa - 1) / (kappa + 1) = 1/3 per step
    array([1.        , 0.33333333, 0.11111111, 0.03703704])
    """
    check_int("steps", steps, minimum=0)
    H, w0, hyper = _setup(method, H, w0)
    out = np.empty((steps + 1, w0.shape[0]))
    out[0] = w0
    for t, w in zip(range(1, steps + 1), _iterates(method, H, w0, **hyper), strict=False):
        out[t] = w
    return out


def iterations_to_tolerance(
    method: str, H, eps: float = 1e-6, w0=None, max_iter: int = 10**6
) -> int | None:
    r"""Iterations until :math:`\|w_t - w^*\| \le \epsilon\, \|w_0 - w^*\|` (here :math:`w^* = 0`).

    Parameters
    ----------
    method, H, w0
        As in :func:`run_quadratic`.
    eps : float, optional
        Relative tolerance on the distance to the minimum, in (0, 1).
    max_iter : int, optional
        Give up after this many iterations.

    Returns
    -------
    int or None
        The number of iterations, or ``None`` if ``max_iter`` was not enough.

    Examples
    --------
    >>> from dlref.conditioning import iterations_to_tolerance, spectrum
    >>> iterations_to_tolerance("gd", spectrum(100.0)), iterations_to_tolerance(
    ...     "heavy_ball", spectrum(100.0))
    (651, 89)
    """
    check_in_range("eps", eps, 0, 1)
    check_int("max_iter", max_iter, minimum=0)
    H, w0, hyper = _setup(method, H, w0)
    target = eps**2 * (w0 @ w0)  # compare squared norms: ‖w_t‖² ≤ ε² ‖w_0‖²
    for t, w in zip(range(1, max_iter + 1), _iterates(method, H, w0, **hyper), strict=False):
        if w @ w <= target:
            return t
    return None


def loglog_slope(x, y) -> float:
    r"""Least-squares slope of :math:`\log y` against :math:`\log x`: the exponent :math:`p` in
    :math:`y \approx C x^p`.

    Parameters
    ----------
    x, y : numpy.ndarray
        Positive numbers, shape ``(k,)``, :math:`k \ge 2`; the result is the float :math:`p`.

    Examples
    --------
    >>> from dlref.conditioning import loglog_slope
    >>> x = [1, 10, 100]
    >>> round(loglog_slope(x, [3 * v**2 for v in x]), 6)  # y = 3 x^2
    2.0
    """
    x, y = _as_array("x", x), _as_array("y", y)
    if x.shape != y.shape or x.ndim != 1 or x.size < 2:
        raise ValueError(f"x and y must have the same shape (k,), k >= 2, got {x.shape}, {y.shape}")
    if not ((x > 0).all() and (y > 0).all()):
        raise ValueError("x and y must be positive to take logarithms")
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


# ---------------------------------------------------------------------------------------------
# Minibatching
# ---------------------------------------------------------------------------------------------


def minibatch_gradient_variance(
    per_example_grads: Tensor, batch_size: int, num_draws: int = 1000, generator=None
) -> float:
    r"""Measured total variance of a minibatch gradient (examples drawn with replacement).

    .. math::

        \mathbb{E}\,\bigl\|\hat g_B - \bar g\bigr\|^2 = \frac{1}{B}\cdot
        \frac1N \sum_{i=1}^N \|g_i - \bar g\|^2,\qquad
        \hat g_B = \frac1B \sum_{b=1}^B g_{i_b}

    Parameters
    ----------
    per_example_grads : Tensor
        Shape ``(N, P)``: the gradient of each example's loss.
    batch_size : int
        :math:`B`.
    num_draws : int, optional
        Minibatches drawn to estimate the variance.
    generator : torch.Generator, optional
        Source of randomness, on the device of ``per_example_grads`` (the indices are drawn
        there).

    Returns
    -------
    float
        The mean of :math:`\|\hat g_B - \bar g\|^2` over the draws.

    Examples
    --------
    >>> import torch
    >>> from dlref.conditioning import minibatch_gradient_variance
    >>> g = torch.randn(1000, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    >>> gen = torch.Generator().manual_seed(1)
    >>> v1 = minibatch_gradient_variance(g, 1, 4000, gen)
    >>> v16 = minibatch_gradient_variance(g, 16, 4000, gen)
    >>> round(v1 / v16)  # 16 times smaller
    16
    """
    check_float("per_example_grads", per_example_grads)
    check_int("batch_size", batch_size)
    check_int("num_draws", num_draws)
    check_generator(generator, per_example_grads.device)
    check_shape("per_example_grads", per_example_grads, (None, None), "(N, P)")
    N = per_example_grads.shape[0]
    if N == 0:
        raise ValueError("per_example_grads has no examples (shape (0, P)): need N >= 1")
    idx = torch.randint(
        0, N, (num_draws, batch_size), generator=generator, device=per_example_grads.device
    )  # (draws, B)
    g_hat = per_example_grads[idx].mean(dim=1)  # (draws, P)
    g_bar = per_example_grads.mean(dim=0)  # (P,)
    return float(((g_hat - g_bar) ** 2).sum(dim=1).mean())
