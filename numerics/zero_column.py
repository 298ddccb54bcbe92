"""Zero columns of a critical point of eq. (6): can a new small neuron lower the loss?

A zero column (``w1_j = w2_j = 0``) is where the loss is not twice differentiable (the
expected ReLU is positively homogeneous in ``w1_j``), so `numerics.certify` tests it apart
from the Hessian. Adding a small neuron ``(t·a, t·b)`` changes the loss by
``t²[λ(‖a‖² + ‖b‖²) + bᵀG(a)] + O(t³)`` (untied) or ``t²[2λ‖a‖² + aᵀG(a)] + O(t³)`` (tied),
where ``G(a) = (2/n) Σ_i E[(f(y_i) − x_i)(aᵀy_i)_+]`` is exactly ``∂L/∂w2_j`` at
``w1_j = a, w2_j = 0``. Minimising over b, the point is stable in these directions iff
``ratio = sup_a ‖G(a)‖/(2λ‖a‖) ≤ 1`` (tied: ``sup_a −aᵀG(a)/(2λ‖a‖²) ≤ 1``); with λ = 0 the
sup of ‖G‖ itself (the *gain*) must vanish.

* `zero_column_ratio` estimates the sup by ascent from many starts (a lower bound);
* `zero_column_bound` bounds it above rigorously by Cauchy–Schwarz.

>>> import numpy as np
>>> X = np.array([[2.0, -1.0], [0.0, 1.7]])
>>> W = np.zeros((2, 1))
>>> ratio = zero_column_ratio(W, W, X, 0.1, 0.01, tied=True, zero=np.array([True]))
>>> ratio.value > 1                          # W = 0 is a saddle: a neuron would lower the loss
True
>>> bool(ratio.value <= zero_column_bound(W, W, X, 0.1, 0.01))
True
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.optimize
import scipy.sparse.linalg

from numerics.geometry import NonFiniteStep
from numerics.objective import expected_loss, expected_loss_and_grad
from numerics.validation import MagnitudeError, as_rng, data_and_weights, flag, nonnegative, positive_int

__all__ = ["zero_column_ratio", "zero_column_bound", "ZeroColumnRatio"]

MIXED_STEP = 1e-5        # the step of the central difference in b in `_NewNeuron.mixed`


@dataclass(frozen=True)
class ZeroColumnRatio:
    """``value`` the sup estimate (ratio for λ > 0, gain for λ = 0); ``a``, ``b`` the best new
    neuron's input and output directions; ``column`` the zero column it sits in;
    ``evaluations`` exact gradient evaluations spent.

    Returned by `zero_column_ratio`.
    """
    value: float
    a: np.ndarray
    b: np.ndarray
    column: int
    evaluations: int


class _NewNeuron:
    """G(a) at zero column ``j0`` and the score ‖G(a)‖/(2λ) (tied: −aᵀG(a)/(2λ)) with its gradient."""

    def __init__(self, W1, W2, X, sigma, lam, tied, j0):
        self.W1, self.W2, self.X, self.sigma, self.lam, self.tied, self.j0 = W1, W2, X, sigma, lam, tied, j0
        self.denominator = 2.0 * lam if lam > 0 else 1.0
        self.evaluations = 0

    def _gradient(self, a, b):
        if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
            raise NonFiniteStep("non-finite direction of a new neuron")
        A1 = self.W1.copy()
        A2 = self.W2.copy()
        A1[:, self.j0] = a
        A2[:, self.j0] = b
        self.evaluations += 1
        return expected_loss_and_grad(A1, A2, self.X, self.sigma, self.lam)

    def G(self, a):
        """``∂L/∂w2_j`` at ``w1_j = a, w2_j = 0``."""
        return self._gradient(a, 0.0)[2][:, self.j0]

    def mixed(self, a, c, eps=MIXED_STEP):
        """∇_a (cᵀG(a)) by a central difference in b = ±eps·c (exact up to O(eps²))."""
        out = [self._gradient(a, sign * eps * c)[1][:, self.j0] for sign in (1.0, -1.0)]
        return (out[0] - out[1]) / (2.0 * eps)

    def score(self, a):
        a = a / np.linalg.norm(a)
        g = self.G(a)
        if self.tied:
            return -(a @ g) / self.denominator, g
        return float(np.linalg.norm(g)) / self.denominator, g

    def negative_score_and_grad(self, a):
        """For L-BFGS: minus the score and its gradient (tangent to the sphere: the score is scale free)."""
        norm = float(np.linalg.norm(a))
        u = a / norm
        value, g = self.score(u)
        c = u if self.tied else g / max(float(np.linalg.norm(g)), 1e-300)
        directional = self.mixed(u, c)   # ∇_u (cᵀG(u))
        if self.tied:
            grad_u = -(g + directional) / self.denominator      # ∇(−uᵀG(u)) = −(G + Jᵀu)
        else:
            grad_u = directional / self.denominator             # ∇‖G‖ = Jᵀ G/‖G‖
        grad_u -= (grad_u @ u) * u
        return -value, -grad_u / norm


def _starts(W1, X, live, sigma, rng, n_random):
    """Ascent starts: the live columns, up to 64 samples, random directions, and directions on
    which a new neuron is half-active on the noise (`_half_active_starts`)."""
    d = W1.shape[0]
    starts = [W1[:, j] for j in np.flatnonzero(live) if np.linalg.norm(W1[:, j]) > 0]
    starts += [X[:, i] for i in range(min(X.shape[1], 64)) if np.linalg.norm(X[:, i]) > 0]
    for _ in range(n_random):
        starts.append(rng.standard_normal(d))
    return starts + _half_active_starts(X, sigma, rng)


def _half_active_starts(X, sigma, rng, count=8) -> list:
    """Directions on which a new neuron is half-active on the noise of the samples.

    A unit vector orthogonal to the data plus small components along the samples, so that
    its overlaps aᵀx_i are about σ (z ≈ 1): the regime where a zero column of W_mem can grow
    (`theory.memorization.saddle_decay`). One sample at a time, all together, and random
    mixtures; without an orthogonal direction (rank X = d), random unit vectors instead.
    """
    d, n = X.shape
    norms_sq = np.sum(X * X, axis=0)
    Q, singular, _ = np.linalg.svd(X, full_matrices=False)
    Q = Q[:, singular > 1e-12 * max(singular[0], 1e-300)] if singular.size else Q[:, :0]
    if Q.shape[1] >= d or sigma == 0:
        return [rng.standard_normal(d) for _ in range(count)]
    v = rng.standard_normal(d)
    v -= Q @ (Q.T @ v)
    v /= np.linalg.norm(v)
    safe = norms_sq > 0
    weights = [np.eye(n)[i] for i in range(min(n, count))] + [np.ones(n)]
    weights += [rng.uniform(-1.0, 2.0, n) for _ in range(count // 2)]
    return [v + X @ np.where(safe, sigma * c / np.where(safe, norms_sq, 1.0), 0.0) for c in weights]


def _along_live(a, live_units) -> bool:
    """Parallel to a live column: the ratio is 1 there (splitting is free), no escape."""
    unit = a / np.linalg.norm(a)
    return any(abs(unit @ u) > 0.999 for u in live_units)


def zero_column_ratio(W1, W2, X, sigma, lam, *, tied, zero, rng=0, n_random=6,
                      ascent_iter=25) -> ZeroColumnRatio:
    """Estimate ``sup_a`` of the zero-column ratio (gain when λ = 0) at the first zero column.

    ``zero`` is the boolean mask of zero columns (at least one). The best of the `_starts`
    and the best four that are not parallel to a live column are refined by ``ascent_iter``
    L-BFGS steps on the sphere: the live columns score exactly 1 (splitting is free) and
    would otherwise crowd out the half-active directions where a zero column escapes.

    >>> X, W = 2.0 * np.eye(2), np.zeros((2, 1))               # X (d, n) = (2, 2); W = 0 (d, p) = (2, 1)
    >>> best = zero_column_ratio(W, W, X, 0.0, 0.5, tied=False, zero=np.array([True]))
    >>> round(best.value, 6), best.a.round(6).tolist()        # G(a) = −4a₊: sup ‖G‖/(2λ‖a‖) = 4, at a = e₁
    (4.0, [1.0, 0.0])
    """
    X, W1, W2 = data_and_weights(X, W1, W2)
    sigma, lam = nonnegative("sigma", sigma, symbol="σ"), nonnegative("lam", lam, symbol="λ")
    tied = flag("tied", tied)
    zero = np.asarray(zero)
    if zero.dtype != bool or zero.shape != (W1.shape[1],) or not zero.any():
        raise ValueError(f"zero must be a boolean mask over the {W1.shape[1]} columns with at least one True")
    rng = as_rng("rng", rng)
    n_random = positive_int("n_random", n_random, minimum=0)
    ascent_iter = positive_int("ascent_iter", ascent_iter)
    j0 = int(np.flatnonzero(zero)[0])
    neuron = _NewNeuron(W1, W2, X, sigma, lam, tied, j0)
    scored = sorted(((neuron.score(a)[0], a) for a in _starts(W1, X, ~zero, sigma, rng, n_random)),
                    key=lambda item: -item[0])
    best_value, best_a = scored[0][0], scored[0][1] / np.linalg.norm(scored[0][1])
    live_units = [W1[:, j] / np.linalg.norm(W1[:, j]) for j in np.flatnonzero(~zero) if np.linalg.norm(W1[:, j]) > 0]
    ascents = [scored[0]] + [item for item in scored[1:] if not _along_live(item[1], live_units)][:4]
    for value, a in ascents:
        try:
            out = scipy.optimize.minimize(neuron.negative_score_and_grad, a / np.linalg.norm(a), jac=True,
                                          method="L-BFGS-B", options=dict(maxiter=ascent_iter))
        except (NonFiniteStep, MagnitudeError):   # the ascent stepped out of range: keep the best so far
            continue
        if -out.fun > best_value:
            best_value, best_a = -out.fun, out.x / np.linalg.norm(out.x)
    g = neuron.G(best_a)
    if tied:
        best_b = best_a
    elif lam > 0:
        best_b = -g / (2.0 * lam)
    else:
        best_b = -g / max(float(np.linalg.norm(g)), 1e-300)
    return ZeroColumnRatio(float(best_value), best_a, best_b, j0, neuron.evaluations)


def zero_column_bound(W1, W2, X, sigma, lam) -> float:
    """Rigorous upper bound of the zero-column ratio ``sup_a ‖G(a)‖/(2λ‖a‖)`` (∞ if λ = 0).

    ``‖G(a)‖ ≤ (2/n) Σ_i √ℓ_i √E(aᵀy_i)² ≤ (2/n) √(Σc) √(λ_max(X diag(c) Xᵀ) + σ²Σc)`` with
    ``c_i = √ℓ_i`` and ``ℓ_i`` sample i's expected squared error (Cauchy–Schwarz twice);
    for n > 256 the per-sample errors are replaced by their total (a looser bound).
    The tied ratio ``sup −aᵀG(a)/(2λ‖a‖²)`` obeys the same bound.

    >>> X, W = 2.0 * np.eye(2), np.zeros((2, 1))               # ℓ_i = 4, c_i = 2, λ_max(X diag(c) Xᵀ) = 8
    >>> round(zero_column_bound(W, W, X, sigma=0.0, lam=0.5), 6)   # (2/n)·√Σc·√8 / (2λ) = 4√2 ≥ 4
    5.656854
    """
    X, W1, W2 = data_and_weights(X, W1, W2)
    sigma, lam = nonnegative("sigma", sigma, symbol="σ"), nonnegative("lam", lam, symbol="λ")
    if lam <= 0:
        return float("inf")
    n = X.shape[1]
    if n <= 256:
        errors = np.array([expected_loss(W1, W2, X[:, [i]], sigma, 0.0) for i in range(n)])
        c = np.sqrt(np.maximum(errors, 0.0))
        if np.log10(max(float(c.max()), 1e-300)) + np.log10(max(float(np.vdot(X, X)), 1e-300)) > 305:
            raise ValueError(f"zero_column_bound overflows float64 at these inputs (λ_max(X diag(c) Xᵀ) with "
                             f"c ~ {float(c.max()):.3g} and ‖X‖² = {float(np.vdot(X, X)):.3g}); rescale X, W1 and W2")
        top = float(np.linalg.eigvalsh((X * c) @ X.T)[-1]) if X.shape[0] <= 2000 else \
            float(scipy.sparse.linalg.svds(X * np.sqrt(c), k=1, return_singular_vectors=False)[0] ** 2)
        bound = (2.0 / n) * np.sqrt(c.sum()) * np.sqrt(top + sigma**2 * c.sum())
    else:
        data_loss = expected_loss(W1, W2, X, sigma, 0.0)
        top = float(scipy.sparse.linalg.svds(X, k=1, return_singular_vectors=False)[0] ** 2)
        bound = 2.0 * np.sqrt(max(data_loss, 0.0)) * np.sqrt(top / n + sigma**2)
    return float(bound / (2.0 * lam))
