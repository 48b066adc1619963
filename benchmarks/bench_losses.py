"""dlref.losses against torch.nn.functional: forward + backward."""

import torch
import torch.nn.functional as F

from dlref import losses


def _ce_inputs(N=4096, C=1000):
    x = torch.randn(N, C, requires_grad=True)
    return x, torch.randint(0, C, (N,))


def _forward_backward(loss_fn):
    def run(x, target):
        loss_fn(x, target).backward()
        x.grad = None

    return run


def _bce_inputs(N=4096, C=1000):
    return torch.randn(N, C, requires_grad=True), torch.rand(N, C)


CASES = [
    (
        "cross_entropy fwd+bwd N=4096 C=1000 float32",
        _ce_inputs,
        _forward_backward(losses.cross_entropy),
        _forward_backward(F.cross_entropy),
    ),
    (
        "binary_cross_entropy_with_logits fwd+bwd 4096x1000",
        _bce_inputs,
        _forward_backward(losses.binary_cross_entropy_with_logits),
        _forward_backward(F.binary_cross_entropy_with_logits),
    ),
]
