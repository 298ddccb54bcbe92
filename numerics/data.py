"""Data models for the checks: separable clusters, Gaussian mixtures, duplicates, real images.

- ``separable_clusters`` / ``memorization_set``: (α, β)-separable data of Definition 3.1.
- ``gaussian_mixture``: the ground truth of eq. (4) with low-rank covariances and the
  uncentred second moments ``S_k = μ_k μ_kᵀ + Σ_k`` of eq. (10) (Corollary 3.3 setting).
- ``duplicated_samples`` / ``hybrid_mixture``: duplicated points on top of a mixture
  (Corollary 3.4 setting).
- offline real images scaled to [−1, 1] live in `numerics.images` (``faces``, ``digits``,
  ``camera_patches``).
- ``separability``: the measured (α, β) of a labelled data set, exactly per Definition 3.1.

Samples are the columns of ``X`` with shape ``(d, n)``, float64. Every random function takes
``seed`` (an int or a ``numpy.random.Generator``, default 0): the same seed gives the same
data. Records are frozen dataclasses; do not modify their arrays in place.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from numerics.validation import (as_matrix, as_rng, as_vector, data_and_labels, nonnegative, positive,
                                 positive_int, real_number)

__all__ = ["separability", "Separability", "equiangular_means", "separable_clusters", "Clusters",
           "memorization_set", "gaussian_mixture", "GaussianMixture", "duplicated_samples", "Duplicated",
           "hybrid_mixture"]

# ----------------------------------------------------------------------------- helpers


def _rng(seed) -> np.random.Generator:
    return as_rng("seed", seed)


def _orthonormal_frame(d: int, r: int, rng: np.random.Generator) -> np.ndarray:
    """A Haar-random (d, r) matrix with orthonormal columns (QR of a Gaussian matrix)."""
    Q, R = np.linalg.qr(rng.standard_normal((d, r)))
    return Q * np.where(np.diag(R) < 0, -1.0, 1.0)


def _per_item(name: str, value, count: int) -> np.ndarray:
    """A positive scalar broadcast to ``count`` entries, or a positive vector of that length."""
    if np.ndim(value) == 0:
        return np.full(count, positive(name, value))
    array = as_vector(name, value, length=count)
    if np.any(array <= 0):
        raise ValueError(f"{name} must be > 0 entry-wise; got {array}")
    return array


def _sizes(sizes) -> np.ndarray:
    if isinstance(sizes, (str, bytes)) or np.ndim(sizes) != 1:
        raise TypeError(f"sizes must be a sequence of cluster sizes n_k; got {sizes!r:.60}")
    array = np.asarray(sizes)
    if array.size == 0:
        raise ValueError(f"sizes must be a non-empty sequence of cluster sizes n_k; got {sizes!r}")
    return np.array([positive_int("sizes[k]", s) for s in array], dtype=np.int64)


def _mixture_weights(weights, K: int) -> np.ndarray:
    if weights is None:
        return np.full(K, 1.0 / K)
    weights = as_vector("weights", weights, length=K)
    if np.any(weights < 0) or abs(weights.sum() - 1.0) > 1e-9:
        raise ValueError(f"weights (rho_k) must be >= 0 and sum to 1; got {weights} "
                         f"with sum {weights.sum()!r}")
    return weights


# ----------------------------------------------------------------------------- Definition 3.1


@dataclass(frozen=True, eq=False)
class Separability:
    """Measured (α, β) of Definition 3.1, with per-cluster detail.

    ``alpha = max_k alphas[k]``, ``alphas[k] = max_j ‖x_kj − x̄_k‖ / ‖x̄_k‖``;
    ``beta = max_{k≠l} cosines[k, l]``, ``-inf`` for a single cluster (the condition over
    pairs k ≠ l is then vacuous). ``clusters`` lists the label of each row of ``cosines``.

    Returned by `separability`.
    """
    alpha: float
    beta: float
    alphas: np.ndarray      # (M,)
    cosines: np.ndarray     # (M, M), cos∠(x̄_k, x̄_l), ones on the diagonal
    clusters: np.ndarray    # (M,) sorted distinct labels
    means: np.ndarray       # (d, M) cluster means x̄_k


def separability(X, labels) -> Separability:
    """Measure the (α, β) of Definition 3.1 for the partition of ``X`` given by ``labels``.

    >>> X = np.array([[1.0, 1.0, -1.0], [0.1, -0.1, 0.0]])
    >>> s = separability(X, [0, 0, 1])
    >>> round(s.alpha, 3), round(s.beta, 3)
    (0.1, -1.0)

    A cluster whose mean is the zero vector makes α undefined: ``ValueError``.
    """
    X, labels = data_and_labels(X, labels)
    clusters = np.unique(labels)
    means = np.empty((X.shape[0], clusters.size))
    alphas = np.empty(clusters.size)
    for k, label in enumerate(clusters):
        members = X[:, labels == label]
        means[:, k] = members.mean(axis=1)
        norm = np.linalg.norm(means[:, k])
        if norm == 0:
            raise ValueError(f"cluster with label {label} has a zero mean; Definition 3.1 "
                             f"needs ‖x̄_k‖ > 0 for every cluster")
        alphas[k] = np.linalg.norm(members - means[:, [k]], axis=0).max() / norm
    unit = means / np.linalg.norm(means, axis=0)
    cosines = np.clip(unit.T @ unit, -1.0, 1.0)
    np.fill_diagonal(cosines, 1.0)
    off_diagonal = cosines[~np.eye(clusters.size, dtype=bool)]
    beta = float(off_diagonal.max()) if off_diagonal.size else -np.inf
    return Separability(float(alphas.max()), beta, alphas, cosines, clusters, means)


# ----------------------------------------------------------------------------- separable clusters


def equiangular_means(d: int, M: int, beta=None, norm=1.0, seed=0) -> np.ndarray:
    """M vectors in R^d with pairwise cosine exactly ``beta``, shape ``(d, M)``.

    ``beta=None`` is the regular simplex, ``beta = −1/(M−1)``, the most negative possible.
    The Gram matrix ``G = (1 − β) I + β 11ᵀ`` is PSD iff ``β ≥ −1/(M−1)``; its rank is M − 1 at
    the simplex and M above it, so at most d + 1 (simplex) or d (other β) vectors fit in
    R^d. The vectors are ``G^{1/2}`` placed in a random orthonormal frame and scaled by
    ``norm`` (a scalar or one norm per vector).

    >>> means = equiangular_means(5, 4, seed=0)
    >>> means.shape, round(float(means[:, 0] @ means[:, 1]), 6)
    ((5, 4), -0.333333)
    """
    d, M = positive_int("d", d), positive_int("M", M)
    norms = _per_item("norm", norm, M)
    rng = _rng(seed)
    if M == 1:
        coords = np.ones((1, 1))
    else:
        simplex = -1.0 / (M - 1)
        beta = simplex if beta is None else real_number("beta", beta)
        if beta >= 1:
            raise ValueError(f"beta must be a finite cosine < 1; got {beta!r}")
        if beta < simplex - 1e-12:
            raise ValueError(f"beta must be >= -1/(M-1) = {simplex:.6g} for M = {M} vectors "
                             f"(the regular simplex is the most negative equiangular set); got {beta!r}")
        beta = max(beta, simplex)
        rank = M - 1 if 1 + (M - 1) * beta <= 1e-12 else M
        if rank > d:
            raise ValueError(f"M = {M} vectors with pairwise cosine beta = {beta:.6g} need {rank} "
                             f"dimensions but d = {d}: at most d + 1 = {d + 1} vectors (only at "
                             f"beta = -1/(M-1)) or d = {d} vectors (larger beta) fit")
        eigenvalues, vectors = np.linalg.eigh((1 - beta) * np.eye(M) + beta)   # ascending
        coords = np.sqrt(np.clip(eigenvalues[-rank:], 0, None))[:, None] * vectors[:, -rank:].T
    return _orthonormal_frame(d, coords.shape[0], rng) @ coords * norms


@dataclass(frozen=True, eq=False)
class Clusters:
    """Labelled (α, β)-separable data: ``X`` (d, n), ``labels`` (n,), ``means`` (d, M).

    ``alpha`` and ``beta`` are the values achieved by construction (they equal the measured
    ``separability(X, labels)`` up to rounding); ``beta = -inf`` for a single cluster.
    Columns are ordered cluster by cluster, labels are 0 … M−1.

    Returned by `separable_clusters`.

    >>> data = separable_clusters(4, [2, 1], seed=0)          # d = 4, cluster sizes 2 and 1
    >>> data.sizes.tolist(), data.cluster(0).shape             # cluster 0 as (d, n_0)
    ([2, 1], (4, 2))
    """
    X: np.ndarray
    labels: np.ndarray
    means: np.ndarray
    alpha: float
    beta: float

    @property
    def sizes(self) -> np.ndarray:
        return np.bincount(self.labels, minlength=self.means.shape[1])

    def cluster(self, k: int) -> np.ndarray:
        """The columns of cluster k, shape (d, n_k)."""
        return self.X[:, self.labels == k]


def separable_clusters(d: int, sizes, alpha=0.0, beta=None, norm=1.0, seed=0) -> Clusters:
    """Clusters that are exactly (α, β)-separable in the sense of Definition 3.1.

    The M = len(sizes) means are ``equiangular_means(d, M, beta, norm)`` (pairwise cosine
    exactly β; ``beta=None`` is the simplex −1/(M−1)). Cluster k is its mean plus Gaussian
    deviations that are centred (so x̄_k is exactly the prescribed mean) and scaled so the
    largest relative deviation ‖x_kj − x̄_k‖/‖x̄_k‖ is exactly α. Singletons (n_k = 1) have no
    deviation, so α = 0 for them; asking α > 0 when every cluster is a singleton is an error.

    >>> data = separable_clusters(6, [3, 1, 2], alpha=0.2, beta=-0.3, seed=1)
    >>> data.X.shape, data.labels.tolist(), data.alpha, data.beta
    ((6, 6), [0, 0, 0, 1, 2, 2], 0.2, -0.3)
    """
    d = positive_int("d", d)
    sizes = _sizes(sizes)
    alpha = nonnegative("alpha", alpha, symbol="α")
    if alpha > 0 and sizes.max() == 1:
        raise ValueError(f"alpha (α) must be 0 when every cluster is a singleton (n_k = 1); "
                         f"got {alpha!r}")
    rng = _rng(seed)
    means = equiangular_means(d, sizes.size, beta, norm, rng)
    blocks = []
    for k, n_k in enumerate(sizes):
        deviations = rng.standard_normal((d, n_k))
        deviations -= deviations.mean(axis=1, keepdims=True)
        largest = np.linalg.norm(deviations, axis=0).max()
        if largest > 0:
            deviations *= alpha * np.linalg.norm(means[:, k]) / largest
        blocks.append(means[:, [k]] + deviations)
    M = sizes.size
    achieved_beta = -np.inf if M == 1 else (-1.0 / (M - 1) if beta is None else float(beta))
    return Clusters(np.hstack(blocks), np.repeat(np.arange(M), sizes), means,
                    alpha if sizes.max() > 1 else 0.0, achieved_beta)


def memorization_set(d: int, n: int, norm=1.0, beta=None, seed=0) -> np.ndarray:
    """n training vectors, each its own cluster, with pairwise cosine exactly β < 0 (Cor. 3.2).

    ``beta=None`` gives the regular simplex (−1/(n−1)); ``norm`` is a scalar or one norm per
    vector. Needs n ≤ d + 1 (simplex) or n ≤ d (larger β). Returns X of shape (d, n).

    >>> X = memorization_set(8, 5, norm=2.0, seed=0)
    >>> X.shape, np.round(np.linalg.norm(X, axis=0), 6).tolist()
    ((8, 5), [2.0, 2.0, 2.0, 2.0, 2.0])
    """
    n = positive_int("n", n)
    return separable_clusters(d, np.ones(n, dtype=int), 0.0, beta, norm, seed).X


# ----------------------------------------------------------------------------- Gaussian mixtures


def _counts(weights: np.ndarray, n: int, counts: str, rng: np.random.Generator) -> np.ndarray:
    """Samples per component: multinomial draw, or deterministic largest-remainder rounding."""
    if not isinstance(counts, str) or counts not in ("round", "multinomial"):
        raise ValueError(f"counts must be 'round' or 'multinomial'; got {counts!r}")
    if counts == "multinomial":
        return rng.multinomial(n, weights)
    exact = weights * n
    sizes = np.floor(exact).astype(np.int64)
    order = np.argsort(-(exact - sizes), kind="stable")
    sizes[order[: n - sizes.sum()]] += 1
    return sizes


@dataclass(frozen=True, eq=False)
class GaussianMixture:
    """A Gaussian mixture Σ_k ρ_k N(μ_k, F_k F_kᵀ) (eq. 4) and n samples drawn from it.

    Fields: ``X`` (d, n) samples ordered component by component, ``labels`` (n,),
    ``means`` (d, K), ``factors`` (K, d, r) with Σ_k = F_k F_kᵀ, ``weights`` ρ_k (K,).
    ``second_moment(k)`` is S_k = μ_k μ_kᵀ + Σ_k of eq. (10); matrices of size d × d are
    only built on request (8 MB each at d = 1024).

    Returned by `gaussian_mixture`.

    >>> mix = gaussian_mixture(d=4, K=2, rank=1, n=10, seed=0)
    >>> X_test, labels = mix.sample(6, seed=1)                 # a fresh test set, X_test (d, 6)
    >>> X_test.shape, labels.tolist(), mix.second_moment(0).shape
    ((4, 6), [0, 0, 0, 1, 1, 1], (4, 4))
    """
    X: np.ndarray
    labels: np.ndarray
    means: np.ndarray
    factors: np.ndarray
    weights: np.ndarray

    @property
    def d(self) -> int:
        return self.means.shape[0]

    @property
    def K(self) -> int:
        return self.means.shape[1]

    @property
    def rank(self) -> int:
        return self.factors.shape[2]

    @property
    def sizes(self) -> np.ndarray:
        """n_k, the number of samples of each component."""
        return np.bincount(self.labels, minlength=self.K)

    def cluster(self, k: int) -> np.ndarray:
        """The samples of component k, shape (d, n_k)."""
        return self.X[:, self.labels == k]

    def covariance(self, k: int) -> np.ndarray:
        """Σ_k = F_k F_kᵀ, shape (d, d)."""
        return self.factors[k] @ self.factors[k].T

    def second_moment(self, k: int) -> np.ndarray:
        """The uncentred second moment S_k = μ_k μ_kᵀ + Σ_k of eq. (10), shape (d, d)."""
        return np.outer(self.means[:, k], self.means[:, k]) + self.covariance(k)

    def second_moments(self) -> np.ndarray:
        """All S_k stacked, shape (K, d, d)."""
        return np.stack([self.second_moment(k) for k in range(self.K)])

    def sample(self, n: int, seed, counts: str = "round") -> tuple[np.ndarray, np.ndarray]:
        """n fresh samples (e.g. a test set): returns ``(X (d, n), labels (n,))``."""
        return _draw(self.means, self.factors, self.weights, positive_int("n", n), counts, _rng(seed))


def _draw(means, factors, weights, n, counts, rng):
    sizes = _counts(weights, n, counts, rng)
    X = np.empty((means.shape[0], n))
    start = 0
    for k, n_k in enumerate(sizes):
        z = rng.standard_normal((factors.shape[2], n_k))
        X[:, start:start + n_k] = means[:, [k]] + factors[k] @ z
        start += n_k
    return X, np.repeat(np.arange(means.shape[1]), sizes)


def gaussian_mixture(d: int, K: int, rank: int, n: int, weights=None, mean_norm=1.0,
                     spread=0.1, means="simplex", decay=0.0, counts="round",
                     seed=0) -> GaussianMixture:
    """Sample a K-component mixture with rank-r covariances (eq. 4; Corollary 3.3 setting).

    ``means``: ``"simplex"`` (pairwise cosine −1/(K−1) < 0, needs K ≤ d + 1; the default),
    ``"orthogonal"`` (cosine 0, K ≤ d), ``"random"`` (independent random directions,
    incoherent: cosines of order 1/√d), or an explicit (d, K) array. Generated means have
    norm ``mean_norm``. Each Σ_k = F_k F_kᵀ lives on a random r-dimensional subspace with
    variances ∝ j^(−decay), j = 1 … r, scaled so that ‖Σ_k^{1/2}‖_F / ‖μ_k‖ =
    √tr Σ_k / ‖μ_k‖ = ``spread`` (the α2 of Corollary 3.3). Small spread with the simplex
    means gives data that are (α, β)-separable with β < 0 with high probability.

    ``counts="round"`` (default) gives n_k by largest-remainder rounding of ρ_k n
    (deterministic, |n_k − ρ_k n| < 1, Σ n_k = n); ``"multinomial"`` draws them. Memory is
    one (d, n) array plus (K, d, r) factors: d = 1024, n = 10,000 takes 80 MB and well under
    a second.

    >>> mix = gaussian_mixture(d=16, K=3, rank=2, n=100, seed=0)
    >>> mix.X.shape, mix.means.shape, mix.factors.shape, mix.sizes.tolist()
    ((16, 100), (16, 3), (3, 16, 2), [34, 33, 33])
    """
    d, K, n = positive_int("d", d), positive_int("K", K), positive_int("n", n)
    rank = positive_int("rank", rank)
    if rank > d:
        raise ValueError(f"rank must be <= d = {d}; got {rank}")
    weights = _mixture_weights(weights, K)
    mean_norm = _per_item("mean_norm", mean_norm, K)
    spread = nonnegative("spread", spread)
    decay = nonnegative("decay", decay)
    rng = _rng(seed)
    if isinstance(means, str):
        if means == "simplex":
            mu = equiangular_means(d, K, None, mean_norm, rng)
        elif means == "orthogonal":
            mu = equiangular_means(d, K, 0.0, mean_norm, rng)
        elif means == "random":
            mu = rng.standard_normal((d, K))
            mu *= _per_item("mean_norm", mean_norm, K) / np.linalg.norm(mu, axis=0)
        else:
            raise ValueError(f"means must be 'simplex', 'orthogonal', 'random' or a (d, K) array; "
                             f"got {means!r}")
    else:
        mu = as_matrix("means", means, rows=d, cols=K, cols_name="K")
        if np.any(np.linalg.norm(mu, axis=0) == 0):
            raise ValueError("means must have nonzero columns (spread is relative to ‖μ_k‖)")
    profile = np.arange(1, rank + 1, dtype=float) ** (-decay)
    profile /= profile.sum()
    factors = np.empty((K, d, rank))
    for k in range(K):
        variances = (spread * np.linalg.norm(mu[:, k])) ** 2 * profile
        factors[k] = _orthonormal_frame(d, rank, rng) * np.sqrt(variances)
    X, labels = _draw(mu, factors, weights, n, counts, rng)
    return GaussianMixture(X, labels, mu, factors, weights)


# ----------------------------------------------------------------------------- duplicates (Cor. 3.4)


@dataclass(frozen=True, eq=False)
class Duplicated:
    """Data with m duplicate clusters X_l = (x_l, …, x_l) appended (Corollary 3.4).

    ``X`` (d, n), ``labels`` (n,); ``duplicates`` (m,) are the labels of the duplicate
    clusters, ``points`` (d, m) the duplicated vectors x_l, ``n_copies`` (m,) the n_l;
    ``base`` is the data object the duplicates were added to (None for a plain array).

    Returned by `duplicated_samples` and `hybrid_mixture`.

    >>> dup = duplicated_samples(np.eye(3), [0, 0, 1], n_copies=2, points=np.ones((3, 1)))   # X (d, n) = (3, 3)
    >>> dup.labels.tolist(), dup.is_duplicate.tolist()
    ([0, 0, 1, 2, 2], [False, False, False, True, True])
    """
    X: np.ndarray
    labels: np.ndarray
    duplicates: np.ndarray
    points: np.ndarray
    n_copies: np.ndarray
    base: object = None

    @property
    def is_duplicate(self) -> np.ndarray:
        """Boolean mask over the columns of X: True for the columns of duplicate clusters."""
        return np.isin(self.labels, self.duplicates)


def duplicated_samples(data, labels=None, n_copies=10, points=None, sources=None,
                       seed=0) -> Duplicated:
    """Append m clusters, each n_l copies of one vector x_l, to labelled data (Cor. 3.4).

    ``data`` is a record with ``.X`` and ``.labels`` (``GaussianMixture``, ``Clusters``) or a
    (d, n) array with ``labels``. The duplicated vectors are either ``points`` (a (d, m)
    array of new vectors), or the columns ``sources`` of X, which are *moved* out of their
    cluster so x_l occurs exactly n_l times; with neither, m = len(n_copies) source columns
    are drawn at random with ``seed`` (m = 1 for an integer n_copies). ``n_copies`` is one n_l for all, or one per duplicate. Duplicate
    clusters get the new labels max(labels) + 1, …, and their columns come last.

    >>> mix = gaussian_mixture(d=8, K=2, rank=1, n=20, seed=0)
    >>> dup = duplicated_samples(mix, n_copies=[5, 3], seed=0)
    >>> dup.X.shape, dup.duplicates.tolist(), dup.n_copies.tolist()
    ((8, 26), [2, 3], [5, 3])
    """
    rng = _rng(seed)
    if hasattr(data, "X") and hasattr(data, "labels"):
        base, X = data, data.X
        labels = data.labels if labels is None else labels
    else:
        base = None
        if labels is None:
            raise ValueError("labels must be given (one cluster label per column of X) when data is an array")
        X = data
    X, labels = data_and_labels(X, labels, name="X" if base is not None else "data")
    if points is not None and sources is not None:
        raise ValueError("give either points or sources, not both")
    if points is not None:
        points = as_matrix("points", points, rows=X.shape[0], cols_name="m")
        m = points.shape[1]
    else:
        if sources is None:
            m = np.size(n_copies)
            sources = rng.choice(X.shape[1], size=m, replace=False)
        sources = np.atleast_1d(np.asarray(sources))
        if sources.ndim != 1 or not np.issubdtype(sources.dtype, np.integer) \
                or np.any(sources < 0) or np.any(sources >= X.shape[1]) \
                or np.unique(sources).size != sources.size:
            raise ValueError(f"sources must be distinct column indices of X in [0, {X.shape[1]}); "
                             f"got {sources!r}")
        m = sources.size
        points = X[:, sources]
        keep = np.ones(X.shape[1], dtype=bool)
        keep[sources] = False
        X, labels = X[:, keep], labels[keep]
    copies = np.atleast_1d(np.asarray(n_copies))
    if copies.ndim != 1 or copies.size not in (1, m):
        raise ValueError(f"n_copies must be one integer or one per duplicate (m = {m}); got {n_copies!r}")
    copies = np.array([positive_int("n_copies", c) for c in np.broadcast_to(copies, (m,))])
    first = int(labels.max()) + 1 if labels.size else 0
    duplicates = np.arange(first, first + m)
    X = np.hstack([X, np.repeat(points, copies, axis=1)])
    labels = np.concatenate([labels, np.repeat(duplicates, copies)])
    return Duplicated(X, labels, duplicates, points, copies, base)


def hybrid_mixture(d: int, K: int, m: int, rank: int, n: int, n_copies=10, weights=None,
                   mean_norm=1.0, spread=0.1, seed=0) -> Duplicated:
    """The Corollary 3.4 setting: K Gaussian modes plus m duplicated points, all separable.

    The K mode means and the m duplicated points are the K + m vertices of one regular
    simplex (pairwise cosine −1/(K+m−1) < 0; needs K + m ≤ d + 1), so the whole data set is
    separable with β < 0 w.h.p. for small spread. ``base`` of the result is the
    ``GaussianMixture`` of the K modes (n samples); the duplicates add Σ n_l columns.

    >>> data = hybrid_mixture(d=16, K=2, m=2, rank=2, n=40, n_copies=5, seed=0)
    >>> data.X.shape, data.duplicates.tolist(), data.base.K
    ((16, 50), [2, 3], 2)
    """
    K, m = positive_int("K", K), positive_int("m", m)
    mean_norm = _per_item("mean_norm", mean_norm, K + m)
    rng = _rng(seed)
    vertices = equiangular_means(d, K + m, None, mean_norm, rng)
    mixture = gaussian_mixture(d, K, rank, n, weights=weights, spread=spread,
                               means=vertices[:, :K], seed=rng)
    return duplicated_samples(mixture, n_copies=n_copies, points=vertices[:, K:])


