"""Hypothesis strategies for valid instances of the paper's settings (docs/theory.md §3).

Every strategy draws the *parameters* (sizes, α, β, norms, a seed) and builds the data with the
package's own generators, so shrinking acts on interpretable numbers. Instances used for
training are tiny (d ≤ 8, p ≤ 8, n ≤ 10) and placed in the claims' regime: σ is drawn as
γ/t with t ∈ [2.5, 5], γ the switching margin of the predicted point, so the residual
e^{−cγ²/σ²} of Theorem 3.1 is small but not invisible.

* :func:`separable_cluster_sets` — Definition 3.1 data (d, n_k, α, β < 0), `numerics.data.separable_clusters`.
* :func:`memorisation_sets` — Cor. 3.2: n ≤ p negatively correlated samples, `numerics.data.memorization_set`.
* :func:`low_rank_mixtures` — Cor. 3.3: modes with rank-r spreads, `proofs.common.orthogonal_clusters`.
* :func:`hybrids` — Cor. 3.4: modes plus duplicated samples on one simplex.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from hypothesis import reject, strategies as st

from numerics.data import memorization_set, separable_clusters
from proofs.common import orthogonal_clusters
from theory.errors import AssumptionError
from theory.predict import memorization_weights, partition_weights, switching_margin

seeds = st.integers(0, 2 ** 31 - 1)


@dataclass(frozen=True)
class Instance:
    """Data, the predicted tied weights W and the training parameters of one generated case."""

    kind: str
    X: np.ndarray
    labels: np.ndarray
    p_per_cluster: tuple
    sigma: float
    lam: float
    W: np.ndarray
    duplicates: tuple = ()
    params: dict = field(default_factory=dict)

    def __repr__(self) -> str:          # hypothesis prints this for a failing example
        return (f"Instance({self.kind}, d={self.X.shape[0]}, n={self.X.shape[1]}, p_k={self.p_per_cluster}, "
                f"σ={self.sigma:.4g}, λ={self.lam:.3g}, {self.params})")


def _place_sigma(build, ratio: float):
    """σ = γ/ratio with γ the margin of the prediction at that σ; three fixed-point steps."""
    sigma = 1.0
    for _ in range(3):
        W = build(sigma)
        sigma = switching_margin(W, build.X) / ratio
    return sigma, build(sigma)


@st.composite
def separable_cluster_sets(draw, max_d: int = 8, max_clusters: int = 4, max_size: int = 5):
    """(α, β)-separable clusters of Definition 3.1 with β < 0; returns ``numerics.data.Clusters``."""
    M = draw(st.integers(2, max_clusters))
    d = draw(st.integers(M, max(M, max_d)))
    sizes = draw(st.lists(st.integers(1, max_size), min_size=M, max_size=M))
    if max(sizes) == 1:
        sizes[0] = 2
    beta = draw(st.floats(-1.0 / (M - 1), -0.05))
    alpha = draw(st.floats(0.0, 0.5))
    return separable_clusters(d, sizes, alpha=alpha, beta=beta, norm=draw(st.floats(0.5, 4.0)), seed=draw(seeds))


@st.composite
def memorisation_sets(draw, max_d: int = 8, max_n: int = 5, max_extra: int = 2):
    """Cor. 3.2 instances: n ≤ p samples, pairwise cosine β < 0, p − n ∈ [0, max_extra] zero columns."""
    n = draw(st.integers(2, max_n))
    d = draw(st.integers(n, max_d))
    beta = draw(st.floats(-1.0 / (n - 1), -0.1)) if n > 2 else -1.0
    norm = draw(st.floats(1.0, 4.0))
    X = memorization_set(d, n, norm=norm, beta=beta, seed=draw(seeds))
    p = n + draw(st.integers(0, max_extra))
    lam = draw(st.floats(0.0, 0.05)) * norm ** 2 / n                     # nλ ≤ 5 % of ‖x‖²
    ratio = draw(st.floats(2.5, 5.0))

    def build(sigma):
        return memorization_weights(X, p, sigma, lam)
    build.X = X
    sigma, W = _place_sigma(build, ratio)
    return Instance("memorisation", X, np.arange(n), (1,) * n, sigma, lam, W,
                    params=dict(beta=round(beta, 4), norm=round(norm, 3), p=p, gamma_over_sigma=round(ratio, 3)))


@st.composite
def low_rank_mixtures(draw, max_clusters: int = 3, max_size: int = 4):
    """Cor. 3.3 instances: 2–3 modes, simplex means, rank-1/2 spreads (α ∈ [0.1, 0.5]), p_k ≤ rank + 1."""
    M = draw(st.integers(2, max_clusters))
    ranks = draw(st.lists(st.integers(1, 2), min_size=M, max_size=M))
    sizes = [draw(st.integers(r + 1, max_size)) for r in ranks]
    d = M - 1 + sum(ranks)
    alpha = draw(st.floats(0.1, 0.5))
    norms = draw(st.lists(st.floats(1.5, 4.0), min_size=M, max_size=M))
    X, labels = orthogonal_clusters(d, sizes, ranks, alpha=alpha, norms=norms, seed=draw(seeds))
    p_k = tuple(draw(st.integers(1, r + 1)) for r in ranks)
    return _clustered("generalisation", X, labels, p_k, draw, dict(alpha=round(alpha, 3), ranks=ranks))


@st.composite
def hybrids(draw, max_size: int = 4, max_alpha: float = 0.5):
    """Cor. 3.4 instances: 1–2 modes (rank 1–2) and 1–2 duplicated samples (1–3 copies) on one simplex.

    All clusters have the same mean norm; mode points are up to √(1 + α²) times longer.
    """
    K = draw(st.integers(1, 2))
    m = draw(st.integers(1, 2))
    ranks = draw(st.lists(st.integers(1, 2), min_size=K, max_size=K)) + [0] * m
    sizes = [draw(st.integers(r + 1, max_size)) for r in ranks[:K]] + \
        draw(st.lists(st.integers(1, 3), min_size=m, max_size=m))
    d = K + m - 1 + sum(ranks)
    alpha = draw(st.floats(0.1, max_alpha))
    X, labels = orthogonal_clusters(d, sizes, ranks, alpha=alpha, norms=draw(st.floats(1.5, 4.0)),
                                    seed=draw(seeds))
    p_k = tuple(draw(st.integers(2, r + 1)) for r in ranks[:K]) + (1,) * m
    return _clustered("hybrid", X, labels, p_k, draw, dict(alpha=round(alpha, 3), ranks=ranks),
                      duplicates=tuple(range(K, K + m)))


def _clustered(kind, X, labels, p_k, draw, params, duplicates=()):
    n = X.shape[1]
    smallest = min(float(np.linalg.svd(X[:, labels == k], compute_uv=False)[q - 1] ** 2)
                   for k, q in enumerate(p_k))
    lam = draw(st.floats(0.0, 0.05)) * smallest / n                    # nλ ≤ 5 % of λ_min(Λ_k^(p_k))
    ratio = draw(st.floats(2.5, 5.0))

    def build(sigma):
        return partition_weights(X, labels, p_k, sigma, lam)
    build.X = X
    try:
        sigma, W = _place_sigma(build, ratio)
    except AssumptionError:         # a wide cluster whose p_k columns cannot all be on (rare)
        reject()
    params.update(gamma_over_sigma=round(ratio, 3))
    return Instance(kind, X, labels, p_k, sigma, lam, W, duplicates, params)
