"""Flag printed numbers that another CPU or a newer torch could print differently.

Every example on the site (the ```{doctest}``` fences of the MyST pages and the docstrings of
``src/dlref``) is run twice: as the page runs it, and with torch's and NumPy's print precision
raised. Each number the page prints is paired with its unrounded value from the second run; a
number is flagged when that value lies within ``ULPS`` float32 units in the last place of the
rounding boundary of the digits shown (``0.12345`` shown as ``0.1235`` sits on the boundary
between ``0.1234`` and ``0.1235``: a vector unit that sums in another order can flip it).
Numbers printed from float64 tensors (``dtype=torch.float64``) are held to float64 units instead.

Usage: ``python tools/doctest_audit.py [PATH ...]`` (``make doctest-audit``); exits 1 when a
number is flagged.
"""

from __future__ import annotations

import doctest
import importlib
import math
import pathlib
import pkgutil
import re
import sys

import numpy as np
import torch

ULPS = 4
HIGH = 12  # digits printed in the second run
FENCE = re.compile(r"^```\{doctest\}[^\n]*\n(.*?)^```", re.M | re.S)
NUMBER = re.compile(r"(?<![\w.])-?\d+\.\d+(?:e[+-]?\d+)?(?![\w.])")
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


class Recorder(doctest.OutputChecker):
    """Accepts everything, and keeps what each example printed."""

    def __init__(self):
        self.outputs: list[tuple[str, str]] = []

    def check_output(self, want, got, optionflags):
        self.outputs.append((want, got))
        return True


def run(test: doctest.DocTest, precision: int | None) -> list[tuple[str, str]]:
    torch.set_printoptions(profile="default")
    np.set_printoptions(precision=8)
    globs = dict(test.globs, torch=torch)
    if precision is not None:
        torch.set_printoptions(precision=precision)
        np.set_printoptions(precision=precision)
    test = doctest.DocTest(
        [
            doctest.Example(e.source, e.want, e.exc_msg, e.lineno, e.indent, e.options)
            for e in test.examples
        ],
        globs,
        test.name,
        test.filename,
        test.lineno,
        test.docstring,
    )
    recorder = Recorder()
    runner = doctest.DocTestRunner(checker=recorder, optionflags=FLAGS)
    runner.run(test, out=lambda s: None, clear_globs=True)
    torch.set_printoptions(profile="default")
    np.set_printoptions(precision=8)
    return recorder.outputs


def tests_in(paths: list[pathlib.Path]) -> list[doctest.DocTest]:
    parser, finder = doctest.DocTestParser(), doctest.DocTestFinder()
    out = []
    for path in paths:
        if path.suffix == ".md":
            text = "\n".join(m.group(1) for m in FENCE.finditer(path.read_text()))
            if text.strip():
                out.append(parser.get_doctest(text, {}, str(path), str(path), 0))
    if any(p.name == "src" or "dlref" in p.parts for p in paths):
        import dlref

        for info in pkgutil.walk_packages(dlref.__path__, "dlref."):
            module = importlib.import_module(info.name)
            out += [t for t in finder.find(module, module.__name__) if t.examples]
    return out


def ulp(x: float, float64: bool) -> float:
    if x == 0:
        return 2.0**-149 if not float64 else 5e-324
    return 2.0 ** (math.floor(math.log2(abs(x))) - (52 if float64 else 23))


def near_boundary(shown: str, value: float, float64: bool) -> float | None:
    """How many ulps ``value`` lies from the rounding boundary of ``shown``, if within ULPS."""
    mantissa, _, exp = shown.partition("e")
    decimals = len(mantissa.split(".")[1])
    scale = 10.0 ** (decimals - (int(exp) if exp else 0))
    frac = abs(value) * scale % 1.0
    distance = abs(frac - 0.5) / scale
    units = distance / ulp(value, float64)
    return units if units < ULPS else None


def audit(test: doctest.DocTest) -> tuple[int, list[str]]:
    shown, high = run(test, None), run(test, HIGH)
    checked, flagged = 0, []
    for (_want, got), (_, got_high) in zip(shown, high, strict=False):
        a, b = NUMBER.findall(got), NUMBER.findall(got_high)
        if not a or len(a) != len(b):
            continue
        float64 = "float64" in got or "tensor(" not in got
        for s, v in zip(a, b, strict=True):
            if s == v:  # printed in full (a Python float's repr): nothing was rounded
                continue
            checked += 1
            units = near_boundary(s, float(v), float64)
            if units is not None:
                line = next((ln for ln in got.splitlines() if s in ln), got.strip())[:90]
                flagged.append(
                    f"{test.name}: {s} is {float(v)!r}, {units:.1f} ulp from a rounding boundary: "
                    f"{line}"
                )
    return checked, flagged


def main(argv: list[str]) -> int:
    root = pathlib.Path(__file__).resolve().parent.parent
    paths = [pathlib.Path(a) for a in argv] or sorted((root / "docs").rglob("*.md")) + [
        root / "src"
    ]
    paths = [p for p in paths if "_build" not in p.parts and "_static" not in p.parts]
    total, problems = 0, []
    for test in tests_in(paths):
        checked, flagged = audit(test)
        total += checked
        problems += flagged
    print(
        f"{total} printed numbers audited, {len(problems)} within {ULPS} ulp of a rounding boundary"
    )
    for p in problems:
        print("-", p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
