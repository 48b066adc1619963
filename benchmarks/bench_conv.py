"""dlref.conv against torch.nn.functional: conv2d forward + backward (input, weight and bias)."""

import torch
import torch.nn.functional as F

from dlref import conv


def _conv_inputs(N=32, C=64, H=28, C_out=64, k=3):
    x = torch.randn(N, C, H, H, requires_grad=True)
    w = torch.randn(C_out, C, k, k, requires_grad=True)
    b = torch.randn(C_out, requires_grad=True)
    return x, w, b


def _forward_backward(conv_fn):
    def run(x, w, b):
        conv_fn(x, w, b, padding=1).sum().backward()
        x.grad = w.grad = b.grad = None

    return run


CASES = [
    (
        "conv2d fwd+bwd (32, 64, 28, 28) 3x3 -> 64 float32",
        _conv_inputs,
        _forward_backward(conv.conv2d),
        _forward_backward(F.conv2d),
    ),
]
