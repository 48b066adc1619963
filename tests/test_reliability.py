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
    "padding",  # conv: 10**6 zeros on each side of a 4x4 image are 4 * 10**12 pixels
    "kernel_size",  # Conv2d: a (C_out, C_in, 10**6, 10**6) weight
    "stride",  # conv_transpose2d: an output of (H - 1) stride + ... rows, 10**6 a row
    "dilation",  # conv_transpose2d: likewise, d (k - 1) rows more
}
# Functions that start processes: each bad call would spawn workers. Their argument checks run
# before any process starts and are tested in the topic's own test file.
SKIP_FUNCTIONS = {
    "dlref.distributed.run_data_parallel": "spawns processes; checks in tests/test_distributed.py",
    "dlref.distributed.run_workers": "spawns processes; checks in tests/test_distributed.py",
    "dlref.distributed.allreduce_gradients": "needs a process group; tests/test_distributed.py",
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


# Modules whose functions have torch counterparts of the same name and arguments. Warnings are
# errors here (filterwarnings = error), and a warning of ours is accepted only where torch's
# counterpart gives the same warning for the same call (torch.nn.init warns that initialising a
# zero-element tensor is a no-op, and so do we).
TORCH_COUNTERPARTS = {"dlref.init": torch.nn.init}


def _torch_warns_alike(name, kwargs, warning):
    module, _, function = name.rpartition(".")
    ref = getattr(TORCH_COUNTERPARTS.get(module), function, None)
    if ref is None:
        return False
    kwargs = {k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in kwargs.items()}
    try:
        with warnings_as_errors():
            ref(**kwargs)
    except Warning as theirs:
        return type(theirs) is type(warning) and str(theirs) == str(warning)
    except Exception:  # noqa: BLE001 - torch refused: then ours must raise, not warn
        return False
    return False


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
    except Warning as w:  # raised, as warnings are errors here: only torch's own is accepted
        if not _torch_warns_alike(name, kwargs, w):
            pytest.fail(f"{name}({param}={bad!r}) warned {type(w).__name__}: {w}")
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
    from dlref.cartpole import CartPole

    def after_one_step(action):
        env = CartPole(2, dtype=torch.float64)
        env.state = torch.zeros(2, 4, dtype=torch.float64)
        return env.step(action)[0]

    ref = after_one_step(torch.tensor([0, 1]))
    assert ref[1, 1] > 0  # 1 pushes right: x_dot = +0.195
    torch.testing.assert_close(after_one_step(torch.tensor([0, 1], dtype=dtype)), ref)


def test_cartpole_steps_assigned_an_int_names_steps():
    from dlref.cartpole import CartPole

    env = CartPole(2)
    _raises_naming(TypeError, "steps", setattr, env, "steps", 5)
    _raises_naming(ValueError, "steps", setattr, env, "steps", torch.zeros(3, dtype=torch.long))
    env.steps = torch.tensor([498, 0])  # a tensor of the right shape is what "may be assigned"
    _, _, _, truncated = env.step(torch.tensor([0, 0]))
    _, _, _, truncated = env.step(torch.tensor([0, 0]))
    assert truncated.tolist() == [True, False]


def test_rotary_offset_must_not_be_negative():
    from dlref.positional import RotaryEmbedding

    rope = RotaryEmbedding(head_dim=4, max_seq_len=8)
    _raises_naming(ValueError, "offset", rope, torch.ones(1, 2, 4), offset=-4)
    _raises_naming(TypeError, "offset", rope, torch.ones(1, 2, 4), offset=1.0)
    _raises_naming(ValueError, "x", rope, torch.ones(1, 2, 6))  # width != head_dim
    # a NumPy offset is the same offset
    torch.testing.assert_close(rope(torch.ones(1, 2, 4), np.int64(3)), rope(torch.ones(1, 2, 4), 3))


def test_learned_positions_seq_len_and_offset_must_not_be_negative():
    from dlref.positional import LearnedPositionalEmbedding

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
    from dlref.llm_systems import zero_memory

    _raises_naming(TypeError, "stage", zero_memory, 7.5e9, 64, 1.0)
    _raises_naming(ValueError, "stage", zero_memory, 7.5e9, 64, 4)
    assert zero_memory(7.5e9, 64, np.int64(1)) == zero_memory(7.5e9, 64, 1)


def test_llm_systems_numpy_integers_do_not_overflow():
    from dlref.llm_systems import activation_bytes_per_layer, kv_cache_bytes, matmul_intensity

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
    self_attention = MultiHeadAttention(embed_dim=8, num_heads=2)
    _raises_naming(ValueError, "layer", self_attention, x, kv_cache=_cache(), layer=-1)


def _cache():
    from dlref.attention import KVCache

    return KVCache(num_layers=1, batch_size=2, num_kv_heads=2, max_seq_len=8, head_dim=4)


def test_run_data_parallel_needs_at_least_one_step():
    from dlref.distributed import run_data_parallel

    _raises_naming(ValueError, "steps", run_data_parallel, steps=0)


# ---------------------------------------------------------------------------------------------
# The sweep of methods: every public method of every public class, called with bad arguments.
# ---------------------------------------------------------------------------------------------
#
# Each case makes a fresh, seeded instance and a valid call (``make``), what to compare of the
# call (``observe``: its result, or the state it changed) and, where torch has the same thing,
# torch's own call on the same weights (``ref``). Each argument is then replaced by bad values
# of the kinds of issue 21, each with what must happen:
#   "error"  TypeError/ValueError naming the argument (a negative int that Python would use as
#            an index, nan/inf, a wrong type), unless torch gives a result: then the same result;
#   "same"   the valid call's result (a NumPy scalar for a Python number);
#   "same_or_error"  the valid call's result or a TypeError naming the argument (a uint8, int8,
#            int32 or bool tensor where int64 indices or actions are expected: never a mask);
#   "either" a result or a named TypeError/ValueError (wrong shapes and widths, empty sizes,
#            another dtype); where torch is the reference, ours fails exactly when torch fails
#            and otherwise gives torch's values.


def _observe_result(result):
    return result


def _case_rotary():
    from dlref.positional import RotaryEmbedding

    rope = RotaryEmbedding(head_dim=4, max_seq_len=8, dtype=torch.float64)
    x = torch.randn(2, 3, 4, dtype=torch.float64)
    return rope, {"x": x, "offset": 2}, _observe_result, None


def _case_learned_positions():
    from dlref.positional import LearnedPositionalEmbedding

    pe = LearnedPositionalEmbedding(16, 8, dtype=torch.float64)
    return pe, {"seq_len": 3, "offset": 2}, _observe_result, None


def _kv_cache(batch_size=2):
    from dlref.attention import KVCache

    return KVCache(2, batch_size, 2, 8, 4, dtype=torch.float64)


def _case_kv_update():
    cache = _kv_cache()
    k, v = (
        torch.randn(2, 2, 3, 4, dtype=torch.float64),
        torch.randn(2, 2, 3, 4, dtype=torch.float64),
    )

    def observe(result):
        return result, torch.tensor(cache.lengths), cache.keys, cache.values

    return cache.update, {"layer": 1, "k": k, "v": v}, observe, None


def _case_kv_reorder():
    cache = _kv_cache(batch_size=3)
    cache.keys.normal_()
    keys = cache.keys.clone()

    def ref(index):
        return keys.index_select(1, index)

    return cache.reorder, {"index": torch.tensor([2, 0, 0])}, lambda _: cache.keys, ref


def _mha():
    from dlref.attention import MultiHeadAttention

    return MultiHeadAttention(8, num_heads=2, kdim=6, dtype=torch.float64).eval()


def _case_mha_cross():
    x, context = (
        torch.randn(2, 3, 8, dtype=torch.float64),
        torch.randn(2, 5, 6, dtype=torch.float64),
    )
    mask = torch.ones(3, 5, dtype=torch.bool).tril()
    return _mha(), {"x": x, "context": context, "attn_mask": mask}, _observe_result, None


def _case_mha_cached():
    from dlref.attention import MultiHeadAttention, RotaryEmbedding

    mha = MultiHeadAttention(8, num_heads=2, dtype=torch.float64).eval()
    kwargs = {
        "x": torch.randn(2, 3, 8, dtype=torch.float64),
        "is_causal": True,
        "rotary": RotaryEmbedding(4, 8, dtype=torch.float64),
        "kv_cache": _kv_cache(),
        "layer": 1,
    }
    return mha, kwargs, _observe_result, None


def _case_rnn(kind, cell):
    from dlref import rnn

    cls = getattr(rnn, kind)
    ours = cls(3, 4, dtype=torch.float64) if cell else cls(3, 4, num_layers=2, dtype=torch.float64)
    theirs = getattr(torch.nn, kind)(*(3, 4), **({} if cell else {"num_layers": 2}))
    theirs = theirs.to(torch.float64)
    theirs.load_state_dict(ours.state_dict())
    x = (
        torch.randn(2, 3, dtype=torch.float64)
        if cell
        else torch.randn(5, 2, 3, dtype=torch.float64)
    )
    return ours, {"input": x, "hx": None}, _observe_result, theirs


def _params_with_grads():
    torch.manual_seed(1)
    return [torch.nn.Parameter(torch.randn(3, dtype=torch.float64)) for _ in range(2)]


def _case_optimizer(name, kwargs):
    from dlref import optim

    params = _params_with_grads()
    for p in params:
        p.grad = torch.randn_like(p)
    ours = getattr(optim, name)(params, **kwargs)
    ref = None
    if hasattr(torch.optim, name):
        ref_params = [p.detach().clone().requires_grad_(True) for p in params]
        for p, q in zip(ref_params, params, strict=True):
            p.grad = q.grad.clone()
        theirs = getattr(torch.optim, name)(ref_params, **kwargs)

        def ref(closure):
            theirs.step(closure)
            return [p.detach() for p in ref_params]

    return ours.step, {"closure": None}, lambda _: [p.detach() for p in params], ref


def _cartpole():
    from dlref.cartpole import CartPole

    env = CartPole(3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    env.state = torch.tensor([[0.0, 0.1, 0.02, -0.1]] * 3, dtype=torch.float64)
    return env


def _case_cartpole_step():
    env = _cartpole()
    return env.step, {"action": torch.tensor([0, 1, 1])}, _observe_result, None


def _setter(obj, attribute):
    def assign(value):
        setattr(obj, attribute, value)

    return assign


def _case_cartpole_set_state():
    env = _cartpole()
    value = torch.full((3, 4), 0.01, dtype=torch.float64)
    return (
        _setter(env, "state"),
        {"value": value},
        lambda _: env.step(torch.tensor([0, 1, 1])),
        None,
    )


def _case_cartpole_set_steps():
    env = _cartpole()
    value = torch.tensor([0, 498, 499])
    return (
        _setter(env, "steps"),
        {"value": value},
        lambda _: env.step(torch.tensor([0, 1, 1])),
        None,
    )


def _policy():
    from dlref.rl import MLPPolicy

    torch.manual_seed(0)
    return MLPPolicy(4, 2, hidden_size=8).to(torch.float64)


def _case_policy_forward():
    return _policy(), {"obs": torch.randn(3, 4, dtype=torch.float64)}, _observe_result, None


def _case_policy_sample():
    policy = _policy()
    kwargs = {"obs": torch.randn(3, 4, dtype=torch.float64), "generator": torch.Generator()}
    kwargs["generator"].manual_seed(0)
    return policy.sample, kwargs, _observe_result, None


def _case_policy_log_prob():
    policy = _policy()

    def ref(obs, action):
        dist = torch.distributions.Categorical(logits=policy(obs), validate_args=False)
        return dist.log_prob(action)

    obs = torch.randn(3, 4, dtype=torch.float64)
    return policy.log_prob, {"obs": obs, "action": torch.tensor([0, 1, 1])}, _observe_result, ref


def _case_history_last_mean():
    from dlref.rl import History

    return History(episode_returns=[10.0, 20.0, 30.0]).last_mean, {"n": 2}, _observe_result, None


def _case_scalar_backward():
    from dlref.autodiff import Scalar

    x = Scalar(3.0)
    L = x * x
    xt = torch.tensor(3.0, dtype=torch.float64, requires_grad=True)

    def ref(gradient):
        (xt * xt).backward(torch.tensor(gradient, dtype=torch.float64))
        return xt.grad.item()

    return L.backward, {"gradient": 2.0}, lambda _: x.grad, ref


def _case_norm(kind):
    from dlref import normalization

    args, shape = {"LayerNorm": ((4,), (2, 3, 4)), "RMSNorm": ((4,), (2, 3, 4)),
                   "GroupNorm": ((2, 4), (2, 4, 3))}[kind]  # fmt: skip
    ours = getattr(normalization, kind)(*args, dtype=torch.float64)
    with torch.no_grad():
        for p in ours.parameters():
            p.normal_()  # not the ones and zeros of a fresh module
    theirs = getattr(torch.nn, kind)(*args, dtype=torch.float64)
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(shape, dtype=torch.float64)
    # torch's rms_norm also takes complex inputs and weights of another dtype, which ours refuses
    # with a TypeError naming the argument: its values are compared in test_normalization.py
    ref = None if kind == "RMSNorm" else theirs
    return ours, {"input": x}, _observe_result, ref


def _case_dropout():
    from dlref.regularization import Dropout

    x = torch.randn(3, 4, dtype=torch.float64)
    return Dropout(0.25), {"input": x}, _observe_result, None  # torch draws its mask otherwise


def _model():
    from dlref.transformer import Transformer, TransformerConfig

    torch.manual_seed(0)
    cfg = TransformerConfig(vocab_size=10, max_seq_len=16, positional="rope", num_kv_heads=2)
    return Transformer(cfg).to(torch.float64).eval()


TOKENS = torch.tensor([[1, 2, 3], [4, 5, 6]])


def _case_model_forward():
    model = _model()
    return model, {"tokens": TOKENS, "kv_cache": model.new_kv_cache(2)}, _observe_result, None


def _case_model_new_kv_cache():
    model = _model()

    def observe(cache):
        return tuple(cache.keys.shape), cache.keys.dtype

    return model.new_kv_cache, {"batch_size": 2, "max_seq_len": 8}, observe, None


def _case_model_next_token():
    model = _model()
    return model.next_token_log_probs, {"tokens": TOKENS, "kv_cache": None}, _observe_result, None


def _case_model_generate():
    model = _model()
    kwargs = {"tokens": TOKENS, "max_new_tokens": 3, "use_cache": True}
    return model.generate, kwargs, _observe_result, None


def _case_block():
    from dlref.transformer import Block

    model = _model()
    block = model.blocks[0]
    assert isinstance(block, Block)
    kwargs = {
        "h": torch.randn(2, 3, model.config.d_model, dtype=torch.float64),
        "rotary": model.rotary,
        "kv_cache": model.new_kv_cache(2),
        "layer": 1,
    }
    return block, kwargs, _observe_result, None


def _case_mlp():
    model = _model()
    x = torch.randn(2, 3, model.config.d_model, dtype=torch.float64)
    return model.blocks[0].mlp, {"x": x}, _observe_result, None


METHOD_CASES = {
    "dlref.positional.RotaryEmbedding.forward": _case_rotary,
    "dlref.positional.LearnedPositionalEmbedding.forward": _case_learned_positions,
    "dlref.attention.KVCache.update": _case_kv_update,
    "dlref.attention.KVCache.reorder": _case_kv_reorder,
    "dlref.attention.MultiHeadAttention.forward": _case_mha_cross,
    "dlref.attention.MultiHeadAttention.forward[cache]": _case_mha_cached,
    "dlref.autodiff.Scalar.backward": _case_scalar_backward,
    **{
        f"dlref.normalization.{kind}.forward": (lambda kind=kind: _case_norm(kind))
        for kind in ("LayerNorm", "RMSNorm", "GroupNorm")
    },
    "dlref.regularization.Dropout.forward": _case_dropout,
    "dlref.optim.SGD.step": lambda: _case_optimizer("SGD", {"lr": 0.1, "momentum": 0.9}),
    "dlref.optim.RMSprop.step": lambda: _case_optimizer("RMSprop", {"lr": 0.1}),
    "dlref.optim.Adam.step": lambda: _case_optimizer("Adam", {"lr": 0.1}),
    "dlref.optim.AdamW.step": lambda: _case_optimizer("AdamW", {"lr": 0.1}),
    "dlref.optim.UniformAverage.step": lambda: _case_optimizer("UniformAverage", {"lr": 0.1}),
    "dlref.cartpole.CartPole.step": _case_cartpole_step,
    "dlref.cartpole.CartPole.state": _case_cartpole_set_state,
    "dlref.cartpole.CartPole.steps": _case_cartpole_set_steps,
    "dlref.rl.MLPPolicy.forward": _case_policy_forward,
    "dlref.rl.MLPPolicy.sample": _case_policy_sample,
    "dlref.rl.MLPPolicy.log_prob": _case_policy_log_prob,
    "dlref.rl.History.last_mean": _case_history_last_mean,
    **{
        f"dlref.rnn.{kind}.forward": (lambda kind=kind: _case_rnn(kind, kind.endswith("Cell")))
        for kind in ("RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell")
    },
    "dlref.transformer.MLP.forward": _case_mlp,
    "dlref.transformer.Block.forward": _case_block,
    "dlref.transformer.Transformer.forward": _case_model_forward,
    "dlref.transformer.Transformer.new_kv_cache": _case_model_new_kv_cache,
    "dlref.transformer.Transformer.next_token_log_probs": _case_model_next_token,
    "dlref.transformer.Transformer.generate": _case_model_generate,
}
# Sizes whose large values are valid and only cost time or memory.
METHOD_COSTLY = {"max_new_tokens", "batch_size", "max_seq_len"}


# The cases of dlref.conv, dlref.parallel and dlref.tokenization.


def _case_conv2d():
    from dlref.conv import Conv2d

    ours = Conv2d(4, 6, 3, stride=2, padding=1, groups=2, dtype=torch.float64)
    theirs = torch.nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2, dtype=torch.float64)
    theirs.load_state_dict(ours.state_dict())
    return ours, {"input": torch.randn(2, 4, 5, 5, dtype=torch.float64)}, _observe_result, theirs


def _case_max_pool2d():
    from dlref.conv import MaxPool2d

    kwargs = {"stride": 2, "padding": 1, "return_indices": True, "ceil_mode": True}
    # torch is no reference here yet: it pools integer inputs, which ours refuses, and the index
    # of a window holding nan is that of its last nan in torch, of its first one in ours
    x = torch.randn(2, 3, 6, 6, dtype=torch.float64)
    return MaxPool2d(3, **kwargs), {"input": x}, _observe_result, None


def _case_megatron_mlp():
    import torch.distributed as dist

    from dlref.parallel import MegatronMLP, make_mlp

    mlp = make_mlp(0)
    shard = MegatronMLP(mlp, rank=0, world_size=1)

    def forward(x):  # in a process group of one rank, in this process: the full MLP
        dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
        try:
            return shard(x)
        finally:
            dist.destroy_process_group()

    x = torch.randn(4, 16, dtype=torch.float64)
    return forward, {"x": x}, _observe_result, lambda x: mlp(x)


def _tokenizer():
    from dlref.tokenization import BPETokenizer

    return BPETokenizer([(104, 105), (32, 256)], special_tokens=["<|eot|>"])


def _case_bpe_encode():
    return _tokenizer().encode, {"text": "hi hi!<|eot|>"}, _observe_result, None


def _case_bpe_decode():
    return _tokenizer().decode, {"ids": [256, 257, 33, 258]}, _observe_result, None


METHOD_CASES.update(
    {
        "dlref.conv.Conv2d.forward": _case_conv2d,
        "dlref.conv.MaxPool2d.forward": _case_max_pool2d,
        "dlref.parallel.MegatronMLP.forward": _case_megatron_mlp,
        "dlref.tokenization.BPETokenizer.encode": _case_bpe_encode,
        "dlref.tokenization.BPETokenizer.decode": _case_bpe_decode,
    }
)


def _integer_tensor_bad_values(value):
    dtypes = (torch.uint8, torch.int8, torch.int32)  # those that hold the values
    out = [
        (f"as {dt}", value.to(dt), "same_or_error") for dt in dtypes if value.to(dt).eq(value).all()
    ]
    if ((value == 0) | (value == 1)).all():
        out.append(("as bool", value.bool(), "same_or_error"))
    out += [
        ("as float", value.double(), "either"),
        ("negative", value - value.max() - 1, "error"),
        ("too large", value + 1000, "error"),
    ]
    return out


def _float_tensor_bad_values(value):
    other = torch.float32 if value.dtype == torch.float64 else torch.float64
    out = [
        ("as int64", value.to(torch.int64), "either"),
        ("as complex", value.to(torch.complex128), "either"),
        (f"as {other}", value.to(other), "either"),
        (
            "with nan",
            value.masked_fill(torch.ones_like(value, dtype=torch.bool), math.nan),
            "either",
        ),
    ]
    if value.dim() > 0:
        out += [
            ("0-d", value.reshape(-1)[0], "either"),
            ("empty dim 0", value[:0], "either"),
            ("one wider", torch.cat([value, value[..., :1]], dim=-1), "either"),
        ]
    return out


def method_bad_values(param, value):
    """(label, bad value, what must happen) for argument ``param`` of valid value ``value``."""
    wrong_type = [("a string", "a string", "error"), ("a list", [1, 2], "error")]
    if value is None:
        return [("a string", "a string", "error"), ("-1", -1, "error")]
    if isinstance(value, bool):
        return [
            ("'yes'", "yes", "error"),
            ("2.5", 2.5, "error"),
            ("np.bool_", np.bool_(value), "same"),
        ]
    if is_int(value):
        out = [
            ("-1", -1, "error"),
            ("-7", -7, "error"),
            ("np.int64(-1)", np.int64(-1), "error"),
            ("np.int64", np.int64(value), "same"),
            ("2.5", 2.5, "error"),
            ("'3'", "3", "error"),
            ("True", True, "error"),
            ("0", 0, "either"),
        ]
        return out + ([] if param in METHOD_COSTLY else [("10**6", 10**6, "either")])
    if isinstance(value, float):
        return [
            ("nan", math.nan, "error"),
            ("inf", math.inf, "error"),
            ("-inf", -math.inf, "error"),
            ("-1.0", -1.0, "either"),
            ("'0.1'", "0.1", "error"),
            ("np.float64", np.float64(value), "same"),
        ]
    if isinstance(value, torch.Tensor):
        out = wrong_type + [("None", None, "either")]
        extra = value.unsqueeze(0).expand(2, *value.shape).clone()
        out.append(("extra dim", extra, "either"))
        if value.is_floating_point():
            return out + _float_tensor_bad_values(value)
        if value.dtype == torch.bool:  # a mask
            wider = torch.cat([value, value[..., :1]], dim=-1)
            return out + [
                ("as uint8", value.to(torch.uint8), "either"),
                ("as float", value.double(), "either"),
                ("one wider", wider, "either"),
            ]
        return out + _integer_tensor_bad_values(value)
    if isinstance(value, str):  # a text
        return [
            ("a list", [1, 2], "error"),
            ("None", None, "error"),
            ("-1", -1, "error"),
            ("bytes", value.encode(), "error"),
            ("lone surrogate", "\ud800", "error"),  # UTF-8 cannot encode it
            ("empty", "", "either"),
        ]
    if isinstance(value, list) and value and all(is_int(v) for v in value):  # token ids
        return [
            ("a string", "a string", "error"),
            ("None", None, "error"),
            ("-1", -1, "error"),
            ("with -1", [*value[:-1], -1], "error"),
            ("with 10**6", [*value[:-1], 10**6], "error"),
            ("with 2.5", [*value[:-1], 2.5], "error"),
            ("with True", [*value[:-1], True], "error"),
            ("np.int64", [np.int64(v) for v in value], "same"),
            ("a tuple", tuple(value), "same"),
            ("empty", [], "either"),
        ]
    return wrong_type + [("-1", -1, "error")]  # a generator, a cache, a rotary embedding...


def is_int(x):
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


def _method_triples():
    out = []
    for name, make in METHOD_CASES.items():
        _, kwargs, _, _ = make()
        for param in kwargs:
            for label, _bad, expect in method_bad_values(param, kwargs[param]):
                out.append((name, param, label, expect))
    return out


METHOD_TRIPLES = _method_triples()


def _same(a, b, exact):
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        assert isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor), (a, b)
        if exact:
            assert a.dtype == b.dtype and a.shape == b.shape, (a, b)
            assert torch.equal(a, b) or torch.allclose(a, b, rtol=0, atol=0, equal_nan=True)
        else:
            torch.testing.assert_close(a, b, check_dtype=False, equal_nan=True)
    elif isinstance(a, (tuple, list)):
        assert isinstance(b, (tuple, list)) and len(a) == len(b), (a, b)
        for x, y in zip(a, b, strict=True):
            _same(x, y, exact)
    elif isinstance(a, float) and isinstance(b, float):
        assert a == b or (math.isnan(a) and math.isnan(b)) or not exact and math.isclose(a, b)
    else:
        assert a == b, (a, b)


def _attempt(fn, kwargs):
    """("ok", value) or ("error", exception); anything but TypeError/ValueError fails the test."""
    try:
        with warnings_as_errors(), time_limit(SECONDS_PER_CALL):
            return "ok", fn(**kwargs)
    except (TypeError, ValueError) as e:
        return "error", e


@contextlib.contextmanager
def warnings_as_errors():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def _torch_attempt(ref, kwargs):
    try:
        with warnings_as_errors():
            return "ok", ref(**kwargs)
    except Exception as e:  # noqa: BLE001 - torch's own error types vary
        return "error", e


@pytest.mark.parametrize(
    ("name", "param", "label", "expect"),
    METHOD_TRIPLES,
    ids=[f"{n.removeprefix('dlref.')}({p}={lab})" for n, p, lab, _ in METHOD_TRIPLES],
)
def test_method_bad_input(name, param, label, expect):
    make = METHOD_CASES[name]
    torch.manual_seed(0)
    fn, kwargs, observe, ref = make()
    bad = {lab: v for lab, v, _ in method_bad_values(param, kwargs[param])}[label]
    valid_status, valid = _attempt(fn, kwargs)
    assert valid_status == "ok", f"the valid call of {name} failed: {valid}"
    valid = observe(valid)
    torch.manual_seed(0)
    fn, kwargs, observe, ref = make()
    call = dict(kwargs, **{param: bad})
    where = f"{name}({param}={label})"
    try:
        status, result = _attempt(fn, call)
    except TooSlow:
        pytest.fail(f"{where} ran over {SECONDS_PER_CALL} s")
    except Exception as e:  # noqa: BLE001 - the point of the test
        pytest.fail(f"{where} raised {type(e).__name__}: {e}")
    if status == "error":  # the message names an argument (a setter's: the attribute)
        names = [*kwargs, name.rsplit(".", 1)[1]]
        named = any(re.search(rf"\b{re.escape(n)}\b", str(result)) for n in names)
        assert named, f"{where}: the message names no argument: {result}"
    else:
        result = observe(result)
    if ref is not None:
        torch.manual_seed(0)
        fn2, kwargs2, observe2, ref = make()
        t_status, t_result = _torch_attempt(ref, dict(kwargs2, **{param: bad}))
        if t_status == "ok":
            assert status == "ok", f"{where}: torch gives a result, ours raised {result!r}"
            _same(result, t_result, exact=False)
        elif expect not in ("same", "same_or_error"):
            assert status == "error", f"{where}: torch refuses ({t_result!r}), ours returned"
    if expect == "same":
        assert status == "ok", f"{where}: must equal the valid call, raised {result!r}"
        _same(result, valid, exact=True)
    elif expect == "same_or_error":
        if status == "ok":
            _same(result, valid, exact=True)
        else:
            assert isinstance(result, TypeError), f"{where}: {result!r}"
    elif expect == "error" and ref is None:
        assert status == "error", f"{where} returned instead of raising: {result!r}"


def _public_methods():
    """{"module.Class.method": number of arguments} of every public class, setters included."""
    out = {}
    for info in pkgutil.walk_packages(dlref.__path__, "dlref."):
        if info.name.split(".")[-1].startswith("_") or info.name.startswith(tuple(SKIP_MODULES)):
            continue
        module = importlib.import_module(info.name)
        for cname, cls in vars(module).items():
            if cname.startswith("_") or not inspect.isclass(cls):
                continue
            if cls.__module__ != module.__name__:
                continue
            for mname, member in vars(cls).items():
                if mname.startswith("_"):
                    continue
                if isinstance(member, property) and member.fset is not None:
                    out[f"{module.__name__}.{cname}.{mname}"] = 1
                elif inspect.isfunction(member):
                    params = list(inspect.signature(member).parameters)[1:]
                    out[f"{module.__name__}.{cname}.{mname}"] = len(params)
    return out


def test_every_public_method_with_arguments_is_swept():
    swept = {name.split("[")[0] for name in METHOD_CASES}
    missing = sorted(n for n, k in _public_methods().items() if k and n not in swept)
    assert not missing, f"the method sweep has no case for {missing}"


def test_method_sweep_size(capsys):
    cases = len(METHOD_CASES)
    with capsys.disabled():
        print(
            f"\nmethod sweep: {len(METHOD_TRIPLES)} (class, method, bad input) triples "
            f"over {cases} method cases"
        )
    assert len(METHOD_TRIPLES) >= 400


# The cases of dlref.precision.


def _case_loss_scaler_scale():
    from dlref.precision import LossScaler

    outputs = torch.randn(3, dtype=torch.float64)
    return (
        LossScaler().scale,
        {"outputs": outputs},
        _observe_result,
        torch.amp.GradScaler("cpu").scale,
    )


def _scaler_and_optimizer():
    from dlref.precision import LossScaler

    w = torch.nn.Parameter(torch.ones(3, dtype=torch.float64))
    w.grad = torch.full((3,), 2.0**16, dtype=torch.float64)
    return LossScaler(), torch.optim.SGD([w], lr=0.1)


def _case_loss_scaler_unscale():
    scaler, optimizer = _scaler_and_optimizer()
    return scaler.unscale_, {"optimizer": optimizer}, _observe_result, None


def _case_loss_scaler_step():
    scaler, optimizer = _scaler_and_optimizer()
    return scaler.step, {"optimizer": optimizer}, _observe_result, None


METHOD_CASES.update(
    {
        "dlref.precision.LossScaler.scale": _case_loss_scaler_scale,
        "dlref.precision.LossScaler.unscale_": _case_loss_scaler_unscale,
        "dlref.precision.LossScaler.step": _case_loss_scaler_step,
    }
)
