"""dlref.optim against torch.optim: one ``step()`` on 20 float32 tensors, ~10M parameters.

On CPU torch's default is its single-tensor path (``foreach`` is chosen only on accelerators),
so that is the reference. The gradients are fixed; each call is one step of the optimizer.
"""

import torch

from dlref import optim

SHAPES = [(1000, 500)] * 20  # 20 tensors, 10M parameters in all


def _inputs(ours_cls, ref_cls, kwargs):
    def make():
        opts = []
        for cls in (ours_cls, ref_cls):
            torch.manual_seed(0)
            params = [torch.nn.Parameter(torch.randn(shape)) for shape in SHAPES]
            for p in params:
                p.grad = torch.randn_like(p)
            opts.append(cls(params, **kwargs))
        return tuple(opts)

    return make


def _step_ours(ours, ref):
    ours.step()


def _step_ref(ours, ref):
    ref.step()


def _case(name, kwargs, label):
    return (
        f"{name} step 20x(1000x500) float32 {label}",
        _inputs(getattr(optim, name), getattr(torch.optim, name), kwargs),
        _step_ours,
        _step_ref,
    )


CASES = [
    _case("SGD", dict(lr=1e-3), "plain"),
    _case("SGD", dict(lr=1e-3, momentum=0.9, nesterov=True), "nesterov"),
    _case("RMSprop", dict(lr=1e-3), "defaults"),
    _case("Adam", dict(lr=1e-3), "defaults"),
    _case("AdamW", dict(lr=1e-3), "wd=1e-2"),
]
