"""The exact loss eq. (6) against Monte Carlo, its gradient against Taylor's theorem,
and its two pair algorithms (Mehler series, Genz's Φ2) against each other."""
from unittest import mock

import numpy as np
import pytest
from hypothesis import assume, given, strategies as st
from scipy import stats

from numerics import objective
from numerics.diagnostics import taylor_remainder_slope
from numerics.objective import (DETERMINISTIC_Z, expected_loss, expected_loss_and_grad, monte_carlo_loss,
                                monte_carlo_loss_and_grad)


@st.composite
def instances(draw, allow_zero_sigma=True):
    """Small (W1, W2, X, σ, λ) with zero, duplicated, parallel and anti-parallel columns."""
    d = draw(st.integers(1, 4))
    p = draw(st.integers(1, 4))
    n = draw(st.integers(1, 4))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    X = rng.normal(size=(d, n)) * draw(st.sampled_from([0.3, 1.0, 3.0]))
    W1 = rng.normal(size=(d, p))
    for j in range(1, p):
        special = draw(st.sampled_from(["none", "zero", "duplicate", "parallel", "anti"]))
        if special == "zero":
            W1[:, j] = 0.0
        elif special == "duplicate":
            W1[:, j] = W1[:, 0]
        elif special == "parallel":
            W1[:, j] = 2.5 * W1[:, 0]
        elif special == "anti":
            W1[:, j] = -0.7 * W1[:, 0]
    W2 = W1.copy() if draw(st.booleans()) else rng.normal(size=(d, p))
    sigma = 0.0 if allow_zero_sigma and draw(st.booleans()) and draw(st.booleans()) else \
        draw(st.floats(0.01, 5.0))
    lam = draw(st.sampled_from([0.0, 0.1]))
    return W1, W2, X, sigma, lam


N_DRAWS = 4000


def _monte_carlo_sees_every_switch(W1, X, sigma):
    """True when every ReLU is deterministic (|z| > 8.5, switching probability < 1e-17) or
    switches in >= 10 of N_DRAWS draws on average (|z| <= 2.88).

    In between, a ReLU switches so rarely that the sample standard error misses its
    contribution (e.g. z = −6: probability 1e-9, never seen in 4000 draws, yet it moves the
    loss by ~1e-11), so a 4-standard-error test would be invalid there. That regime is
    covered by the Mehler/Genz oracle test and by the quadrature tests of the moments.
    """
    scales = sigma * np.linalg.norm(W1, axis=0)
    noisy = scales > 0
    z = np.abs(W1[:, noisy].T @ X) / scales[noisy, None]
    z_observable = -stats.norm.ppf(10.0 / N_DRAWS)
    return bool(np.all((z <= z_observable) | (z > DETERMINISTIC_Z)))


@given(instances(), st.integers(0, 2**32 - 1))
def test_exact_loss_matches_monte_carlo_within_four_standard_errors(instance, seed):
    W1, W2, X, sigma, lam = instance
    assume(_monte_carlo_sees_every_switch(W1, X, sigma))
    exact = expected_loss(W1, W2, X, sigma, lam)
    estimate, standard_error = monte_carlo_loss(W1, W2, X, sigma, lam, n_draws=N_DRAWS, rng=seed)
    if sigma == 0.0:  # no noise: the estimator is exact, up to summation order
        assert exact == pytest.approx(estimate, rel=1e-12, abs=1e-12)
    else:
        assert abs(exact - estimate) <= 4.0 * standard_error + 1e-12 * abs(exact)


@given(instances(allow_zero_sigma=False))
def test_mehler_series_and_genz_bivariate_cdf_agree(instance):
    """Two independent pair algorithms; agreement to rounding (1e-12 relative). The size
    threshold is lifted so that every weakly correlated pair goes through the series."""
    W1, W2, X, sigma, lam = instance
    with mock.patch.object(objective, "MEHLER_MIN_PAIR_SAMPLES", 0):
        auto = expected_loss_and_grad(W1, W2, X, sigma, lam)
    genz = expected_loss_and_grad(W1, W2, X, sigma, lam, pair_method="bivariate")
    scale = max(abs(genz[0]), 1e-300)
    assert auto[0] == pytest.approx(genz[0], rel=1e-12, abs=1e-12 * scale)
    for a, b in zip(auto[1:], genz[1:]):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-11 * (np.abs(b).max() + 1.0))


def test_mehler_path_is_used_on_weakly_correlated_columns():
    """At d = 200 random columns have |ρ| ≈ 0.07 and 66 pairs × 400 samples exceed the size
    where the series pays: every pair goes through it, and it agrees with Genz's Φ2."""
    rng = np.random.default_rng(3)
    X = rng.uniform(-1, 1, size=(200, 400))
    assert 66 * 400 >= objective.MEHLER_MIN_PAIR_SAMPLES
    W1, W2 = rng.normal(size=(200, 12)) / 14, rng.normal(size=(200, 12)) / 14
    cosines = (W1.T @ W1) / np.outer(np.linalg.norm(W1, axis=0), np.linalg.norm(W1, axis=0))
    assert np.max(np.abs(cosines - np.eye(12))) < 0.3
    auto = expected_loss_and_grad(W1, W2, X, 0.2, 0.01)
    genz = expected_loss_and_grad(W1, W2, X, 0.2, 0.01, pair_method="bivariate")
    # Both are accurate to ~1e-15 per pair term (Mehler tail bound 1e-17, Genz ~1e-15 absolute);
    # summed over 66 pairs × 400 samples the relative difference stays below 1e-13.
    assert auto[0] == pytest.approx(genz[0], rel=1e-13)
    for a, b in zip(auto[1:], genz[1:]):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12 * np.abs(b).max())


def _slope_test(W1, W2, X, sigma, lam, seed, tied=False):
    rng = np.random.default_rng(seed)
    if tied:
        point = W1
        def f(W):
            return expected_loss(W, W, X, sigma, lam)
        _, g1, g2 = expected_loss_and_grad(W1, W1, X, sigma, lam)
        gradient = g1 + g2
    else:
        point = np.stack([W1, W2])
        def f(W):
            return expected_loss(W[0], W[1], X, sigma, lam)
        _, g1, g2 = expected_loss_and_grad(W1, W2, X, sigma, lam)
        gradient = np.stack([g1, g2])
    return taylor_remainder_slope(f, point, gradient, rng.normal(size=point.shape))


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("sigma", [0.05, 0.5, 3.0])
def test_gradient_passes_taylor_remainder_slope_test(seed, sigma):
    rng = np.random.default_rng(seed)
    d, p, n = 5, 4, 6
    X, W1, W2 = rng.normal(size=(d, n)), rng.normal(size=(d, p)), rng.normal(size=(d, p))
    result = _slope_test(W1, W2, X, sigma, 0.05, seed, tied=seed % 2 == 0)
    # slope 2 for a right gradient, 1 for a wrong one (numerics.diagnostics); the fit over three
    # decades is bent by the O(t³) term by well under 0.1 at these steps
    assert result.slope == pytest.approx(2.0, abs=0.1), result


@pytest.mark.parametrize("seed", range(4))
def test_gradient_slope_near_relu_boundaries(seed):
    """Columns orthogonal to some samples put pre-activation means exactly at the kink
    (z = 0) and others at |z| ≈ 8.5, the on/off switch of the fast path."""
    rng = np.random.default_rng(seed)
    d, p, n, sigma = 4, 3, 5, 0.1
    X, W1, W2 = rng.normal(size=(d, n)), rng.normal(size=(d, p)), rng.normal(size=(d, p))
    W1[:, 0] -= X[:, 0] * (X[:, 0] @ W1[:, 0]) / (X[:, 0] @ X[:, 0])  # m_00 = 0
    unit = X[:, 1] / np.linalg.norm(X[:, 1])
    other = W1[:, 1] - unit * (unit @ W1[:, 1])
    cosine = 8.5 * sigma / np.linalg.norm(X[:, 1])  # z = ‖x‖ cos∠(w, x) / σ = 8.5
    W1[:, 1] = other + unit * cosine * np.linalg.norm(other) / np.sqrt(1 - cosine**2)
    means = W1.T @ X / (sigma * np.linalg.norm(W1, axis=0)[:, None])
    assert abs(means[0, 0]) < 1e-12 and means[1, 1] == pytest.approx(8.5)
    result = _slope_test(W1, W2, X, sigma, 0.0, seed)
    assert result.slope == pytest.approx(2.0, abs=0.1), result


def test_gradient_at_zero_noise_matches_the_noiseless_network():
    """σ = 0 away from kinks: the loss is the plain network loss, so its gradient is the
    chain rule through ReLU (an independent, explicit formula)."""
    rng = np.random.default_rng(7)
    X, W1, W2 = rng.normal(size=(5, 8)), rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    loss, g1, g2 = expected_loss_and_grad(W1, W2, X, 0.0, 0.0)
    pre = W1.T @ X
    residual = W2 @ np.maximum(pre, 0) - X
    # σ = 0: the exact objective reduces to this formula; only summation order differs (rounding)
    assert loss == pytest.approx(np.sum(residual**2) / 8, rel=1e-13)
    np.testing.assert_allclose(g2, 2 * residual @ np.maximum(pre, 0).T / 8, rtol=1e-12)
    np.testing.assert_allclose(g1, 2 * X @ ((W2.T @ residual) * (pre > 0)).T / 8, rtol=1e-12)


def test_monte_carlo_gradient_is_unbiased():
    """The one-draw estimator's gradient averages to the exact gradient (4 standard errors)."""
    rng = np.random.default_rng(11)
    X, W1, W2 = rng.normal(size=(3, 4)), rng.normal(size=(3, 2)), rng.normal(size=(3, 2))
    draws = np.array([np.concatenate([g.ravel() for g in
                                      monte_carlo_loss_and_grad(W1, W2, X, 0.7, 0.1, rng=s)[1:]])
                      for s in range(4000)])
    _, g1, g2 = expected_loss_and_grad(W1, W2, X, 0.7, 0.1)
    exact = np.concatenate([g1.ravel(), g2.ravel()])
    standard_error = draws.std(axis=0, ddof=1) / np.sqrt(len(draws))
    assert np.all(np.abs(draws.mean(axis=0) - exact) <= 4 * standard_error)


def test_zero_loss_at_perfect_reconstruction_without_noise():
    X = np.abs(np.random.default_rng(0).normal(size=(3, 4)))  # positive data, identity works
    # The loss is evaluated as tr(G M) − 2 bᵀμ + ‖x‖², which cancels to rounding of ‖X‖².
    assert expected_loss(np.eye(3), np.eye(3), X, 0.0) <= 1e-14 * np.sum(X**2)


@pytest.mark.parametrize("call, match", [
    (lambda W, X: expected_loss(W, W, X, -0.1), "sigma"),
    (lambda W, X: expected_loss(W, W, X, 0.1, lam=-1.0), "lam"),
    (lambda W, X: expected_loss(W, W, X, np.nan), "sigma"),
    (lambda W, X: expected_loss(W[:2], W[:2], X, 0.1), "W1"),
    (lambda W, X: expected_loss(W, W[:, :1], X, 0.1), "W2"),
    (lambda W, X: expected_loss(W, W, X.T, 0.1), "W1"),
    (lambda W, X: expected_loss(W, W, np.where(X > 0, np.inf, X), 0.1), "X"),
    (lambda W, X: expected_loss(np.full_like(W, np.nan), W, X, 0.1), "W1"),
    (lambda W, X: expected_loss(W[:, :0], W[:, :0], X, 0.1), "W1"),
    (lambda W, X: expected_loss(W, W, X, 0.1, pair_method="bogus"), "pair_method"),
    (lambda W, X: monte_carlo_loss(W, W, X, 0.1, n_draws=0), "n_draws"),
    (lambda W, X: monte_carlo_loss_and_grad(W, W, X, -1.0), "sigma"),
])
def test_bad_input_raises_value_error_naming_the_argument(call, match):
    rng = np.random.default_rng(0)
    W, X = rng.normal(size=(3, 2)), rng.normal(size=(3, 5))
    with pytest.raises(ValueError, match=match):
        call(W, X)


# ----------------------------------------------------------------------------- the first compilation


class _FakeKernel:
    """What `_announce_first_compilation` reads of a numba dispatcher: compiled signatures, the cache index."""

    def __init__(self, signatures, index_path):
        self.signatures = signatures
        self._cache = type("Cache", (), {"_cache_file": type("File", (), {"_index_path": str(index_path)})()})()


@pytest.mark.parametrize("signatures,index_exists,announced", [([], False, True), ([], True, False),
                                                                (["(float64,)"], False, False)])
def test_first_compilation_is_announced_once(monkeypatch, capsys, tmp_path, signatures, index_exists, announced):
    from numerics import objective

    index = tmp_path / "kernel.nbi"
    if index_exists:
        index.write_bytes(b"")
    monkeypatch.setattr(objective, "neuron_moments", _FakeKernel(signatures, index))
    monkeypatch.setattr(objective, "_ANNOUNCED", False)
    objective._announce_first_compilation()
    objective._announce_first_compilation()
    err = capsys.readouterr().err
    assert err.count("compiling the exact objective") == (1 if announced else 0)
    if announced:
        assert err.count("\n") == 1                     # one line


@pytest.mark.slow
def test_a_fresh_numba_cache_prints_one_line_then_none(tmp_path):
    """Two fresh interpreters on an empty NUMBA_CACHE_DIR: the first compiles (and says so), the second loads."""
    import os
    import subprocess
    import sys

    script = ("import numpy as np; from numerics.objective import expected_loss; "
              "print(expected_loss(np.eye(2), np.eye(2), np.ones((2, 3)), 0.3))")
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba"))
    runs = [subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=600,
                           cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
            for _ in range(2)]
    assert all(run.returncode == 0 for run in runs), [run.stderr for run in runs]
    assert runs[0].stdout == runs[1].stdout
    assert runs[0].stderr.count("compiling the exact objective") == 1
    assert "compiling" not in runs[1].stderr
