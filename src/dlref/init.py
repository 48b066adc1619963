r"""Weight initialisation: Xavier (Glorot) and Kaiming (He), with torch's fan and gain.

A layer :math:`y = Wx` with :math:`n_\text{in}` inputs of variance :math:`v` gives outputs of
variance :math:`n_\text{in}\,\mathrm{Var}(W)\,v`; backpropagation multiplies the gradients'
variance by :math:`n_\text{out}\,\mathrm{Var}(W)`. Xavier picks
:math:`\mathrm{Var}(W) = 2/(n_\text{in} + n_\text{out})`, a compromise that keeps both near 1 for
a linear or tanh layer; Kaiming picks :math:`\mathrm{Var}(W) = 2/n_\text{in}` for ReLU, making up
for ReLU zeroing half of its inputs. Each function has the name, arguments and defaults of its
:mod:`torch.nn.init` counterpart, fills the tensor in place through the same sampler
(``uniform_`` / ``normal_``) with the same bounds, and so draws the very same numbers from the
same generator state.
"""

from __future__ import annotations

import math
import warnings

import torch
from torch import Tensor

from dlref._checks import (
    check_finite_nonnegative,
    check_float,
    check_generator,
    check_nonnegative,
    check_shape,
    is_real_number,
)

__all__ = [
    "calculate_gain",
    "xavier_uniform_",
    "xavier_normal_",
    "kaiming_uniform_",
    "kaiming_normal_",
]

_LINEAR = (
    "linear", "conv1d", "conv2d", "conv3d",
    "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
)  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Helpers: fans and checks
# ---------------------------------------------------------------------------------------------


def _fans(tensor: Tensor) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight (out, in, *kernel): in (out) times the kernel's size."""
    check_shape("tensor", tensor, (..., None, None), "(out_features, in_features, *kernel)")
    receptive_field = math.prod(tensor.shape[2:])  # kernel size; 1 for a linear weight
    return tensor.shape[1] * receptive_field, tensor.shape[0] * receptive_field


def _fan(tensor: Tensor, mode: str) -> int:
    if not isinstance(mode, str) or mode.lower() not in ("fan_in", "fan_out"):
        raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = _fans(tensor)
    return fan_in if mode.lower() == "fan_in" else fan_out


def _kaiming_std(tensor: Tensor, a: float, mode: str, nonlinearity: str) -> float:
    """gain / sqrt(n), with n the fan in or out of ``tensor``."""
    return calculate_gain(nonlinearity, a) / math.sqrt(_fan(tensor, mode))


def _no_elements(tensor: Tensor) -> bool:
    """True, with torch's warning, when ``tensor`` has nothing to fill."""
    if 0 in tensor.shape:
        warnings.warn("Initializing zero-element tensors is a no-op", stacklevel=3)
    return 0 in tensor.shape


# ---------------------------------------------------------------------------------------------
# Gain and initialisers
# ---------------------------------------------------------------------------------------------


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    r"""The factor torch recommends on the weights' standard deviation for ``nonlinearity``.

    .. math::

        \text{linear, conv, sigmoid}: 1,\quad \tanh: \tfrac{5}{3},\quad
        \mathrm{ReLU}: \sqrt{2},\quad \text{leaky ReLU}(a): \sqrt{\tfrac{2}{1 + a^2}},\quad
        \mathrm{SELU}: \tfrac{3}{4}

    :math:`\sqrt 2` for ReLU: it zeroes half of a symmetric input, so
    :math:`E[\mathrm{ReLU}(x)^2] = \tfrac12 E[x^2]` (and leaky ReLU keeps
    :math:`\tfrac{1 + a^2}{2}` of it). The others are conventions rather than derivations: the
    sigmoid's 1 and tanh's :math:`5/3` do not restore a unit variance exactly, and SELU's
    :math:`3/4` gives up self-normalisation (which needs ``"linear"``, a variance :math:`1/n`) for
    steadier gradients, as torch's documentation says.

    Parameters
    ----------
    nonlinearity : str
        A :mod:`torch.nn.functional` name: ``"linear"``, ``"conv1d"``, ..., ``"sigmoid"``,
        ``"tanh"``, ``"relu"``, ``"leaky_relu"``, ``"selu"``.
    param : float, optional
        The negative slope of ``"leaky_relu"`` (0.01 when ``None``).

    Returns
    -------
    float

    Examples
    --------
    >>> from dlref.init import calculate_gain
    >>> calculate_gain("relu"), calculate_gain("tanh"), calculate_gain("leaky_relu", 0.2)
    (1.4142135623730951, 1.6666666666666667, 1.3867504905630728)
    """
    if nonlinearity in _LINEAR or nonlinearity == "sigmoid":
        return 1
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)  # E[relu(x)^2] = E[x^2] / 2
    if nonlinearity == "leaky_relu":
        if param is not None and not is_real_number(param):
            raise ValueError(f"param (the negative slope) must be a real number, got {param!r}")
        a = 0.01 if param is None else param
        return math.sqrt(2.0 / (1 + a**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(
        f"nonlinearity {nonlinearity!r} is not supported; use one of "
        f"{', '.join(_LINEAR)}, sigmoid, tanh, relu, leaky_relu, selu"
    )


def xavier_uniform_(
    tensor: Tensor, gain: float = 1.0, generator: torch.Generator | None = None
) -> Tensor:
    r"""Fill ``tensor`` in place from Xavier's (Glorot's) uniform distribution; return it.

    .. math::

        W \sim \mathcal U(-a, a),\qquad
        a = \text{gain}\sqrt{\frac{6}{n_\text{in} + n_\text{out}}},\qquad
        \mathrm{Var}(W) = \text{gain}^2\,\frac{2}{n_\text{in} + n_\text{out}}

    Parameters
    ----------
    tensor : Tensor
        A weight of shape (out, in, \*kernel): :math:`n_\text{in}` = in × kernel size,
        :math:`n_\text{out}` = out × kernel size.
    gain : float, default 1.0
        Finite and >= 0 (torch refuses the others).
    generator : torch.Generator, optional
        On the tensor's device; the default generator when ``None``.

    Examples
    --------
    >>> import torch
    >>> from dlref.init import xavier_uniform_
    >>> w = xavier_uniform_(torch.empty(200, 300), generator=torch.Generator().manual_seed(0))
    >>> f"{w.abs().max():.3f} <= {(6 / 500) ** 0.5:.3f}", f"{w.var():.4f} vs {2 / 500}"
    ('0.110 <= 0.110', '0.0040 vs 0.004')
    """
    check_float("tensor", tensor)
    check_finite_nonnegative("gain", gain)  # torch refuses U(-a, a) with a < 0 or a = inf
    check_generator(generator, tensor.device)
    fan_in, fan_out = _fans(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    a = math.sqrt(3.0) * std  # a = gain sqrt(6 / (n_in + n_out)), computed as torch does
    with torch.no_grad():
        return tensor.uniform_(-a, a, generator=generator)


def xavier_normal_(
    tensor: Tensor, gain: float = 1.0, generator: torch.Generator | None = None
) -> Tensor:
    r"""Fill ``tensor`` in place from Xavier's (Glorot's) normal distribution; return it.

    .. math::

        W \sim \mathcal N\!\left(0,\ \text{gain}^2\,\frac{2}{n_\text{in} + n_\text{out}}\right)

    Parameters
    ----------
    tensor, gain, generator
        As in :func:`xavier_uniform_`, but ``gain`` may be ``inf`` (a std of ``inf`` fills
        ``tensor`` with :math:`\pm\infty`, as torch does).

    Examples
    --------
    >>> import torch
    >>> from dlref.init import xavier_normal_
    >>> w = xavier_normal_(torch.empty(256, 256), generator=torch.Generator().manual_seed(0))
    >>> f"{w.std() / (2 / 512) ** 0.5:.2f}"  # std = sqrt(2 / (n_in + n_out))
    '1.00'
    """
    check_float("tensor", tensor)
    check_nonnegative("gain", gain)  # a std < 0 or nan is refused; inf fills with +-inf, as torch
    check_generator(generator, tensor.device)
    fan_in, fan_out = _fans(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))  # gain sqrt(2 / (n_in + n_out))
    with torch.no_grad():
        return tensor.normal_(0.0, std, generator=generator)


def kaiming_uniform_(
    tensor: Tensor,
    a: float = 0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Fill ``tensor`` in place from Kaiming's (He's) uniform distribution; return it.

    .. math::

        W \sim \mathcal U(-b, b),\qquad b = \text{gain}\,\sqrt{\frac{3}{n}},\qquad
        \mathrm{Var}(W) = \frac{\text{gain}^2}{n},\quad n = n_\text{in}\ \text{or}\ n_\text{out}

    With the defaults (``nonlinearity="leaky_relu"``, ``a=0``) the gain is :math:`\sqrt 2`, the
    ReLU's. (``nn.Linear`` itself initialises with ``a=sqrt(5)``, a gain of :math:`\sqrt{1/3}`.)
    A tensor with no elements is returned unchanged, with a warning, as in torch.

    Parameters
    ----------
    tensor : Tensor
        Shape (out, in, \*kernel).
    a : float, default 0
        The negative slope of the leaky ReLU after this layer (used with ``"leaky_relu"``).
    mode : {"fan_in", "fan_out"}, default "fan_in"
        ``"fan_in"`` keeps the forward activations' variance, ``"fan_out"`` the gradients'.
    nonlinearity : str, default "leaky_relu"
        As for :func:`calculate_gain`.
    generator : torch.Generator, optional

    Examples
    --------
    >>> import torch
    >>> from dlref.init import kaiming_uniform_
    >>> g = torch.Generator().manual_seed(0)
    >>> w = kaiming_uniform_(torch.empty(64, 16, 3, 3), nonlinearity="relu", generator=g)
    >>> f"{w.abs().max():.4f} <= {(2 * 3 / (16 * 9)) ** 0.5:.4f}"  # n_in = 16 x 3 x 3
    '0.2041 <= 0.2041'
    """
    check_float("tensor", tensor)
    check_generator(generator, tensor.device)
    if _no_elements(tensor):
        return tensor
    std = _kaiming_std(tensor, a, mode, nonlinearity)  # sqrt(Var(W)) = gain / sqrt(n)
    bound = math.sqrt(3.0) * std  # b = gain sqrt(3 / n): Var(U(-b, b)) = b^2 / 3
    with torch.no_grad():
        return tensor.uniform_(-bound, bound, generator=generator)


# fmt: off
def kaiming_normal_(tensor: Tensor, a: float = 0, mode: str = "fan_in",
                    nonlinearity: str = "leaky_relu",
                    generator: torch.Generator | None = None) -> Tensor:
    # fmt: on
    r"""Fill ``tensor`` in place from Kaiming's (He's) normal distribution.

    .. math:: W \sim \mathcal N\!\left(0,\ \frac{\text{gain}^2}{n}\right),\quad
              n = n_\text{in}\ \text{or}\ n_\text{out}

    Parameters
    ----------
    tensor, a, mode, nonlinearity, generator
        As in :func:`kaiming_uniform_`.

    Examples
    --------
    >>> import torch
    >>> from dlref.init import kaiming_normal_
    >>> g = torch.Generator().manual_seed(0)
    >>> w = kaiming_normal_(torch.empty(256, 512), generator=g)
    >>> f"{w.std() / (2 / 512) ** 0.5:.2f}"  # std = sqrt(2 / n_in)
    '1.00'
    """
    check_float("tensor", tensor)
    check_generator(generator, tensor.device)
    if _no_elements(tensor):
        return tensor
    std = _kaiming_std(tensor, a, mode, nonlinearity)  # gain / sqrt(n)
    with torch.no_grad():
        return tensor.normal_(0, std, generator=generator)
