"""Run the gallery and the public API on a virtual GPU that enforces CUDA's device rules.

No GPU is needed: ``tools/vgpu.py`` provides a device ``vgpu:0`` whose tensors keep their data on
the CPU while every operator is checked as torch checks CUDA tensors (one device per operator,
index placement, the generator's device, no ``.numpy()`` of a device tensor).

* Every ``gallery/plot_*.py`` runs in its own process with its device line
  ``torch.device("cuda" if torch.cuda.is_available() else "cpu")`` pointing at ``vgpu:0``
  (matplotlib on its Agg backend). Printed: whether it ran to the end, the placement
  violations, and the host syncs (each makes a CUDA host wait for the device) with their lines.
* ``tools/device_sweep.py`` calls every public function and method of dlref that takes tensors or
  a device with its inputs on ``vgpu:0`` and checks that none is left out.

Usage: ``python tools/device_check.py [SCRIPT ...]`` (``make device-check``); exits 1 on any
violation, any script or sweep case that fails, or any public function left out of the sweep.
The virtual device says nothing about CUDA numerics, timing or memory.
"""

from __future__ import annotations

import collections
import concurrent.futures
import json
import os
import pathlib
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
DEVICE_LINE = 'torch.device("cuda" if torch.cuda.is_available() else "cpu")'


def run_script(path: pathlib.Path) -> dict:
    """In this process: run one gallery script on the virtual GPU; returns what it saw."""
    import matplotlib

    matplotlib.use("Agg")
    import vgpu

    source = path.read_text()
    if source.count(DEVICE_LINE) > 1:
        return {"error": f"more than one device line {DEVICE_LINE}", "violations": []}
    source = source.replace(DEVICE_LINE, 'torch.device("vgpu", 0)')
    os.chdir(path.parent)
    start, error = time.perf_counter(), None
    with vgpu.VirtualGPU() as vg:
        try:
            code = compile(source, str(path), "exec")
            exec(code, {"__name__": "__main__", "__file__": str(path)})
        except Exception as e:  # noqa: BLE001 - a crash on the device is the finding
            error = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
    return {
        "error": error,
        "seconds": time.perf_counter() - start,
        "violations": [[where, what, n] for (where, what), n in vg.violations.items()],
        "syncs": [[where, what, n] for (where, what), n in vg.syncs.items()],
        "h2d": sum(vg.h2d.values()),
    }


def child(script: pathlib.Path) -> dict:
    """Run one script in a fresh Python process (the device line and torch patched there)."""
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", MPLBACKEND="Agg", PYTHONHASHSEED="0")
    command = [sys.executable, __file__, "--child", str(script)]
    proc = subprocess.run(command, env=env, capture_output=True, text=True)
    try:
        return json.loads(proc.stdout.splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        return {"error": f"exited with {proc.returncode}: {proc.stderr[-2000:]}", "violations": []}


def report(script: pathlib.Path, result: dict) -> int:
    syncs = collections.Counter()
    for where, _, n in result.get("syncs", []):
        syncs[where] += n
    status = f"raised {result['error']}" if result["error"] else "ran to the end"
    print(
        f"{script.name:30} {status}; {len(result['violations'])} violations, "
        f"{sum(syncs.values()):5d} host syncs, {result.get('h2d', 0):4d} host-to-device copies"
        f" ({result.get('seconds', 0):.0f} s)"
    )
    for where, what, n in sorted(result["violations"]):
        print(f"  DEVICE {where}: {what} (x{n})")
    for where, n in syncs.most_common():
        print(f"  sync   {where} (x{n})")
    return bool(result["error"]) + len(result["violations"])


def main(paths: list[str]) -> int:
    scripts = [pathlib.Path(p).resolve() for p in paths] or sorted(
        (ROOT / "gallery").glob("plot_*.py")
    )
    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        sweep = None
        if not paths:
            command = [sys.executable, str(ROOT / "tools" / "device_sweep.py")]
            sweep = pool.submit(subprocess.run, command, capture_output=True, text=True)
        results = list(pool.map(child, scripts))
        failures = sum(report(s, r) for s, r in zip(scripts, results, strict=True))
        if sweep is not None:
            done = sweep.result()
            print(done.stdout + done.stderr, end="")
            failures += done.returncode != 0
    total = sum(len(r["violations"]) for r in results)
    print(
        f"device check: {len(scripts)} gallery scripts{' and the API sweep' if not paths else ''}, "
        f"{total} placement violations in the gallery, "
        f"{'FAILED' if failures else 'passed'} in {time.perf_counter() - start:.0f} s"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        sys.path.insert(0, str(ROOT / "tools"))
        print(json.dumps(run_script(pathlib.Path(sys.argv[2]))))
        sys.exit(0)
    sys.exit(main(sys.argv[1:]))
