"""The CPU kernel choices that ``doctest_cpus.py`` and ``gallery_repro.py`` force, one per run.

torch picks its CPU kernels by the instructions the CPU has, and the kernels add numbers in
different orders, so a printed number can hold on one CPU and not on another. Each entry is the
environment of one run, as a CPU with that instruction set would choose:

- ``ATEN_CPU_CAPABILITY``: torch's own kernels (``default`` has no vector unit);
- ``MKL_CBWR``: MKL's code path for matrix products. MKL ignores ``MKL_ENABLE_INSTRUCTIONS`` on
  some CPUs (AMD's among them), while its conditional-numerical-reproducibility modes change the
  code path there too;
- ``ONEDNN_MAX_CPU_ISA``: oneDNN's, for convolutions and the LSTM of ``nn.LSTM``.

torch falls back silently when the CPU lacks an instruction set: ``capability(env)`` says which
kernels a run really got.
"""

from __future__ import annotations

import os
import subprocess
import sys

RUNS = {
    "default": {
        "ATEN_CPU_CAPABILITY": "default",
        "MKL_CBWR": "COMPATIBLE",
        "ONEDNN_MAX_CPU_ISA": "SSE41",
    },
    "avx2": {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2"},
    "avx512": {"ATEN_CPU_CAPABILITY": "avx512", "ONEDNN_MAX_CPU_ISA": "AVX512_CORE"},
}
FORCED = {key for settings in RUNS.values() for key in settings}


def environment(name: str, **extra: str) -> dict[str, str]:
    """This process's environment with run ``name``'s kernel choice (and ``extra``) in force."""
    env = {k: v for k, v in os.environ.items() if k not in FORCED}
    env.update(RUNS[name], OMP_NUM_THREADS="1", **extra)
    return env


def capability(env: dict[str, str]) -> str:
    """The kernels torch really runs under ``env`` (``DEFAULT``, ``AVX2``, ``AVX512``)."""
    probe = "import torch; print(torch.backends.cpu.get_cpu_capability())"
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True)
    return out.stdout.strip() or "unknown"
