r"""Practice: write a function yourself, and get told exactly what is wrong with it.

Each exercise has a stub to fill in, a trusted reference, a battery of named checks run from the
simplest to the hardest, and known-wrong variants of the reference. :func:`check` runs a function
through the battery and returns a :class:`Report`: the first failing check, the smallest input it
fails on, expected against got with the largest errors, and, when the output equals a known
mistake's, the name of that mistake, one sentence on it and a link to the page that explains it.

From the command line::

    python -m dlref.practice list
    python -m dlref.practice start softmax        # writes softmax.py, never overwriting
    python -m dlref.practice check softmax.py     # exit code 0 only when every check passes

Examples
--------
>>> import torch
>>> from dlref.practice import check
>>> def softmax(x, dim=-1):
...     e = x.exp()
...     return e / e.sum(dim, keepdim=True)
>>> report = check(softmax, "softmax")
>>> report.passed, report.failed_check, report.diagnosis
(False, 'edge: logits of ±1e4 and a length-1 row', 'no_max_shift')
"""

from __future__ import annotations

from collections.abc import Callable

# isort: off
# Each module registers its exercises, in this order (the order of `list`).
from dlref.practice import (  # noqa: F401
    tensors,
    autodiff,
    backprop,
    losses,
    optim,
    rnn,
    attention,
    transformer,
    decoding,
    rl,
    scaling,
    normalization,
    conv,
    tokenization,
    precision,
)

# isort: on
from dlref.practice._files import check_file, check_file_isolated, exercises, start
from dlref.practice._grader import (
    REGISTRY,
    Check,
    Exercise,
    Failure,
    Mistake,
    Report,
    run_exercise,
)
from dlref.practice._links import docs_url

__all__ = [
    "Check",
    "Exercise",
    "Failure",
    "Mistake",
    "Report",
    "check",
    "check_file",
    "check_file_isolated",
    "docs_url",
    "exercises",
    "get",
    "start",
]


def get(name: str) -> Exercise:
    """The exercise called ``name``; ``KeyError`` listing the names if there is none.

    Examples
    --------
    >>> from dlref.practice import get
    >>> ex = get("adam_step")
    >>> ex.topic, ex.outputs
    ('optimizers', ('m', 'v', 'm_hat', 'v_hat', 'param'))
    >>> [c.name for c in ex.checks][:2]
    ['shape on a tiny case', 'values on a hand-sized case']
    """
    if name not in REGISTRY:
        raise KeyError(f"no exercise {name!r}; the exercises are: {', '.join(REGISTRY)}")
    return REGISTRY[name]


def check(fn: Callable, name: str, timeout: float = 10.0, docs_url: str | None = None) -> Report:
    """Run ``fn`` through the checks of exercise ``name`` and return the :class:`Report`.

    Parameters
    ----------
    fn : callable
        Your function, with the stub's signature.
    name : str
        The exercise (``python -m dlref.practice list`` shows them).
    timeout : float, default 10.0
        Seconds each call may take. ``fn`` runs in a worker thread: a call that does not return
        in time is reported as such (the thread itself cannot be stopped; it keeps running in
        the background until it returns).
    docs_url : str, optional
        Address of the site the report's links point into (see :func:`docs_url`); by default
        the environment variable ``DLREF_DOCS_URL``, else the site built in this checkout.

    Returns
    -------
    Report
        ``report.passed``, ``report.failed_check``, ``report.diagnosis``; printing it (or its
        ``repr`` in a notebook) shows the whole report.

    Examples
    --------
    >>> import torch
    >>> from dlref.practice import check
    >>> check(lambda x, dim=-1: torch.softmax(x, dim), "softmax").passed
    True
    """
    return run_exercise(get(name), fn, timeout, docs_url)
