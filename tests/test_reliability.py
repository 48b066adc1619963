"""Bad input to any public function of dlref gives a TypeError or ValueError naming the argument.

The valid calls come from the docstring examples themselves: each example is run with a profiler
hook that records the arguments of every call to a public dlref function. Each recorded call is
then repeated with one argument replaced by a wrong type, a wrong dtype, a wrong shape or an
out-of-range value (drawn by hypothesis). The call may succeed (a shape that broadcasts is not an
error), but when it fails it must fail with TypeError or ValueError, and the message must name an
argument of the function: never an IndexError, an AttributeError or a RuntimeError from deep
inside torch.

Every strategy below is finite and hypothesis is derandomized, so each recorded call is tried
with every bad value of every argument, the same ones on every run (this runs in CI). New topic
modules are picked up by walking the package; a public function that no example calls would
escape, so that is a failure too.
"""

from __future__ import annotations

import contextlib
import doctest
import importlib
import inspect
import math
import pkgutil
import re
import signal
import sys

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dlref

SKIP_MODULES = {"dlref.practice"}  # the grader runs learners' code; its own inputs are files/names
# Lengths for which any large value is valid and merely costs time (exhaustive search is V^T):
# they get no huge value, only the wrong types and the values below their range.
COSTLY_SIZES = {
    "max_new_tokens",
    "embed_dim",  # MultiHeadAttention: a width of 10**6 is valid but allocates 4 * 10**12 weights
    "num_updates",  # dlref.rl.reinforce: a million updates of REINFORCE are valid, only long
    "steps",  # distributed.train_single_process (Adam steps), conditioning.run_quadratic (iterates)
    "global_batch",  # dlref.distributed: a batch of a million examples, likewise
    "batch_size",  # conditioning.minibatch_gradient_variance draws num_draws * batch_size indices
    "hidden_size",  # rnn: weights of shape (4 * hidden_size, hidden_size), 4e12 bytes for 1e6
    "num_layers",  # rnn: num_layers stacks of weights, each allocated and initialised
    "padding",  # conv: 10**6 zeros on each side of a 4x4 image are 4 * 10**12 pixels
    "kernel_size",  # Conv2d: a (C_out, C_in, 10**6, 10**6) weight
    "stride",  # conv_transpose2d: an output of (H - 1) stride + ... rows, 10**6 a row
    "dilation",  # conv_transpose2d: likewise, d (k - 1) rows more
}
# Functions that start processes: each bad call would spawn workers. Their argument checks run
# before any process starts and are tested in the topic's own test file.
SKIP_FUNCTIONS = {
    "dlref.distributed.run_data_parallel": "spawns processes; checks in tests/test_distributed.py",
}
SECONDS_PER_CALL = (
    10  # every call takes well under 1 s; one that hangs fails instead of stalling CI
)


class TooSlow(BaseException):  # BaseException: the function under test must not catch it
    pass


@contextlib.contextmanager
def time_limit(seconds):
    def stop(signum, frame):
        raise TooSlow

    previous = signal.signal(signal.SIGALRM, stop)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def public_callables():
    """{code object: (qualified name, function or class)} of the public functions and classes."""
    out = {}
    for info in pkgutil.walk_packages(dlref.__path__, "dlref."):
        if info.name.split(".")[-1].startswith("_") or info.name.startswith(tuple(SKIP_MODULES)):
            continue
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
                continue
            if inspect.isfunction(obj):
                out[obj.__code__] = (f"{module.__name__}.{name}", obj)
            elif inspect.isclass(obj) and "__init__" in vars(obj):
                out[obj.__init__.__code__] = (f"{module.__name__}.{name}", obj)
    return out


def module_examples():
    finder = doctest.DocTestFinder()
    tests = []
    for info in pkgutil.walk_packages(dlref.__path__, "dlref."):
        if info.name.startswith(tuple(SKIP_MODULES)):
            continue
        module = importlib.import_module(info.name)
        tests += [t for t in finder.find(module, module.__name__) if t.examples]
    return tests


def recorded_calls():
    """(qualified name, function, bound arguments) of the first calls seen in the examples."""
    tests, codes = module_examples(), public_callables()
    seen: dict[str, tuple] = {}

    def hook(frame, event, arg):
        if event == "call" and frame.f_code in codes:
            name, fn = codes[frame.f_code]
            caller = frame.f_back.f_code.co_filename if frame.f_back else ""
            if name not in seen and caller.startswith("<doctest"):
                params = inspect.signature(fn).parameters.values()
                kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
                values = {
                    p.name: frame.f_locals[p.name]
                    for p in params
                    if p.kind in kinds and p.name in frame.f_locals
                }
                seen[name] = (fn, values)

    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in tests:
        sys.setprofile(hook)
        try:
            runner.run(test, out=lambda s: None)
        finally:
            sys.setprofile(None)
    return [(name, *seen[name]) for name in sorted(seen)]


CALLS = recorded_calls()


def bad_values(param, value):
    """Strategies of wrong values for argument ``param`` whose valid value is ``value``."""
    wrong_type = st.sampled_from(["a string", [1, 2], object()])
    if isinstance(value, torch.Tensor):
        options = [wrong_type, st.just(None), st.just(value.to(torch.complex64))]
        if value.is_floating_point():
            options.append(st.just(value.to(torch.int64)))
            other = torch.float32 if value.dtype == torch.float64 else torch.float64
            options.append(st.just(value.to(other)))  # mixed with the other arguments' dtype
        elif value.dtype != torch.bool:
            options.append(st.just(value.to(torch.float32)))
        options.append(st.just(value.unsqueeze(0).expand(3, *value.shape).clone()))  # extra dim
        if value.dim() > 0:
            options.append(st.just(value.reshape(-1)[:1].reshape(())))  # a 0-d tensor
            options.append(st.just(torch.cat([value, value[:1]]) if value.shape[0] else value))
            options.append(st.just(value[:0]))  # empty along dim 0
        return st.one_of(options)
    if isinstance(value, bool):
        return st.sampled_from(["yes", 2.5])
    if isinstance(value, int):
        huge = [] if param in COSTLY_SIZES else [10**6]
        return st.sampled_from([-7, -1, 0, 2.5, "3", *huge])
    if isinstance(value, float):
        return st.sampled_from([-1.0, 0.0, math.nan, math.inf, "0.1"])
    if isinstance(value, str):
        return st.sampled_from(["no-such-option", 3])
    if isinstance(value, (tuple, list)):
        return st.sampled_from([(), "x", (1.0, 2.0, 3.0, 4.0)])
    return st.one_of(wrong_type, st.just(-1))  # also what a callable or an optional gets


@pytest.mark.parametrize(("name", "fn", "values"), CALLS, ids=[c[0] for c in CALLS])
@settings(
    max_examples=200,  # every strategy is finite: hypothesis stops once it has tried them all
    derandomize=True,  # the same examples on every run: this runs in CI
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_bad_input_raises_a_clear_error(name, fn, values, data):
    if name in SKIP_FUNCTIONS:
        pytest.skip(SKIP_FUNCTIONS[name])
    if not values:
        return
    param = data.draw(st.sampled_from(sorted(values)), label="argument")
    bad = data.draw(bad_values(param, values[param]), label="value")
    kwargs = dict(values, **{param: bad})
    names = list(inspect.signature(fn).parameters)
    try:
        with time_limit(SECONDS_PER_CALL):
            fn(**kwargs)
    except TooSlow:
        pytest.fail(
            f"{name}({param}={bad!r}) ran over {SECONDS_PER_CALL} s: if large values of {param} "
            "are valid and merely slow, add it to COSTLY_SIZES"
        )
    except (TypeError, ValueError) as e:
        named = any(re.search(rf"\b{re.escape(n)}\b", str(e)) for n in names)
        assert named, f"{name}({param}={bad!r}): the message names no argument: {e}"
    except Exception as e:  # noqa: BLE001 - the point of the test
        pytest.fail(f"{name}({param}={bad!r}) raised {type(e).__name__}: {e}")


def test_every_public_function_is_called_by_an_example():
    public = {name for name, _ in public_callables().values()}
    missing = sorted(public - {name for name, _, _ in CALLS})
    assert not missing, f"no docstring example calls {missing} directly, so the sweep misses it"
