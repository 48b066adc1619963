r"""Floating-point formats, rounding to 16 bits, dynamic loss scaling and summation.

A binary floating-point number is a sign bit, ``e`` exponent bits and ``m`` mantissa bits:

.. math:: x = (-1)^s \, 2^{E - b} \, (1 + M / 2^m), \qquad b = 2^{e-1} - 1

for a stored exponent :math:`1 \le E \le 2^e - 2` (the normal numbers); :math:`E = 0` holds the
subnormals :math:`2^{1-b} M / 2^m` and zero, and :math:`E = 2^e - 1` holds ``inf`` and ``nan``.
:class:`FloatFormat` derives every constant of :func:`torch.finfo` from ``(e, m)``;
:func:`round_to` rounds float32 to bfloat16 or float16 with integer operations on the bits;
:class:`LossScaler` is the dynamic loss scaling of :class:`torch.amp.GradScaler`, with its
arguments and defaults; :func:`sequential_sum` and :func:`kahan_sum` add one number at a time with
an accumulator of a chosen dtype.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from dlref._checks import check_float, check_in_range, check_instance, check_int, check_tensor

__all__ = ["FloatFormat", "round_to", "LossScaler", "sequential_sum", "kahan_sum"]

# (exponent bits, mantissa bits) of the IEEE-754 binary formats and Google's bfloat16.
_LAYOUT = {
    torch.float64: (11, 52),
    torch.float32: (8, 23),
    torch.bfloat16: (8, 7),
    torch.float16: (5, 10),
}
# The integer dtype of the same width, for viewing the bits.
_BITS_DTYPE = {torch.float32: torch.int32, torch.bfloat16: torch.int16, torch.float16: torch.int16}


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


def _check_format_dtype(dtype: object, allowed: tuple[torch.dtype, ...]) -> None:
    if not isinstance(dtype, torch.dtype):
        raise TypeError(f"dtype must be a torch.dtype, got {type(dtype).__name__} {dtype!r}")
    if dtype not in allowed:
        names = ", ".join(str(d).replace("torch.", "") for d in allowed)
        raise ValueError(f"dtype must be one of {names}, got {dtype}")


def _round_half_even(n: Tensor, shift: Tensor) -> Tensor:
    """``n / 2**shift`` rounded to the nearest integer, ties to the even one (int64, shift >= 1)."""
    q = n >> shift  # the kept bits
    r = n - (q << shift)  # the dropped bits
    half = torch.ones_like(shift) << (shift - 1)
    # round up when above half, or exactly half and q is odd
    return q + ((r > half) | ((r == half) & (q % 2 == 1))).long()


# ---------------------------------------------------------------------------------------------
# Formats
# ---------------------------------------------------------------------------------------------


class FloatFormat:
    r"""The constants of a binary floating-point format, derived from its bit layout.

    .. math::
        \varepsilon = 2^{-m},\quad
        x_{\max} = (2 - 2^{-m})\, 2^{b},\quad
        x_{\min,\mathrm{normal}} = 2^{1-b},\quad
        x_{\min,\mathrm{sub}} = 2^{1-b-m},\quad b = 2^{e-1} - 1

    Equal to :func:`torch.finfo` (``bits``, ``eps``, ``max``, ``min``, ``smallest_normal``, alias
    ``tiny``) for float64, float32, bfloat16 and float16; ``smallest_subnormal``, which
    ``torch.finfo`` does not give, is the number whose bit pattern is 1.

    Parameters
    ----------
    dtype : torch.dtype
        ``torch.float64``, ``torch.float32``, ``torch.bfloat16`` or ``torch.float16``.

    Attributes
    ----------
    bits, exponent_bits, mantissa_bits, bias : int
        ``1 + e + m``, ``e``, ``m`` (the stored fraction bits) and ``b``.
    eps, max, min, smallest_normal, tiny, smallest_subnormal : float
        As above; ``min = -max``; ``eps`` is the gap between 1 and the next number.
    significant_digits : float
        :math:`(m + 1) \log_{10} 2`, the decimal digits the significand carries.

    Examples
    --------
    >>> import torch
    >>> from dlref.precision import FloatFormat
    >>> f = FloatFormat(torch.bfloat16)
    >>> f.exponent_bits, f.mantissa_bits, f.eps, f.max == torch.finfo(torch.bfloat16).max
    (8, 7, 0.0078125, True)
    >>> FloatFormat(torch.float16).smallest_subnormal == 2.0**-24
    True
    """

    def __init__(self, dtype: torch.dtype) -> None:
        _check_format_dtype(dtype, tuple(_LAYOUT))
        e, m = _LAYOUT[dtype]
        self.dtype = dtype
        self.exponent_bits, self.mantissa_bits = e, m
        self.bits = 1 + e + m
        # b = 2^(e-1) - 1
        self.bias = 2 ** (e - 1) - 1
        # eps = 2^-m
        self.eps = 2.0**-m
        # x_max = (2 - 2^-m) 2^b, the largest exponent 2^e - 2 with every mantissa bit set
        self.max = math.ldexp(2.0 - 2.0**-m, self.bias)
        self.min = -self.max
        # x_min_normal = 2^(1-b)
        self.smallest_normal = math.ldexp(1.0, 1 - self.bias)
        self.tiny = self.smallest_normal
        # x_min_sub = 2^(1-b-m)
        self.smallest_subnormal = math.ldexp(1.0, 1 - self.bias - m)
        self.significant_digits = (m + 1) * math.log10(2.0)

    def __repr__(self) -> str:
        return (
            f"FloatFormat({str(self.dtype).replace('torch.', '')}: 1 sign, "
            f"{self.exponent_bits} exponent, {self.mantissa_bits} mantissa bits)"
        )


# ---------------------------------------------------------------------------------------------
# Rounding float32 to 16 bits
# ---------------------------------------------------------------------------------------------


def round_to(x: Tensor, dtype: torch.dtype) -> Tensor:
    r"""Round a float32 tensor to bfloat16 or float16 by integer operations on its bits.

    With :math:`x = 2^{k} \cdot n / 2^{23}` (``n`` the 24-bit significand with its leading bit,
    ``k`` the unbiased exponent, :math:`k \ge -126`), the target format keeps ``m + 1`` bits at
    exponents :math:`k \ge k_{\min} = 1 - b` and a fixed step :math:`2^{k_{\min} - m}` below
    (subnormals), so

    .. math::
        q = \operatorname{round\_half\_even}\!\left(n / 2^{s}\right),\quad
        s = 23 - m + \max(0,\, k_{\min} - k),\quad
        \mathrm{bits} = (\max(k, k_{\min}) - k_{\min}) \cdot 2^{m} + q

    A carry out of ``q`` moves into the exponent field by itself; bits at or above those of
    ``inf`` become ``inf``; ``nan`` stays ``nan`` (the quiet nan of the sign of ``x``). Equal to
    ``x.to(dtype)`` bit for bit on every number that is not a nan.

    Parameters
    ----------
    x : Tensor
        float32, any shape.
    dtype : torch.dtype
        ``torch.bfloat16`` or ``torch.float16``.

    Returns
    -------
    Tensor
        Shaped like ``x``, of dtype ``dtype``.

    Examples
    --------
    >>> import torch
    >>> from dlref.precision import round_to
    >>> x = torch.tensor([1 + 2**-8, 1 + 3 * 2**-8, 1 + 2**-8 + 2**-20, 70000.0, 2**-25])
    >>> round_to(x, torch.bfloat16).double().tolist()  # ties to the even one: 1 and 1 + 2^-6
    [1.0, 1.015625, 1.0078125, 70144.0, 2.9802322387695312e-08]
    >>> round_to(x, torch.float16).double().tolist()  # 70000 overflows; 2^-25 is half of 2^-24
    [1.00390625, 1.01171875, 1.00390625, inf, 0.0]
    >>> torch.equal(round_to(x, torch.float16), x.to(torch.float16))
    True
    """
    check_float("x", x)
    if x.dtype != torch.float32:
        raise TypeError(f"x must be a float32 tensor, got dtype {x.dtype}")
    _check_format_dtype(dtype, (torch.bfloat16, torch.float16))
    fmt = FloatFormat(dtype)
    m, k_min = fmt.mantissa_bits, 1 - fmt.bias
    bits = x.view(torch.int32).long() & 0xFFFFFFFF  # as unsigned, in int64
    sign = bits >> 31
    E = (bits >> 23) & 0xFF  # stored exponent
    M = bits & 0x7FFFFF  # stored mantissa
    # float32 normals: n = 2^23 + M at k = E - 127; subnormals: n = M at k = -126
    n = torch.where(E > 0, M | 0x800000, M)
    k = torch.where(E > 0, E - 127, torch.full_like(E, -126))
    # s = 23 - m + max(0, k_min - k); past 25 every n < 2^24 rounds to 0, so stop there
    s = (23 - m + (k_min - k).clamp(min=0)).clamp(max=25)
    q = _round_half_even(n, s)
    # bits = (max(k, k_min) - k_min) 2^m + q
    out = ((k.clamp(min=k_min) - k_min) << m) + q
    inf_bits = (2**fmt.exponent_bits - 1) << m
    out = out.clamp(max=inf_bits)  # overflow: inf
    # nan: exponent all ones and a mantissa; quiet nan = inf bits + the top mantissa bit
    out = torch.where((E == 0xFF) & (M != 0), inf_bits | (1 << (m - 1)), out)
    out = out | (sign << 15)
    # (int64 in [0, 2^16)) -> int16 two's complement -> the 16-bit float
    out = torch.where(out >= 2**15, out - 2**16, out)
    return out.to(torch.int16).view(dtype)


# ---------------------------------------------------------------------------------------------
# Dynamic loss scaling
# ---------------------------------------------------------------------------------------------


class LossScaler:
    r"""Dynamic loss scaling, as :class:`torch.amp.GradScaler` (same arguments and defaults).

    Backpropagate ``scale(loss)`` = :math:`S \cdot L`, so gradients too small for float16 are
    multiplied by :math:`S`; ``unscale_`` divides them by :math:`S` in place and records whether
    any is ``inf`` or ``nan``; ``step`` skips the optimizer step if so; ``update`` sets

    .. math::
        S \leftarrow \begin{cases}
        S \cdot \beta_{\mathrm{backoff}} & \text{a gradient was not finite (tracker} \to 0)\\
        S \cdot \gamma_{\mathrm{growth}} & \text{after growth\_interval finite steps in a row}\\
        S & \text{otherwise}\end{cases}

    :math:`S` is kept in float32, as in torch, and not grown to ``inf``. :math:`S`, the count
    of finite steps and the non-finite flag stay on the outputs' device: only ``get_scale``,
    ``get_growth_tracker`` and ``found_inf`` read them on the host. An optimizer that can skip its
    own step on the device (``fused=True`` Adam, AdamW, SGD: torch's ``found_inf`` attribute) is
    stepped without a host sync; any other is stepped after reading the flag on the host (one
    sync per step), as :class:`torch.amp.GradScaler` does.

    Parameters
    ----------
    init_scale : float, default 65536.0
        The first scale, :math:`2^{16}`.
    growth_factor : float, default 2.0
        Must be > 1.
    backoff_factor : float, default 0.5
        Must lie in (0, 1).
    growth_interval : int, default 2000
        Finite steps in a row before the scale grows.

    Examples
    --------
    >>> import torch
    >>> from dlref.precision import LossScaler
    >>> w = torch.nn.Parameter(torch.ones(2))
    >>> opt = torch.optim.SGD([w], lr=0.1)
    >>> scaler = LossScaler(init_scale=8.0, growth_interval=2)
    >>> for g in ([1.0, 2.0], [float("inf"), 0.0], [1.0, 1.0], [1.0, 1.0]):
    ...     w.grad = scaler.get_scale() * torch.tensor(g)  # what backward of scale(loss) gives
    ...     scaler.step(opt)  # unscales, then steps unless a gradient is inf or nan
    ...     scaler.update()
    ...     print(scaler.found_inf, f"{scaler.get_scale():g}", w.detach())
    False 8 tensor([0.9000, 0.8000])
    True 4 tensor([0.9000, 0.8000])
    False 4 tensor([0.8000, 0.7000])
    False 8 tensor([0.7000, 0.6000])
    """

    def __init__(
        self,
        init_scale: float = 2.0**16,
        growth_factor: float = 2.0,
        backoff_factor: float = 0.5,
        growth_interval: int = 2000,
    ) -> None:
        check_in_range("init_scale", init_scale, 0, math.inf)
        check_in_range("growth_factor", growth_factor, 1, math.inf)
        check_in_range("backoff_factor", backoff_factor, 0, 1)
        self.growth_interval = check_int("growth_interval", growth_interval, minimum=1)
        self.growth_factor, self.backoff_factor = float(growth_factor), float(backoff_factor)
        # S in float32, and the finite steps in a row since it last changed; moved to the
        # outputs' device by the first scale()
        self._scale = torch.tensor(float(init_scale), dtype=torch.float32)
        self._growth_tracker = torch.zeros((), dtype=torch.int32)
        self._found_inf: dict[int, Tensor] = {}  # per optimizer (by id), since the last update
        self._stepped: set[int] = set()
        self._last_found_inf: Tensor | None = None

    def get_scale(self) -> float:
        """The current scale :math:`S` (a float32 value), read on the host."""
        return self._scale.item()

    def get_growth_tracker(self) -> int:
        """Finite steps in a row since the scale last changed, read on the host."""
        return int(self._growth_tracker.item())

    @property
    def found_inf(self) -> bool | None:
        """Whether the last unscaled gradients held an inf or nan (None before any), on the host."""
        return None if self._last_found_inf is None else bool(self._last_found_inf.item())

    def scale(self, outputs: Tensor) -> Tensor:
        """``outputs`` times :math:`S` (a float32 scalar, so float16 outputs stay float16)."""
        check_tensor("outputs", outputs)
        self._scale = self._scale.to(outputs.device)  # a copy the first time only
        self._growth_tracker = self._growth_tracker.to(outputs.device)
        # S L
        return outputs * self._scale

    def unscale_(self, optimizer: torch.optim.Optimizer) -> None:
        """Divide the gradients of ``optimizer``'s parameters by :math:`S`, in place.

        Records, on the device, whether any gradient is ``inf`` or ``nan``. At most once per
        optimizer between two calls of :meth:`update` (``RuntimeError`` otherwise), as in torch.
        """
        check_instance("optimizer", optimizer, torch.optim.Optimizer, "torch.optim.Optimizer")
        if id(optimizer) in self._found_inf:
            raise RuntimeError(
                "unscale_() has already been called on this optimizer since the last update()."
            )
        # 1/S, computed as torch does: in float64, then rounded to float32
        inv_scale = self._scale.double().reciprocal().float()
        found_inf = torch.zeros((), dtype=torch.bool, device=self._scale.device)
        for group in optimizer.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    # g <- g / S
                    p.grad.mul_(inv_scale.to(p.grad.device))
                    found_inf |= ~torch.isfinite(p.grad).all().to(found_inf.device)
        self._found_inf[id(optimizer)] = self._last_found_inf = found_inf

    def step(self, optimizer: torch.optim.Optimizer, *args, **kwargs):
        """Unscale (unless done), then ``optimizer.step()`` unless a gradient was not finite.

        Returns what ``optimizer.step`` returns, or ``None`` for a step skipped on the host.
        """
        if id(optimizer) in self._stepped:
            raise RuntimeError("step() has already been called since the last update().")
        if id(optimizer) not in self._found_inf:
            self.unscale_(optimizer)
        self._stepped.add(id(optimizer))
        found_inf = self._found_inf[id(optimizer)]
        if getattr(optimizer, "_step_supports_amp_scaling", False):
            # a fused optimizer skips its step on the device when found_inf is 1: no host sync
            optimizer.found_inf = found_inf.float()
            try:
                return optimizer.step(*args, **kwargs)
            finally:
                del optimizer.found_inf
        # any other optimizer: the flag is read on the host (a sync), as GradScaler does
        return None if found_inf.item() else optimizer.step(*args, **kwargs)

    def update(self) -> None:
        """Back off after a non-finite gradient; grow after finite ones.

        Computed on the device (``torch.where``): no host sync.
        """
        if not self._found_inf:
            raise RuntimeError("No inf checks were recorded prior to update().")
        # any optimizer's flag
        found_inf = torch.stack(list(self._found_inf.values())).any()
        grow = ~found_inf & (self._growth_tracker + 1 == self.growth_interval)
        # S * backoff and S * growth, in float64 then rounded to float32 (as
        # torch); growth stops where it would overflow float32
        backed_off = (self._scale.double() * self.backoff_factor).float()
        grown = (self._scale.double() * self.growth_factor).float()
        grown = torch.where(torch.isfinite(grown), grown, self._scale)
        # S <- S backoff if not finite, S growth after growth_interval
        # finite steps, else S
        S = torch.where(grow, grown, self._scale)
        self._scale = torch.where(found_inf, backed_off, S)
        # tracker <- 0 whenever S changes (or would have grown), else + 1
        tracker = self._growth_tracker + 1
        self._growth_tracker = torch.where(found_inf | grow, 0, tracker)
        self._found_inf, self._stepped = {}, set()


# ---------------------------------------------------------------------------------------------
# Summation
# ---------------------------------------------------------------------------------------------


def _check_sum_args(x: Tensor, dtype: torch.dtype | None) -> torch.dtype:
    check_float("x", x)
    if x.dim() != 1:
        raise ValueError(f"x must be 1-D, got shape {tuple(x.shape)}")
    dtype = x.dtype if dtype is None else dtype
    _check_format_dtype(dtype, tuple(_LAYOUT))
    return dtype


def sequential_sum(x: Tensor, dtype: torch.dtype | None = None) -> Tensor:
    r"""Add the elements of ``x`` one at a time into an accumulator of dtype ``dtype``.

    .. math:: s_0 = 0,\qquad s_i = \mathrm{fl}(s_{i-1} + x_i)

    Each ``+`` is rounded to ``dtype``: once :math:`s` reaches :math:`2^{m+1}`, where the gap
    between numbers is 2, adding 1 is a tie that rounds back to :math:`s` (ties to even).

    Parameters
    ----------
    x : Tensor
        1-D, floating point, shape (N,).
    dtype : torch.dtype, optional
        The accumulator's dtype; ``x.dtype`` by default.

    Returns
    -------
    Tensor
        Shape (), of dtype ``dtype``.

    Examples
    --------
    >>> import torch
    >>> from dlref.precision import sequential_sum
    >>> ones = torch.ones(10_000, dtype=torch.bfloat16)
    >>> sequential_sum(ones), sequential_sum(ones, torch.float32)
    (tensor(256., dtype=torch.bfloat16), tensor(10000.))
    """
    dtype = _check_sum_args(x, dtype)
    s = torch.zeros((), dtype=dtype)
    for xi in x.to(dtype):
        # s_i = fl(s_{i-1} + x_i)
        s = s + xi
    return s


def kahan_sum(x: Tensor, dtype: torch.dtype | None = None) -> Tensor:
    r"""Kahan's compensated sum of ``x`` in ``dtype``: rounding errors kept.

    .. math::
        y = x_i - c,\quad t = \mathrm{fl}(s + y),\quad
        c = \mathrm{fl}(\mathrm{fl}(t - s) - y),\quad s = t

    ``c`` holds what the last addition lost; the error bound is
    :math:`2\varepsilon \sum |x_i|`, independent of N (Kahan, 1965), against
    :math:`(N-1)\varepsilon \sum |x_i|` for :func:`sequential_sum`, whose
    parameters and result it shares (``dtype`` is that of ``s``, ``c`` and
    every operation).

    Examples
    --------
    >>> import torch
    >>> from dlref.precision import kahan_sum
    >>> kahan_sum(torch.ones(10_000, dtype=torch.bfloat16))  # 10000, rounded
    tensor(9984., dtype=torch.bfloat16)
    """
    dtype = _check_sum_args(x, dtype)
    s = torch.zeros((), dtype=dtype)
    c = torch.zeros((), dtype=dtype)
    for xi in x.to(dtype):
        # y = x_i - c;  t = s + y;  c = (t - s) - y;  s = t
        y = xi - c
        t = s + y
        c = (t - s) - y
        s = t
    return s
