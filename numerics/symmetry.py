"""Continuous symmetries of eq. (6) at given weights, and the projector onto their tangent space.

`numerics.certify` removes these directions before it reads the Hessian's spectrum:

* **rotations inside a block** ``W → W O`` (tied) or ``(W1, W2) → (W1 O, W2 O)``: a block is
  a set of live columns with the same activation pattern ``sign(w1_jᵀx_i)`` on the data
  (`activation_blocks`), so a small rotation keeps the masks (Theorem 3.1's O_k);
* with untied weights and λ = 0, the general linear maps ``W1 → W1 M^{−T}, W2 → W2 M``
  inside a block (which include the column rescalings ``(w1_j, w2_j) → (c w1_j, w2_j / c)``).

>>> import numpy as np
>>> X = np.array([[1.0, -1.0], [0.5, 1.0]])
>>> W = np.array([[1.0, 2.0, -1.0], [0.0, 0.1, 0.5]])
>>> [block.tolist() for block in activation_blocks(W, X)]
[[0, 1], [2]]
>>> SymmetryProjector(W, W, [np.array([0, 1])], tied=True, family="rotation").dimension
1
"""
from __future__ import annotations

import numpy as np

from numerics.validation import as_matrix, flag, weights_pair

__all__ = ["activation_blocks", "SymmetryProjector", "FAMILIES"]

FAMILIES = ("rotation", "general-linear")


def activation_blocks(W1, X, live=None) -> list:
    """Live columns grouped by identical activation pattern ``w1_jᵀx_i > 0`` over the samples.

    ``W1`` (d, p), ``X`` (d, n); ``live`` a boolean mask over the columns (default: all).
    Returns a list of column-index arrays, in order of first appearance.

    >>> X = np.array([[1.0, -1.0], [0.5, 1.0]])                 # X (d, n) = (2, 2)
    >>> W1 = np.array([[1.0, 2.0, -1.0], [0.0, 0.1, 0.5]])      # (d, p) = (2, 3)
    >>> [block.tolist() for block in activation_blocks(W1, X)]  # columns 0 and 1 share their pattern
    [[0, 1], [2]]
    """
    W1 = as_matrix("W1", W1, cols_name="p")
    X = as_matrix("X", X, rows=W1.shape[0], cols_name="n")
    if live is None:
        live = np.ones(W1.shape[1], dtype=bool)
    else:
        live = np.asarray(live)
        if live.dtype != bool or live.shape != (W1.shape[1],):
            raise ValueError(f"live must be a boolean mask with one entry per column of W1 ({W1.shape[1]}); "
                             f"got dtype {live.dtype}, shape {live.shape}")
    patterns: dict = {}
    for j in np.flatnonzero(live):
        key = ((W1[:, j] @ X) > 0.0).tobytes()
        patterns.setdefault(key, []).append(j)
    return [np.array(block) for block in patterns.values()]


class SymmetryProjector:
    """Orthogonal projection onto the tangent space of the continuous symmetries (module doc).

    Works on the reduced parameter vector (live columns only) laid out as ``W[:, live]``
    (tied) or ``(W1[:, live], W2[:, live])`` raveled. Within each block the least-squares
    coefficients solve a Sylvester equation in the eigenbases of the block Gram matrices,
    so applying the projector costs O(d·k²) per block of k columns.

    >>> W = np.array([[1.0, 2.0], [0.0, 0.1]])                  # tied (d, p) = (2, 2), one block
    >>> P = SymmetryProjector(W, W, [np.array([0, 1])], tied=True, family="rotation")
    >>> rotation = (W @ np.array([[0.0, 1.0], [-1.0, 0.0]])).ravel()   # δW = W A, A antisymmetric
    >>> P.dimension, np.allclose(P.component(rotation), rotation), np.allclose(P.component(W.ravel()), 0)
    (1, True, True)
    """

    def __init__(self, W1, W2, blocks, *, tied: bool, family: str):
        W1, W2 = weights_pair(W1, W2)
        tied = flag("tied", tied)
        if not isinstance(family, str) or family not in FAMILIES:
            raise ValueError(f"family must be one of {FAMILIES}; got {family!r}")
        blocks = [np.asarray(block) for block in blocks]
        for block in blocks:
            if block.ndim != 1 or not np.issubdtype(block.dtype, np.integer) \
                    or np.any(block < 0) or np.any(block >= W1.shape[1]):
                raise ValueError(f"blocks must be arrays of column indices in [0, {W1.shape[1]}); got {block!r}")
        self.W1, self.W2, self.tied, self.family = W1, W2, tied, family
        self.d, self.k = W1.shape
        self.blocks = [b for b in blocks if (len(b) >= 2 or family == "general-linear")]
        self.factors = []
        for block in self.blocks:
            A1, A2 = W1[:, block], W2[:, block]
            if family == "general-linear":
                e1, Q1 = np.linalg.eigh(A1.T @ A1)
                e2, Q2 = np.linalg.eigh(A2.T @ A2)
                self.factors.append((e1, Q1, e2, Q2))
            else:
                G = A1.T @ A1 if tied else A1.T @ A1 + A2.T @ A2
                self.factors.append(np.linalg.eigh(G))

    @property
    def dimension(self) -> int:
        if self.family == "general-linear":
            return int(sum(len(b) ** 2 for b in self.blocks))
        return int(sum(len(b) * (len(b) - 1) // 2 for b in self.blocks))

    def _split(self, v):
        dk = self.d * self.k
        V1 = v[:dk].reshape(self.d, self.k)
        return (V1, V1) if self.tied else (V1, v[dk:].reshape(self.d, self.k))

    def component(self, v) -> np.ndarray:
        """The symmetry component of v (its projection onto the symmetry tangent space)."""
        V1, V2 = self._split(v)
        out1 = np.zeros_like(V1)
        out2 = out1 if self.tied else np.zeros_like(V2)
        for block, factor in zip(self.blocks, self.factors):
            A1, A2 = self.W1[:, block], self.W2[:, block]
            B1, B2 = V1[:, block], V2[:, block]
            if self.family == "general-linear":
                # δW1 = −W1 Bᵀ, δW2 = W2 B; normal equations G2 B + B G1 = W2ᵀV2 − V1ᵀW1.
                e1, Q1, e2, Q2 = factor
                R = Q2.T @ (A2.T @ B2 - B1.T @ A1) @ Q1
                denominator = e2[:, None] + e1[None, :]
                cut = 1e-12 * max(float(denominator.max()), 1e-300)
                Bt = np.where(denominator > cut, R / np.where(denominator > cut, denominator, 1.0), 0.0)
                B = Q2 @ Bt @ Q1.T
                out1[:, block] += -A1 @ B.T
                out2[:, block] += A2 @ B
            else:
                # δW = W A (A antisymmetric); normal equations G A + A G = WᵀV − VᵀW (summed).
                e, Q = factor
                R = A1.T @ B1 - B1.T @ A1
                if not self.tied:
                    R = R + A2.T @ B2 - B2.T @ A2
                R = Q.T @ R @ Q
                denominator = e[:, None] + e[None, :]
                cut = 1e-12 * max(float(denominator.max()), 1e-300)
                At = np.where(denominator > cut, R / np.where(denominator > cut, denominator, 1.0), 0.0)
                np.fill_diagonal(At, 0.0)
                A = Q @ At @ Q.T
                out1[:, block] += A1 @ A
                if not self.tied:
                    out2[:, block] += A2 @ A
        return out1.ravel() if self.tied else np.concatenate([out1.ravel(), out2.ravel()])

    def complement(self, v) -> np.ndarray:
        return v - self.component(v)
