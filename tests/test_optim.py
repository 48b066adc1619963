"""dlref.optim against torch.optim: parameter trajectories in float64, state dicts, errors.

The trusted references are torch.optim (same name, same arguments), plain out-of-place loops
of the textbook equations, and torch's SGD with momentum for the uniform average.
"""

import copy
import inspect
import itertools
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from dlref import optim

DT = torch.float64
STEPS = 100
TOL = dict(rtol=1e-10, atol=1e-10)


# ------------------------------------------------------------------------------------ helpers


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3)).to(DT)


def _data():
    g = torch.Generator().manual_seed(1)
    return torch.randn(32, 4, generator=g, dtype=DT), torch.randn(32, 3, generator=g, dtype=DT)


def _groups(model, lr):
    """Two parameter groups that differ in learning rate and weight decay."""
    return [
        {"params": model[0].parameters(), "lr": lr / 2, "weight_decay": 0.05},
        {"params": model[2].parameters()},
    ]


def _train(model, opt, steps, X, Y):
    for _ in range(steps):
        opt.zero_grad()
        ((model(X) - Y) ** 2).mean().backward()
        opt.step()
    return [p.detach().clone() for p in model.parameters()]


def _trajectory(opt_cls, kwargs, steps=STEPS, groups=True):
    model = _model()
    params = _groups(model, kwargs.get("lr", 1e-3)) if groups else model.parameters()
    return _train(model, opt_cls(params, **kwargs), steps, *_data())


def _assert_same_params(ours, ref, **tol):
    for a, b in zip(ours, ref, strict=True):
        torch.testing.assert_close(a, b, **(tol or TOL))


def _product(**options):
    keys = list(options)
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*options.values())]


SGD_OPTIONS = [
    o
    for o in _product(
        momentum=[0.0, 0.9], dampening=[0.0, 0.1], weight_decay=[0.0, 1e-2], nesterov=[False, True]
    )
    if not (o["nesterov"] and (o["momentum"] == 0 or o["dampening"] != 0))
]
RMSPROP_OPTIONS = _product(
    alpha=[0.99, 0.9], momentum=[0.0, 0.9], weight_decay=[0.0, 1e-2], centered=[False, True]
)
ADAM_OPTIONS = _product(
    betas=[(0.9, 0.999), (0.5, 0.9)], weight_decay=[0.0, 1e-2], amsgrad=[False, True]
)
CASES = (
    [("SGD", dict(lr=0.05, **o)) for o in SGD_OPTIONS]
    + [("RMSprop", dict(lr=1e-2, **o)) for o in RMSPROP_OPTIONS]
    + [("Adam", dict(lr=1e-2, **o)) for o in ADAM_OPTIONS]
    + [("AdamW", dict(lr=1e-2, **o)) for o in ADAM_OPTIONS]
)

# One case per optimizer with every buffer in use (momentum, Nesterov, centered, AMSGrad, decay).
FULL = [
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.0, weight_decay=1e-2, nesterov=True)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.1, weight_decay=1e-2)),
    ("RMSprop", dict(lr=1e-2, alpha=0.9, momentum=0.9, weight_decay=1e-2, centered=True)),
    ("Adam", dict(lr=1e-2, betas=(0.9, 0.999), weight_decay=1e-2, amsgrad=True)),
    ("AdamW", dict(lr=1e-2, betas=(0.5, 0.9), weight_decay=1e-2, amsgrad=True)),
]


# --------------------------------------------------------------------- trajectories vs torch


@pytest.mark.parametrize(("name", "kwargs"), CASES, ids=[f"{n}-{k}" for n, k in CASES])
def test_100_steps_with_param_groups_match_torch(name, kwargs):
    ours = _trajectory(getattr(optim, name), kwargs)
    ref = _trajectory(getattr(torch.optim, name), kwargs)
    _assert_same_params(ours, ref)
    assert not torch.equal(ours[0], _trajectory(getattr(optim, name), kwargs, steps=0)[0])


@pytest.mark.parametrize("name", ["SGD", "RMSprop", "Adam", "AdamW"])
def test_defaults_match_torch(name):
    ours = inspect.signature(getattr(optim, name)).parameters
    ref = inspect.signature(getattr(torch.optim, name)).parameters
    positional = [k for k, p in ref.items() if p.kind is p.POSITIONAL_OR_KEYWORD]
    assert list(ours) == positional[: len(ours)]
    # what follows in torch (RMSprop only) are the switches dlref leaves out
    assert set(positional[len(ours) :]) <= {"capturable", "foreach", "maximize", "differentiable"}
    for key in list(ours)[1:]:
        assert ours[key].default == ref[key].default, key
    _assert_same_params(
        _trajectory(getattr(optim, name), {}, groups=False),
        _trajectory(getattr(torch.optim, name), {}, groups=False),
    )


@pytest.mark.parametrize("name", ["SGD", "RMSprop", "Adam", "AdamW"])
def test_float32_matches_torch(name):
    def run(cls):
        model = _model().float()
        X, Y = (t.float() for t in _data())
        return _train(model, cls(model.parameters(), lr=1e-2), 20, X, Y)

    _assert_same_params(run(getattr(optim, name)), run(getattr(torch.optim, name)), rtol=1e-5,
                        atol=1e-6)  # fmt: skip


def test_parameters_without_gradient_are_left_alone():
    a, b = nn.Parameter(torch.ones(2, dtype=DT)), nn.Parameter(torch.ones(2, dtype=DT))
    for cls in (optim.SGD, optim.RMSprop, optim.Adam, optim.AdamW, optim.UniformAverage):
        opt = cls([a, b], lr=0.1)
        a.grad, b.grad = torch.ones(2, dtype=DT), None
        opt.step()
        assert torch.equal(b, torch.ones(2, dtype=DT)) and len(opt.state[b]) == 0


@pytest.mark.parametrize("name", ["SGD", "RMSprop", "Adam", "AdamW"])
def test_closure_is_called_and_its_loss_returned(name):
    X, Y = _data()

    def run(cls):
        model = _model()
        opt = cls(model.parameters(), lr=1e-2)

        def closure():
            opt.zero_grad()
            loss = ((model(X) - Y) ** 2).mean()
            loss.backward()
            return loss

        losses = [opt.step(closure).item() for _ in range(5)]
        return losses, list(model.parameters())

    loss_ours, p_ours = run(getattr(optim, name))
    loss_ref, p_ref = run(getattr(torch.optim, name))
    assert loss_ours == pytest.approx(loss_ref, rel=1e-12)
    _assert_same_params(p_ours, p_ref)


# --------------------------------------------------------------------------------- state dict


@pytest.mark.parametrize(("name", "kwargs"), FULL)
def test_state_dict_saved_mid_training_continues_identically(name, kwargs):
    X, Y = _data()
    cls = getattr(optim, name)
    model = _model()
    opt = cls(_groups(model, kwargs["lr"]), **kwargs)
    _train(model, opt, 40, X, Y)
    saved_model = copy.deepcopy(model.state_dict())
    saved_opt = copy.deepcopy(opt.state_dict())
    straight_on = _train(model, opt, 60, X, Y)

    model2 = _model()
    opt2 = cls(_groups(model2, kwargs["lr"]), **kwargs)
    model2.load_state_dict(saved_model)
    opt2.load_state_dict(saved_opt)
    resumed = _train(model2, opt2, 60, X, Y)
    for a, b in zip(straight_on, resumed, strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize(("name", "kwargs"), FULL)
@pytest.mark.parametrize("direction", ["torch->dlref", "dlref->torch"])
def test_state_dict_is_interchangeable_with_torch(name, kwargs, direction):
    """Same state keys as torch: a state saved by one continues in the other."""
    X, Y = _data()
    first, second = (torch.optim, optim) if direction == "torch->dlref" else (optim, torch.optim)
    model = _model()
    opt = getattr(first, name)(_groups(model, kwargs["lr"]), **kwargs)
    _train(model, opt, 40, X, Y)
    saved_model, saved_opt = copy.deepcopy(model.state_dict()), copy.deepcopy(opt.state_dict())
    straight_on = _train(model, opt, 60, X, Y)

    model2 = _model()
    opt2 = getattr(second, name)(_groups(model2, kwargs["lr"]), **kwargs)
    model2.load_state_dict(saved_model)
    opt2.load_state_dict(saved_opt)
    _assert_same_params(_train(model2, opt2, 60, X, Y), straight_on)


# ------------------------------------------------------------------------ textbook references


def _adam_textbook(theta, grads, lr, beta1, beta2, eps, wd=0.0, decoupled=False):
    """Adam/AdamW as written in Kingma & Ba / Loshchilov & Hutter: out of place, no folding."""
    m = torch.zeros_like(theta)
    v = torch.zeros_like(theta)
    for t, grad_fn in enumerate(grads, start=1):
        g = grad_fn(theta)
        if wd and decoupled:
            theta = theta - lr * wd * theta
        elif wd:
            g = g + wd * theta
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        m_hat = m / (1 - beta1**t)
        v_hat = v / (1 - beta2**t)
        theta = theta - lr * m_hat / (v_hat.sqrt() + eps)
    return theta


@pytest.mark.parametrize(("cls", "decoupled"), [(optim.Adam, False), (optim.AdamW, True)])
@pytest.mark.parametrize("eps", [1e-8, 1e-1])
def test_folded_adam_equals_textbook_adam(cls, decoupled, eps):
    torch.manual_seed(0)
    H = torch.randn(5, 5, dtype=DT)
    H = H @ H.T + torch.eye(5, dtype=DT)

    def grad_fn(theta):
        return H @ theta  # ∇ of ½ θᵀHθ

    theta0 = torch.randn(5, dtype=DT)
    ref = _adam_textbook(theta0, [grad_fn] * 100, 0.05, 0.9, 0.99, eps, wd=0.1, decoupled=decoupled)
    w = nn.Parameter(theta0.clone())
    opt = cls([w], lr=0.05, betas=(0.9, 0.99), eps=eps, weight_decay=0.1)
    for _ in range(100):
        w.grad = grad_fn(w.detach())
        opt.step()
    torch.testing.assert_close(w.detach(), ref, **TOL)


def test_adam_and_adamw_trajectories_differ_only_with_weight_decay():
    kwargs = dict(lr=1e-2)
    adamw_no_decay = _trajectory(optim.AdamW, dict(kwargs, weight_decay=0.0), groups=False)
    _assert_same_params(_trajectory(optim.Adam, kwargs, groups=False), adamw_no_decay)
    adam = _trajectory(optim.Adam, dict(kwargs, weight_decay=0.1), groups=False)
    adamw = _trajectory(optim.AdamW, dict(kwargs, weight_decay=0.1), groups=False)
    assert (adam[0] - adamw[0]).abs().max() > 1e-3


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.floats(-1e6, 1e6, allow_nan=False, allow_subnormal=False), min_size=1,
             max_size=8),
    st.floats(1e-4, 1.0),
)  # fmt: skip
def test_adam_first_step_moves_each_coordinate_by_at_most_lr(grad, lr):
    """Step 1: m̂ = g and v̂ = g², so |Δθ| = lr |g| / (|g| + ε) ≤ lr, whatever the scale of g."""
    g = torch.tensor(grad, dtype=DT)
    w = nn.Parameter(torch.zeros_like(g))
    opt = optim.Adam([w], lr=lr)
    w.grad = g
    opt.step()
    expected = -lr * g / (g.abs() + 1e-8)
    torch.testing.assert_close(w.detach(), expected, rtol=1e-12, atol=0)


def _uniform_average_loop(theta, grad_fn, lr, steps):
    seen = []
    for _ in range(steps):
        seen.append(grad_fn(theta))
        theta = theta - lr * sum(seen) / len(seen)  # θ ← θ − α · mean of all gradients so far
    return theta


def test_uniform_average_steps_along_the_mean_of_all_past_gradients():
    torch.manual_seed(0)
    A = torch.randn(4, 4, dtype=DT)
    theta0 = torch.randn(4, dtype=DT)

    def grad_fn(theta):
        return A.T @ (A @ theta - 1.0)

    w = nn.Parameter(theta0.clone())
    opt = optim.UniformAverage([w], lr=0.05)
    for _ in range(50):
        w.grad = grad_fn(w.detach())
        opt.step()
    torch.testing.assert_close(w.detach(), _uniform_average_loop(theta0, grad_fn, 0.05, 50), **TOL)


def test_uniform_average_is_momentum_one_with_step_lr_over_n():
    """torch.optim.SGD with momentum=1 sums the gradients; a step lr/n makes that the mean."""
    model_ours, model_ref = _model(), _model()
    X, Y = _data()
    ours = optim.UniformAverage(model_ours.parameters(), lr=0.1)
    ref = torch.optim.SGD(model_ref.parameters(), lr=0.1, momentum=1.0)
    for n in range(1, 101):
        ref.param_groups[0]["lr"] = 0.1 / n
        for model, opt in ((model_ours, ours), (model_ref, ref)):
            opt.zero_grad()
            ((model(X) - Y) ** 2).mean().backward()
            opt.step()
    _assert_same_params(list(model_ours.parameters()), list(model_ref.parameters()))


# ---------------------------------------------------------------------------------- schedule


@pytest.mark.parametrize("min_factor", [0.0, 0.1])
def test_warmup_cosine_without_warmup_equals_cosine_annealing(min_factor):
    T = 50

    def lrs(make_scheduler):
        opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.3)
        scheduler = make_scheduler(opt)
        out = []
        for _ in range(T + 1):
            out.append(opt.param_groups[0]["lr"])
            opt.step()
            scheduler.step()
        return out

    ours = lrs(
        lambda o: torch.optim.lr_scheduler.LambdaLR(o, optim.warmup_cosine(0, T, min_factor))
    )
    ref = lrs(
        lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=T, eta_min=0.3 * min_factor)
    )
    assert ours == pytest.approx(ref, rel=1e-12, abs=1e-12)


def test_warmup_cosine_warms_up_linearly_then_decays():
    f = optim.warmup_cosine(10, 110, min_factor=0.1)
    assert [f(t) for t in range(11)] == pytest.approx([t / 10 for t in range(11)])
    assert f(60) == pytest.approx(0.1 + 0.9 * 0.5)  # half-way through the cosine phase
    assert f(110) == pytest.approx(0.1) and f(500) == pytest.approx(0.1)
    decay = [f(t) for t in range(10, 111)]
    assert all(a >= b for a, b in itertools.pairwise(decay))
    assert math.isclose(f(10), 1.0)


@pytest.mark.parametrize(
    ("args", "error", "message"),
    [
        ((-1, 10), ValueError, "warmup_steps must be at least 0, got -1"),
        ((0, 2.5), TypeError, "total_steps must be an int, got float 2.5"),
        ((True, 10), TypeError, "warmup_steps must be an int, got bool True"),
        ((10, 10), ValueError, "total_steps=10 must exceed warmup_steps=10"),
        ((0, 10, 1.5), ValueError, r"min_factor must lie in \[0, 1\], got 1.5"),
        ((0, 10, "0"), TypeError, "min_factor must be a real number, got str"),
    ],
)
def test_warmup_cosine_errors(args, error, message):
    with pytest.raises(error, match=message):
        optim.warmup_cosine(*args)


# ------------------------------------------------------------------------------------- errors


def _param():
    return [nn.Parameter(torch.zeros(2))]


BAD = [
    ("SGD", dict(lr=-0.1)),
    ("SGD", dict(momentum=-0.5)),
    ("SGD", dict(weight_decay=-1.0)),
    ("SGD", dict(nesterov=True)),
    ("SGD", dict(momentum=0.9, dampening=0.1, nesterov=True)),
    ("RMSprop", dict(lr=-0.1)),
    ("RMSprop", dict(eps=-1e-8)),
    ("RMSprop", dict(momentum=-0.5)),
    ("RMSprop", dict(weight_decay=-1.0)),
    ("RMSprop", dict(alpha=-0.5)),
    ("Adam", dict(lr=-0.1)),
    ("Adam", dict(eps=-1e-8)),
    ("Adam", dict(betas=(1.0, 0.999))),
    ("Adam", dict(betas=(-0.1, 0.999))),
    ("Adam", dict(betas=(0.9, 1.0))),
    ("Adam", dict(weight_decay=-1.0)),
    ("AdamW", dict(lr=-0.1)),
    ("AdamW", dict(eps=-1e-8)),
    ("AdamW", dict(betas=(0.9, 1.5))),
    ("AdamW", dict(weight_decay=-1.0)),
]


@pytest.mark.parametrize(("name", "kwargs"), BAD, ids=[f"{n}-{k}" for n, k in BAD])
def test_bad_hyperparameters_raise_torchs_value_error_naming_the_argument(name, kwargs):
    with pytest.raises(ValueError) as ref:
        getattr(torch.optim, name)(_param(), **kwargs)
    with pytest.raises(ValueError) as ours:
        getattr(optim, name)(_param(), **kwargs)
    assert str(ours.value).startswith(str(ref.value))  # torch's words, then ours
    if "nesterov" not in kwargs:
        arg = next(iter(kwargs))
        if arg == "betas":  # the message names the offending index
            arg = f"betas[{[not 0 <= b < 1 for b in kwargs[arg]].index(True)}]"
        assert f"({arg} must" in str(ours.value)


def test_uniform_average_rejects_negative_lr():
    with pytest.raises(ValueError, match=r"Invalid learning rate: -1 \(lr must be >= 0\)"):
        optim.UniformAverage(_param(), lr=-1)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (dict(lr="0.1"), TypeError, "lr must be a real number, got str"),
        (dict(lr=float("nan")), ValueError, r"Invalid learning rate: nan \(lr must be >= 0\)"),
        (dict(betas=0.9), TypeError, r"betas must be a pair \(beta1, beta2\), got 0.9"),
        (dict(betas=(0.9, None)), TypeError, r"betas\[1\] must be a real number, got NoneType"),
        (dict(betas=()), TypeError, r"betas must be a pair \(beta1, beta2\), got \(\)"),
        (dict(lr="a string"), TypeError, "lr must be a real number, got str"),
    ],
)
def test_bad_types_raise_type_errors(kwargs, error, message):
    with pytest.raises(error, match=message):
        optim.Adam(_param(), **kwargs)


@pytest.mark.parametrize("name", ["SGD", "RMSprop", "Adam", "AdamW", "UniformAverage"])
@pytest.mark.parametrize(
    ("params", "error", "message"),
    [
        ((), ValueError, r"^optimizer got an empty parameter list \(params must be an iterable"),
        (object(), TypeError, r"\(params must be an iterable .*, got object"),
    ],
)
def test_bad_params_keep_torchs_message_and_name_params(name, params, error, message):
    with pytest.raises(error):
        getattr(torch.optim, name if name != "UniformAverage" else "SGD")(params, lr=0.1)
    with pytest.raises(error, match=message):
        getattr(optim, name)(params, lr=0.1)


@pytest.mark.parametrize("name", ["SGD", "RMSprop", "Adam", "AdamW", "UniformAverage"])
def test_sparse_gradients_raise_a_clear_error(name):
    emb = nn.Embedding(10, 3, sparse=True)
    opt = getattr(optim, name)(emb.parameters(), lr=0.1)
    emb(torch.tensor([1, 2])).sum().backward()
    assert emb.weight.grad.is_sparse
    with pytest.raises(RuntimeError, match=f"{name} does not support sparse gradients"):
        opt.step()


def test_complex_parameters_raise_a_clear_error():
    w = nn.Parameter(torch.zeros(2, dtype=torch.complex128))
    w.grad = torch.ones_like(w)
    with pytest.raises(TypeError, match="Adam does not support complex parameters"):
        optim.Adam([w]).step()


@pytest.mark.parametrize(("name", "kwargs"), FULL)
def test_mixed_dtypes_and_shapes_share_the_scratch_buffer_safely(name, kwargs):
    """One optimizer over float32 and float64 tensors of different sizes, as torch does it."""

    def run(cls):
        torch.manual_seed(0)
        params = [
            nn.Parameter(torch.randn(shape, dtype=dtype))
            for shape, dtype in [((7, 3), DT), ((2,), torch.float32), ((50,), DT), ((4, 4), DT)]
        ]
        opt = cls(params, **kwargs)
        for step in range(20):
            for i, p in enumerate(params):
                p.grad = torch.sin(p.detach() * (i + 1) + step)
            opt.step()
        return [p.detach().double() for p in params]

    _assert_same_params(run(getattr(optim, name)), run(getattr(torch.optim, name)), rtol=1e-6,
                        atol=1e-7)  # fmt: skip


@pytest.mark.parametrize(("name", "kwargs"), FULL)
def test_state_keys_are_torchs(name, kwargs):
    def keys(cls):
        model = _model()
        opt = cls(model.parameters(), **kwargs)
        _train(model, opt, 2, *_data())
        sd = opt.state_dict()
        return {k: sorted(v) for k, v in sd["state"].items()}, sorted(sd["param_groups"][0])

    (ours_state, ours_group), (ref_state, ref_group) = (
        keys(getattr(optim, name)),
        keys(getattr(torch.optim, name)),
    )
    assert ours_state == ref_state
    assert set(ours_group) <= set(ref_group)
