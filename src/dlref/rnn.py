r"""Recurrent networks: the vanilla RNN, the LSTM and the GRU.

The cells and the sequence modules have the names, arguments, defaults, parameter names, shapes,
gate order and initialisation of :mod:`torch.nn`, so a state dict loads from one into the other
both ways, and in float64 they give the same outputs and gradients. LSTM projections
(``proj_size``) are left out.

Every step of a recurrent network applies one cell to the input :math:`x_t` and the previous state.
The input part of the pre-activation, :math:`W_{ih} x_t + b_{ih}`, does not depend on the state, so
the sequence modules compute it for all time steps in one matrix product before the loop; only
:math:`W_{hh} h_{t-1} + b_{hh}` has to wait for the previous step.

Gradient clipping moved to ``dlref.clipping``; ``clip_grad_norm_`` and ``clip_grad_value_``
still import from here.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dlref._checks import (
    check_choice,
    check_dtype_of,
    check_factory,
    check_float,
    check_fraction,
    check_int,
)
from dlref.clipping import clip_grad_norm_, clip_grad_value_  # re-export

__all__ = [
    "RNNCell",
    "LSTMCell",
    "GRUCell",
    "RNN",
    "LSTM",
    "GRU",
    "clip_grad_norm_",
    "clip_grad_value_",
]

State = tuple[Tensor, ...]  # (h,) for the RNN and the GRU, (h, c) for the LSTM
_NONLINEARITIES = {"tanh": torch.tanh, "relu": torch.relu}


# ---------------------------------------------------------------------------------------------
# Helpers: the checks of input and state shapes, which name both shapes.
# ---------------------------------------------------------------------------------------------


def _check_input(input: object, input_size: int, dims: tuple[int, int], layout: str) -> None:
    check_float("input", input)
    if input.dim() not in dims:
        raise ValueError(
            f"input must have {dims[0]} dimensions (unbatched) or {dims[1]} {layout}, got shape "
            f"{tuple(input.shape)}"
        )
    if input.shape[-1] != input_size:
        raise ValueError(
            f"input has shape {tuple(input.shape)} but input_size is {input_size}: the last "
            "dimension must equal input_size"
        )


def _check_state(name: str, state: object, expected: tuple[int, ...], input: Tensor) -> None:
    check_float(name, state)
    if tuple(state.shape) != expected:
        raise ValueError(
            f"{name} has shape {tuple(state.shape)} but input of shape {tuple(input.shape)} "
            f"needs {name} of shape {expected}"
        )


def _initial_states(
    hx: object, names: tuple[str, ...], shape: tuple, batch_dim: int, input: Tensor, like: Tensor
) -> State:
    """One state per name, each of ``shape`` (batch at ``batch_dim``): zeros, or ``hx`` checked.

    ``input`` is the input as given (its shape goes into the errors), ``like`` the batched one.
    """
    if hx is None:
        return tuple(like.new_zeros(shape) for _ in names)
    if len(names) > 1 and not (isinstance(hx, (tuple, list)) and len(hx) == len(names)):
        raise TypeError(f"hx must be a tuple ({', '.join(names)}) of tensors, got {hx!r:.60}")
    batched = input.dim() == like.dim()
    expected = shape if batched else shape[:batch_dim] + shape[batch_dim + 1 :]
    states = tuple(hx) if len(names) > 1 else (hx,)
    for name, s in zip(names, states, strict=True):
        _check_state(name, s, expected, input)
    return tuple(s if batched else s.unsqueeze(batch_dim) for s in states)


# ---------------------------------------------------------------------------------------------
# Core: one time step of each cell, given the input projection xw_t = W_ih x_t + b_ih.
# ---------------------------------------------------------------------------------------------


def _rnn_step(xw_t, state, w_hh, b_hh, nonlinearity: str) -> State:
    """xw_t = W_ih x_t + b_ih (B, H), (h_{t-1},) -> (h_t,)."""
    (h,) = state
    # h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh), (B, H)
    h = _NONLINEARITIES[nonlinearity](xw_t + F.linear(h, w_hh, b_hh))
    return (h,)


def _lstm_step(xw_t, state, w_hh, b_hh) -> State:
    """xw_t = W_ih x_t + b_ih (B, 4H), (h_{t-1}, c_{t-1}) -> (h_t, c_t)."""
    h, c = state
    gates = xw_t + F.linear(h, w_hh, b_hh)  # (B, 4H), in the order i, f, g, o
    a_i, a_f, a_g, a_o = gates.chunk(4, dim=-1)
    i = torch.sigmoid(a_i)  # i_t, input gate
    f = torch.sigmoid(a_f)  # f_t, forget gate
    g = torch.tanh(a_g)  # g_t, candidate cell
    o = torch.sigmoid(a_o)  # o_t, output gate
    c = f * c + i * g  # c_t
    h = o * torch.tanh(c)  # h_t
    return h, c


def _gru_step(xw_t, state, w_hh, b_hh) -> State:
    """xw_t = W_ih x_t + b_ih (B, 3H), (h_{t-1},) -> (h_t,)."""
    (h,) = state
    x_r, x_z, x_n = xw_t.chunk(3, dim=-1)  # W_i* x_t + b_i*, each (B, H)
    # W_h* h_{t-1} + b_h*, each (B, H)
    h_r, h_z, h_n = F.linear(h, w_hh, b_hh).chunk(3, dim=-1)
    r = torch.sigmoid(x_r + h_r)  # r_t, reset gate
    z = torch.sigmoid(x_z + h_z)  # z_t, update gate
    n = torch.tanh(x_n + r * h_n)  # n_t, candidate
    h = (1 - z) * n + z * h  # h_t
    return (h,)


def _run_direction(
    step: Callable, xw: Tensor, state: State, w_hh: Tensor, b_hh: Tensor | None, reverse: bool
) -> tuple[Tensor, State]:
    """Apply ``step`` along time. xw: (T, B, G) -> outputs h_1..h_T (T, B, H), final state."""
    # Iterate the (T, B, G) projection, never index it: the backward of xw[t] writes a zero-filled
    # (T, B, G) gradient at every step; the backward of unbind stacks the T pieces once.
    xs = xw.unbind(0)
    hs = []
    for xw_t in reversed(xs) if reverse else xs:
        state = step(xw_t, state, w_hh, b_hh)
        hs.append(state[0])
    if reverse:
        hs.reverse()
    return torch.stack(hs), state  # (T, B, H)


# ---------------------------------------------------------------------------------------------
# Cells: one step, for input (B, I) or unbatched (I,).
# ---------------------------------------------------------------------------------------------


class _Cell(nn.Module):
    """Parameters, initialisation and state handling shared by the three cells."""

    _state_names: tuple[str, ...] = ("hx",)

    def __init__(self, input_size, hidden_size, bias, num_chunks, device=None, dtype=None):
        super().__init__()
        input_size = check_int("input_size", input_size)
        hidden_size = check_int("hidden_size", hidden_size)
        check_factory(device, dtype)
        factory = {"device": device, "dtype": dtype}
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        self.weight_ih = nn.Parameter(torch.empty(num_chunks * hidden_size, input_size, **factory))
        self.weight_hh = nn.Parameter(torch.empty(num_chunks * hidden_size, hidden_size, **factory))
        if bias:
            self.bias_ih = nn.Parameter(torch.empty(num_chunks * hidden_size, **factory))
            self.bias_hh = nn.Parameter(torch.empty(num_chunks * hidden_size, **factory))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}" + ("" if self.bias else ", bias=False")

    def reset_parameters(self) -> None:
        """Every weight and bias uniform in :math:`[-1/\\sqrt{H}, 1/\\sqrt{H}]`, as in torch."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    _step: Callable  # one time step: (xw_t, state, w_hh, b_hh) -> state

    def _forward(self, input: Tensor, hx: object) -> State:
        _check_input(input, self.input_size, (1, 2), "(batch, input_size)")
        check_dtype_of("input", input, self.weight_ih)
        batched = input.dim() == 2
        x = input if batched else input.unsqueeze(0)  # (B, I)
        shape = (x.shape[0], self.hidden_size)
        states = _initial_states(hx, self._state_names, shape, 0, input, x)  # (B, H) each
        xw = F.linear(x, self.weight_ih, self.bias_ih)  # W_ih x + b_ih, (B, G)
        new = self._step(xw, states, self.weight_hh, self.bias_hh)
        return new if batched else tuple(s.squeeze(0) for s in new)


class RNNCell(_Cell):
    r"""One step of the vanilla (Elman) RNN; a drop-in :class:`torch.nn.RNNCell`.

    .. math::

        h' = \tanh(W_{ih} x + b_{ih} + W_{hh} h + b_{hh})

    (``relu`` in place of ``tanh`` with ``nonlinearity="relu"``).

    Parameters
    ----------
    input_size : int
        Features of the input :math:`x`.
    hidden_size : int
        Features of the state :math:`h`.
    bias : bool, optional
        If False, no ``bias_ih`` and ``bias_hh``. Default True.
    nonlinearity : {'tanh', 'relu'}, default 'tanh'

    Notes
    -----
    Shapes: ``input`` (B, input_size) or (input_size,); ``hx`` (B, hidden_size) or
    (hidden_size,), zeros when omitted; the output has the shape of ``hx``. Parameters
    ``weight_ih`` (H, input_size), ``weight_hh`` (H, H), ``bias_ih`` and ``bias_hh`` (H,), all
    initialised uniform in :math:`[-1/\sqrt{H}, 1/\sqrt{H}]`.

    Examples
    --------
    >>> import torch
    >>> from dlref.rnn import RNNCell
    >>> cell = RNNCell(3, 2, bias=False)
    >>> with torch.no_grad():
    ...     _ = cell.weight_ih.fill_(0.5), cell.weight_hh.fill_(0.0)
    >>> cell(torch.tensor([1.0, 1.0, 0.0]))  # tanh(0.5 + 0.5)
    tensor([0.7616, 0.7616], grad_fn=<SqueezeBackward1>)
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        nonlinearity: str = "tanh",
        device=None,
        dtype=None,
    ) -> None:
        check_choice("nonlinearity", nonlinearity, tuple(_NONLINEARITIES))
        super().__init__(input_size, hidden_size, bias, 1, device, dtype)
        self.nonlinearity = nonlinearity

    def _step(self, xw_t: Tensor, state: State, w_hh: Tensor, b_hh: Tensor | None) -> State:
        return _rnn_step(xw_t, state, w_hh, b_hh, self.nonlinearity)

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        """The next state h', shape of ``hx``."""
        return self._forward(input, hx)[0]


class LSTMCell(_Cell):
    r"""One step of the long short-term memory; a drop-in :class:`torch.nn.LSTMCell`.

    .. math::

        i &= \sigma(W_{ii} x + b_{ii} + W_{hi} h + b_{hi}) \\
        f &= \sigma(W_{if} x + b_{if} + W_{hf} h + b_{hf}) \\
        g &= \tanh(W_{ig} x + b_{ig} + W_{hg} h + b_{hg}) \\
        o &= \sigma(W_{io} x + b_{io} + W_{ho} h + b_{ho}) \\
        c' &= f \odot c + i \odot g \\
        h' &= o \odot \tanh(c')

    The four gates are stacked in the order i, f, g, o: ``weight_ih`` is
    :math:`[W_{ii}; W_{if}; W_{ig}; W_{io}]`, shape (4H, input_size), ``weight_hh`` (4H, H), the
    biases (4H,). The arguments are those of :class:`RNNCell` but ``nonlinearity``.

    Notes
    -----
    Shapes: ``input`` (B, input_size) or (input_size,); ``hx`` a tuple ``(h, c)``, each
    (B, H) or (H,), zeros when omitted; returns ``(h', c')`` of the same shapes.

    Examples
    --------
    >>> import torch
    >>> from dlref.rnn import LSTMCell
    >>> cell = LSTMCell(1, 1).requires_grad_(False)  # set the parameters in place
    >>> _ = cell.weight_ih.zero_(), cell.weight_hh.zero_()
    >>> _ = cell.bias_ih.copy_(torch.tensor([0.0, 100.0, 0.0, 100.0])), cell.bias_hh.zero_()
    >>> h, c = cell(torch.zeros(1), (torch.zeros(1), torch.tensor([2.0])))
    >>> c, h  # forget gate open (f = 1), candidate g = 0: the cell keeps c; h = tanh(2)
    (tensor([2.]), tensor([0.9640]))
    """

    _state_names = ("h_0", "c_0")
    _step = staticmethod(_lstm_step)

    def __init__(self, input_size: int, hidden_size: int, bias=True, device=None, dtype=None):
        super().__init__(input_size, hidden_size, bias, 4, device, dtype)

    def forward(self, input: Tensor, hx=None):
        """The next state ``(h', c')``."""
        return self._forward(input, hx)


class GRUCell(_Cell):
    r"""One step of the gated recurrent unit; a drop-in :class:`torch.nn.GRUCell`.

    .. math::

        r &= \sigma(W_{ir} x + b_{ir} + W_{hr} h + b_{hr}) \\
        z &= \sigma(W_{iz} x + b_{iz} + W_{hz} h + b_{hz}) \\
        n &= \tanh(W_{in} x + b_{in} + r \odot (W_{hn} h + b_{hn})) \\
        h' &= (1 - z) \odot n + z \odot h

    Gate order r, z, n: ``weight_ih`` (3H, input_size), ``weight_hh`` (3H, H), biases (3H,).
    The reset gate multiplies :math:`W_{hn} h + b_{hn}`, bias included, as in torch (and cuDNN);
    the GRU paper applies it to :math:`h` before the product. The arguments are those of
    :class:`RNNCell` but ``nonlinearity``.

    Examples
    --------
    >>> import torch
    >>> from dlref.rnn import GRUCell
    >>> cell = GRUCell(2, 3)
    >>> with torch.no_grad():
    ...     _ = cell.bias_hh[3:6].fill_(100.0)  # update gate z = 1: h' = h
    >>> h = torch.tensor([0.1, -0.2, 0.3])
    >>> cell(torch.randn(2), h)
    tensor([ 0.1000, -0.2000,  0.3000], grad_fn=<SqueezeBackward1>)
    """

    _step = staticmethod(_gru_step)

    def __init__(self, input_size: int, hidden_size: int, bias=True, device=None, dtype=None):
        super().__init__(input_size, hidden_size, bias, 3, device, dtype)

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        """The next state h', shape of ``hx``."""
        return self._forward(input, hx)[0]


# ---------------------------------------------------------------------------------------------
# Sequence modules: layers x directions x time steps of one cell.
# ---------------------------------------------------------------------------------------------


class _RNNBase(nn.Module):
    """Parameters, checks and the layer/direction loop shared by RNN, LSTM and GRU."""

    _num_chunks = 1
    _state_names: tuple[str, ...] = ("hx",)

    # fmt: off
    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 device=None, dtype=None) -> None:
        # fmt: on
        super().__init__()
        input_size = check_int("input_size", input_size)
        hidden_size = check_int("hidden_size", hidden_size)
        num_layers = check_int("num_layers", num_layers)
        dropout = check_fraction("dropout", dropout)
        check_factory(device, dtype)
        if dropout > 0 and num_layers == 1:
            warnings.warn(
                "dropout option adds dropout after all but last recurrent layer, so non-zero "
                f"dropout expects num_layers greater than 1, but got dropout={dropout} and "
                f"num_layers={num_layers}",
                stacklevel=3,
            )
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.bidirectional = bias, batch_first, bidirectional
        self.dropout = dropout
        factory = {"device": device, "dtype": dtype}
        G = self._num_chunks * hidden_size  # gate size
        D = 2 if bidirectional else 1
        # Registered in torch's order (layer, direction, w_ih, w_hh, b_ih, b_hh), so that the same
        # seed gives the same initial weights.
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else D * hidden_size
            shapes = {"weight_ih": (G, layer_input), "weight_hh": (G, hidden_size)}
            if bias:
                shapes |= {"bias_ih": (G,), "bias_hh": (G,)}
            for direction in range(D):
                sfx = f"_l{layer}" + ("_reverse" if direction else "")
                for name, shape in shapes.items():
                    setattr(self, name + sfx, nn.Parameter(torch.empty(shape, **factory)))
        self.reset_parameters()

    def extra_repr(self) -> str:
        defaults = dict(num_layers=1, bias=True, batch_first=False, dropout=0, bidirectional=False)
        changed = [f", {k}={v}" for k, d in defaults.items() if (v := getattr(self, k)) != d]
        return f"{self.input_size}, {self.hidden_size}" + "".join(changed)

    reset_parameters = _Cell.reset_parameters
    _step: Callable  # one time step: (xw_t, state, w_hh, b_hh) -> state

    def _weights(self, layer: int, direction: int) -> tuple[Tensor, ...]:
        sfx = f"_l{layer}" + ("_reverse" if direction else "")
        b_ih, b_hh = (getattr(self, n + sfx) if self.bias else None for n in ("bias_ih", "bias_hh"))
        return getattr(self, "weight_ih" + sfx), getattr(self, "weight_hh" + sfx), b_ih, b_hh

    def _forward(self, input: Tensor, hx: object) -> tuple[Tensor, State]:
        layout = "(batch, seq, input_size)" if self.batch_first else "(seq, batch, input_size)"
        _check_input(input, self.input_size, (2, 3), layout)
        check_dtype_of("input", input, self.weight_ih_l0)
        if input.shape[1 if self.batch_first and input.dim() == 3 else 0] == 0:
            raise ValueError(f"input has shape {tuple(input.shape)}: its sequence length is 0")
        batched = input.dim() == 3
        if not batched:
            x = input.unsqueeze(1)  # (T, 1, I)
        else:
            x = input.transpose(0, 1) if self.batch_first else input  # (T, B, I)
        D, L, H = 2 if self.bidirectional else 1, self.num_layers, self.hidden_size
        B = x.shape[1]
        states = _initial_states(hx, self._state_names, (L * D, B, H), 1, input, x)  # (L*D, B, H)

        finals = []
        for layer in range(L):
            outputs = []
            for direction in range(D):
                w_ih, w_hh, b_ih, b_hh = self._weights(layer, direction)
                xw = F.linear(x, w_ih, b_ih)  # W_ih x_t + b_ih for all t in one matmul: (T, B, G)
                s0 = tuple(s[layer * D + direction] for s in states)  # (B, H) each
                out, s_T = _run_direction(self._step, xw, s0, w_hh, b_hh, reverse=direction == 1)
                outputs.append(out)
                finals.append(s_T)
            x = torch.cat(outputs, dim=-1) if D == 2 else outputs[0]  # (T, B, D*H)
            if self.training and self.dropout > 0 and layer < L - 1:
                x = F.dropout(x, self.dropout, training=True)  # between layers only
        h_n = tuple(torch.stack(s) for s in zip(*finals, strict=True))  # (L*D, B, H) each

        if not batched:
            return x.squeeze(1), tuple(s.squeeze(1) for s in h_n)
        return (x.transpose(0, 1) if self.batch_first else x), h_n


class RNN(_RNNBase):
    r"""The vanilla (Elman) RNN over a sequence; a drop-in :class:`torch.nn.RNN`.

    .. math:: h_t = \tanh(W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh})

    for every layer and direction (``relu`` in place of ``tanh`` with ``nonlinearity="relu"``).
    ``nonlinearity`` is the fourth argument, as in torch.

    Parameters
    ----------
    input_size : int
        Features of the input :math:`x_t`.
    hidden_size : int
        Features of the state :math:`h_t` (H).
    num_layers : int, default 1
        Stacked layers: layer :math:`l > 0` reads the outputs of layer :math:`l - 1`.
    nonlinearity : {'tanh', 'relu'}, default 'tanh'
    bias : bool, optional
        If False, no ``bias_ih_l*`` and ``bias_hh_l*``. Default True.
    batch_first : bool, optional
        If True, ``input`` and ``output`` are (B, T, ·); the states stay (L·D, B, H).
        Default False.
    dropout : float, default 0.0
        Dropout on the outputs of every layer but the last, in training mode only.
    bidirectional : bool, optional
        If True, each layer also runs backwards in time (parameters ``*_reverse``) and the
        outputs of the two directions are concatenated: D = 2. Default False.

    Notes
    -----
    Shapes: ``input`` (T, B, input_size), (B, T, input_size) with ``batch_first``, or unbatched
    (T, input_size); ``hx`` (L·D, B, H) or unbatched (L·D, H), zeros when omitted. Returns
    ``output, h_n``: ``output`` (T, B, D·H) (or (B, T, D·H), (T, D·H)) holds the last layer's
    :math:`h_t` for every t; ``h_n`` the last step of every layer and direction, at index
    ``layer * D + direction``. Parameters ``weight_ih_l{k}`` (H, input size of layer k),
    ``weight_hh_l{k}`` (H, H), ``bias_ih_l{k}``, ``bias_hh_l{k}`` (H,), initialised uniform in
    :math:`[-1/\sqrt{H}, 1/\sqrt{H}]` in torch's order.

    Examples
    --------
    >>> import torch
    >>> from dlref.rnn import RNN
    >>> rnn = RNN(10, 20, num_layers=2)
    >>> output, h_n = rnn(torch.randn(5, 3, 10))  # (T, B, input_size)
    >>> tuple(output.shape), tuple(h_n.shape)
    ((5, 3, 20), (2, 3, 20))
    >>> torch.equal(output[-1], h_n[-1])  # the last layer's last step
    True
    """

    # fmt: off
    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 nonlinearity: str = "tanh", bias: bool = True, batch_first: bool = False,
                 dropout: float = 0.0, bidirectional: bool = False, device=None, dtype=None):
        # fmt: on
        check_choice("nonlinearity", nonlinearity, tuple(_NONLINEARITIES))
        args = (input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional)
        super().__init__(*args, device, dtype)
        self.nonlinearity = nonlinearity

    def _step(self, xw_t: Tensor, state: State, w_hh: Tensor, b_hh: Tensor | None) -> State:
        return _rnn_step(xw_t, state, w_hh, b_hh, self.nonlinearity)

    def forward(self, input: Tensor, hx: Tensor | None = None):
        """``output, h_n`` for ``input`` and the initial state ``hx``."""
        output, (h_n,) = self._forward(input, hx)
        return output, h_n


class LSTM(_RNNBase):
    r"""The LSTM over a sequence; a drop-in :class:`torch.nn.LSTM` (without ``proj_size``).

    .. math::

        i_t &= \sigma(W_{ii} x_t + b_{ii} + W_{hi} h_{t-1} + b_{hi}) \\
        f_t &= \sigma(W_{if} x_t + b_{if} + W_{hf} h_{t-1} + b_{hf}) \\
        g_t &= \tanh(W_{ig} x_t + b_{ig} + W_{hg} h_{t-1} + b_{hg}) \\
        o_t &= \sigma(W_{io} x_t + b_{io} + W_{ho} h_{t-1} + b_{ho}) \\
        c_t &= f_t \odot c_{t-1} + i_t \odot g_t \\
        h_t &= o_t \odot \tanh(c_t)

    Gates stacked in the order i, f, g, o (4H rows), as in torch. LSTM projections
    (``proj_size``) are not implemented. The arguments are those of :class:`RNN` but
    ``nonlinearity``; ``hidden_size`` (H) is the size of both :math:`h_t` and :math:`c_t`.

    Notes
    -----
    Shapes as for :class:`RNN`, with ``hx = (h_0, c_0)`` (zeros when omitted); returns
    ``output, (h_n, c_n)``. Parameters ``weight_ih_l{k}`` (4H, input size of layer k),
    ``weight_hh_l{k}`` (4H, H), ``bias_ih_l{k}``, ``bias_hh_l{k}`` (4H,).

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from dlref.rnn import LSTM
    >>> ours, theirs = LSTM(4, 8, batch_first=True), nn.LSTM(4, 8, batch_first=True)
    >>> ours.load_state_dict(theirs.state_dict())  # same names and shapes
    <All keys matched successfully>
    >>> x = torch.randn(2, 6, 4)  # (B, T, input_size)
    >>> output, (h_n, c_n) = ours(x)
    >>> tuple(output.shape), tuple(h_n.shape), tuple(c_n.shape)
    ((2, 6, 8), (1, 2, 8), (1, 2, 8))
    >>> torch.allclose(output, theirs(x)[0], atol=1e-6)
    True
    """

    _num_chunks = 4
    _state_names = ("h_0", "c_0")
    _step = staticmethod(_lstm_step)

    def forward(self, input: Tensor, hx=None):
        """``output, (h_n, c_n)`` for ``input`` and the initial state ``hx = (h_0, c_0)``."""
        return self._forward(input, hx)


class GRU(_RNNBase):
    r"""The GRU over a sequence; a drop-in :class:`torch.nn.GRU`.

    .. math::

        r_t &= \sigma(W_{ir} x_t + b_{ir} + W_{hr} h_{t-1} + b_{hr}) \\
        z_t &= \sigma(W_{iz} x_t + b_{iz} + W_{hz} h_{t-1} + b_{hz}) \\
        n_t &= \tanh(W_{in} x_t + b_{in} + r_t \odot (W_{hn} h_{t-1} + b_{hn})) \\
        h_t &= (1 - z_t) \odot n_t + z_t \odot h_{t-1}

    Gates stacked in the order r, z, n (3H rows), as in torch. The arguments are those of
    :class:`RNN` but ``nonlinearity``.

    Notes
    -----
    Shapes as for :class:`RNN`; parameters ``weight_ih_l{k}`` (3H, ·), ``weight_hh_l{k}``
    (3H, H), biases (3H,). Returns ``output, h_n``.

    Examples
    --------
    >>> import torch
    >>> from dlref.rnn import GRU
    >>> gru = GRU(3, 5, bidirectional=True)
    >>> output, h_n = gru(torch.randn(7, 3))  # unbatched (T, input_size)
    >>> tuple(output.shape), tuple(h_n.shape)
    ((7, 10), (2, 5))
    """

    _num_chunks = 3
    _step = staticmethod(_gru_step)

    def forward(self, input: Tensor, hx: Tensor | None = None):
        """``output, h_n`` for ``input`` and the initial state ``hx``."""
        output, (h_n,) = self._forward(input, hx)
        return output, h_n
