"""Closed-form predictions for a dataset and partition: weights, loss, representation, linear maps.

Eq. (8) (block of cluster k), eq. (9) (memorisation), Cor. 3.3 (generalisation) and Cor. 3.4
(hybrid) as numeric constructors built from the symbolic derivations of ``theory/``; `predict`
joins them with the allocation rule and the block formula for the loss.

Conventions shared by every function here:

* **λ is required** (``lam``, as in eq. (6), no division by d) — in the constructors, in
  `predict` and in ``numerics.training.train`` alike. λ enters every block through nλ, and
  a silent λ = 0 would predict the minimiser of another loss than the one trained (at λ = 0
  the memorising point with p > n is not even a minimum; ``theory.memorization.saddle_decay``).
* **Tied weights**: a constructor returns one W (d, p), meant as ``W1 = W2 = W`` (the
  results assert ``W2* = W1*``). ``train`` keeps W1 and W2 independent (loss (6) as printed);
  compare a trained pair with a prediction through invariant objects
  (``numerics.compare.compare_to_prediction``), not entry by entry.
* **Assumptions**: with ``check_assumptions=True`` (the default) a violated assumption raises
  :class:`theory.errors.AssumptionError` (a ``ValueError``) with the measured and required
  values. With ``check_assumptions=False`` the closed form is built anyway, and every failed
  assumption is named, with its measured value, in one :class:`theory.errors.AssumptionWarning`:
  the weights are then in general not a critical point of eq. (6), and the exact loss there
  may differ from the block formula.

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
from theory.assumptions import (Assumptions, _mask_margin, _own_cluster_margin, _switching_margin, mask_margin,
                                measure, own_cluster_margin, switching_margin, warn_outside)
from theory.errors import (AssumptionError, _beta_of_means, _require_negative_beta, check_at_least, check_decay,
                           check_negative_beta)
from theory.hybrid import duplicate_r_sq_np
from theory.linear_block import optimal_scale_np
from theory.memorization import r_eq9_np
from theory.rectified_gaussian import relu_mean_np

__all__ = [
    "uniform_first_orthogonal", "block_weights", "block_linear_map", "memorization_weights",
    "generalization_weights", "hybrid_weights", "partition_weights", "predicted_loss",
    "expected_representation", "switching_margin", "own_cluster_margin", "mask_margin", "Assumptions",
    "Prediction", "predict",
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


def _top_directions(X_k: np.ndarray, p_k: int, gram=None):
    """Top p_k eigenpairs (U, Λ) of X_kX_kᵀ, with u_1 oriented along the cluster mean.

    One decomposition (``theory.allocation._top_eigenpairs``: from the smaller Gram matrix of
    a large cluster, ``gram`` = its ``theory.allocation._Gram`` if already computed, else the
    SVD); callers share its result. The signs of u_2 … u_{p_k} are the eigensolver's.
    """
    size = min(X_k.shape)
    if p_k > size:
        raise AssumptionError("p_k <= rank(X_k) (Theorem 3.1: the kept eigenvalues must exceed nλ ≥ 0)",
                              f"p_k = {p_k} with only {size} eigenvalues", f"p_k <= {size}")
    if p_k == 0:
        return np.zeros((X_k.shape[0], 0)), np.zeros(0)
    U, eigenvalues = _allocation._top_eigenpairs(X_k, p_k, gram)
    U = U.copy()
    if U[:, 0] @ X_k.sum(axis=1) < 0:
        U[:, 0] *= -1.0
    return U, eigenvalues


def block_linear_map(X_k, p_k: int, n: int, sigma: float, lam: float) -> np.ndarray:
    """The block's linear map ``W_k W_kᵀ = U diag(a*) Uᵀ`` (d, d) of eq. (8); independent of O_k.

    ``a*_j = (Λ_j − nλ)/(Λ_j + n_kσ²)`` (Lemma D.1, :func:`theory.linear_block.optimal_scale`).

    >>> X_k = np.array([[2.0, 2.0], [0.0, 0.0]])          # d = 2, n_k = 2: Λ = 8 along e1
    >>> A = block_linear_map(X_k, 1, n=2, sigma=0.1, lam=0.0)
    >>> A.shape, round(float(np.trace(A)), 6)            # a* = 8/(8 + 2·0.01)
    ((2, 2), 0.997506)
    """
    X_k = as_matrix("X_k", X_k, cols_name="n_k")
    p_k = positive_int("p_k", p_k, minimum=0)
    n = positive_int("n", n)
    sigma, lam = nonnegative("sigma", sigma, symbol="σ"), nonnegative("lam", lam, symbol="λ")
    check_at_least("n >= n_k (n is the total sample count)", n, X_k.shape[1], "eq. (8)")
    return _linear_map(_top_directions(X_k, p_k), X_k.shape[1], n, sigma, lam)


def _linear_map(directions, n_k: int, n: int, sigma: float, lam: float) -> np.ndarray:
    """`block_linear_map` from the block's top eigenpairs ``directions`` = (U, Λ) (`_top_directions`)."""
    U, eigenvalues = directions
    scales = optimal_scale_np(eigenvalues, n_k, sigma, n * lam)
    return (U * scales) @ U.T


def _block(X_k: np.ndarray, p_k: int, n: int, sigma: float, lam: float, check: bool,
           directions=None) -> np.ndarray:
    """Eq. (8) for checked inputs (see `block_weights`); raises on the own-cluster margin only if ``check``.

    ``directions``: the top p_k eigenpairs (U, Λ) of `_top_directions`, when already computed.
    """
    check_at_least("n >= n_k (n is the total sample count)", n, X_k.shape[1], "eq. (8)")
    if p_k == 0:
        return np.zeros((X_k.shape[0], 0))
    U, eigenvalues = _top_directions(X_k, p_k) if directions is None else directions
    if check:
        check_decay(n * lam, float(eigenvalues[-1]), f"a cluster with n_k = {X_k.shape[1]}, p_k = {p_k}")
    elif not eigenvalues[-1] > n * lam:
        raise AssumptionError("nλ < λ_min(Λ^(p_k)) (eq. (8) is not real otherwise)",
                              f"nλ = {n * lam:.6g}", f"< {eigenvalues[-1]:.6g}")
    scales = np.sqrt(optimal_scale_np(eigenvalues, X_k.shape[1], sigma, n * lam))
    W_k = (U * scales) @ uniform_first_orthogonal(p_k).T
    if check:
        margin = _own_cluster_margin(W_k, X_k)
        if not margin > 0:
            raise AssumptionError("stable masks: every block column on for every point of its cluster "
                                  "(Theorem 3.1, small α)", f"min_j,x w_jᵀx/‖w_j‖ = {margin:.6g}", "> 0",
                                  "the cluster is too spread for p_k columns; lower p_k")
    return W_k


def _blocks(clusters, counts, n: int, sigma: float, lam: float, check: bool, grams=None):
    """The eq. (8) blocks of checked clusters and the top eigenpairs (U, Λ) each is built from.

    One decomposition per cluster (`_top_directions`; ``grams``: the clusters'
    ``theory.allocation._Gram``, when already computed), shared by the block, its decay slack
    (`_decay_slack`) and its linear map (`_linear_map`). ``check`` as in `_block`.
    """
    blocks, directions = [], []
    for k, (X_k, q) in enumerate(zip(clusters, counts)):
        directions.append(_top_directions(X_k, q, None if grams is None else grams[k]))
        blocks.append(_block(X_k, q, n, sigma, lam, check, directions[-1]))
    return blocks, directions


def _decay_slack(directions, n: int, lam: float) -> float:
    """``min_k λ_min(Λ_k^{(p_k)}) − nλ`` over the blocks' kept eigenvalues (`_blocks`; ``inf`` if none is kept)."""
    slack = np.inf
    for _, eigenvalues in directions:
        if eigenvalues.size:
            slack = min(slack, float(eigenvalues[-1]) - n * lam)
    return slack


def _spectral_slack(spectra, counts, n: int, lam: float) -> float:
    """`_decay_slack` from the clusters' spectra (``theory.allocation``), where Λ_{p_k} = 0 beyond min(d, n_k)."""
    slack = np.inf
    for spectrum, q in zip(spectra, counts):
        if q:
            smallest = spectrum.eigenvalues[q - 1] if q <= spectrum.eigenvalues.size else 0.0
            slack = min(slack, float(smallest) - n * lam)
    return slack


def block_weights(X_k, p_k: int, n: int, sigma: float, lam: float, *,
                  check_assumptions: bool = True) -> np.ndarray:
    """Eq. (8): ``W_{X_k} = U^{(p_k)} (I + n_kσ²Λ^{-1})^{-1/2} (I − nλΛ^{-1})^{1/2} O_kᵀ``, shape (d, p_k).

    ``X_k`` (d, n_k) is one cluster, ``n`` the total number of samples (decay factor nλ);
    the noise factor uses n_k; ``lam`` is required (module docstring). The block is used as
    ``W1 = W2 = W_k`` (tied). O_k is :func:`uniform_first_orthogonal`, and that choice is
    forced, not cosmetic. Column j of W_k is ``Σ_l √a_l O_k[j, l] u_l``, so its
    pre-activation on a point x of the cluster is ``√a_1 O_k[j, 1] u_1ᵀx + Σ_{l≥2} …``. For a
    separable cluster (small α) u_1 ≈ x̄_k/‖x̄_k‖ carries almost all the energy and the other
    terms are O(α), so the sign of every column on its cluster is the sign of O_k[j, 1]. The
    block is the linear optimum of Lemma D.1 only if all its columns are on for every point
    of the cluster (stable masks); hence every entry of O_k's first column must be positive.
    Among unit vectors the uniform one 1/√p_k maximises the smallest entry, i.e. the worst
    column margin and so γ in the e^{−cγ²/σ²} residual of Theorem 3.1; it also spreads the
    cluster's energy equally over the p_k neurons — the balanced representation.
    ``check_assumptions=False`` builds the block even when a column is off on part of its
    cluster, with an `AssumptionWarning`.

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
    directions = _top_directions(X_k, p_k)
    W_k = _block(X_k, p_k, n, sigma, lam, check_assumptions, directions)
    if not check_assumptions and p_k:
        # one cluster: β does not apply, and the others are not known here
        warn_outside(Assumptions(-np.inf, _own_cluster_margin(W_k, X_k), _decay_slack([directions], n, lam)),
                     "eq. (8) from theory.predict.block_weights(check_assumptions=False)")
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
    """Eq. (9) (Cor. 3.2): ``W_mem = (r_1x_1 … r_nx_n 0 … 0)``, shape (d, p), p ≥ n, used as W1 = W2 = W_mem.

    ``r_i = √((‖x_i‖² − nλ)/(‖x_i‖⁴ + σ²‖x_i‖²))`` — the rank-1 case of eq. (8), proved in
    ``tests/theory/test_memorization.py``; ``lam`` is required (module docstring). Checks p ≥ n,
    nλ < min‖x_i‖² and β1 < 0 (every pair of samples negatively correlated, so each sample is
    a separable cluster). ``check_assumptions=False`` skips only the β1 check (p ≥ n and
    nλ < min‖x_i‖² are needed to build eq. (9) at all) and warns (`AssumptionWarning`) when
    β1 ≥ 0: raw images have β1 close to 1, and there the columns r_ix_i fire on each other's
    samples, so eq. (9) is not a minimiser and its exact loss can be orders of magnitude
    above the formula's (centre the images and pick the least correlated ones,
    ``numerics.images.centred`` and ``least_correlated``).

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
    if not check_assumptions:
        owners = np.concatenate([np.arange(n), -np.ones(p - n, dtype=int)])
        warn_outside(measure(W, owners, X, np.arange(n), float(norms_sq.min() - n * lam)),
                     "eq. (9) from theory.predict.memorization_weights(check_assumptions=False)")
    return W


def _cluster_list(name: str, clusters, d: int | None = None) -> list:
    if isinstance(clusters, np.ndarray) or not isinstance(clusters, (list, tuple)):
        raise TypeError(f"{name} must be a list of (d, n_k) arrays; got {type(clusters).__name__}")
    clusters = [as_matrix(f"{name}[{k}]", X_k, rows=d, cols_name="n_k") for k, X_k in enumerate(clusters)]
    if not clusters and d is None:
        raise ValueError(f"{name} must hold at least one (d, n_k) array")
    return clusters


def _generalization(clusters, counts, sigma, lam, check, grams=None) -> tuple[np.ndarray, Assumptions | None]:
    """Blocks of checked clusters; with ``check`` raise on a failed assumption, else measure them.

    ``grams``: the clusters' ``theory.allocation._Gram`` when already computed (`_blocks`).
    """
    n = sum(X_k.shape[1] for X_k in clusters)
    X = np.concatenate(clusters, axis=1)
    labels = np.repeat(np.arange(len(clusters)), [X_k.shape[1] for X_k in clusters])
    if check and len(clusters) > 1:
        check_negative_beta(X, labels)
    blocks, directions = _blocks(clusters, counts, n, sigma, lam, check, grams)
    if check:
        _check_other_clusters(blocks, clusters)
    W = np.concatenate(blocks, axis=1)
    if check:
        return W, None
    owners = np.repeat(np.arange(len(clusters)), counts)
    return W, measure(W, owners, X, labels, _decay_slack(directions, n, lam))


def generalization_weights(clusters, p_per_cluster, sigma: float, lam: float, *,
                           check_assumptions: bool = True) -> np.ndarray:
    """Cor. 3.3 / Theorem 3.1: ``W_gen = (W_{X_1} … W_{X_K})``, shape (d, Σ p_k), used as W1 = W2 = W_gen.

    ``clusters`` is a list of (d, n_k) arrays, ``p_per_cluster`` the number of columns of
    each block (0 allowed: the cluster gets none); ``lam`` is required (module docstring).
    Checks β < 0 between cluster means, the decay condition nλ < λ_min(Λ_k^{(p_k)}) and stable
    masks (own cluster on, others off); ``check_assumptions=False`` warns instead
    (`AssumptionWarning`), except for the decay condition, without which eq. (8) is not real.

    >>> import numpy as np
    >>> clusters = [np.array([[2.0, 2.1], [0.1, -0.1]]), np.array([[-2.0, -2.2], [0.2, 0.0]])]
    >>> generalization_weights(clusters, [2, 1], sigma=0.1, lam=0.0).shape
    (2, 3)
    """
    clusters = _cluster_list("clusters", clusters)
    d = clusters[0].shape[0]
    for k, X_k in enumerate(clusters):
        as_matrix(f"clusters[{k}]", X_k, rows=d, cols_name="n_k")
    p_per_cluster = _counts("p_per_cluster", p_per_cluster)
    if len(p_per_cluster) != len(clusters):
        raise ValueError(f"p_per_cluster must have one entry per cluster (clusters holds {len(clusters)} "
                         f"arrays); got {len(p_per_cluster)}")
    sigma, lam = nonnegative("sigma", sigma, symbol="σ"), nonnegative("lam", lam, symbol="λ")
    check_assumptions = flag("check_assumptions", check_assumptions)
    W, assumptions = _generalization(clusters, p_per_cluster, sigma, lam, check_assumptions)
    if assumptions is not None:
        warn_outside(assumptions, "eq. (8) blocks from theory.predict.generalization_weights(check_assumptions=False)")
    return W


def hybrid_weights(duplicated, copies, clusters, p_per_cluster, sigma: float, lam: float, *,
                   check_assumptions: bool = True) -> np.ndarray:
    """Cor. 3.4: ``(r_1x_1 … r_mx_m W_{X_{m+1}} … W_{X_K})``, shape (d, m + Σ p_k), used as W1 = W2 = W.

    ``duplicated`` (d, m) holds the m distinct duplicated samples, ``copies`` their counts
    n_l; ``clusters``/``p_per_cluster`` the generalised part as in
    :func:`generalization_weights`. ``r_l² = (n_l‖x_l‖² − nλ)/(n_l‖x_l‖⁴ + n_lσ²‖x_l‖²)``
    (eq. (8) with p_l = 1 on the copies; ``theory.hybrid``). n counts every copy; ``lam`` is
    required. ``check_assumptions=False`` warns (`AssumptionWarning`) instead of raising on β
    and stable masks.

    >>> import numpy as np
    >>> dup = np.array([[-3.0], [0.0]]); gen = [np.array([[2.0, 2.1], [0.1, -0.1]])]
    >>> hybrid_weights(dup, [5], gen, [2], sigma=0.1, lam=0.0).shape
    (2, 3)
    """
    duplicated = as_matrix("duplicated", duplicated, cols_name="m")
    d, m = duplicated.shape
    copies = as_vector("copies", copies, length=m)
    copies = np.array([positive_int(f"copies[{l}]", c) for l, c in enumerate(copies)])
    clusters = _cluster_list("clusters", clusters, d)
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
    blocks, directions = _blocks(clusters, p_per_cluster, n, sigma, lam, check_assumptions)
    if check_assumptions:
        _check_other_clusters([memorised[:, [l]] for l in range(m)] + blocks, all_clusters)
    W = np.concatenate([memorised] + blocks, axis=1)
    if not check_assumptions:
        counts = [1] * m + list(p_per_cluster)
        slack = min(float(np.min(copies * norms_sq)) - n * lam, _decay_slack(directions, n, lam))
        warn_outside(measure(W, np.repeat(np.arange(len(all_clusters)), counts), np.concatenate(all_clusters, axis=1),
                             labels, slack), "Cor. 3.4 from theory.predict.hybrid_weights(check_assumptions=False)")
    return W


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
    """Theorem 3.1 for any partition: one eq. (8) block per label (increasing label order), used as W1 = W2 = W.

    As :func:`generalization_weights` with the clusters given by ``labels``.

    >>> X = np.array([[3.0, 3.1, -1.0], [0.2, -0.2, 0.0]])
    >>> partition_weights(X, [0, 0, 1], [2, 1], sigma=0.1, lam=0.0).shape
    (2, 3)
    """
    _, _, _, clusters = _split(X, labels)
    p_per_cluster = _counts("p_per_cluster", p_per_cluster)
    if len(p_per_cluster) != len(clusters):
        raise ValueError(f"p_per_cluster must have one entry per cluster ({len(clusters)}); got {len(p_per_cluster)}")
    sigma, lam = nonnegative("sigma", sigma, symbol="σ"), nonnegative("lam", lam, symbol="λ")
    W, assumptions = _generalization(clusters, p_per_cluster, sigma, lam, flag("check_assumptions", check_assumptions))
    if assumptions is not None:
        warn_outside(assumptions, "eq. (8) blocks from theory.predict.partition_weights(check_assumptions=False)")
    return W


def _measured(clusters, counts, sigma, lam, spectra, grams=None) -> Assumptions:
    """The assumptions at the block point, also when the decay condition fails (then not built).

    ``spectra``: the clusters' `theory.allocation.ClusterSpectrum` (for the decay slack);
    ``grams``: their ``theory.allocation._Gram`` when already computed (`_blocks`).
    """
    n = sum(X_k.shape[1] for X_k in clusters)
    slack = _spectral_slack(spectra, counts, n, lam)
    if slack > 0:
        return _generalization(clusters, counts, sigma, lam, False, grams)[1]
    X = np.concatenate(clusters, axis=1)
    labels = np.repeat(np.arange(len(clusters)), [X_k.shape[1] for X_k in clusters])
    return measure(np.zeros((X.shape[0], 0)), np.zeros(0, dtype=int), X, labels, slack)


def predicted_loss(X, labels, p_per_cluster, sigma: float, lam: float) -> float:
    """The block formula for L of eq. (6): (1/n) Σ_k [‖X_k‖² − Σ_{j≤p_k} (Λ_kj − nλ)²/(Λ_kj + n_kσ²)].

    Includes the decay λ(‖W1‖² + ‖W2‖²). It is the exact loss at the eq. (8) block point only up
    to the e^{−cγ²/σ²} switching terms of Theorem 3.1, and only while the assumptions hold
    (β < 0, stable masks, nλ below the kept eigenvalues; `Assumptions`): when one fails it
    warns (`AssumptionWarning`), since the exact loss at the blocks may then be far off.

    >>> X = np.array([[3.0, 3.1, -1.0], [0.2, -0.2, 0.0]])
    >>> round(predicted_loss(X, [0, 0, 1], [1, 1], sigma=0.1, lam=0.0), 6)
    0.036619
    """
    X, labels, ids, clusters = _split(X, labels)
    power_fits("X", X, 4, "the block loss (it squares the eigenvalues of X_kX_kᵀ)")
    p_per_cluster = _counts("p_per_cluster", p_per_cluster)
    if len(p_per_cluster) != len(ids):
        raise ValueError(f"p_per_cluster must have one entry per cluster ({len(ids)}); got {len(p_per_cluster)}")
    sigma, lam = nonnegative("sigma", sigma, symbol="σ"), nonnegative("lam", lam, symbol="λ")
    grams = [_allocation._gram(X_k) for X_k in clusters]
    spectra = _allocation._spectra(clusters, ids, grams, X.shape[1] * lam, [max(2, q) for q in p_per_cluster])
    loss = _allocation.predicted_block_loss(spectra, p_per_cluster, X.shape[1], sigma, lam)
    warn_outside(_measured(clusters, p_per_cluster, sigma, lam, spectra, grams),
                 "the block formula of theory.predict.predicted_loss")
    return loss


def expected_representation(W, Y, sigma: float) -> np.ndarray:
    """E_ε[W ᵀ(y + σε)]_+ for each column y of Y: shape (p, m); σ = 0 gives [WᵀY]_+.

    Entry (j, i) is the rectified mean m Φ(m/s) + s φ(m/s), m = w_jᵀy_i, s = σ‖w_j‖
    (``theory.rectified_gaussian``).

    >>> Y = np.array([[1.0], [-1.0]])                    # d = 2, m = 1; W = I (p = 2)
    >>> expected_representation(np.eye(2), Y, 0.0).ravel()            # σ = 0: [WᵀY]_+
    array([1., 0.])
    >>> expected_representation(np.eye(2), Y, 1.0).round(6).ravel()    # m = ±1, s = 1: ±Φ(±1) + φ(1)
    array([1.083315, 0.083315])
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


@dataclass(frozen=True)
class Prediction:
    """Everything predicted for (X, labels, p, σ, λ) at the block point, with tied weights W1 = W2 = W.

    * ``W`` (d, p): the eq. (8)/(9) blocks, cluster by cluster, then zero columns;
    * ``labels``, ``p_per_cluster``, ``regimes``: the allocation (``theory.allocation``);
    * ``loss``: **the block formula** (`predicted_loss`), ``(1/n) Σ_k [‖X_k‖² − Σ_j gain_kj]``:
      the loss of linear blocks, each acting only on its own cluster. It equals the exact
      eq. (6) at W, ``numerics.objective.expected_loss(W, W, X, σ, λ)``, up to the switching
      terms e^{−cγ²/σ²} — *only while* ``assumptions.hold``. Outside them (a column firing on
      another cluster, or on only part of its own) the ReLU network is not those linear blocks
      and the two numbers disagree, by little or by orders of magnitude;
    * ``linear_maps`` {label: (d, d)}: each block's ``W_kW_kᵀ`` (independent of O_k);
    * ``margin``: γ = `switching_margin` (unsigned: the distance of the nearest sample to a
      column's hyperplane, on either side);
    * ``beta``: the measured β between cluster means;
    * ``assumptions``: `Assumptions` — β, the signed stable-mask margin and the decay slack,
      with ``.hold`` and ``.failed``; ``sigma``, ``lam``: the noise level and decay used.

    Returned by `predict`.
    """

    W: np.ndarray
    labels: tuple[int, ...]
    p_per_cluster: tuple[int, ...]
    regimes: tuple[str, ...]
    loss: float
    linear_maps: dict
    margin: float
    beta: float
    assumptions: Assumptions
    sigma: float
    lam: float


def predict(X, labels, p, sigma: float, lam: float, *, check_assumptions: bool = True) -> Prediction:
    """Predict weights, loss, regimes and per-cluster maps (Theorem 3.1, Cor. 3.2–3.4) with the allocation rule.

    ``X`` (d, n), ``labels`` (n,) one cluster per label (one per sample for memorisation);
    ``p`` an int (allocated by water-filling, ``theory.allocation``) or one count per cluster;
    columns beyond the allocation are zero; ``W`` is meant as W1 = W2 = W (tied). ``lam`` is required, as in the constructors and
    ``train`` (module docstring). ``check_assumptions=True`` raises `AssumptionError` when an
    assumption fails; ``False`` predicts anyway and warns (`AssumptionWarning`), and the
    record's ``assumptions`` say which failed — ``loss`` is then only the block formula.

    >>> import numpy as np
    >>> X = np.array([[3.0, 3.1, -1.0], [0.2, -0.2, 0.0]])
    >>> pred = predict(X, [0, 0, 1], p=3, sigma=0.1, lam=0.0)
    >>> pred.W.shape, pred.p_per_cluster, pred.regimes, pred.assumptions.hold
    ((2, 3), (2, 1), ('generalised', 'memorised'), True)
    """
    X, labels, ids, clusters = _split(X, labels)        # X is checked here, once
    power_fits("X", X, 4, "the predicted loss and allocation (they square the eigenvalues of X_kX_kᵀ)")
    sigma, lam = nonnegative("sigma", sigma, symbol="σ"), nonnegative("lam", lam, symbol="λ")
    check_assumptions = flag("check_assumptions", check_assumptions)
    n = X.shape[1]
    if np.ndim(p) == 0:
        p_total = positive_int("p", p)
        counts, needed = None, None
    else:
        counts = tuple(_counts("p", p))
        if len(counts) != len(ids):
            raise ValueError(f"p must be an int or one count per cluster ({len(ids)}); got {len(counts)} counts")
        p_total = sum(counts)
        if p_total < 1:
            raise ValueError(f"p must give at least one neuron in all; got {counts}")
        needed = [max(2, q) for q in counts]
    # each cluster is decomposed once: its Gram matrix, reduced to tridiagonal form (large
    # clusters, theory.allocation._gram), gives the spectrum for the allocation, the regimes
    # and the loss, then the top p_k eigenpairs shared by the block, its decay slack and its map
    grams = [_allocation._gram(X_k) for X_k in clusters]
    spectra = _allocation._spectra(clusters, ids, grams, n * lam, needed)
    if counts is None:
        counts = _allocation._water_filling(spectra, n, p_total, sigma, lam).p_per_cluster
    means = np.stack([X_k.mean(axis=1) for X_k in clusters], axis=1)
    try:
        beta, beta_error = _beta_of_means(means), None
    except AssumptionError as error:            # a zero cluster mean: β undefined
        beta, beta_error = float("nan"), error
    if check_assumptions and len(clusters) > 1:
        if beta_error is not None:
            raise beta_error
        _require_negative_beta(beta)
    blocks, directions = _blocks(clusters, counts, n, sigma, lam, check_assumptions, grams)
    if check_assumptions:
        _check_other_clusters(blocks, clusters)
    W_blocks = np.concatenate(blocks, axis=1)
    owners = np.repeat(np.arange(len(ids)), counts)                # column j serves cluster owners[j]
    margin = _mask_margin(W_blocks, owners, X, np.searchsorted(ids, labels))
    assumptions = Assumptions(beta=float(beta), mask_margin=margin, decay_slack=float(_decay_slack(directions, n, lam)))
    if not check_assumptions:
        warn_outside(assumptions, "the block point and loss of theory.predict.predict(check_assumptions=False)")
    W = np.zeros((X.shape[0], p_total))
    W[:, :W_blocks.shape[1]] = W_blocks
    maps = {int(k): _linear_map(pair, X_k.shape[1], n, sigma, lam) if q else np.zeros((X.shape[0],) * 2)
            for k, X_k, q, pair in zip(ids, clusters, counts, directions)}
    if beta_error is not None:
        raise beta_error
    return Prediction(W, tuple(int(k) for k in ids), tuple(counts),
                      tuple(_allocation.regime(s, q) for s, q in zip(spectra, counts)),
                      _allocation.predicted_block_loss(spectra, counts, n, sigma, lam),
                      maps, _switching_margin(W, X), beta, assumptions, sigma, lam)
