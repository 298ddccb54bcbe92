"""The skip's Stein terms, the decay mapping and the gain symmetry: symbolic proofs and Monte Carlo."""
from __future__ import annotations

import numpy as np
from scipy.stats import norm
import sympy as sp
from hypothesis import given, settings, strategies as st

import theory.multinoise as tm
from numerics.gaussian import relu_second_moment


def test_stein_route_gives_the_rectified_second_moment():
    """E[(a)_+ a] = m E[a_+] + s²Φ(m/s) (Stein) equals E[a_+²]; the Stein step by integration."""
    assert tm.cross_moment_gap() == 0
    by_integration = tm.stein_noise_moment_by_integration()
    assert sp.simplify((by_integration - tm.stein_noise_moment()).rewrite(sp.erf)) == 0


def test_noisy_coordinate_moments_and_the_skip_expansion():
    for name, (derived, claimed) in tm.noisy_coordinate_moments().items():
        assert sp.simplify(derived - claimed) == 0, name
    expanded, split = tm.skip_expansion()
    assert sp.simplify(expanded - split) == 0


def test_decay_mapping_and_gain_rescaling():
    assert sp.simplify(tm.decay_mapping() - sp.Symbol("d", positive=True) * sp.Symbol("w_d", positive=True) / 2) == 0
    assert all(expression == 0 for expression in tm.gain_rescaling().values())


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), d=st.integers(1, 5), p=st.integers(1, 4), sigma=st.floats(0.05, 2.0),
       s=st.floats(-1.5, 1.5))
def test_skip_terms_against_monte_carlo(seed, d, p, sigma, s):
    """E[Fᵀy] = Σ_j g_j E[(a_j)_+²], E‖y‖² = ‖x‖² + σ²d and the skip's share of the loss, by sampling.

    The sampled quantity is the difference ‖F + s y − x‖² − ‖F − x‖² (what the skip adds);
    tolerance: 5 standard errors of its mean over 100,000 draws (false alarm ≈ 6e-7).
    """
    rng = np.random.default_rng(seed)
    W, x = rng.normal(size=(d, p)), rng.normal(size=d)
    g = np.exp(0.5 * rng.normal(size=p))
    draws = 100_000
    Y = x[:, None] + sigma * rng.standard_normal((d, draws))
    F = (W * g) @ np.maximum(W.T @ Y, 0.0)
    added = np.sum((F + s * Y - x[:, None]) ** 2, axis=0) - np.sum((F - x[:, None]) ** 2, axis=0)
    gain_energy = float(g @ relu_second_moment(W.T @ x, sigma * np.linalg.norm(W, axis=0)))
    closed = tm.skip_terms_np(float(x @ x), gain_energy, s, sigma, d)
    assert abs(added.mean() - closed) <= 5.0 * added.std(ddof=1) / np.sqrt(draws) + 1e-12
    # the numeric twin of the Stein route, against numerics.gaussian's rectified second moment
    # For z = m/s ≥ −5 numerics.gaussian evaluates the same closed form (below, a continued
    # fraction that avoids the cancellation), so there the two agree to float64 rounding of
    # that form: a few ε times the size of its terms, (m² + s²)Φ(z) + |m| s φ(z), which for
    # negative z exceed their difference. The twin is sympy's, with Φ(z) = (1 + erf(z/√2))/2:
    # the sum 1 + erf carries an absolute error ≈ ε, i.e. ε/2 on Φ, hence the (m² + s²)/2 term.
    means, scales = W.T @ x, sigma * np.linalg.norm(W, axis=0)
    keep = means >= -5.0 * scales
    m, sc = means[keep], scales[keep]
    z = m / sc
    terms = (m ** 2 + sc ** 2) * (norm.cdf(z) + 0.5) + np.abs(m) * sc * norm.pdf(z)
    np.testing.assert_array_less(np.abs(tm.stein_cross_moment_np(m, sc) - relu_second_moment(m, sc)),
                                 8 * np.finfo(float).eps * terms + 1e-300)
