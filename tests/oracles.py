"""Reference formulas written independently of theory/, shared by the solver tests."""
import numpy as np


def w_mem(X, p, sigma, lam):
    """Eq. (9): column i = r_i x_i, zero columns beyond n (written here independently of theory/)."""
    norms = np.linalg.norm(X, axis=0)
    r = np.sqrt((norms**2 - X.shape[1] * lam) / (norms**4 + sigma**2 * norms**2))
    W = np.zeros((X.shape[0], p))
    W[:, :X.shape[1]] = X * r
    return W


def without_first_column(fit, tied):
    """The fit's weights with column 0 (a memorising column) set to zero: a saddle (Cor. 3.2)."""
    W1, W2 = fit.W1.copy(), fit.W2.copy()
    W1[:, 0] = 0.0
    W2[:, 0] = 0.0
    return W1, (W1 if tied else W2)


def eigenvector_sine_bound(values, j, bound):
    """Bound on sin∠ between the j-th eigenvector of X_kX_kᵀ from its Gram matrix and the SVD's.

    ``values``: the exact eigenvalues, descending; ``bound``: the eigenvalue error of the Gram
    route (`theory.allocation._resolution`). Davis–Kahan: an error E in the Gram moves its
    eigenvector by ‖E‖/gap_j ≤ bound/gap_j; with n_k < d the vector is X_kv/‖X_kv‖, whose error
    is at most √(Λ_1/Λ_j) times that of v. The SVD's own error is below the same bound, hence
    the factor 2.
    """
    neighbours = np.delete(np.append(values, 0.0), j)
    gap = np.min(np.abs(neighbours - values[j]))
    return 2 * bound * np.sqrt(values[0] / values[j]) / gap
