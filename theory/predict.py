"""Closed-form predictions for a dataset and partition: weights, loss, representation, linear maps.

Eq. (8) (block of cluster k), eq. (9) (memorisation), Cor. 3.3 (generalisation) and Cor. 3.4
(hybrid) as numeric constructors built from the symbolic derivations of ``theory/``; every
constructor checks its corollary's assumptions on the data and raises
:class:`theory.errors.AssumptionError` (a ``ValueError``) with the measured and required values.

>>> import numpy as np
>>> X = np.array([[2.0, -1.0], [0.0, 1.5]])                       # d = 2, n = 2
>>> memorization_weights(X, p=3, sigma=0.1, lam=0.0).shape        # (d, p)
(2, 3)
>>> clusters = [np.array([[2.0, 2.1], [0.1, -0.1]]), np.array([[-2.0, -2.2], [0.2, 0.0]])]
>>> generalization_weights(clusters, [2, 1], sigma=0.1, lam=0.0).shape
(2, 3)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from numerics.validation import (FLOAT_MAX, as_matrix, as_vector, data_and_labels, data_matrix, flag,
                                 nonnegative, positive_int, power_fits)
from theory import allocation as _allocation
from theory.errors import (AssumptionError, check_at_least, check_decay, check_negative_beta,
                           measured_beta)
from theory.hybrid import duplicate_r_sq_np
from theory.linear_block import optimal_scale_np
from theory.memorization import r_eq9_np
from theory.rectified_gaussian import relu_mean_np

__all__ = [
    "uniform_first_orthogonal", "block_weights", "block_linear_map", "memorization_weights",
    "generalization_weights", "hybrid_weights", "partition_weights", "predicted_loss",
    "expected_representation", "switching_margin", "own_cluster_margin", "Prediction", "predict",
]


def uniform_first_orthogonal(p_k: int) -> np.ndarray:
    """The O_k of eq. (8) used here: orthogonal (p_k, p_k) with first column 1/√p_k everywhere.

    A Householder reflection sending e_1 to the uniform unit vector; the other columns
    complete an orthonormal basis. Why this O_k and not any other: see :func:`block_weights`.

    >>> O = uniform_first_orthogonal(3)
    >>> np.allclose(O.T @ O, np.eye(3)), np.allclose(O[:, 0], 1 / np.sqrt(3))
    (True, True)
    """
    p_k = positive_int("p_k", p_k)
    uniform = np.full(p_k, 1.0 / np.sqrt(p_k))
    v = uniform.copy()
    v[0] -= 1.0
    norm_sq = v @ v
    if norm_sq < 1e-300:  # p_k = 1: O = [[1]]
        return np.eye(p_k)
    return np.eye(p_k) - 2.0 * np.outer(v, v) / norm_sq


def _top_directions(X_k: np.ndarray, p_k: int):
    """Top p_k eigenpairs (U, Λ) of X_kX_kᵀ, with u_1 oriented along the cluster mean."""
    U, singular, _ = np.linalg.svd(X_k, full_matrices=False)
    if p_k > singular.size:
        raise AssumptionError("p_k <= rank(X_k) (Theorem 3.1: the kept eigenvalues must exceed nλ ≥ 0)",
                              f"p_k = {p_k} with only {singular.size} eigenvalues", f"p_k <= {singular.size}")
    U = U[:, :p_k].copy()
    if p_k and U[:, 0] @ X_k.sum(axis=1) < 0:
        U[:, 0] *= -1.0
    return U, singular[:p_k] ** 2


def block_linear_map(X_k, p_k: int, n: int, sigma: float, lam: float) -> np.ndarray:
    """The block's linear map ``W_k W_kᵀ = U diag(a*) Uᵀ`` (d, d) of eq. (8); independent of O_k.

    ``a*_j = (Λ_j − nλ)/(Λ_j + n_kσ²)`` (Lemma D.1, :func:`theory.linear_block.optimal_scale`).
    """
    X_k = as_matrix("X_k", X_k, cols_name="n_k")
    p_k = positive_int("p_k", p_k, minimum=0)
    n = positive_int("n", n)
    sigma, lam = nonnegative("sigma", sigma, symbol="σ"), nonnegative("lam", lam, symbol="λ")
    check_at_least("n >= n_k (n is the total sample count)", n, X_k.shape[1], "eq. (8)")
    U, eigenvalues = _top_directions(X_k, p_k)
    scales = optimal_scale_np(eigenvalues, X_k.shape[1], sigma, n * lam)
    return (U * scales) @ U.T


def own_cluster_margin(W_k: np.ndarray, X_k: np.ndarray) -> float:
    """min over columns j and points x of the cluster of w_jᵀx/‖w_j‖ (> 0: the block acts linearly).

    ``W_k`` (d, p_k), ``X_k`` (d, n_k); ``inf`` when every column is zero.
    """
    W_k = as_matrix("W_k", W_k, cols_name="p_k")
    X_k = data_matrix("X_k", X_k, d=W_k.shape[0], d_source="W_k", cols_name="n_k")
    norms = np.linalg.norm(W_k, axis=0)
    keep = norms > 0
    if not np.any(keep):
        return np.inf
    return float(np.min((W_k[:, keep].T @ X_k) / norms[keep, None]))


def block_weights(X_k, p_k: int, n: int, sigma: float, lam: float, *,
                  check_assumptions: bool = True) -> np.ndarray:
    """Eq. (8): ``W_{X_k} = U^{(p_k)} (I + n_kσ²Λ^{-1})^{-1/2} (I − nλΛ^{-1})^{1/2} O_kᵀ``, shape (d, p_k).

    ``X_k`` (d, n_k) is one cluster, ``n`` the total number of samples (decay factor nλ);
    the noise factor uses n_k. O_k is :func:`uniform_first_orthogonal`, and that choice is
    forced, not cosmetic. Column j of W_k is ``Σ_l √a_l O_k[j, l] u_l``, so its
    pre-activation on a point x of the cluster is ``√a_1 O_k[j, 1] u_1ᵀx + Σ_{l≥2} …``. For a
    separable cluster (small α) u_1 ≈ x̄_k/‖x̄_k‖ carries almost all the energy and the other
    terms are O(α), so the sign of every column on its cluster is the sign of O_k[j, 1]. The
    block is the linear optimum of Lemma D.1 only if all its columns are on for every point
    of the cluster (stable masks); hence every entry of O_k's first column must be positive.
    Among unit vectors the uniform one 1/√p_k maximises the smallest entry, i.e. the worst
    column margin and so γ in the e^{−cγ²/σ²} residual of Theorem 3.1; it also spreads the
    cluster's energy equally over the p_k neurons — the balanced representation.

    >>> import numpy as np
    >>> X_k = np.array([[3.0, 3.2, 2.9], [0.1, -0.2, 0.05]])     # d = 2, n_k = 3
    >>> block_weights(X_k, 2, n=3, sigma=0.1, lam=0.0).shape
    (2, 2)
    """
    X_k = as_matrix("X_k", X_k, cols_name="n_k")
    p_k = positive_int("p_k", p_k, minimum=0)
    n = positive_int("n", n)
    sigma, lam = nonnegative("sigma", sigma, symbol="σ"), nonnegative("lam", lam, symbol="λ")
    check_assumptions = flag("check_assumptions", check_assumptions)
    check_at_least("n >= n_k (n is the total sample count)", n, X_k.shape[1], "eq. (8)")
    if p_k == 0:
        return np.zeros((X_k.shape[0], 0))
    U, eigenvalues = _top_directions(X_k, p_k)
    if check_assumptions:
        check_decay(n * lam, float(eigenvalues[-1]), f"a cluster with n_k = {X_k.shape[1]}, p_k = {p_k}")
    elif not eigenvalues[-1] > n * lam:
        raise AssumptionError("nλ < λ_min(Λ^(p_k)) (eq. (8) is not real otherwise)",
                              f"nλ = {n * lam:.6g}", f"< {eigenvalues[-1]:.6g}")
    scales = np.sqrt(optimal_scale_np(eigenvalues, X_k.shape[1], sigma, n * lam))
    W_k = (U * scales) @ uniform_first_orthogonal(p_k).T
    if check_assumptions:
        margin = own_cluster_margin(W_k, X_k)
        if not margin > 0:
            raise AssumptionError("stable masks: every block column on for every point of its cluster "
                                  "(Theorem 3.1, small α)", f"min_j,x w_jᵀx/‖w_j‖ = {margin:.6g}", "> 0",
                                  "the cluster is too spread for p_k columns; lower p_k")
    return W_k


def _check_other_clusters(W_blocks, clusters) -> None:
    """Raise unless every block column is off on every point of every other cluster."""
    for k, W_k in enumerate(W_blocks):
        norms = np.linalg.norm(W_k, axis=0)
        if W_k.shape[1] == 0 or not np.any(norms > 0):
            continue
        for l, X_l in enumerate(clusters):
            if l == k:
                continue
            worst = float(np.max((W_k[:, norms > 0].T @ X_l) / norms[norms > 0, None]))
            if not worst < 0:
                raise AssumptionError("stable masks: block columns off on the other clusters "
                                      "(Theorem 3.1)", f"max w_jᵀx/‖w_j‖ = {worst:.6g} for block {k} "
                                      f"on cluster {l}", "< 0")


def _check_fourth_powers(name: str, norms_sq, sigma: float) -> None:
    """Eq. (9)'s ``r_i`` divides by ``‖x_i‖⁴ + σ²‖x_i‖²``: it must not overflow float64."""
    top = float(np.max(norms_sq)) if np.size(norms_sq) else 0.0
    if top > 0 and (np.log10(top) + max(np.log10(top), 2 * np.log10(sigma) if sigma > 0 else -np.inf)
                    > np.log10(FLOAT_MAX) - 1):
        raise ValueError(f"{name} and sigma are too large for eq. (9): ‖x_i‖⁴ + σ²‖x_i‖² overflows float64 "
                         f"(max ‖x_i‖² = {top:.3g}, sigma = {sigma:.3g}); rescale {name} and sigma")


def memorization_weights(X, p: int, sigma: float, lam: float, *,
                         check_assumptions: bool = True) -> np.ndarray:
    """Eq. (9) (Cor. 3.2): ``W_mem = (r_1x_1 … r_nx_n 0 … 0)``, shape (d, p), p ≥ n.

    ``r_i = √((‖x_i‖² − nλ)/(‖x_i‖⁴ + σ²‖x_i‖²))`` — the rank-1 case of eq. (8), proved in
    ``tests/test_theory_memorization.py``. Checks p ≥ n, nλ < min‖x_i‖² and β1 < 0 (every
    pair of samples negatively correlated, so each sample is a separable cluster).
    ``check_assumptions=False`` skips only the β1 check (p ≥ n and nλ < min‖x_i‖² are
    needed to build eq. (9) at all).

    >>> import numpy as np
    >>> W = memorization_weights(np.array([[1.0, -1.0], [1.0, 0.0]]), 3, 0.0, 0.0)
    >>> np.round(W, 3)            # r_i = 1/‖x_i‖ at σ = λ = 0: unit columns x_i/‖x_i‖
    array([[ 0.707, -1.   ,  0.   ],
           [ 0.707,  0.   ,  0.   ]])
    """
    X = as_matrix("X", X, cols_name="n")
    p = positive_int("p", p)
    sigma, lam = nonnegative("sigma", sigma, symbol="σ"), nonnegative("lam", lam, symbol="λ")
    check_assumptions = flag("check_assumptions", check_assumptions)
    d, n = X.shape
    norms_sq = np.sum(X ** 2, axis=0)
    _check_fourth_powers("X", norms_sq, sigma)
    check_at_least("p >= n (Corollary 3.2)", p, n, "memorisation needs a column per sample")
    if check_assumptions:
        if n > 1:
            check_negative_beta(X, np.arange(n), what="training samples (β1 of Cor. 3.2)")
    if not n * lam < norms_sq.min():
        raise AssumptionError("nλ < min_i ‖x_i‖² (Corollary 3.2)", f"nλ = {n * lam:.6g}",
                              f"< {norms_sq.min():.6g}")
    W = np.zeros((d, p))
    W[:, :n] = X * r_eq9_np(norms_sq, n, sigma, lam)
    return W


def generalization_weights(clusters, p_per_cluster, sigma: float, lam: float, *,
                           check_assumptions: bool = True) -> np.ndarray:
    """Cor. 3.3 / Theorem 3.1: ``W_gen = (W_{X_1} … W_{X_K})``, shape (d, Σ p_k).

    ``clusters`` is a list of (d, n_k) arrays, ``p_per_cluster`` the number of columns of
    each block (0 allowed: the cluster gets none). Checks β < 0 between cluster means, the
    decay condition nλ < λ_min(Λ_k^{(p_k)}) and stable masks (own cluster on, others off).
    """
    if isinstance(clusters, np.ndarray) or not isinstance(clusters, (list, tuple)):
        raise TypeError(f"clusters must be a list of (d, n_k) arrays; got {type(clusters).__name__}")
    clusters = [as_matrix(f"clusters[{k}]", X_k, cols_name="n_k") for k, X_k in enumerate(clusters)]
    if not clusters:
        raise ValueError("clusters must hold at least one (d, n_k) array")
    d = clusters[0].shape[0]
    for k, X_k in enumerate(clusters):
        as_matrix(f"clusters[{k}]", X_k, rows=d, cols_name="n_k")
    p_per_cluster = _counts("p_per_cluster", p_per_cluster)
    if len(p_per_cluster) != len(clusters):
        raise ValueError(f"p_per_cluster must have one entry per cluster (clusters holds {len(clusters)} "
                         f"arrays); got {len(p_per_cluster)}")
    check_assumptions = flag("check_assumptions", check_assumptions)
    n = sum(X_k.shape[1] for X_k in clusters)
    X = np.concatenate(clusters, axis=1)
    labels = np.repeat(np.arange(len(clusters)), [X_k.shape[1] for X_k in clusters])
    if check_assumptions and len(clusters) > 1:
        check_negative_beta(X, labels)
    blocks = [block_weights(X_k, q, n, sigma, lam, check_assumptions=check_assumptions)
              for X_k, q in zip(clusters, p_per_cluster)]
    if check_assumptions:
        _check_other_clusters(blocks, clusters)
    return np.concatenate(blocks, axis=1)


def hybrid_weights(duplicated, copies, clusters, p_per_cluster, sigma: float, lam: float, *,
                   check_assumptions: bool = True) -> np.ndarray:
    """Cor. 3.4: ``(r_1x_1 … r_mx_m W_{X_{m+1}} … W_{X_K})``, shape (d, m + Σ p_k).

    ``duplicated`` (d, m) holds the m distinct duplicated samples, ``copies`` their counts
    n_l; ``clusters``/``p_per_cluster`` the generalised part as in
    :func:`generalization_weights`. ``r_l² = (n_l‖x_l‖² − nλ)/(n_l‖x_l‖⁴ + n_lσ²‖x_l‖²)``
    (eq. (8) with p_l = 1 on the copies; ``theory.hybrid``). n counts every copy.

    >>> import numpy as np
    >>> dup = np.array([[-3.0], [0.0]]); gen = [np.array([[2.0, 2.1], [0.1, -0.1]])]
    >>> hybrid_weights(dup, [5], gen, [2], sigma=0.1, lam=0.0).shape
    (2, 3)
    """
    duplicated = as_matrix("duplicated", duplicated, cols_name="m")
    d, m = duplicated.shape
    copies = as_vector("copies", copies, length=m)
    copies = np.array([positive_int(f"copies[{l}]", c) for l, c in enumerate(copies)])
    if isinstance(clusters, np.ndarray) or not isinstance(clusters, (list, tuple)):
        raise TypeError(f"clusters must be a list of (d, n_k) arrays; got {type(clusters).__name__}")
    clusters = [as_matrix(f"clusters[{k}]", X_k, rows=d, cols_name="n_k") for k, X_k in enumerate(clusters)]
    p_per_cluster = _counts("p_per_cluster", p_per_cluster)
    if len(p_per_cluster) != len(clusters):
        raise ValueError(f"p_per_cluster must have one entry per cluster (clusters holds {len(clusters)} "
                         f"arrays); got {len(p_per_cluster)}")
    sigma, lam = nonnegative("sigma", sigma, symbol="σ"), nonnegative("lam", lam, symbol="λ")
    check_assumptions = flag("check_assumptions", check_assumptions)
    n = int(copies.sum()) + sum(X_k.shape[1] for X_k in clusters)
    all_clusters = [np.repeat(duplicated[:, [l]], c, axis=1) for l, c in enumerate(copies)] + clusters
    labels = np.repeat(np.arange(len(all_clusters)), [X_k.shape[1] for X_k in all_clusters])
    if check_assumptions and len(all_clusters) > 1:
        check_negative_beta(np.concatenate(all_clusters, axis=1), labels)
    norms_sq = np.sum(duplicated ** 2, axis=0)
    _check_fourth_powers("duplicated", copies * norms_sq, sigma)
    bad = ~(copies * norms_sq > n * lam)
    if np.any(bad):
        l = int(np.argmax(bad))
        raise AssumptionError("n_l‖x_l‖² > nλ for every duplicated sample (Cor. 3.4, Lemma D.1)",
                              f"n_l‖x_l‖² = {copies[l] * norms_sq[l]:.6g} for l = {l}", f"> nλ = {n * lam:.6g}")
    memorised = duplicated * np.sqrt(duplicate_r_sq_np(norms_sq, copies, n, sigma, lam))
    blocks = [block_weights(X_k, q, n, sigma, lam, check_assumptions=check_assumptions)
              for X_k, q in zip(clusters, p_per_cluster)]
    if check_assumptions:
        _check_other_clusters([memorised[:, [l]] for l in range(m)] + blocks, all_clusters)
    return np.concatenate([memorised] + blocks, axis=1)


def _counts(name: str, values) -> list:
    """Non-negative integer counts, one per cluster (a sequence, not a string or scalar)."""
    if isinstance(values, (str, bytes)) or np.ndim(values) != 1:
        raise TypeError(f"{name} must be a sequence of integers, one per cluster; got {values!r:.60}")
    return [positive_int(f"{name}[{k}]", q, minimum=0) for k, q in enumerate(values)]


def _split(X, labels):
    X, labels = data_and_labels(X, labels)
    ids = np.unique(labels)
    return X, labels, ids, [X[:, labels == k] for k in ids]


def partition_weights(X, labels, p_per_cluster, sigma: float, lam: float, *,
                      check_assumptions: bool = True) -> np.ndarray:
    """Theorem 3.1 for any partition: one eq. (8) block per label (increasing label order)."""
    _, _, _, clusters = _split(X, labels)
    return generalization_weights(clusters, p_per_cluster, sigma, lam, check_assumptions=check_assumptions)


def predicted_loss(X, labels, p_per_cluster, sigma: float, lam: float) -> float:
    """L of eq. (6) at the block point, stable masks: (1/n) Σ_k [‖X_k‖² − Σ_{j≤p_k} (Λ_kj − nλ)²/(Λ_kj + n_kσ²)].

    Includes the decay λ(‖W1‖² + ‖W2‖²); exact up to the e^{−cγ²/σ²} terms of Theorem 3.1.
    """
    X, labels, ids, _ = _split(X, labels)
    power_fits("X", X, 4, "the block loss (it squares the eigenvalues of X_kX_kᵀ)")
    p_per_cluster = _counts("p_per_cluster", p_per_cluster)
    if len(p_per_cluster) != len(ids):
        raise ValueError(f"p_per_cluster must have one entry per cluster ({len(ids)}); got {len(p_per_cluster)}")
    spectra = _allocation.cluster_spectra(X, labels)
    return _allocation.predicted_block_loss(spectra, p_per_cluster, X.shape[1],
                                            nonnegative("sigma", sigma, symbol="σ"),
                                            nonnegative("lam", lam, symbol="λ"))


def expected_representation(W, Y, sigma: float) -> np.ndarray:
    """E_ε[W ᵀ(y + σε)]_+ for each column y of Y: shape (p, m); σ = 0 gives [WᵀY]_+.

    Entry (j, i) is the rectified mean m Φ(m/s) + s φ(m/s), m = w_jᵀy_i, s = σ‖w_j‖
    (``theory.rectified_gaussian``).
    """
    W = as_matrix("W", W, cols_name="p")
    Y = data_matrix("Y", Y, d=W.shape[0], d_source="W", cols_name="m")
    sigma = nonnegative("sigma", sigma, symbol="σ")
    means = W.T @ Y
    stds = sigma * np.linalg.norm(W, axis=0)[:, None] * np.ones_like(means)
    out = np.maximum(means, 0.0)
    noisy = stds > 0
    out[noisy] = relu_mean_np(means[noisy], stds[noisy])
    return out


def switching_margin(W, X) -> float:
    """γ: min over nonzero columns j and samples i of |w_jᵀx_i|/‖w_j‖.

    The distance from x_i to column j's hyperplane: neuron j flips on x_i + σε with
    probability Φ(−|w_jᵀx_i|/(σ‖w_j‖)) ≤ ½e^{−γ²/(2σ²)}, the source of Theorem 3.1's residual.
    """
    W = as_matrix("W", W, cols_name="p")
    X = data_matrix("X", X, d=W.shape[0], d_source="W")
    norms = np.linalg.norm(W, axis=0)
    keep = norms > 0
    if not np.any(keep):
        return np.inf
    return float(np.min(np.abs(W[:, keep].T @ X) / norms[keep, None]))


@dataclass(frozen=True)
class Prediction:
    """Everything predicted for (X, labels, p, σ, λ) at the block point (tied weights W1 = W2 = W)."""

    W: np.ndarray
    labels: tuple[int, ...]
    p_per_cluster: tuple[int, ...]
    regimes: tuple[str, ...]
    loss: float
    linear_maps: dict
    margin: float
    beta: float


def predict(X, labels, p, sigma: float, lam: float = 0.0, *, check_assumptions: bool = True) -> Prediction:
    """Predict weights, loss, regimes and per-cluster maps; ``p`` an int (allocated by water-filling,
    ``theory.allocation``) or one count per cluster. Columns beyond the allocation are zero.

    >>> import numpy as np
    >>> X = np.array([[3.0, 3.1, -1.0], [0.2, -0.2, 0.0]])
    >>> pred = predict(X, [0, 0, 1], p=3, sigma=0.1)
    >>> pred.W.shape, pred.p_per_cluster, pred.regimes
    ((2, 3), (2, 1), ('generalised', 'memorised'))
    """
    X, labels, ids, clusters = _split(X, labels)
    power_fits("X", X, 4, "the predicted loss and allocation (they square the eigenvalues of X_kX_kᵀ)")
    sigma, lam = nonnegative("sigma", sigma, symbol="σ"), nonnegative("lam", lam, symbol="λ")
    check_assumptions = flag("check_assumptions", check_assumptions)
    if np.ndim(p) == 0:
        p_total = positive_int("p", p)
        counts = _allocation.allocate(X, labels, p_total, sigma, lam).p_per_cluster
    else:
        counts = tuple(_counts("p", p))
        if len(counts) != len(ids):
            raise ValueError(f"p must be an int or one count per cluster ({len(ids)}); got {len(counts)} counts")
        p_total = sum(counts)
        if p_total < 1:
            raise ValueError(f"p must give at least one neuron in all; got {counts}")
    W_blocks = generalization_weights(clusters, counts, sigma, lam, check_assumptions=check_assumptions)
    W = np.zeros((X.shape[0], p_total))
    W[:, :W_blocks.shape[1]] = W_blocks
    spectra = _allocation.cluster_spectra(X, labels)
    maps = {int(k): block_linear_map(X_k, q, X.shape[1], sigma, lam) if q else np.zeros((X.shape[0],) * 2)
            for k, X_k, q in zip(ids, clusters, counts)}
    return Prediction(W, tuple(int(k) for k in ids), tuple(counts),
                      tuple(_allocation.regime(s, q) for s, q in zip(spectra, counts)),
                      _allocation.predicted_block_loss(spectra, counts, X.shape[1], sigma, lam),
                      maps, switching_margin(W, X), measured_beta(X, labels))
