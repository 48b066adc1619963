"""Command line: ``python -m dlref.practice list | start NAME [DIR] | check FILE``.

Exit codes: 0 success (for ``check``: every check of every exercise in the file passed); 1 a
check failed, the file could not be loaded, or ``start`` would overwrite a file; 2 bad usage
(an unknown command or exercise).
"""

from __future__ import annotations

import argparse
import math
import os
import sys

from dlref.practice import REGISTRY, check_file_isolated, start


def _seconds(text: str) -> float:
    """``--timeout``: a finite number of seconds > 0 (argparse prints the message and exits 2)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(
            f"--timeout must be a finite number of seconds > 0, got {text!r}"
        )
    return value


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m dlref.practice",
        description="Write it yourself, and get told exactly what is wrong.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="the exercises, their topic and difficulty")
    p_start = sub.add_parser("start", help="write the stub NAME.py into DIR (default .)")
    p_start.add_argument("name")
    p_start.add_argument("dir", nargs="?", default=".")
    p_check = sub.add_parser("check", help="run the checks on FILE and print the report")
    p_check.add_argument("file")
    p_check.add_argument("--timeout", type=_seconds, default=10.0, help="seconds per call")
    args = parser.parse_args(argv)

    if args.command == "list":
        w = max(len(n) for n in REGISTRY)
        wt = max(len(e.topic) for e in REGISTRY.values())
        print(f"{'exercise':<{w}}  {'topic':<{wt}}  {'level':<6}  what")
        for ex in REGISTRY.values():
            print(f"{ex.name:<{w}}  {ex.topic:<{wt}}  {ex.difficulty:<6}  {ex.summary}")
        return 0
    if args.command == "start":
        if args.name not in REGISTRY:
            print(f"no exercise {args.name!r}; try: python -m dlref.practice list", file=sys.stderr)
            return 2
        try:
            path = start(args.name, args.dir)
        except FileExistsError:
            path = os.path.join(args.dir, f"{args.name}.py")
            print(f"{path} exists; not overwriting it", file=sys.stderr)
            return 1
        except OSError as err:
            path = os.path.join(args.dir, f"{args.name}.py")
            print(f"cannot write {path}: {err.strerror}", file=sys.stderr)
            return 1
        print(f"wrote {path}; when it is written: python -m dlref.practice check {path}")
        return 0
    reports = check_file_isolated(args.file, timeout=args.timeout)  # in a child process
    print("\n\n".join(text for text, _ in reports))
    sys.stdout.flush()
    return 0 if all(passed for _, passed in reports) else 1


if __name__ == "__main__":
    sys.exit(main())
