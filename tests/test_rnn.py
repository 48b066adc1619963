"""dlref.rnn against torch.nn in float64: outputs, gradients and state dicts, every option."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from parity import assert_module_parity
from torch import nn

from dlref import rnn

DT = torch.float64
T, B, IN, H = 4, 3, 3, 4

# (dlref class, torch class, extra constructor arguments)
MODES = {
    "rnn_tanh": (rnn.RNN, nn.RNN, {}),
    "rnn_relu": (rnn.RNN, nn.RNN, {"nonlinearity": "relu"}),
    "lstm": (rnn.LSTM, nn.LSTM, {}),
    "gru": (rnn.GRU, nn.GRU, {}),
}
CELLS = {
    "rnn_tanh": (rnn.RNNCell, nn.RNNCell, {}),
    "rnn_relu": (rnn.RNNCell, nn.RNNCell, {"nonlinearity": "relu"}),
    "lstm": (rnn.LSTMCell, nn.LSTMCell, {}),
    "gru": (rnn.GRUCell, nn.GRUCell, {}),
}
OPTIONS = [
    {},
    {"num_layers": 2},
    {"bidirectional": True},
    {"batch_first": True},
    {"bias": False},
    {"num_layers": 3, "bidirectional": True, "batch_first": True, "bias": False},
]


def _pair(table, mode, **options):
    ours_cls, ref_cls, extra = table[mode]
    ref = ref_cls(IN, H, **extra, **options, dtype=DT)
    ours = ours_cls(IN, H, **extra, **options, dtype=DT)
    return ours, ref


def _state(mode, shape):
    if mode == "lstm":
        return (torch.randn(shape, dtype=DT), torch.randn(shape, dtype=DT))
    return torch.randn(shape, dtype=DT)


# ------------------------------------------------------------------------ sequence modules


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: "-".join(o) or "default")
@pytest.mark.parametrize("batched", [True, False], ids=["batched", "unbatched"])
@pytest.mark.parametrize("with_state", [False, True], ids=["zero-state", "initial-state"])
def test_sequence_module_matches_torch(mode, options, batched, with_state):
    """Outputs, final states, and gradients w.r.t. input, initial state and every parameter."""
    torch.manual_seed(0)
    ours, ref = _pair(MODES, mode, **options)
    D = 2 if options.get("bidirectional") else 1
    LD = options.get("num_layers", 1) * D
    if batched:
        x = torch.randn((B, T, IN) if options.get("batch_first") else (T, B, IN), dtype=DT)
        state_shape = (LD, B, H)
    else:
        x, state_shape = torch.randn(T, IN, dtype=DT), (LD, H)
    args = (x, _state(mode, state_shape)) if with_state else (x,)
    assert_module_parity(ours, ref, args)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("options", [{}, OPTIONS[-1]], ids=["default", "all-options"])
def test_same_seed_gives_torch_initialisation(mode, options):
    torch.manual_seed(7)
    ref = MODES[mode][1](IN, H, **MODES[mode][2], **options)
    torch.manual_seed(7)
    ours = MODES[mode][0](IN, H, **MODES[mode][2], **options)
    s_ours, s_ref = ours.state_dict(), ref.state_dict()
    assert list(s_ours) == list(s_ref)  # same names, same order
    for name in s_ref:
        assert torch.equal(s_ours[name], s_ref[name]), name
    bound = 1 / math.sqrt(H)
    assert all(p.abs().max() <= bound for p in ours.parameters())


@pytest.mark.parametrize("mode", MODES)
def test_torch_module_loads_our_state_dict(mode):
    """The other direction: our (random) weights into nn.<Module> give our outputs."""
    ours, ref = _pair(MODES, mode, num_layers=2, bidirectional=True)
    with torch.no_grad():
        for p in ours.parameters():
            p.normal_()
    ref.load_state_dict(ours.state_dict())
    for name, p in ref.named_parameters():
        assert torch.equal(p, ours.get_parameter(name))
    assert_module_parity(ours, ref, (torch.randn(T, B, IN, dtype=DT),), layouts=["contiguous"])


@pytest.mark.parametrize("mode", MODES)
def test_dropout_between_layers_matches_torch_in_train_and_eval(mode):
    """Training: the same dropout masks as torch for the same seed. Eval: no dropout at all."""
    ours, ref = _pair(MODES, mode, num_layers=3, dropout=0.5, bidirectional=True)
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(T, B, IN, dtype=DT)
    torch.manual_seed(1)
    out_ours = ours(x)
    torch.manual_seed(1)
    out_ref = ref(x)
    torch.testing.assert_close(out_ours, out_ref)
    no_dropout = _pair(MODES, mode, num_layers=3, bidirectional=True)[1]
    no_dropout.load_state_dict(ref.state_dict())
    ours.eval()
    torch.testing.assert_close(ours(x), no_dropout(x))
    assert not torch.allclose(out_ours[0], no_dropout(x)[0])  # training mode did drop something


def test_dropout_with_one_layer_warns_like_torch():
    with pytest.warns(UserWarning, match="num_layers greater than 1"):
        nn.LSTM(IN, H, dropout=0.2)
    with pytest.warns(UserWarning, match="num_layers greater than 1"):
        rnn.LSTM(IN, H, dropout=0.2)


def test_rnn_nonlinearity_is_the_fourth_positional_argument_as_in_torch():
    assert rnn.RNN(IN, H, 1, "relu").nonlinearity == nn.RNN(IN, H, 1, "relu").nonlinearity == "relu"


def test_saturated_inputs_match_torch():
    """Inputs of ±1e4 saturate every gate: finite outputs, the same as torch's."""
    ours, ref = _pair(MODES, "lstm")
    x = 1e4 * torch.randn(T, B, IN, dtype=DT).sign()
    assert_module_parity(ours, ref, (x,), layouts=["contiguous"])
    assert torch.isfinite(ours(x)[0]).all()


def test_parameter_count_does_not_depend_on_sequence_length():
    lstm = rnn.LSTM(IN, H, num_layers=2)
    n = sum(p.numel() for p in lstm.parameters())
    assert n == 4 * H * (IN + H + 2) + 4 * H * (H + H + 2)
    for length in (1, 10, 100):
        assert lstm(torch.randn(length, 1, IN))[0].shape == (length, 1, H)
    assert sum(p.numel() for p in lstm.parameters()) == n


# ---------------------------------------------------------------------------------- cells


@pytest.mark.parametrize("mode", CELLS)
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("batched", [True, False], ids=["batched", "unbatched"])
@pytest.mark.parametrize("with_state", [False, True], ids=["zero-state", "initial-state"])
def test_cell_matches_torch(mode, bias, batched, with_state):
    torch.manual_seed(0)
    ours, ref = _pair(CELLS, mode, bias=bias)
    x = torch.randn((B, IN) if batched else (IN,), dtype=DT)
    args = (x, _state(mode, (B, H) if batched else (H,))) if with_state else (x,)
    assert_module_parity(ours, ref, args)


@pytest.mark.parametrize("mode", CELLS)
def test_cell_same_seed_gives_torch_initialisation(mode):
    torch.manual_seed(3)
    ref = CELLS[mode][1](IN, H, **CELLS[mode][2])
    torch.manual_seed(3)
    ours = CELLS[mode][0](IN, H, **CELLS[mode][2])
    for (n_a, a), (n_b, b) in zip(ours.state_dict().items(), ref.state_dict().items(), strict=True):
        assert n_a == n_b and torch.equal(a, b)


def test_sequence_module_equals_its_cell_unrolled_with_a_plain_loop():
    """nn.LSTMCell stepped by hand (the textbook loop) gives dlref.LSTM's outputs."""
    ours = rnn.LSTM(IN, H, dtype=DT)
    cell = nn.LSTMCell(IN, H, dtype=DT)
    cell.load_state_dict({k.removesuffix("_l0"): v for k, v in ours.state_dict().items()})
    x = torch.randn(T, B, IN, dtype=DT)
    h = c = torch.zeros(B, H, dtype=DT)
    hs = []
    for x_t in x:
        h, c = cell(x_t, (h, c))
        hs.append(h)
    output, (h_n, c_n) = ours(x)
    torch.testing.assert_close(output, torch.stack(hs))
    torch.testing.assert_close(c_n[0], c)


def test_bptt_jacobian_is_the_product_of_step_jacobians():
    """d h_T / d h_t = prod_k diag(1 - h_k^2) W_hh, checked against autograd."""
    torch.manual_seed(0)
    cell = rnn.RNNCell(IN, H, dtype=DT)
    xs = torch.randn(6, IN, dtype=DT)
    h0 = torch.randn(H, dtype=DT)

    def unroll(h):
        for x_t in xs:
            h = cell(x_t, h)
        return h

    hs, h = [], h0
    with torch.no_grad():
        for x_t in xs:
            h = cell(x_t, h)
            hs.append(h)
    product = torch.eye(H, dtype=DT)
    for h_k in hs:
        product = torch.diag(1 - h_k**2) @ cell.weight_hh.detach() @ product
    torch.testing.assert_close(product, torch.autograd.functional.jacobian(unroll, h0))


# --------------------------------------------------------------------------------- errors


@pytest.mark.parametrize("mode", MODES)
def test_wrong_input_size_names_both_shapes(mode):
    ours = MODES[mode][0](IN, H, **MODES[mode][2])
    with pytest.raises(ValueError, match=r"input has shape \(4, 3, 5\) but input_size is 3"):
        ours(torch.randn(4, 3, 5))


@pytest.mark.parametrize("mode", MODES)
def test_wrong_state_shape_names_both_shapes(mode):
    ours = MODES[mode][0](IN, H, num_layers=2, **MODES[mode][2])
    name = "h_0" if mode == "lstm" else "hx"
    msg = rf"{name} has shape \(2, 5, 4\) but input of shape \(4, 3, 3\) needs {name} of shape "
    with pytest.raises(ValueError, match=msg + r"\(2, 3, 4\)"):
        ours(torch.randn(T, B, IN), _state(mode, (2, 5, H)))
    with pytest.raises(ValueError, match=rf"{name} has shape \(2, 3, 4\) .* shape \(2, 4\)"):
        ours(torch.randn(T, IN), _state(mode, (2, 3, H)))  # unbatched input, batched state


def test_lstm_cell_state_shape_error_names_c_0():
    cell = rnn.LSTMCell(IN, H)
    with pytest.raises(ValueError, match=r"c_0 has shape \(3, 5\) but input of shape \(3, 3\)"):
        cell(torch.randn(B, IN), (torch.zeros(B, H), torch.zeros(B, 5)))


def test_lstm_state_must_be_a_pair():
    with pytest.raises(TypeError, match=r"hx must be a tuple \(h_0, c_0\)"):
        rnn.LSTM(IN, H)(torch.randn(T, B, IN), torch.zeros(1, B, H))


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: rnn.RNN(IN, H)(torch.ones(T, B, IN, dtype=torch.long)), TypeError, "floating"),
        (lambda: rnn.RNN(IN, H)(torch.ones(2, T, B, IN)), ValueError, "2 dimensions .* or 3"),
        (lambda: rnn.GRUCell(IN, H)(torch.ones(1, B, IN)), ValueError, r"shape \(1, 3, 3\)"),
        (lambda: rnn.RNN(IN, H, nonlinearity="sigmoid"), ValueError, "'tanh' or 'relu'"),
        (lambda: rnn.RNNCell(IN, H, nonlinearity="gelu"), ValueError, "'tanh' or 'relu'"),
        (lambda: rnn.LSTM(IN, H, num_layers=2, dropout=1.5), ValueError, r"dropout .* \[0, 1\]"),
        (lambda: rnn.LSTM(IN, 0), ValueError, "hidden_size must be greater than zero"),
        (lambda: rnn.LSTM(IN, H, num_layers=0), ValueError, "num_layers"),
        (lambda: rnn.GRU(2.5, H), TypeError, "input_size must be an int"),
        (
            lambda: rnn.LSTM(IN, H)(torch.ones(T, B, IN, dtype=DT)),
            ValueError,
            "input has dtype torch.float64 but the weights have dtype torch.float32",
        ),
        (lambda: rnn.LSTMCell(IN, H)(torch.ones(B, IN, dtype=DT)), ValueError, "dtype"),
        (lambda: rnn.RNN(IN, H, device=-1), ValueError, "device must be a torch.device"),
        (lambda: rnn.GRUCell(IN, H, device=object()), TypeError, "device must be a torch.device"),
        (
            lambda: rnn.LSTM(IN, H, dtype=torch.int64),
            TypeError,
            "dtype must be a floating-point torch.dtype or None, got torch.int64",
        ),
    ],
)
def test_bad_arguments_raise_clear_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


# ------------------------------------------------------------------------------- clipping


def _params_with_grads(seed=0, nonfinite=None):
    gen = torch.Generator().manual_seed(seed)
    shapes = [(3, 4), (5,), (2, 2, 2)]
    params = [torch.zeros(s, dtype=DT, requires_grad=True) for s in shapes]
    for p in params:
        p.grad = 10 * torch.randn(p.shape, generator=gen, dtype=DT)
    params.append(torch.zeros(3, dtype=DT, requires_grad=True))  # no .grad: skipped
    if nonfinite is not None:
        params[1].grad[2] = nonfinite
    return params


def _clone(params):
    out = []
    for p in params:
        q = p.detach().clone().requires_grad_()
        q.grad = None if p.grad is None else p.grad.clone()
        out.append(q)
    return out


@pytest.mark.parametrize("norm_type", [1.0, 2.0, float("inf"), 3.0, 0.5])
@pytest.mark.parametrize("max_norm", [0.5, 1e6])  # clipping, and no clipping (factor 1)
def test_clip_grad_norm_matches_torch(norm_type, max_norm):
    ours, ref = _params_with_grads(), _params_with_grads()
    n_ours = rnn.clip_grad_norm_(ours, max_norm, norm_type)
    n_ref = nn.utils.clip_grad_norm_(ref, max_norm, norm_type)
    torch.testing.assert_close(n_ours, n_ref, rtol=1e-12, atol=0)
    for a, b in zip(ours, ref, strict=True):
        assert (a.grad is None) == (b.grad is None)
        if a.grad is not None:
            torch.testing.assert_close(a.grad, b.grad, rtol=1e-12, atol=1e-15)


def test_clip_grad_norm_total_is_the_norm_of_all_gradients_concatenated():
    params = _params_with_grads()
    flat = torch.cat([p.grad.flatten() for p in params if p.grad is not None])
    for p in (1.0, 2.0, float("inf")):
        expected = torch.linalg.vector_norm(flat, p)
        torch.testing.assert_close(rnn.clip_grad_norm_(_clone(params), 1.0, p), expected)


def test_clip_grad_norm_of_a_single_tensor_and_of_nothing():
    w = torch.zeros(2, requires_grad=True)
    w.grad = torch.tensor([3.0, 4.0])
    assert rnn.clip_grad_norm_(w, 1.0).item() == pytest.approx(5.0)
    torch.testing.assert_close(w.grad, torch.tensor([0.6, 0.8]), atol=1e-6, rtol=0)
    assert torch.equal(rnn.clip_grad_norm_([], 1.0), nn.utils.clip_grad_norm_([], 1.0))
    with pytest.warns(UserWarning, match="empty generator"):
        rnn.clip_grad_norm_((p for p in []), 1.0)


@pytest.mark.parametrize("bad", [float("inf"), float("nan")])
@pytest.mark.parametrize("norm_type", [2.0, float("inf")])
def test_clip_grad_norm_nonfinite_like_torch(bad, norm_type):
    ours, ref = _params_with_grads(nonfinite=bad), _params_with_grads(nonfinite=bad)
    with pytest.raises(RuntimeError, match="non-finite"):
        rnn.clip_grad_norm_(ours, 1.0, norm_type, error_if_nonfinite=True)
    with pytest.raises(RuntimeError, match="non-finite"):
        nn.utils.clip_grad_norm_(ref, 1.0, norm_type, error_if_nonfinite=True)
    n_ours = rnn.clip_grad_norm_(ours, 1.0, norm_type)  # scaled by the non-finite factor
    n_ref = nn.utils.clip_grad_norm_(ref, 1.0, norm_type)
    torch.testing.assert_close(n_ours, n_ref, equal_nan=True)
    for a, b in zip(ours[:3], ref[:3], strict=True):
        torch.testing.assert_close(a.grad, b.grad, equal_nan=True)


@pytest.mark.parametrize("clip_value", [0.0, 1.5, 100.0])
def test_clip_grad_value_matches_torch(clip_value):
    ours, ref = _params_with_grads(), _params_with_grads()
    assert rnn.clip_grad_value_(ours, clip_value) is None
    nn.utils.clip_grad_value_(ref, clip_value)
    for a, b in zip(ours[:3], ref[:3], strict=True):
        assert torch.equal(a.grad, b.grad)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.floats(1e-3, 1e3), st.sampled_from([1.0, 2.0, float("inf")]))
def test_clipped_gradient_keeps_its_direction_and_has_norm_at_most_max_norm(seed, max_norm, p):
    params = _params_with_grads(seed)
    before = torch.cat([q.grad.flatten() for q in params[:3]])
    total = rnn.clip_grad_norm_(params, max_norm, p)
    after = torch.cat([q.grad.flatten() for q in params[:3]])
    assert torch.linalg.vector_norm(after, p) <= max_norm * (1 + 1e-9) or total <= max_norm
    scale = after.norm() / before.norm()  # one factor for every entry: same direction
    torch.testing.assert_close(after, scale * before, rtol=1e-12, atol=1e-300)
    assert scale <= 1
