"""Corollary 3.2 (memorisation, p ≥ n): eq. (9) as the rank-1 case of eq. (8), its loss, its spike.

Each training sample x (‖x‖² = s) is its own cluster: n_k = 1, X_kX_kᵀ = x xᵀ has the single
eigenvalue Λ = s with eigenvector x/‖x‖, and λ' = nλ. Eq. (8) then gives one column r·x.

>>> from theory.memorization import r_eq9, r_eq9_np
>>> r_eq9()
sqrt(-lambda*n + s)/sqrt(s**2 + s*sigma**2)
>>> round(float(r_eq9_np(4.0, 1, 0.0, 0.0)), 6)   # σ = λ = 0: r = 1/‖x‖
0.5
"""
from __future__ import annotations

import functools

import sympy as sp

from theory import linear_block
from theory.symbols import Lam, lam, lam_p, n, n_k, numeric_twin, p, s, sigma, Phi, phi

__all__ = [
    "r_from_eq8", "r_eq9", "loss_per_sample", "loss_per_sample_no_decay",
    "gap_below_sigma_sq", "spike_height", "expected_spike", "onehot_std",
    "spike_std", "expected_spike_std", "r_eq9_np", "loss_per_sample_np",
    "loss_per_sample_no_decay_np", "gap_below_sigma_sq_np", "spike_height_np", "spike_std_np", "expected_spike_np", "expected_spike_std_np",
]

_RANK_ONE = {Lam: s, n_k: 1, lam_p: n * lam}


@functools.cache
def r_from_eq8() -> sp.Expr:
    """r_i from eq. (8) with p_k = 1: the column is (x/‖x‖)·√a*, so r = √a*(Λ = s, n_k = 1, λ' = nλ)/√s."""
    column_scale = linear_block.eq8_column_scale().subs(_RANK_ONE)
    return column_scale / sp.sqrt(s)


def r_eq9() -> sp.Expr:
    """Eq. (9) as printed: ``r_i = √((‖x_i‖² − nλ)/(‖x_i‖⁴ + σ²‖x_i‖²))``."""
    return sp.sqrt((s - n * lam) / (s ** 2 + sigma ** 2 * s))


@functools.cache
def loss_per_sample() -> sp.Expr:
    """Contribution of one memorised sample to n·L (eq. 6) at stable masks, decay included.

    The minimal value of Lemma D.1's scalar problem with Λ = s, n_k = 1, λ' = nλ; the other
    directions of a rank-1 cluster carry no energy. L = (1/n) Σ_i loss_per_sample(s_i).
    """
    return sp.simplify(linear_block.minimal_value().subs(_RANK_ONE))


@functools.cache
def loss_per_sample_no_decay() -> sp.Expr:
    """λ → 0 limit of :func:`loss_per_sample`: ``σ²‖x‖²/(σ² + ‖x‖²)`` (Cor. 3.2)."""
    return sp.factor(sp.limit(loss_per_sample(), lam, 0))


@functools.cache
def gap_below_sigma_sq() -> sp.Expr:
    """``σ² − σ²s/(σ² + s) = σ⁴/(σ² + s)``: positive, so the Cor. 3.2 loss is < σ² for σ > 0."""
    return sp.factor(sp.simplify(sigma ** 2 - loss_per_sample_no_decay()))


@functools.cache
def spike_height() -> sp.Expr:
    """The spike r·xᵀx = r‖x‖² of the representation of the clean sample (≈ ‖x‖ for small σ, λ)."""
    return sp.simplify(r_from_eq8() * s)


@functools.cache
def expected_spike() -> sp.Expr:
    """E[h_i] for the noisy sample x_i + σε: h_i = [r xᵀ(x + σε)]_+ has mean r s, std σ r √s.

    The rectified mean m Φ(m/t) + t φ(m/t) with m/t = ‖x‖/σ (see theory.rectified_gaussian).
    """
    mean, std = r_from_eq8() * s, sigma * r_from_eq8() * sp.sqrt(s)
    z = sp.sqrt(s) / sigma
    assert sp.simplify(mean / std - z) == 0
    return mean * Phi(z) + std * phi(z)


@functools.cache
def onehot_std() -> sp.Expr:
    """Std of a vector in R^p with one entry h ≥ 0 and the rest 0: ``h√(p − 1)/p``.

    From ``Std(h)² = ‖h‖²/p − ‖h‖_1²/p²`` (THEORY.md §4) with ‖h‖² = h², ‖h‖_1 = h.
    """
    h = sp.Symbol("h", positive=True)
    return sp.sqrt(sp.factor(h ** 2 / p - h ** 2 / p ** 2))


@functools.cache
def spike_std() -> sp.Expr:
    """Predicted Std of the representation of a clean training sample at W_mem (one-hot)."""
    h = sp.Symbol("h", positive=True)
    return onehot_std().subs(h, spike_height())


@functools.cache
def expected_spike_std() -> sp.Expr:
    """E[Std(h)] for a noisy training sample, while the other neurons stay off.

    Std of a one-hot vector is linear in its entry, so E[Std] = √(p − 1)/p · E[h_i].
    The other neurons j fire with probability Φ(x_jᵀx_i/(σ‖x_j‖)), exponentially small
    when the samples are negatively correlated (β1 < 0), which this formula neglects.
    """
    h = sp.Symbol("h", positive=True)
    return onehot_std().subs(h, expected_spike())


r_eq9_np = numeric_twin(r_eq9, (s, n, sigma, lam))
loss_per_sample_np = numeric_twin(loss_per_sample, (s, n, sigma, lam))
loss_per_sample_no_decay_np = numeric_twin(loss_per_sample_no_decay, (s, sigma))
gap_below_sigma_sq_np = numeric_twin(gap_below_sigma_sq, (s, sigma))
spike_height_np = numeric_twin(spike_height, (s, n, sigma, lam))
spike_std_np = numeric_twin(spike_std, (s, n, sigma, lam, p))
expected_spike_np = numeric_twin(expected_spike, (s, n, sigma, lam))
expected_spike_std_np = numeric_twin(expected_spike_std, (s, n, sigma, lam, p))
