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
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import sympy as sp
from scipy import optimize, special

from numerics.validation import as_matrix, nonnegative
from theory import linear_block
from theory.errors import AssumptionError, check_negative_beta
from theory.symbols import Lam, lam, lam_p, n, n_k, numeric_twin, p, s, sigma, Phi, phi

__all__ = [
    "r_from_eq8", "r_eq9", "loss_per_sample", "loss_per_sample_no_decay",
    "gap_below_sigma_sq", "spike_height", "expected_spike", "onehot_std",
    "spike_std", "expected_spike_std", "r_eq9_np", "loss_per_sample_np",
    "loss_per_sample_no_decay_np", "gap_below_sigma_sq_np", "spike_height_np", "spike_std_np",
    "expected_spike_np", "expected_spike_std_np", "new_neuron_correlation", "new_neuron_correlation_closed",
    "new_neuron_correlation_np", "SaddleDecay", "saddle_decay",
]

_RANK_ONE = {Lam: s, n_k: 1, lam_p: n * lam}


@functools.cache
def r_from_eq8() -> sp.Expr:
    """r_i from eq. (8) with p_k = 1: the column is (x/‖x‖)·√a*, so r = √a*(Λ = s, n_k = 1, λ' = nλ)/√s.

    >>> sp.simplify(r_from_eq8() - r_eq9())           # eq. (9) is the rank-1 case of eq. (8)
    0
    """
    column_scale = linear_block.eq8_column_scale().subs(_RANK_ONE)
    return column_scale / sp.sqrt(s)


def r_eq9() -> sp.Expr:
    """Eq. (9) as printed: ``r_i = √((‖x_i‖² − nλ)/(‖x_i‖⁴ + σ²‖x_i‖²))``.

    >>> r_eq9().subs({sigma: 0, lam: 0})             # no noise, no decay: r_i x_i = x_i/‖x_i‖
    1/sqrt(s)
    """
    return sp.sqrt((s - n * lam) / (s ** 2 + sigma ** 2 * s))


@functools.cache
def loss_per_sample() -> sp.Expr:
    """Contribution of one memorised sample to n·L (eq. 6) at stable masks, decay included.

    The minimal value of Lemma D.1's scalar problem with Λ = s, n_k = 1, λ' = nλ; the other
    directions of a rank-1 cluster carry no energy. L = (1/n) Σ_i loss_per_sample(s_i).

    >>> loss_per_sample()
    (-lambda**2*n**2 + 2*lambda*n*s + s*sigma**2)/(s + sigma**2)
    """
    return sp.simplify(linear_block.minimal_value().subs(_RANK_ONE))


@functools.cache
def loss_per_sample_no_decay() -> sp.Expr:
    """λ → 0 limit of :func:`loss_per_sample`: ``σ²‖x‖²/(σ² + ‖x‖²)`` (Cor. 3.2).

    >>> loss_per_sample_no_decay(), float(loss_per_sample_no_decay_np(4.0, 1.0))   # 4/5
    (s*sigma**2/(s + sigma**2), 0.8)
    """
    return sp.factor(sp.limit(loss_per_sample(), lam, 0))


@functools.cache
def gap_below_sigma_sq() -> sp.Expr:
    """``σ² − σ²s/(σ² + s) = σ⁴/(σ² + s)``: positive, so the Cor. 3.2 loss is < σ² for σ > 0.

    >>> gap_below_sigma_sq(), gap_below_sigma_sq().is_positive
    (sigma**4/(s + sigma**2), True)
    """
    return sp.factor(sp.simplify(sigma ** 2 - loss_per_sample_no_decay()))


@functools.cache
def spike_height() -> sp.Expr:
    """The spike r·xᵀx = r‖x‖² of the representation of the clean sample (≈ ‖x‖ for small σ, λ).

    >>> spike_height().subs({sigma: 0, lam: 0})       # ‖x‖
    sqrt(s)
    """
    return sp.simplify(r_from_eq8() * s)


@functools.cache
def expected_spike() -> sp.Expr:
    """E[h_i] for the noisy sample x_i + σε: h_i = [r xᵀ(x + σε)]_+ has mean r s, std σ r √s.

    The rectified mean m Φ(m/t) + t φ(m/t) with m/t = ‖x‖/σ (see theory.rectified_gaussian).

    >>> args = (4.0, 1, 0.1, 0.0)                      # ‖x‖² = 4, n = 1, σ = 0.1, λ = 0: ‖x‖/σ = 20
    >>> round(float(expected_spike_np(*args)), 6), round(float(spike_height_np(*args)), 6)   # 4/√4.01
    (1.997505, 1.997505)
    """
    mean, std = r_from_eq8() * s, sigma * r_from_eq8() * sp.sqrt(s)
    z = sp.sqrt(s) / sigma
    assert sp.simplify(mean / std - z) == 0
    return mean * Phi(z) + std * phi(z)


@functools.cache
def onehot_std() -> sp.Expr:
    """Std of a vector in R^p with one entry h ≥ 0 and the rest 0: ``h√(p − 1)/p``.

    From ``Std(h)² = ‖h‖²/p − ‖h‖_1²/p²`` (docs/theory.md §4) with ‖h‖² = h², ‖h‖_1 = h.

    >>> onehot_std(), float(np.std([1.0, 0.0, 0.0, 0.0]))       # h = 1, p = 4: √3/4
    (h*sqrt(p - 1)/p, 0.4330127018922193)
    """
    h = sp.Symbol("h", positive=True)
    return sp.sqrt(sp.factor(h ** 2 / p - h ** 2 / p ** 2))


@functools.cache
def spike_std() -> sp.Expr:
    """Predicted Std of the representation of a clean training sample at W_mem (one-hot).

    >>> spike_std().subs({s: 4, p: 4, sigma: 0, lam: 0})      # spike ‖x‖ = 2, times √3/4
    sqrt(3)/2
    """
    h = sp.Symbol("h", positive=True)
    return onehot_std().subs(h, spike_height())


@functools.cache
def expected_spike_std() -> sp.Expr:
    """E[Std(h)] for a noisy training sample, while the other neurons stay off.

    Std of a one-hot vector is linear in its entry, so E[Std] = √(p − 1)/p · E[h_i].
    The other neurons j fire with probability Φ(x_jᵀx_i/(σ‖x_j‖)), exponentially small
    when the samples are negatively correlated (β1 < 0), which this formula neglects.

    >>> round(float(expected_spike_std_np(4.0, 1, 0.1, 0.0, 4)), 6)   # 1.997505 · √3/4
    0.864945
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


# ----------------------------------------------------------------------------- zero columns (p > n)
#
# Derived here, for loss (6) as printed (untied W1, W2). With p > n, W_mem has p − n zero
# columns. Growing one of them into a small neuron (t·a, t·b) changes the loss by
# t²[λ(‖a‖² + ‖b‖²) + bᵀG(a)] + O(t³), with G(a) = (2/n) Σ_i E[(f(y_i) − x_i)(aᵀy_i)_+], y_i = x_i + σε; minimising over b, W_mem is
# stable in these directions iff ‖G(a)‖ ≤ 2λ‖a‖ for every a.
# In the stable-mask approximation (neuron i on for every noisy copy of x_i, all others
# off: exact up to Φ(−margin)), the residual of sample i is f(y_i) − x_i = x_i ξ_i with
# ξ_i = (r_i²s_i − 1) + r_i²σ√s_i ζ, ζ = x̂_iᵀε ~ N(0, 1), and G(a) = (2/n) Σ_i x_i E[ξ_i u_i+],
# u_i = aᵀy_i ~ N(m_i, t²), m_i = aᵀx_i, t = σ‖a‖.

#: m_i = aᵀx_i, the clean pre-activation of the new neuron on sample i
m_new = sp.Symbol("m", real=True)
#: t = σ‖a‖, its noise standard deviation
t_new = sp.Symbol("t", positive=True)


@functools.cache
def new_neuron_correlation() -> sp.Expr:
    """``E[ξ_i (aᵀy_i)_+]`` from the rectified mean and Stein's lemma (derived here).

    ``E[u_+] = mΦ(m/t) + tφ(m/t)`` and, by Stein's lemma, ``E[ζ u_+] = Cov(ζ, u)·P(u > 0)
    = σ(aᵀx̂_i)Φ(m/t) = σ(m/√s)Φ(m/t)``; ξ is affine in ζ with the r_i of eq. (9).

    >>> sp.simplify(new_neuron_correlation() - new_neuron_correlation_closed())
    0
    """
    r_sq = r_from_eq8() ** 2
    z = m_new / t_new
    relu_mean = m_new * Phi(z) + t_new * phi(z)
    stein = sigma * (m_new / sp.sqrt(s)) * Phi(z)
    return (r_sq * s - 1) * relu_mean + r_sq * sigma * sp.sqrt(s) * stein


def new_neuron_correlation_closed() -> sp.Expr:
    """Its simplified form: ``−nλ·mΦ(m/t)/s − (σ² + nλ)·tφ(m/t)/(s + σ²)`` (derived here).

    The Φ terms of the residual's mean and of its noise cancel except for the decay's share:
    at λ = 0 only ``−σ²tφ(m/t)/(s + σ²)`` is left, negative for every direction a. That is
    why a zero column of W_mem is a saddle direction at λ = 0 (Cor. 3.2 with p > n).

    >>> new_neuron_correlation_np.args                        # its twin's arguments, in order
    (m, t, s, n, sigma, lambda)
    >>> round(float(new_neuron_correlation_np(0.0, 1.0, 4.0, 1, 1.0, 0.0)), 6)   # −φ(0)/5
    -0.079788
    """
    z = m_new / t_new
    return -n * lam * m_new * Phi(z) / s - (sigma ** 2 + n * lam) * t_new * phi(z) / (s + sigma ** 2)


#: numeric twins: the correlation split as −[nλ·A + (σ² + nλ)·B] with A = mΦ(m/t)/s, B = tφ(m/t)/(s + σ²)
new_neuron_correlation_np = numeric_twin(new_neuron_correlation_closed, (m_new, t_new, s, n, sigma, lam))


@dataclass(frozen=True)
class SaddleDecay:
    """The weight decay below which W_mem with zero columns is a saddle (`saddle_decay`).

    ``lam`` the threshold λ*; ``direction`` the unit vector a* (d,) of the new neuron that
    escapes first; ``overlaps`` ``a*ᵀx_i/σ`` (the noisy regime of the new neuron on each
    sample); ``ratio`` the function λ ↦ stability ratio along a* (> 1: descent);
    ``margin`` the smallest ``(own spike, other neurons' gap)/σ`` of the stable-mask
    approximation; ``error`` a rigorous bound on ``‖G_exact(a) − G_approx(a)‖/2`` over unit
    directions (so the ratio at λ is exact to ± error/λ; see `neglected_gradient_bound`);
    ``kappa`` the critical σ²/(nλ).

    Returned by `saddle_decay`.
    """

    lam: float
    direction: np.ndarray
    overlaps: np.ndarray
    margin: float
    error: float
    kappa: float
    ratio: Callable[[float], float] = field(repr=False, compare=False)


def _stability_parts(X, norms_sq, sigma, overlaps):
    """A and B of `new_neuron_correlation_np` per sample, for a unit direction with aᵀx_i = overlaps."""
    z = overlaps / sigma
    A = overlaps * special.ndtr(z) / norms_sq
    B = sigma * np.exp(-0.5 * z * z) / np.sqrt(2 * np.pi) / (norms_sq + sigma ** 2)
    return A, B


def _kappa_limit(X, norms_sq, sigma, a):
    """Largest κ = σ²/(nλ) at which the direction a is still stable: ‖X(A + B) + κ·XB‖ ≤ 1."""
    A, B = _stability_parts(X, norms_sq, sigma, X.T @ a)
    u, v = X @ (A + B), X @ B
    vv, uv, uu = v @ v, u @ v, u @ u
    if vv == 0:
        return np.inf
    discriminant = uv * uv + vv * (1.0 - uu)
    if discriminant < 0:
        return 1e-300
    return max((-uv + np.sqrt(discriminant)) / vv, 1e-300)


MIN_MARGIN = 2.0   # the stable-mask approximation neglects firing probabilities ≤ Φ(−2) = 2.3 %


def _memorisation_set(X, sigma):
    """X checked for `saddle_decay`: (X, ‖x_i‖², the stable-mask margin); errors name what fails."""
    X = as_matrix("X", X, cols_name="n")
    sigma = nonnegative("sigma", sigma, symbol="σ")
    if sigma == 0:
        raise ValueError("sigma (σ) must be > 0: at σ = 0 no neuron is half-active, λ* = 0")
    n = X.shape[1]
    norms_sq = np.sum(X ** 2, axis=0)
    if np.any(norms_sq == 0):
        raise ValueError("X must have no zero column (every training sample is memorised)")
    if n > 1:
        check_negative_beta(X, np.arange(n), what="training samples (β1 of Cor. 3.2)")
    unit = X / np.sqrt(norms_sq)
    gaps = -(unit.T @ X)                       # −x̂_jᵀx_i ≥ 0: how far neuron j is from firing on x_i
    np.fill_diagonal(gaps, np.inf)
    margin = float(min(np.sqrt(norms_sq).min(), gaps.min()) / sigma)
    if margin < MIN_MARGIN:
        raise AssumptionError("margin of the stable-mask approximation, min(‖x_i‖, |x̂_jᵀx_i|)/σ", margin,
                              f">= {MIN_MARGIN:g}", "the other neurons fire too often on the noisy samples")
    return X, norms_sq, margin


def _escape_direction(X, norms_sq, sigma, z_max, seed):
    """(κ*, a*): the smallest κ = σ²/(nλ) at which a unit direction a* reaches stability ratio 1."""
    d, n = X.shape
    # The loss sees a only through its overlaps Xᵀa and ‖a‖: work in an orthonormal basis of
    # span(X), plus one direction orthogonal to every sample when d > rank(X).
    Q, singular, _ = np.linalg.svd(X, full_matrices=False)
    Q = Q[:, singular > 1e-12 * singular[0]]
    orthogonal = Q.shape[1] < d
    if orthogonal:
        Q = np.column_stack([Q, _orthogonal_unit(Q, d)])
    coords = Q.T @ X                            # (size, n): the samples in that basis
    size = Q.shape[1]

    def objective(v):
        """−1/κ(a): finite everywhere (0 where a never escapes), so a smooth minimisation target."""
        a = v / np.linalg.norm(v)
        excess = np.maximum(coords.T @ a / sigma - z_max, 0.0)
        return -1.0 / _kappa_limit(coords, norms_sq, sigma, a) + float(excess @ excess)

    # Starts: directions with prescribed overlaps aᵀx_i = σ·target (completed to unit norm
    # by the orthogonal direction when there is one), and random directions.
    rng = np.random.default_rng(seed)
    pseudo = np.linalg.pinv(coords.T)
    starts = [rng.standard_normal(size) for _ in range(4)]
    for target in [np.zeros(n), np.ones(n)] + list(np.eye(n)) + [rng.uniform(-1, 2, n) for _ in range(4)]:
        v = pseudo @ (sigma * target)
        if orthogonal and v @ v < 1:
            v[-1] = np.sqrt(1 - v @ v)
        if np.linalg.norm(v) > 0:
            starts.append(v)
    best = min((optimize.minimize(objective, start, method="L-BFGS-B", options=dict(ftol=1e-15, gtol=1e-12))
                for start in starts), key=lambda out: out.fun)
    kappa = -1.0 / float(best.fun) if best.fun < 0 else np.inf
    if not (np.isfinite(kappa) and kappa > 0):
        raise AssumptionError("a finite saddle threshold in the stable-mask approximation", kappa, "0 < κ* < ∞")
    return kappa, Q @ (best.x / np.linalg.norm(best.x))


def saddle_decay(X, sigma, *, z_max: float | None = None, seed=0) -> SaddleDecay:
    """The decay λ* below which eq. (9) with zero columns (p > n) is a saddle (derived here).

    Cor. 3.2 asserts a local minimiser W_mem = (r_1x_1 … r_nx_n 0 … 0) for every p ≥ n and
    nλ < min‖x_i‖². With p > n, a zero column can grow into a new neuron a that is only
    half-active, on the noise of the samples; the loss drops unless the decay outweighs
    the correlation of the residuals with that neuron (`new_neuron_correlation_closed`).
    Writing κ = σ²/(nλ), the stability ratio of loss (6) as printed (untied W1, W2) along a
    unit direction a is ``‖Σ_i x_i (A_i + B_i + κB_i)‖``, with A_i, B_i of
    `_stability_parts`; W_mem is stable iff it is ≤ 1 for every a. λ* = σ²/(n·κ*), κ* the
    smallest κ at which some direction reaches ratio 1, found by optimising over the
    directions (the loss depends on a only through its overlaps with the samples and ‖a‖,
    so over span(X) plus one orthogonal direction). The directions parallel to a live column x_i have ratio exactly
    1 for every λ (splitting a column is free), where the stable-mask approximation is too
    coarse to tell; they are excluded by keeping every overlap ``aᵀx_i/σ ≤ z_max``
    (default: half of ‖x_i‖/σ). λ* scales like σ³/‖x‖. Needs β1 < 0 and a margin of at least
    `MIN_MARGIN` (the spike ‖x_i‖/σ and the gaps |x̂_jᵀx_i|/σ to the other neurons), else
    `AssumptionError`. If nλ* ≥ min‖x_i‖², W_mem is a saddle for every admissible λ.

    >>> import numpy as np
    >>> X = np.array([[3.0, -1.5, -1.5], [0.0, 2.6, -2.6], [0.0, 0.0, 0.0]])
    >>> out = saddle_decay(X, 0.2)
    >>> bool(out.ratio(out.lam / 2) > 1 > out.ratio(2 * out.lam)), f"{out.lam:.3g}"
    (True, '0.000331')
    """
    X, norms_sq, margin = _memorisation_set(X, sigma)
    n = X.shape[1]
    if z_max is None:
        z_max = 0.5 * np.sqrt(norms_sq) / sigma
    z_max = np.broadcast_to(np.asarray(z_max, dtype=float), (n,))
    kappa, a_star = _escape_direction(X, norms_sq, sigma, z_max, seed)

    def ratio(lam_value: float) -> float:
        """Stability ratio along a* at decay λ (> 1: a* is a descent direction)."""
        overlaps = X.T @ a_star
        A, B = _stability_parts(X, norms_sq, sigma, overlaps)
        weights = A + B + sigma ** 2 / (n * float(lam_value)) * B
        return float(np.linalg.norm(X @ weights))

    lam_star = sigma ** 2 / (n * kappa)
    error = neglected_gradient_bound(X, sigma, lam_star)
    if error > lam_star / 4:
        raise AssumptionError("neglected terms of the stable-mask approximation, bound on ‖ΔG‖/2",
                              error, f"<= λ*/4 = {lam_star / 4:.3g}",
                              "the threshold would be set by neurons firing on the wrong samples")
    return SaddleDecay(lam=lam_star, direction=a_star, overlaps=X.T @ a_star / sigma, margin=margin,
                       error=error, kappa=kappa, ratio=ratio)


def neglected_gradient_bound(X, sigma, lam) -> float:
    """Bound on ``‖G_exact(a) − G_approx(a)‖/2`` for every unit a, at W_mem(λ) (derived here).

    The exact residual of sample i exceeds the stable-mask one by
    ``D_i = w_i(w_iᵀy_i)_− + Σ_{j≠i} w_j(w_jᵀy_i)_+``, each term nonzero only on the event F_ij
    that neuron j sits on the other side of zero than on the clean sample. By Cauchy–Schwarz
    and then Hölder, ``‖E[D_i(aᵀy_i)_+]‖ ≤ Σ_j ‖w_j‖ √E[(w_jᵀy_i)² 1_F] · (E(aᵀy_i)⁴ P(F))^{1/4}``
    with ``E(aᵀy)⁴ ≤ 3(‖x_i‖² + σ²)²`` for unit a; the flip moment is the rectified second
    moment of the far side. Halved, this bounds the error of the stability ratio times λ.

    >>> X = np.array([[3.0, -1.5, -1.5], [0.0, 2.6, -2.6], [0.0, 0.0, 0.0]])   # d = 3, n = 3
    >>> neglected_gradient_bound(X, 0.2, 3.31e-4) < 3.31e-4 / 4   # small next to λ*/4 (saddle_decay)
    True
    """
    n = X.shape[1]
    norms_sq = np.sum(X ** 2, axis=0)
    W = X * r_eq9_np(norms_sq, n, sigma, lam)
    z = np.abs(W.T @ X) / (sigma * np.linalg.norm(W, axis=0)[:, None])       # (j, i): margin of neuron j
    scale_sq = (sigma * np.linalg.norm(W, axis=0)[:, None]) ** 2
    # E[(−|m| + sζ)_+²] = s²[(z² + 1)Φ(−z) − zφ(z)] = s²φ(z)[(z² + 1)R(z) − z], R = Φ(−z)/φ(z)
    # the Mills ratio (erfcx keeps it accurate in the tail); clipped at the rounding floor 0.
    mills = np.sqrt(np.pi / 2) * special.erfcx(z / np.sqrt(2))
    density = np.exp(-0.5 * z * z) / np.sqrt(2 * np.pi)
    flip_moment = np.maximum(scale_sq * density * ((z * z + 1) * mills - z), 0.0)
    flip_probability = special.ndtr(-z)
    fourth = (3.0 * (norms_sq + sigma ** 2) ** 2 * flip_probability) ** 0.25
    per_sample = np.sum(np.linalg.norm(W, axis=0)[:, None] * np.sqrt(flip_moment) * fourth, axis=0)
    return float((2.0 / n) * per_sample.sum() / 2.0)


def _orthogonal_unit(Q, d):
    """A fixed unit vector orthogonal to the columns of Q (d, r), r < d."""
    for k in range(d):
        v = -Q @ Q[k]
        v[k] += 1.0
        norm = np.linalg.norm(v)
        if norm > 1e-8:
            return v / norm
    raise ValueError("span(X) is the whole space")
