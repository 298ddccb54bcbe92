"""Corollary 3.3: the n → ∞ limit of eq. (8), the per-direction population risk, the printed bound."""
from __future__ import annotations


import numpy as np
import pytest
import sympy as sp

import theory.generalization as gen
from numerics.objective import expected_loss
from theory.predict import block_linear_map, generalization_weights
from theory.symbols import e, lam, rho, sigma


def test_population_limit_of_eq8():
    assert sp.simplify(gen.population_limit() - (e - lam / rho) / (e + sigma ** 2)) == 0


def test_population_risk_per_kept_direction():
    risk = gen.risk_at_limit_scale()
    assert sp.simplify(risk - e * sigma ** 2 / (e + sigma ** 2)) == 0
    assert sp.simplify(gen.risk_bias_part() + gen.risk_noise_part() - risk) == 0
    assert sp.simplify(gen.risk_bias_part() - gen.printed_first_term()) == 0   # printed = bias only
    # the shrinker is the Bayes-optimal linear map of a centred Gaussian direction
    assert sp.simplify(gen.gaussian_mmse_per_direction() - risk) == 0


def test_printed_term_is_strictly_below_the_true_risk():
    gap = gen.printed_gap()
    assert sp.simplify(gap - sigma ** 2 * e ** 2 / (e + sigma ** 2) ** 2) == 0
    assert gap.is_positive


def test_printed_bound_counterexample_numbers():
    """The printed bound's n_k → ∞ value is below a lower bound on every denoiser's test loss."""
    example = gen.printed_bound_counterexample()
    assert example.printed_bound_limit == pytest.approx(9.09 * 0.0625 / 9.34 ** 2, rel=1e-12)
    assert example.bayes_lower_bound == pytest.approx(0.09 * 0.25 / 0.34, rel=1e-12)
    assert example.linear_risk_limit == pytest.approx(9.09 * 0.25 / 9.34, rel=1e-12)
    assert example.printed_bound_limit < example.bayes_lower_bound < example.linear_risk_limit
    assert example.n_threshold == pytest.approx(1.0 / (0.25 * (example.bayes_lower_bound
                                                                - example.printed_bound_limit)))
    assert gen.printed_bound_counterexample(constant=100.0).n_threshold == pytest.approx(100 * example.n_threshold)


def test_printed_bound_fails_for_the_network_at_w_gen():
    """Exact-in-noise test loss of the ReLU-DAE at W_gen (trained from n = 4000 samples) vs the bound.

    The test loss E_x E_ε‖f(x + σε) − x‖² is evaluated with numerics.objective (exact in ε) on
    20,000 fresh samples; its Monte-Carlo standard error over x comes from 20 batches.
    """
    example = gen.printed_bound_counterexample()
    rng = np.random.default_rng(0)
    mean, spread, sig = 3.0, 0.3, example.sigma
    train = [np.array([[sgn * mean]]) + spread * rng.standard_normal((1, 2000)) for sgn in (1, -1)]
    W = generalization_weights(train, [1, 1], sig, 0.0)
    test = np.where(rng.random(20_000) < 0.5, mean, -mean) + spread * rng.standard_normal(20_000)
    batches = [expected_loss(W, W, chunk[None, :], sig, 0.0) for chunk in np.split(test, 20)]
    loss, standard_error = np.mean(batches), np.std(batches, ddof=1) / np.sqrt(len(batches))
    printed = gen.printed_bound([np.array([[mean ** 2 + spread ** 2]])] * 2, (0.5, 0.5), (1, 1), sig,
                                (2000, 2000), (1.0, 1.0))
    assert loss == pytest.approx(example.linear_risk_limit, abs=5 * standard_error + 2e-3)  # + O(1/n_k) finite-n bias
    assert loss > example.bayes_lower_bound > printed


def test_finite_sample_blocks_converge_to_the_population_map():
    """W_{X_k}W_{X_k}ᵀ → [(S_k − (λ/ρ_k)I)(S_k + σ²I)^{-1}]_{p_k} (Cor. 3.3; rate ~ n^{-1/2}, Cor. D.5)."""
    rng = np.random.default_rng(4)
    d, sig, lam_value, weights = 4, 0.3, 1e-3, (0.3, 0.7)
    mus = [np.array([2.0, 0, 0, 0]), np.array([-1.5, 0.5, 0, 0])]
    factors = [np.diag([0.1, 0.4, 0.3, 0.1]), np.diag([0.1, 0.1, 0.2, 0.5])]
    S = [np.outer(mu, mu) + F @ F.T for mu, F in zip(mus, factors)]
    errors = []
    for n_total in (200, 20_000):
        sizes = [int(w * n_total) for w in weights]
        clusters = [mu[:, None] + F @ rng.standard_normal((d, size)) for mu, F, size in zip(mus, factors, sizes)]
        errors.append([np.linalg.norm(block_linear_map(X_k, 2, n_total, sig, lam_value)
                                      - gen.population_block_map(S_k, 2, w, sig, lam_value))
                       for X_k, S_k, w in zip(clusters, S, weights)])
    errors = np.array(errors)
    # 100× more samples: the sampling error shrinks ~10×; ask for 3× to stay robust to the draw
    assert np.all(errors[1] < errors[0] / 3)
    assert np.all(errors[1] < 0.05)


def test_population_map_assumption_errors():
    from theory.errors import AssumptionError
    with pytest.raises(AssumptionError, match=r"λ/ρ_k < e_\{p_k\}.*measured λ/ρ_k = 2, required < 1"):
        gen.population_block_map(np.diag([3.0, 1.0]), 2, 0.5, 0.1, 1.0)
    with pytest.raises(AssumptionError, match=r"p_k <= d.*measured 3, required <= 2"):
        gen.population_block_map(np.diag([3.0, 1.0]), 3, 0.5, 0.1, 0.0)
    with pytest.raises(ValueError, match="symmetric"):
        gen.population_block_map(np.ones((2, 3)), 1, 0.5, 0.1, 0.0)
