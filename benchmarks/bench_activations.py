"""dlref.activations against torch: forward + backward on a (256, 4096) float32 tensor."""

import torch
import torch.nn.functional as F

from dlref import activations


def _inputs(shape=(256, 4096)):
    return (torch.randn(shape, requires_grad=True),)


def _forward_backward(fn):
    def run(x):
        fn(x).sum().backward()
        x.grad = None

    return run


CASES = [
    (
        f"{name} fwd+bwd 256x4096 float32",
        _inputs,
        _forward_backward(getattr(activations, name)),
        _forward_backward(reference),
    )
    for name, reference in [
        ("relu", F.relu),
        ("sigmoid", torch.sigmoid),
        ("tanh", torch.tanh),
        ("gelu", F.gelu),
        ("silu", F.silu),
        ("softplus", F.softplus),
    ]
]
