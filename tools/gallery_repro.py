"""Run every gallery script on the CPU under each kernel choice: every run prints the same numbers.

Each ``gallery/plot_*.py`` runs in three Python processes side by side, one per CPU kernel choice
of ``cpu_kernels.RUNS`` (torch's ``default``, ``avx2`` and ``avx512`` kernels, with MKL's and
oneDNN's code paths to match), as three different CPUs would run it (``CUDA_VISIBLE_DEVICES``
empty, so the device line picks the CPU; matplotlib's Agg backend, so no window opens). The
standard outputs must be identical, line for line. A script may print a figure that depends on
the machine's load, such as a speed-up; it says so on the same line with ``(varies with the
machine)``, and only that line is left out of the comparison.

The wall time of each run is printed too: the standalone cost of the script, import of torch
included, with the other runs sharing the machine.

Usage: ``python tools/gallery_repro.py [SCRIPT ...]`` (``make gallery-repro``); exits 1 when a
script fails or prints different numbers.
"""

from __future__ import annotations

import difflib
import pathlib
import subprocess
import sys
import time

from cpu_kernels import RUNS, environment

ROOT = pathlib.Path(__file__).resolve().parent.parent
VARIES = "(varies with the machine)"


def run_each(script: pathlib.Path) -> list[tuple[float, str]]:
    """Run one script once per kernel choice, all at once; returns each wall time and output."""
    extra = {"CUDA_VISIBLE_DEVICES": "", "MPLBACKEND": "Agg", "PYTHONHASHSEED": "0"}
    start = time.perf_counter()
    procs = [
        subprocess.Popen(
            [sys.executable, script.name],
            cwd=script.parent,
            env=environment(name, **extra),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in RUNS
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
            runs = run_each(script)
        except RuntimeError as error:
            print(f"FAIL {error}")
            failed.append(script.name)
            continue
        outputs = [compared(stdout) for _, stdout in runs]
        skipped = len(runs[0][1].splitlines()) - len(outputs[0])
        same = all(out == outputs[0] for out in outputs)
        times = ", ".join(f"{t:5.1f}" for t, _ in runs)
        print(
            f"{'same' if same else 'DIFFERENT':9} {script.name:32} {len(outputs[0]):3d} lines"
            f"{f' (+{skipped} machine-dependent)' if skipped else ''}   runs {times} s"
        )
        if not same:
            failed.append(script.name)
            names = list(RUNS)
            for name, out in zip(names[1:], outputs[1:], strict=True):
                sys.stdout.writelines(
                    line + "\n"
                    for line in difflib.unified_diff(outputs[0], out, names[0], name, lineterm="")
                )
    if failed:
        print(f"{len(failed)} of {len(scripts)} scripts failed: {', '.join(failed)}")
        return 1
    print(f"all {len(scripts)} scripts print the same numbers under every kernel choice")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
