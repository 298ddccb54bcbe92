"""Corollary 3.4 (hybrid): a sample duplicated n_l times is memorised by one column r_l x_l.

A cluster of n_l copies of x (‖x‖² = s) has X_lX_lᵀ = n_l x xᵀ: one eigenvalue Λ = n_l s,
noise factor n_l, decay λ' = nλ. Eq. (8) with p_l = 1 gives
``r_l² = (n_l s − nλ)/(n_l s² + n_l σ² s)``: the copies dilute the weight decay (nλ/n_l) but
not the noise, so a duplicate's column is the memorising column of Cor. 3.2 with n λ → nλ/n_l.

>>> from theory.hybrid import duplicate_r_sq_np
>>> round(float(duplicate_r_sq_np(4.0, 3, 10, 0.5, 0.01)), 6)
0.233333
"""
from __future__ import annotations

import functools

import sympy as sp

from theory import linear_block
from theory.symbols import Lam, lam, lam_p, n, n_k, n_l, numeric_twin, s, sigma

__all__ = ["duplicate_r_sq_from_eq8", "duplicate_r_sq_theory", "duplicate_loss",
           "duplicate_loss_no_decay", "duplicate_validity", "duplicate_r_sq_np", "duplicate_loss_np",
           "duplicate_loss_no_decay_np"]

_DUPLICATES = {Lam: n_l * s, n_k: n_l, lam_p: n * lam}


@functools.cache
def duplicate_r_sq_from_eq8() -> sp.Expr:
    """r_l² from eq. (8) with p_l = 1 on n_l copies: a*(Λ = n_l s, n_k = n_l, λ' = nλ)/s.

    >>> sp.simplify(duplicate_r_sq_from_eq8() - duplicate_r_sq_theory())   # the stated form
    0
    """
    return sp.simplify(linear_block.optimal_scale().subs(_DUPLICATES) / s)


def duplicate_r_sq_theory() -> sp.Expr:
    """docs/theory.md's statement ``r_l² = (n_l‖x_l‖² − nλ)/(n_l‖x_l‖⁴ + n_lσ²‖x_l‖²)``.

    >>> duplicate_r_sq_theory().subs(n_l, 1)         # one copy: r² of eq. (9)
    (-lambda*n + s)/(s**2 + s*sigma**2)
    """
    return (n_l * s - n * lam) / (n_l * s ** 2 + n_l * sigma ** 2 * s)


@functools.cache
def duplicate_loss() -> sp.Expr:
    """Contribution of the n_l copies to n·L (eq. 6) at stable masks, decay included.

    >>> duplicate_loss()
    (-lambda**2*n**2 + 2*lambda*n*n_l*s + n_l**2*s*sigma**2)/(n_l*(s + sigma**2))
    """
    return sp.simplify(linear_block.minimal_value().subs(_DUPLICATES))


@functools.cache
def duplicate_loss_no_decay() -> sp.Expr:
    """λ → 0: n_l σ² s/(s + σ²) — each copy costs what a memorised sample costs (Cor. 3.2).

    >>> duplicate_loss_no_decay()
    n_l*s*sigma**2/(s + sigma**2)
    """
    return sp.factor(sp.limit(duplicate_loss(), lam, 0))


@functools.cache
def duplicate_validity() -> sp.Rel:
    """The condition for r_l² > 0: Lemma D.1's Λ > λ', i.e. ``n_l s > nλ``.

    >>> duplicate_validity()
    n_l*s > lambda*n
    """
    return linear_block.validity_condition().subs(_DUPLICATES)


duplicate_r_sq_np = numeric_twin(duplicate_r_sq_from_eq8, (s, n_l, n, sigma, lam))
duplicate_loss_np = numeric_twin(duplicate_loss, (s, n_l, n, sigma, lam))
duplicate_loss_no_decay_np = numeric_twin(duplicate_loss_no_decay, (s, n_l, sigma))
