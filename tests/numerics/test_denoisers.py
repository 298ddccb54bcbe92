"""Tests for numerics.denoisers: each denoiser against an independent computation."""
from __future__ import annotations


import numpy as np
import pytest
from scipy.stats import multivariate_normal

from numerics.data import gaussian_mixture
from numerics.denoisers import f_emp, f_gt, second_moment, wiener_denoiser, wiener_matrix

# Oracle comparisons of two exact float64 computations of the same formula on O(1) data:
# differences are rounding, a few ulps times the condition number (< 1e3 here); 1e-9.
EXACT = 1e-9



def random_psd(rng, d, rank):
    F = rng.standard_normal((d, rank)) / np.sqrt(d)
    return F @ F.T, F


# ----------------------------------------------------------------------------- f_emp (eq. 3)


def test_f_emp_with_one_sample_returns_it():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 1))
    Y = 100 * rng.standard_normal((4, 6))
    for sigma in (0.0, 1e-3, 1.0, 1e3):
        np.testing.assert_array_equal(f_emp(Y, x, sigma), np.repeat(x, 6, axis=1))


def test_f_emp_matches_the_direct_formula_at_large_sigma():
    # At σ = 3 the Gaussian densities are O(1e-2): the ratio of eq. (3) is safe without logs.
    rng = np.random.default_rng(1)
    X, Y, sigma = rng.standard_normal((3, 5)), rng.standard_normal((3, 4)), 3.0
    direct = np.empty_like(Y)
    for j in range(Y.shape[1]):
        densities = np.array([multivariate_normal(X[:, i], sigma**2 * np.eye(3)).pdf(Y[:, j])
                              for i in range(X.shape[1])])
        direct[:, j] = X @ densities / densities.sum()
    np.testing.assert_allclose(f_emp(Y, X, sigma), direct, rtol=EXACT, atol=EXACT)


def nearest_error_bound(X, Y, sigma):
    """‖f_emp(y) − x_nn‖ ≤ Σ_{i≠nn} exp(−(‖y−x_i‖² − ‖y−x_nn‖²)/(2σ²)) ‖x_i − x_nn‖ (eq. 3)."""
    sq = ((X[:, :, None] - Y[:, None, :]) ** 2).sum(axis=0)
    nn = sq.argmin(axis=0)
    gaps = sq - sq[nn, np.arange(Y.shape[1])]
    lengths = np.linalg.norm(X[:, :, None] - X[:, nn][:, None, :], axis=0)
    return X[:, nn], (np.exp(-gaps / (2 * sigma**2)) * lengths).sum(axis=0)


def test_f_emp_approaches_the_nearest_sample_as_sigma_goes_to_zero():
    rng = np.random.default_rng(2)
    X, Y = rng.standard_normal((5, 10)), rng.standard_normal((5, 20))
    errors = []
    for sigma in (0.3, 0.1, 0.03, 0.01):
        nearest, bound = nearest_error_bound(X, Y, sigma)
        error = np.linalg.norm(f_emp(Y, X, sigma) - nearest, axis=0)
        assert np.all(error <= bound * (1 + 1e-9) + 1e-12)
        errors.append(error.max())
    assert errors == sorted(errors, reverse=True) and errors[-1] < 1e-6
    np.testing.assert_array_equal(f_emp(Y, X, 0.0), nearest)              # σ = 0: the limit


def test_f_emp_is_finite_at_tiny_sigma_in_high_dimension():
    rng = np.random.default_rng(3)
    d, sigma = 1024, 1e-3
    X = rng.standard_normal((d, 30))
    near = X[:, :10] + sigma * rng.standard_normal((d, 10))               # noisy training samples
    far = 50 * rng.standard_normal((d, 5))                                 # all densities underflow
    Y = np.hstack([near, far])
    out = f_emp(Y, X, sigma)
    assert np.all(np.isfinite(out))
    nearest, bound = nearest_error_bound(X, Y, sigma)
    np.testing.assert_allclose(out, nearest, atol=bound.max() + 1e-12)
    np.testing.assert_allclose(out[:, :10], X[:, :10], atol=1e-12)


# ----------------------------------------------------------------------------- f_gt


def test_f_gt_of_one_gaussian_is_the_gaussian_posterior_mean():
    rng = np.random.default_rng(4)
    d, sigma = 6, 0.4
    mu = rng.standard_normal((d, 1))
    for rank in (2, d):
        cov, F = random_psd(rng, d, rank)
        Y = rng.standard_normal((d, 7))
        oracle = mu + cov @ np.linalg.solve(cov + sigma**2 * np.eye(d), Y - mu)
        np.testing.assert_allclose(f_gt(Y, mu, cov[None], [1.0], sigma), oracle, atol=EXACT)
        np.testing.assert_allclose(f_gt(Y, mu, F[None], [1.0], sigma, factored=True), oracle,
                                   atol=EXACT)


def test_f_gt_of_a_mixture_matches_direct_bayes_rule():
    # Direct (non-log) Bayes rule with scipy densities is safe at σ = 0.5 in d = 4.
    rng = np.random.default_rng(5)
    d, K, sigma = 4, 3, 0.5
    means = rng.standard_normal((d, K))
    pairs = [random_psd(rng, d, 2) for _ in range(K)]
    covs, factors = np.stack([c for c, _ in pairs]), np.stack([f for _, f in pairs])
    weights = np.array([0.2, 0.5, 0.3])
    Y = rng.standard_normal((d, 8))
    oracle = np.empty_like(Y)
    for j in range(Y.shape[1]):
        y = Y[:, j]
        C = [covs[k] + sigma**2 * np.eye(d) for k in range(K)]
        joint = np.array([weights[k] * multivariate_normal(means[:, k], C[k]).pdf(y) for k in range(K)])
        posts = [means[:, k] + covs[k] @ np.linalg.solve(C[k], y - means[:, k]) for k in range(K)]
        oracle[:, j] = sum(joint[k] * posts[k] for k in range(K)) / joint.sum()
    np.testing.assert_allclose(f_gt(Y, means, covs, weights, sigma), oracle, atol=EXACT)
    np.testing.assert_allclose(f_gt(Y, means, factors, weights, sigma, factored=True), oracle,
                               atol=EXACT)
    # a component of weight 0 changes nothing
    padded = f_gt(Y, np.hstack([means, np.ones((d, 1))]), np.vstack([covs, np.eye(d)[None]]),
                  np.append(weights, 0.0), sigma)
    np.testing.assert_allclose(padded, oracle, atol=EXACT)


def test_f_gt_residual_is_orthogonal_to_the_observation_monte_carlo():
    # The posterior mean satisfies E[(x − f_gt(y)) yᵀ] = 0. Each entry is a mean of N iid
    # products; allow 5 standard errors (sample std / √N) per entry.
    mix = gaussian_mixture(3, 2, 2, 20_000, spread=0.5, seed=6)
    sigma = 0.3
    noisy = mix.X + sigma * np.random.default_rng(7).standard_normal(mix.X.shape)
    residual = mix.X - f_gt(noisy, mix.means, mix.factors, mix.weights, sigma, factored=True)
    products = residual[:, None, :] * noisy[None, :, :]                   # (d, d, N)
    standard_error = products.std(axis=2) / np.sqrt(products.shape[2])
    assert np.all(np.abs(products.mean(axis=2)) <= 5 * standard_error)


def test_f_gt_at_paper_scale_is_finite():
    mix = gaussian_mixture(1024, 4, 8, 200, spread=0.1, seed=8)
    out = f_gt(mix.X[:, :20] + 1e-3, mix.means, mix.factors, mix.weights, 1e-3, factored=True)
    assert out.shape == (1024, 20) and np.all(np.isfinite(out))


# ----------------------------------------------------------------------------- Wiener


def test_full_rank_wiener_is_s_times_inverse_of_s_plus_sigma2():
    rng = np.random.default_rng(9)
    d, sigma = 5, 0.7
    S = second_moment(rng.standard_normal((d, 40)))
    oracle = np.linalg.solve(S + sigma**2 * np.eye(d), S)   # = S (S + σ²I)^{-1}: they commute
    np.testing.assert_allclose(wiener_matrix(S, d, sigma), oracle, atol=EXACT)
    Y = rng.standard_normal((d, 3))
    np.testing.assert_allclose(wiener_denoiser(Y, S, d, sigma), oracle @ Y, atol=EXACT)


def test_rank_p_wiener_is_the_truncated_svd_of_the_full_one_and_is_optimal():
    rng = np.random.default_rng(10)
    d, p, sigma = 6, 2, 0.5
    S = second_moment(rng.standard_normal((d, 30)) + 2.0)
    U, s, Vt = np.linalg.svd(np.linalg.solve(S + sigma**2 * np.eye(d), S))
    oracle = (U[:, :p] * s[:p]) @ Vt[:p]
    W = wiener_matrix(S, p, sigma)
    np.testing.assert_allclose(W, oracle, atol=EXACT)
    assert np.linalg.matrix_rank(W) == p

    def risk(M):   # E‖M(x + σε) − x‖² with E[xxᵀ] = S
        return np.trace(M @ S @ M.T) - 2 * np.trace(M @ S) + np.trace(S) + sigma**2 * np.sum(M**2)

    e, V = np.linalg.eigh(S)
    e, V = e[::-1], V[:, ::-1]
    # docs/theory.md §3 (derived): per kept direction e_j σ²/(e_j + σ²), dropped ones cost e_j
    assert risk(W) == pytest.approx(np.sum(e[:p] * sigma**2 / (e[:p] + sigma**2)) + e[p:].sum())
    gains = e[:p] / (e[:p] + sigma**2)
    for _ in range(20):   # nearby rank-p maps A Bᵀ never do better
        A = V[:, :p] + 0.05 * rng.standard_normal((d, p))
        B = V[:, :p] * gains + 0.05 * rng.standard_normal((d, p))
        assert risk(A @ B.T) >= risk(W) - 1e-12


def test_wiener_at_zero_noise_is_the_top_p_projector():
    S = np.diag([3.0, 2.0, 1.0, 0.0])
    np.testing.assert_allclose(wiener_matrix(S, 2, 0.0), np.diag([1.0, 1.0, 0.0, 0.0]))
    np.testing.assert_allclose(wiener_matrix(S, 4, 0.0), np.diag([1.0, 1.0, 1.0, 0.0]))


# ----------------------------------------------------------------------------- input validation


def test_validation_errors_name_the_argument():
    X, Y = np.ones((3, 4)), np.ones((3, 2))
    with pytest.raises(ValueError, match="Y must have shape \\(d, m\\) with samples as columns and d = 3"):
        f_emp(np.ones((4, 2)), X, 1.0)
    with pytest.raises(ValueError, match="X must contain only finite"):
        f_emp(Y, np.array([[np.nan], [0.0], [0.0]]), 1.0)
    with pytest.raises(ValueError, match="Y must contain only finite"):
        f_emp(np.full((3, 1), np.inf), X, 1.0)
    with pytest.raises(ValueError, match="sigma"):
        f_emp(Y, X, -0.1)
    with pytest.raises(ValueError, match="X must be a 2-D"):
        f_emp(Y, np.ones(3), 1.0)
    means, covs = np.zeros((3, 2)), np.stack([np.eye(3)] * 2)
    with pytest.raises(ValueError, match="sigma"):
        f_gt(Y, means, covs, [0.5, 0.5], 0.0)
    with pytest.raises(ValueError, match="covariances must have shape"):
        f_gt(Y, means, np.ones((2, 3, 1)), [0.5, 0.5], 1.0)          # factors without factored
    with pytest.raises(ValueError, match="covariances must be symmetric"):
        f_gt(Y, means, covs + np.triu(np.ones((3, 3)), 1), [0.5, 0.5], 1.0)
    with pytest.raises(ValueError, match=r"covariances\[0\]"):
        f_gt(Y, means, np.stack([-5 * np.eye(3), np.eye(3)]), [0.5, 0.5], 1.0)
    with pytest.raises(ValueError, match="weights"):
        f_gt(Y, means, covs, [0.5, 0.4], 1.0)
    with pytest.raises(ValueError, match="weights"):
        f_gt(Y, means, covs, [1.5, -0.5], 1.0)
    with pytest.raises(ValueError, match="means must contain only finite"):
        f_gt(Y, np.full((3, 2), np.nan), covs, [0.5, 0.5], 1.0)
    with pytest.raises(ValueError, match="Y must have shape \\(d, m\\) with samples as columns and d = 3"):
        f_gt(np.ones((2, 1)), means, covs, [0.5, 0.5], 1.0)
    S = np.eye(3)
    with pytest.raises(ValueError, match="p must be"):
        wiener_matrix(S, 0, 1.0)
    with pytest.raises(ValueError, match="p must be <= d"):
        wiener_matrix(S, 4, 1.0)
    with pytest.raises(ValueError, match="sigma"):
        wiener_matrix(S, 1, np.inf)
    with pytest.raises(ValueError, match="S must be a square"):
        wiener_matrix(np.ones((3, 5)), 1, 1.0)
    with pytest.raises(ValueError, match="S must be symmetric"):
        wiener_matrix(np.triu(np.ones((3, 3))), 1, 1.0)
    with pytest.raises(ValueError, match="Y must have shape \\(d, m\\) with samples as columns and d = 3"):
        wiener_denoiser(np.ones((2, 1)), S, 1, 1.0)
