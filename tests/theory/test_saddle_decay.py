"""The decay λ* below which W_mem with zero columns (p > n) is a saddle of loss (6).

`theory.memorization.saddle_decay` is derived in the stable-mask approximation; these tests
compare it with the exact objective (`numerics.objective`) and with the second-order
certificate (`numerics.certify`, untied weights: loss (6) as printed).
"""
from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
from hypothesis import assume, given, settings, strategies as st
from scipy.special import ndtr

from numerics.certify import certify
from numerics.data import memorization_set
from numerics.objective import expected_loss_and_grad
from numerics.solvers import train
from theory import memorization as mem
from theory.errors import AssumptionError
from theory.predict import memorization_weights


def test_correlation_simplifies_to_the_closed_form():
    assert sp.simplify(mem.new_neuron_correlation() - mem.new_neuron_correlation_closed()) == 0


def test_stability_parts_are_the_closed_form():
    """−[nλA + (σ² + nλ)B] of `_stability_parts` is `new_neuron_correlation_np` at ‖a‖ = 1."""
    rng = np.random.default_rng(0)
    X = memorization_set(7, 4, norm=[1.0, 2.0, 1.5, 3.0], seed=1)
    norms_sq = np.sum(X ** 2, axis=0)
    sigma, lam, n = 0.3, 2e-3, X.shape[1]
    a = rng.standard_normal(7)
    a /= np.linalg.norm(a)
    A, B = mem._stability_parts(X, norms_sq, sigma, X.T @ a)
    direct = mem.new_neuron_correlation_np(X.T @ a, sigma, norms_sq, n, sigma, lam)
    np.testing.assert_allclose(-(n * lam * A + (sigma ** 2 + n * lam) * B), direct, rtol=1e-12)


def _exact_G(X, W, j, a, sigma, lam):
    """∂L/∂w2_j at w1_j = a, w2_j = 0, from the exact objective (what `certify` uses)."""
    W1, W2 = W.copy(), W.copy()
    W1[:, j], W2[:, j] = a, 0.0
    return expected_loss_and_grad(W1, W2, X, sigma, lam)[2][:, j]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_linearised_gradient_matches_the_exact_one(seed):
    """G(a) = (2/n) Σ x_i E[ξ_i u_i+] up to the neglected firing probabilities.

    The stable-mask approximation drops events where a memorised neuron is off on its own
    noisy sample, or another one fires: each has probability ≤ Φ(−margin), and on them the
    residual and the new neuron's activation are O(‖x‖) and O(σ‖a‖). Tolerance: n of those
    probabilities times the scale (2/n)·max‖x_i‖·(max‖x_i‖ + σ)·σ of a term, plus rounding.
    """
    rng = np.random.default_rng(seed)
    X = memorization_set(6, 3, norm=[3.0, 2.5, 2.0], seed=seed)
    n, sigma, lam = 3, 0.2, 1e-4
    W = memorization_weights(X, n + 1, sigma, lam)
    norms_sq = np.sum(X ** 2, axis=0)
    margin = mem.saddle_decay(X, sigma).margin
    for _ in range(5):
        a = rng.standard_normal(6)
        a /= np.linalg.norm(a)
        correlation = mem.new_neuron_correlation_np(X.T @ a, sigma, norms_sq, n, sigma, lam)
        linearised = (2.0 / n) * X @ correlation
        exact = _exact_G(X, W, n, a, sigma, lam)
        scale = (2.0 / n) * np.sqrt(norms_sq.max()) * (np.sqrt(norms_sq.max()) + sigma) * sigma
        tolerance = n * ndtr(-margin) * scale + 1e-12
        assert np.linalg.norm(exact - linearised) <= tolerance


def test_threshold_rejects_data_outside_its_approximation():
    X = memorization_set(5, 3, norm=1.0, seed=0)
    with pytest.raises(AssumptionError, match="margin"):
        mem.saddle_decay(X, 0.5)                  # ‖x‖/σ = 2 but gaps x̂_jᵀx_i/σ = 1
    positively_correlated = np.array([[1.0, 0.9], [0.0, 0.5]])
    with pytest.raises(AssumptionError, match="β"):
        mem.saddle_decay(positively_correlated, 0.1)
    with pytest.raises(ValueError, match="sigma"):
        mem.saddle_decay(X, 0.0)


def _verdict(X, p, sigma, lam):
    W = memorization_weights(X, p, sigma, lam)
    fit = train(X, p, sigma, lam, init=(W, W), tied=False)   # zero columns stay exactly zero
    return certify(fit.W1, fit.W2, X, sigma, lam, tied=False)


def _sigma_for_margin(X, margin):
    """σ giving the stable-mask approximation the requested margin min(‖x_i‖, |x̂_jᵀx_i|)/σ."""
    unit = X / np.linalg.norm(X, axis=0)
    gaps = -(unit.T @ X)
    np.fill_diagonal(gaps, np.inf)
    return float(min(np.linalg.norm(X, axis=0).min(), gaps.min()) / margin)


@pytest.mark.slow            # ~1 min: 12 examples, each trains and certifies twice
@settings(max_examples=12)
@given(d=st.integers(3, 8), n=st.integers(2, 4), extra=st.integers(1, 2), margin=st.floats(4.0, 7.0),
       norms=st.lists(st.floats(1.0, 3.0), min_size=4, max_size=4), seed=st.integers(0, 2 ** 16))
def test_certify_meets_the_threshold_on_both_sides(d, n, extra, margin, norms, seed):
    """At λ*/2 a zero column escapes (saddle, with a confirmed descent); at 2λ* W_mem is a minimum.

    Instances are drawn inside the approximation's regime (σ set by the margin; the
    threshold's own error bound must allow the factor-2 bracket, else it raises and the
    example is discarded).
    """
    assume(n <= d)
    X = memorization_set(d, n, norm=norms[:n], seed=seed)
    sigma = _sigma_for_margin(X, margin)
    try:
        threshold = mem.saddle_decay(X, sigma)
    except AssumptionError:
        assume(False)
    assume(n * 2 * threshold.lam < np.min(np.sum(X ** 2, axis=0)))     # eq. (9) exists at 2λ*
    below = _verdict(X, n + extra, sigma, threshold.lam / 2)
    above = _verdict(X, n + extra, sigma, 2 * threshold.lam)
    assert below.verdict == "saddle" and below.descent_decrease > 0, below.summary()
    assert above.verdict in ("strict local minimum", "degenerate minimum"), above.summary()
