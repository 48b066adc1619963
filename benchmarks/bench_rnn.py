"""dlref.rnn.LSTM against torch.nn.LSTM: forward + backward of one sequence batch."""

import torch
from torch import nn

from dlref import rnn

T, B, IN, H = 100, 32, 256, 256


def _lstm_inputs():
    torch.manual_seed(0)
    theirs = nn.LSTM(IN, H)
    ours = rnn.LSTM(IN, H)
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(T, B, IN, requires_grad=True)
    return x, ours, theirs


def _forward_backward(which):
    def run(x, ours, theirs):
        module = ours if which == "ours" else theirs
        output, (h_n, c_n) = module(x)
        output.sum().backward()
        x.grad = None
        module.zero_grad(set_to_none=True)

    return run


CASES = [
    (
        "LSTM fwd+bwd T=100 B=32 256->256 float32",
        _lstm_inputs,
        _forward_backward("ours"),
        _forward_backward("theirs"),
    ),
]
