"""The multi-noise DAE and its exact loss: Monte Carlo, Taylor slopes, quadrature, single-σ consistency."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given, strategies as st
from scipy import integrate, stats

from numerics.diagnostics import taylor_remainder_slope
from numerics.multinoise import MultiNoiseDAE
from numerics.multinoise_objective import (adaptive_rule, decay_from_weight_decay, multinoise_loss,
                                           multinoise_loss_and_grad, multinoise_monte_carlo_loss,
                                           noise_level_terms, quadrature_rule, weight_decay_from_decay)
from numerics.objective import expected_loss, expected_loss_and_grad


def random_model(rng, d, p, *, zero_columns=(), skip=0.4, gain_scale=0.5):
    """A model with every parameter random (gains within about e^{±2}), some W columns zero."""
    W = rng.normal(size=(d, p)) / np.sqrt(d)
    W[:, list(zero_columns)] = 0.0
    return MultiNoiseDAE(W=W, s=skip, A1=rng.normal(size=p), b1=rng.normal(size=p),
                         A2=gain_scale * rng.normal(size=(p, p)) / np.sqrt(p), b2=0.3 * rng.normal(size=p))


@st.composite
def instances(draw):
    """(model, X, σ_min, σ_max, λ) with d, p, n ≤ 4, zero W columns, s ≠ 0 most of the time."""
    d, p, n = draw(st.integers(1, 4)), draw(st.integers(1, 4)), draw(st.integers(1, 4))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    zero = [j for j in range(p) if j > 0 and draw(st.booleans())]
    skip = draw(st.sampled_from([0.0, 0.3, -0.7, 1.1]))
    model = random_model(rng, d, p, zero_columns=zero, skip=skip)
    X = rng.normal(size=(d, n)) * draw(st.sampled_from([0.3, 1.0, 2.0]))
    sigma_min = draw(st.floats(0.02, 0.5))
    sigma_max = sigma_min * draw(st.floats(1.5, 100.0))
    return model, X, sigma_min, sigma_max, draw(st.sampled_from([0.0, 0.1]))


# ----------------------------------------------------------------------------- the model


def test_model_matches_its_formula_and_exposes_the_single_sigma_network():
    rng = np.random.default_rng(0)
    model = random_model(rng, 5, 3)
    Y = rng.normal(size=(5, 4))
    sigma = 0.37
    g = np.exp(model.A2 @ np.maximum(model.A1 * np.log(sigma) + model.b1, 0.0) + model.b2)
    direct = model.W @ (g[:, None] * np.maximum(model.W.T @ Y, 0.0)) + model.s * Y
    # the same arithmetic in another order: float64 rounding, ~1e-15 relative
    np.testing.assert_allclose(model(Y, sigma), direct, rtol=1e-12, atol=1e-12)
    W1, W2, s = model.effective_weights(sigma)
    np.testing.assert_allclose(W2 @ np.maximum(W1.T @ Y, 0.0) + s * Y, direct, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(model.rep(Y), np.maximum(model.W.T @ Y, 0.0))
    per_column = model(Y, np.full(4, sigma))
    np.testing.assert_allclose(per_column, direct, rtol=1e-12, atol=1e-12)


def test_initialisation_is_the_authors_and_deterministic():
    model = MultiNoiseDAE.initial(64, 8, seed=3)
    assert np.abs(model.W).max() <= np.sqrt(6 / 64)
    assert np.abs(model.A1).max() <= 1 and np.abs(model.b1).max() <= 1
    assert not model.A2.any() and not model.b2.any() and model.s == 0.0
    np.testing.assert_array_equal(model.gains(np.array([0.02, 2.0])), np.ones((8, 2)))
    np.testing.assert_array_equal(MultiNoiseDAE.initial(64, 8, seed=3).pack(), model.pack())


def test_pack_round_trip_and_kinks():
    rng = np.random.default_rng(1)
    model = random_model(rng, 4, 3)
    back = MultiNoiseDAE.unpack(model.pack(), 4, 3)
    np.testing.assert_array_equal(back.pack(), model.pack())
    assert model.pack().size == model.size
    kinks = model.kinks(-10.0, 10.0)
    np.testing.assert_allclose(np.sort(-model.b1 / model.A1), kinks)
    model.A2[:, 0] = 0.0                               # unit 0 no longer reaches the gains
    assert -model.b1[0] / model.A1[0] not in model.kinks(-10.0, 10.0)


def test_bad_inputs_are_named():
    model = MultiNoiseDAE.initial(4, 2)
    with pytest.raises(ValueError, match="sigma"):
        model(np.ones((4, 1)), 0.0)
    with pytest.raises(ValueError, match="sigma"):
        model(np.ones((4, 3)), np.ones(2))
    with pytest.raises(ValueError, match="Y"):
        model(np.ones((3, 1)), 0.1)
    with pytest.raises(ValueError, match="A2"):
        MultiNoiseDAE(W=np.ones((4, 2)), s=0.0, A1=np.ones(2), b1=np.ones(2), A2=np.ones((2, 3)), b2=np.ones(2))
    with pytest.raises(ValueError, match="skip"):
        MultiNoiseDAE(W=np.ones((4, 2)), s=np.nan, A1=np.ones(2), b1=np.ones(2), A2=np.ones((2, 2)), b2=np.ones(2))
    with pytest.raises(ValueError, match="sigma_max"):
        multinoise_loss(model, np.ones((4, 2)), 0.5, 0.1)
    with pytest.raises(ValueError, match="X"):
        multinoise_loss(model, np.ones((2, 4)))
    with pytest.raises(TypeError, match="MultiNoiseDAE"):
        multinoise_loss(np.ones((4, 2)), np.ones((4, 2)))
    with pytest.raises(ValueError, match="lam"):
        multinoise_loss(model, np.ones((4, 2)), lam=-1.0)


# ----------------------------------------------------------------------------- exact vs Monte Carlo


N_DRAWS = 4000


def _monte_carlo_sees_every_switch(model, X, sigma_min, sigma_max):
    """True when every ReLU of the encoder is deterministic over the σ range (|z| > 8.5 at σ_max,
    switching probability < 1e-17) or switches in ≥ 10 of N_DRAWS draws on average.

    In between, a ReLU switches so rarely that the sample standard error misses its
    contribution (e.g. z ≈ −5: probability 3e-7, never seen in 4000 draws, yet it moves the
    loss), so a 4-standard-error test would be invalid there; the quadrature and Taylor
    tests cover that regime.
    """
    norms = np.linalg.norm(model.W, axis=0)
    live = norms > 0
    means = np.abs(model.W[:, live].T @ X)                           # (p', n)
    sigmas = np.geomspace(sigma_min, sigma_max, 201)                 # log-uniform σ, on a grid
    z = means[..., None] / (norms[live, None, None] * sigmas)
    switching = stats.norm.sf(z).mean(axis=-1)
    deterministic = z.min(axis=-1) > 8.5
    return bool(np.all(deterministic | (switching >= 10.0 / N_DRAWS)))


@given(instances(), st.integers(0, 2**32 - 1))
def test_exact_loss_matches_monte_carlo_within_four_standard_errors(instance, seed):
    """Unbiased estimator (the authors' one-draw-per-sample loss) vs the exact expectation.

    Tolerance: 4 standard errors of the mean over n·4000 independent draws (false alarm
    ≈ 6e-5 per example), plus the quadrature's relative error (≤ 1e-10) and rounding.
    """
    model, X, sigma_min, sigma_max, lam = instance
    assume(_monte_carlo_sees_every_switch(model, X, sigma_min, sigma_max))
    exact = multinoise_loss(model, X, sigma_min, sigma_max, lam)
    estimate, standard_error = multinoise_monte_carlo_loss(model, X, sigma_min, sigma_max, lam, n_draws=N_DRAWS,
                                                           rng=seed)
    assert abs(exact - estimate) <= 4.0 * standard_error + 1e-9 * abs(exact)


def test_noise_level_terms_match_monte_carlo_with_a_skip():
    """One σ, s ≠ 0: the three Stein terms of the skip against 200,000 draws (5 standard errors)."""
    rng = np.random.default_rng(2)
    d, n, p, sigma = 4, 3, 3, 0.8
    model = random_model(rng, d, p, skip=0.9)
    X = rng.normal(size=(d, n))
    g = model.gains(sigma)
    exact = noise_level_terms(model.W, g, model.s, X, sigma, need_grad=False).value
    draws = 200_000
    Y = np.repeat(X, draws, axis=1) + sigma * rng.standard_normal((d, n * draws))
    errors = np.sum((model(Y, sigma) - np.repeat(X, draws, axis=1)) ** 2, axis=0).reshape(n, draws)
    standard_error = np.sqrt(errors.var(axis=1, ddof=1).sum() / (n * n * draws))
    assert abs(exact - errors.mean()) <= 5.0 * standard_error


# ----------------------------------------------------------------------------- gradient


def _kink_order(model, u_min=math.log(0.02), u_max=math.log(2.0)):
    """Units whose kinks lie inside (u_min, u_max), in the order of their kinks."""
    used = np.flatnonzero((model.A1 != 0) & np.any(model.A2 != 0, axis=0))
    kinks = -model.b1[used] / model.A1[used]
    inside = (kinks > u_min) & (kinks < u_max)
    return tuple(used[inside][np.argsort(kinks[inside])])


@pytest.mark.parametrize("seed", range(4))
def test_gradient_passes_the_taylor_slope_test_in_every_parameter(seed):
    """Slope 2 ± 0.1 over three decades along a random direction in (W, s, A1, b1, A2, b2).

    The rule built at the base point follows the kinks with fixed node counts, so along the
    line the objective is smooth as long as the set and order of the kinks do not change
    (checked on a grid of the line); its derivative then differs from the returned gradient
    by the derivative of the quadrature error (≈ 1e-14 relative here), far below t² at the
    smallest step.
    """
    rng = np.random.default_rng(seed)
    model = random_model(rng, 4, 3, zero_columns=[2] if seed % 2 else [], skip=0.6)
    X = rng.normal(size=(4, 5))
    lam = 0.05
    rule = adaptive_rule(model, X, 0.02, 2.0)
    loss, grad = multinoise_loss_and_grad(model, X, 0.02, 2.0, lam, rule=rule)
    theta = model.pack()
    direction = rng.normal(size=theta.size)
    steps = max(np.linalg.norm(theta), 1.0) / np.linalg.norm(direction) * np.logspace(-5, -2, 13)
    order = _kink_order(model)
    assert all(_kink_order(MultiNoiseDAE.unpack(theta + t * direction, 4, 3)) == order
               for t in np.linspace(0.0, steps[-1], 50))

    def f(point):
        return multinoise_loss(MultiNoiseDAE.unpack(point, 4, 3), X, 0.02, 2.0, lam, rule=rule)

    result = taylor_remainder_slope(f, theta, grad.pack(), direction, steps)
    assert abs(result.slope - 2.0) <= 0.1, result.remainders


def test_gradient_of_the_adaptive_objective_matches_the_fixed_rule():
    """With no rule given the objective builds one at θ; its gradient is that rule's."""
    rng = np.random.default_rng(7)
    model, X = random_model(rng, 3, 2), rng.normal(size=(3, 4))
    loss, grad = multinoise_loss_and_grad(model, X, lam=0.1)
    rule = adaptive_rule(model, X)
    loss_fixed, grad_fixed = multinoise_loss_and_grad(model, X, lam=0.1, rule=rule)
    assert loss == loss_fixed
    np.testing.assert_array_equal(grad.pack(), grad_fixed.pack())


# ----------------------------------------------------------------------------- quadrature


def test_quadrature_error_is_below_1e8_against_a_much_finer_rule():
    """Default rule (rtol 1e-10) vs 16× the density and 16× the minimum nodes per piece."""
    rng = np.random.default_rng(3)
    model = random_model(rng, 6, 5, gain_scale=1.5, skip=0.5)
    model.A1, model.b1 = np.array([1.0, -1.0, 2.0, 1.0, -0.5]), np.array([2.0, -1.0, -1.0, 3.5, 0.1])
    X = rng.normal(size=(6, 7))
    assert model.kinks(math.log(0.02), math.log(2.0)).size == 5
    rule = adaptive_rule(model, X)
    fine = quadrature_rule(model, density=16 * rule.density, min_nodes=16 * rule.min_nodes)
    reference = multinoise_loss(model, X, rule=fine)
    value = multinoise_loss(model, X, rule=rule)
    assert abs(value - reference) <= 1e-8 * abs(reference)
    assert rule.relative_error <= 1e-10
    # the estimate is conservative: the rule's true error is below it (up to rounding)
    assert abs(value - reference) <= rule.error_estimate + 1e-13 * abs(reference)


def test_quadrature_agrees_with_scipy_quad():
    """Adaptive Gauss–Kronrod (QUADPACK, told the kinks) on the same integrand, 1e-8 relative."""
    rng = np.random.default_rng(4)
    model = random_model(rng, 3, 3, gain_scale=1.5)
    model.A1, model.b1 = np.array([1.0, -2.0, 1.0]), np.array([1.5, -1.0, 3.0])
    X = rng.normal(size=(3, 3))
    u_min, u_max = math.log(0.02), math.log(2.0)
    assert model.kinks(u_min, u_max).size == 3

    def integrand(u):
        sigma = math.exp(u)
        return noise_level_terms(model.W, model.gains(sigma), model.s, X, sigma, need_grad=False).value

    value, error = integrate.quad(integrand, u_min, u_max, points=model.kinks(u_min, u_max), epsabs=0.0,
                                  epsrel=1e-12, limit=200)
    reference = value / (u_max - u_min)
    assert error / (u_max - u_min) <= 1e-10 * abs(reference)
    assert abs(multinoise_loss(model, X) - reference) <= 1e-8 * abs(reference)


# ----------------------------------------------------------------------------- single σ


def test_single_sigma_unit_gains_no_skip_is_eq6():
    """σ_min = σ_max, g ≡ 1 (A2 = b2 = 0), s = 0: eq. (6) with tied weights and λ₆ = λ/2."""
    rng = np.random.default_rng(5)
    d, p, sigma, lam = 5, 3, 0.3, 0.2
    W, X = rng.normal(size=(d, p)), rng.normal(size=(d, 6))
    model = MultiNoiseDAE(W=W, s=0.0, A1=np.zeros(p), b1=np.zeros(p), A2=np.zeros((p, p)), b2=np.zeros(p))
    loss, grad = multinoise_loss_and_grad(model, X, sigma, sigma, lam)
    ref, g1, g2 = expected_loss_and_grad(W, W, X, sigma, lam / 2)
    # the same exact terms summed in another order: float64 rounding
    assert loss == pytest.approx(ref, rel=1e-13)
    np.testing.assert_allclose(grad.W, g1 + g2, rtol=1e-12, atol=1e-13)
    # the gain network does not change g ≡ 1 when A2 = 0: same data term for any A1, b1
    model.A1, model.b1 = rng.normal(size=p), rng.normal(size=p)
    assert multinoise_loss(model, X, sigma, sigma) == pytest.approx(expected_loss(W, W, X, sigma), rel=1e-13)


def test_decay_mapping_round_trip():
    assert decay_from_weight_decay(1e-2, 1024) == pytest.approx(5.12)
    assert weight_decay_from_decay(decay_from_weight_decay(3e-4, 37), 37) == pytest.approx(3e-4, rel=1e-15)
