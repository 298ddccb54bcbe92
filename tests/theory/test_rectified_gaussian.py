"""Rectified-Gaussian moments: symbolic integrals, Price identities, Monte Carlo and cross-implementation checks."""
from __future__ import annotations


import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings, strategies as st
from scipy.stats import multivariate_normal

import theory.rectified_gaussian as rg
from numerics import gaussian


def test_one_neuron_moments_by_integration():
    """∫_0^∞ t N(t; m, s²) dt and ∫_0^∞ t² N(t; m, s²) dt equal docs/theory.md §2's closed forms."""
    assert sp.simplify((rg.relu_mean_by_integration() - rg.relu_mean()).rewrite(sp.erf)) == 0
    assert sp.simplify((rg.relu_second_moment_by_integration()
                        - rg.relu_second_moment()).rewrite(sp.erf)) == 0


@pytest.mark.parametrize("name", sorted(rg.one_neuron_identities()))
def test_one_neuron_price_identities(name):
    derivative, claimed = rg.one_neuron_identities()[name]
    assert sp.simplify((derivative - claimed).rewrite(sp.erf)) == 0


@settings(max_examples=20, deadline=None)
@given(z=st.floats(-3, 3), s=st.floats(0.2, 3), seed=st.integers(0, 2 ** 32 - 1))
def test_one_neuron_moments_against_monte_carlo(z, s, seed):
    # z = m/s ≥ −3 keeps ≥ 0.1% of the draws positive, so the empirical standard error is reliable
    m = z * s
    draws = m + s * np.random.default_rng(seed).standard_normal(200_000)
    for closed, values in ((rg.relu_mean_np(m, s), np.maximum(draws, 0)),
                           (rg.relu_second_moment_np(m, s), np.maximum(draws, 0) ** 2)):
        # 5 Monte-Carlo standard errors (false-alarm rate ~6e-7 per check)
        assert abs(closed - values.mean()) <= 5 * values.std() / np.sqrt(values.size) + 1e-12


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2 ** 32 - 1), d=st.integers(1, 4), sigma=st.floats(0.1, 2.0))
def test_weight_gradients_against_finite_differences(seed, d, sigma):
    rng = np.random.default_rng(seed)
    w, x = rng.normal(size=d), rng.normal(size=d)
    h = 1e-6
    for moment, gradient in ((lambda v: rg.relu_mean_np(v @ x, sigma * np.linalg.norm(v)), rg.relu_mean_grad_w),
                             (lambda v: rg.relu_second_moment_np(v @ x, sigma * np.linalg.norm(v)),
                              rg.relu_second_moment_grad_w)):
        numeric = np.array([(moment(w + h * e) - moment(w - h * e)) / (2 * h) for e in np.eye(d)])
        # central differences: error O(h²·third derivative) + O(eps/h) ≈ 1e-9 at these scales
        assert np.allclose(gradient(w, x, sigma), numeric, atol=1e-7 * (1 + np.abs(numeric).max()))


@st.composite
def pairs(draw):
    m1, m2 = draw(st.floats(-2, 2)), draw(st.floats(-2, 2))
    s1, s2 = draw(st.floats(0.3, 2)), draw(st.floats(0.3, 2))
    r = draw(st.floats(-0.95, 0.95))
    return m1, s1, m2, s2, r


@settings(max_examples=15, deadline=None)
@given(pairs())
def test_bivariate_cdf_against_scipy(pair):
    _, _, _, _, r = pair
    h, k = pair[0] / pair[1], pair[2] / pair[3]
    reference = multivariate_normal(mean=[0, 0], cov=[[1, r], [r, 1]]).cdf([h, k])
    assert rg.bivariate_cdf(h, k, r) == pytest.approx(reference, abs=1e-6)  # scipy's default abseps 1e-5/…


@settings(max_examples=15, deadline=None)
@given(pairs())
def test_cross_moment_identities_by_finite_differences(pair):
    """Price: ∂/∂C12 = Φ2; Stein: ∂/∂m1 = E[1(a1>0)a2+]; ∂/∂C11 = ½E[δ(a1)a2+]."""
    m1, s1, m2, s2, r = pair

    def moment(m1_, m2_, c11, c22, c12):
        a, b = np.sqrt(c11), np.sqrt(c22)
        return rg.relu_cross_moment(m1_, a, m2_, b, c12 / (a * b))

    base = [m1, m2, s1 ** 2, s2 ** 2, r * s1 * s2]

    def partial(i, h=1e-5):
        up, down = list(base), list(base)
        up[i] += h
        down[i] -= h
        return (moment(*up) - moment(*down)) / (2 * h)

    identities = rg.cross_moment_identities(m1, s1, m2, s2, r)
    # central differences of a quadrature accurate to ~1e-13: error ≲ 1e-8
    assert partial(4) == pytest.approx(identities["dC12"], abs=1e-7)
    assert partial(0) == pytest.approx(identities["dm1"], abs=1e-7)
    assert partial(2) == pytest.approx(identities["dC11"], abs=1e-7)


def test_cross_moment_against_monte_carlo():
    rng = np.random.default_rng(7)
    for _ in range(4):
        m1, m2 = rng.normal(size=2)
        s1, s2 = rng.uniform(0.5, 2, size=2)
        r = rng.uniform(-0.9, 0.9)
        cov = [[s1 ** 2, r * s1 * s2], [r * s1 * s2, s2 ** 2]]
        z = rng.multivariate_normal([m1, m2], cov, size=400_000)
        product = np.maximum(z[:, 0], 0) * np.maximum(z[:, 1], 0)
        # 5 Monte-Carlo standard errors
        assert abs(rg.relu_cross_moment(m1, s1, m2, s2, r) - product.mean()) <= 5 * product.std() / np.sqrt(z.shape[0])


def test_cross_moment_against_numerics_gaussian():
    """Independent implementations: quadrature-in-ρ (here) vs Genz's BVNU (numerics.gaussian)."""
    rng = np.random.default_rng(11)
    for _ in range(25):
        m1, m2 = rng.normal(scale=2, size=2)
        s1, s2 = rng.uniform(0.2, 2, size=2)
        r = rng.uniform(-0.99, 0.99)
        ours = rg.relu_cross_moment(m1, s1, m2, s2, r)
        # both claim ~1e-13 accuracy; 1e-10 leaves room for the moment's O(m²) scale
        assert float(gaussian.relu_cross_moment(m1, s1, m2, s2, r)) == pytest.approx(ours, abs=1e-10)
        assert float(gaussian.relu_mean(m1, s1)) == pytest.approx(float(rg.relu_mean_np(m1, s1)), abs=1e-13)
