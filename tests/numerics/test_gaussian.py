"""Rectified-Gaussian moments of `numerics.gaussian` against quadrature and against the
lambdified symbolic forms of `theory.rectified_gaussian` (independent implementations)."""
import math

import mpmath as mp
import numpy as np
import pytest
from hypothesis import given, strategies as st
from scipy import integrate, stats

from numerics.gaussian import (bivariate_normal_cdf, mehler_terms, relu_cross_moment,
                               relu_mean, relu_second_moment)
from theory import rectified_gaussian as symbolic

means = st.floats(-6.0, 6.0)
scales = st.floats(0.05, 5.0)


def _quad_relu_moment(m, s, power):
    """E[a_+ᵖ] = sᵖ ∫_0^∞ vᵖ φ(v − z) dv by adaptive quadrature. For z < 0 the factor φ(z)
    is taken out (φ(v − z) = φ(z) e^{zv − v²/2}) so the integrand neither underflows nor
    hides its mass in a far tail."""
    z = m / s
    if z < 0:
        integral = integrate.quad(lambda v: v**power * math.exp(z * v - v * v / 2), 0, np.inf,
                                  epsabs=0, epsrel=1e-13, limit=200)[0]
        return s**power * stats.norm.pdf(z) * integral
    return s**power * sum(integrate.quad(lambda v: v**power * stats.norm.pdf(v - z), a, b,
                                         epsabs=0, epsrel=1e-13, limit=200)[0]
                          for a, b in [(0.0, z), (z, np.inf)] if b > a)


@given(means, scales)
def test_one_neuron_moments_match_quadrature_to_1e8_relative(m, s):
    for moment, power in [(relu_mean, 1), (relu_second_moment, 2)]:
        assert moment(m, s) == pytest.approx(_quad_relu_moment(m, s, power), rel=1e-8, abs=1e-300)


@pytest.mark.parametrize("z", [-5.01, -8.0, -12.0, -32.0, -37.0])
def test_one_neuron_moments_in_the_lower_tail_match_high_precision(z):
    """The tail form (Laplace's continued fraction) against 60-digit mpmath: 1e-13 relative,
    where the plain closed form loses up to z⁴ ≈ 1e6 in relative accuracy."""
    mp.mp.dps = 60
    s = 0.5
    m = z * s
    zz = mp.mpf(m) / s
    mean = s * (mp.npdf(zz) + zz * mp.ncdf(zz))
    second = (m * m + s * s) * mp.ncdf(zz) + m * s * mp.npdf(zz)
    assert relu_mean(m, s) == pytest.approx(float(mean), rel=1e-13)
    assert relu_second_moment(m, s) == pytest.approx(float(second), rel=1e-13)


@given(means, scales)
def test_one_neuron_moments_match_the_symbolic_closed_forms(m, s):
    """numba closed forms against sympy's, lambdified (theory/rectified_gaussian.py).

    The lambdified Φ is 1/2 + erf/2, exact to ~1e-16 absolute only, so in the lower tail the
    twin cancels to rounding of |m|Φ: the tolerance is 4e-16 (|m| + s)^power.
    """
    rounding = 4e-16 * (abs(m) + s)
    assert relu_mean(m, s) == pytest.approx(float(symbolic.relu_mean_np(m, s)),
                                            rel=1e-12, abs=rounding)
    assert relu_second_moment(m, s) == pytest.approx(
        float(symbolic.relu_second_moment_np(m, s)), rel=1e-12, abs=rounding * (abs(m) + s))


def test_zero_scale_moments_are_the_deterministic_relu():
    assert relu_mean(1.5, 0.0) == 1.5 and relu_mean(-1.5, 0.0) == 0.0
    assert relu_second_moment(-2.0, 0.0) == 0.0 and relu_second_moment(2.0, 0.0) == 4.0


def _bivariate_cdf_by_quadrature(h, k, rho):
    """Φ2 two independent ways: ∫φ(x)Φ((k−ρx)/q) for |ρ| ≤ 0.9; Plackett's identity
    Φ2 = Φ(h)Φ(k) + ∫_0^ρ φ2(h, k; r) dr beyond (its integrand stays smooth there)."""
    q = math.sqrt((1 - rho) * (1 + rho))
    if abs(rho) <= 0.9:
        return integrate.quad(lambda x: stats.norm.pdf(x) * stats.norm.cdf((k - rho * x) / q),
                              -40.0, h, epsabs=1e-16, epsrel=1e-13, limit=400)[0]
    def density(r):
        return math.exp(-(h * h - 2 * r * h * k + k * k) / (2 * (1 - r) * (1 + r))) / (
            2 * math.pi * math.sqrt((1 - r) * (1 + r)))
    return (stats.norm.cdf(h) * stats.norm.cdf(k)
            + integrate.quad(density, 0.0, rho, epsabs=1e-17, epsrel=1e-13, limit=400)[0])


@given(st.floats(-8, 8), st.floats(-8, 8), st.floats(-0.999999, 0.999999))
def test_bivariate_normal_cdf_matches_quadrature(h, k, rho):
    # Genz (2004) reports ~1e-15 absolute accuracy; the quadrature is asked for 1e-13.
    assert bivariate_normal_cdf(h, k, rho) == pytest.approx(
        _bivariate_cdf_by_quadrature(h, k, rho), abs=1e-12)


def test_bivariate_normal_cdf_closed_cases():
    """Closed forms (ρ = 0, ±1, and 1/4 + asin(ρ)/(2π) at the origin) within Genz's stated ~1e-15
    absolute accuracy (1e-16 for the independent product, computed by the same erfc)."""
    assert bivariate_normal_cdf(0.0, 0.0, 0.5) == pytest.approx(1 / 3, abs=1e-15)
    assert bivariate_normal_cdf(0.3, -0.2, 1.0) == pytest.approx(stats.norm.cdf(-0.2), abs=1e-15)
    assert bivariate_normal_cdf(0.3, -0.2, -1.0) == pytest.approx(
        stats.norm.cdf(0.3) - stats.norm.cdf(0.2), abs=1e-15)
    assert bivariate_normal_cdf(1.1, -0.4, 0.0) == pytest.approx(
        stats.norm.cdf(1.1) * stats.norm.cdf(-0.4), abs=1e-16)


@pytest.mark.parametrize("m1, s1, m2, s2, rho", [
    (0.3, 1.0, -0.2, 0.7, 0.4), (1.5, 0.5, 0.8, 2.0, -0.6), (-1.0, 0.8, -0.5, 1.2, 0.95),
    (0.0, 1.0, 0.0, 1.0, -0.97), (2.0, 1.0, -1.0, 0.5, 0.1),
])
def test_cross_moment_matches_two_dimensional_quadrature(m1, s1, m2, s2, rho):
    """E[a1+ a2+] by dblquad over the positive quadrant of the bivariate normal density."""
    cov = [[s1 * s1, rho * s1 * s2], [rho * s1 * s2, s2 * s2]]
    density = stats.multivariate_normal([m1, m2], cov).pdf
    upper = 12.0 * max(s1, s2) + max(m1, m2, 0.0)
    reference = integrate.dblquad(lambda y, x: x * y * density([x, y]), 0.0, upper,
                                  0.0, upper, epsabs=1e-12, epsrel=1e-10)[0]
    assert relu_cross_moment(m1, s1, m2, s2, rho) == pytest.approx(reference, rel=1e-8, abs=1e-12)


@given(st.floats(-5, 5), scales, st.floats(-5, 5), scales, st.floats(-0.99, 0.99))
def test_cross_moment_matches_the_theory_module(m1, s1, m2, s2, rho):
    """numba (Genz Φ2) against theory's SciPy implementation of the same closed form."""
    expected = symbolic.relu_cross_moment(m1, s1, m2, s2, rho)
    assert relu_cross_moment(m1, s1, m2, s2, rho) == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_cross_moment_of_parallel_columns_is_the_second_moment():
    # ρ = 1 and equal means/scales: a1 = a2, so E[a1+ a2+] = E[a+²].
    assert relu_cross_moment(0.4, 1.3, 0.4, 1.3, 1.0) == pytest.approx(
        relu_second_moment(0.4, 1.3), rel=1e-14)


def test_mehler_term_count_meets_its_tail_bound():
    rho = np.array([0.01, 0.1, 0.3, 0.5])
    terms = mehler_terms(rho)
    tail = 0.19 * rho**terms / ((terms - 1) * (1 - rho))
    assert np.all(tail < 1e-17)
    assert np.all(0.19 * rho**(terms - 1) / ((terms - 2) * (1 - rho)) >= 1e-17)  # minimal
    # Beyond 60 terms (|ρ| ≳ 0.52) Genz's Φ2 is used instead.
    assert np.all(mehler_terms(np.array([0.6, 0.95])) == 0)
