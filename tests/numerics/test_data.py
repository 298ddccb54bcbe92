"""Tests for numerics.data: separability by construction, mixtures, duplicates."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from numerics.data import (duplicated_samples, equiangular_means, gaussian_mixture, hybrid_mixture,
                           memorization_set, separability, separable_clusters)

# Constructed (α, β) are exact up to float64 rounding of a few sums and a d×d eigh:
# errors are O(d · 1e-16); 1e-9 leaves a wide margin while still catching any real bug.
EXACT = 1e-9



# ----------------------------------------------------------------------------- Definition 3.1


@st.composite
def cluster_requests(draw):
    M = draw(st.integers(2, 5))
    d = draw(st.integers(M, M + 3))        # β > −1/(M−1) needs M ≤ d
    sizes = draw(st.lists(st.integers(1, 4), min_size=M, max_size=M))
    if max(sizes) == 1:
        sizes[0] = 2
    alpha = draw(st.floats(0.001, 0.499))
    beta = draw(st.floats(-1.0 / (M - 1), -0.01))
    return d, sizes, alpha, beta, draw(st.integers(0, 2**32 - 1))


@settings(max_examples=40, deadline=None)
@given(cluster_requests())
def test_separable_clusters_have_the_requested_alpha_and_beta(request):
    d, sizes, alpha, beta, seed = request
    clusters = separable_clusters(d, sizes, alpha=alpha, beta=beta, norm=2.5, seed=seed)
    measured = separability(clusters.X, clusters.labels)
    assert clusters.X.shape == (d, sum(sizes)) and clusters.X.dtype == np.float64
    assert measured.alpha == pytest.approx(alpha, abs=EXACT)
    assert measured.beta == pytest.approx(beta, abs=EXACT)
    off = ~np.eye(len(sizes), dtype=bool)
    np.testing.assert_allclose(measured.cosines[off], beta, atol=EXACT)   # equiangular
    np.testing.assert_allclose(measured.means, clusters.means, atol=EXACT)  # x̄_k as prescribed
    np.testing.assert_allclose(np.linalg.norm(clusters.means, axis=0), 2.5, rtol=EXACT)
    singletons = np.asarray(sizes) == 1
    np.testing.assert_array_equal(measured.alphas[singletons], 0.0)


@settings(max_examples=20, deadline=None)
@given(st.integers(2, 8), st.integers(0, 3), st.integers(0, 1000))
def test_memorization_set_is_a_simplex_of_singletons(n, extra, seed):
    d = n - 1 + extra                          # the simplex fits whenever n ≤ d + 1
    X = memorization_set(d, n, norm=3.0, seed=seed)
    measured = separability(X, np.arange(n))
    assert measured.alpha == 0.0
    assert measured.beta == pytest.approx(-1.0 / (n - 1), abs=EXACT)
    np.testing.assert_allclose(np.linalg.norm(X, axis=0), 3.0, rtol=EXACT)


def test_memorization_set_with_prescribed_beta_and_norms():
    X = memorization_set(10, 6, norm=np.arange(1.0, 7.0), beta=-0.1, seed=3)
    measured = separability(X, np.arange(6))
    assert measured.alpha == 0.0 and measured.beta == pytest.approx(-0.1, abs=EXACT)
    np.testing.assert_allclose(np.linalg.norm(X, axis=0), np.arange(1.0, 7.0), rtol=EXACT)


def test_singletons_and_single_cluster_conventions():
    clusters = separable_clusters(4, [1, 1, 1], seed=0)
    assert clusters.alpha == 0.0 and clusters.beta == pytest.approx(-0.5)
    one = separable_clusters(3, [5], alpha=0.3, seed=0)
    measured = separability(one.X, one.labels)
    assert measured.beta == -np.inf and one.beta == -np.inf
    assert measured.alpha == pytest.approx(0.3, abs=EXACT)


def test_separability_on_a_hand_example():
    X = np.array([[2.0, 2.0, 0.0, -1.0], [1.0, -1.0, 3.0, 0.0]])
    s = separability(X, [7, 7, 9, 4])
    assert s.clusters.tolist() == [4, 7, 9]
    np.testing.assert_allclose(s.alphas, [0.0, 0.5, 0.0])            # ‖(0, ±1)‖ / ‖(2, 0)‖
    # cluster means (−1, 0), (2, 0), (0, 3): cosines −1, 0, 0 → β = 0
    assert s.alpha == 0.5 and s.beta == 0.0
    assert s.cosines[0, 1] == pytest.approx(-1.0)


def test_infeasible_requests_say_why():
    with pytest.raises(ValueError, match=r"beta must be >= -1/\(M-1\) = -0.5"):
        separable_clusters(5, [2, 2, 2], beta=-0.6)
    with pytest.raises(ValueError, match=r"d \+ 1 = 4"):
        separable_clusters(3, [1] * 5)                  # 5 > d + 1 negatively correlated means
    with pytest.raises(ValueError, match=r"need 4 dimensions but d = 3"):
        separable_clusters(3, [1] * 4, beta=-0.2)       # β above the simplex needs M ≤ d
    separable_clusters(3, [1] * 4)                      # the simplex with M = d + 1 fits
    with pytest.raises(ValueError, match="alpha"):
        separable_clusters(4, [1, 1], alpha=0.1)        # singletons cannot have α > 0
    with pytest.raises(ValueError, match="beta"):
        separable_clusters(4, [1, 1], beta=1.0)


def test_same_seed_same_data():
    a = separable_clusters(6, [3, 2], alpha=0.2, seed=11)
    b = separable_clusters(6, [3, 2], alpha=0.2, seed=11)
    c = separable_clusters(6, [3, 2], alpha=0.2, seed=12)
    np.testing.assert_array_equal(a.X, b.X)
    assert not np.allclose(a.X, c.X)       # another seed: different data, not a tolerance question
    np.testing.assert_array_equal(equiangular_means(5, 3, seed=1), equiangular_means(5, 3, seed=1))


# ----------------------------------------------------------------------------- Gaussian mixtures


def test_mixture_structure_and_counts():
    mix = gaussian_mixture(12, 3, 2, 101, weights=[0.5, 0.3, 0.2], spread=0.2, decay=1.0, seed=0)
    assert mix.X.shape == (12, 101) and mix.labels.shape == (101,)
    assert (mix.d, mix.K, mix.rank) == (12, 3, 2) and mix.factors.shape == (3, 12, 2)
    assert mix.sizes.sum() == 101 and np.all(np.abs(mix.sizes - mix.weights * 101) < 1)
    for k in range(3):
        mu, cov = mix.means[:, k], mix.covariance(k)
        assert np.linalg.matrix_rank(cov) == 2
        # spread is ‖Σ_k^{1/2}‖_F / ‖μ_k‖ = √tr Σ_k / ‖μ_k‖ (Corollary 3.3's α2), exactly
        assert np.sqrt(np.trace(cov)) / np.linalg.norm(mu) == pytest.approx(0.2, rel=EXACT)
        np.testing.assert_allclose(mix.second_moment(k), np.outer(mu, mu) + cov)   # eq. (10)
    assert mix.second_moments().shape == (3, 12, 12)
    cos = separability(mix.means, np.arange(3)).beta
    assert cos == pytest.approx(-0.5, abs=EXACT)                       # simplex means
    multi = gaussian_mixture(12, 3, 2, 101, counts="multinomial", seed=0)
    assert multi.sizes.sum() == 101
    orth = gaussian_mixture(12, 3, 2, 10, means="orthogonal", mean_norm=2.0, seed=0)
    np.testing.assert_allclose(orth.means.T @ orth.means, 4.0 * np.eye(3), atol=EXACT)
    rand = gaussian_mixture(12, 3, 2, 10, means="random", seed=0)
    np.testing.assert_allclose(np.linalg.norm(rand.means, axis=0), 1.0)


def test_mixture_second_moments_match_monte_carlo():
    # Each entry of the sample S_k is a mean of n_k iid products x_a x_b with
    # Var(x_a x_b) = Σ_aa Σ_bb + Σ_ab² + μ_a² Σ_bb + μ_b² Σ_aa + 2 μ_a μ_b Σ_ab (Isserlis);
    # allow 5 standard errors per entry (two-sided p ≈ 6e-7 each, 72 entries).
    mix = gaussian_mixture(6, 2, 2, 40_000, spread=0.5, seed=5)
    for k in range(2):
        Xk, mu, cov = mix.cluster(k), mix.means[:, k], mix.covariance(k)
        var = (np.outer(np.diag(cov), np.diag(cov)) + cov**2 + np.outer(mu**2, np.diag(cov))
               + np.outer(np.diag(cov), mu**2) + 2 * np.outer(mu, mu) * cov)
        standard_error = np.sqrt(var / Xk.shape[1])
        error = np.abs(Xk @ Xk.T / Xk.shape[1] - mix.second_moment(k))
        assert np.all(error <= 5 * standard_error + 1e-12)


def test_mixture_at_paper_scale_is_separable_and_deterministic():
    mix = gaussian_mixture(1024, 5, 4, 10_000, spread=0.1, seed=2)
    assert mix.X.shape == (1024, 10_000) and mix.X.dtype == np.float64
    measured = separability(mix.X, mix.labels)
    assert measured.beta < 0                          # Corollary 3.3: separable w.h.p.
    X_test, labels_test = mix.sample(50, seed=9)
    X_again, _ = mix.sample(50, seed=9)
    assert X_test.shape == (1024, 50) and labels_test.shape == (50,)
    np.testing.assert_array_equal(X_test, X_again)


def test_mixture_same_seed_same_samples():
    a = gaussian_mixture(8, 2, 1, 30, seed=4)
    b = gaussian_mixture(8, 2, 1, 30, seed=4)
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.factors, b.factors)


# ----------------------------------------------------------------------------- duplicates


def test_duplicated_points_become_their_own_clusters():
    mix = gaussian_mixture(8, 2, 1, 20, seed=0)
    points = np.arange(16.0).reshape(8, 2) + 1
    dup = duplicated_samples(mix, n_copies=[4, 3], points=points)
    assert dup.X.shape == (8, 27) and dup.duplicates.tolist() == [2, 3]
    np.testing.assert_array_equal(dup.X[:, :20], mix.X)
    np.testing.assert_array_equal(dup.X[:, dup.labels == 2], np.repeat(points[:, :1], 4, axis=1))
    assert dup.is_duplicate.sum() == 7 and dup.base is mix
    measured = separability(dup.X, dup.labels)
    np.testing.assert_allclose(measured.alphas[2:], 0.0, atol=EXACT)   # duplicates: α_l = 0


def test_duplicated_sources_are_moved_out_of_their_cluster():
    X = np.arange(12.0).reshape(3, 4) + 1
    dup = duplicated_samples(X, labels=[0, 0, 1, 1], n_copies=3, sources=[1])
    assert dup.X.shape == (3, 6)
    assert dup.labels.tolist() == [0, 1, 1, 2, 2, 2]
    np.testing.assert_array_equal(dup.points[:, 0], X[:, 1])
    random_sources = duplicated_samples(X, labels=[0, 0, 1, 1], n_copies=[2, 2], seed=1)
    assert random_sources.X.shape == (3, 6) and random_sources.duplicates.tolist() == [2, 3]


def test_hybrid_mixture_is_separable():
    hybrid = hybrid_mixture(32, 3, 2, 2, 300, n_copies=[10, 20], spread=0.05, seed=0)
    measured = separability(hybrid.X, hybrid.labels)
    assert hybrid.X.shape == (32, 330) and hybrid.duplicates.tolist() == [3, 4]
    assert measured.beta < 0
    np.testing.assert_allclose(measured.alphas[3:], 0.0, atol=EXACT)   # rounding of the mean


# ----------------------------------------------------------------------------- input validation


def test_validation_errors_name_the_argument():
    with pytest.raises(ValueError, match="d must be"):
        separable_clusters(0, [2])
    with pytest.raises(ValueError, match="alpha"):
        separable_clusters(3, [2], alpha=-0.1)
    with pytest.raises(ValueError, match="alpha"):
        separable_clusters(3, [2], alpha=np.nan)
    with pytest.raises(ValueError, match="sizes"):
        separable_clusters(3, [])
    with pytest.raises(ValueError, match="sizes"):
        separable_clusters(3, [2, 0])
    with pytest.raises(ValueError, match="norm"):
        separable_clusters(3, [2, 2], norm=[1.0, -1.0])
    with pytest.raises(ValueError, match="labels"):
        separability(np.ones((3, 4)), [0, 1, 1])
    with pytest.raises(ValueError, match="X must contain only finite"):
        separability(np.array([[1.0, np.nan]]), [0, 1])
    with pytest.raises(ValueError, match="zero mean"):
        separability(np.array([[1.0, -1.0]]), [0, 0])
    with pytest.raises(ValueError, match="weights"):
        gaussian_mixture(4, 2, 1, 10, weights=[0.5, 0.6])
    with pytest.raises(ValueError, match="weights"):
        gaussian_mixture(4, 2, 1, 10, weights=[0.5, 0.3, 0.2])
    with pytest.raises(ValueError, match="rank"):
        gaussian_mixture(4, 2, 5, 10)
    with pytest.raises(ValueError, match="spread"):
        gaussian_mixture(4, 2, 1, 10, spread=-1)
    with pytest.raises(ValueError, match="means"):
        gaussian_mixture(4, 2, 1, 10, means=np.ones((3, 2)))
    with pytest.raises(ValueError, match="means"):
        gaussian_mixture(4, 2, 1, 10, means="spherical")
    with pytest.raises(ValueError, match="counts"):
        gaussian_mixture(4, 2, 1, 10, counts="poisson")
    with pytest.raises(ValueError, match="labels"):
        duplicated_samples(np.ones((3, 4)), n_copies=2)
    with pytest.raises(ValueError, match="points"):
        duplicated_samples(np.ones((3, 4)), [0, 0, 1, 1], points=np.ones((2, 1)))
    with pytest.raises(ValueError, match="sources"):
        duplicated_samples(np.ones((3, 4)), [0, 0, 1, 1], sources=[7])
    with pytest.raises(ValueError, match="n_copies"):
        duplicated_samples(np.ones((3, 4)), [0, 0, 1, 1], n_copies=[1, 2], sources=[0])
    with pytest.raises(ValueError, match="n_copies"):
        duplicated_samples(np.ones((3, 4)), [0, 0, 1, 1], n_copies=0, sources=[0])
    with pytest.raises(TypeError, match="beta"):
        equiangular_means(4, 3, beta="-0.5")
    with pytest.raises(TypeError, match="seed"):
        memorization_set(4, 3, seed="a")
