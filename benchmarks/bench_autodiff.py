"""Forward vs reverse mode: the gradient of f: R^n -> R by n jvps or by one vjp; Scalar backward.

``python benchmarks/run.py autodiff`` times the cases below. ``python benchmarks/bench_autodiff.py``
prints the Markdown table of docs/topics/autodiff.md (run it with OMP_NUM_THREADS=1).
"""

import torch
from torch.func import jvp, vjp

from dlref.autodiff import Scalar

SIZES = (10, 100, 1000)


def f(x):
    """f: R^n -> R, elementwise work then a sum."""
    return (x.tanh() * x.exp()).sum()


def grad_by_jvps(x):
    """n forward-mode passes: the i-th jvp with tangent e_i gives df/dx_i."""
    eye = torch.eye(x.numel(), dtype=x.dtype)
    return torch.stack([jvp(f, (x,), (eye[i],))[1] for i in range(x.numel())])


def grad_by_vjp(x):
    """One reverse-mode pass: the vjp with cotangent 1 = dL/dL gives the whole gradient."""
    _, pullback = vjp(f, x)
    return pullback(torch.ones((), dtype=x.dtype))[0]


def _point(n):
    return lambda: (torch.randn(n, dtype=torch.float64),)


def expression(a, b, c):
    """The same small expression for Scalars and for 0-d tensors: 15 operations."""
    u = a * b + c.tanh()
    v = (u * a).sigmoid() + (b / c) ** 2
    return (u * v).exp() - v.relu() + (a - c) * u


def _scalars():
    return ([0.3, -1.2, 0.8],)


def scalar_backward(values):
    leaves = [Scalar(v) for v in values]
    expression(*leaves).backward()
    return [x.grad for x in leaves]


def torch_backward(values):
    leaves = [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in values]
    expression(*leaves).backward()
    return [x.grad for x in leaves]


CASES = [
    (f"grad of R^{n}->R: {n} jvps vs 1 vjp", _point(n), grad_by_jvps, grad_by_vjp) for n in SIZES
] + [
    (
        "Scalar fwd+bwd, 15 ops, vs torch autograd 0-d f64",
        _scalars,
        scalar_backward,
        torch_backward,
    ),
]


if __name__ == "__main__":
    import platform

    from run import median_seconds

    torch.manual_seed(0)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), CPU, "
        f"{platform.processor() or platform.machine()}\n"
    )
    print("| n | n × `jvp` | 1 × `vjp` | ratio |")
    print("|---:|---:|---:|---:|")
    for n in SIZES:
        t_fwd, t_rev = median_seconds(grad_by_jvps, grad_by_vjp, _point(n)(), repeats=15)
        print(f"| {n} | {t_fwd * 1e3:.2f} ms | {t_rev * 1e3:.3f} ms | {t_fwd / t_rev:.0f}× |")
