"""dlref.conditioning.condition_number against torch.linalg.cond of a symmetric Hessian."""

import numpy as np
import torch

from dlref.conditioning import condition_number


def _hessian(d=256):
    rng = np.random.default_rng(0)
    A = rng.standard_normal((d, d))
    H = A @ A.T + d * np.eye(d)  # symmetric positive definite
    return (H,)


CASES = [
    (
        "condition_number vs torch.linalg.cond, 256x256 SPD float64",
        _hessian,
        condition_number,
        lambda H: torch.linalg.cond(torch.from_numpy(H)).item(),
    ),
]
