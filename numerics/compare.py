"""Comparing a trained ReLU-DAE with the theory: representations, column structure, linear maps.

Trained and predicted weights are compared through objects that do not see the symmetries of
eq. (6) — column permutations, the orthogonal O_k inside a block, column splitting and (untied)
rescaling between W1 and W2 columns.

**Representations.** A representation is ``h = [W1ᵀy]_+`` (`numerics.model.representation`); a batch of them
is ``H`` of shape ``(p, m)``, one column per input. The statistics here are per column:

* :func:`representation_std` — the paper's spikiness metric, the population standard
  deviation of the p entries: ``Std(h)² = ‖h‖²/p − ‖h‖₁²/p²``;
* :func:`norm_ratio` — ``‖h‖₄/‖h‖₂``, scale free: 1 for a one-hot vector, ``q^(−1/4)``
  for q equal entries;
* :func:`participation_ratio` — ``‖h‖₂⁴/‖h‖₄⁴``, the effective number of active neurons:
  1 for a one-hot vector, q for q equal entries ("balanced" over a block of q neurons);
* :func:`top_share` — the share of ``‖h‖²`` in the largest entry: 1 one-hot, 1/q flat.

A zero column (no neuron active) has Std 0 and ratio, participation and share 0.

**Column structure** (`column_structure` → `ColumnStructure`): which neuron serves which
cluster, which samples are memorised (Cor. 3.2–3.4).

**Per-cluster linear maps** (`cluster_maps`): ``A_k = Σ_{j in block k} w2_j w1_jᵀ``, the
block's ``W2 W1ᵀ`` of eq. (8), invariant under permutations, O_k and splitting. Which
columns form block k is the ``rule``:

* ``"all-on"`` — the neurons on (``w1_jᵀx > 0``) for **every** point of cluster k: the
  block of Theorem 3.1, where the network acts on cluster k as the linear map A_k. Use it
  to compare with eq. (8)/(9) predictions (`map_residual`; the proof checks).
* ``"owner"`` — the live columns all of whose active samples lie in cluster k
  (`ColumnStructure.cluster_of_column`). A column on for only part of a cluster still
  counts for it; a column on for points of two clusters counts for neither. Use it to
  read the structure of arbitrary trained weights (which cluster each neuron went to).

At a block point with stable masks (every live neuron on for all of its cluster and off
for the others) the two rules give the same maps.

**Comparing trained weights with a prediction.** Eq. (8) fixes a block only up to its
orthogonal O_k, and eq. (6) cannot tell permuted columns apart, so ``‖W − W_pred‖`` says
nothing. Three invariant comparisons, from the most to the least forgiving:

* `cluster_maps` / `map_residual` — the per-cluster maps ``A_k``: blind to O_k, permutations,
  splitting a column, and rescaling between W1 and W2;
* `aligned_distance` / `align_prediction` — the columns themselves, after the best O_k per
  block (orthogonal Procrustes) and the matching permutation: they see splitting and the
  balance of the block, so they tell a balanced block from an unbalanced one with the same map;
* `compare_to_prediction` — both at once for a trained pair (W1, W2), relative to the
  prediction's size, with the neurons per cluster side by side.

>>> import numpy as np
>>> H = np.array([[2.0, 1.0], [0.0, 1.0]])      # a spike and a balanced pair
>>> representation_std(H).tolist(), participation_ratio(H).tolist()
([1.0, 0.0], [1.0, 2.0])
>>> top_share(H).tolist(), np.round(norm_ratio(H), 4).tolist()
([1.0, 0.5], [1.0, 0.8409])
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from numerics.geometry import ZERO_TOL, zero_columns
from numerics.validation import as_matrix, data_and_weights, data_matrix, labels_for, nonnegative, real_number

__all__ = ["representation_std", "norm_ratio", "participation_ratio", "top_share", "ColumnStructure",
           "column_structure", "all_on_mask", "cluster_maps", "map_residual", "aligned_distance",
           "align_prediction", "compare_to_prediction", "PredictionComparison", "CLUSTER_MAP_RULES", "ZERO",
           "IDLE", "MIXED"]


def _columns(H) -> np.ndarray:
    return as_matrix("H", H, rows_name="p", cols_name="m")


def _scaled_columns(H) -> np.ndarray:
    """H with each column divided by its largest |entry| where fourth powers would over- or underflow.

    The ratios below are scale free, so this changes nothing but the range: entries between
    1e-64 and 1e64 (where h⁴ fits comfortably in float64) are left exactly as they are.
    """
    H = _columns(H)
    top = np.max(np.abs(H), axis=0)
    extreme = (top > 0) & ((top > 1e64) | (top < 1e-64))
    if extreme.any():
        H = H.copy()
        H[:, extreme] /= top[extreme]
    return H


def _ratio(numerator, denominator) -> np.ndarray:
    return np.divide(numerator, denominator, out=np.zeros_like(denominator), where=denominator > 0)


def representation_std(H) -> np.ndarray:
    """Std(h) of every column h of H (p, m): population standard deviation of its p entries.

    >>> H = np.array([[2.0, 1.0], [0.0, 1.0]])        # (p, m) = (2, 2): a spike and a balanced pair
    >>> representation_std(H).tolist()
    [1.0, 0.0]
    """
    return np.std(_columns(H), axis=0)


def norm_ratio(H) -> np.ndarray:
    """``‖h‖₄/‖h‖₂`` of every column of H (p, m).

    >>> H = np.array([[1.0, 1.0], [0.0, 1.0], [0.0, 1.0], [0.0, 1.0]])   # (p, m) = (4, 2): one-hot, 4 equal
    >>> np.round(norm_ratio(H), 4).tolist()                             # 1 and 4^(−1/4)
    [1.0, 0.7071]
    """
    H = _scaled_columns(H)
    return _ratio(np.sum(H ** 4, axis=0) ** 0.25, np.sqrt(np.sum(H ** 2, axis=0)))


def participation_ratio(H) -> np.ndarray:
    """``‖h‖₂⁴/‖h‖₄⁴`` of every column of H (p, m): how many neurons share the energy.

    >>> H = np.array([[1.0, 1.0], [0.0, 1.0], [0.0, 1.0], [0.0, 1.0]])   # (p, m) = (4, 2): one-hot, 4 equal
    >>> participation_ratio(H).tolist()
    [1.0, 4.0]
    """
    H = _scaled_columns(H)
    return _ratio(np.sum(H ** 2, axis=0) ** 2, np.sum(H ** 4, axis=0))


def top_share(H) -> np.ndarray:
    """Share of ``‖h‖²`` in the largest entry of every column of H (p, m).

    >>> H = np.array([[1.0, 1.0], [0.0, 1.0], [0.0, 1.0], [0.0, 1.0]])   # (p, m) = (4, 2): one-hot, 4 equal
    >>> top_share(H).tolist()
    [1.0, 0.25]
    """
    H = _scaled_columns(H)
    return _ratio(np.max(H ** 2, axis=0), np.sum(H ** 2, axis=0))


# ----------------------------------------------------------------------------- column structure

ZERO, IDLE, MIXED = -1, -2, -3        # `ColumnStructure.cluster_of_column` codes


@dataclass(frozen=True, eq=False)
class ColumnStructure:
    """Which neuron serves which cluster, and which samples are memorised (`column_structure`).

    ``cluster_of_column`` (p,): the cluster label of each column, or `ZERO` (a zero column),
    `IDLE` (live but active on no sample), `MIXED` (active on samples of several clusters);
    ``neurons_per_cluster`` {label: count}; ``max_cosine`` (n,) the best ``cos∠(w1_j, x_i)``
    over live columns, ``owner`` (n,) the column attaining it, ``memorized`` (n,) whether
    it reaches the threshold; counts ``n_live``, ``n_zero``, ``n_idle``, ``n_mixed``,
    ``n_memorized`` and ``n_memorizing_columns`` (distinct owners of memorised samples).
    Returned by `column_structure`.
    """
    n_live: int
    n_zero: int
    n_idle: int
    n_mixed: int
    cluster_of_column: np.ndarray
    neurons_per_cluster: dict
    max_cosine: np.ndarray
    owner: np.ndarray
    memorized: np.ndarray
    n_memorized: int
    n_memorizing_columns: int

    @property
    def signature(self) -> tuple:
        """``(n_memorized, ((label, neurons), …), n_zero, n_mixed)``: equal for the same allocation."""
        return (self.n_memorized, tuple(sorted(self.neurons_per_cluster.items())), self.n_zero, self.n_mixed)


def column_structure(W1, W2, X, labels=None, *, cos_threshold=0.99, zero_tol=ZERO_TOL) -> ColumnStructure:
    """Which neuron serves which cluster, and which samples are memorised (Cor. 3.2–3.4).

    A live column j (not `numerics.geometry.zero_columns`) is *active* on sample i when
    ``w1_jᵀx_i > 0``. With ``labels`` (one per column of X), column j belongs to cluster k
    when all samples it is active on are in cluster k; `MIXED` when they span several
    clusters, `IDLE` when there are none. Without labels every sample is its own cluster.
    Sample i is *memorised* when some live column has ``cos∠(w1_j, x_i) >= cos_threshold``.

    >>> X = np.array([[2.0, -1.0], [0.0, 1.5]])
    >>> info = column_structure(X, X, X)                  # one column per sample
    >>> info.n_memorized, info.cluster_of_column.tolist()
    (2, [0, 1])
    """
    X, W1, W2 = data_and_weights(X, W1, W2)
    n = X.shape[1]
    labels = np.arange(n) if labels is None else labels_for("labels", labels, n, d=X.shape[0])
    cos_threshold = real_number("cos_threshold", cos_threshold)
    zero = zero_columns(W1, W2, nonnegative("zero_tol", zero_tol))
    active = (W1.T @ X) > 0.0
    cluster_of = np.full(W1.shape[1], ZERO, dtype=np.int64)
    for j in np.flatnonzero(~zero):
        owners = np.unique(labels[active[j]])
        cluster_of[j] = IDLE if owners.size == 0 else (owners[0] if owners.size == 1 else MIXED)
    norms1 = np.linalg.norm(W1, axis=0)
    norms_x = np.linalg.norm(X, axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        cosine = (W1.T @ X) / np.outer(norms1, norms_x)
    cosine = np.where(np.isfinite(cosine), cosine, -np.inf)
    cosine[zero] = -np.inf
    owner = np.argmax(cosine, axis=0)
    best = cosine[owner, np.arange(n)]
    memorized = best >= cos_threshold
    per_cluster = {int(k): int(np.sum(cluster_of == k)) for k in np.unique(labels)}
    return ColumnStructure(n_live=int(np.sum(~zero)), n_zero=int(np.sum(zero)),
                           n_idle=int(np.sum(cluster_of == IDLE)), n_mixed=int(np.sum(cluster_of == MIXED)),
                           cluster_of_column=cluster_of, neurons_per_cluster=per_cluster,
                           max_cosine=best, owner=owner, memorized=memorized,
                           n_memorized=int(memorized.sum()),
                           n_memorizing_columns=int(np.unique(owner[memorized]).size))


# ----------------------------------------------------------------------------- linear maps

CLUSTER_MAP_RULES = ("all-on", "owner")


def all_on_mask(W1, X_k) -> np.ndarray:
    """Boolean (p,) mask of the neurons on (``w1_jᵀx > 0``) for every point x of the cluster X_k (d, n_k).

    >>> all_on_mask(np.array([[1.0, -1.0], [0.0, 1.0]]), np.array([[1.0, 2.0], [0.5, 0.0]])).tolist()
    [True, False]
    """
    W1 = as_matrix("W1", W1, cols_name="p")
    X_k = as_matrix("X_k", X_k, rows=W1.shape[0], cols_name="n_k")
    return np.all(W1.T @ X_k > 0, axis=1)


def cluster_maps(W1, W2, X, labels, *, rule="all-on", zero_tol=ZERO_TOL) -> dict:
    """Per-cluster linear maps ``A_k = W2[:, J_k] W1[:, J_k]ᵀ`` (the block's W2W1ᵀ, eq. 8): {label: (d, d)}.

    ``rule`` picks the columns J_k of cluster k: ``"all-on"`` (on for every point of the
    cluster, Theorem 3.1's block) or ``"owner"`` (`column_structure`'s assignment; zero
    columns excluded by ``zero_tol``) — see the module docstring for which to use.

    >>> X = np.array([[2.0, -1.0], [0.0, 1.5]])
    >>> maps = cluster_maps(X, X, X, [0, 1])
    >>> sorted(maps), maps[0].tolist()
    ([0, 1], [[4.0, 0.0], [0.0, 0.0]])
    """
    X, W1, W2 = data_and_weights(X, W1, W2)
    labels = labels_for("labels", labels, X.shape[1], d=X.shape[0])
    if not isinstance(rule, str) or rule not in CLUSTER_MAP_RULES:
        raise ValueError(f"rule must be one of {CLUSTER_MAP_RULES}; got {rule!r}")
    if rule == "owner":
        owner = column_structure(W1, W2, X, labels, zero_tol=zero_tol).cluster_of_column
        columns = {int(k): owner == k for k in np.unique(labels)}
    else:
        columns = {int(k): all_on_mask(W1, X[:, labels == k]) for k in np.unique(labels)}
    return {k: W2[:, J] @ W1[:, J].T for k, J in columns.items()}


def map_residual(W1, W2, X, labels, predicted_maps, *, rule="all-on") -> float:
    """``Σ_k ‖A_k(W) − A_k^pred‖_F²``, the invariant form of ‖R‖_F² in Theorem 3.1 (`cluster_maps`).

    ``predicted_maps`` {label: (d, d)} must hold every label of ``labels``.

    >>> X = np.array([[2.0, -1.0], [0.0, 1.5]])
    >>> map_residual(X, X, X, [0, 1], cluster_maps(X, X, X, [0, 1]))
    0.0
    """
    maps = cluster_maps(W1, W2, X, labels, rule=rule)
    if not isinstance(predicted_maps, dict):
        raise TypeError(f"predicted_maps must be a dict {{label: (d, d) array}}; got {type(predicted_maps).__name__}")
    missing = sorted(set(maps) - set(predicted_maps))
    if missing:
        raise ValueError(f"predicted_maps has no map for the labels {missing}")
    d = np.shape(X)[0]
    predicted = {k: as_matrix(f"predicted_maps[{k}]", predicted_maps[k], rows=d, cols=d, cols_name="d")
                 for k in maps}
    return float(sum(np.sum((maps[k] - predicted[k]) ** 2) for k in maps))


def _aligned_blocks(W, W_pred, X, labels):
    """Per cluster: W's and W_pred's all-on columns (each column in its first cluster only) and the best O_k.

    Returns ``(blocks, used, used_pred)``; ``blocks`` holds ``(label, on, on_pred, R)`` with R the
    orthogonal (q, q) minimising ``‖W[:, on] − W_pred[:, on_pred] R‖_F``, or None when the sizes differ.
    """
    blocks, used, used_pred = [], np.zeros(W.shape[1], bool), np.zeros(W_pred.shape[1], bool)
    for k in np.unique(labels):
        X_k = X[:, labels == k]
        on = all_on_mask(W, X_k) & ~used
        on_pred = all_on_mask(W_pred, X_k) & ~used_pred
        used |= on
        used_pred |= on_pred
        A, B = W[:, on], W_pred[:, on_pred]
        R = None
        if A.shape[1] == B.shape[1]:
            U, _, Vt = np.linalg.svd(B.T @ A)           # orthogonal Procrustes
            R = U @ Vt
        blocks.append((int(k), on, on_pred, R))
    return blocks, used, used_pred


def _checked_pair(W, W_pred, X, labels):
    W = as_matrix("W", W, cols_name="p")
    W_pred = as_matrix("W_pred", W_pred, rows=W.shape[0], rows_name="d, the rows of W", cols_name="p")
    X = data_matrix("X", X, d=W.shape[0], d_source="W")
    return W, W_pred, X, labels_for("labels", labels, X.shape[1], d=X.shape[0])


def aligned_distance(W, W_pred, X, labels) -> float:
    """``‖W − W_pred O‖_F`` minimised over per-block orthogonal O_k and column permutations (tied weights).

    Why: eq. (8) gives each block ``W_{X_k}`` only up to an orthogonal ``O_k`` (any rotation
    of its p_k columns has the same map ``W_kW_kᵀ`` and loss), and the columns of a network
    can come in any order. So two weights that are the same solution differ entry by entry;
    this distance is zero for them. Blocks are the neurons on for every point of a cluster
    (`all_on_mask`; a neuron joins the first cluster it is on for); neurons in no block are
    compared with zero. For each block the best O_k is orthogonal Procrustes (SVD of
    ``W_predᵀ W``). Both weights need the same block sizes, else the distance is ``inf``
    (a block lost or split a column: compare `cluster_maps` then). For an untied pair compare
    W1 and W2 each (`compare_to_prediction`); `align_prediction` returns the rotated
    prediction itself, to draw beside W.

    >>> X = np.array([[2.0, -1.0], [0.0, 1.5]])
    >>> aligned_distance(X, X[:, ::-1], X, [0, 1])       # a column permutation: distance 0
    0.0
    """
    W, W_pred, X, labels = _checked_pair(W, W_pred, X, labels)
    blocks, used, used_pred = _aligned_blocks(W, W_pred, X, labels)
    total = 0.0
    for _, on, on_pred, R in blocks:
        if R is None:
            return float("inf")
        if R.size:
            total += float(np.sum((W[:, on] - W_pred[:, on_pred] @ R) ** 2))
    total += float(np.sum(W[:, ~used] ** 2) + np.sum(W_pred[:, ~used_pred] ** 2))
    return float(np.sqrt(total))


def align_prediction(W, W_pred, X, labels) -> np.ndarray:
    """The prediction rotated and permuted onto W: column j is the best match of W's column j (d, p).

    Block by block (as `aligned_distance`), the prediction's columns times the best O_k are
    placed where W's block columns are; W's columns in no block get zero. Draw it next to W
    (``figures.plot.show_columns(..., order=None)``) to see a trained block against eq. (8)'s
    up to the symmetries. A block whose sizes differ raises ``ValueError`` (compare maps).

    >>> X = np.array([[2.0, -1.0], [0.0, 1.5]])
    >>> align_prediction(X, X[:, ::-1], X, [0, 1]).tolist() == X.tolist()
    True
    """
    W, W_pred, X, labels = _checked_pair(W, W_pred, X, labels)
    blocks, _, _ = _aligned_blocks(W, W_pred, X, labels)
    aligned = np.zeros_like(W)
    for k, on, on_pred, R in blocks:
        if R is None:
            raise ValueError(f"cluster {k}: W has {int(on.sum())} neurons on for all of it and W_pred "
                             f"{int(on_pred.sum())}; no O_k aligns blocks of different sizes (compare cluster_maps)")
        if R.size:
            aligned[:, on] = W_pred[:, on_pred] @ R
    return aligned


@dataclass(frozen=True, eq=False)
class PredictionComparison:
    """Trained (W1, W2) against a predicted W, through invariant objects (`compare_to_prediction`).

    ``map_error``: ``√Σ_k ‖A_k − A_k^pred‖² / √Σ_k ‖A_k^pred‖²`` over clusters (`cluster_maps`,
    "all-on" rule; absolute where the prediction is zero); ``map_errors`` {label: the same per cluster}; ``neurons`` {label: (trained,
    predicted)} neurons on for every point of the cluster; ``same_blocks``: equal counts
    everywhere; ``aligned_W1``, ``aligned_W2``: `aligned_distance` of each factor over
    ``‖W_pred‖_F`` (``inf`` when the blocks differ); ``factor_gap``: ``‖W1 − W2‖/‖W1‖`` (0 for tied).
    Returned by `compare_to_prediction`.
    """
    map_error: float
    map_errors: dict
    neurons: dict
    same_blocks: bool
    aligned_W1: float
    aligned_W2: float
    factor_gap: float


def _frobenius(A) -> float:
    """``‖A‖_F`` without overflow in the squares: the entries are divided by the largest first."""
    top = float(np.max(np.abs(A))) if np.size(A) else 0.0
    return top * float(np.linalg.norm(A / top)) if top > 0 else 0.0


def compare_to_prediction(W1, W2, predicted, X, labels) -> PredictionComparison:
    """Compare trained weights with a prediction, up to the symmetries of eq. (6) (`PredictionComparison`).

    ``W1, W2`` (d, p) as trained (untied, or the same array twice); ``predicted`` a tied W
    (d, p') — e.g. ``theory.predict.predict(...).W`` — or a record with ``.W`` and
    ``.linear_maps`` {label: (d, d)} (a `theory.predict.Prediction`), whose maps are then the
    theory's eq. (8) maps rather than the all-on maps of its W. Relative numbers: 0 is the
    same solution, 1 is as far as the prediction is large.

    >>> X = np.array([[2.0, -1.0], [0.0, 1.5]])
    >>> c = compare_to_prediction(X, X, X[:, ::-1], X, [0, 1])
    >>> c.map_error, c.aligned_W1, c.same_blocks, c.neurons
    (0.0, 0.0, True, {0: (1, 1), 1: (1, 1)})
    """
    X, W1, W2 = data_and_weights(X, W1, W2)
    labels = labels_for("labels", labels, X.shape[1], d=X.shape[0])
    W_pred = as_matrix("predicted", getattr(predicted, "W", predicted), rows=X.shape[0],
                       rows_name="d, the rows of X", cols_name="p")
    maps = cluster_maps(W1, W2, X, labels)
    if getattr(predicted, "linear_maps", None) is not None:
        d = X.shape[0]
        predicted_maps = {int(k): as_matrix(f"predicted.linear_maps[{k}]", v, rows=d, cols=d, cols_name="d")
                          for k, v in predicted.linear_maps.items()}
        missing = sorted(set(maps) - set(predicted_maps))
        if missing:
            raise ValueError(f"predicted.linear_maps has no map for the labels {missing}")
    else:
        predicted_maps = cluster_maps(W_pred, W_pred, X, labels)
    errors = {k: _frobenius(maps[k] - predicted_maps[k]) for k in maps}
    sizes = {k: _frobenius(predicted_maps[k]) for k in maps}
    relative = {k: errors[k] / sizes[k] if sizes[k] > 0 else errors[k] for k in maps}
    total_error, total_size = _frobenius(np.array(list(errors.values()))), _frobenius(np.array(list(sizes.values())))
    neurons = {k: (int(all_on_mask(W1, X[:, labels == k]).sum()), int(all_on_mask(W_pred, X[:, labels == k]).sum()))
               for k in maps}
    scale = float(np.linalg.norm(W_pred)) or 1.0
    return PredictionComparison(
        map_error=total_error / total_size if total_size > 0 else total_error,
        map_errors=relative, neurons=neurons, same_blocks=all(a == b for a, b in neurons.values()),
        aligned_W1=aligned_distance(W1, W_pred, X, labels) / scale,
        aligned_W2=aligned_distance(W2, W_pred, X, labels) / scale,
        factor_gap=float(np.linalg.norm(W1 - W2) / (np.linalg.norm(W1) or 1.0)))
