"""Time dlref against the torch built-ins, in one run, and print the ratio.

Each ``benchmarks/bench_<topic>.py`` defines ``CASES``: a list of ``(name, make_inputs, ours,
reference)``, where ``make_inputs()`` returns the arguments and both functions take them and do
the work to be timed. Calls alternate between ours and the reference, so both see the same machine
load; the median of each is reported. Run with ``make bench`` (one thread, OMP_NUM_THREADS=1).
"""

import importlib.util
import pathlib
import statistics
import sys
import time

import torch

HERE = pathlib.Path(__file__).parent


def median_seconds(fn_a, fn_b, args, repeats=30, warmup=3):
    """Median wall time of fn_a(*args) and fn_b(*args), calls interleaved."""
    for _ in range(warmup):
        fn_a(*args)
        fn_b(*args)
    times_a, times_b = [], []
    for _ in range(repeats):
        for fn, times in ((fn_a, times_a), (fn_b, times_b)):
            t0 = time.perf_counter()
            fn(*args)
            times.append(time.perf_counter() - t0)
    return statistics.median(times_a), statistics.median(times_b)


def load_cases(only=None):
    for path in sorted(HERE.glob("bench_*.py")):
        if only and only not in path.stem:
            continue
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield from module.CASES


def main(only=None):
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), CPU")
    print(f"{'case':<52} {'dlref':>10} {'torch':>10} {'ratio':>7}")
    for name, make_inputs, ours, reference in load_cases(only):
        t_ours, t_ref = median_seconds(ours, reference, make_inputs())
        print(f"{name:<52} {t_ours * 1e3:>8.2f}ms {t_ref * 1e3:>8.2f}ms {t_ours / t_ref:>6.2f}x")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
