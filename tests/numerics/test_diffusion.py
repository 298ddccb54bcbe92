"""Tests for numerics.diffusion: samplers against exact Gaussian oracles, neighbours against brute force.

The samplers are checked on Gaussian data with the exact (affine) denoiser, where the law of
the sampler's output is Gaussian and computable exactly by propagating mean and covariance
through the same recursion (Euler–Maruyama) or the same linear maps (Heun). Three statements:
the Monte-Carlo moments match that oracle (the implementation is the recursion), the oracle
matches the data (discretisation and the N(0, σ_max²I) start cost less than the Monte-Carlo
error at the step counts used), and so the Monte-Carlo moments match the data.
"""
from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from hypothesis import given, strategies as st

from numerics.data import gaussian_mixture, memorization_set
from numerics.denoisers import f_gt
from numerics.diffusion import (Trajectory, heun_sample, memorization_ratio, memorization_report,
                                nearest_neighbours, shifted, sigma_grid, ve_sample)
from theory.diffusion import generalizing_denoiser, memorizing_denoiser

# Monte-Carlo comparisons: |estimate − expected| ≤ 4.5 standard errors. Per entry the
# two-sided Gaussian tail is 7e-6; a test makes at most 18 such comparisons (family 1e-4).
Z = 4.5


# ----------------------------------------------------------------------------- Gaussian oracle


def gaussian_case(d=3, seed=0):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((d, d))
    Sigma = A @ A.T / d + 0.1 * np.eye(d)
    mu = np.array([0.5, -0.3, 0.2])[:d]

    def denoiser(Y, sigma):
        return f_gt(Y, mu[:, None], Sigma[None], [1.0], sigma)

    return mu, Sigma, denoiser


def affine_parts(denoiser, d, sigma):
    """(M, b) with f(y) = M y + b, read off the denoiser itself at y = 0 and y = e_j."""
    b = denoiser(np.zeros((d, 1)), sigma)[:, 0]
    M = denoiser(np.eye(d), sigma) - b[:, None]
    return M, b


def ve_moments(denoiser, d, steps, sigma_max, sigma_min):
    """Exact mean and covariance of `ve_sample`'s output for an affine denoiser (same recursion, no sampling)."""
    sigmas = sigma_grid(steps, sigma_max, sigma_min)
    mean, cov = np.zeros(d), sigma_max ** 2 * np.eye(d)
    for sigma, following in zip(sigmas[:-1], sigmas[1:]):
        M, b = affine_parts(denoiser, d, sigma)
        delta = sigma ** 2 - following ** 2
        step = np.eye(d) + delta / sigma ** 2 * (M - np.eye(d))
        mean = step @ mean + delta / sigma ** 2 * b
        cov = step @ cov @ step.T + (delta * np.eye(d) if following > 0 else 0.0)
    return mean, cov


def heun_moments(denoiser, d, steps, sigma_max, sigma_min):
    """Exact mean and covariance of `heun_sample`'s output: x = T x₀ + c with x₀ ~ N(0, σ_max² I)."""
    sigmas = sigma_grid(steps, sigma_max, sigma_min)
    T, c = np.eye(d), np.zeros(d)
    for sigma, following in zip(sigmas[:-1], sigmas[1:]):
        M, b = affine_parts(denoiser, d, sigma)
        S, s = (np.eye(d) - M) / sigma, -b / sigma                   # slope (x − f(x))/σ = S x + s
        T_euler, c_euler = T + (following - sigma) * S @ T, c + (following - sigma) * (S @ c + s)
        if following > 0:
            M2, b2 = affine_parts(denoiser, d, following)
            S2, s2 = (np.eye(d) - M2) / following, -b2 / following
            T, c = (T + (following - sigma) * 0.5 * (S @ T + S2 @ T_euler),
                    c + (following - sigma) * 0.5 * (S @ c + s + S2 @ c_euler + s2))
        else:
            T, c = T_euler, c_euler
    return c, sigma_max ** 2 * T @ T.T


def standard_errors(cov, m):
    """Of a sample mean, ‖Σ^{1/2}e_j‖/√m = √(Σ_jj/m); of a covariance entry (Wishart) √((Σ_jjΣ_kk + Σ_jk²)/m)."""
    diagonal = np.diag(cov)
    return np.sqrt(diagonal / m), np.sqrt((np.outer(diagonal, diagonal) + cov ** 2) / m)


# σ_max = 100 makes the start N(0, σ_max² I) close to p_σmax = N(μ, Σ + σ_max² I); Euler–Maruyama
# is first order in the step (its covariance bias falls like 1/steps: 2000 steps give 0.25 SE at
# m = 4000), Heun second order (200 steps suffice). Asserted below from the exact oracle.
SAMPLERS = [(ve_sample, ve_moments, 2000), (heun_sample, heun_moments, 200)]
M_SAMPLES, SIGMA_MAX, SIGMA_MIN = 4000, 100.0, 0.002


@pytest.mark.slow          # 15–90 s per sampler on two shared cores
@pytest.mark.parametrize("sampler, oracle, steps", SAMPLERS, ids=["ve", "heun"])
def test_gaussian_data_mean_and_covariance(sampler, oracle, steps):
    mu, Sigma, denoiser = gaussian_case()
    d = mu.size
    exact_mean, exact_cov = oracle(denoiser, d, steps, SIGMA_MAX, SIGMA_MIN)
    se_mean, se_cov = standard_errors(Sigma, M_SAMPLES)
    # 1. discretisation and the N(0, σ_max² I) start cost less than half a standard error
    assert np.all(np.abs(exact_mean - mu) < 0.5 * se_mean), (exact_mean - mu) / se_mean
    assert np.all(np.abs(exact_cov - Sigma) < 0.5 * se_cov), (exact_cov - Sigma) / se_cov
    samples = sampler(denoiser, d, M_SAMPLES, steps=steps, sigma_max=SIGMA_MAX, sigma_min=SIGMA_MIN, seed=3)
    mean, cov = samples.mean(axis=1), np.cov(samples)
    # 2. the sampler's moments equal the oracle's (its own law) and 3. the data's, within Z SE
    for target_mean, target_cov in ((exact_mean, exact_cov), (mu, Sigma)):
        assert np.all(np.abs(mean - target_mean) < Z * se_mean), (mean - target_mean) / se_mean
        assert np.all(np.abs(cov - target_cov) < Z * se_cov), (cov - target_cov) / se_cov


def test_heun_is_second_order():
    """Against the exact probability-flow map z(σ) ∝ √(e + σ²) per eigendirection of Σ (then the last
    Euler step to 0, f(x, σ_min)): halving the step divides the error by ≈ 4."""
    mu, Sigma, denoiser = gaussian_case()
    e, U = np.linalg.eigh(Sigma)
    sigma_max, sigma_min = 2.0, 0.02
    start = sigma_max * np.random.default_rng(5).standard_normal((3, 8))      # heun_sample's start for seed=5
    z = U.T @ (start - mu[:, None])
    z = z * np.sqrt((e + sigma_min ** 2) / (e + sigma_max ** 2))[:, None] * (e / (e + sigma_min ** 2))[:, None]
    exact = mu[:, None] + U @ z
    errors = []
    for steps in (20, 40, 80):
        out = heun_sample(denoiser, 3, 8, steps=steps, sigma_max=sigma_max, sigma_min=sigma_min, seed=5)
        errors.append(np.abs(out - exact).max())
    ratios = np.array(errors[:-1]) / np.array(errors[1:])
    assert np.all((ratios > 3.5) & (ratios < 4.5)), (errors, ratios)


# ----------------------------------------------------------------------------- sampler mechanics


def test_trajectory_records_every_step_and_ends_on_the_sample():
    _, _, denoiser = gaussian_case()
    for sampler in (ve_sample, heun_sample):
        samples, path = sampler(denoiser, 3, 5, steps=7, seed=1, record=True)
        assert isinstance(path, Trajectory)
        assert path.sigmas.shape == (8,) and path.states.shape == (8, 3, 5) and path.denoised.shape == (7, 3, 5)
        np.testing.assert_array_equal(path.states[-1], samples)
        # both samplers' last step returns f(x, σ_min) (VE: δ = σ_min²; Heun: Euler to σ = 0)
        np.testing.assert_allclose(samples, path.denoised[-1], rtol=1e-12, atol=1e-12)
        sigmas, states = path.snapshots(3)
        assert sigmas.tolist() == [path.sigmas[0], path.sigmas[4], 0.0] and states.shape == (3, 3, 5)


def test_same_seed_same_samples_and_clamp():
    _, _, denoiser = gaussian_case()
    a = ve_sample(denoiser, 3, 6, steps=10, seed=11)
    np.testing.assert_array_equal(a, ve_sample(denoiser, 3, 6, steps=10, seed=11))
    assert not np.array_equal(a, ve_sample(denoiser, 3, 6, steps=10, seed=12))
    clamped = ve_sample(denoiser, 3, 200, steps=10, seed=11, clamp=(-0.1, 0.1))
    assert clamped.min() >= -0.1 and clamped.max() <= 0.1


def test_shifted_moves_the_denoiser():
    offset = np.array([1.0, -2.0])
    f = shifted(lambda Y, s: 0.5 * Y, offset)
    Y = np.array([[3.0], [0.0]])
    np.testing.assert_allclose(f(Y, 1.0), offset[:, None] + 0.5 * (Y - offset[:, None]))


# ----------------------------------------------------------------------------- acceptance numbers


def test_memorising_theory_denoiser_returns_training_directions():
    """256 draws, n = 5, d = 64 (norm √d/2: pixel RMS 1/2): ≥ 95 % copies by direction (measured 97.7 %).

    The ℓ2 rule finds far fewer (46 %): eq. (9) is positively homogeneous, the norm is free.
    """
    X = memorization_set(64, 5, norm=4.0, seed=0)
    samples = ve_sample(memorizing_denoiser(X, 5), 64, 256, seed=0)
    cosine = memorization_ratio(samples, X, metric="cosine")
    assert cosine >= 0.95
    assert memorization_ratio(samples, X) < cosine


def test_generalising_theory_denoiser_makes_new_samples():
    """K = 3 mixture, n = 2001: at most 5 % ℓ2 copies. Blocks of rank 5 (mean + 4 spread directions):
    by chance the 1/3 rule fires on ≈ 3^−5 = 0.4 % of samples of a smooth 5-dimensional density."""
    mix = gaussian_mixture(64, 3, 4, 2001, mean_norm=4.0, spread=0.3, seed=0)
    denoiser = generalizing_denoiser(mix.X, mix.labels, [5, 5, 5], 0.0)
    samples = ve_sample(denoiser, 64, 256, seed=0)
    assert memorization_ratio(samples, mix.X) <= 0.05


# ----------------------------------------------------------------------------- nearest neighbours


def brute_force(samples, X, metric):
    if metric == "cosine":
        X = X / np.linalg.norm(X, axis=0)
        norms = np.linalg.norm(samples, axis=0)
        samples = samples / np.where(norms > 0, norms, 1.0)
    return np.linalg.norm(samples[:, None, :] - X[:, :, None], axis=0)        # (n, m)


@given(d=st.integers(1, 6), n=st.integers(1, 40), m=st.integers(1, 12), k=st.integers(1, 5),
       chunk=st.integers(1, 50), metric=st.sampled_from(["l2", "cosine"]), seed=st.integers(0, 2 ** 31 - 1),
       scale=st.sampled_from([1e-3, 1.0, 1e3]))
def test_nearest_neighbours_matches_brute_force(d, n, m, k, chunk, metric, seed, scale):
    rng = np.random.default_rng(seed)
    X, samples = scale * rng.standard_normal((d, n)), scale * rng.standard_normal((d, m))
    k = min(k, n)
    nn = nearest_neighbours(samples, X, metric=metric, k=k, chunk=chunk)
    full = brute_force(samples, X, metric)
    expected = np.sort(full, axis=0)[:k]
    # both sides compute ‖y − x‖ from the difference: agreement to float64 rounding of a norm
    tolerance = 1e-13 * (expected.max() + (1.0 if metric == "cosine" else scale))
    np.testing.assert_allclose(nn.distances, expected, rtol=0, atol=tolerance)
    np.testing.assert_allclose(np.take_along_axis(full, nn.indices, axis=0), nn.distances, rtol=0, atol=tolerance)
    assert np.all(np.diff(nn.distances, axis=0) >= 0)


@given(seed=st.integers(0, 2 ** 31 - 1), chunk=st.integers(1, 64))
def test_nearest_neighbours_chunking_is_invisible(seed, chunk):
    rng = np.random.default_rng(seed)
    X, samples = rng.standard_normal((5, 64)), rng.standard_normal((5, 9))
    whole = nearest_neighbours(samples, X, k=3, chunk=64)
    part = nearest_neighbours(samples, X, k=3, chunk=chunk)
    np.testing.assert_array_equal(part.indices, whole.indices)
    np.testing.assert_array_equal(part.distances, whole.distances)


def test_nearest_neighbours_temporaries_stay_small():
    """n = 10⁵ training samples × 10³ samples: the (n, m) distance matrix would take 763 MiB;
    the chunked scan stays within the 64 MiB budget × a few temporaries (< 256 MiB peak)."""
    rng = np.random.default_rng(0)
    X, samples = rng.standard_normal((8, 100_000)), rng.standard_normal((8, 1000))
    tracemalloc.start()
    try:
        nn = nearest_neighbours(samples, X, k=2)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 256 * 2 ** 20, peak / 2 ** 20
    spot = rng.choice(1000, 5, replace=False)
    expected = np.sort(np.linalg.norm(X[:, :, None] - samples[:, None, spot], axis=0), axis=0)[:2]
    np.testing.assert_allclose(nn.distances[:, spot], expected, rtol=1e-12)


# ----------------------------------------------------------------------------- the 1/3 rule


def test_memorisation_rule_edge_cases():
    X = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])[:, :2]
    # a zero sample has no direction: at chordal distance 1 from every training direction, never a copy
    report = memorization_report(np.array([[0.0, 5.0], [0.0, 0.0]]), X, metric="cosine")
    assert report.memorized.tolist() == [False, True] and report.first[0] == pytest.approx(1.0)
    # duplicated training samples: both distances 0 on them, and 0 < 0 fails
    dup = np.array([[1.0, 1.0, -1.0], [0.0, 0.0, 0.0]])
    assert memorization_report(np.array([[1.0], [0.0]]), dup).memorized.tolist() == [False]
    # (0.8, 0): distances 0.2 and √1.64 = 1.28, ratio 0.156 — a copy at 1/3 and at 1, not at 0.1
    sample = np.array([[0.8], [0.0]])
    assert [memorization_ratio(sample, X, threshold=t) for t in (1.0, 1 / 3, 0.1)] == [1.0, 1.0, 0.0]


# ----------------------------------------------------------------------------- bad input


def test_bad_inputs_are_named():
    _, _, denoiser = gaussian_case()
    with pytest.raises(TypeError, match="denoiser"):
        ve_sample("not callable", 3, 2)
    for kwargs, word in [(dict(d=0), "d"), (dict(n_samples=0), "n_samples"), (dict(steps=1), "steps"),
                         (dict(sigma_min=0.0), "sigma_min"), (dict(sigma_min=3.0), "sigma_min"),
                         (dict(sigma_max=-1.0), "sigma_max"), (dict(clamp=(1.0, -1.0)), "clamp"),
                         (dict(clamp="pixels"), "clamp")]:
        for sampler in (ve_sample, heun_sample):
            with pytest.raises(ValueError, match=word):
                sampler(denoiser, **(dict(d=3, n_samples=2) | kwargs))
    with pytest.raises(ValueError, match="shape"):
        ve_sample(lambda Y, s: Y[:2], 3, 2, steps=3)
    with pytest.raises(ValueError, match="NaN"):
        heun_sample(lambda Y, s: Y * np.nan, 3, 2, steps=3)
    X = np.eye(3)
    with pytest.raises(ValueError, match="samples"):
        nearest_neighbours(np.ones((2, 4)), X)
    with pytest.raises(ValueError, match="k"):
        nearest_neighbours(np.ones((3, 4)), X, k=4)
    with pytest.raises(ValueError, match="metric"):
        nearest_neighbours(np.ones((3, 4)), X, metric="manhattan")
    with pytest.raises(ValueError, match="zero column"):
        nearest_neighbours(np.ones((3, 4)), np.zeros((3, 2)), metric="cosine")
    with pytest.raises(ValueError, match="finite"):
        nearest_neighbours(np.full((3, 1), np.inf), X)
    for threshold in (0.0, -0.5, 1.5):
        with pytest.raises(ValueError, match="threshold"):
            memorization_ratio(np.ones((3, 1)), X, threshold=threshold)
    with pytest.raises(ValueError, match="n >= 2"):
        memorization_ratio(np.ones((3, 1)), X[:, :1])
