"""Code lines wider than the page's code column (79 characters).

Checks every line inside a code fence of ``docs/**/*.md`` (```` ``` ````, ```` ```python ````,
```` ```{doctest} ````, ``{code-block}``: code and expected output alike, measured from the
fence's indentation) and every line of ``gallery/*.py``. Prints ``path:line: width`` for each
line over the limit and exits 1 if there is any. The source lines that a ``{literalinclude}``
shows are listed with ``--literalinclude`` (informational: they do not change the exit status).
Usage:

    python tools/code_width.py [--width 79] [--max 0] [--literalinclude]

``--max N`` tolerates up to N wide lines (a ceiling that only goes down).
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
GALLERY = ROOT / "gallery"
SKIP_DIRS = {"_build", "_static", "auto_examples", "gen_modules", "generated"}

# A fence opening: indentation, three or more backticks or tildes, then the info string.
FENCE = re.compile(r"^(?P<indent>\s*)(?P<marks>`{3,}|~{3,})\s*(?P<info>.*)$")
# Directives whose body is code (shown verbatim); every other ``{directive}`` holds markdown.
CODE_DIRECTIVES = {"doctest", "code-block", "code", "sourcecode", "code-cell"}


def is_code(info: str) -> bool:
    """Whether a fence with this info string shows its body verbatim as code."""
    word = info.split()[0] if info.split() else ""
    if word.startswith("{") and word.endswith("}"):
        return word[1:-1] in CODE_DIRECTIVES
    return True  # a plain fence or a language name


def page_lines(path: Path) -> list[tuple[int, str, str]]:
    """(line number, line without the fence's indentation, info) of each line in a code fence."""
    found = []
    lines = path.read_text(encoding="utf-8").splitlines()
    open_fences: list[tuple[str, int]] = []  # (marks, indentation) of the enclosing fences
    code: tuple[str, int, str] | None = None  # (marks, indentation, info) of the open code fence
    for number, line in enumerate(lines, start=1):
        match = FENCE.match(line)
        if code is not None:
            marks, indent, info = code
            if match and not match["info"] and match["marks"][0] == marks[0]:
                if len(match["marks"]) >= len(marks):
                    code = None
                    continue
            body = line[min(indent, len(line) - len(line.lstrip())) :]
            found.append((number, body, info))
            continue
        if match is None:
            continue
        marks, info, indent = match["marks"], match["info"].strip(), len(match["indent"])
        if not info:
            if open_fences and open_fences[-1][0][0] == marks[0]:
                if len(marks) >= len(open_fences[-1][0]):
                    open_fences.pop()
                    continue
            code = (marks, indent, "")
        elif is_code(info):
            code = (marks, indent, info)
        else:
            open_fences.append((marks, indent))
    return found


def literalinclude_lines(path: Path) -> list[tuple[str, int, str]]:
    """(source file, line number, shown text) of the lines each ``{literalinclude}`` shows."""
    shown = []
    text = path.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(text):
        match = re.match(r"^\s*`{3,}\{literalinclude\}\s+(\S+)", line)
        if match is None:
            continue
        source = (path.parent / match[1]).resolve()
        options = {}
        for option in text[i + 1 :]:
            opt = re.match(r"^\s*:([\w-]+):\s*(.*)$", option)
            if opt is None:
                break
            options[opt[1]] = opt[2].strip()
        src_lines = source.read_text(encoding="utf-8").splitlines()
        start, end = 1, len(src_lines)
        if "pyobject" in options:
            span = _pyobject_span(source, options["pyobject"])
            if span is None:
                continue
            start, end = span
        numbered = list(range(start, end + 1))
        if "start-at" in options:
            hits = [n for n in numbered if options["start-at"] in src_lines[n - 1]]
            numbered = [n for n in numbered if hits and n >= hits[0]]
        if "start-after" in options:
            hits = [n for n in numbered if options["start-after"] in src_lines[n - 1]]
            numbered = [n for n in numbered if hits and n > hits[0]]
        if "end-before" in options:
            hits = [n for n in numbered if options["end-before"] in src_lines[n - 1]]
            numbered = [n for n in numbered if not hits or n < hits[0]]
        dedent = int(options.get("dedent", "0") or 0)
        for n in numbered:
            body = src_lines[n - 1]
            body = body[dedent:] if dedent else body
            shown.append((str(source.relative_to(ROOT)), n, body))
        if "dedent" not in options:
            block = textwrap.dedent("\n".join(b for _, _, b in shown[-len(numbered) :]))
            for k, body in enumerate(block.splitlines()):
                src, n, _ = shown[-len(numbered) + k]
                shown[-len(numbered) + k] = (src, n, body)
    return shown


def _pyobject_span(source: Path, name: str) -> tuple[int, int] | None:
    """First and last line of a function or class (``Class.method`` allowed) in a module."""
    nodes = ast.parse(source.read_text(encoding="utf-8")).body
    node = None
    for part in name.split("."):
        node = next(
            (
                n
                for n in nodes
                if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
                and n.name == part
            ),
            None,
        )
        if node is None:
            return None
        nodes = node.body
    return node.lineno, node.end_lineno


def pages() -> list[Path]:
    """The MyST pages of the site (not the build or generated folders)."""
    return sorted(p for p in DOCS.rglob("*.md") if not SKIP_DIRS & set(p.relative_to(DOCS).parts))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=79)
    parser.add_argument("--max", type=int, default=0, help="wide lines tolerated")
    parser.add_argument("--literalinclude", action="store_true")
    args = parser.parse_args(argv)
    wide = 0
    for page in pages():
        for number, body, _ in page_lines(page):
            if len(body) > args.width:
                print(f"{page.relative_to(ROOT)}:{number}: {len(body)}")
                wide += 1
    for script in sorted(GALLERY.glob("*.py")):
        for number, line in enumerate(script.read_text(encoding="utf-8").splitlines(), 1):
            if len(line) > args.width:
                print(f"{script.relative_to(ROOT)}:{number}: {len(line)}")
                wide += 1
    if args.literalinclude:
        seen = set()
        for page in pages():
            for source, number, body in literalinclude_lines(page):
                if len(body) > args.width and (source, number) not in seen:
                    seen.add((source, number))
                    print(f"note: {source}:{number}: {len(body)} (shown on {page.name})")
    if wide:
        print(
            f"{wide} code lines wider than {args.width} characters (at most {args.max} tolerated)",
            file=sys.stderr,
        )
    return 1 if wide > args.max else 0


if __name__ == "__main__":
    sys.exit(main())
