"""The grader: exercises, their batteries of checks, the known mistakes, and the report.

An :class:`Exercise` holds a stub, a trusted reference, checks ordered from simplest to hardest
and known-wrong variants of the reference (:class:`Mistake`). :func:`run_exercise` runs a
learner's function through the checks, stops at the first failure and, when the learner's output
on the failing input equals a known mistake's output, names that mistake.

The learner's function runs in a worker thread with a time limit per check: an exception becomes
a failed check, and a call that does not return within the limit is reported as such (the
thread cannot be killed; the command line runs the checks in a child process that ends with them).
"""

from __future__ import annotations

import math
import textwrap
import threading
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from dlref._checks import check_optional, check_positive_finite
from dlref.practice._compare import DT, _changed_input, _indent, _show, clone_inputs, compare
from dlref.practice._links import docs_url

# --------------------------------------------------------------------------------- structures


@dataclass(frozen=True)
class Mistake:
    """A known-wrong variant of a reference, with the sentence that explains it.

    Parameters
    ----------
    name : str
        Short name, shown as the report's diagnosis.
    fn : callable
        The wrong variant, with the reference's signature.
    explanation : str
        One sentence: what is wrong and how to fix it.
    link : str
        Site-relative address of the page that explains it.

    Examples
    --------
    >>> import torch
    >>> from dlref.practice import get
    >>> m = get("softmax").mistakes[0]
    >>> m.name, m.link
    ('no_max_shift', 'topics/cross-entropy.html#the-log-sum-exp-trick')
    >>> m.fn(torch.tensor([1e4, 0.0], dtype=torch.float64))  # exp(1e4) overflows: inf / inf
    tensor([nan, 0.], dtype=torch.float64)
    """

    name: str
    fn: Callable
    explanation: str
    link: str  # site-relative, e.g. "topics/cross-entropy.html#the-log-sum-exp-trick"


@dataclass(frozen=True)
class Check:
    """One named check: cases (keyword arguments, smallest first) and what is compared.

    ``kind`` is ``"shape"`` (shapes of every output), ``"values"`` (shapes and values),
    ``"grad"`` (gradients of ``grad_of`` with respect to ``grad_wrt``) or ``"raises"`` (the call
    must raise; ``bad`` says what is wrong with the input).

    Parameters
    ----------
    name : str
        Shown in the report.
    cases : callable
        Returns a list of keyword-argument dicts for the function, smallest first.
    kind : {"values", "shape", "grad", "raises"}, default "values"
    grad_wrt : tuple of str, optional
        For ``"grad"``: the inputs to differentiate with respect to (none by default).
    grad_of : str, optional
        For ``"grad"``: the output differentiated; ``None`` is ``"output"``, the name of the
        return value of an exercise without named outputs.
    bad : str, default ""
        For ``"raises"``: what is wrong with the input.
    rtol : float, default 1e-6
        Relative tolerance of the comparison with the reference.
    atol : float, default 1e-8
        Absolute tolerance.

    Examples
    --------
    >>> from dlref.practice import get
    >>> c = get("softmax").checks[1]
    >>> c.name, c.kind, c.rtol
    ('values on a hand-sized case', 'values', 1e-06)
    >>> c.cases()[0]["x"]  # the keyword argument x of the first case
    tensor([[1., 2., 3.],
            [0., 0., 0.]], dtype=torch.float64)
    """

    name: str
    cases: Callable[[], list[dict]]
    kind: str = "values"
    grad_wrt: tuple[str, ...] = ()
    grad_of: str | None = None
    bad: str = ""
    rtol: float = 1e-6
    atol: float = 1e-8


@dataclass(frozen=True)
class Exercise:
    """An exercise: stub text, reference, checks and known mistakes.

    Parameters
    ----------
    name : str
        The name of the function the learner writes.
    topic : str
        The topic, as in ``python -m dlref.practice list``.
    difficulty : {"easy", "medium", "hard"}
    page : str
        Site-relative address of the page that explains it.
    summary : str
        One line, for the list.
    stub : str
        The file :func:`start` writes (after a header).
    reference : callable
        The trusted implementation.
    checks : tuple of Check
        Run in order, simplest first; the first failure stops the run.
    mistakes : tuple of Mistake, optional
        Known-wrong variants, matched against a failing output (none by default).
    outputs : tuple of str, optional
        Names of the returned values when the function returns several.

    Examples
    --------
    >>> from dlref.practice import get
    >>> from dlref.practice.losses import softmax_reference
    >>> ex = get("softmax")
    >>> ex.topic, ex.difficulty, ex.reference is softmax_reference
    ('cross-entropy', 'easy', True)
    >>> [m.name for m in ex.mistakes]
    ['no_max_shift', 'global_max', 'wrong_dim']
    """

    name: str
    topic: str
    difficulty: str  # "easy", "medium" or "hard"
    page: str  # site-relative URL of the page that explains it
    summary: str
    stub: str
    reference: Callable
    checks: tuple[Check, ...]
    mistakes: tuple[Mistake, ...] = ()
    outputs: tuple[str, ...] | None = None  # names of the returned intermediates, in order


@dataclass
class Failure:
    """What the first failing check found.

    Parameters
    ----------
    check : str
        The failing check's name.
    kind : str
        Its kind (see :class:`Check`), or ``"load"`` when the learner's file could not be run.
    message : str
        What differs, in one or a few lines.
    inputs : dict
        The keyword arguments of the smallest failing case.
    output : str, optional
        The first output (or gradient) that diverges.
    expected, got : object
        The reference's value and the learner's.
    max_abs, max_rel : float, optional
        The largest absolute and relative errors.
    diagnosis : Mistake, optional
        The known mistake the learner's output equals, if any.

    Examples
    --------
    >>> import torch
    >>> from dlref.practice import check
    >>> f = check(lambda x, dim=-1: torch.softmax(x, 0), "softmax").failure  # the wrong dim
    >>> f.check, f.diagnosis.name, round(f.max_abs, 3)
    ('values on a hand-sized case', 'wrong_dim', 0.641)
    >>> f.got[:, 0]  # its columns sum to 1, not its rows
    tensor([0.7311, 0.2689], dtype=torch.float64)
    """

    check: str
    kind: str
    message: str
    inputs: dict = field(default_factory=dict)
    output: str | None = None  # the first output (or gradient) that diverges
    expected: object = None
    got: object = None
    max_abs: float | None = None
    max_rel: float | None = None
    diagnosis: Mistake | None = None


def _wrap(text: str) -> str:
    """Prose of a report in lines of at most 79 characters, continuation lines indented."""
    return textwrap.fill(text, width=79, subsequent_indent="  ", break_on_hyphens=False)


@dataclass
class Report:
    """The result of checking one function: the checks passed and the first failure, if any.

    Printing it (or its ``repr``) shows the whole report.

    Parameters
    ----------
    exercise : str
        The exercise's name.
    passed_checks : list of str
        The checks passed, in order.
    not_run : list of str
        The checks after the first failure.
    failure : Failure, optional
        The first failure; ``None`` when every check passed.
    docs_url : str, optional
        Base address of the site its links point into; ``None`` (the default) takes it from
        :func:`docs_url`: the ``DLREF_DOCS_URL`` environment variable, else the local build.

    Examples
    --------
    >>> from dlref.practice import check
    >>> def broadcast_shape(a, b):  # forgets to align the shapes on the right
    ...     return tuple(max(p, q) for p, q in zip(a, b))
    >>> report = check(broadcast_shape, "broadcast_shape")
    >>> report.passed, report.failed_check, report.diagnosis
    (False, 'values on a hand-sized case', None)
    >>> print(report)
    broadcast_shape: FAILED check 'values on a hand-sized case' (0 of 4 passed)
      FAIL  values on a hand-sized case
    ...
    output:
      expected (3, 3)
      got      (3,)
    """

    exercise: str
    passed_checks: list[str]
    not_run: list[str]
    failure: Failure | None = None
    docs_url: str | None = None  # base of the links; None: see :func:`docs_url`

    @property
    def passed(self) -> bool:
        """True when every check passed."""
        return self.failure is None

    @property
    def diagnosis(self) -> str | None:
        """Name of the known mistake the output matched, if any."""
        f = self.failure
        return None if f is None or f.diagnosis is None else f.diagnosis.name

    @property
    def failed_check(self) -> str | None:
        """Name of the first failing check, if any."""
        return None if self.failure is None else self.failure.check

    def __str__(self) -> str:
        """The report as a terminal shows it, in lines of at most 79 characters of prose."""
        n = len(self.passed_checks) + len(self.not_run) + (self.failure is not None)
        if self.failure is None:
            lines = [f"{self.exercise}: all {n} checks passed"]
            lines += [f"  ok  {c}" for c in self.passed_checks]
            return "\n".join(lines)
        f = self.failure
        lines = [
            f"{self.exercise}: FAILED check {f.check!r} ({len(self.passed_checks)} of {n} passed)"
        ]
        lines += [f"  ok    {c}" for c in self.passed_checks]
        lines.append(f"  FAIL  {f.check}")
        lines += [f"  --    {c} (not run)" for c in self.not_run]
        lines.append(f.message)
        if f.inputs:
            lines.append("input:")
            for k, v in f.inputs.items():
                lines.append(_indent(f"{k} = {_show(v)}", "  "))
        if f.expected is not None or f.got is not None:
            lines.append(f"{f.output or 'output'}:")
            if f.expected is not None:
                lines.append(_indent(f"expected {_show(f.expected)}", "  "))
            lines.append(_indent(f"got      {_show(f.got)}", "  "))
        if f.max_abs is not None:
            rel = (
                "n/a (the expected values there are 0)"
                if math.isnan(f.max_rel)
                else f"{f.max_rel:.3g}"
            )
            lines.append(f"  largest absolute error {f.max_abs:.3g},")
            lines.append(f"  largest relative error {rel}")
        if f.diagnosis is not None:
            d = f.diagnosis
            lines.append(_wrap(f"diagnosis ({d.name}): {d.explanation}"))
            lines.append(f"  see {docs_url(d.link, self.docs_url)}")
        return "\n".join(lines)

    __repr__ = __str__


class _NotReturned(Exception):
    pass


def call_with_timeout(fn: Callable, kwargs: dict, timeout: float):
    """Call ``fn(**kwargs)`` in a worker thread; re-raise its exception; time out after
    ``timeout`` seconds with :class:`_NotReturned`."""
    box: dict = {}

    def target():
        try:
            box["value"] = fn(**kwargs)
        except BaseException as e:  # noqa: BLE001 - the learner's code may raise anything
            box["error"] = e

    th = threading.Thread(target=target, daemon=True)
    th.start()
    th.join(timeout)
    if th.is_alive():
        raise _NotReturned(f"did not return within {timeout:g} s (an endless loop?)")
    if "error" in box:
        raise box["error"]
    return box["value"]


def as_outputs(value, names: Sequence[str] | None) -> dict:
    """The outputs of a call as an ordered dict ``name -> value``."""
    if names is None:
        return {"output": value}
    if isinstance(value, Mapping):
        missing = [k for k in names if k not in value]
        if missing:
            raise _ShapeOfResult(
                f"returned a dict without {missing}; expected the keys {list(names)}"
            )
        return {k: value[k] for k in names}
    if isinstance(value, (tuple, list)):
        if len(value) != len(names):
            raise _ShapeOfResult(
                f"returned {len(value)} values; expected {len(names)}: {', '.join(names)}"
            )
        return dict(zip(names, value, strict=True))
    raise _ShapeOfResult(
        f"returned {type(value).__name__}; expected a tuple or dict of {', '.join(names)}"
    )


class _ShapeOfResult(Exception):
    pass


# ------------------------------------------------------------------------------- the runner


def _weighted_sum(out: Tensor, seed: int) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(out.shape, generator=g, dtype=DT)
    return (out.to(DT) * w).sum()


def _grad_outputs(fn, kwargs, check: Check, names, timeout: float | None):
    """Gradients of a fixed random weighting of ``output[grad_of]`` w.r.t. ``check.grad_wrt``."""
    kw = clone_inputs(kwargs)
    leaves = {k: kw[k].requires_grad_(True) for k in check.grad_wrt}
    with torch.enable_grad():  # the learner's code runs in a fresh thread: grad mode is on
        return _grad_of_weighted_output(fn, kw, leaves, check, names, timeout)


def _grad_of_weighted_output(fn, kw, leaves, check, names, timeout):
    value = fn(**kw) if timeout is None else call_with_timeout(fn, kw, timeout)
    outs = as_outputs(value, names)
    y = outs[check.grad_of or "output"]
    if not isinstance(y, Tensor) or not y.requires_grad:
        raise _Detached(check.grad_of or "output")
    grads = torch.autograd.grad(_weighted_sum(y, 0), list(leaves.values()), allow_unused=True)
    return {
        f"d{check.grad_of or 'output'}/d{k}": (torch.zeros_like(leaves[k]) if g is None else g)
        for k, g in zip(leaves, grads, strict=True)
    }


class _Detached(Exception):
    pass


def _diagnose(ex: Exercise, check: Check, kwargs: dict, got: dict) -> Mistake | None:
    for m in ex.mistakes:
        try:
            if check.kind == "grad":
                theirs = _grad_outputs(m.fn, kwargs, check, ex.outputs, None)
            else:
                theirs = as_outputs(m.fn(**clone_inputs(kwargs)), ex.outputs)
        except Exception:  # noqa: BLE001 - a variant that cannot run on this input
            continue
        shape_only = check.kind == "shape"
        if all(
            k in theirs and compare(theirs[k], got[k], check.rtol, check.atol, shape_only) is None
            for k in got
        ):
            return m
    return None


def run_exercise(
    ex: Exercise, fn: Callable, timeout: float = 10.0, docs_url: str | None = None
) -> Report:
    """Run ``fn`` through the checks of ``ex``; stop at the first failing one."""
    check_positive_finite("timeout", timeout)
    check_optional("docs_url", docs_url, str)
    passed: list[str] = []
    names = [c.name for c in ex.checks]
    for i, check in enumerate(ex.checks):
        failure = _run_check(ex, check, fn, timeout)
        if failure is not None:
            return Report(ex.name, passed, names[i + 1 :], failure, docs_url)
        passed.append(check.name)
    return Report(ex.name, passed, [], docs_url=docs_url)


def _error_failure(check: Check, kwargs: dict, err: BaseException, fn: Callable) -> Failure:
    fname = getattr(fn, "__name__", "your function")
    if isinstance(err, NotImplementedError):
        msg = f"not implemented yet: {fname} raises NotImplementedError"
        kwargs = {}  # nothing to learn from the input
    elif isinstance(err, SystemExit):
        msg = f"{fname} called sys.exit({err.code!r}): return the result instead"
    elif isinstance(err, (_NotReturned, _ShapeOfResult)):
        msg = f"{fname} {err}"
    else:
        # the deepest line of the learner's own file, else the deepest line outside the grader
        tb = traceback.extract_tb(err.__traceback__)
        own = getattr(getattr(fn, "__code__", None), "co_filename", None)
        frames = [fr for fr in tb if fr.filename == own] or [
            fr for fr in tb if not fr.filename.endswith(("_grader.py", "threading.py"))
        ]
        msg = f"{fname} raised {type(err).__name__}: {err}"
        if frames:
            msg += f" (line {frames[-1].lineno} of {frames[-1].filename}: {frames[-1].line})"
        if isinstance(err, TypeError) and not frames:
            names = ", ".join(kwargs)
            msg += f"; keep the stub's signature: the checks pass the arguments by name ({names})"
    return Failure(check.name, check.kind, msg, inputs=kwargs)


def _diagnose_error(ex: Exercise, kwargs: dict, err: BaseException) -> Mistake | None:
    """The known mistake that raises the same error (type and message) on these inputs."""
    if isinstance(err, (NotImplementedError, _NotReturned, _ShapeOfResult)):
        return None
    for m in ex.mistakes:
        try:
            m.fn(**clone_inputs(kwargs))
        except Exception as theirs:  # noqa: BLE001
            if type(theirs) is type(err) and str(theirs) == str(err):
                return m
    return None


def _run_check(ex: Exercise, check: Check, fn: Callable, timeout: float) -> Failure | None:
    fname = getattr(fn, "__name__", ex.name)
    for kwargs in check.cases():
        if check.kind == "raises":
            try:
                value = call_with_timeout(fn, clone_inputs(kwargs), timeout)
            except NotImplementedError as err:
                return _error_failure(check, kwargs, err, fn)
            except (_NotReturned, SystemExit) as err:
                return _error_failure(check, kwargs, err, fn)
            except Exception:  # noqa: BLE001 - any clear error is a pass
                continue
            try:
                diagnosis = _diagnose(ex, check, kwargs, as_outputs(value, ex.outputs))
            except _ShapeOfResult:
                diagnosis = None
            return Failure(
                check.name,
                check.kind,
                f"{fname} returned a value for bad input ({check.bad}); "
                "raise a ValueError that names the argument",
                inputs=kwargs,
                got=value,
                diagnosis=diagnosis,
            )
        try:
            if check.kind == "grad":
                expected = _grad_outputs(ex.reference, kwargs, check, ex.outputs, None)
                got = _grad_outputs(fn, kwargs, check, ex.outputs, timeout)
            else:
                expected = as_outputs(ex.reference(**clone_inputs(kwargs)), ex.outputs)
                given = clone_inputs(kwargs)
                got = as_outputs(call_with_timeout(fn, given, timeout), ex.outputs)
                changed = _changed_input(kwargs, given)
                if changed is not None:
                    return Failure(
                        check.name,
                        check.kind,
                        f"{fname} changed its input {changed} in place: do not modify the inputs "
                        f"(compute new tensors, e.g. {changed} * 2 rather than {changed}.mul_(2), "
                        f"or work on {changed}.clone())",
                        inputs=kwargs,
                    )
        except _Detached as err:
            return Failure(
                check.name,
                check.kind,
                f"{fname}'s {err} does not depend on the inputs through autograd: no "
                "gradient flows (.detach(), .item(), .tolist(), numpy, or an in-place "
                "write into a tensor created without grad?)",
                inputs=kwargs,
            )
        except BaseException as err:  # noqa: BLE001
            if isinstance(err, KeyboardInterrupt):
                raise
            failure = _error_failure(check, kwargs, err, fn)
            failure.diagnosis = _diagnose_error(ex, kwargs, err)
            return failure
        for k in expected:
            try:
                res = compare(expected[k], got[k], check.rtol, check.atol, check.kind == "shape")
            except Exception as err:  # noqa: BLE001 - e.g. a complex tensor, another device
                return Failure(
                    check.name,
                    check.kind,
                    f"{k}: cannot be compared with the expected value "
                    f"({type(err).__name__}: {err}); return a float64 CPU tensor",
                    inputs=kwargs,
                    output=k,
                    expected=expected[k],
                    got=got[k],
                )
            if res is None:
                continue
            msg, max_abs, max_rel = res
            what = k if check.kind == "grad" or ex.outputs else "output"
            if ex.outputs is not None and check.kind != "grad":
                what += f" (the first of {', '.join(ex.outputs)} to diverge)"
            diagnosis = _diagnose(ex, check, kwargs, got)
            return Failure(
                check.name,
                check.kind,
                f"{what}: {msg}",
                inputs=kwargs,
                output=k,
                expected=expected[k],
                got=got[k],
                max_abs=max_abs,
                max_rel=max_rel,
                diagnosis=diagnosis,
            )
    return None


REGISTRY: dict[str, Exercise] = {}


def register(
    *,
    reference: Callable,
    stub: str,
    summary: str,
    checks: tuple[Check, ...],
    difficulty: str,
    page: str,
    outputs: tuple[str, ...] | None = None,
    mistakes: tuple[Mistake, ...] = (),
) -> Exercise:
    """Add the exercise of ``reference`` to the registry (the order of ``list``) and return it.

    The exercise is named after its reference (``softmax_reference``: ``softmax``) and its topic
    is the name of its page (``topics/cross-entropy.html#...``: ``cross-entropy``); the other
    parameters are those of :class:`Exercise`. Names are unique.
    """
    name = reference.__name__.removesuffix("_reference")
    topic = page.partition("#")[0].removeprefix("topics/").removesuffix(".html")
    if name in REGISTRY:
        raise ValueError(f"exercise {name!r} is registered twice")
    REGISTRY[name] = Exercise(
        name, topic, difficulty, page, summary, stub, reference, checks, mistakes, outputs
    )
    return REGISTRY[name]
