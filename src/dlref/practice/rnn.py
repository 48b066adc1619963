"""Exercise on the LSTM cell (reference tested against ``torch.nn.LSTMCell``)."""

from __future__ import annotations

import torch

from dlref.practice._cases import bad_input, randn, shape_check, values_check
from dlref.practice._grader import Check, Mistake, register

PAGE = "topics/rnn.html"
KEY = f"{PAGE}#key-equations"
OUTPUTS = ("i", "f", "g", "o", "c", "h")

# ------------------------------------------------------------------------------- reference


def lstm_cell_reference(x, h, c, W_ih, W_hh, b_ih, b_hh) -> dict:
    """The reference: one step of ``torch.nn.LSTMCell``, with its gates (torch's order i, f, g, o).

    Tested against ``torch.nn.LSTMCell`` (c and h) in ``tests/test_practice.py``.

    Parameters
    ----------
    x : Tensor
        Input, shape (B, I).
    h, c : Tensor
        Hidden and cell state, shape (B, H).
    W_ih, W_hh : Tensor
        Weights, shapes (4H, I) and (4H, H), gate blocks in the order i, f, g, o.
    b_ih, b_hh : Tensor
        Biases, shape (4H,).

    Returns
    -------
    dict
        The gates ``"i"``, ``"f"``, ``"g"``, ``"o"`` and the new ``"c"``, ``"h"``, each (B, H).

    Examples
    --------
    >>> import torch
    >>> from dlref.practice.rnn import lstm_cell_reference
    >>> _ = torch.manual_seed(0)
    >>> cell = torch.nn.LSTMCell(3, 2, dtype=torch.float64).requires_grad_(False)
    >>> x, h, c = torch.randn(4, 7, dtype=torch.float64).split([3, 2, 2], dim=1)  # (B, I), (B, H)
    >>> out = lstm_cell_reference(x, h, c, *cell.parameters())  # W_ih, W_hh, b_ih, b_hh
    >>> h_t, c_t = cell(x, (h, c))
    >>> torch.allclose(out["h"], h_t) and torch.allclose(out["c"], c_t)
    True
    >>> zero = lstm_cell_reference(x, h, c, *(0 * p for p in cell.parameters()))
    >>> zero["f"][0], torch.equal(zero["c"], c / 2)  # gates sigmoid(0), g = tanh(0): c_t = c / 2
    (tensor([0.5000, 0.5000], dtype=torch.float64), True)
    """
    return _lstm(x, h, c, W_ih, W_hh, b_ih, b_hh)


def _lstm(x, h, c, W_ih, W_hh, b_ih, b_hh, how: str = "") -> dict:
    """The LSTM step, or (``how``) one of the known mistakes."""
    gates = x @ W_ih.T + b_ih + h @ W_hh.T + b_hh  # (B, 4H)
    a_i, a_f, a_g, a_o = gates.chunk(4, dim=-1)  # torch's order: input, forget, cell, output
    if how == "gate_order_ifog":
        a_g, a_o = a_o, a_g
    if how == "gate_order_ifgo_as_iofg":
        a_f, a_o = a_o, a_f
    i, f, o = torch.sigmoid(a_i), torch.sigmoid(a_f), torch.sigmoid(a_o)
    g = torch.sigmoid(a_g) if how == "sigmoid_g" else torch.tanh(a_g)
    c_t = f * c + (g if how == "no_input_gate" else i * g)  # c_t = f c + i g
    h_t = o * (c_t if how == "no_tanh_c" else torch.tanh(c_t))  # h_t = o tanh(c_t)
    return {"i": i, "f": f, "g": g, "o": o, "c": c_t, "h": h_t}


def _variant(how):
    def fn(x, h, c, W_ih, W_hh, b_ih, b_hh):
        return _lstm(x, h, c, W_ih, W_hh, b_ih, b_hh, how)

    return fn


def _case(B, n_in, H, seed, scale=1.0):
    return {
        "x": randn(B, n_in, seed=seed, scale=scale),
        "h": randn(B, H, seed=seed + 1),
        "c": randn(B, H, seed=seed + 2),
        "W_ih": randn(4 * H, n_in, seed=seed + 3, scale=0.5),
        "W_hh": randn(4 * H, H, seed=seed + 4, scale=0.5),
        "b_ih": randn(4 * H, seed=seed + 5),
        "b_hh": randn(4 * H, seed=seed + 6),
    }


STUB = r'''
import torch
from torch import Tensor


def lstm_cell(x, h, c, W_ih, W_hh, b_ih, b_hh) -> dict:
    r"""One step of an LSTM cell, as torch.nn.LSTMCell.

        a = x W_ih^T + b_ih + h W_hh^T + b_hh, split in four along the last dimension into
        a_i, a_f, a_g, a_o (torch's order: input, forget, cell, output)
        i = sigmoid(a_i), f = sigmoid(a_f), g = tanh(a_g), o = sigmoid(a_o)
        c_t = f * c + i * g,   h_t = o * tanh(c_t)

    x: (B, I); h, c: (B, H); W_ih: (4H, I); W_hh: (4H, H); b_ih, b_hh: (4H,).
    Return a dict with the keys "i", "f", "g", "o", "c", "h" ((B, H) each; "c", "h" are
    c_t, h_t). Raise when x's last dimension is not W_ih's second.
    """
    raise NotImplementedError
'''

register(
    reference=lstm_cell_reference,
    stub=STUB,
    summary="one LSTM step returning the gates i, f, g, o and the new c, h",
    checks=(
        shape_check(lambda: [_case(2, 3, 2, 0)]),
        values_check(lambda: [_case(1, 2, 1, 10)]),
        Check("random shapes", lambda: [_case(3, 4, 5, 20), _case(1, 6, 3, 30)]),
        Check(
            "gradient of h vs the reference",
            lambda: [_case(2, 3, 4, 40)],
            kind="grad",
            grad_of="h",
            grad_wrt=("x", "h", "c", "W_ih", "W_hh", "b_ih"),
        ),
        Check(
            "edge: saturated gates (inputs of ±100), empty batch",
            lambda: [_case(2, 3, 2, 50, scale=100.0), _case(0, 3, 2, 60)],
        ),
        bad_input(
            "x of the wrong width",
            "x is (2, 5) but W_ih is (8, 3)",
            lambda: [{**_case(2, 3, 2, 70), "x": randn(2, 5, seed=71)}],
        ),
    ),
    difficulty="medium",
    page=KEY,
    outputs=OUTPUTS,
    mistakes=(
        Mistake(
            "gate_order",
            _variant("gate_order_ifog"),
            "torch stacks the gates as input, forget, cell (g), output: you read the "
            "third block as the output gate and the fourth as g (the i, f, o, g order).",
            KEY,
        ),
        Mistake(
            "gate_order_iogf",
            _variant("gate_order_ifgo_as_iofg"),
            "torch stacks the gates as input, forget, cell (g), output: you swapped the "
            "forget and output blocks.",
            KEY,
        ),
        Mistake(
            "sigmoid_g",
            _variant("sigmoid_g"),
            "the candidate g uses tanh (values in (-1, 1)), not sigmoid; only i, f and o "
            "are sigmoid gates.",
            KEY,
        ),
        Mistake(
            "no_input_gate",
            _variant("no_input_gate"),
            "c_t = f * c + i * g: the input gate i scales the candidate g.",
            KEY,
        ),
        Mistake(
            "no_tanh_c",
            _variant("no_tanh_c"),
            "h_t = o * tanh(c_t): the cell state goes through tanh before the output gate.",
            KEY,
        ),
    ),
)
