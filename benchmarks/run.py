"""Time dlref against the torch built-ins, in one run, print the ratios and write the page.

Each ``benchmarks/bench_<topic>.py`` defines ``CASES``: a list of ``(name, make_inputs, ours,
reference)``, where ``make_inputs()`` returns the arguments and both functions take them and do
the work to be timed. Calls alternate between ours and the reference, so both see the same machine
load; the median of each is reported. A module may also define ``EXTRA()``, returning Markdown
(figures that are not a ratio against a built-in, e.g. tokens per second), printed and put on the
page. Run with ``make bench`` (one thread, OMP_NUM_THREADS=1): the full run rewrites
``docs/performance.md``; ``python benchmarks/run.py <topic>`` runs one topic and writes nothing.

Every case makes its inputs on the CPU, so the times are CPU times. Warm-up calls come first
(first calls pay for allocations and kernel selection). Once CUDA is in use, each timed call is
followed by ``torch.cuda.synchronize()``: CUDA kernels run asynchronously, and without it the
clock would stop when the work is launched, not when it is done.
"""

import datetime
import importlib.util
import pathlib
import platform
import statistics
import sys
import time

import numpy as np
import torch

HERE = pathlib.Path(__file__).parent
PAGE = HERE.parent / "docs" / "performance.md"


def wait_for_device() -> None:
    """Block until queued CUDA work is done (nothing to wait for on the CPU)."""
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def median_seconds(fn_a, fn_b, args, repeats=30, warmup=3):
    """Median wall time of fn_a(*args) and fn_b(*args), calls interleaved, after warm-up."""
    for _ in range(warmup):
        fn_a(*args)
        fn_b(*args)
    wait_for_device()
    times_a, times_b = [], []
    for _ in range(repeats):
        for fn, times in ((fn_a, times_a), (fn_b, times_b)):
            t0 = time.perf_counter()
            fn(*args)
            wait_for_device()
            times.append(time.perf_counter() - t0)
    return statistics.median(times_a), statistics.median(times_b)


def load_modules(only=None):
    for path in sorted(HERE.glob("bench_*.py")):
        if only and only not in path.stem:
            continue
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield path.stem.removeprefix("bench_"), module


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{cpu}, {torch.get_num_threads()} thread(s); Python {platform.python_version()}, "
        f"torch {torch.__version__}, numpy {np.__version__}; {datetime.date.today().isoformat()}"
    )


def main(only=None):
    torch.manual_seed(0)
    print(machine())
    lines = []
    for topic, module in load_modules(only):
        print(f"\n{topic}")
        print(f"{'case':<60} {'dlref':>10} {'torch':>10} {'ratio':>7}")
        lines += [f"## {topic}", "", "| case | dlref | torch | ratio |", "|---|---:|---:|---:|"]
        for name, make_inputs, ours, reference in getattr(module, "CASES", []):
            t_ours, t_ref = median_seconds(ours, reference, make_inputs())
            ratio = t_ours / t_ref
            print(f"{name:<60} {t_ours * 1e3:>8.2f}ms {t_ref * 1e3:>8.2f}ms {ratio:>6.2f}x")
            lines.append(
                f"| {name} | {t_ours * 1e3:.2f} ms | {t_ref * 1e3:.2f} ms | {ratio:.2f}× |"
            )
        lines.append("")
        if hasattr(module, "EXTRA"):
            extra = module.EXTRA()
            print(extra)
            lines += [extra, ""]
    if only is None:
        PAGE.write_text(
            PAGE.read_text().split("<!-- results -->")[0]
            + "<!-- results -->\n\n"
            + f"Measured on {machine()}.\n\n"
            + "\n".join(lines).rstrip()
            + "\n"
        )
        print(f"\nwrote {PAGE}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
