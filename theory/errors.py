"""The error raised when data violate a corollary's assumptions, and the checks that raise it.

Each check measures the quantity on the data and, on violation, reports the measured and the
required value, e.g. ``β < 0 (cos∠ between cluster means): measured 0.31, required < 0``.

>>> import numpy as np
>>> check_negative_beta(np.array([[1.0, -1.0], [0.0, 0.1]]), [0, 1]) < 0
True
"""
from __future__ import annotations

import numpy as np

from numerics.validation import as_matrix, labels_for


class AssumptionWarning(UserWarning):
    """Weights or a predicted loss were built outside a result's assumptions (``check_assumptions=False``).

    The message names each failed assumption with its measured value. Outside the assumptions
    the closed forms are still defined, but they are in general not a critical point of
    eq. (6), and the exact loss at the weights (``numerics.objective.expected_loss``) may be far
    from the block formula. Silence it deliberately with
    ``warnings.simplefilter("ignore", AssumptionWarning)`` inside ``warnings.catch_warnings()``.

    >>> issubclass(AssumptionWarning, UserWarning)        # filtered like any user warning
    True
    """


class AssumptionError(ValueError):
    """A corollary's assumption fails on the given data.

    Attributes ``assumption``, ``measured`` and ``required`` hold what was checked.

    >>> error = AssumptionError("β < 0", 0.31, "< 0")
    >>> str(error), error.measured, isinstance(error, ValueError)
    ('β < 0: measured 0.31, required < 0', 0.31, True)
    """

    def __init__(self, assumption: str, measured, required: str, hint: str = ""):
        self.assumption = assumption
        self.measured = measured
        self.required = required
        message = f"{assumption}: measured {_fmt(measured)}, required {required}"
        if hint:
            message += f" ({hint})"
        super().__init__(message)


def _fmt(value) -> str:
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.6g}"
    return str(value)


def cluster_means(X, labels) -> tuple[np.ndarray, np.ndarray]:
    """Return the cluster means (d, K) and the sorted distinct labels of X (d, n).

    >>> X = np.array([[3.0, 3.1, -1.0], [0.2, -0.2, 0.0]])       # d = 2, n = 3, K = 2
    >>> means, ids = cluster_means(X, [0, 0, 1])
    >>> means.round(2).tolist(), ids.tolist()
    ([[3.05, -1.0], [0.0, 0.0]], [0, 1])
    """
    X = as_matrix("X", X, cols_name="n")
    labels = labels_for("labels", labels, X.shape[1])
    ids = np.unique(labels)
    means = np.stack([X[:, labels == k].mean(axis=1) for k in ids], axis=1)
    return means, ids


def measured_beta(X, labels) -> float:
    """β of Definition 3.1: the largest cosine between two distinct cluster means.

    Returns ``-inf`` for a single cluster (no pair to compare).

    >>> measured_beta(np.array([[1.0, -2.0], [0.0, 0.0]]), [0, 1])   # opposite means: cos = −1
    -1.0
    """
    means, _ = cluster_means(X, labels)
    return _beta_of_means(means)


def _beta_of_means(means: np.ndarray) -> float:
    """`measured_beta` from the cluster means (d, K), checked (``-inf`` for K = 1; raises on a zero mean)."""
    if means.shape[1] < 2:
        return -np.inf
    norms = np.linalg.norm(means, axis=0)
    if np.any(norms == 0):
        raise AssumptionError("every cluster mean must be nonzero (Definition 3.1)",
                              f"{int(np.sum(norms == 0))} zero mean(s)", "‖x̄_k‖ > 0")
    unit = means / norms
    cosines = unit.T @ unit
    np.fill_diagonal(cosines, -np.inf)
    return float(cosines.max())


def check_negative_beta(X, labels, what: str = "cluster means") -> float:
    """Raise AssumptionError unless β < 0 (Theorem 3.1); return the measured β.

    >>> check_negative_beta(np.array([[1.0, 2.0], [0.0, 1.0]]), [0, 1])   # cos∠ = 2/√5
    Traceback (most recent call last):
    ...
    theory.errors.AssumptionError: β < 0 (largest cos∠ between cluster means, ...): measured 0.894427, required < 0
    """
    return _require_negative_beta(measured_beta(X, labels), what)


def _require_negative_beta(beta: float, what: str = "cluster means") -> float:
    """Raise the AssumptionError of `check_negative_beta` unless the measured ``beta`` is < 0."""
    if not beta < 0:
        raise AssumptionError(f"β < 0 (largest cos∠ between {what}, Theorem 3.1)", beta, "< 0")
    return beta


def check_decay(n_lambda: float, smallest_kept_eigenvalue: float, where: str) -> None:
    """Raise AssumptionError unless nλ < the smallest kept eigenvalue (Theorem 3.1).

    >>> check_decay(1.5, 2.0, "cluster 0")                     # nλ = 1.5 < 2: passes silently
    >>> check_decay(2.5, 2.0, "cluster 0")
    Traceback (most recent call last):
    ...
    theory.errors.AssumptionError: nλ < λ_min(Λ^(p_k)) for cluster 0 (Theorem 3.1): measured nλ = 2.5, required < 2
    """
    if not n_lambda < smallest_kept_eigenvalue:
        raise AssumptionError(f"nλ < λ_min(Λ^(p_k)) for {where} (Theorem 3.1)",
                              f"nλ = {n_lambda:.6g}",
                              f"< {smallest_kept_eigenvalue:.6g}")


def check_at_least(name: str, measured: int, required: int, source: str) -> None:
    """Raise AssumptionError unless ``measured >= required``.

    >>> check_at_least("p >= n", 2, 3, "Corollary 3.2")        # 2 columns for 3 samples
    Traceback (most recent call last):
    ...
    theory.errors.AssumptionError: p >= n (Corollary 3.2): measured 2, required >= 3
    """
    if measured < required:
        raise AssumptionError(f"{name} ({source})", measured, f">= {required}")
