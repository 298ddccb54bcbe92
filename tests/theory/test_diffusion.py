"""Tests for theory.diffusion: the theory's denoisers at every σ against independent constructions."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

from numerics.data import gaussian_mixture, memorization_set
from numerics.model import forward
from theory.allocation import allocate
from theory.diffusion import TheoryDenoiser, generalizing_denoiser, memorizing_denoiser
from theory.errors import AssumptionError
from theory.predict import partition_weights
from tests.oracles import w_mem

# Two float64 computations of the same O(1) weights (an SVD per σ against one SVD and a
# rescaling by O diag(√(a(σ)/a(1))) Oᵀ): rounding of a few ulps times p; 1e-12.
EXACT = 1e-12
sigmas = st.floats(1e-3, 10.0)


def mixture(n=60, seed=0):
    return gaussian_mixture(12, 3, 2, n, mean_norm=3.0, spread=0.1, seed=seed)


@given(sigma=sigmas)
def test_memorising_denoiser_is_eq9_at_every_sigma(sigma):
    X = memorization_set(6, 4, norm=[1.0, 2.0, 0.5, 3.0], seed=1)
    f = memorizing_denoiser(X, 6, lam=0.01)
    np.testing.assert_allclose(f.weights(sigma), w_mem(X, 6, sigma, 0.01), rtol=0, atol=EXACT)
    Y = np.random.default_rng(0).standard_normal((6, 7))
    W = w_mem(X, 6, sigma, 0.01)
    np.testing.assert_allclose(f(Y, sigma), forward(W, W, Y), rtol=0, atol=EXACT)


@given(sigma=sigmas, counts=st.sampled_from([(3, 3, 3), (3, 1, 0), (1, 2, 3)]), lam=st.sampled_from([0.0, 1e-3]))
def test_generalising_denoiser_is_eq8_at_every_sigma(sigma, counts, lam):
    mix = mixture()
    f = generalizing_denoiser(mix.X, mix.labels, list(counts), lam)
    expected = partition_weights(mix.X, mix.labels, list(counts), sigma, lam, check_assumptions=False)
    np.testing.assert_allclose(f.weights(sigma), expected, rtol=0, atol=EXACT)


@given(sigma=sigmas, p=st.integers(1, 9))
def test_auto_allocation_follows_the_rule_at_every_sigma(sigma, p):
    mix = mixture()
    f = generalizing_denoiser(mix.X, mix.labels, "auto", 0.0, p=p)
    counts = allocate(mix.X, mix.labels, p, sigma).p_per_cluster
    assert f.neurons_per_cluster(sigma) == counts
    W = f.weights(sigma)
    assert W.shape == (12, p)
    expected = partition_weights(mix.X, mix.labels, list(counts), sigma, 0.0, check_assumptions=False)
    np.testing.assert_allclose(W[:, :sum(counts)], expected, rtol=0, atol=EXACT)
    assert not np.any(W[:, sum(counts):])


def test_auto_allocation_changes_with_sigma():
    """A singleton of norm 2 against a 40-sample mode of norm 1: the singleton's gain 16/(4 + σ²) wins at
    small σ over the mode's second direction, loses at large σ to it (gains fall like 1/(n_kσ²) vs 1/σ²)."""
    rng = np.random.default_rng(2)
    mode = np.array([1.0, 0.0, 0.0])[:, None] + 0.3 * np.vstack([np.zeros(40), rng.standard_normal((2, 40))])
    X = np.hstack([mode, [[-2.0], [0.0], [0.0]]])
    labels = np.r_[np.zeros(40, int), 1]
    f = generalizing_denoiser(X, labels, "auto", 0.0, p=2, check_assumptions=False)
    small, large = f.neurons_per_cluster(0.01), f.neurons_per_cluster(100.0)
    assert small != large
    for sigma, counts in ((0.01, small), (100.0, large)):
        assert counts == allocate(X, labels, 2, sigma).p_per_cluster


@given(t=st.floats(1e-3, 1e3), sigma=sigmas, seed=st.integers(0, 2 ** 31 - 1))
def test_positive_homogeneity(t, sigma, seed):
    """f(tY, σ) = t f(Y, σ), t > 0 (a bias-free ReLU network). Both sides round each of the p products
    ≈ 1e-16 relative: tolerance 1e-13 relative to ‖W‖²‖tY‖."""
    rng = np.random.default_rng(seed)
    mix = mixture()
    Y = rng.standard_normal((12, 5))
    for f in (memorizing_denoiser(memorization_set(12, 5, seed=1), 5),
              generalizing_denoiser(mix.X, mix.labels, "auto", 0.0, p=6)):
        scale = np.linalg.norm(f.weights(sigma)) ** 2 * t * np.linalg.norm(Y)
        np.testing.assert_allclose(f(t * Y, sigma), t * f(Y, sigma), rtol=0, atol=1e-13 * scale)


def test_weights_are_cached_per_sigma_and_read_only():
    calls = []
    f = TheoryDenoiser(np.eye(2), lambda s: calls.append(s) or np.eye(2) * s, "test", cache_size=2)
    W = f.weights(0.5)
    assert f.weights(0.5) is W and calls == [0.5]
    with pytest.raises(ValueError):
        W[0, 0] = 1.0
    f.weights(1.0), f.weights(2.0)           # 0.5 is now the least recently used: dropped
    f.weights(0.5)
    assert calls == [0.5, 1.0, 2.0, 0.5]


def test_flip_probability_grows_with_sigma_for_memorisation():
    """Eq. (9)'s column directions do not depend on σ, so γ is fixed and Φ(−γ/σ) increases."""
    f = memorizing_denoiser(memorization_set(8, 5, seed=0), 5)
    flips = [f.flip_probability(s) for s in (0.02, 0.2, 2.0, 20.0)]
    assert np.all(np.diff(flips) > 0) and flips[0] < 1e-10 and flips[-1] < 0.5


def test_decay_condition_is_checked_once_or_drops_the_direction():
    mix = mixture()
    n = mix.X.shape[1]
    smallest_kept = np.linalg.svd(mix.cluster(0), compute_uv=False)[2] ** 2    # Λ_3 of cluster 0
    lam = 1.5 * smallest_kept / n                                              # nλ > Λ_3
    with pytest.raises(AssumptionError, match="nλ"):
        generalizing_denoiser(mix.X, mix.labels, [3, 1, 1], lam)
    f = generalizing_denoiser(mix.X, mix.labels, [3, 1, 1], lam, check_assumptions=False)
    W = f.weights(0.1)
    assert W.shape[1] == 5 and np.sum(np.linalg.norm(W, axis=0) > 0) == 4     # Λ_3 ≤ nλ: zero column
    assert f.neurons_per_cluster(0.1) == (2, 1, 1)


def test_bad_inputs_are_named():
    X = memorization_set(4, 3, seed=0)
    f = memorizing_denoiser(X, 3)
    with pytest.raises(ValueError, match="sigma"):
        f(np.ones((4, 1)), 0.0)
    with pytest.raises(ValueError, match="sigma"):
        f(np.ones((4, 1)), -1.0)
    with pytest.raises(ValueError, match="Y"):
        f(np.ones((3, 1)), 0.5)
    with pytest.raises(AssumptionError, match="p >= n"):
        memorizing_denoiser(X, 2)
    with pytest.raises(AssumptionError, match="β"):
        memorizing_denoiser(np.abs(X), 3)
    mix = mixture()
    with pytest.raises(ValueError, match="p_per_cluster"):
        generalizing_denoiser(mix.X, mix.labels, [1, 1], 0.0)
    with pytest.raises(ValueError, match="p \\(the total"):
        generalizing_denoiser(mix.X, mix.labels, "auto", 0.0)
    with pytest.raises(ValueError, match="'auto'"):
        generalizing_denoiser(mix.X, mix.labels, "all", 0.0, p=3)
    with pytest.raises(ValueError, match="labels"):
        generalizing_denoiser(mix.X, mix.labels[:-1], "auto", 0.0, p=3)
    with pytest.raises(ValueError, match="sum"):
        generalizing_denoiser(mix.X, mix.labels, [1, 1, 1], 0.0, p=4)
