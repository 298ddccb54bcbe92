"""Neuron allocation (docs/theory.md §3): per-direction gains, water-filling optimality, regimes."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings, strategies as st

import theory.allocation as alloc
from tests.oracles import eigenvector_sine_bound
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


# --- the Gram route of the per-cluster decomposition (theory.allocation._spectrum, _top_eigenpairs) ---

def _spread_cluster(rng, d, n_k, scales, noise):
    """A cluster of n_k points in d: a mean of norm 10 plus independent spreads of the given scales
    along random orthonormal directions, plus isotropic noise of size ``noise`` (0: exact rank)."""
    basis, _ = np.linalg.qr(rng.standard_normal((d, len(scales) + 1)))
    X_k = 10.0 * basis[:, :1] + basis[:, 1:] @ (np.array(scales)[:, None] * rng.standard_normal((len(scales), n_k)))
    return X_k + noise * rng.standard_normal((d, n_k))


def _svd_reference(X_k):
    U, singular, _ = np.linalg.svd(X_k, full_matrices=False)
    return U, singular ** 2


def _sine(u, v):
    """sin∠(u, v) of unit vectors, as the norm of u's component orthogonal to v (no cancellation)."""
    return float(np.linalg.norm(u - (u @ v) * v))


SHAPES = [(100, 70), (70, 100), (64, 200)]     # n_k < d, n_k > d; min(d, n_k) ≥ alloc._GRAM_MIN


@pytest.mark.parametrize("d, n_k", SHAPES)
def test_gram_spectrum_and_directions_match_the_svd(d, n_k):
    """A full-rank cluster: the Gram's eigenvalues and top eigenvectors are the SVD's within the
    error bound of the Gram route (`alloc._resolution`: forming the Gram plus a backward-stable eigh)."""
    rng = np.random.default_rng(d + n_k)
    X_k = _spread_cluster(rng, d, n_k, [2.0, 1.0, 0.5], noise=0.05)
    U_svd, values = _svd_reference(X_k)
    gram = alloc._gram(X_k)
    assert gram.size == min(d, n_k) and gram.right == (n_k < d)
    spectrum = alloc._spectrum(X_k, 0, gram, n_lambda=0.0)
    bound = alloc._resolution(X_k, spectrum.energy)
    assert values[-1] > bound                                 # every eigenvalue resolved: the Gram route
    assert np.max(np.abs(spectrum.eigenvalues - values)) <= bound
    assert spectrum.energy == pytest.approx(np.sum(values), rel=1e-12)   # trace = Σ Λ, rounding ~ m·ε
    assert not spectrum.rank_one
    for q in (1, 3, 4):
        U, top = alloc._top_eigenpairs(X_k, q, gram)
        assert np.max(np.abs(top - values[:q])) <= bound
        # unit columns up to the rounding of one normalisation
        assert np.allclose(np.linalg.norm(U, axis=0), 1.0, rtol=0, atol=1e-14)
        for j in range(q):
            assert _sine(U[:, j], U_svd[:, j]) <= eigenvector_sine_bound(values, j, bound)


@pytest.mark.parametrize("d, n_k", SHAPES)
def test_gram_route_falls_back_to_the_svd_where_eigenvalues_are_not_resolved(d, n_k, monkeypatch):
    """Rank 1 (copies of one sample) and rank 4 without noise: the zero eigenvalues are only known to
    `alloc._resolution` from the Gram, so any decision on them (rank one, Λ > nλ at λ = 0, Λ_{p_k})
    is taken from the SVD — bit for bit `cluster_spectra`'s; with nλ above the bound the Gram is used."""
    rng = np.random.default_rng(2 * d + n_k)
    copies = np.repeat(rng.standard_normal((d, 1)), n_k, axis=1)
    low_rank = _spread_cluster(rng, d, n_k, [2.0, 1.0, 0.5], noise=0.0)
    for X_k, rank in ((copies, 1), (low_rank, 4)):
        labels = np.zeros(n_k, dtype=int)
        exact = alloc.cluster_spectra(X_k, labels)[0]
        gram = alloc._gram(X_k)
        spectrum = alloc._spectrum(X_k, 0, gram, n_lambda=0.0)
        assert np.array_equal(spectrum.eigenvalues, exact.eigenvalues)
        assert spectrum.rank_one == (rank == 1) == exact.rank_one
        U_svd, values = _svd_reference(X_k)
        U, top = alloc._top_eigenpairs(X_k, rank + 1, gram)       # Λ_{rank+1} = 0: the SVD's
        assert np.array_equal(top, values[:rank + 1]) and np.array_equal(U, U_svd[:, :rank + 1])
        bound = alloc._resolution(X_k, exact.energy)
        U, top = alloc._top_eigenpairs(X_k, rank, gram)           # Λ_rank resolved: the Gram's
        assert np.max(np.abs(top - values[:rank])) <= bound
        for j in range(rank):
            assert _sine(U[:, j], U_svd[:, j]) <= eigenvector_sine_bound(values, j, bound)
        if rank > 1:
            # nλ between the bound and the smallest nonzero Λ: the Gram's spectrum, never an SVD
            n_lambda = 1e-3 * values[rank - 1]
            assert n_lambda > 2 * bound
            with monkeypatch.context() as patch:
                patch.setattr(alloc.np.linalg, "svd", None)
                fast = alloc._spectrum(X_k, 0, gram, n_lambda=n_lambda)
            assert np.max(np.abs(fast.eigenvalues - values)) <= bound and np.all(fast.eigenvalues >= 0)
            gains = alloc.direction_gains(fast, n_k, 0.1, n_lambda / n_k)
            exact_gains = alloc.direction_gains(exact, n_k, 0.1, n_lambda / n_k)
            assert np.array_equal(gains > 0, exact_gains > 0) and np.sum(gains > 0) == rank
            # a gain moves by at most |∂gain/∂Λ| ≤ 2 times the eigenvalue's error
            assert np.max(np.abs(gains - exact_gains)) <= 2 * bound


def test_small_clusters_keep_the_svd():
    """Below alloc._GRAM_MIN (the test suite's and the doctests' clusters) nothing changes."""
    X_k = np.random.default_rng(3).standard_normal((5, alloc._GRAM_MIN + 10))
    assert alloc._gram(X_k) is None
    exact = alloc.cluster_spectra(X_k, np.zeros(X_k.shape[1], dtype=int))[0]
    assert np.array_equal(alloc._spectrum(X_k, 0, None, 0.0).eigenvalues, exact.eigenvalues)
    U, values = alloc._top_eigenpairs(X_k, 2)
    U_svd, values_svd = _svd_reference(X_k)
    assert np.array_equal(U, U_svd[:, :2]) and np.array_equal(values, values_svd[:2])


def test_gram_eigenpairs_failing_the_a_posteriori_check_fall_back_to_the_svd(monkeypatch):
    """Eigenpairs that are not orthonormal (MRRR's rare failure mode) or a LAPACK error: the SVD's."""
    X_k = _spread_cluster(np.random.default_rng(4), 100, 70, [2.0, 1.0, 0.5], noise=0.05)
    U_svd, values = _svd_reference(X_k)
    top = alloc._Gram.top

    def duplicated(self, k):
        found, vectors = top(self, k)
        vectors[:, 1] = vectors[:, 0]
        return found, vectors

    def failing(self, k):
        raise np.linalg.LinAlgError("stemr failed")

    for broken in (duplicated, failing):
        monkeypatch.setattr(alloc._Gram, "top", broken)
        U, found = alloc._top_eigenpairs(X_k, 3)
        assert np.array_equal(U, U_svd[:, :3]) and np.array_equal(found, values[:3])
