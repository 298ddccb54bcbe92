"""Solutions to the exercises of tutorial 3 (generalisation)."""
from __future__ import annotations

import numpy as np


def allocation_by_hand(X, labels, p, sigma, lam):
    """Exercise 5: the p largest gains (Λ − nλ)²/(Λ + n_kσ²) over all clusters and directions."""
    labels = np.asarray(labels)
    n = X.shape[1]
    candidates = []                                   # (gain, cluster index)
    clusters = np.unique(labels)
    for index, k in enumerate(clusters):
        X_k = X[:, labels == k]
        eigenvalues = np.linalg.svd(X_k, compute_uv=False) ** 2       # of X_k X_kᵀ
        for value in eigenvalues:
            if value > n * lam:
                candidates.append(((value - n * lam) ** 2 / (value + X_k.shape[1] * sigma ** 2), index))
    candidates.sort(key=lambda item: -item[0])
    counts = [0] * clusters.size
    for _, index in candidates[:p]:
        counts[index] += 1
    return tuple(counts)


def participation(H):
    """Exercise 6: ‖h‖₂⁴/‖h‖₄⁴ per column (0 for a zero column)."""
    H = np.asarray(H, dtype=float)
    fourth = np.sum(H ** 4, axis=0)
    return np.divide(np.sum(H ** 2, axis=0) ** 2, fourth, out=np.zeros_like(fourth), where=fourth > 0)
