"""Convex certificates: (a) the linear block equals Lemma D.1; (b) a lower bound for a small ReLU-DAE."""
from __future__ import annotations

import numpy as np
import pytest

from numerics.convex import (
    activation_patterns,
    block_loss,
    lemma_d1_optimum,
    linear_block_certificate,
    noisy_inputs,
    relu_lower_bound,
    sampled_loss_and_grad,
    sampled_patterns,
)
from numerics.data import memorization_set
from numerics.solvers import train


@pytest.mark.parametrize("seed", range(4))
def test_nuclear_norm_program_equals_lemma_d1(seed):
    """Random X, σ, λ' (some directions below λ', so not all are kept): 1e-6 relative.

    The solver runs at duality gap 1e-10, so agreement is far tighter than the 1e-6 asked.
    """
    rng = np.random.default_rng(seed)
    d, n = int(rng.integers(2, 6)), int(rng.integers(2, 9))
    X = rng.normal(size=(d, n)) * rng.uniform(0.5, 3.0)
    Lam = np.linalg.eigvalsh(X @ X.T)
    lam_prime = float(rng.uniform(0.0, Lam.max()))
    cert = linear_block_certificate(X, sigma=float(rng.uniform(0.0, 1.0)), lam_prime=lam_prime)
    assert cert.status == "optimal" and cert.condition
    assert cert.rel_error <= 1e-6
    assert cert.map_error <= 1e-4


def test_lemma_d1_factors_attain_the_closed_form():
    """Third implementation: balanced factors W = U_p diag(√a_j) evaluated in the factored loss."""
    rng = np.random.default_rng(7)
    X = rng.normal(size=(4, 6))
    sigma, lam_prime = 0.4, 1.5
    Lam, U = np.linalg.eigh(X @ X.T)
    Lam, U = Lam[::-1], U[:, ::-1]
    a = np.clip(Lam - lam_prime, 0, None) / (Lam + 6 * sigma**2)
    for p in (1, 2, 4):
        W = U[:, :p] * np.sqrt(a[:p])
        value, A = lemma_d1_optimum(X, sigma, lam_prime, p)
        # Same quantity by two float64 routes (eigh vs. the factored loss): rounding of sums of
        # ~n·d terms of size ≤ ‖X‖², relative 1e-15 each; 1e-12 is the margin above it.
        assert block_loss(W, W, X, sigma, lam_prime) == pytest.approx(value, rel=1e-12)
        np.testing.assert_allclose(W @ W.T, A, atol=1e-12)


def test_rank_constraint_binds_when_p_is_below_the_kept_count():
    X = np.diag([3.0, 2.0, 1.5])
    cert = linear_block_certificate(X, sigma=0.1, lam_prime=0.1, p=1)
    assert cert.kept == 3 and not cert.condition
    assert cert.convex_value < cert.lemma_value - 1.0


def test_relu_lower_bound_is_below_the_solver_loss():
    """d = 3: all activation patterns enumerated, so B bounds min L_s for every width.

    B carries the solver's duality-gap allowance, so B ≤ L_s must hold exactly; the gap is
    reported (about 4 % on this instance) and must stay well below the loss itself.
    """
    X = memorization_set(3, 3, norm=[2.0, 1.7, 1.4], seed=0)
    fit = train(X, 3, 0.3, 0.01, seed=0)
    out = relu_lower_bound(X, 0.3, 0.01, 3, draws=4, init=(fit.W1, fit.W2))
    assert out.exact_patterns and out.status == "optimal"
    assert out.bound <= out.solver_loss
    assert 0.0 <= out.rel_gap < 0.1
    loss, _, _ = sampled_loss_and_grad(out.W1, out.W2, out.Y, out.T, 0.01)
    assert loss == pytest.approx(out.solver_loss, rel=1e-12)


def test_activation_patterns_contain_every_sampled_pattern():
    rng = np.random.default_rng(1)
    for d in (1, 2, 3):
        Y = rng.normal(size=(d, 7))
        exact = {p.tobytes() for p in activation_patterns(Y)}
        sampled = {p.tobytes() for p in sampled_patterns(Y, 20_000, seed=2)}
        assert sampled <= exact
        # Hyperplanes through the origin in general position cut R^d into 2Σ_{k<d} C(N−1, k)
        # cells (Cover 1965); the empty pattern (present iff the points lie in an open
        # half-space) is dropped.
        cells = {1: 2, 2: 2 * 7, 3: 2 * (1 + 6 + 15)}[d]
        assert cells - len(exact) in (0, 1)


def test_sampled_gradient_matches_finite_differences():
    rng = np.random.default_rng(3)
    Y, T = noisy_inputs(rng.normal(size=(3, 4)), 0.3, 2, seed=4)
    W1 = rng.normal(size=(3, 2))
    W2 = rng.normal(size=(3, 2))
    _, g1, _ = sampled_loss_and_grad(W1, W2, Y, T, 0.05)
    h = 1e-6
    numeric = np.zeros_like(W1)
    for idx in np.ndindex(W1.shape):
        plus, minus = W1.copy(), W1.copy()
        plus[idx] += h
        minus[idx] -= h
        numeric[idx] = (sampled_loss_and_grad(plus, W2, Y, T, 0.05)[0]
                        - sampled_loss_and_grad(minus, W2, Y, T, 0.05)[0]) / (2 * h)
    # Central difference with h = 1e-6: truncation O(h²·|∂³L|) ≈ 1e-12 and rounding
    # O(ε·L/h) ≈ 1e-10 for L ~ 1 — both far below the 1e-8 absolute / 1e-6 relative allowed
    # (the ReLU kinks are at distance ≫ h from these random points).
    np.testing.assert_allclose(g1, numeric, rtol=1e-6, atol=1e-8)


def test_activation_patterns_refuse_large_d():
    with pytest.raises(ValueError, match="d <= 3"):
        activation_patterns(np.ones((4, 5)))
