"""Neuron allocation (docs/theory.md §3): per-direction gains, water-filling optimality, regimes."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings, strategies as st

import theory.allocation as alloc
from theory.linear_block import linear_block_loss
from theory.predict import block_weights, predict, predicted_loss
from theory.symbols import Lam, lam_p, n_k, sigma


def test_gain_is_increasing_above_the_decay():
    derivative = alloc.gain_derivative()
    expected = (Lam - lam_p) * (Lam + lam_p + 2 * n_k * sigma ** 2) / (Lam + n_k * sigma ** 2) ** 2
    assert sp.simplify(derivative - expected) == 0
    t = sp.Symbol("t", positive=True)           # Λ = λ' + t, t > 0
    assert sp.simplify(derivative.subs(Lam, lam_p + t)).is_positive
    assert sp.simplify(alloc.gain().subs(lam_p, 0) - Lam ** 2 / (Lam + n_k * sigma ** 2)) == 0
    assert sp.simplify(alloc.decay_correction()
                       + lam_p * (2 * Lam - lam_p) / (Lam + n_k * sigma ** 2)) == 0


@st.composite
def partitions(draw):
    K = draw(st.integers(1, 3))
    d = draw(st.integers(1, 3))
    sizes = draw(st.lists(st.integers(1, 3), min_size=K, max_size=K))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    X = np.concatenate([rng.normal(size=(d, 1)) * 2 + rng.normal(size=(d, size)) * draw(st.floats(0.05, 1.0))
                        for size in sizes], axis=1)
    labels = np.repeat(np.arange(K), sizes)
    return X, labels, draw(st.integers(1, 5)), draw(st.floats(0.0, 2.0)), draw(st.floats(0.0, 0.3))


@settings(max_examples=40, deadline=None)
@given(partitions())
def test_water_filling_is_optimal_by_brute_force(instance):
    X, labels, p_total, sig, lam_value = instance
    spectra = alloc.cluster_spectra(X, labels)
    n_total = X.shape[1]
    usable = [int(np.sum(alloc.direction_gains(s, n_total, sig, lam_value) > 0)) for s in spectra]
    best = min(alloc.predicted_block_loss(spectra, counts, n_total, sig, lam_value)
               for counts in itertools.product(*[range(u + 1) for u in usable]) if sum(counts) <= p_total)
    result = alloc.allocate(X, labels, p_total, sig, lam_value)
    # same sums of the same gains in a different order: rounding ≲ 1e-12 of the energy
    assert result.loss == pytest.approx(best, rel=1e-12, abs=1e-12)
    assert sum(result.p_per_cluster) + result.unused_neurons == p_total
    assert all(q <= u for q, u in zip(result.p_per_cluster, usable))


@settings(max_examples=30, deadline=None)
@given(partitions())
def test_predicted_loss_is_the_sum_of_block_losses(instance):
    """Independent path: (1/n) Σ_k L̂_{X_k}(W_k, W_k) at the eq. (8) blocks (Theorem D.2 at stable masks)."""
    X, labels, p_total, sig, lam_value = instance
    counts = alloc.allocate(X, labels, p_total, sig, lam_value).p_per_cluster
    n_total = X.shape[1]
    total = 0.0
    for k, q in enumerate(counts):
        X_k = X[:, labels == k]
        W_k = block_weights(X_k, q, n_total, sig, lam_value, check_assumptions=False)
        if q == 0:
            W_k = np.zeros((X.shape[0], 1))
        total += linear_block_loss(W_k, W_k, X_k, n_total, sig, lam_value)
    # closed form vs. the block loss evaluated at the weights: float64 rounding of sums of n·d
    # terms (relative ~1e-14), with 1e-9 / 1e-12 as margin above it
    assert predicted_loss(X, labels, counts, sig, lam_value) == pytest.approx(total / n_total, rel=1e-9, abs=1e-12)


def test_regimes():
    """Singletons are memorised; a spread cluster with ≥ 2 neurons generalises; with 1, a centroid."""
    rng = np.random.default_rng(0)
    spread = np.zeros((6, 8))
    spread[3:] = 0.3 * rng.standard_normal((3, 8))
    cluster = np.array([3.0, 0, 0, 0, 0, 0])[:, None] + spread
    singles = np.array([[-1.5, 2.0, 0, 0, 0, 0], [-1.5, -2.0, 0, 0, 0, 0]]).T
    X = np.concatenate([cluster, singles], axis=1)
    labels = np.array([0] * 8 + [1, 2])
    wide = predict(X, labels, p=6, sigma=0.1, lam=0.0)
    assert wide.regimes == ("generalised", "memorised", "memorised")
    assert wide.p_per_cluster == (4, 1, 1)
    narrow = predict(X, labels, p=1, sigma=0.1, lam=0.0)
    assert narrow.p_per_cluster == (1, 0, 0) and narrow.regimes == ("centroid", "unused", "unused")
    # strong noise: the spread directions (Λ ≈ 0.7) lose to the singletons (‖x‖² = 6.25)
    noisy = alloc.allocate(X, labels, 3, sigma=2.0, lam=0.0)
    assert noisy.p_per_cluster == (1, 1, 1)
