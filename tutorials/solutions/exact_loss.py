"""Solutions to the exercises of tutorial 1 (the exact loss)."""
from __future__ import annotations

from math import factorial

import numpy as np
from numpy.polynomial.hermite_e import hermeval
from scipy.stats import norm


def rectified_mean(m, s):
    """Exercise 1: E[(m + sZ)_+] = m Φ(z) + s φ(z), z = m/s.

    E[(m + sZ)_+] = ∫_{−z}^∞ (m + st) φ(t) dt = m (1 − Φ(−z)) + s ∫_{−z}^∞ t φ(t) dt = m Φ(z) + s φ(z),
    since t φ(t) = −φ'(t).
    """
    z = m / s
    return float(m * norm.cdf(z) + s * norm.pdf(z))


def hermite_coefficients(m, s, terms):
    """c_ν = E[(m + sZ)_+ He_ν(Z)] for ν < terms: c_0 = s(tΦ(t) + φ(t)), c_1 = sΦ(t), c_ν = sφ(t)He_{ν−2}(−t)."""
    t = m / s
    c = np.zeros(terms)
    c[0] = s * (t * norm.cdf(t) + norm.pdf(t))
    if terms > 1:
        c[1] = s * norm.cdf(t)
    for nu in range(2, terms):
        unit = np.zeros(nu - 1)
        unit[-1] = 1.0                                   # the coefficients of He_{ν−2}
        c[nu] = s * norm.pdf(t) * hermeval(-t, unit)
    return c


def mehler_cross_moment(m_j, s_j, m_k, s_k, rho, terms):
    """Exercise 2: Σ_{ν < terms} ρ^ν c_ν(g_j) c_ν(g_k) / ν!  (Mehler's expansion)."""
    a, b = hermite_coefficients(m_j, s_j, terms), hermite_coefficients(m_k, s_k, terms)
    return float(sum(rho ** nu * a[nu] * b[nu] / factorial(nu) for nu in range(terms)))
