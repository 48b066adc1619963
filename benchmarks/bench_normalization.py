"""dlref.normalization against torch.nn.functional: forward + backward at (4096, 1024) float32."""

import torch
import torch.nn.functional as F

from dlref import normalization


def _ln_inputs(N=4096, D=1024):
    return (
        torch.randn(N, D, requires_grad=True),
        torch.randn(D, requires_grad=True),
        torch.randn(D, requires_grad=True),
    )


def _bn_inputs(N=4096, C=1024):
    return (
        torch.randn(N, C, requires_grad=True),
        torch.zeros(C),
        torch.ones(C),
        torch.randn(C, requires_grad=True),
        torch.randn(C, requires_grad=True),
    )


def _layer_norm(fn):
    def run(x, w, b):
        fn(x, (x.shape[-1],), w, b).sum().backward()
        x.grad = w.grad = b.grad = None

    return run


def _batch_norm(fn):
    def run(x, rm, rv, w, b):
        fn(x, rm, rv, w, b, training=True).sum().backward()
        x.grad = w.grad = b.grad = None

    return run


CASES = [
    (
        "layer_norm fwd+bwd 4096x1024 float32",
        _ln_inputs,
        _layer_norm(normalization.layer_norm),
        _layer_norm(F.layer_norm),
    ),
    (
        "batch_norm (training) fwd+bwd 4096x1024 float32",
        _bn_inputs,
        _batch_norm(normalization.batch_norm),
        _batch_norm(F.batch_norm),
    ),
]
