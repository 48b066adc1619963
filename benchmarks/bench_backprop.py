"""dlref.backprop against torch autograd: the backward pass of a linear layer Y = X W."""

import torch

from dlref.backprop import linear_backward


def _linear_inputs(x_shape, d_out):
    def make():
        X = torch.randn(x_shape, requires_grad=True)
        W = torch.randn(x_shape[-1], d_out, requires_grad=True)
        Y = X @ W  # the forward pass, done once: only the backward is timed
        return X, W, torch.randn_like(Y), Y

    return make


def _ours(X, W, G, Y):
    linear_backward(X.detach(), W.detach(), G)  # dX = G W^T, dW = X^T G


def _autograd(X, W, G, Y):
    torch.autograd.grad(Y, (X, W), G, retain_graph=True)


CASES = [
    (
        "linear backward (dX, dW) X 1024x1024, W 1024x1024",
        _linear_inputs((1024, 1024), 1024),
        _ours,
        _autograd,
    ),
    (
        "linear backward (dX, dW) X 4x128x768, W 768x3072",
        _linear_inputs((4, 128, 768), 3072),
        _ours,
        _autograd,
    ),
]
