"""Moments of a rectified Gaussian pre-activation and their derivative identities (Price).

For one sample x and neuron w, ``a = wᵀ(x + σε)`` is Gaussian with mean ``m = wᵀx`` and std
``s = σ‖w‖``. The exact objective (docs/theory.md §2) needs ``E[a_+]``, ``E[a_+²]`` and, for two
neurons, ``E[a_j+ a_k+]`` (Rosenbaum 1961); its exact gradient needs their derivatives, which
Price's theorem gives as expectations of derivatives of the ReLU:
``∂E[g(a)]/∂m = E[g'(a)]``, ``∂E[g(a)]/∂(s²) = ½E[g''(a)]``,
``∂E[g(a_j)h(a_k)]/∂Cov(a_j, a_k) = E[g'(a_j)h'(a_k)]``.

>>> import numpy as np
>>> from theory.rectified_gaussian import relu_mean_np
>>> round(float(relu_mean_np(0.0, 1.0)), 6)     # E[max(ε, 0)] = 1/√(2π)
0.398942
"""
from __future__ import annotations

import functools

import numpy as np
import sympy as sp
from scipy import integrate, special

from theory.symbols import Phi, numeric_twin, phi

__all__ = [
    "m", "sd", "var", "relu_mean_by_integration", "relu_second_moment_by_integration",
    "relu_mean", "relu_second_moment", "one_neuron_identities", "relu_mean_np",
    "relu_second_moment_np", "relu_mean_grad_w", "relu_second_moment_grad_w",
    "bivariate_cdf", "relu_cross_moment", "cross_moment_identities",
]

#: mean m = wᵀx of the pre-activation
m = sp.Symbol("m", real=True)
#: standard deviation s = σ‖w‖ of the pre-activation
sd = sp.Symbol("s", positive=True)
#: variance v = s² (Price's theorem differentiates in the variance)
var = sp.Symbol("v", positive=True)


def _gaussian_integral(power: int) -> sp.Expr:
    t = sp.Symbol("t", real=True)
    density = sp.exp(-(t - m) ** 2 / (2 * sd ** 2)) / (sp.sqrt(2 * sp.pi) * sd)
    return sp.integrate(t ** power * density, (t, 0, sp.oo), conds="none")


@functools.cache
def relu_mean_by_integration() -> sp.Expr:
    """E[a_+] for a ~ N(m, s²), by direct integration ∫_0^∞ t N(t; m, s²) dt.

    >>> sp.simplify(relu_mean_by_integration() - relu_mean())    # agrees with the closed form
    0
    """
    return _gaussian_integral(1)


@functools.cache
def relu_second_moment_by_integration() -> sp.Expr:
    """E[a_+²] for a ~ N(m, s²), by direct integration ∫_0^∞ t² N(t; m, s²) dt.

    >>> sp.simplify(relu_second_moment_by_integration() - relu_second_moment())
    0
    """
    return _gaussian_integral(2)


def relu_mean() -> sp.Expr:
    """docs/theory.md §2 closed form ``E[a_+] = m Φ(m/s) + s φ(m/s)``.

    >>> relu_mean().subs({m: 0, sd: 1})                  # E[max(ε, 0)] = 1/√(2π)
    sqrt(2)/(2*sqrt(pi))
    """
    return m * Phi(m / sd) + sd * phi(m / sd)


def relu_second_moment() -> sp.Expr:
    """docs/theory.md §2 closed form ``E[a_+²] = (m² + s²) Φ(m/s) + m s φ(m/s)``.

    >>> relu_second_moment().subs({m: 0, sd: 1})         # half of E[ε²] = 1, by symmetry
    1/2
    """
    return (m ** 2 + sd ** 2) * Phi(m / sd) + m * sd * phi(m / sd)


def one_neuron_identities() -> dict[str, tuple[sp.Expr, sp.Expr]]:
    """The derivative identities of one rectified Gaussian, as (derivative, claimed value).

    Each pair is equal (proved by the tests); the first four are Price's theorem with
    ``g(a) = a_+`` (g' = 1[a>0], g'' = δ(a)) and ``g(a) = a_+²`` (g' = 2a_+, g'' = 2·1[a>0]).

    >>> identities = one_neuron_identities()
    >>> len(identities), all(sp.simplify(lhs - rhs) == 0 for lhs, rhs in identities.values())
    (6, True)
    """
    z = m / sd
    mean_v = relu_mean().subs(sd, sp.sqrt(var))
    second_v = relu_second_moment().subs(sd, sp.sqrt(var))
    return {
        "dE[a+]/dm = P(a>0)": (sp.diff(relu_mean(), m), Phi(z)),
        "dE[a+]/dv = E[δ(a)]/2": (sp.diff(mean_v, var).subs(var, sd ** 2), phi(z) / (2 * sd)),
        "dE[a+²]/dm = 2E[a+]": (sp.diff(relu_second_moment(), m), 2 * relu_mean()),
        "dE[a+²]/dv = P(a>0)": (sp.diff(second_v, var).subs(var, sd ** 2), Phi(z)),
        "dE[a+]/ds = φ(m/s)": (sp.diff(relu_mean(), sd), phi(z)),
        "dE[a+²]/ds = 2sΦ(m/s)": (sp.diff(relu_second_moment(), sd), 2 * sd * Phi(z)),
    }


relu_mean_np = numeric_twin(relu_mean, (m, sd))
relu_second_moment_np = numeric_twin(relu_second_moment, (m, sd))


def relu_mean_grad_w(w, x, sigma) -> np.ndarray:
    """∇_w E[(wᵀ(x + σε))_+] = Φ(z) x + σ² φ(z)/s · w (chain rule on the identities; s = σ‖w‖).

    ``w``, ``x`` of shape (d,); returns (d,).

    >>> relu_mean_grad_w([0.0, 1.0], [2.0, 0.0], 1.0).round(6)   # z = 0: x/2 + φ(0) w
    array([1.      , 0.398942])
    """
    w, x = np.asarray(w, float), np.asarray(x, float)
    mean, std = w @ x, sigma * np.linalg.norm(w)
    z = mean / std
    return special.ndtr(z) * x + sigma ** 2 * np.exp(-z ** 2 / 2) / np.sqrt(2 * np.pi) / std * w


def relu_second_moment_grad_w(w, x, sigma) -> np.ndarray:
    """∇_w E[(wᵀ(x + σε))_+²] = 2E[a_+] x + 2σ² Φ(z) w.

    ``w``, ``x`` of shape (d,); returns (d,).

    >>> relu_second_moment_grad_w([0.0, 1.0], [2.0, 0.0], 1.0).round(6)   # 2φ(0) x + w
    array([1.595769, 1.      ])
    """
    w, x = np.asarray(w, float), np.asarray(x, float)
    mean, std = w @ x, sigma * np.linalg.norm(w)
    return 2 * relu_mean_np(mean, std) * x + 2 * sigma ** 2 * special.ndtr(mean / std) * w


def _phi(z):
    return np.exp(-np.square(z) / 2) / np.sqrt(2 * np.pi)


def bivariate_cdf(h: float, k: float, r: float) -> float:
    """Φ2(h, k; r) = P(Z1 < h, Z2 < k), corr(Z1, Z2) = r, by Price's theorem in r.

    ``∂Φ2/∂r = φ2(h, k; r)`` and ``Φ2(h, k; 0) = Φ(h)Φ(k)``, so Φ2 is one quadrature of the
    bivariate density, taken in θ = arcsin r where the integrand is smooth (reference
    implementation: accurate, not fast). |r| = 1 is exact.

    >>> round(bivariate_cdf(0.0, 0.0, 0.5), 12)       # 1/4 + arcsin(r)/(2π) = 1/3 (Sheppard)
    0.333333333333
    """
    if r >= 1.0:
        return float(special.ndtr(min(h, k)))
    if r <= -1.0:
        return float(max(0.0, special.ndtr(h) + special.ndtr(k) - 1.0))

    def density(theta):  # φ2(h, k; sin θ) · cos θ, the substitution t = sin θ (Drezner–Wesolowsky)
        c2 = np.cos(theta) ** 2
        return np.exp(-(h * h - 2 * np.sin(theta) * h * k + k * k) / (2 * c2)) / (2 * np.pi)

    value, _ = integrate.quad(density, 0.0, np.arcsin(r), epsabs=1e-15, epsrel=1e-13, limit=200)
    return float(special.ndtr(h) * special.ndtr(k) + value)


def relu_cross_moment(m1: float, s1: float, m2: float, s2: float, r: float) -> float:
    """E[a1_+ a2_+] for jointly Gaussian (a1, a2), means m1, m2, stds s1, s2, corr r (|r| < 1).

    Argument order as ``numerics.gaussian.relu_cross_moment`` (an independent implementation).

    Rosenbaum (1961), as in docs/theory.md §2 with h = m1/s1, k = m2/s2, q = √(1 − r²):
    ``(m1m2 + r s1s2)Φ2 + m2 s1 φ(h)Φ((k − rh)/q) + m1 s2 φ(k)Φ((h − rk)/q) + s1s2 q² φ2``.

    >>> r = 0.5                                        # centred: (√(1 − r²) + r(π − arccos r))/(2π)
    >>> expected = (np.sqrt(1 - r * r) + r * (np.pi - np.arccos(r))) / (2 * np.pi)
    >>> bool(np.isclose(relu_cross_moment(0.0, 1.0, 0.0, 1.0, r), expected, rtol=1e-12))
    True
    """
    h, k, q = m1 / s1, m2 / s2, np.sqrt(1.0 - r * r)
    phi2 = np.exp(-(h * h - 2 * r * h * k + k * k) / (2 * q * q)) / (2 * np.pi * q)
    return float((m1 * m2 + r * s1 * s2) * bivariate_cdf(h, k, r)
                 + m2 * s1 * _phi(h) * special.ndtr((k - r * h) / q)
                 + m1 * s2 * _phi(k) * special.ndtr((h - r * k) / q)
                 + s1 * s2 * q * q * phi2)


def cross_moment_identities(m1: float, s1: float, m2: float, s2: float, r: float) -> dict[str, float]:
    """Closed forms of the derivatives of E[a1_+ a2_+] that the exact gradient uses.

    In the Gaussian parameters (m1, m2, C11 = s1², C22 = s2², C12 = r s1 s2):

    - ``∂/∂C12 = E[1(a1>0) 1(a2>0)] = Φ2(h, k; r)`` (Price's theorem),
    - ``∂/∂m1 = E[1(a1>0) a2_+] = m2 Φ2 + s2 (φ(k) Φ((h − rk)/q) + r φ(h) Φ((k − rh)/q))``,
    - ``∂/∂C11 = ½E[δ(a1) a2_+] = φ(h)/(2 s1) · ψ(m2 − r s2 h, s2 q)``, ψ(μ, τ) = μΦ(μ/τ) + τφ(μ/τ)
      (a2 given a1 = 0 is N(m2 − r s2 h, s2² q²)).

    >>> out = cross_moment_identities(0.0, 1.0, 0.0, 1.0, 0.0)   # independent: P(a1>0) = 1/2
    >>> {key: round(value, 6) for key, value in out.items()}     # 1/4, φ(0)/2, φ(0)²/2 = 1/(4π)
    {'dC12': 0.25, 'dm1': 0.199471, 'dC11': 0.079577}
    """
    h, k, q = m1 / s1, m2 / s2, np.sqrt(1.0 - r * r)
    cdf = bivariate_cdf(h, k, r)
    conditional_mean, conditional_std = m2 - r * s2 * h, s2 * q
    return {
        "dC12": cdf,
        "dm1": float(m2 * cdf + s2 * (_phi(k) * special.ndtr((h - r * k) / q)
                                      + r * _phi(h) * special.ndtr((k - r * h) / q))),
        "dC11": float(_phi(h) / (2 * s1) * relu_mean_np(conditional_mean, conditional_std)),
    }
