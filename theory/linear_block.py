"""Lemma D.1: the regularised linear autoencoder that every block of eq. (8) solves.

With stable ReLU masks, ``n·L`` of eq. (6) restricted to block k is

    L̂(W2, W1) = ‖W2W1ᵀX_k − X_k‖_F² + n_k σ² ‖W2W1ᵀ‖_F² + λ' (‖W1‖_F² + ‖W2‖_F²),  λ' = nλ.

In the eigenbasis ``X_kX_kᵀ = U diag(Λ) Uᵀ`` and with balanced factors this separates into
one scalar problem per direction, ``Λ(a−1)² + n_kσ²a² + 2λ'a``, solved here symbolically.

>>> from theory.linear_block import optimal_scale, optimal_scale_np
>>> optimal_scale()
(Lambda - lambda')/(Lambda + n_k*sigma**2)
>>> float(optimal_scale_np(4.0, 1.0, 1.0, 0.0))
0.8
"""
from __future__ import annotations

import functools

import numpy as np
import sympy as sp
from sympy.stats import E as expectation, Normal

from numerics.validation import as_matrix, nonnegative, positive_int, weights_pair
from theory.symbols import Lam, a, lam_p, n_k, numeric_twin, sigma

__all__ = [
    "per_sample_noise_expectation", "per_direction_objective", "optimal_scale",
    "minimal_value", "gain", "validity_condition", "eq8_column_scale",
    "balanced_scalar_gap", "two_factor_stationarity", "per_direction_objective_np", "optimal_scale_np", "minimal_value_np",
    "gain_np", "linear_block_loss", "linear_block_grad", "nuclear_norm_gap",
]


@functools.cache
def per_sample_noise_expectation() -> sp.Expr:
    """E_ε (a(c + σε) − c)² for one sample with coordinate c along the direction.

    Derived with ``sympy.stats``: ``(a − 1)² c² + σ² a²`` — the linear part of eq. (6).

    >>> per_sample_noise_expectation()
    a**2*c**2 + a**2*sigma**2 - 2*a*c**2 + c**2
    """
    c = sp.Symbol("c", real=True)
    eps = Normal("epsilon", 0, 1)
    return sp.expand(expectation((a * (c + sigma * eps) - c) ** 2))


@functools.cache
def per_direction_objective() -> sp.Expr:
    """The scalar problem of Lemma D.1 along one eigen-direction, eq. (6) summed over a block.

    Summing :func:`per_sample_noise_expectation` over the n_k samples of the cluster turns
    Σ c_i² into the eigenvalue Λ and the constant into n_k σ² a²; the balanced factors
    (see :func:`balanced_scalar_gap`) turn ``λ'(‖W1‖² + ‖W2‖²)`` into ``2λ'a``.

    >>> per_direction_objective()
    Lambda*(a**2 - 2*a + 1) + a**2*n_k*sigma**2 + 2*a*lambda'
    """
    c = sp.Symbol("c", real=True)
    per_sample = sp.Poly(per_sample_noise_expectation(), c)
    energy_coefficient = per_sample.coeff_monomial(c ** 2)
    constant = per_sample.coeff_monomial(1)
    return energy_coefficient * Lam + n_k * constant + 2 * lam_p * a


@functools.cache
def optimal_scale() -> sp.Expr:
    """The per-direction optimum a*(Λ, n_k, σ, λ') of Lemma D.1 (stationary point in a).

    >>> optimal_scale().subs(lam_p, 0)               # without decay: the Wiener factor
    Lambda/(Lambda + n_k*sigma**2)
    """
    objective = per_direction_objective()
    (solution,) = sp.solve(sp.diff(objective, a), a)
    assert sp.diff(objective, a, 2).is_positive  # strictly convex: the stationary point is the minimum
    return sp.factor(solution)


@functools.cache
def minimal_value() -> sp.Expr:
    """The minimal value of :func:`per_direction_objective`, ``Λ − (Λ − λ')²/(Λ + n_kσ²)``.

    >>> float(minimal_value_np(4.0, 1, 1.0, 0.0))     # Λ = 4, n_kσ² = 1: 4 − 16/5
    0.8
    """
    return sp.simplify(per_direction_objective().subs(a, optimal_scale()))


@functools.cache
def gain() -> sp.Expr:
    """Drop of the block loss from giving this direction a neuron (a = 0 → a*), decay included.

    >>> gain()
    (Lambda - lambda')**2/(Lambda + n_k*sigma**2)
    """
    without_neuron = per_direction_objective().subs(a, 0)
    return sp.factor(sp.simplify(without_neuron - minimal_value()))


@functools.cache
def validity_condition() -> sp.Rel:
    """When a* > 0 (else the constrained optimum over a ≥ 0 is a = 0): ``Λ > λ'``.

    The denominator of a* is positive, so the sign is that of the numerator, which is
    increasing in Λ with its root at λ'.

    >>> validity_condition()
    Lambda > lambda'
    """
    numerator, denominator = sp.fraction(sp.together(optimal_scale()))
    assert denominator.is_positive
    assert sp.diff(numerator, Lam).is_positive
    (root,) = sp.solve(numerator, Lam)
    return sp.StrictGreaterThan(Lam, root)


@functools.cache
def eq8_column_scale() -> sp.Expr:
    """The per-direction factor of eq. (8), ``(1 + n_kσ²/Λ)^{-1/2} (1 − λ'/Λ)^{1/2}``, as printed.

    Its square equals :func:`optimal_scale` (proved in the tests), so eq. (8) is W W ᵀ = U diag(a*) Uᵀ.

    >>> sp.simplify(eq8_column_scale() ** 2 - optimal_scale())
    0
    """
    return (1 + n_k * sigma ** 2 / Lam) ** sp.Rational(-1, 2) * (1 - lam_p / Lam) ** sp.Rational(1, 2)


@functools.cache
def balanced_scalar_gap() -> tuple[sp.Expr, sp.Expr]:
    """The scalar balanced-factorisation step: ``w1² + w2² − 2|w1 w2|`` and its SOS form.

    Returns ``(gap, (|w1| − |w2|)²)``; they are equal, so ``w1² + w2² ≥ 2|w1w2|`` with
    equality iff ``|w1| = |w2|`` (balanced). Summed over singular values this is
    ``‖W1‖_F² + ‖W2‖_F² ≥ 2‖W2W1ᵀ‖_*`` (checked numerically by :func:`nuclear_norm_gap`).

    >>> gap, square = balanced_scalar_gap()
    >>> square, sp.simplify(gap - square)
    ((Abs(w1) - Abs(w2))**2, 0)
    """
    w1, w2 = sp.symbols("w1 w2", real=True)
    return w1 ** 2 + w2 ** 2 - 2 * sp.Abs(w1 * w2), (sp.Abs(w1) - sp.Abs(w2)) ** 2


@functools.cache
def two_factor_stationarity() -> sp.Expr:
    """``u ∂F/∂u − v ∂F/∂v`` for the unbalanced scalar problem F(u, v) of one direction.

    ``F = Λ(uv − 1)² + n_kσ²u²v² + λ'(u² + v²)``. The result is ``2λ'(u² − v²)``: at any
    stationary point with λ' > 0 the encoder and decoder scales are equal (balanced).

    >>> two_factor_stationarity()
    2*lambda'*(u - v)*(u + v)
    """
    u, v = sp.symbols("u v", real=True)
    F = Lam * (u * v - 1) ** 2 + n_k * sigma ** 2 * u ** 2 * v ** 2 + lam_p * (u ** 2 + v ** 2)
    return sp.factor(sp.expand(u * sp.diff(F, u) - v * sp.diff(F, v)))


per_direction_objective_np = numeric_twin(per_direction_objective, (Lam, n_k, sigma, lam_p, a))
optimal_scale_np = numeric_twin(optimal_scale, (Lam, n_k, sigma, lam_p))
minimal_value_np = numeric_twin(minimal_value, (Lam, n_k, sigma, lam_p))
gain_np = numeric_twin(gain, (Lam, n_k, sigma, lam_p))


def linear_block_loss(W1, W2, X_k, n, sigma, lam) -> float:
    """L̂ of Lemma D.1 for block k: the value of n·L (eq. 6) on cluster k at stable masks.

    >>> import numpy as np
    >>> X_k = np.array([[2.0, 2.0], [0.0, 0.1]])           # d = 2, n_k = 2
    >>> linear_block_loss(np.zeros((2, 1)), np.zeros((2, 1)), X_k, 2, 0.1, 0.0)  # = ‖X_k‖_F²
    8.01
    """
    X_k = as_matrix("X_k", X_k, cols_name="n_k")
    W1, W2 = weights_pair(W1, W2, X_k.shape[0])
    n = positive_int("n", n)
    sigma, lam = nonnegative("sigma", sigma), nonnegative("lam", lam)
    A = W2 @ W1.T
    residual = A @ X_k - X_k
    return float(np.sum(residual ** 2) + X_k.shape[1] * sigma ** 2 * np.sum(A ** 2)
                 + n * lam * (np.sum(W1 ** 2) + np.sum(W2 ** 2)))


def linear_block_grad(W1, W2, X_k, n, sigma, lam) -> tuple[np.ndarray, np.ndarray]:
    """Gradient ``(∂L̂/∂W1, ∂L̂/∂W2)`` of :func:`linear_block_loss`, each of shape (d, p).

    >>> X_k = np.array([[2.0, 2.0], [0.0, 0.0]])                 # d = 2, n_k = 2: Λ = 8
    >>> W = np.array([[np.sqrt(8 / (8 + 2 * 0.1 ** 2))], [0.0]])   # p = 1, √a* (Lemma D.1)
    >>> g1, g2 = linear_block_grad(W, W, X_k, 2, 0.1, 0.0)
    >>> g1.shape, bool(np.allclose(g1, 0) and np.allclose(g2, 0))   # a critical point
    ((2, 1), True)
    """
    X_k = as_matrix("X_k", X_k, cols_name="n_k")
    W1, W2 = weights_pair(W1, W2, X_k.shape[0])
    A = W2 @ W1.T
    G = 2 * (A @ X_k - X_k) @ X_k.T + 2 * X_k.shape[1] * sigma ** 2 * A
    return G.T @ W2 + 2 * n * lam * W1, G @ W1 + 2 * n * lam * W2


def nuclear_norm_gap(W1, W2) -> float:
    """``‖W1‖_F² + ‖W2‖_F² − 2‖W2W1ᵀ‖_*`` (≥ 0; zero iff the factorisation is balanced).

    >>> W1, W2, e1 = np.array([[2.0], [0.0]]), np.array([[0.5], [0.0]]), np.array([[1.0], [0.0]])
    >>> nuclear_norm_gap(W1, W2), nuclear_norm_gap(e1, e1)   # same W2W1ᵀ = e1e1ᵀ: 4 + ¼ − 2, 1 + 1 − 2
    (2.25, 0.0)
    """
    W1, W2 = weights_pair(W1, W2)
    nuclear = np.linalg.svd(W2 @ W1.T, compute_uv=False).sum()
    return float(np.sum(W1 ** 2) + np.sum(W2 ** 2) - 2 * nuclear)
