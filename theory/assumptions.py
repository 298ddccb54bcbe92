"""The assumptions under which the closed forms of `theory.predict` are minimisers, measured on a point.

Theorem 3.1 and Corollaries 3.2–3.4 build the block point from data that are separable with
β < 0, with stable ReLU masks and a small enough decay. At a predicted W (tied, W1 = W2 = W)
the three are measured as numbers (`Assumptions`):

* ``beta`` — the largest cosine between two cluster means (Definition 3.1; for memorisation
  every sample is its own cluster, so this is β1): required < 0;
* ``mask_margin`` — stable masks (`mask_margin`): every column on for all of its own cluster
  and off for every other sample, by a margin; required > 0 (its value is then the switching
  margin γ of Theorem 3.1's residual ``e^{−cγ²/σ²}``);
* ``decay_slack`` — ``min_k λ_min(Λ_k^{(p_k)}) − nλ`` over the clusters given neurons
  (``min_i ‖x_i‖² − nλ`` for memorisation): required > 0.

When they hold, the exact loss eq. (6) at W equals the block formula up to the switching
terms ``e^{−cγ²/σ²}``; when one fails, the block formula describes linear blocks that the ReLU
network does not realise, and the exact loss may be far off. `warn_outside` issues the
package's :class:`theory.errors.AssumptionWarning` naming what failed, with measured values.

>>> import numpy as np
>>> Assumptions(beta=-0.98, mask_margin=0.5, decay_slack=1.0).hold
True
>>> Assumptions(beta=0.93, mask_margin=-0.2, decay_slack=1.0).failed[0]
'β < 0 (largest cos∠ between cluster means): measured 0.93'
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from numerics.validation import as_matrix, data_matrix, labels_for
from theory.errors import AssumptionError, AssumptionWarning, measured_beta

__all__ = ["Assumptions", "mask_margin", "own_cluster_margin", "switching_margin", "measure", "warn_outside"]


@dataclass(frozen=True)
class Assumptions:
    """Measured assumptions at a predicted point (module docstring): each must be < 0, > 0, > 0.

    ``beta`` (β, ``-inf`` for one cluster, ``nan`` if a cluster mean is zero), ``mask_margin``
    (stable masks; ``inf`` without live columns), ``decay_slack`` (decay condition).
    ``hold`` is True when all three are met; ``failed`` lists the failed ones with values.
    Returned by `measure` (examples in the module docstring).
    """
    beta: float
    mask_margin: float
    decay_slack: float

    @property
    def failed(self) -> list[str]:
        """One line per failed assumption, naming it with its measured value."""
        out = []
        if not self.beta < 0:
            value = "a cluster mean is zero" if np.isnan(self.beta) else f"measured {self.beta:.4g}"
            out.append(f"β < 0 (largest cos∠ between cluster means): {value}")
        if not self.mask_margin > 0:
            out.append(f"stable masks (every column on for all of its cluster, off for all other samples): "
                       f"signed margin measured {self.mask_margin:.4g}, required > 0")
        if not self.decay_slack > 0:
            out.append(f"decay nλ below the smallest kept eigenvalue: slack measured {self.decay_slack:.4g}, "
                       f"required > 0")
        return out

    @property
    def hold(self) -> bool:
        """All three assumptions are met (the block formula is then the exact loss up to e^{−cγ²/σ²})."""
        return not self.failed


def mask_margin(W, owners, X, labels) -> float:
    """Stable masks as one number: min over live columns j and samples i of ``±w_jᵀx_i/‖w_j‖``.

    The sign is + when sample i is in column j's cluster (``owners[j] == labels[i]``) and −
    otherwise, so the margin is positive iff every live column is on for all of its cluster and
    off for all other samples; it is then the switching margin γ. Columns with owner −1 or
    zero norm are skipped (``inf`` when none is left). ``W`` (d, p), ``owners`` (p,), ``X``
    (d, n), ``labels`` (n,).

    >>> X = np.array([[2.0, -1.0], [0.0, 1.0]])
    >>> mask_margin(X, [0, 1], X, [0, 1]) > 0          # each sample its own column: stable
    True
    """
    W = as_matrix("W", W, cols_name="p")
    X = data_matrix("X", X, d=W.shape[0], d_source="W")
    labels = labels_for("labels", labels, X.shape[1], d=X.shape[0])
    owners = labels_for("owners", owners, W.shape[1])
    return _mask_margin(W, owners, X, labels)


def _mask_margin(W: np.ndarray, owners: np.ndarray, X: np.ndarray, labels: np.ndarray) -> float:
    """`mask_margin` for checked arrays (``owners`` and ``labels`` integer arrays)."""
    norms = np.linalg.norm(W, axis=0)
    live = (norms > 0) & (owners != -1)
    if not np.any(live):
        return np.inf
    signs = np.where(owners[live, None] == labels[None, :], 1.0, -1.0)
    return float(np.min(signs * (W[:, live].T @ X) / norms[live, None]))


def own_cluster_margin(W_k: np.ndarray, X_k: np.ndarray) -> float:
    """min over columns j and points x of the cluster of w_jᵀx/‖w_j‖ (> 0: the block acts linearly).

    ``W_k`` (d, p_k), ``X_k`` (d, n_k); ``inf`` when every column is zero.

    >>> W_k, X_k = np.array([[1.0], [0.0]]), np.array([[2.0, 3.0], [1.0, -1.0]])   # p_k = 1, n_k = 2
    >>> own_cluster_margin(W_k, X_k)                  # min(2, 3): on for the whole cluster
    2.0
    """
    W_k = as_matrix("W_k", W_k, cols_name="p_k")
    X_k = data_matrix("X_k", X_k, d=W_k.shape[0], d_source="W_k", cols_name="n_k")
    return _own_cluster_margin(W_k, X_k)


def _own_cluster_margin(W_k: np.ndarray, X_k: np.ndarray) -> float:
    """`own_cluster_margin` for checked arrays."""
    norms = np.linalg.norm(W_k, axis=0)
    keep = norms > 0
    if not np.any(keep):
        return np.inf
    return float(np.min((W_k[:, keep].T @ X_k) / norms[keep, None]))


def switching_margin(W, X) -> float:
    """γ: min over nonzero columns j and samples i of |w_jᵀx_i|/‖w_j‖.

    The distance from x_i to column j's hyperplane: neuron j flips on x_i + σε with
    probability Φ(−|w_jᵀx_i|/(σ‖w_j‖)) ≤ ½e^{−γ²/(2σ²)}, the source of Theorem 3.1's residual.

    >>> W, X = np.array([[1.0], [0.0]]), np.array([[2.0, -3.0], [1.0, 1.0]])       # p = 1, n = 2
    >>> switching_margin(W, X)                        # min(|2|, |−3|), either side counts
    2.0
    """
    W = as_matrix("W", W, cols_name="p")
    X = data_matrix("X", X, d=W.shape[0], d_source="W")
    return _switching_margin(W, X)


def _switching_margin(W: np.ndarray, X: np.ndarray) -> float:
    """`switching_margin` for checked arrays."""
    norms = np.linalg.norm(W, axis=0)
    keep = norms > 0
    if not np.any(keep):
        return np.inf
    return float(np.min(np.abs(W[:, keep].T @ X) / norms[keep, None]))


def measure(W, owners, X, labels, decay_slack: float) -> Assumptions:
    """The `Assumptions` of a predicted W (d, p) whose column j serves cluster ``owners[j]``.

    >>> X = np.array([[2.0, -1.0], [0.0, 1.0]])        # d = 2, n = 2, each sample its own cluster
    >>> found = measure(X, [0, 1], X, [0, 1], decay_slack=1.0)   # W = X: column j serves sample j
    >>> found.hold, round(found.beta, 6), found.mask_margin       # β = −2/(2√2); margin: x_2 vs w_1
    (True, -0.707107, 1.0)
    """
    try:
        beta = measured_beta(X, labels)
    except AssumptionError:             # a zero cluster mean: β undefined
        beta = float("nan")
    return Assumptions(beta=float(beta), mask_margin=mask_margin(W, owners, X, labels),
                       decay_slack=float(decay_slack))


def warn_outside(assumptions: Assumptions, what: str, *, stacklevel: int = 3) -> None:
    """Warn (`AssumptionWarning`) when ``assumptions`` fail, naming each with its measured value.

    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     warn_outside(Assumptions(beta=0.5, mask_margin=1.0, decay_slack=1.0), "W")
    >>> caught[0].category.__name__, str(caught[0].message).split(". ")[0]
    ('AssumptionWarning', 'W is outside its assumptions: β < 0 (largest cos∠ between cluster means): measured 0.5')
    """
    failed = assumptions.failed
    if failed:
        warnings.warn(f"{what} is outside its assumptions: {'; '.join(failed)}. "
                      "It is then in general not a critical point of eq. (6), and the exact loss at W "
                      "(numerics.objective.expected_loss) may differ from the block formula.",
                      AssumptionWarning, stacklevel=stacklevel)
