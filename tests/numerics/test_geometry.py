"""numerics.geometry: loss unit, zero columns, the invariant subspace, one packing, one finite-difference HVP."""
from __future__ import annotations

import numpy as np
import pytest

from numerics.diagnostics import taylor_remainder_slope
from numerics.geometry import (ExactGradient, NonFiniteStep, Packing, column_sizes, invariant_basis,
                               loss_scale, orthonormal_span, zero_columns)
from numerics.objective import expected_loss, expected_loss_and_grad

SIGMA, LAM = 0.2, 0.01


def test_loss_scale_is_zero_network_loss(memorization):
    W = np.zeros((6, 2))
    # Both are (1/n) Σ‖x_i‖², summed in a different order: float64 rounding, ≈ 1e-16 relative.
    assert loss_scale(memorization) == pytest.approx(expected_loss(W, W, memorization, SIGMA, 0.0), rel=1e-14)
    assert loss_scale(np.zeros((2, 3))) == 1.0          # X = 0: the unit falls back to 1


def test_zero_columns_are_relative_to_the_longest():
    W1 = np.array([[3.0, 1e-7, 0.0], [4.0, 0.0, 0.0]])
    W2 = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 1e-3]])
    np.testing.assert_array_equal(column_sizes(W1, W2), [5.0, 1e-7, 1e-3])
    assert zero_columns(W1, W2).tolist() == [False, True, False]          # 1e-7 ≤ 1e-6 · 5
    assert zero_columns(W1, W2, zero_tol=1e-3).tolist() == [False, True, True]
    assert zero_columns(np.zeros((2, 2)), np.zeros((2, 2))).all()


def test_orthonormal_span_of_wide_and_tall_matrices():
    rng = np.random.default_rng(0)
    basis = rng.normal(size=(6, 2))
    wide = basis @ rng.normal(size=(2, 40))        # rank 2, wide: the eigh path
    tall = basis @ rng.normal(size=(2, 3))         # rank 2, the SVD path
    for A in (wide, tall):
        Q = orthonormal_span(A)
        assert Q.shape == (6, 2)
        # orthonormal, and A lies in span(Q): rounding of an eigh/SVD, ≈ 1e-15 relative
        np.testing.assert_allclose(Q.T @ Q, np.eye(2), atol=1e-13)
        assert np.linalg.norm(A - Q @ (Q.T @ A)) <= 1e-12 * np.linalg.norm(A)


def test_invariant_basis_reduction_is_exact():
    """L(B V1, B V2; X) = L(V1, V2; BᵀX) and the gradient lies in span(B) (rotation invariance)."""
    rng = np.random.default_rng(9)
    X = rng.normal(size=(12, 3))
    W1, W2 = rng.normal(size=(12, 2)), rng.normal(size=(12, 2))
    B = invariant_basis(X, W1, W2)
    assert B.shape == (12, 7)
    # Tolerances: float64 rounding of a QR/SVD (orthonormality) and of re-associated sums
    # in the objective (a few ulps of the largest term).
    np.testing.assert_allclose(B.T @ B, np.eye(7), atol=1e-14)
    V1, V2, C = B.T @ W1, B.T @ W2, B.T @ X
    full = expected_loss_and_grad(W1, W2, X, SIGMA, LAM)
    small = expected_loss_and_grad(V1, V2, C, SIGMA, LAM)
    assert small[0] == pytest.approx(full[0], rel=1e-13)
    for g_full, g_small in zip(full[1:], small[1:]):
        np.testing.assert_allclose(B @ g_small, g_full, atol=1e-12 * np.abs(g_full).max())
    assert invariant_basis(X, W1, W2, extra=1).shape == (12, 8)


@pytest.mark.parametrize("tied", [True, False])
def test_packing_round_trip_and_live_columns(tied):
    rng = np.random.default_rng(1)
    W1 = rng.normal(size=(3, 4))
    W2 = W1 if tied else rng.normal(size=(3, 4))
    packing = Packing(3, 4, tied)
    theta = packing.pack(W1, W2)
    assert theta.size == packing.size == 12 * (1 if tied else 2)
    U1, U2 = packing.unpack(theta)
    np.testing.assert_array_equal(U1, W1)
    np.testing.assert_array_equal(U2, W2)
    assert (U1 is U2) == tied
    live = np.array([True, False, True, False])
    packed_live = Packing(3, 4, tied, live=live)
    L1, L2 = packed_live.unpack(packed_live.pack(W1, W2))
    np.testing.assert_array_equal(L1[:, live], W1[:, live])
    assert np.all(L1[:, ~live] == 0) and np.all(L2[:, ~live] == 0)
    g1, g2 = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    expected = (g1 + g2)[:, live].ravel() if tied else np.concatenate([g1[:, live].ravel(), g2[:, live].ravel()])
    np.testing.assert_array_equal(packed_live.grad(g1, g2), expected)


def test_exact_gradient_is_the_objective_and_caches_the_last_point(memorization):
    W = np.random.default_rng(2).normal(size=(6, 3))
    packing = Packing(6, 3, tied=True)
    gradient = ExactGradient(memorization, SIGMA, LAM, packing)
    theta = packing.pack(W, W)
    loss, grad = gradient(theta)
    reference, g1, g2 = expected_loss_and_grad(W, W, memorization, SIGMA, LAM)
    assert loss == reference
    np.testing.assert_array_equal(grad, (g1 + g2).ravel())
    gradient(theta.copy())
    assert gradient.evaluations == 1                       # same point: served from the cache


@pytest.mark.parametrize("tied", [True, False])
def test_hvp_passes_the_taylor_remainder_test(memorization, tied):
    """f(θ) = uᵀ∇L(θ) has gradient H u, so the central-difference H u must leave an O(t²) remainder."""
    rng = np.random.default_rng(3)
    W1 = rng.normal(size=(6, 3))
    W2 = W1 if tied else rng.normal(size=(6, 3))
    packing = Packing(6, 3, tied)
    gradient = ExactGradient(memorization, SIGMA, LAM, packing)
    theta = packing.pack(W1, W2)
    u, v = rng.normal(size=theta.size), rng.normal(size=theta.size)
    slope = taylor_remainder_slope(lambda t: float(u @ gradient(t)[1]), theta, gradient.hvp(theta, u), v)
    # A wrong product leaves an O(t) remainder (slope 1); 1.8 separates the two cleanly.
    assert slope.slope > 1.8, slope
    assert gradient.n_hvp == 1


def test_hvp_refuses_non_finite_directions(memorization):
    packing = Packing(6, 2, tied=True)
    gradient = ExactGradient(memorization, SIGMA, LAM, packing)
    theta = np.ones(packing.size)
    with pytest.raises(NonFiniteStep):
        gradient.hvp(theta, np.full(packing.size, np.nan))
    np.testing.assert_array_equal(gradient.hvp(theta, np.zeros(packing.size)), 0.0)
