"""Lines per module, and how many code lines of each public function are argument checks.

A check line is a call to a ``check_*``/``_check*`` function, a ``raise``, or an ``if`` whose
body raises (with the lines of its condition and body). An algorithm line is any other code line
of the function body (docstrings, comments and blank lines are not code). Usage:

    python tools/check_lines.py [module ...]      # default: every module of src/dlref
"""

from __future__ import annotations

import ast
import io
import sys
import tokenize
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src" / "dlref"


def code_lines(source: str) -> set[int]:
    """Line numbers that hold code (not blank, not only a comment, not a docstring)."""
    lines: set[int] = set()
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type in (
            tokenize.COMMENT,
            tokenize.NL,
            tokenize.NEWLINE,
            tokenize.INDENT,
            tokenize.DEDENT,
            tokenize.ENDMARKER,
        ):
            continue
        lines.update(range(tok.start[0], tok.end[0] + 1))
    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            value = body[0].value
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                lines.difference_update(range(body[0].lineno, body[0].end_lineno + 1))
    return lines


def is_check(stmt: ast.stmt) -> bool:
    if isinstance(stmt, ast.Raise):
        return True
    if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
        func = stmt.value.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        return name.startswith(("check_", "_check"))
    if isinstance(stmt, ast.If):
        return any(isinstance(s, ast.Raise) for s in ast.walk(stmt)) and all(
            is_check(s) for s in stmt.body + stmt.orelse
        )
    return False


def count(path: Path) -> tuple[int, int, int]:
    source = path.read_text()
    code = code_lines(source)
    checks = algo = 0
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        if node.name.startswith("_") and node.name != "__init__":
            continue
        for stmt in node.body:
            span = set(range(stmt.lineno, stmt.end_lineno + 1)) & code
            if is_check(stmt):
                checks += len(span)
            elif not isinstance(stmt, (ast.FunctionDef, ast.ClassDef)):
                algo += len(span)
    return len(source.splitlines()), checks, algo


def main(names: list[str]) -> None:
    paths = [SRC / f"{n}.py" for n in names] if names else sorted(SRC.glob("[!_]*.py"))
    print(f"{'module':<16}{'lines':>7}{'check':>7}{'algo':>7}{'check %':>9}")
    for path in paths:
        lines, checks, algo = count(path)
        share = 100 * checks / max(checks + algo, 1)
        print(f"{path.stem:<16}{lines:>7}{checks:>7}{algo:>7}{share:>8.0f}%")


if __name__ == "__main__":
    main(sys.argv[1:])
