"""Rectified-Gaussian moments (docs/theory.md §2): the building blocks of the exact loss.

For a pre-activation ``a ~ N(m, s²)`` and ``z = m / s``:

* ``E[a_+]  = m Φ(z) + s φ(z)``
* ``E[a_+²] = (m² + s²) Φ(z) + m s φ(z)``

and for a pair ``(a_j, a_k)`` with correlation ``ρ`` (Rosenbaum 1961), with
``q = √(1 − ρ²)``, ``A = (z_k − ρ z_j)/q``, ``B = (z_j − ρ z_k)/q``:

* ``E[a_j+ a_k+] = (m_j m_k + ρ s_j s_k) Φ2(z_j, z_k; ρ) + m_j s_k φ(z_k) Φ(B)
  + m_k s_j φ(z_j) Φ(A) + s_j s_k q φ(z_j) φ(A)``   (``q² φ2 = q φ(z_j) φ(A)``).

The gradient of the loss needs, by Stein's lemma and Price's theorem,
``∂E[a_j+ a_k+]/∂m_j = E[1{a_j>0} a_k+]``, ``∂/∂Cov_jk = P(a_j>0, a_k>0)`` and the
conditional mean ``E[a_k+ | a_j = 0]``; `pair_moments` returns all of them from one
evaluation of Φ2. ``theory/rectified_gaussian.py`` derives these identities symbolically.

Φ2 is Genz's (2004) BVNU algorithm (Drezner–Wesolowsky with Gauss–Legendre
quadrature), written here by hand because SciPy has no scalar bivariate CDF that numba
can call; it is accurate to about 1e-15 absolute and is tested against quadrature.

>>> round(float(bivariate_normal_cdf(0.0, 0.0, 0.5)), 12)  # 1/4 + asin(1/2)/(2π) = 1/3
0.333333333333
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, vectorize

from numerics.validation import finite_array

# The checked public functions. The numba kernels `norm_cdf`, `norm_pdf`, `pair_moments` and
# `rectified_moments` are building blocks of compiled code (`numerics.objective`): a check per
# scalar call would cost more than the kernel, so their callers check the inputs.
__all__ = ["bivariate_normal_cdf", "relu_mean", "relu_second_moment", "relu_cross_moment", "mehler_terms"]

_SQRT2 = math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_TWO_PI = 2.0 * math.pi

# Gauss–Legendre nodes/weights on [-1, 1] (half sets) for 6, 12 and 20 points (Genz 2004),
# stored as one flat tuple each (numba compiles tuples as constants): entries 0–2 are the
# 6-point rule, 3–8 the 12-point rule, 9–18 the 20-point rule.
_GL_WEIGHTS = (0.1713244923791705, 0.3607615730481384, 0.4679139345726904,
               0.04717533638651177, 0.1069393259953183, 0.1600783285433464,
               0.2031674267230659, 0.2334925365383547, 0.2491470458134029,
               0.01761400713915212, 0.04060142980038694, 0.06267204833410906,
               0.08327674157670475, 0.1019301198172404, 0.1181945319615184,
               0.1316886384491766, 0.1420961093183821, 0.1491729864726037,
               0.1527533871307259)
_GL_NODES = (0.9324695142031522, 0.6612093864662647, 0.2386191860831970,
             0.9815606342467191, 0.9041172563704750, 0.7699026741943050,
             0.5873179542866171, 0.3678314989981802, 0.1252334085114692,
             0.9931285991850949, 0.9639719272779138, 0.9122344282513259,
             0.8391169718222188, 0.7463319064601508, 0.6360536807265150,
             0.5108670019508271, 0.3737060887154196, 0.2277858511416451,
             0.07652652113349733)


@njit(cache=True, inline="always")
def norm_cdf(x):
    """Standard normal CDF Φ(x) via erfc (accurate in both tails).

    >>> norm_cdf(0.0), f"{norm_cdf(-10.0):.3e}"
    (0.5, '7.620e-24')
    """
    return 0.5 * math.erfc(-x / _SQRT2)


@njit(cache=True, inline="always")
def norm_pdf(x):
    """Standard normal density φ(x).

    >>> round(norm_pdf(0.0), 6)                                  # 1/√(2π)
    0.398942
    """
    return _INV_SQRT_2PI * math.exp(-0.5 * x * x)


@njit(cache=True, inline="always")
def _gauss_legendre_range(abs_r):
    """First and one-past-last index into the flat node tuples of the rule for |r|."""
    if abs_r < 0.3:
        return 0, 3
    if abs_r < 0.75:
        return 3, 9
    return 9, 19


@njit(cache=True)
def _upper_bvn(dh, dk, r):
    """P(X > dh, Y > dk) for a standard bivariate normal with correlation r (Genz's BVNU).

    >>> float(upper_bvn(0.0, 0.0, 0.0))
    0.25
    """
    if r == 0.0:
        return norm_cdf(-dh) * norm_cdf(-dk)
    first, last = _gauss_legendre_range(abs(r))
    h = dh
    k = dk
    hk = h * k
    bvn = 0.0
    if abs(r) < 0.925:
        hs = 0.5 * (h * h + k * k)
        asr = 0.5 * math.asin(r)
        for i in range(first, last):
            for sign in (-1.0, 1.0):
                sn = math.sin(asr * (1.0 + sign * _GL_NODES[i]))
                bvn += _GL_WEIGHTS[i] * math.exp((sn * hk - hs) / (1.0 - sn * sn))
        return bvn * asr / _TWO_PI + norm_cdf(-h) * norm_cdf(-k)
    if r < 0.0:
        k = -k
        hk = -hk
    if abs(r) < 1.0:
        a_s = (1.0 - r) * (1.0 + r)
        a = math.sqrt(a_s)
        bs = (h - k) ** 2
        c = (4.0 - hk) / 8.0
        d = (12.0 - hk) / 16.0
        asr = -0.5 * (bs / a_s + hk)
        if asr > -100.0:
            bvn = a * math.exp(asr) * (1.0 - c * (bs - a_s) * (1.0 - d * bs / 5.0) / 3.0
                                       + c * d * a_s * a_s / 5.0)
        if -hk < 100.0:
            b = math.sqrt(bs)
            bvn -= (math.exp(-hk / 2.0) * math.sqrt(_TWO_PI) * norm_cdf(-b / a) * b
                    * (1.0 - c * bs * (1.0 - d * bs / 5.0) / 3.0))
        a = a / 2.0
        for i in range(first, last):
            for sign in (-1.0, 1.0):
                xs = (a * (1.0 + sign * _GL_NODES[i])) ** 2
                rs = math.sqrt(1.0 - xs)
                asr = -0.5 * (bs / xs + hk)
                if asr > -100.0:
                    bvn += a * _GL_WEIGHTS[i] * math.exp(asr) * (
                        math.exp(-hk * (1.0 - rs) / (2.0 * (1.0 + rs))) / rs
                        - (1.0 + c * xs * (1.0 + d * xs)))
        bvn = -bvn / _TWO_PI
    if r > 0.0:
        bvn += norm_cdf(-max(h, k))
    else:
        bvn = -bvn
        if k > h:
            if h < 0.0:
                bvn += norm_cdf(k) - norm_cdf(h)
            else:
                bvn += norm_cdf(-h) - norm_cdf(-k)
    return max(0.0, min(1.0, bvn))


upper_bvn = _upper_bvn   # P(X > h, Y > k) for callers that compute Φ2 once and reuse it


@vectorize(["float64(float64, float64, float64)"], cache=True)
def _bivariate_normal_cdf(h, k, rho):
    """Φ2(h, k; ρ) = P(X ≤ h, Y ≤ k) for standard normals with correlation ρ ∈ [−1, 1]."""
    if rho >= 1.0:
        return norm_cdf(min(h, k))
    if rho <= -1.0:
        return max(0.0, norm_cdf(h) - norm_cdf(-k))
    return _upper_bvn(-h, -k, rho)


@njit(cache=True, inline="always")
def _step(x):
    if x > 0.0:
        return 1.0
    if x < 0.0:
        return 0.0
    return 0.5


# Correlations this close to ±1 are treated as exactly ±1 (rounding of parallel columns
# gives |ρ| = 1 − O(1e-16)); the error this makes is O(q) < 1e-7 relative.
DEGENERATE_Q = 1e-7


@njit(cache=True)
def pair_moments(m_j, s_j, z_j, cdf_j, pdf_j, m_k, s_k, z_k, cdf_k, pdf_k, rho):
    """Joint moments of two rectified Gaussians with ``s_j, s_k > 0``.

    Returns ``(E[a_j+ a_k+], P(a_j>0, a_k>0), E[1{a_j>0} a_k+], E[1{a_k>0} a_j+],
    E[a_k+ | a_j=0], E[a_j+ | a_k=0])`` — the cross moment of docs/theory.md §2 and the three
    quantities its derivatives need (Stein's lemma, Price's theorem).

    Two independent standard normals (m = 0, s = 1, ρ = 0): E[a_j+ a_k+] = (1/√(2π))² = 1/(2π)
    and both are positive with probability 1/4:

    >>> c, p = norm_cdf(0.0), norm_pdf(0.0)
    >>> out = pair_moments(0.0, 1.0, 0.0, c, p, 0.0, 1.0, 0.0, c, p, 0.0)
    >>> round(out[0], 6), round(out[1], 6)
    (0.159155, 0.25)
    """
    q2 = (1.0 - rho) * (1.0 + rho)
    q = math.sqrt(q2) if q2 > 0.0 else 0.0
    if q < DEGENERATE_Q:
        rho = 1.0 if rho > 0.0 else -1.0
        cdf_a = _step(z_k - rho * z_j)
        cdf_b = _step(z_j - rho * z_k)
        if rho > 0.0:
            both = norm_cdf(min(z_j, z_k))
        else:
            both = max(0.0, norm_cdf(z_j) - norm_cdf(-z_k))
        q_pdf_a = 0.0
        q_pdf_b = 0.0
    else:
        a = (z_k - rho * z_j) / q
        b = (z_j - rho * z_k) / q
        cdf_a = norm_cdf(a)
        cdf_b = norm_cdf(b)
        both = _upper_bvn(-z_j, -z_k, rho)
        q_pdf_a = q * norm_pdf(a)
        q_pdf_b = q * norm_pdf(b)
    cross = ((m_j * m_k + rho * s_j * s_k) * both + m_j * s_k * pdf_k * cdf_b
             + m_k * s_j * pdf_j * cdf_a + s_j * s_k * pdf_j * q_pdf_a)
    on_j_times_k = m_k * both + s_k * (rho * pdf_j * cdf_a + pdf_k * cdf_b)
    on_k_times_j = m_j * both + s_j * (rho * pdf_k * cdf_b + pdf_j * cdf_a)
    k_given_j_zero = s_k * ((z_k - rho * z_j) * cdf_a + q_pdf_a)
    j_given_k_zero = s_j * ((z_j - rho * z_k) * cdf_b + q_pdf_b)
    return cross, both, on_j_times_k, on_k_times_j, k_given_j_zero, j_given_k_zero


@njit(cache=True)
def delta_pair_moments(s_j, z_j, pdf_j, s_k, z_k, pdf_k, rho):
    """Pair moments with a Dirac factor, for the Hessian of eq. (6); ``s_j, s_k > 0``, ``|ρ| < 1``.

    With ``f⁽¹⁾ = 1{a > 0}``, ``f⁽²⁾ = δ(a)``, ``f⁽³⁾ = δ'(a)``, ``f⁽⁴⁾ = δ''(a)`` the
    derivatives of ``a_+``, returns ``(E[δ_j 1_k], E[1_j δ_k], E[δ_j δ_k], E[δ'_j a_k+],
    E[a_j+ δ'_k], E[δ'_j 1_k], E[1_j δ'_k], E[δ''_j a_k+], E[a_j+ δ''_k])``.

    Derived here: given ``a_j = 0`` the other pre-activation is ``N(s_k q A, (s_k q)²)`` with
    ``q = √(1 − ρ²)``, ``A = (z_k − ρ z_j)/q``, so ``E[δ_j g(a_k)] = (φ(z_j)/s_j) E[g | a_j = 0]``,
    and each further derivative in ``a_j`` is ``∂/∂m_j`` (Stein's lemma) of that, with
    ``∂z_j/∂m_j = 1/s_j`` and ``∂A/∂m_j = −ρ/(q s_j)``. With ``c_0 = ψ = AΦ(A) + φ(A)``,
    ``c_1 = Φ``, ``c_2 = φ`` and ``r = ρ/q``:
    ``E[δ'_j a_k+] = (s_k q/s_j²) φ_j (−z_j c_0 − r c_1)``,
    ``E[δ'_j 1_k] = (φ_j/s_j²)(−z_j c_1 − r c_2)``,
    ``E[δ''_j a_k+] = (s_k q/s_j³) φ_j ((z_j² − 1) c_0 + 2 z_j r c_1 + r² c_2)``,
    ``E[δ_j δ_k] = φ_j φ(A)/(s_j s_k q)`` (the bivariate density), and symmetrically.

    >>> import numpy as np
    >>> phi0 = 1 / np.sqrt(2 * np.pi)                  # independent, centred: E[δ_j δ_k] = φ(0)²
    >>> bool(np.isclose(delta_pair_moments(1.0, 0.0, phi0, 1.0, 0.0, phi0, 0.0)[2], phi0**2))
    True
    """
    return dirac_pair_terms(s_j, z_j, pdf_j / s_j, s_k, z_k, pdf_k / s_k, conditional_terms(z_j, z_k, rho))


@njit(cache=True)
def conditional_terms(z_j, z_k, rho):
    """``(q, r, Φ(A), φ(A), Φ(B), φ(B), ψ(A), ψ(B))`` of a neuron pair with ``|ρ| < 1``.

    ``q = √(1 − ρ²)``, ``r = ρ/q``, ``A = (z_k − ρ z_j)/q``, ``B = (z_j − ρ z_k)/q`` (the
    standardised mean of one pre-activation given the other at zero) and ``ψ = xΦ(x) + φ(x)``:
    what `delta_pair_moments` and the Hessian's pair table (`numerics.hessian`) share.

    >>> q, r, cdf_a, pdf_a, cdf_b, pdf_b, psi_a, psi_b = conditional_terms(0.0, 0.0, 0.0)
    >>> q, r, cdf_a, round(psi_a, 6)                   # independent, centred: A = 0, ψ(0) = φ(0)
    (1.0, 0.0, 0.5, 0.398942)
    """
    q = math.sqrt((1.0 - rho) * (1.0 + rho))
    r = rho / q
    a = (z_k - rho * z_j) / q
    b = (z_j - rho * z_k) / q
    cdf_a, pdf_a = norm_cdf(a), norm_pdf(a)
    cdf_b, pdf_b = norm_cdf(b), norm_pdf(b)
    return q, r, cdf_a, pdf_a, cdf_b, pdf_b, a * cdf_a + pdf_a, b * cdf_b + pdf_b


@njit(cache=True)
def dirac_pair_terms(s_j, z_j, dj, s_k, z_k, dk, terms):
    """The nine moments of `delta_pair_moments`, from ``dj = E[δ_j] = φ_j/s_j``, ``dk`` and
    ``terms = conditional_terms(z_j, z_k, ρ)``.

    >>> phi0 = 1 / np.sqrt(2 * np.pi)
    >>> round(dirac_pair_terms(1.0, 0.0, phi0, 1.0, 0.0, phi0, conditional_terms(0.0, 0.0, 0.0))[0], 6)
    0.199471
    """
    q, r, cdf_a, pdf_a, cdf_b, pdf_b, psi_a, psi_b = terms
    delta_j_on_k = dj * cdf_a
    on_j_delta_k = dk * cdf_b
    delta_delta = dj * pdf_a / (s_k * q)
    d1_j_relu_k = s_k * q * dj / s_j * (-z_j * psi_a - r * cdf_a)
    relu_j_d1_k = s_j * q * dk / s_k * (-z_k * psi_b - r * cdf_b)
    d1_j_on_k = dj / s_j * (-z_j * cdf_a - r * pdf_a)
    on_j_d1_k = dk / s_k * (-z_k * cdf_b - r * pdf_b)
    d2_j_relu_k = s_k * q * dj / (s_j * s_j) * ((z_j * z_j - 1.0) * psi_a + 2.0 * z_j * r * cdf_a
                                                + r * r * pdf_a)
    relu_j_d2_k = s_j * q * dk / (s_k * s_k) * ((z_k * z_k - 1.0) * psi_b + 2.0 * z_k * r * cdf_b
                                                + r * r * pdf_b)
    return (delta_j_on_k, on_j_delta_k, delta_delta, d1_j_relu_k, relu_j_d1_k, d1_j_on_k,
            on_j_d1_k, d2_j_relu_k, relu_j_d2_k)


# Below z = −5 the closed forms cancel (ψ(z) = φ(z) + zΦ(z) ≈ φ(z)/z²); there the Mills ratio
# R(x) = Φ(−x)/φ(x) = 1/(x + T₁), T_k = k/(x + T_{k+1}) (Laplace's continued fraction) gives
# ψ(−x) = φ(x) R T₁ and (x² + 1)Φ(−x) − xφ(x) = φ(x) R T₁ T₂ without cancellation. 60 levels
# reach double precision for x ≥ 5.
TAIL_Z = -5.0
_TAIL_DEPTH = 60


@njit(cache=True)
def rectified_moments(m, s):
    """``(E[a_+], E[a_+²])`` for ``a ~ N(m, s²)``, s ≥ 0, accurate in both tails.

    At m = 0: s/√(2π) and s²/2; in the lower tail, where the closed form (m² + s²)Φ(z) + msφ(z)
    cancels, a continued fraction keeps the relative accuracy (≈ 2s²φ(z)/|z|³ at z = −8):

    >>> mean, second = rectified_moments(0.0, 2.0)
    >>> round(mean, 6), round(second, 6)
    (0.797885, 2.0)
    >>> f"{rectified_moments(-8.0, 1.0)[1]:.3g}"
    '1.81e-17'
    """
    if s == 0.0:
        positive = max(m, 0.0)
        return positive, positive * positive
    z = m / s
    if z >= TAIL_Z:
        cdf = norm_cdf(z)
        pdf = norm_pdf(z)
        return m * cdf + s * pdf, (m * m + s * s) * cdf + m * s * pdf
    x = -z
    tail = 0.0
    for k in range(_TAIL_DEPTH, 2, -1):
        tail = k / (x + tail)
    t2 = 2.0 / (x + tail)
    t1 = 1.0 / (x + t2)
    mills = 1.0 / (x + t1)
    pdf = norm_pdf(x)
    return s * pdf * mills * t1, s * s * pdf * mills * t1 * t2


@vectorize(["float64(float64, float64)"], cache=True)
def _relu_mean(m, s):
    """``E[a_+] = m Φ(z) + s φ(z)`` for ``a ~ N(m, s²)``, s ≥ 0 (docs/theory.md §2)."""
    return rectified_moments(m, s)[0]


@vectorize(["float64(float64, float64)"], cache=True)
def _relu_second_moment(m, s):
    """``E[a_+²] = (m² + s²) Φ(z) + m s φ(z)`` for ``a ~ N(m, s²)``, s ≥ 0 (docs/theory.md §2)."""
    return rectified_moments(m, s)[1]


@vectorize(["float64(float64, float64, float64, float64, float64)"], cache=True)
def _relu_cross_moment(m_j, s_j, m_k, s_k, rho):
    """``E[a_j+ a_k+]`` for jointly Gaussian pre-activations (Rosenbaum 1961), s > 0."""
    z_j = m_j / s_j
    z_k = m_k / s_k
    return pair_moments(m_j, s_j, z_j, norm_cdf(z_j), norm_pdf(z_j),
                        m_k, s_k, z_k, norm_cdf(z_k), norm_pdf(z_k), rho)[0]


# --- checked entry points -------------------------------------------------------------
#
# The compiled ufuncs above take any float64; these wrappers check the arguments once
# (real, finite, s ≥ 0 or > 0, |ρ| ≤ 1, shapes that broadcast) and then call them.


def _arguments(names, values, *, scales=(), strict_scales=(), correlation=None):
    for name, value in zip(names, values):
        if isinstance(value, (bool, np.bool_)) or np.asarray(value).dtype == bool:
            raise TypeError(f"{name} must be a real number or array, not a bool")
    arrays = [finite_array(name, value) for name, value in zip(names, values)]
    for name, array in zip(names, arrays):
        if name in scales and np.any(array < 0):
            raise ValueError(f"{name} must be >= 0 (a standard deviation)")
        if name in strict_scales and np.any(array <= 0):
            raise ValueError(f"{name} must be > 0 (a standard deviation)")
        if name == correlation and np.any(np.abs(array) > 1):
            raise ValueError(f"{name} must be a correlation in [-1, 1]")
    try:
        np.broadcast_shapes(*(array.shape for array in arrays))
    except ValueError as error:
        shapes = ", ".join(f"{name} {array.shape}" for name, array in zip(names, arrays))
        raise ValueError(f"{', '.join(names)} must have shapes that broadcast; got {shapes}") from error
    return arrays


def bivariate_normal_cdf(h, k, rho):
    """Φ2(h, k; ρ) = P(X ≤ h, Y ≤ k) for standard normals with correlation ρ ∈ [−1, 1] (Genz 2004).

    >>> float(bivariate_normal_cdf(0.0, 0.0, 0.0))
    0.25
    """
    return _bivariate_normal_cdf(*_arguments(("h", "k", "rho"), (h, k, rho), correlation="rho"))


def relu_mean(m, s):
    """``E[a_+] = m Φ(z) + s φ(z)`` for ``a ~ N(m, s²)``, s ≥ 0 (docs/theory.md §2).

    >>> bool(float(relu_mean(0.0, 1.0)) == 1 / np.sqrt(2 * np.pi))
    True
    """
    return _relu_mean(*_arguments(("m", "s"), (m, s), scales=("s",)))


def relu_second_moment(m, s):
    """``E[a_+²] = (m² + s²) Φ(z) + m s φ(z)`` for ``a ~ N(m, s²)``, s ≥ 0 (docs/theory.md §2).

    >>> float(relu_second_moment(0.0, 2.0))
    2.0
    """
    return _relu_second_moment(*_arguments(("m", "s"), (m, s), scales=("s",)))


def relu_cross_moment(m_j, s_j, m_k, s_k, rho):
    """``E[a_j+ a_k+]`` for jointly Gaussian pre-activations (Rosenbaum 1961), s_j, s_k > 0.

    >>> float(relu_cross_moment(0.0, 1.0, 0.0, 1.0, 1.0))        # ρ = 1: E[a_+²] = 1/2
    0.5
    """
    return _relu_cross_moment(*_arguments(("m_j", "s_j", "m_k", "s_k", "rho"), (m_j, s_j, m_k, s_k, rho),
                                          strict_scales=("s_j", "s_k"), correlation="rho"))


# --- Mehler (Hermite) expansion for weakly correlated pairs -------------------------------
#
# For standard normals (X, Y) with correlation ρ, E[f(X) g(Y)] = Σ_n ρⁿ/n! E[f Heₙ] E[g Heₙ]
# (Mehler's formula). For f(x) = (z + x)_+ the coefficients are c_0 = ψ(z) = zΦ(z) + φ(z),
# c_1 = Φ(z), c_n = (−1)ⁿ He_{n−2}(z) φ(z) (n ≥ 2, Gaussian integration by parts); those of
# 1{x > −z} are c_{n+1} and those of δ(x + z) are c_{n+2}. With Aₙ = cₙ/√(n!):
#   E[a_j+ a_k+]     = s_j s_k Σ ρⁿ Aₙ(j) Aₙ(k)
#   P(a_j>0, a_k>0)  = Σ ρⁿ (n+1) A_{n+1}(j) A_{n+1}(k)
#   E[1{a_j>0} a_k+] = s_k Σ ρⁿ √(n+1) A_{n+1}(j) Aₙ(k)
#   E[δ(a_j) a_k+]   = (s_k/s_j) Σ ρⁿ √((n+1)(n+2)) A_{n+2}(j) Aₙ(k)
# Cramér's inequality |Heₙ(x)| ≤ 1.0865 √(n!) e^{x²/4} gives |Aₙ| ≤ 0.4335/(n−1) for n ≥ 2,
# so each series' tail after N terms is below 0.19 |ρ|^N / ((N−1)(1−|ρ|)), the bound that
# `mehler_terms` uses to choose N. Summed over samples, each term is a matrix product
# (`numerics.objective`), against ~30 transcendental calls per pair and sample for Φ2.

MEHLER_MAX_TERMS = 60
MEHLER_TOLERANCE = 1e-17


@vectorize(["int64(float64)"], cache=True)
def _mehler_terms_one(abs_rho):
    if abs_rho == 0.0:
        return 1
    scale = 0.19 / (1.0 - min(abs_rho, 0.999))
    power = abs_rho
    for n in range(2, MEHLER_MAX_TERMS + 1):
        power *= abs_rho
        if scale * power / (n - 1) < MEHLER_TOLERANCE:
            return n
    return 0


def mehler_terms(abs_rho: np.ndarray) -> np.ndarray:
    """Number of Mehler terms whose tail bound is below `MEHLER_TOLERANCE` (0: too many).

    The smallest N ≤ `MEHLER_MAX_TERMS` with ``0.19 |ρ|^N / ((N−1)(1−|ρ|)) < MEHLER_TOLERANCE``
    (1 when ρ = 0), found by a loop that stops at N: one pass over the pairs.

    >>> mehler_terms(np.array([0.0, 0.05, 0.3, 0.95])).tolist()
    [1, 12, 29, 0]
    """
    abs_rho = finite_array("abs_rho", abs_rho)
    if np.any(abs_rho < 0) or np.any(abs_rho > 1):
        raise ValueError("abs_rho must hold absolute correlations in [0, 1]")
    return _mehler_terms_one(abs_rho)
