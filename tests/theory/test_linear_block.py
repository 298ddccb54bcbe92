"""Lemma D.1: the per-direction optimum, its value, the balanced factorisation, eq. (8) as a minimiser."""
from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings, strategies as st
from scipy.optimize import minimize

import theory.linear_block as lb
from theory.predict import block_linear_map, block_weights
from theory.symbols import Lam, a, lam_p, n_k, sigma


def test_noise_expectation_is_bias_plus_variance():
    c = sp.Symbol("c", real=True)
    assert sp.simplify(lb.per_sample_noise_expectation() - ((a - 1) ** 2 * c ** 2 + sigma ** 2 * a ** 2)) == 0


def test_optimal_scale_and_value_symbolic():
    a_star = lb.optimal_scale()
    # stationary: the derivative vanishes there, and the objective is a convex parabola
    assert sp.simplify(sp.diff(lb.per_direction_objective(), a).subs(a, a_star)) == 0
    assert sp.simplify(a_star - (Lam - lam_p) / (Lam + n_k * sigma ** 2)) == 0
    expected_min = Lam - (Lam - lam_p) ** 2 / (Lam + n_k * sigma ** 2)
    assert sp.simplify(lb.minimal_value() - expected_min) == 0
    assert sp.simplify(lb.gain() - (Lam - lam_p) ** 2 / (Lam + n_k * sigma ** 2)) == 0
    assert lb.validity_condition() == sp.StrictGreaterThan(Lam, lam_p)


def test_eq8_factor_squared_is_the_optimal_scale():
    assert sp.simplify(lb.eq8_column_scale() ** 2 - lb.optimal_scale()) == 0


def test_scalar_balanced_factorisation():
    gap, sos = lb.balanced_scalar_gap()
    assert sp.simplify(gap - sos) == 0          # w1² + w2² − 2|w1w2| = (|w1| − |w2|)² ≥ 0
    u, v = sp.symbols("u v", real=True)
    assert sp.simplify(lb.two_factor_stationarity() - 2 * lam_p * (u ** 2 - v ** 2)) == 0


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2 ** 32 - 1), d=st.integers(1, 5), p=st.integers(1, 4))
def test_nuclear_norm_inequality(seed, d, p):
    rng = np.random.default_rng(seed)
    W1, W2 = rng.normal(size=(d, p)), rng.normal(size=(d, p))
    # tolerance: one SVD in float64, error ≤ 1e-12 · ‖W‖²
    assert lb.nuclear_norm_gap(W1, W2) >= -1e-12 * (np.sum(W1 ** 2) + np.sum(W2 ** 2))
    # balance the factorisation of A = W2W1ᵀ through its SVD: equality
    U, svals, Vt = np.linalg.svd(W2 @ W1.T)
    r = min(d, p)
    B2, B1 = U[:, :r] * np.sqrt(svals[:r]), Vt[:r].T * np.sqrt(svals[:r])
    assert abs(lb.nuclear_norm_gap(B1, B2)) <= 1e-10 * max(1.0, svals.sum())


@st.composite
def blocks(draw):
    d = draw(st.integers(1, 4))
    n_cluster = draw(st.integers(1, 5))
    seed = draw(st.integers(0, 2 ** 32 - 1))
    rng = np.random.default_rng(seed)
    X_k = rng.normal(size=(d, n_cluster)) + 2.0 * rng.normal(size=(d, 1))
    rank = np.linalg.matrix_rank(X_k)
    p_k = draw(st.integers(1, rank))
    eigen = np.linalg.svd(X_k, compute_uv=False) ** 2
    n = n_cluster + draw(st.integers(0, 10))
    lam = draw(st.floats(0.0, 0.9)) * eigen[p_k - 1] / n
    sig = draw(st.floats(0.0, 2.0))
    return X_k, p_k, n, sig, lam, eigen


@settings(max_examples=40, deadline=None)
@given(blocks())
def test_eq8_is_a_critical_point_with_the_predicted_value(block):
    X_k, p_k, n, sig, lam, eigen = block
    W = block_weights(X_k, p_k, n, sig, lam, check_assumptions=False)
    g1, g2 = lb.linear_block_grad(W, W, X_k, n, sig, lam)
    scale = np.sum(X_k ** 2) * (1 + np.linalg.norm(W))
    # float64 rounding of a few matrix products, relative to the loss scale
    assert np.linalg.norm(g1) + np.linalg.norm(g2) <= 1e-9 * scale
    value = lb.linear_block_loss(W, W, X_k, n, sig, lam)
    kept = lb.minimal_value_np(eigen[:p_k], X_k.shape[1], sig, n * lam).sum()
    assert value == pytest.approx(kept + eigen[p_k:].sum(), rel=1e-9, abs=1e-12 * scale)
    assert np.allclose(W @ W.T, block_linear_map(X_k, p_k, n, sig, lam), atol=1e-12 * scale)


def test_eq8_is_the_global_minimum_over_rank_p_factors():
    """Lemma D.1 against L-BFGS from random unbalanced starts (an independent optimiser)."""
    rng = np.random.default_rng(3)
    d, n_cluster, p_k, n, sig, lam = 3, 6, 2, 9, 0.4, 0.05
    X_k = rng.normal(size=(d, n_cluster)) + np.array([[2.0], [0.0], [0.5]])
    W = block_weights(X_k, p_k, n, sig, lam, check_assumptions=False)
    best = lb.linear_block_loss(W, W, X_k, n, sig, lam)

    def fun(theta):
        W1, W2 = theta[: d * p_k].reshape(d, p_k), theta[d * p_k:].reshape(d, p_k)
        g1, g2 = lb.linear_block_grad(W1, W2, X_k, n, sig, lam)
        return lb.linear_block_loss(W1, W2, X_k, n, sig, lam), np.concatenate([g1.ravel(), g2.ravel()])

    found = [minimize(fun, rng.normal(size=2 * d * p_k), jac=True, method="L-BFGS-B",
                      options={"gtol": 1e-12, "ftol": 1e-15, "maxiter": 5000}).fun for _ in range(6)]
    # nothing beats the closed form (up to the optimiser's ftol), and the best start reaches it
    assert min(found) >= best - 1e-8 * best
    assert min(found) == pytest.approx(best, rel=1e-6)
