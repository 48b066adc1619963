"""Files: write a stub (``start``), check a learner's file (``check_file``), list exercises."""

from __future__ import annotations

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

    Raises ``FileExistsError`` rather than overwrite a file, ``KeyError`` for an unknown name.
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
    """Check every function of the file ``path`` named after an exercise; one report each.

    A file that cannot be read, compiled (a syntax error: its line is given) or run, or that
    defines no exercise function, gives one failed report saying so.
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
