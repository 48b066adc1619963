"""dlref.conditioning against closed forms, torch.optim.SGD and plain loops."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dlref import conditioning as C

KAPPAS = [10.0, 100.0, 1000.0, 10000.0]


def _rotated(eigenvalues, seed=0):
    Q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((len(eigenvalues),) * 2))
    return Q @ np.diag(eigenvalues) @ Q.T


# ---------------------------------------------------------------------------- condition number


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(1e-3, 1e3), min_size=2, max_size=6), st.floats(0.0, 1e3))
def test_l2_regularisation_gives_L_plus_lambda_over_mu_plus_lambda(eigenvalues, lam):
    """Adding λ‖w‖²/2 adds λ to every eigenvalue: κ → (L + λ)/(μ + λ) ≤ κ."""
    H = _rotated(eigenvalues)
    L, mu = max(eigenvalues), min(eigenvalues)
    assert C.condition_number(H) == pytest.approx(L / mu, rel=1e-8)
    kappa_l2 = C.condition_number(H + lam * np.eye(len(eigenvalues)))
    assert kappa_l2 == pytest.approx((L + lam) / (mu + lam), rel=1e-8)
    assert kappa_l2 <= L / mu * (1 + 1e-8)


def test_scaled_identity_losses_have_condition_number_one():
    """ℓ(w) = 2‖w‖² has Hessian 4I and 5‖w‖² has 10I (autograd): both κ = 1."""
    for c, diag in ((2.0, 4.0), (5.0, 10.0)):
        H = torch.autograd.functional.hessian(
            lambda w, c=c: c * (w**2).sum(), torch.ones(3).double()
        )
        torch.testing.assert_close(H, diag * torch.eye(3, dtype=torch.float64))
        assert C.condition_number(H) == 1.0


def test_spectrum_runs_from_one_over_kappa_to_one():
    lam = C.spectrum(100.0, d=5)
    np.testing.assert_allclose(lam, [0.01, 0.2575, 0.505, 0.7525, 1.0])
    assert C.condition_number(lam) == pytest.approx(100.0)


# ---------------------------------------------------------------------- methods vs references


def test_gd_iterates_equal_the_closed_form():
    lam = C.spectrum(50.0, d=6)
    alpha = 2 / (1 + 1 / 50)
    w = C.run_quadratic("gd", lam, steps=30)
    t = np.arange(31)[:, None]
    np.testing.assert_allclose(w, (1 - alpha * lam) ** t / math.sqrt(6), rtol=1e-12, atol=1e-15)


def _torch_sgd_path(H, lr, momentum, nesterov, steps, w0):
    w = torch.nn.Parameter(torch.tensor(w0))
    opt = torch.optim.SGD([w], lr=lr, momentum=momentum, nesterov=nesterov)
    Ht = torch.tensor(H)
    path = [w.detach().clone().numpy()]
    for _ in range(steps):
        w.grad = Ht @ w.detach()
        opt.step()
        path.append(w.detach().clone().numpy())
    return np.array(path)


def test_heavy_ball_equals_torch_sgd_with_momentum():
    H = _rotated(C.spectrum(100.0, d=4))
    hyper = C.optimal_hyperparameters("heavy_ball", 1.0, 0.01)
    ours = C.run_quadratic("heavy_ball", H, steps=60)
    ref = _torch_sgd_path(H, hyper["lr"], hyper["beta"], False, 60, ours[0])
    np.testing.assert_allclose(ours, ref, rtol=1e-10, atol=1e-12)


def test_nesterov_look_ahead_points_equal_torch_sgd_nesterov():
    """torch's Nesterov iterates are the look-ahead points y_t = w_t + β (w_t − w_{t−1})."""
    H = _rotated(C.spectrum(100.0, d=4))
    hyper = C.optimal_hyperparameters("nesterov", 1.0, 0.01)
    w = C.run_quadratic("nesterov", H, steps=60)
    w_prev = np.vstack([w[:1], w[:-1]])
    y = w + hyper["beta"] * (w - w_prev)
    ref = _torch_sgd_path(H, hyper["lr"], hyper["beta"], True, 60, w[0])
    np.testing.assert_allclose(y, ref, rtol=1e-10, atol=1e-12)


def test_uniform_average_is_a_plain_mean_of_past_gradients():
    H = _rotated(C.spectrum(10.0, d=3))
    ours = C.run_quadratic("uniform_average", H, steps=40)
    w, grads, ref = ours[0].copy(), [], [ours[0].copy()]
    for _ in range(40):
        grads.append(H @ w)
        w = w - 1.0 * np.mean(grads, axis=0)  # α = 1/L = 1
        ref.append(w.copy())
    np.testing.assert_allclose(ours, np.array(ref), rtol=1e-10, atol=1e-12)


def test_rotation_does_not_change_iteration_counts():
    lam = C.spectrum(100.0, d=5)
    w0 = np.full(5, 1 / math.sqrt(5))
    for seed in range(3):
        Q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((5, 5)))
        for method in ("gd", "heavy_ball", "nesterov"):
            assert C.iterations_to_tolerance(method, Q @ np.diag(lam) @ Q.T, w0=Q @ w0) == (
                C.iterations_to_tolerance(method, lam, w0=w0)
            )


@pytest.mark.parametrize("kappa", KAPPAS)
def test_gd_iterations_to_tolerance_equal_the_closed_form(kappa):
    lam = C.spectrum(kappa)
    alpha = 2 / (1 + 1 / kappa)
    t = np.arange(1, 200_000)
    err2 = ((1 - alpha * lam[None, :]) ** (2 * t[:, None])).sum(1) / len(lam)
    assert C.iterations_to_tolerance("gd", lam) == t[np.argmax(err2 <= 1e-12)]


# --------------------------------------------------------------------------- rates and slopes


def test_gd_contracts_by_kappa_minus_one_over_kappa_plus_one_each_step():
    for kappa in (10.0, 100.0):
        err = np.linalg.norm(C.run_quadratic("gd", np.array([1 / kappa, 1.0]), 20), axis=1)
        np.testing.assert_allclose(err[1:] / err[:-1], C.contraction_factor("gd", kappa))


@pytest.mark.parametrize("method", ["heavy_ball", "nesterov"])
def test_momentum_methods_converge_at_their_theoretical_rate(method):
    kappa = 100.0
    err = np.linalg.norm(C.run_quadratic(method, C.spectrum(kappa), 400), axis=1)
    t = np.arange(200, 401)
    rate = math.exp(np.polyfit(t, np.log(err[200:]), 1)[0])
    assert rate == pytest.approx(C.contraction_factor(method, kappa), abs=0.01)


def test_iterations_grow_like_kappa_for_gd_and_like_root_kappa_with_momentum():
    slopes = {
        m: C.loglog_slope(KAPPAS, [C.iterations_to_tolerance(m, C.spectrum(k)) for k in KAPPAS])
        for m in ("gd", "heavy_ball", "nesterov")
    }
    assert slopes["gd"] == pytest.approx(1.0, abs=0.03)
    assert slopes["heavy_ball"] == pytest.approx(0.5, abs=0.07)
    assert slopes["nesterov"] == pytest.approx(0.5, abs=0.07)


def test_uniform_average_converges_sublinearly():
    """The error falls like n^(-1/4): no fixed factor per step, unlike heavy ball."""
    err = np.linalg.norm(C.run_quadratic("uniform_average", C.spectrum(10.0), 20_000), axis=1)
    n = np.array([10, 100, 1000, 10_000, 20_000])
    assert C.loglog_slope(n, err[n]) == pytest.approx(-0.25, abs=0.05)
    assert (
        C.iterations_to_tolerance("uniform_average", C.spectrum(10.0), 1e-2, max_iter=20_000)
        is None
    )
    assert C.iterations_to_tolerance("heavy_ball", C.spectrum(10.0), 1e-6) < 40


def test_loglog_slope_recovers_a_power_law():
    x = np.array([1.0, 3.0, 10.0, 30.0])
    assert C.loglog_slope(x, 7 * x**-0.5) == pytest.approx(-0.5)


def test_minibatch_variance_falls_like_one_over_batch_size():
    g = torch.randn(500, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    sigma2 = ((g - g.mean(0)) ** 2).sum(1).mean().item()  # per-example variance
    gen = torch.Generator().manual_seed(1)
    for B in (1, 4, 16, 64):
        measured = C.minibatch_gradient_variance(g, B, num_draws=4000, generator=gen)
        assert measured == pytest.approx(sigma2 / B, rel=0.1)


# ------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: C.condition_number(np.array([[1.0, 2.0], [0.0, 1.0]])), ValueError, "symmetric"),
        (
            lambda: C.condition_number(np.diag([1.0, -1.0])),
            ValueError,
            "H must be positive definite, but its smallest eigenvalue is -1.0",
        ),
        (lambda: C.condition_number(np.ones((2, 3))), ValueError, r"shape \(d, d\) or \(d,\)"),
        (lambda: C.spectrum(0.5), ValueError, r"kappa must lie in \[1, 1.79769e\+308\], got 0.5"),
        (lambda: C.spectrum(10.0, d=1), ValueError, "d must be at least 2"),
        (lambda: C.run_quadratic("adam", [1.0, 2.0], 3), ValueError, "method must be one of"),
        (
            lambda: C.run_quadratic("gd", [1.0, 2.0], 3, w0=[1.0, 2.0, 3.0]),
            ValueError,
            r"H has shape \(2,\) but w0 has shape \(3,\): need \(2,\)",
        ),
        (lambda: C.iterations_to_tolerance("gd", [1.0], eps=2.0), ValueError, r"eps must lie"),
        (lambda: C.optimal_hyperparameters("gd", 1.0, 2.0), ValueError, "need L >= mu > 0"),
        (lambda: C.contraction_factor("uniform_average", 10.0), ValueError, "method must be"),
        (lambda: C.loglog_slope([1, 2], [1, -2]), ValueError, "must be positive"),
        (lambda: C.loglog_slope([1, 2], [1, 2, 3]), ValueError, "the same shape"),
        (
            lambda: C.minibatch_gradient_variance(torch.ones(3), 2),
            ValueError,
            r"per_example_grads must have shape \(N, P\) = \(any, any\), got \(3,\)",
        ),
        (
            lambda: C.minibatch_gradient_variance(torch.ones(3, 2), 0),
            ValueError,
            "batch_size must be at least 1, got 0",
        ),
        (lambda: C.iterations_to_tolerance("sgd", [1.0, 2.0]), ValueError, "method must be one"),
        (lambda: C.condition_number("a string"), TypeError, "H must be an array of real numbers"),
        (lambda: C.condition_number(object()), TypeError, "H must be an array of real numbers"),
        (lambda: C.condition_number([1.0, math.inf]), ValueError, "H must be finite"),
        (
            lambda: C.condition_number(torch.ones(2, dtype=torch.complex64)),
            TypeError,
            "H must be real",
        ),
        (lambda: C.spectrum("0.1"), TypeError, "kappa must be a real number"),
        (
            lambda: C.spectrum(math.inf),
            ValueError,
            r"kappa must lie in \[1, 1.79769e\+308\], got inf",
        ),
        (lambda: C.spectrum(4.0, d=2.5), TypeError, "d must be an int, got float 2.5"),
        (lambda: C.optimal_hyperparameters("gd", "1", 0.5), TypeError, "L must be a real number"),
        (lambda: C.optimal_hyperparameters("gd", 1.0, "a"), TypeError, "mu must be a real number"),
        (
            lambda: C.contraction_factor(3, 10.0),
            ValueError,
            r"method must be one of \('gd', 'heavy_ball', 'nesterov'\), got 3",
        ),
        (lambda: C.run_quadratic("gd", [1.0, 2.0], 2.5), TypeError, "steps must be an int"),
        (
            lambda: C.run_quadratic("gd", [1.0, 2.0], -1),
            ValueError,
            "steps must be at least 0, got -1",
        ),
        (lambda: C.run_quadratic("gd", [1.0], 2, w0="x"), TypeError, "w0 must be an array"),
        (
            lambda: C.iterations_to_tolerance("gd", [1.0], eps="0.1"),
            TypeError,
            "eps must be a real",
        ),
        (
            lambda: C.iterations_to_tolerance("gd", [1.0], max_iter=2.5),
            TypeError,
            "max_iter must be",
        ),
        (lambda: C.loglog_slope("x", [1, 2]), TypeError, "x must be an array of real numbers"),
        (
            lambda: C.minibatch_gradient_variance(torch.ones(3, 2, dtype=torch.int64), 2),
            TypeError,
            "per_example_grads must be a floating-point tensor",
        ),
        (
            lambda: C.minibatch_gradient_variance(torch.ones(0, 2), 2),
            ValueError,
            "per_example_grads has no examples",
        ),
        (
            lambda: C.minibatch_gradient_variance(torch.ones(3, 2), 2.5),
            TypeError,
            "batch_size must be an int, got float 2.5",
        ),
        (
            lambda: C.minibatch_gradient_variance(torch.ones(3, 2), 2, num_draws=0),
            ValueError,
            "num_draws must be at least 1, got 0",
        ),
        (
            lambda: C.minibatch_gradient_variance(torch.ones(3, 2), 2, generator=-1),
            TypeError,
            "generator must be a torch.Generator or None",
        ),
    ],
)
def test_errors_name_the_argument(call, error, message):
    with pytest.raises(error, match=message):
        call()
