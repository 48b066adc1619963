"""dlref.rnn against torch.nn in float64: outputs, gradients and state dicts, every option."""

import math

import pytest
import torch
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
        (lambda: rnn.RNN(IN, H, nonlinearity="sigmoid"), ValueError, "nonlinearity must be one"),
        (lambda: rnn.RNNCell(IN, H, nonlinearity="gelu"), ValueError, "nonlinearity must be one"),
        (lambda: rnn.LSTM(IN, H, num_layers=2, dropout=1.5), ValueError, r"dropout .* \[0, 1\]"),
        (lambda: rnn.LSTM(IN, 0), ValueError, "hidden_size must be at least 1, got 0"),
        (lambda: rnn.LSTM(IN, H, num_layers=0), ValueError, "num_layers must be at least 1"),
        (lambda: rnn.LSTM(IN, H, num_layers=2.0), TypeError, "num_layers must be an int"),
        (lambda: rnn.LSTM(IN, H, dropout="0.1"), TypeError, "dropout must be a real number"),
        (lambda: rnn.GRU(2.5, H), TypeError, "input_size must be an int"),
        (
            lambda: rnn.LSTM(IN, H)(torch.ones(T, B, IN, dtype=DT)),
            TypeError,
            "input has dtype torch.float64 but the weights have dtype torch.float32",
        ),
        (lambda: rnn.LSTMCell(IN, H)(torch.ones(B, IN, dtype=DT)), TypeError, "input has dtype"),
        (lambda: rnn.RNN(IN, H, device=-1), ValueError, "device must be None, a torch.device"),
        (lambda: rnn.GRUCell(IN, H, device=object()), ValueError, "device must be None, a torch"),
        (
            lambda: rnn.LSTM(IN, H, dtype=torch.int64),
            TypeError,
            "dtype must be None or a floating-point torch.dtype, got torch.int64",
        ),
    ],
)
def test_bad_arguments_raise_clear_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_clipping_still_imports_from_rnn():
    from dlref import clipping

    assert rnn.clip_grad_norm_ is clipping.clip_grad_norm_
    assert rnn.clip_grad_value_ is clipping.clip_grad_value_
