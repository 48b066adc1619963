"""Run every gallery script twice on the CPU and check that both runs print the same numbers.

Each ``gallery/plot_*.py`` runs in two Python processes side by side (``CUDA_VISIBLE_DEVICES``
empty, so the device line picks the CPU; matplotlib's Agg backend, so no window opens). The two
standard outputs must be identical, line for line. A script may print a figure that depends on
the machine's load, such as a speed-up; it says so on the same line with ``(varies with the
machine)``, and only that line is left out of the comparison.

The wall time of each run is printed too: the standalone cost of the script, import of torch
included, with the other run sharing the machine.

Usage: ``python tools/gallery_repro.py [SCRIPT ...]`` (``make gallery-repro``); exits 1 when a
script fails or prints different numbers.
"""

from __future__ import annotations

import difflib
import os
import pathlib
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
VARIES = "(varies with the machine)"


def run_twice(script: pathlib.Path) -> list[tuple[float, str]]:
    """Run one script in two fresh processes at once; returns each wall time and output."""
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", MPLBACKEND="Agg", PYTHONHASHSEED="0")
    start = time.perf_counter()
    procs = [
        subprocess.Popen(
            [sys.executable, script.name],
            cwd=script.parent,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    runs = []
    for proc in procs:
        stdout, stderr = proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"{script.name} exited with {proc.returncode}:\n{stderr}")
        runs.append((time.perf_counter() - start, stdout))
    return runs


def compared(stdout: str) -> list[str]:
    """The lines that must be the same on every run."""
    return [line for line in stdout.splitlines() if VARIES not in line]


def main(paths: list[str]) -> int:
    scripts = [pathlib.Path(p).resolve() for p in paths] or sorted(
        (ROOT / "gallery").glob("plot_*.py")
    )
    failed = []
    for script in scripts:
        try:
            (t1, first), (t2, second) = run_twice(script)
        except RuntimeError as error:
            print(f"FAIL {error}")
            failed.append(script.name)
            continue
        a, b = compared(first), compared(second)
        skipped = len(first.splitlines()) - len(a)
        same = a == b
        print(
            f"{'same' if same else 'DIFFERENT':9} {script.name:32} {len(a):3d} lines"
            f"{f' (+{skipped} machine-dependent)' if skipped else ''}"
            f"   runs {t1:5.1f} s, {t2:5.1f} s"
        )
        if not same:
            failed.append(script.name)
            sys.stdout.writelines(
                line + "\n" for line in difflib.unified_diff(a, b, "run 1", "run 2", lineterm="")
            )
    if failed:
        print(f"{len(failed)} of {len(scripts)} scripts failed: {', '.join(failed)}")
        return 1
    print(f"all {len(scripts)} scripts print the same numbers on both runs")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
