"""Files: write a stub (``start``), check a learner's file (``check_file``), list exercises."""

from __future__ import annotations

import multiprocessing
import os
import traceback

from dlref.practice._grader import (
    REGISTRY,
    Failure,
    Report,
    _NotReturned,
    call_with_timeout,
    run_exercise,
)


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
    >>> print(pathlib.Path(path).read_text().splitlines()[0])
    # Practice: softmax (cross-entropy, easy). Explained at topics/cross-entropy.html#key-equations
    """
    if name not in REGISTRY:
        raise KeyError(f"no exercise {name!r}; the exercises are: {', '.join(REGISTRY)}")
    ex = REGISTRY[name]
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, f"{name}.py")
    header = (
        f"# Practice: {name} ({ex.topic}, {ex.difficulty}). Explained at {ex.page}\n"
        f"# Replace `raise NotImplementedError` with your code, then run:\n"
        f"#     python -m dlref.practice check {path}\n"
    )
    with open(path, "x", encoding="utf-8") as f:  # "x": never overwrite
        f.write(header + ex.stub)
    return path


def _load_failure(path: str, message: str) -> Report:
    return Report(os.path.basename(path), [], [], Failure("load the file", "load", message))


def check_file(path: str, timeout: float = 10.0) -> list[Report]:
    r"""Check every function of the file ``path`` named after an exercise; one report each.

    A file that cannot be read, compiled (a syntax error: its line is given) or run, or that
    defines no exercise function, gives one failed report saying so.

    Parameters
    ----------
    path : str
        A Python file, e.g. a stub written by :func:`start` and filled in.
    timeout : float, default 10.0
        Seconds each call of the learner's code may take (running the file included).

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
    try:
        with open(path, encoding="utf-8") as f:
            source = f.read()
    except OSError as err:
        return [_load_failure(path, f"cannot read {path}: {err.strerror}")]
    try:
        code = compile(source, path, "exec")
    except SyntaxError as err:
        line = (err.text or "").rstrip("\n")
        where = f"line {err.lineno}" + (f", column {err.offset}" if err.offset else "")
        return [_load_failure(path, f"{type(err).__name__} at {where}: {err.msg}\n    {line}")]
    namespace = {"__name__": "__practice__", "__file__": path}
    try:
        call_with_timeout(lambda: exec(code, namespace), {}, timeout)
    except _NotReturned as err:
        return [_load_failure(path, f"running {path} {err}")]
    except Exception as err:  # noqa: BLE001 - the learner's module may raise anything
        tb = [fr for fr in traceback.extract_tb(err.__traceback__) if fr.filename == path]
        where = f" at line {tb[-1].lineno}: {tb[-1].line}" if tb else ""
        return [_load_failure(path, f"running {path} raised {type(err).__name__}: {err}{where}")]
    found = [
        (name, fn)
        for name, fn in namespace.items()
        if name in REGISTRY and callable(fn) and getattr(fn, "__module__", None) == "__practice__"
    ]
    if not found:
        return [
            _load_failure(
                path,
                f"{path} defines no function named after an exercise ({', '.join(REGISTRY)})",
            )
        ]
    return [run_exercise(REGISTRY[name], fn, timeout) for name, fn in found]


def _child(path: str, timeout: float, conn) -> None:
    try:
        reports = check_file(path, timeout)
        conn.send([(str(r), r.passed) for r in reports])
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


def check_file_isolated(path: str, timeout: float = 10.0) -> list[tuple[str, bool]]:
    """:func:`check_file` in a child process: ``(report text, passed)`` for each report.

    The learner's code cannot take the grader down with it: a crash of the interpreter (a
    segfault, ``os._exit``, the kernel killing it for memory) or a call that blocks forever
    without releasing the GIL becomes a failed report. The command line ``check`` uses this.

    Parameters
    ----------
    path : str
        A Python file, as for :func:`check_file`.
    timeout : float, default 10.0
        Seconds each call of the learner's code may take.

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
    ctx = _context()
    receive, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(path, timeout, send), daemon=True)
    proc.start()
    send.close()
    try:
        with open(path, encoding="utf-8") as f:
            n_functions = sum(f"def {name}(" in f.read() for name in REGISTRY)
    except OSError:
        n_functions = 0
    most_checks = max(len(e.checks) for e in REGISTRY.values())
    limit = timeout * (most_checks + 2) * max(n_functions, 1) + 60  # a generous bound
    result = None
    if receive.poll(limit):
        try:
            result = receive.recv()
        except EOFError:  # the child died before sending its reports
            result = None
    proc.join(5)
    if proc.is_alive():
        proc.kill()
        proc.join()
    if result is not None:
        return result
    if proc.exitcode is not None and proc.exitcode < 0:
        why = f"was killed by signal {-proc.exitcode}"
    elif proc.exitcode not in (None, 0):
        why = f"exited with code {proc.exitcode}"
    else:
        why = f"did not finish within {limit:g} s"
    message = (
        f"checking {path} failed: the Python process running your code {why} "
        "(a crash, os._exit or sys.exit at the top level, or memory exhausted)"
    )
    return [(str(_load_failure(path, message)), False)]
