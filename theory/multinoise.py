"""The multi-noise ReLU DAE: the extra Stein terms of the skip, the decay mapping, the gain symmetry.

The authors' diffusion model adds per-noise gains g and a scalar skip s to the tied ReLU-DAE,
``f(y) = F(y) + s y`` with ``F(y) = W diag(g)[Wᵀy]_+`` (``numerics.multinoise``). Its
single-σ loss splits (derived here) as

``E‖F + s y − x‖² = E‖F − x‖² + 2s (E[Fᵀy] − E[xᵀy]) + s² E‖y‖²``,  ``y = x + σε``,

and the three new expectations have closed forms:

* ``E[Fᵀy] = Σ_j g_j E[(a_j)_+ a_j]`` with ``a_j = w_jᵀy ~ N(m, s_a²)``, ``m = w_jᵀx``,
  ``s_a = σ‖w_j‖``; by Stein's lemma ``E[ε_a (a)_+] = s_a Φ(m/s_a)``, so
  ``E[(a)_+ a] = m E[a_+] + s_a² Φ(m/s_a)``, which equals the rectified second moment
  ``E[a_+²] = (m² + s_a²)Φ + m s_a φ`` (:func:`stein_cross_moment`, :func:`cross_moment_gap`);
* ``E[xᵀy] = ‖x‖²`` and ``E‖y‖² = ‖x‖² + σ²d`` (per coordinate: :func:`noisy_coordinate_moments`).

PyTorch's ``weight_decay`` wd with ``MSELoss`` (which divides by d) is the penalty ``λ‖θ‖²`` with
``λ = d·wd/2`` (:func:`decay_mapping`). With no decay, ``w_j → c w_j``, ``g_j → g_j/c²`` (a shift
of the last gain bias by ``−2 log c``) leaves the model unchanged (:func:`gain_rescaling`).

>>> from theory.multinoise import cross_moment_gap
>>> cross_moment_gap()
0
"""
from __future__ import annotations

import functools

import sympy as sp

from theory.rectified_gaussian import m, relu_mean, relu_second_moment, sd
from theory.symbols import Phi, numeric_twin, phi, sigma

__all__ = [
    "stein_noise_moment_by_integration", "stein_noise_moment", "stein_cross_moment", "cross_moment_gap",
    "noisy_coordinate_moments", "skip_expansion", "decay_mapping", "gain_rescaling",
    "stein_cross_moment_np", "skip_terms_np",
]

_t = sp.Symbol("t", real=True)          # a standard normal coordinate of the noise


@functools.cache
def stein_noise_moment_by_integration() -> sp.Expr:
    """``E[ε (m + sε)_+]`` for ε ~ N(0, 1), by integration over ``ε > −m/s``.

    >>> sp.simplify(stein_noise_moment_by_integration() - stein_noise_moment())   # Stein's lemma
    0
    """
    integrand = _t * (m + sd * _t) * phi(_t)
    return sp.simplify(sp.integrate(integrand, (_t, -m / sd, sp.oo), conds="none"))


def stein_noise_moment() -> sp.Expr:
    """Stein's lemma: ``E[ε g(m + sε)] = s E[g'(m + sε)]``; for ``g = (·)_+`` this is ``s Φ(m/s)``.

    >>> stein_noise_moment().subs(m, 0)               # s·Φ(0)
    s/2
    """
    return sd * Phi(m / sd)


def stein_cross_moment() -> sp.Expr:
    """``E[(a)_+ a] = m E[a_+] + s E[ε (a)_+] = m E[a_+] + s² Φ(m/s)`` for ``a = m + sε``.

    >>> stein_cross_moment().subs({m: 0, sd: 1}), float(stein_cross_moment_np(0.0, 1.0))   # E[ε_+²] = 1/2
    (1/2, 0.5)
    """
    return m * relu_mean() + sd * stein_noise_moment()


@functools.cache
def cross_moment_gap() -> sp.Expr:
    """``E[(a)_+ a] − E[a_+²]`` by the Stein route, simplified: zero (the identity the objective uses).

    >>> cross_moment_gap()
    0
    """
    return sp.simplify((stein_cross_moment() - relu_second_moment()).rewrite(sp.erf))


@functools.cache
def noisy_coordinate_moments() -> dict:
    """Per coordinate of ``y = x + σε``: ``E[x y] = x²`` and ``E[y²] = x² + σ²`` (sum: ``‖x‖²``, ``‖x‖² + σ²d``).

    Each value is a pair (by integration, claimed form).

    >>> all(sp.simplify(found - claimed) == 0 for found, claimed in noisy_coordinate_moments().values())
    True
    """
    x = sp.Symbol("x", real=True)
    density = phi(_t)
    first = sp.integrate(x * (x + sigma * _t) * density, (_t, -sp.oo, sp.oo))
    second = sp.integrate((x + sigma * _t) ** 2 * density, (_t, -sp.oo, sp.oo))
    return {"E[x y]": (sp.simplify(first), x ** 2), "E[y²]": (sp.simplify(second), x ** 2 + sigma ** 2)}


def skip_expansion() -> tuple[sp.Expr, sp.Expr]:
    """``(F + s y − x)²`` against ``(F − x)² + 2s(F y − x y) + s² y²`` (coordinate-wise, so for sums too).

    >>> square, split = skip_expansion()
    >>> sp.expand(square - split)
    0
    """
    F, x, y, s = sp.symbols("F x y s", real=True)
    return sp.expand((F + s * y - x) ** 2), sp.expand((F - x) ** 2 + 2 * s * (F * y - x * y) + s ** 2 * y ** 2)


def decay_mapping() -> sp.Expr:
    """λ such that PyTorch's step ``∂ℓ/∂θ + wd·θ`` with ``ℓ = L/d`` is ``(1/d)∂(L + λθ²)/∂θ``: ``d·wd/2``.

    >>> decay_mapping()
    d*w_d/2
    """
    theta, wd, d, lam = sp.symbols("theta w_d d lambda", positive=True)
    L = sp.Function("L")(theta)
    torch_step = sp.diff(L / d, theta) + wd * theta
    eq6_step = sp.diff(L + lam * theta ** 2, theta) / d
    return sp.solve(sp.Eq(torch_step, eq6_step), lam)[0]


def gain_rescaling() -> dict:
    """Invariances of ``w_j → c w_j, g_j → g_j/c²`` (c > 0): the decoder map and the skip's Stein term.

    Returns expressions that simplify to zero: the change of ``g_j w_j w_jᵀ`` (scalar stand-in
    ``g w²``) and of ``g_j E[(a_j)_+²]`` (degree-2 homogeneity of ``E[a_+²]`` in (m, s), both
    linear in w_j).

    >>> gain_rescaling()
    {'decoder map': 0, 'skip Stein term': 0}
    """
    c, g, w = sp.symbols("c g w", positive=True)
    second = relu_second_moment()
    scaled = second.subs({m: c * m, sd: c * sd}, simultaneous=True)
    return {"decoder map": sp.simplify((g / c ** 2) * (c * w) ** 2 - g * w ** 2),
            "skip Stein term": sp.simplify(((g / c ** 2) * scaled - g * second).rewrite(sp.erf))}


stein_cross_moment_np = numeric_twin(stein_cross_moment, (m, sd))


def skip_terms_np(energy_x, gain_energy, s, sigma_value, d):
    """``2s(Σ_j g_j E[(a_j)_+²] − ‖x‖²) + s²(‖x‖² + σ²d)``: what the skip adds to ``E‖F − x‖²``.

    ``energy_x = ‖x‖²``; ``gain_energy = Σ_j g_j E[(a_j)_+²]`` (from :func:`stein_cross_moment_np`).

    >>> skip_terms_np(1.0, 1.0, 0.5, 0.0, 2)          # σ = 0 and F = x: only s²‖x‖² = 1/4 is left
    0.25
    """
    return 2.0 * s * (gain_energy - energy_x) + s * s * (energy_x + sigma_value ** 2 * d)
