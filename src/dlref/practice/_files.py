"""Files: write a stub (``start``), check a learner's file (``check_file``), list exercises."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys
import traceback
from collections.abc import Callable

from dlref._checks import check_optional, check_positive_finite
from dlref.practice._grader import (
    REGISTRY,
    Failure,
    Report,
    _NotReturned,
    call_with_timeout,
    run_exercise,
)
from dlref.practice._links import docs_url, site_address

# Seconds allowed past the time limits of an exercise's calls (the reference's and the known
# mistakes' calls, and starting the process) before the process checking it is stopped.
SLACK_SECONDS = 30.0


def exercises() -> list[tuple[str, str, str, str]]:
    """Every exercise as ``(name, topic, difficulty, summary)``, in the order of the topics.

    Examples
    --------
    >>> from dlref.practice import exercises
    >>> exercises()[0]
    ('broadcast_shape', 'tensors', 'easy', 'the broadcast shape of two shapes, or an error')
    """
    return [(e.name, e.topic, e.difficulty, e.summary) for e in REGISTRY.values()]


def start(name: str, directory: str = ".") -> str:
    """Write the stub of exercise ``name`` to ``directory/name.py`` and return the path.

    Parameters
    ----------
    name : str
        The exercise.
    directory : str, default "."
        Folder for the stub (created if missing).

    Returns
    -------
    str
        The path written. Raises ``FileExistsError`` rather than overwrite a file, and
        ``KeyError`` for an unknown name.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> from dlref.practice import start
    >>> path = start("softmax", tempfile.mkdtemp())
    >>> print(pathlib.Path(path).read_text().splitlines()[0])  # the link: see docs_url
    # Practice: softmax (cross-entropy, easy). Explained at .../cross-entropy.html#key-equations
    """
    if name not in REGISTRY:
        raise KeyError(f"no exercise {name!r}; the exercises are: {', '.join(REGISTRY)}")
    ex = REGISTRY[name]
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, f"{name}.py")
    header = (
        f"# Practice: {name} ({ex.topic}, {ex.difficulty}). Explained at {docs_url(ex.page)}\n"
        f"# Replace `raise NotImplementedError` with your code, then run:\n"
        f"#     python -m dlref.practice check {path}\n"
    )
    with open(path, "x", encoding="utf-8") as f:  # "x": never overwrite
        f.write(header + ex.stub)
    return path


def _load_failure(path: str, message: str) -> Report:
    return Report(os.path.basename(path), [], [], Failure("load the file", "load", message))


def _missing_file_hint(path: str) -> str:
    """What the learner probably meant when ``path`` cannot be read."""
    if not path.endswith(".py") and os.path.exists(path + ".py"):
        return f"; did you mean {path}.py?"
    name = os.path.basename(path)
    if name in REGISTRY:
        return (
            f"; check takes the file of your solution, e.g. {name}.py (write its stub with: "
            f"python -m dlref.practice start {name})"
        )
    return ""


def _load(path: str, timeout: float) -> list[tuple[str, Callable]] | Report:
    """Run the file ``path``; its exercise functions in the file's order, or a failed report."""
    try:
        with open(path, "rb") as f:  # bytes: compile() honours a PEP 263 coding line
            source = f.read()
    except OSError as err:
        return _load_failure(path, f"cannot read {path}: {err.strerror}{_missing_file_hint(path)}")
    try:
        code = compile(source, path, "exec")
    except (SyntaxError, ValueError) as err:  # ValueError: a null byte, on older Pythons
        if b"\0" in source:
            offset = source.index(b"\0")
            return _load_failure(
                path,
                f"{path} contains a null byte (\\x00) at byte {offset}: it is not a Python "
                "source file, or it was saved in an encoding such as UTF-16",
            )
        line = (getattr(err, "text", None) or "").rstrip("\n")
        where = f"line {err.lineno}" + (f", column {err.offset}" if err.offset else "")
        return _load_failure(path, f"{type(err).__name__} at {where}: {err.msg}\n    {line}")
    namespace = {"__name__": "__practice__", "__file__": path}
    try:
        call_with_timeout(lambda: exec(code, namespace), {}, timeout)
    except _NotReturned as err:
        return _load_failure(path, f"running {path} {err}")
    except SystemExit as err:
        return _load_failure(
            path,
            f"running {path} called sys.exit({err.code!r}) at the top level: put the code that "
            'runs your file under `if __name__ == "__main__":`',
        )
    except Exception as err:  # noqa: BLE001 - the learner's module may raise anything
        tb = [fr for fr in traceback.extract_tb(err.__traceback__) if fr.filename == path]
        where = f" at line {tb[-1].lineno}: {tb[-1].line}" if tb else ""
        return _load_failure(path, f"running {path} raised {type(err).__name__}: {err}{where}")
    found = [
        (name, fn)
        for name, fn in namespace.items()
        if name in REGISTRY and callable(fn) and getattr(fn, "__module__", None) == "__practice__"
    ]
    if not found:
        return _load_failure(
            path, f"{path} defines no function named after an exercise ({', '.join(REGISTRY)})"
        )
    return found


@contextlib.contextmanager
def _importable_next_to(path: str):
    """The file's folder first on ``sys.path``: it may import a helper module next to it."""
    folder = os.path.dirname(os.path.abspath(path))
    sys.path.insert(0, folder)
    try:
        yield
    finally:
        if folder in sys.path:
            sys.path.remove(folder)


def check_file(path: str, timeout: float = 10.0, docs_url: str | None = None) -> list[Report]:
    r"""Check every function of the file ``path`` named after an exercise; one report each.

    A file that cannot be read, compiled (a syntax error: its line is given) or run, or that
    defines no exercise function, gives one failed report saying so. The file may import a
    module next to it, as it can when run with ``python path``.

    Parameters
    ----------
    path : str
        A Python file, e.g. a stub written by :func:`start` and filled in.
    timeout : float, default 10.0
        Seconds each call of the learner's code may take (running the file included).
    docs_url : str, optional
        The address of the site the reports link to (see :func:`docs_url`).

    Returns
    -------
    list of Report
        One per exercise function found in the file, in the file's order.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> from dlref.practice import check_file
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "mine.py"
    >>> code = "import torch\ndef softmax(x, dim=-1):\n    return torch.softmax(x, dim)\n"
    >>> _ = f.write_text(code)
    >>> [(r.exercise, r.passed) for r in check_file(str(f))]
    [('softmax', True)]
    >>> _ = f.write_text("def softmax(x, dim=-1):\n    return x +\n")
    >>> print(check_file(str(f))[0].failure.message)
    SyntaxError at line 2, column 15: invalid syntax
        return x +
    """
    check_positive_finite("timeout", timeout)
    check_optional("docs_url", docs_url, str)
    with _importable_next_to(path):
        loaded = _load(path, timeout)
        if isinstance(loaded, Report):
            return [loaded]
        return [run_exercise(REGISTRY[name], fn, timeout, docs_url) for name, fn in loaded]


def _calls(ex) -> int:
    """How many timed calls of the learner's function checking ``ex`` makes at most."""
    return sum(len(list(c.cases())) for c in ex.checks)


def _child(path: str, timeout: float, site: str, conn) -> None:
    """Send each report as soon as it is ready: ("start", name, calls), ("report", text, passed),
    and ("done",) at the end; a crash or a kill loses none already sent."""
    try:
        with _importable_next_to(path):
            loaded = _load(path, timeout)
            if isinstance(loaded, Report):
                conn.send(("report", str(loaded), False))
            else:
                for name, fn in loaded:
                    conn.send(("start", name, _calls(REGISTRY[name])))
                    report = run_exercise(REGISTRY[name], fn, timeout, site)
                    conn.send(("report", str(report), report.passed))
        conn.send(("done",))
    finally:
        conn.close()
        os._exit(0)  # leaves behind any call of the learner's that never returned


def _context():
    """A fork server that has imported dlref.practice (and torch) but run no torch op: forking
    it is fast, and safe (forking a process whose OpenMP threads have run can hang the child)."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["dlref.practice"])
    return ctx


def check_file_isolated(
    path: str, timeout: float = 10.0, docs_url: str | None = None
) -> list[tuple[str, bool]]:
    """:func:`check_file` in a child process: ``(report text, passed)`` for each report.

    The learner's code cannot take the grader down with it: a crash of the interpreter (a
    segfault, ``os._exit``, the kernel killing it for memory) or a call that blocks forever
    without releasing the GIL becomes a failed report that says which of these happened. Each
    exercise of the file has its own bound, and its report is sent as soon as it is ready, so
    the reports before a crash or an overrun are kept. The command line ``check`` uses this.

    Parameters
    ----------
    path : str
        A Python file, as for :func:`check_file`.
    timeout : float, default 10.0
        Seconds each call of the learner's code may take.
    docs_url : str, optional
        The address of the site the reports link to (see :func:`docs_url`).

    Returns
    -------
    list
        ``(text, passed)`` for each report: its text and whether it passed.

    Examples
    --------
    >>> import tempfile
    >>> from dlref.practice import check_file_isolated, start
    >>> (text, passed), = check_file_isolated(start("rope", tempfile.mkdtemp()))
    >>> passed, text.splitlines()[-1]
    (False, 'not implemented yet: rope raises NotImplementedError')
    """
    check_positive_finite("timeout", timeout)
    check_optional("docs_url", docs_url, str)
    ctx = _context()
    receive, send = ctx.Pipe(duplex=False)
    site = site_address(docs_url)  # read here: a fork server keeps the environment it started with
    proc = ctx.Process(target=_child, args=(path, timeout, site, send), daemon=True)
    proc.start()
    send.close()
    results: list[tuple[str, bool]] = []
    current, limit = None, timeout + SLACK_SECONDS  # first: running the file itself
    overran = False
    try:
        while True:
            if not receive.poll(limit):  # the child's pipe closes when it dies: poll is True
                overran = True
                break
            try:
                message = receive.recv()
            except EOFError:  # the child ended without a word more
                break
            if message[0] == "done":
                return results
            if message[0] == "start":
                current, calls = message[1], message[2]
                limit = timeout * (calls + 2) + SLACK_SECONDS  # this exercise's own bound
            else:
                results.append((message[1], message[2]))
                current, limit = None, SLACK_SECONDS
    finally:
        if proc.is_alive() and not overran:
            proc.join(5)
        if proc.is_alive():
            proc.kill()
        proc.join()
        receive.close()
    what = f"checking {current}" if current else f"checking {path}"
    if overran:
        why = (
            f"did not finish within {limit:g} s and was stopped (a call that never returns and "
            "holds the interpreter, e.g. a long computation in C, or far too much work)"
        )
    elif proc.exitcode is not None and proc.exitcode < 0:
        sig = -proc.exitcode
        name = signal.Signals(sig).name if sig in signal.valid_signals() else str(sig)
        cause = "memory exhausted?" if sig == signal.SIGKILL else "a crash"
        why = f"was killed by signal {sig} ({name}: {cause})"
    elif proc.exitcode:
        why = f"exited with code {proc.exitcode} (sys.exit or os._exit in your code?)"
    else:
        why = "ended (exit code 0) without a report: your code called os._exit(0)"
    message = f"{what} failed: the Python process running your code {why}"
    if results or current:
        message += "; the exercises after it were not checked"
    failed = Report(current or os.path.basename(path), [], [], Failure("run", "load", message))
    return [*results, (str(failed), False)]
