"""Run every example on the site once per CPU kernel choice: each must pass under all of them.

The examples are those pytest collects: the docstrings of ``src/dlref`` (``--doctest-modules``)
and the ```{doctest}``` fences of the MyST pages in ``docs/`` (Sybil). Each run is one pytest
process under one of the kernel choices of ``cpu_kernels.RUNS`` (torch's ``default``, ``avx2``
and ``avx512`` kernels, with MKL's and oneDNN's code paths to match), and prints which kernels it
really got: torch falls back silently when the CPU lacks an instruction set.

Usage: ``python tools/doctest_cpus.py [PYTEST ARGS]`` (``make doctest-cpus``); exits 1 when any
run fails.
"""

from __future__ import annotations

import subprocess
import sys
import time

from cpu_kernels import RUNS, capability, environment


def main(pytest_args: list[str]) -> int:
    pytest_args = pytest_args or ["src/dlref", "docs"]
    rows = []
    for name, settings in RUNS.items():
        env = environment(name)
        got = capability(env)
        print(f"== {name}: torch runs its {got} kernels; {settings}", flush=True)
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", *pytest_args],
            env=env,
            capture_output=True,
            text=True,
        )
        lines = proc.stdout.strip().splitlines()
        if proc.returncode:
            print(proc.stdout[-20000:], proc.stderr[-5000:], sep="\n")
        last = lines[-1] if lines else "(no output)"
        rows.append((name, got, last, time.perf_counter() - start, proc.returncode))
    print(f"\n{'run':<8} {'kernels':<8} {'seconds':>7}  examples")
    for name, got, last, seconds, _ in rows:
        print(f"{name:<8} {got:<8} {seconds:>7.1f}  {last.strip('= ')}")
    failed = [name for name, *_, rc in rows if rc]
    print(
        f"failed under: {', '.join(failed)}"
        if failed
        else "every example passes under every kernel choice"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
