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
