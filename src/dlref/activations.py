r"""Elementwise activation functions, each one line of its formula, computed without overflow.

ReLU, sigmoid, tanh, GELU (exact and tanh forms), SiLU and softplus, with the names, arguments and
defaults of ``torch`` / ``torch.nn.functional``. Each is written so that no finite input gives
``inf`` or ``nan`` (only the tanh form of GELU lets an intermediate, :math:`x^3`, overflow, for
:math:`|x| > 7 \times 10^{12}` in float32, harmlessly: :math:`\tanh(\pm\infty) = \pm 1`, as in
torch), and each matches torch in float64, values and gradients, including at :math:`\pm 10^4`,
:math:`\pm\infty` and ``nan``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from dlref._checks import check_choice, check_float, check_real

__all__ = ["relu", "sigmoid", "tanh", "gelu", "silu", "softplus"]


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


def _minus_abs(x: Tensor) -> Tensor:
    """-|x|, with derivative -1 at x = 0 (``abs`` has derivative 0 there, which would zero the
    gradient of the x >= 0 branch at the origin)."""
    return torch.where(x >= 0, -x, x)


def _upcast(x: Tensor) -> Tensor:
    """float16 and bfloat16 as float32 (torch's kernels compute in float32 and round once)."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def _check_inplace(inplace: bool) -> None:
    if inplace:
        raise ValueError(
            "inplace=True is not supported: dlref computes every activation out of place"
        )


# ---------------------------------------------------------------------------------------------
# Activations
# ---------------------------------------------------------------------------------------------


def relu(input: Tensor, inplace: bool = False) -> Tensor:
    r"""Rectified linear unit, elementwise.

    .. math:: \mathrm{ReLU}(x) = \max(0, x),\qquad \mathrm{ReLU}'(x) = \mathbb{1}[x > 0]

    The derivative at :math:`x = 0` is taken to be 0, as in torch; ``nan`` stays ``nan``.

    Parameters
    ----------
    input : Tensor
        Any shape, floating point.
    inplace : bool, optional
        Must be False (accepted for compatibility with ``torch.nn.functional.relu``).

    Returns
    -------
    Tensor
        The same shape as ``input``.

    Examples
    --------
    >>> import torch
    >>> from dlref.activations import relu
    >>> relu(torch.tensor([-2.0, 0.0, 3.0]))
    tensor([0., 0., 3.])
    """
    check_float("input", input)
    _check_inplace(inplace)
    keep = (input > 0) | input.isnan()  # 1[x > 0], and nan passes through
    return torch.where(keep, input, torch.zeros_like(input))


def sigmoid(input: Tensor) -> Tensor:
    r"""Logistic sigmoid, elementwise, without overflow.

    .. math::

        \sigma(x) = \frac{1}{1 + e^{-x}}
                  = \begin{cases}
                        \dfrac{1}{1 + e^{-|x|}} & x \ge 0 \\[1ex]
                        \dfrac{e^{-|x|}}{1 + e^{-|x|}} & x < 0
                    \end{cases},
        \qquad \sigma'(x) = \sigma(x)\,(1 - \sigma(x))

    Both branches only ever exponentiate :math:`-|x| \le 0`, so nothing
    overflows.

    Parameters
    ----------
    input : Tensor
        Any shape, floating point; the result has its shape, values in
        :math:`[0, 1]`.

    Examples
    --------
    >>> import torch
    >>> from dlref.activations import sigmoid
    >>> sigmoid(torch.tensor([-1e4, 0.0, 2.0, 1e4]))
    tensor([0.0000, 0.5000, 0.8808, 1.0000])
    """
    check_float("input", input)
    e = torch.exp(_minus_abs(input))  # e^{-|x|} in (0, 1]
    return torch.where(input >= 0, 1 / (1 + e), e / (1 + e))


def tanh(input: Tensor) -> Tensor:
    r"""Hyperbolic tangent, elementwise, accurate near 0 and without overflow.

    .. math::

        \tanh x = \operatorname{sign}(x)\,\frac{1 - e^{-2|x|}}{1 + e^{-2|x|}},
        \qquad \tanh' x = 1 - \tanh^2 x

    The numerator is computed as ``-expm1(-2|x|)``, which keeps full relative
    precision for tiny :math:`x` (where :math:`1 - e^{-2|x|}` would cancel).

    Parameters
    ----------
    input : Tensor
        Any shape, floating point; the result has its shape, values in
        :math:`[-1, 1]`.

    Examples
    --------
    >>> import torch
    >>> from dlref.activations import tanh
    >>> tanh(torch.tensor([-1e4, 0.0, 0.5, 1e4]))
    tensor([-1.0000,  0.0000,  0.4621,  1.0000])
    """
    check_float("input", input)
    a = 2 * _minus_abs(input)  # -2|x| <= 0
    t = -torch.expm1(a) / (1 + torch.exp(a))  # tanh |x|
    return torch.where(input >= 0, t, -t)


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    r"""Gaussian error linear unit, elementwise: :math:`x` times the standard normal CDF.

    .. math::

        \mathrm{GELU}(x) = x\,\Phi(x)
                         = \frac{x}{2}\Bigl(1 + \operatorname{erf}\frac{x}{\sqrt 2}\Bigr),
        \qquad \mathrm{GELU}'(x) = \Phi(x) + x\,\varphi(x)

    With ``approximate="tanh"``, the form of Hendrycks and Gimpel (2016):

    .. math::

        \mathrm{GELU}(x) \approx \frac{x}{2}\Bigl(1 + \tanh\Bigl(\sqrt{2/\pi}\,
        \bigl(x + 0.044715\,x^3\bigr)\Bigr)\Bigr)

    GELU is not monotone (minimum :math:`-0.1700` at :math:`x = -0.7518`) and not convex.

    Parameters
    ----------
    input : Tensor
        Any shape, floating point.
    approximate : {'none', 'tanh'}, optional
        The exact erf form (default) or the tanh approximation, as in
        ``torch.nn.functional.gelu``.

    Returns
    -------
    Tensor
        The same shape and dtype as ``input``; float16 and bfloat16 are computed in float32
        and rounded once, as torch does.

    Examples
    --------
    >>> import torch
    >>> from dlref.activations import gelu
    >>> gelu(torch.tensor([-0.7518, 0.0, 1.0]))
    tensor([-0.1700,  0.0000,  0.8413])
    >>> gelu(torch.tensor([-0.7518, 0.0, 1.0]), approximate="tanh")
    tensor([-0.1700,  0.0000,  0.8412])
    """
    check_float("input", input)
    check_choice("approximate", approximate, ("none", "tanh"))
    x = _upcast(input)  # float16/bfloat16 computed in float32, as torch does
    if approximate == "none":
        return (x * 0.5 * (1 + torch.erf(x / math.sqrt(2)))).to(input.dtype)  # x Phi(x)
    inner = math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)
    return (0.5 * x * (1 + torch.tanh(inner))).to(input.dtype)


def silu(input: Tensor, inplace: bool = False) -> Tensor:
    r"""Sigmoid-weighted linear unit (swish), elementwise.

    .. math:: \mathrm{SiLU}(x) = x\,\sigma(x),\qquad
              \mathrm{SiLU}'(x) = \sigma(x)\,\bigl(1 + x\,(1 - \sigma(x))\bigr)

    Not monotone (minimum :math:`-0.2785` at :math:`x = -1.2785`) and not convex.

    Parameters
    ----------
    input, inplace
        As in :func:`relu`.

    Examples
    --------
    >>> import torch
    >>> from dlref.activations import silu
    >>> x = torch.tensor([-1.2785, 0.0, 2.0])
    >>> silu(x)  # x sigma(x), at its minimum, 0 and 2
    tensor([-0.2785,  0.0000,  1.7616])
    """
    check_float("input", input)
    _check_inplace(inplace)
    return input * sigmoid(input)  # x sigma(x)


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    r"""Softplus, a smooth ReLU, elementwise; linear above a threshold, as in torch.

    .. math::

        \mathrm{softplus}(x) = \begin{cases}
            \frac{1}{\beta}\log\bigl(1 + e^{\beta x}\bigr) & \beta x \le \text{threshold} \\
            x & \beta x > \text{threshold} \end{cases},
        \qquad \mathrm{softplus}'(x) = \sigma(\beta x)

    Above the threshold :math:`\log(1 + e^{\beta x})` and :math:`\beta x` agree to within
    :math:`e^{-\text{threshold}}`; switching avoids the overflow of :math:`e^{\beta x}`. Softplus
    is strictly increasing and convex, with inverse :math:`\frac{1}{\beta}\log(e^{\beta y} - 1)`.

    Parameters
    ----------
    input : Tensor
        Any shape, floating point.
    beta : float, optional
        The sharpness :math:`\beta` (default 1).
    threshold : float, optional
        Above ``beta * input > threshold`` the result is ``input`` (default 20).

    Returns
    -------
    Tensor
        The same shape and dtype as ``input``, half precision computed as in :func:`gelu`.

    Examples
    --------
    >>> import torch
    >>> from dlref.activations import softplus
    >>> softplus(torch.tensor([-1e4, 0.0, 1.0, 1e4]))
    tensor([0.0000e+00, 6.9315e-01, 1.3133e+00, 1.0000e+04])
    """
    check_float("input", input)
    check_real("beta", beta)
    check_real("threshold", threshold)
    x = _upcast(input)  # float16/bfloat16 computed in float32, as torch does
    z = beta * x  # beta x
    linear = z > threshold
    # log(1 + e^z) only where it is used; elsewhere z is clamped so neither branch overflows.
    smooth = torch.log1p(torch.exp(torch.where(linear, torch.zeros_like(z), z))) / beta
    return torch.where(linear, x, smooth).to(input.dtype)
