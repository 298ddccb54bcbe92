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
import scipy.linalg
import sympy as sp

from numerics.threads import single_thread
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


# `predict` and `allocate` decompose each cluster once, and from the smaller Gram matrix
# (X_kᵀX_k when n_k < d, else X_kX_kᵀ), reduced once to tridiagonal form: for d = 1024,
# n_k = 1000 the Gram and its reduction cost ~0.06 s, against ~0.2 s for the singular values
# and ~0.3 s with the vectors; all eigenvalues and any top eigenpairs then cost milliseconds.
# The price is accuracy for small eigenvalues: the SVD gives every Λ_j = σ_j² with an error
# of order ε·σ_1σ_j, the Gram only to ε·‖X_k‖_F² (`_resolution`), so a rank-deficient
# cluster's zero eigenvalues come out as ±1e-10·Λ_1 instead of ~1e-30·Λ_1. Every decision
# taken on an eigenvalue (Λ > nλ for a gain, Λ_{p_k} > nλ for eq. (8), Λ_2 ≤ 1e-12·Λ_1 for a
# rank-one cluster) is therefore taken from the Gram only when the eigenvalues involved are
# resolved (above `_resolution`) or, for the tail, clearly below nλ; otherwise that cluster
# falls back to the SVD, as it does if the tridiagonal eigensolver fails. Clusters with
# min(d, n_k) < _GRAM_MIN keep the SVD, which is cheap there: small clusters (the test
# suite's, the doctests') are decomposed exactly as before. The tridiagonal reduction and
# solves run on one BLAS thread (`numerics.threads.single_thread`): a threaded ``dsytrd``
# rounds differently, and the signs that MRRR gives the eigenvectors u_j, j ≥ 2, would then
# depend on the thread count (u_1 is oriented by `theory.predict`); one thread is also the
# fast choice on a shared 2-core machine, where a second thread waits for a busy core.
_GRAM_MIN = 64


@dataclass(frozen=True, eq=False)
class _Gram:
    """The smaller Gram matrix G of a large cluster, reduced once to tridiagonal form QᵀGQ = T.

    G is X_kᵀX_k (n_k, n_k) when n_k < d (``right``: its eigenvectors are the right singular
    vectors of X_k), else X_kX_kᵀ (d, d); its nonzero eigenvalues are those of X_kX_kᵀ. The
    reduction (LAPACK ``dsytrd``, lower: Q = H_1⋯H_{m−1} stored as ``reflectors``, ``tau``;
    T as ``diagonal``, ``off_diagonal``) is the O(m³) part of an eigensolver; `eigenvalues`
    and `top` solve T (MRRR, ``scipy.linalg.eigh_tridiagonal``) in O(m²) each. ``bound`` is
    `_resolution` of X_k. Made by `_gram`.
    """

    reflectors: np.ndarray
    tau: np.ndarray
    diagonal: np.ndarray
    off_diagonal: np.ndarray
    right: bool
    bound: float

    @property
    def size(self) -> int:
        """m, the order of G: min(d, n_k)."""
        return self.diagonal.size

    def eigenvalues(self) -> np.ndarray:
        """All m eigenvalues of G, descending."""
        with single_thread(numba=False, user_api="blas"):
            return scipy.linalg.eigvalsh_tridiagonal(self.diagonal, self.off_diagonal, lapack_driver="stemr",
                                                     check_finite=False)[::-1]

    def top(self, k: int):
        """The top k eigenpairs of G, descending: values (k,) and orthonormal eigenvectors (m, k)."""
        m = self.size
        with single_thread(numba=False, user_api="blas"):
            values, vectors = scipy.linalg.eigh_tridiagonal(self.diagonal, self.off_diagonal, select="i",
                                                            select_range=(m - k, m - 1), lapack_driver="stemr",
                                                            check_finite=False)
            vectors = np.asfortranarray(vectors[:, ::-1])
            # eigenvectors of G = Q · those of T; Q's reflectors act on rows 2..m (LAPACK dormtr, lower)
            reflectors = self.reflectors[1:, :m - 1]
            work = scipy.linalg.lapack.dormqr("L", "N", reflectors, self.tau, vectors[1:], -1)[1]
            rotated, _, info = scipy.linalg.lapack.dormqr("L", "N", reflectors, self.tau, vectors[1:],
                                                          max(int(work[0]), k))
        if info:
            raise np.linalg.LinAlgError(f"dormqr failed (info = {info})")
        vectors[1:] = rotated
        return values[::-1], vectors


def _gram(X_k: np.ndarray) -> _Gram | None:
    """The `_Gram` of X_k (d, n_k): its smaller Gram matrix, reduced to tridiagonal form.

    ``None`` when min(d, n_k) < `_GRAM_MIN` (the SVD is then used, see the comment above
    `_GRAM_MIN`).

    >>> _gram(np.ones((100, 70))).size, _gram(np.ones((70, 100))).size, _gram(np.ones((3, 2)))
    (70, 70, None)
    """
    d, n_k = X_k.shape
    if min(d, n_k) < _GRAM_MIN:
        return None
    right = n_k < d
    G = X_k.T @ X_k if right else X_k @ X_k.T         # BLAS syrk: the same bits on any thread count
    bound = _resolution(X_k, float(np.trace(G)))
    work, _ = scipy.linalg.lapack.dsytrd_lwork(G.shape[0], lower=1)
    with single_thread(numba=False, user_api="blas"):
        # G is symmetric: its transpose is the Fortran-ordered array LAPACK reduces in place
        reflectors, diagonal, off_diagonal, tau, info = scipy.linalg.lapack.dsytrd(G.T, lower=1, lwork=int(work),
                                                                                    overwrite_a=1)
    if info:
        raise np.linalg.LinAlgError(f"dsytrd failed (info = {info})")
    return _Gram(reflectors, tau, diagonal, off_diagonal, right, bound)


def _resolution(X_k: np.ndarray, energy: float) -> float:
    """10·(d + n_k)·ε·‖X_k‖_F²: a bound on the error of an eigenvalue of X_kX_kᵀ computed from `_gram`.

    Forming the Gram with inner dimension t costs at most γ_t·‖X_k‖_F² in the 2-norm (each
    entry within γ_t‖x_i‖‖x_j‖); a backward-stable symmetric eigensolver adds c·m·ε·‖G‖ for a
    Gram of size m, with t + m = d + n_k; Weyl's inequality carries both to every eigenvalue.
    The factor 10 covers the eigensolver's constant c. Eigenvalues above this are *resolved*.

    >>> bool(_resolution(np.ones((100, 70)), 7000.0) == 10 * 170 * np.finfo(float).eps * 7000.0)
    True
    """
    return 10.0 * sum(X_k.shape) * np.finfo(float).eps * energy


def _spectrum(X_k: np.ndarray, label: int, gram: _Gram | None, n_lambda: float,
              needed: int = 2) -> ClusterSpectrum:
    """The `ClusterSpectrum` of one cluster, from its `_Gram` ``gram`` where that is accurate.

    The Gram's eigenvalues are used when the top ``needed`` ones (2: the rank-one test; p_k
    when the caller asks for Λ_{p_k}) are resolved (`_resolution`) and every unresolved one
    lies below nλ = ``n_lambda`` with the error bound to spare, so that no gain, regime or
    decay check can differ from the SVD's; the unresolved ones are clipped at 0 (X_kX_kᵀ is
    positive semi-definite). Otherwise, and when ``gram`` is None, the squared singular
    values of X_k, as `cluster_spectra`.

    >>> rng = np.random.default_rng(0)
    >>> X_k = rng.normal(size=(100, 70))
    >>> fast = _spectrum(X_k, 0, _gram(X_k), n_lambda=0.0)
    >>> exact = cluster_spectra(X_k, np.zeros(70, dtype=int))[0]
    >>> bool(np.allclose(fast.eigenvalues, exact.eigenvalues, rtol=1e-12)), bool(np.isclose(fast.energy, exact.energy))
    (True, True)
    """
    energy = float(np.sum(X_k ** 2))
    if gram is not None:
        try:
            values = gram.eigenvalues()
        except np.linalg.LinAlgError:
            values = None
        if values is not None and np.all(values[:needed] > gram.bound) \
                and (values[-1] > gram.bound or n_lambda > 2 * gram.bound):
            return ClusterSpectrum(label, X_k.shape[1], np.maximum(values, 0.0), energy)
    singular = np.linalg.svd(X_k, compute_uv=False)
    return ClusterSpectrum(label, X_k.shape[1], singular ** 2, energy)


def _top_eigenpairs(X_k: np.ndarray, q: int, gram: _Gram | None = None):
    """The top q eigenpairs (U (d, q), Λ (q,), descending) of X_kX_kᵀ, unoriented; 1 ≤ q ≤ min(d, n_k).

    From ``gram`` (`_gram`, computed here when not given), whose top q + 1 eigenpairs are
    taken when Λ_q and the gap Λ_q − Λ_{q+1} are resolved (`_resolution`) and the pairs pass
    an a-posteriori check (residual within the bound, orthonormal): the eigenvectors of
    X_kX_kᵀ directly (n_k ≥ d), or U = X_kV normalised (V those of X_kᵀX_k, ‖X_kv_j‖ = √Λ_j).
    Otherwise, and for small clusters, the thin SVD of X_k. The signs of the columns are the
    eigensolver's (callers orient them).

    >>> rng = np.random.default_rng(1)
    >>> X_k = rng.normal(size=(100, 70)) + 3.0
    >>> U, values = _top_eigenpairs(X_k, 3)
    >>> U_svd, singular, _ = np.linalg.svd(X_k, full_matrices=False)
    >>> bool(np.allclose(values, singular[:3] ** 2, rtol=1e-12)), bool(np.allclose(U.T @ U, np.eye(3), atol=1e-12))
    (True, True)
    >>> bool(np.allclose(np.abs(np.sum(U * U_svd[:, :3], axis=0)), 1.0, atol=1e-10))   # same columns up to sign
    True
    """
    if gram is None:
        gram = _gram(X_k)
    if gram is not None:
        m = gram.size
        try:
            values, vectors = gram.top(min(q + 1, m))
        except np.linalg.LinAlgError:
            values = None
        if values is not None and values[q - 1] > gram.bound \
                and values[q - 1] - (values[q] if q < m else 0.0) > gram.bound:
            values, vectors = values[:q].copy(), vectors[:, :q]
            with single_thread(numba=False, user_api="blas"):
                # a posteriori: GV = VΛ to within the bound and VᵀV = I to rounding (MRRR has
                # rare failures of orthogonality); X_kV is U√Λ when G = X_kᵀX_k
                product = X_k @ vectors if gram.right else X_k.T @ vectors
                residual = (X_k.T if gram.right else X_k) @ product - vectors * values
                overlap = vectors.T @ vectors - np.eye(q)
            if np.max(np.linalg.norm(residual, axis=0)) <= 2 * gram.bound \
                    and np.max(np.abs(overlap)) <= 1e3 * m * np.finfo(float).eps:
                if gram.right:
                    vectors = product / np.linalg.norm(product, axis=0)
                return vectors, values
    U, singular, _ = np.linalg.svd(X_k, full_matrices=False)
    return U[:, :q], singular[:q] ** 2


def _spectra(clusters, ids, grams, n_lambda: float, needed=None) -> list[ClusterSpectrum]:
    """`_spectrum` of every cluster (``grams``: their `_gram`; ``needed``: one count per cluster, default 2 each)."""
    needed = [2] * len(clusters) if needed is None else needed
    return [_spectrum(X_k, int(k), G, n_lambda, q) for X_k, k, G, q in zip(clusters, ids, grams, needed)]


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
    labels = labels_for("labels", labels, X.shape[1])
    ids = np.unique(labels)
    clusters = [X[:, labels == k] for k in ids]
    n = X.shape[1]
    return _water_filling(_spectra(clusters, ids, [_gram(X_k) for X_k in clusters], n * lam), n, p, sigma, lam)


def _water_filling(spectra, n: int, p: int, sigma: float, lam: float) -> Allocation:
    """`allocate` from the clusters' spectra (checked arguments; ``n`` the total sample count)."""
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
