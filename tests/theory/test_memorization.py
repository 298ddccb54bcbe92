"""Corollary 3.2: eq. (9) is the rank-1 case of eq. (8); its loss, the bound < σ², the spike and its Std."""
from __future__ import annotations


import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings, strategies as st

import theory.memorization as mem
from numerics.objective import expected_loss
from theory.errors import AssumptionError
from theory.predict import block_weights, expected_representation, memorization_weights, predicted_loss
from theory.symbols import lam, n, p, s, sigma


def simplex(d: int, n_samples: int, norms, rng) -> np.ndarray:
    """n ≤ d + 1 vectors with pairwise cosine −1/(n − 1) (β1 < 0), in a random frame."""
    centred = np.eye(n_samples) - 1.0 / n_samples
    vectors, _, _ = np.linalg.svd(centred)
    coords = centred @ vectors[:, : n_samples - 1] if n_samples > 1 else np.ones((1, 1))
    coords = coords / np.linalg.norm(coords, axis=1, keepdims=True)
    frame, _ = np.linalg.qr(rng.normal(size=(d, d)))
    X = frame[:, : coords.shape[1]] @ coords.T
    return X * np.asarray(norms)


def test_eq9_is_the_rank_one_case_of_eq8():
    # both are square roots of nonnegative quantities (for s > nλ), so equal squares suffice
    assert sp.simplify(mem.r_from_eq8() ** 2 - mem.r_eq9() ** 2) == 0
    at = {lam: 0}
    assert sp.simplify(mem.r_from_eq8().subs(at) - mem.r_eq9().subs(at)) == 0


def test_loss_limit_and_strict_bound_below_sigma_sq():
    limit = mem.loss_per_sample_no_decay()
    assert sp.simplify(limit - sigma ** 2 * s / (sigma ** 2 + s)) == 0
    gap = mem.gap_below_sigma_sq()
    assert sp.simplify(gap - sigma ** 4 / (sigma ** 2 + s)) == 0
    assert gap.is_positive            # σ > 0, s > 0: the loss is strictly below σ², for every d
    assert not limit.has(sp.Symbol("d"))


def test_spike_height_and_std():
    assert sp.simplify(mem.spike_height() ** 2 - s * (s - n * lam) / (s + sigma ** 2)) == 0
    assert sp.limit(sp.limit(mem.spike_height(), lam, 0), sigma, 0) == sp.sqrt(s)  # ≈ ‖x‖
    h = sp.Symbol("h", positive=True)
    assert sp.simplify(mem.onehot_std() ** 2 - (h ** 2 / p - h ** 2 / p ** 2)) == 0


@st.composite
def memorization_sets(draw):
    d = draw(st.integers(2, 6))
    n_samples = draw(st.integers(1, d + 1))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    norms = rng.uniform(1.0, 3.0, size=n_samples)
    X = simplex(d, n_samples, norms, rng)
    p_total = n_samples + draw(st.integers(0, 3))
    sig = draw(st.floats(0.0, 1.0))
    lam_value = draw(st.floats(0.0, 0.9)) * np.min(norms ** 2) / n_samples
    return X, p_total, sig, lam_value


@settings(max_examples=30, deadline=None)
@given(memorization_sets())
def test_eq9_constructor_equals_eq8_blocks(instance):
    """Two paths: r_i of eq. (9) (memorization_weights) vs an SVD-based eq. (8) block per sample."""
    X, p_total, sig, lam_value = instance
    W = memorization_weights(X, p_total, sig, lam_value)
    n_samples = X.shape[1]
    for i in range(n_samples):
        column = block_weights(X[:, [i]], 1, n_samples, sig, lam_value)
        # rounding of a rank-1 SVD relative to the column's scale ‖x_i‖ (≈ 1e-15)
        assert np.allclose(W[:, [i]], column, atol=1e-12 * np.linalg.norm(X[:, i]))
    assert np.all(W[:, n_samples:] == 0)


def test_predicted_loss_matches_exact_objective():
    """Cor. 3.2's loss against the exact eq. (6); residual from mask switching ~ Φ(−γ/σ)."""
    rng = np.random.default_rng(0)
    X = simplex(5, 4, [2.0, 2.5, 3.0, 2.2], rng)
    n_samples = X.shape[1]
    for sig, lam_value in ((0.2, 0.0), (0.3, 0.05)):
        W = memorization_weights(X, 6, sig, lam_value)
        exact = expected_loss(W, W, X, sig, lam_value)
        predicted = predicted_loss(X, np.arange(n_samples), [1] * n_samples, sig, lam_value)
        formula = np.mean(mem.loss_per_sample_np(np.sum(X ** 2, axis=0), n_samples, sig, lam_value))
        assert predicted == pytest.approx(formula, rel=1e-12)
        # γ = min(‖x‖, |β1|‖x‖) ≥ 2/3 here, γ/σ ≥ 2.2: switching terms ≤ ‖x‖² Φ(−γ/σ)-ish
        gamma = 2.0 / 3.0
        assert abs(exact - predicted) <= 10 * np.max(np.sum(X ** 2, 0)) * np.exp(-gamma ** 2 / (2 * sig ** 2))
        if lam_value == 0:
            assert exact < sig ** 2


def test_spike_and_std_against_monte_carlo():
    """Representation of noisy training samples at W_mem: one spike, Std = √(p−1)/p · E[h_i]."""
    rng = np.random.default_rng(1)
    X = simplex(6, 5, [1.5, 2.0, 2.5, 3.0, 1.8], rng)
    sig, lam_value, p_total = 0.3, 0.01, 8
    W = memorization_weights(X, p_total, sig, lam_value)
    norms_sq = np.sum(X ** 2, axis=0)
    expected_h = expected_representation(W, X, sig)
    spike = mem.expected_spike_np(norms_sq, X.shape[1], sig, lam_value)
    assert np.allclose(np.diag(expected_h[:5]), spike, rtol=1e-12)
    draws = 20_000
    for i in range(X.shape[1]):
        noisy = X[:, [i]] + sig * rng.standard_normal((X.shape[0], draws))
        H = np.maximum(W.T @ noisy, 0)
        stds = H.std(axis=0)                     # population Std over the p entries
        predicted = mem.expected_spike_std_np(norms_sq[i], X.shape[1], sig, lam_value, p_total)
        # 5 Monte-Carlo standard errors; the neglected off-spike firing is Φ(−|β1|‖x‖/σ) < 1e-4
        assert abs(stds.mean() - predicted) <= 5 * stds.std() / np.sqrt(draws) + 1e-3 * predicted
        clean = mem.spike_height_np(norms_sq[i], X.shape[1], sig, lam_value)
        assert np.max(H.mean(axis=1)) == pytest.approx(spike[i], rel=0.02)
        assert clean == pytest.approx(W[:, i] @ X[:, i], rel=1e-12)


def test_assumption_errors_report_measured_and_required():
    rng = np.random.default_rng(2)
    X = simplex(4, 3, [1.0, 1.0, 1.0], rng)
    with pytest.raises(AssumptionError, match=r"p >= n.*measured 2, required >= 3"):
        memorization_weights(X, 2, 0.1, 0.0)
    with pytest.raises(AssumptionError, match=r"nλ < min_i.*measured nλ = 1\.5.*required < 1"):
        memorization_weights(X, 3, 0.1, 0.5)
    positive_pair = np.array([[1.0, 0.8], [0.0, 0.6]])
    with pytest.raises(AssumptionError, match=r"β < 0.*measured 0\.8, required < 0"):
        memorization_weights(positive_pair, 2, 0.1, 0.0)
    assert issubclass(AssumptionError, ValueError)
    # opting out builds eq. (9) anyway (for exploring data outside the corollary)
    assert memorization_weights(positive_pair, 2, 0.1, 0.0, check_assumptions=False).shape == (2, 2)
