"""Neuron allocation (docs/theory.md §3, derived here): which directions of which clusters get neurons.

At stable masks n·L is a sum over clusters and eigen-directions (Lemma D.1): a direction of
cluster k with eigenvalue Λ of X_kX_kᵀ costs Λ without a neuron and Λ − gain with one, where
``gain = (Λ − nλ)²/(Λ + n_kσ²)`` (decay included; zero unless Λ > nλ). The gain increases with
Λ, so a cluster always fills its top directions first, and the best block solution for p
neurons keeps the p largest gains over all clusters (water-filling). The count p_k per cluster
predicts its regime: a rank-1 cluster (one sample, or copies of one) is *memorised* by a single
column; a cluster with p_k ≥ 2 *generalises* with a balanced block; p_k = 1 on a spread
cluster is a single *centroid* column; p_k = 0 leaves the cluster unrepresented (f = 0 on it).

>>> import numpy as np
>>> X = np.array([[3.0, 3.1, -1.0], [0.2, -0.2, 0.0]])      # d = 2: a pair and a single sample
>>> allocate(X, [0, 0, 1], p=2, sigma=0.1, lam=0.0).p_per_cluster
(1, 1)
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import sympy as sp

from numerics.validation import as_matrix, labels_for, nonnegative, positive_int
from theory import linear_block
from theory.symbols import Lam, lam_p, n_k, numeric_twin, sigma

__all__ = ["gain", "gain_derivative", "decay_correction", "gain_derivative_np", "decay_correction_np",
           "ClusterSpectrum", "cluster_spectra",
           "direction_gains", "Allocation", "allocate", "predicted_block_loss", "regime"]


def gain() -> sp.Expr:
    """Loss drop (in n·L) of giving one neuron to a direction: ``(Λ − λ')²/(Λ + n_kσ²)``, λ' = nλ.

    >>> gain()                                       # Lemma D.1, ``theory.linear_block.gain``
    (Lambda - lambda')**2/(Lambda + n_k*sigma**2)
    """
    return linear_block.gain()


@functools.cache
def gain_derivative() -> sp.Expr:
    """∂gain/∂Λ = (Λ − λ')(Λ + λ' + 2n_kσ²)/(Λ + n_kσ²)²: positive for Λ > λ' (top directions first).

    >>> gain_derivative().subs({Lam: 2, lam_p: 1, n_k: 1, sigma: 1})   # (1)(2 + 1 + 2)/3²
    5/9
    """
    return sp.factor(sp.diff(gain(), Lam))


@functools.cache
def decay_correction() -> sp.Expr:
    """gain(λ') − gain(0) = −λ'(2Λ − λ')/(Λ + n_kσ²): what weight decay takes from each gain.

    >>> decay_correction()
    -lambda'*(2*Lambda - lambda')/(Lambda + n_k*sigma**2)
    """
    return sp.factor(sp.simplify(gain() - gain().subs(lam_p, 0)))


gain_derivative_np = numeric_twin(gain_derivative, (Lam, n_k, sigma, lam_p))
decay_correction_np = numeric_twin(decay_correction, (Lam, n_k, sigma, lam_p))


@dataclass(frozen=True)
class ClusterSpectrum:
    """Label, size n_k, eigenvalues of X_kX_kᵀ (descending, length min(d, n_k)) and energy ‖X_k‖_F².

    Returned by `cluster_spectra`.
    """

    label: int
    n_k: int
    eigenvalues: np.ndarray
    energy: float

    @property
    def rank_one(self) -> bool:
        """True when the cluster is one sample or copies of one (rank 1 up to rounding)."""
        values = self.eigenvalues
        return values.size < 2 or values[1] <= 1e-12 * max(values[0], np.finfo(float).tiny)


def cluster_spectra(X, labels) -> list[ClusterSpectrum]:
    """The spectrum of every cluster of X (d, n), in increasing label order.

    >>> X = np.array([[3.0, 3.1, -1.0], [0.2, -0.2, 0.0]])      # d = 2, n = 3: a pair and a single
    >>> spectra = cluster_spectra(X, [0, 0, 1])
    >>> [s.n_k for s in spectra], [bool(s.rank_one) for s in spectra], spectra[1].eigenvalues
    ([2, 1], [False, True], array([1.]))
    """
    X = as_matrix("X", X, cols_name="n")
    labels = labels_for("labels", labels, X.shape[1])
    spectra = []
    for label in np.unique(labels):
        X_k = X[:, labels == label]
        singular = np.linalg.svd(X_k, compute_uv=False)
        spectra.append(ClusterSpectrum(int(label), X_k.shape[1], singular ** 2, float(np.sum(X_k ** 2))))
    return spectra


def direction_gains(spectrum: ClusterSpectrum, n: int, sigma: float, lam: float) -> np.ndarray:
    """Gains of the cluster's directions (descending); zero where Λ ≤ nλ (a* would be ≤ 0).

    >>> single = cluster_spectra(np.array([[-1.0], [0.0]]), [0])[0]     # Λ = 1, n_k = 1
    >>> direction_gains(single, n=3, sigma=0.1, lam=0.0).round(6)        # 1²/(1 + 0.01)
    array([0.990099])
    >>> direction_gains(single, n=3, sigma=0.1, lam=0.5)                 # nλ = 1.5 ≥ Λ
    array([0.])
    """
    values = spectrum.eigenvalues
    raw = linear_block.gain_np(values, spectrum.n_k, sigma, n * lam)
    return np.where(values > n * lam, raw, 0.0)


def regime(spectrum: ClusterSpectrum, p_k: int) -> str:
    """'memorised', 'generalised', 'centroid' or 'unused' for a cluster given p_k neurons.

    >>> pair, single = cluster_spectra(np.array([[3.0, 3.1, -1.0], [0.2, -0.2, 0.0]]), [0, 0, 1])
    >>> regime(pair, 2), regime(pair, 1), regime(single, 1), regime(single, 0)
    ('generalised', 'centroid', 'memorised', 'unused')
    """
    if p_k == 0:
        return "unused"
    if spectrum.rank_one:
        return "memorised"
    return "generalised" if p_k >= 2 else "centroid"


def predicted_block_loss(spectra, p_per_cluster, n: int, sigma: float, lam: float) -> float:
    """L of eq. (6) at the block point with stable masks: (1/n) Σ_k [‖X_k‖² − Σ_{j≤p_k} gain_kj].

    >>> X = np.array([[3.0, 3.1, -1.0], [0.2, -0.2, 0.0]])      # d = 2, n = 3
    >>> round(predicted_block_loss(cluster_spectra(X, [0, 0, 1]), [1, 1], 3, 0.1, 0.0), 6)
    0.036619
    """
    total = 0.0
    for spectrum, p_k in zip(spectra, p_per_cluster):
        total += spectrum.energy - float(np.sum(direction_gains(spectrum, n, sigma, lam)[:p_k]))
    return total / n


@dataclass(frozen=True)
class Allocation:
    """The water-filling allocation: p_k per cluster, the regimes and the predicted loss.

    Returned by `allocate`.
    """

    labels: tuple[int, ...]
    p_per_cluster: tuple[int, ...]
    regimes: tuple[str, ...]
    loss: float
    unused_neurons: int


def allocate(X, labels, p: int, sigma: float, lam: float = 0.0) -> Allocation:
    """Give p neurons to the directions with the largest gains (the best block solution).

    Ties are broken by cluster label, then by direction. Neurons left over once every gain
    is zero stay at zero (``unused_neurons``).

    >>> X = np.array([[3.0, 3.1, -1.0], [0.2, -0.2, 0.0]])      # d = 2: a pair (rank 2), a single
    >>> out = allocate(X, [0, 0, 1], p=4, sigma=0.1, lam=0.0)     # only 2 + 1 directions exist
    >>> out.p_per_cluster, out.regimes, out.unused_neurons
    ((2, 1), ('generalised', 'memorised'), 1)
    """
    X = as_matrix("X", X, cols_name="n")
    p = positive_int("p", p)
    sigma, lam = nonnegative("sigma", sigma), nonnegative("lam", lam)
    spectra = cluster_spectra(X, labels)
    n = X.shape[1]
    candidates = []
    for index, spectrum in enumerate(spectra):
        for j, value in enumerate(direction_gains(spectrum, n, sigma, lam)):
            if value > 0:
                candidates.append((-value, index, j))
    candidates.sort()
    counts = [0] * len(spectra)
    for _, index, _ in candidates[:p]:
        counts[index] += 1
    used = sum(counts)
    return Allocation(tuple(s.label for s in spectra), tuple(counts),
                      tuple(regime(s, c) for s, c in zip(spectra, counts)),
                      predicted_block_loss(spectra, counts, n, sigma, lam), p - used)
