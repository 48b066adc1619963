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

import numpy as np
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


# ---------------------------------------------------------------------------------------------
# Defects found by hand (issue 21): each was silently wrong or failed deep inside torch.
# ---------------------------------------------------------------------------------------------


def _raises_naming(exc, name, fn, *args, **kwargs):
    with pytest.raises(exc) as info:
        fn(*args, **kwargs)
    assert re.search(rf"\b{re.escape(name)}\b", str(info.value)), str(info.value)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int8, torch.int32, torch.bool])
def test_cartpole_actions_of_any_integer_dtype_push_like_int64(dtype):
    from dlref.rl import CartPole

    def after_one_step(action):
        env = CartPole(2, dtype=torch.float64)
        env.state = torch.zeros(2, 4, dtype=torch.float64)
        return env.step(action)[0]

    ref = after_one_step(torch.tensor([0, 1]))
    assert ref[1, 1] > 0  # 1 pushes right: x_dot = +0.195
    torch.testing.assert_close(after_one_step(torch.tensor([0, 1], dtype=dtype)), ref)


def test_cartpole_steps_assigned_an_int_names_steps():
    from dlref.rl import CartPole

    env = CartPole(2)
    _raises_naming(TypeError, "steps", setattr, env, "steps", 5)
    _raises_naming(ValueError, "steps", setattr, env, "steps", torch.zeros(3, dtype=torch.long))
    env.steps = torch.tensor([498, 0])  # a tensor of the right shape is what "may be assigned"
    _, _, _, truncated = env.step(torch.tensor([0, 0]))
    _, _, _, truncated = env.step(torch.tensor([0, 0]))
    assert truncated.tolist() == [True, False]


def test_rotary_offset_must_not_be_negative():
    from dlref.attention import RotaryEmbedding

    rope = RotaryEmbedding(head_dim=4, max_seq_len=8)
    _raises_naming(ValueError, "offset", rope, torch.ones(1, 2, 4), offset=-4)
    _raises_naming(TypeError, "offset", rope, torch.ones(1, 2, 4), offset=1.0)
    _raises_naming(ValueError, "x", rope, torch.ones(1, 2, 6))  # width != head_dim
    # a NumPy offset is the same offset
    torch.testing.assert_close(rope(torch.ones(1, 2, 4), np.int64(3)), rope(torch.ones(1, 2, 4), 3))


def test_learned_positions_seq_len_and_offset_must_not_be_negative():
    from dlref.attention import LearnedPositionalEmbedding

    pe = LearnedPositionalEmbedding(4, 8)
    _raises_naming(ValueError, "seq_len", pe, -1)
    _raises_naming(ValueError, "offset", pe, 2, offset=-1)
    _raises_naming(TypeError, "seq_len", pe, 2.0)
    assert pe(0).shape == (0, 8)  # torch's embedding of no position: empty


def test_kv_cache_layer_and_reorder_index_are_checked():
    from dlref.attention import KVCache

    cache = KVCache(num_layers=2, batch_size=2, num_kv_heads=1, max_seq_len=4, head_dim=2)
    k = torch.ones(2, 1, 1, 2)
    _raises_naming(ValueError, "layer", cache.update, -1, k, k)
    _raises_naming(ValueError, "layer", cache.update, 2, k, k)
    _raises_naming(TypeError, "layer", cache.update, 0.0, k, k)
    assert cache.lengths == [0, 0] and cache.keys.abs().sum() == 0  # nothing written
    _raises_naming(ValueError, "index", cache.reorder, torch.tensor([0, 2]))
    _raises_naming(ValueError, "index", cache.reorder, torch.tensor([-1, 0]))
    _raises_naming(TypeError, "index", cache.reorder, torch.tensor([True, False]))
    _raises_naming(TypeError, "index", cache.reorder, [0, 1])
    _raises_naming(ValueError, "index", cache.reorder, torch.tensor([[0, 1]]))


def _tiny_model():
    from dlref.transformer import Transformer, TransformerConfig

    torch.manual_seed(0)
    return Transformer(TransformerConfig(vocab_size=10, max_seq_len=16)).eval()


def test_generate_checks_its_arguments():
    model = _tiny_model()
    prompt = torch.tensor([[1, 2, 3]])
    _raises_naming(ValueError, "max_new_tokens", model.generate, prompt, -2)
    for use_cache in (True, False):
        _raises_naming(ValueError, "tokens", model.generate, prompt[:, :0], 2, use_cache=use_cache)
    _raises_naming(ValueError, "tokens", model.generate, torch.tensor([[1, 10]]), 2)
    _raises_naming(ValueError, "tokens", model.generate, torch.tensor([[1, -1]]), 2)
    _raises_naming(ValueError, "tokens", model.generate, torch.tensor([1, 2, 3]), 2)
    _raises_naming(ValueError, "tokens", model, torch.tensor([[1, 10]]))
    assert torch.equal(model.generate(prompt, np.int64(2)), model.generate(prompt, 2))


def test_lstm_of_an_empty_sequence_names_input():
    from dlref.rnn import GRU, LSTM, RNN

    for cls in (RNN, LSTM, GRU):
        _raises_naming(ValueError, "input", cls(3, 4), torch.zeros(0, 2, 3))
        _raises_naming(ValueError, "input", cls(3, 4), torch.zeros(0, 3))
        ref_cls = getattr(torch.nn, cls.__name__)
        with pytest.raises(RuntimeError, match="sequence length"):  # torch refuses too
            ref_cls(3, 4)(torch.zeros(0, 2, 3))


def test_discounted_returns_of_no_step_is_empty():
    from dlref.rl import discounted_returns

    for shape in [(0,), (0, 3)]:
        out = discounted_returns(torch.zeros(shape), torch.zeros(shape, dtype=torch.bool), 0.9)
        assert out.shape == shape


def test_zero_memory_stage_must_be_an_int():
    from dlref.scaling import zero_memory

    _raises_naming(TypeError, "stage", zero_memory, 7.5e9, 64, 1.0)
    _raises_naming(ValueError, "stage", zero_memory, 7.5e9, 64, 4)
    assert zero_memory(7.5e9, 64, np.int64(1)) == zero_memory(7.5e9, 64, 1)


def test_scaling_numpy_integers_do_not_overflow():
    from dlref.scaling import activation_bytes_per_layer, kv_cache_bytes, matmul_intensity

    n = np.int64(10**6)
    assert activation_bytes_per_layer(n, n, n, np.int64(1000)) == activation_bytes_per_layer(
        10**6, 10**6, 10**6, 1000
    )
    assert activation_bytes_per_layer(n, n, n, np.int64(1000)) > 5e21
    assert kv_cache_bytes(*[n] * 6) == 2 * 10**36
    assert matmul_intensity(n * 10**4, n * 10**4, n * 10**4) == matmul_intensity(*[10**10] * 3)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize(
    ("ours", "ref"),
    [
        ("softplus", lambda x: torch.nn.functional.softplus(x)),
        ("gelu", lambda x: torch.nn.functional.gelu(x)),
        ("gelu_tanh", lambda x: torch.nn.functional.gelu(x, approximate="tanh")),
    ],
)
def test_half_precision_activations_match_torch(ours, ref, dtype):
    from dlref import activations

    fn = (
        (lambda x: activations.gelu(x, approximate="tanh"))
        if ours == "gelu_tanh"
        else getattr(activations, ours)
    )
    x = torch.tensor([-30.0, -10.0, -4.0, -1.0, 0.0, 0.5, 4.0, 10.0, 15.0, 19.0, 25.0, 1e4])
    x = x.to(dtype).requires_grad_(True)
    y, r = fn(x), ref(x)
    assert y.dtype == dtype
    torch.testing.assert_close(y, r, rtol=0, atol=0)  # the same float32 computation, rounded
    g = torch.linspace(-1, 1, len(x)).to(dtype)
    gy, gr = (torch.autograd.grad(out, x, g)[0] for out in (y, r))
    torch.testing.assert_close(gy, gr)


def test_decoding_step_fn_with_an_empty_vocabulary_names_step_fn():
    from dlref.decoding import beam_search, greedy, sample

    def empty(tokens):
        return torch.zeros(tokens.shape[0], 0)

    prefix = torch.zeros(2, 1, dtype=torch.long)
    for decode in (greedy, sample):
        _raises_naming(ValueError, "step_fn", decode, empty, prefix, 2)
    _raises_naming(ValueError, "step_fn", beam_search, empty, prefix, 2, 2)


def test_sample_with_an_infinite_temperature_names_temperature():
    from dlref.decoding import markov_step_fn, sample

    P = torch.tensor([[0.5, 0.5, 0.0], [0.2, 0.2, 0.6], [0.5, 0.4, 0.1]])  # log 0 = -inf
    prefix = torch.zeros(2, 1, dtype=torch.long)
    for t in (math.inf, math.nan):
        _raises_naming(ValueError, "temperature", sample, markov_step_fn(P), prefix, 2, t)


def test_attention_context_of_the_wrong_width_names_context():
    from dlref.attention import MultiHeadAttention

    mha = MultiHeadAttention(embed_dim=8, num_heads=2, kdim=6)
    x = torch.randn(2, 3, 8)
    assert mha(x, torch.randn(2, 5, 6)).shape == (2, 3, 8)
    _raises_naming(ValueError, "context", mha, x, torch.randn(2, 5, 8))
    _raises_naming(ValueError, "context", mha, x, torch.randn(5, 6))
    _raises_naming(ValueError, "context", mha, x, torch.randn(3, 5, 6))
    _raises_naming(TypeError, "context", mha, x, torch.ones(2, 5, 6, dtype=torch.long))
    _raises_naming(ValueError, "layer", mha, x, kv_cache=_cache(), layer=-1)


def _cache():
    from dlref.attention import KVCache

    return KVCache(num_layers=1, batch_size=2, num_kv_heads=2, max_seq_len=8, head_dim=4)


def test_run_data_parallel_needs_at_least_one_step():
    from dlref.distributed import run_data_parallel

    _raises_naming(ValueError, "steps", run_data_parallel, steps=0)
