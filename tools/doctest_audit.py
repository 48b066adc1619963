"""Flag printed numbers that another CPU or a newer torch could print differently.

Every example on the site (the ```{doctest}``` fences of the MyST pages and the docstrings of
``src/dlref``) is run twice: as the page runs it, and with torch's and NumPy's print precision
raised. Each number the page prints is paired with its unrounded value from the second run; a
number is flagged when that value lies within ``ULPS`` float32 units in the last place of the
rounding boundary of the digits shown (``0.12345`` shown as ``0.1235`` sits on the boundary
between ``0.1234`` and ``0.1235``: a vector unit that sums in another order can flip it).
Numbers printed from float64 tensors (``dtype=torch.float64``) are held to float64 units instead.

A third run flags what no rounding margin can save:

- a float from a float32 (or float16/bfloat16) tensor printed unformatted: ``.item()`` or
  ``.tolist()`` shown with ``print``/``repr`` gives the shortest round-trip repr of the value,
  which changes with its last bit (``1.0`` on one CPU, ``0.9999999403953552`` on another). The
  run makes ``Tensor.item``/``Tensor.tolist`` return floats that mark themselves when printed
  unformatted; formatting them (``f"{x:.4f}"``) is fine;
- more significant digits than the dtype carries: such a float formatted with more than 7
  significant digits (float32; 3 for float16, 2 for bfloat16). torch prints a tensor through
  ``item``/``tolist`` too, so a float32 tensor shown with more digits than that is flagged.

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


# Significant decimal digits each low-precision dtype carries (float64 is not checked).
DIGITS = {torch.float32: 7, torch.float16: 3, torch.bfloat16: 2}
UNFORMATTED, TOO_MANY = "\u00abunformatted\u00bb", "\u00abdigits\u00bb"


def significant_digits(text: str) -> int:
    """Significant digits in a formatted number: ``0.01230`` has 4, ``1.5e+03`` has 2."""
    mantissa = re.sub(r"[eE].*", "", text).lstrip("+-").replace(".", "").lstrip("0")
    return len(mantissa)


class LowPrecisionFloat(float):
    """A float that came from a float32/16 tensor, and says so when printed unformatted."""

    digits = 7

    def __repr__(self):
        return float.__repr__(self) + UNFORMATTED

    __str__ = __repr__

    def __format__(self, spec):
        text = float.__format__(self, spec)
        if not spec:
            return text + UNFORMATTED
        numbers = NUMBER.findall(text)
        return text + (TOO_MANY if numbers and significant_digits(numbers[0]) > self.digits else "")


def _tag(value, dtype):
    if isinstance(value, list):
        return [_tag(v, dtype) for v in value]
    if isinstance(value, float) and dtype in DIGITS:
        tagged = LowPrecisionFloat(value)
        tagged.digits = DIGITS[dtype]
        return tagged
    return value


class TaggedFloats:
    """Within the block, ``Tensor.item``/``Tensor.tolist`` of low-precision floats are tagged."""

    def __enter__(self):
        self.item, self.tolist = torch.Tensor.item, torch.Tensor.tolist
        item, tolist = self.item, self.tolist
        torch.Tensor.item = lambda t: _tag(item(t), t.dtype)
        torch.Tensor.tolist = lambda t: _tag(tolist(t), t.dtype)

    def __exit__(self, *exc):
        torch.Tensor.item, torch.Tensor.tolist = self.item, self.tolist


class Recorder(doctest.OutputChecker):
    """Accepts everything, and keeps what each example printed."""

    def __init__(self):
        self.outputs: list[tuple[str, str]] = []

    def check_output(self, want, got, optionflags):
        self.outputs.append((want, got))
        return True


def run(
    test: doctest.DocTest, precision: int | None, tagged: bool = False
) -> list[tuple[str, str]]:
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
    if tagged:
        with TaggedFloats():
            runner.run(test, out=lambda s: None, clear_globs=True)
    else:
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


def precision_problems(test: doctest.DocTest) -> list[str]:
    """Unformatted low-precision floats, and numbers with more digits than their dtype carries."""
    flagged = []
    for _want, got in run(test, None, tagged=True):
        for line in got.splitlines():
            if UNFORMATTED in line:
                flagged.append(
                    f"{test.name}: a float32 value printed unformatted (shortest repr, changes "
                    f"with its last bit; format it): {line.replace(UNFORMATTED, '')[:90]}"
                )
            elif TOO_MANY in line:
                flagged.append(
                    f"{test.name}: more significant digits than its dtype carries: "
                    f"{line.replace(TOO_MANY, '')[:90]}"
                )
    return flagged


def audit(test: doctest.DocTest) -> tuple[int, list[str]]:
    shown, high = run(test, None), run(test, HIGH)
    checked, flagged = 0, precision_problems(test)
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
        f"{total} printed numbers audited; {len(problems)} flagged (within {ULPS} ulp of a "
        "rounding boundary, a float32 value printed unformatted, or more digits than its dtype)"
    )
    for p in problems:
        print("-", p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
