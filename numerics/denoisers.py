"""Reference denoisers: empirical (eq. 3), Gaussian-mixture ground truth, rank-p Wiener.

The trained ReLU-DAE is compared against these. All take noisy inputs as the columns of
``Y`` (shape ``(d, m)``) and return denoised columns of the same shape, float64.
"""
from __future__ import annotations

import numpy as np
from scipy.linalg import LinAlgError, cho_factor, cho_solve
from scipy.special import softmax

from numerics.validation import (as_matrix, as_vector, data_matrix, finite_array, flag, nonnegative, positive,
                                 positive_int)

__all__ = ["squared_distances", "f_emp", "f_gt", "second_moment", "wiener_matrix", "wiener_denoiser"]


def squared_distances(X, Y) -> np.ndarray:
    """‖y_j − x_i‖² for all pairs, shape (n, m), via BLAS (clipped at 0 against rounding).

    >>> squared_distances(np.zeros((2, 1)), np.ones((2, 3))).tolist()
    [[2.0, 2.0, 2.0]]
    """
    X = as_matrix("X", X, cols_name="n")
    Y = data_matrix("Y", Y, d=X.shape[0], d_source="X", cols_name="m")
    out = np.sum(X**2, axis=0)[:, None] - 2.0 * (X.T @ Y) + np.sum(Y**2, axis=0)[None, :]
    return np.maximum(out, 0.0)


def f_emp(Y, X, sigma) -> np.ndarray:
    """The empirical posterior mean of eq. (3), shape (d, m): the optimal denoiser for the data X.

    ``f_emp(y) = Σ_i N(y; x_i, σ²I) x_i / Σ_i N(y; x_i, σ²I)``, computed in log space as
    ``X softmax_i(−‖y − x_i‖² / (2σ²))``, so it stays finite for tiny σ and large d.
    ``sigma = 0`` is the σ → 0 limit, the nearest training sample (ties: lowest index).
    Memory O(n m) for the weights.

    >>> X = np.array([[0.0, 1.0], [0.0, 1.0]])             # two samples in d = 2
    >>> f_emp(np.array([[0.9], [0.8]]), X, sigma=1e-3).ravel()
    array([1., 1.])
    """
    X = as_matrix("X", X, cols_name="n")
    Y = data_matrix("Y", Y, d=X.shape[0], d_source="X", cols_name="m")
    sigma = nonnegative("sigma", sigma, symbol="σ")
    distances = squared_distances(X, Y)
    if sigma == 0:
        return X[:, np.argmin(distances, axis=0)]
    return X @ softmax(-distances / (2.0 * sigma**2), axis=0)


def _mixture_inputs(Y, means, covariances, weights, sigma, factored):
    means = as_matrix("means", means, cols_name="K")
    d, K = means.shape
    Y = data_matrix("Y", Y, d=d, d_source="means", cols_name="m")
    factored = flag("factored", factored)
    covariances = finite_array("covariances", covariances)
    expected = f"(K, d, r) = ({K}, {d}, r) factors" if factored else f"(K, d, d) = ({K}, {d}, {d})"
    if covariances.ndim != 3 or covariances.shape[:2] != (K, d) \
            or (not factored and covariances.shape[2] != d):
        hint = "" if factored else " (for factors F_k with Σ_k = F_k F_kᵀ pass factored=True)"
        raise ValueError(f"covariances must have shape {expected}; got {covariances.shape}{hint}")
    if not factored:
        scale = max(1.0, float(np.abs(covariances).max(initial=0.0)))
        if np.abs(covariances - covariances.transpose(0, 2, 1)).max(initial=0.0) > 1e-10 * scale:
            raise ValueError("covariances must be symmetric matrices Σ_k")
    weights = as_vector("weights", weights, length=K)
    if np.any(weights < 0) or abs(weights.sum() - 1.0) > 1e-9:
        raise ValueError(f"weights (rho_k) must be >= 0 and sum to 1; got sum {weights.sum()!r}")
    return Y, means, covariances, weights, positive("sigma", sigma), factored


def f_gt(Y, means, covariances, weights, sigma, *, factored=False) -> np.ndarray:
    """The ground-truth denoiser E[x | x + σε = y] for the Gaussian mixture of eq. (4), (d, m).

    ``f_gt(y) = Σ_k γ_k(y) [μ_k + Σ_k (Σ_k + σ²I)^{-1} (y − μ_k)]`` with responsibilities
    ``γ_k(y) ∝ ρ_k N(y; μ_k, Σ_k + σ²I)`` normalised in log space (softmax over k).
    ``covariances`` are the (K, d, d) matrices Σ_k (Cholesky of Σ_k + σ²I), or with
    ``factored=True`` (K, d, r) factors F_k, Σ_k = F_k F_kᵀ, handled with the Woodbury
    identity at cost O(K d r m): with A = σ²I_r + F_kᵀF_k and c = A^{-1}F_kᵀ(y − μ_k),
    the posterior mean is μ_k + F_k c and (y − μ_k)ᵀ(Σ_k + σ²I)^{-1}(y − μ_k) =
    ‖y − μ_k − F_k c‖²/σ² + ‖c‖². σ must be > 0 (a rank-deficient Σ_k + σ²I is singular at 0).

    >>> means, F = np.eye(3)[:, :2], np.zeros((2, 3, 1))       # two point masses in d = 3
    >>> f_gt(np.array([[0.9], [0.1], [0.0]]), means, F, [0.5, 0.5], 0.05, factored=True).round(3).ravel()
    array([1., 0., 0.])
    """
    Y, means, covariances, weights, sigma, factored = _mixture_inputs(Y, means, covariances, weights,
                                                                     sigma, factored)
    d, K = means.shape
    with np.errstate(divide="ignore"):
        log_terms = np.tile(np.log(weights)[:, None], (1, Y.shape[1]))       # (K, m)
    posterior_means = np.empty((K,) + Y.shape)
    for k in range(K):
        residual = Y - means[:, [k]]
        if factored:
            F = covariances[k]
            A = sigma**2 * np.eye(F.shape[1]) + F.T @ F
            c = np.linalg.solve(A, F.T @ residual)
            quadratic = np.sum((residual - F @ c) ** 2, axis=0) / sigma**2 + np.sum(c**2, axis=0)
            log_det = (d - F.shape[1]) * np.log(sigma**2) + np.linalg.slogdet(A)[1]
            posterior_means[k] = means[:, [k]] + F @ c
        else:
            try:
                chol = cho_factor(covariances[k] + sigma**2 * np.eye(d), lower=True)
            except LinAlgError as error:
                raise ValueError(f"covariances[{k}] + sigma² I is not positive definite; "
                                 f"covariances must be positive semidefinite") from error
            solved = cho_solve(chol, residual)                               # (Σ_k + σ²I)^{-1} r
            quadratic = np.sum(residual * solved, axis=0)
            log_det = 2.0 * np.sum(np.log(np.diag(chol[0])))
            posterior_means[k] = Y - sigma**2 * solved                       # μ + Σ(Σ+σ²I)^{-1} r
        log_terms[k] += -0.5 * (quadratic + log_det + d * np.log(2.0 * np.pi))
    responsibilities = softmax(log_terms, axis=0)                            # (K, m)
    return np.einsum("km,kdm->dm", responsibilities, posterior_means)


def second_moment(X) -> np.ndarray:
    """The uncentred empirical second moment X Xᵀ / n, shape (d, d) (the sample S of eq. 10).

    >>> second_moment(np.array([[1.0, -1.0]])).tolist()
    [[1.0]]
    """
    X = as_matrix("X", X, cols_name="n")
    return X @ X.T / X.shape[1]


def wiener_matrix(S, p, sigma) -> np.ndarray:
    """The rank-p linear (Wiener) denoiser matrix built from an uncentred second moment S, (d, d).

    With S = U diag(e) Uᵀ, e_1 ≥ e_2 ≥ … (negative rounding clipped to 0):
    ``W_p = U_p diag(e_j / (e_j + σ²)) U_pᵀ``, the best bias-free rank-p linear map
    for E‖W(x + σε) − x‖² when E[x xᵀ] = S; for p = d it is S (S + σ²I)^{-1}. This is the
    λ = 0 limit of Corollary 3.3 (W Wᵀ → S_k(S_k + σ²I)^{-1} truncated to rank p_k) and of
    Lemma D.1 with XXᵀ = nS. At σ = 0 it is the projector onto the top-p eigenvectors
    (directions with e_j = 0 get gain 0). If e_p = e_{p+1} the rank-p choice is not unique.
    Build S from samples with ``second_moment(X)``.

    >>> wiener_matrix(np.diag([4.0, 1.0]), p=1, sigma=1.0)
    array([[0.8, 0. ],
           [0. , 0. ]])
    """
    S = as_matrix("S", S, cols_name="d")
    d = S.shape[0]
    if S.shape != (d, d):
        raise ValueError(f"S must be a square (d, d) second-moment matrix; got shape {S.shape} "
                         f"(for samples X use second_moment(X))")
    if np.abs(S - S.T).max(initial=0.0) > 1e-10 * max(1.0, np.abs(S).max(initial=0.0)):
        raise ValueError("S must be symmetric (an uncentred second moment E[x xᵀ]); "
                         "for samples X use second_moment(X)")
    p = positive_int("p", p)
    if p > d:
        raise ValueError(f"p must be <= d = {d}; got {p}")
    sigma = nonnegative("sigma", sigma, symbol="σ")
    eigenvalues, vectors = np.linalg.eigh(S)
    e = np.clip(eigenvalues[::-1][:p], 0.0, None)
    U = vectors[:, ::-1][:, :p]
    gains = np.divide(e, e + sigma**2, out=np.zeros_like(e), where=e + sigma**2 > 0)
    return (U * gains) @ U.T


def wiener_denoiser(Y, S, p, sigma) -> np.ndarray:
    """Apply the rank-p Wiener denoiser ``wiener_matrix(S, p, sigma) @ Y``, shape (d, m).

    >>> wiener_denoiser(np.ones((2, 3)), np.diag([4.0, 1.0]), p=2, sigma=1.0)[:, 0]
    array([0.8, 0.5])
    """
    W = wiener_matrix(S, p, sigma)
    return W @ data_matrix("Y", Y, d=W.shape[0], d_source="S", cols_name="m")
