"""dlref.tensors against torch: shape rules and FLOP counts, 1000 calls (100 for FLOPs) a case."""

import torch
from torch.utils.flop_counter import FlopCounterMode

from dlref import tensors

BROADCAST = [(8, 1, 6, 1), (7, 1, 5), (1, 6, 5)]
MATMUL = [((32, 128, 64), (32, 64, 128)), ((2, 1, 8, 16), (3, 16, 4)), ((3,), (5, 3, 4))]


def _broadcast_inputs():
    return (BROADCAST,)


def _matmul_inputs():
    return (MATMUL,)


def _repeat(fn, times=1000):
    def run(cases):
        for _ in range(times):
            fn(cases)

    return run


def _meta_matmul_shape(pairs):
    meta = [(torch.empty(a, device="meta"), torch.empty(b, device="meta")) for a, b in pairs]
    return [torch.matmul(x, y).shape for x, y in meta]


def _counted_flops(pairs):
    flops = []
    for a, b in pairs:
        with FlopCounterMode(display=False) as counter:
            torch.matmul(torch.empty(a, device="meta"), torch.empty(b, device="meta"))
        flops.append(counter.get_total_flops())
    return flops


CASES = [
    (
        "broadcast_shapes of 3 shapes x1000",
        _broadcast_inputs,
        _repeat(lambda shapes: tensors.broadcast_shapes(*shapes)),
        _repeat(lambda shapes: torch.broadcast_shapes(*shapes)),
    ),
    (
        "matmul_shape vs meta matmul .shape, 3 pairs x1000",
        _matmul_inputs,
        _repeat(lambda pairs: [tensors.matmul_shape(a, b) for a, b in pairs]),
        _repeat(_meta_matmul_shape),
    ),
    (
        "matmul_flops vs FlopCounterMode, 3 pairs x100",
        _matmul_inputs,
        _repeat(lambda pairs: [tensors.matmul_flops(a, b) for a, b in pairs], times=100),
        _repeat(_counted_flops, times=100),
    ),
]
