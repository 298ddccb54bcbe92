"""The theory's denoisers at every noise level: eq. (9) (memorising) and eq. (8) blocks (generalising).

A diffusion sampler needs a denoiser at every σ of its grid. The theory gives one per σ: the
tied weights ``W(σ)`` of Cor. 3.2 (eq. (9)) or of Theorem 3.1 / Cor. 3.3 (eq. (8), one block
per cluster), used as the ReLU-DAE of eq. (5), ``f(Y, σ) = W(σ) [W(σ)ᵀ Y]_+``. Each
constructor returns a :class:`TheoryDenoiser`, a callable ``denoiser(Y, sigma) -> X̂₀`` that
caches its weights per σ.

Where the assumptions fail (stated here, measured by :meth:`TheoryDenoiser.flip_probability`):

* the decay conditions ``nλ < min_i ‖x_i‖²`` (eq. (9)) and ``nλ < λ_min(Λ_k^{(p_k)})`` (eq. (8))
  do **not** involve σ, so they hold at every σ or at none; they are checked once, at
  construction. Without the check (``check_assumptions=False``) a direction whose eigenvalue
  is ≤ nλ gets a zero column: Lemma D.1's optimal scale ``(Λ − nλ)/(Λ + n_kσ²)`` is ≤ 0 there,
  so the best linear block drops it (the same rule `theory.allocation` uses).
* what does degrade with σ is the stable-mask assumption behind both equations: the weights
  are the block point of Theorem 3.1, whose distance to a true local minimiser is bounded by
  ``C e^{−cγ²/σ²}``, γ the switching margin (`theory.predict.switching_margin`). A neuron flips
  on a training point with probability at most ``Φ(−γ/σ)``; at the sampler's large σ (σ_max = 2
  against data of norm ~1) this is O(1), so there the weights are eq. (8)/(9) evaluated
  verbatim, not a minimiser of the loss at that σ. Nothing is clipped or switched off.
* the margin checks of `theory.predict` (every block column on for its own cluster, off for the
  others) and β < 0 are made once at construction when ``check_assumptions=True``; real
  images (β > 0) need ``check_assumptions=False``.

A bias-free ReLU DAE is positively homogeneous, ``f(tY, σ) = t f(Y, σ)`` for t > 0 (derived
here): a memorising denoiser fixes the *direction* of a training sample, not its norm.

>>> import numpy as np
>>> X = np.array([[2.0, -1.0], [0.0, 1.5]])                 # two samples, β1 < 0
>>> f = memorizing_denoiser(X, p=2, lam=0.0)
>>> f(np.array([[2.0], [0.1]]), 0.1).round(3).ravel()         # near x_1: a multiple of x_1
array([1.995, 0.   ])
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np
from scipy.special import ndtr

from numerics.validation import as_matrix, labels_for, nonnegative, positive, positive_int
from theory.allocation import allocate, cluster_spectra
from theory.errors import AssumptionError, check_decay, check_negative_beta
from theory.linear_block import optimal_scale_np
from theory.predict import block_weights, memorization_weights, switching_margin, uniform_first_orthogonal

__all__ = ["TheoryDenoiser", "memorizing_denoiser", "generalizing_denoiser"]


class TheoryDenoiser:
    """``f(Y, σ) = W(σ) [W(σ)ᵀ Y]_+`` with closed-form tied weights ``W(σ)`` (d, p), cached per σ.

    ``weights_at(sigma)`` builds the weights; ``X`` (d, n) are the training samples they were
    built from (used by :meth:`flip_probability`); ``counts_at(sigma)``, if given, the neurons
    per cluster (:meth:`neurons_per_cluster`). At most ``cache_size`` noise levels are kept
    (least recently used dropped first).

    >>> f = TheoryDenoiser(np.eye(2), lambda sigma: np.eye(2) / (1 + sigma ** 2), "shrink")
    >>> f(np.array([[1.0], [-2.0]]), 1.0).ravel()          # W[WᵀY]_+ with W = I/2: [0.25, 0]
    array([0.25, 0.  ])
    >>> f.weights(1.0) is f.weights(1.0)                    # cached per σ
    True
    """

    def __init__(self, X: np.ndarray, weights_at, description: str, *, counts_at=None, cache_size: int = 512):
        self.X = X
        self.description = description
        self._weights_at = weights_at
        self._counts_at = counts_at
        self._cache: OrderedDict[float, np.ndarray] = OrderedDict()
        self._cache_size = positive_int("cache_size", cache_size)

    @property
    def d(self) -> int:
        return self.X.shape[0]

    def weights(self, sigma: float) -> np.ndarray:
        """The tied weights W(σ), shape (d, p) (a read-only cached array)."""
        sigma = positive("sigma", sigma)
        if sigma in self._cache:
            self._cache.move_to_end(sigma)
            return self._cache[sigma]
        W = np.asarray(self._weights_at(sigma), dtype=np.float64)
        W.setflags(write=False)
        self._cache[sigma] = W
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return W

    def representation(self, Y, sigma: float) -> np.ndarray:
        """``h = [W(σ)ᵀ Y]_+``, shape (p, m) (eq. (5))."""
        W = self.weights(sigma)
        Y = as_matrix("Y", Y, rows=self.d, rows_name=f"d = {self.d}", cols_name="m")
        return np.maximum(W.T @ Y, 0.0)

    def __call__(self, Y, sigma: float) -> np.ndarray:
        """The denoised columns ``W(σ)[W(σ)ᵀY]_+``, shape (d, m)."""
        H = self.representation(Y, sigma)
        return self.weights(sigma) @ H

    def neurons_per_cluster(self, sigma: float) -> tuple[int, ...]:
        """The live columns of each cluster's block at σ (clusters in label order)."""
        if self._counts_at is None:
            raise ValueError(f"{self.description}: no per-cluster allocation is recorded")
        return tuple(int(c) for c in self._counts_at(positive("sigma", sigma)))

    def flip_probability(self, sigma: float) -> float:
        """``Φ(−γ/σ)``: the bound on how often the most marginal neuron flips on a training point.

        γ = `theory.predict.switching_margin` of W(σ) on X. Theorem 3.1's residual
        ``e^{−cγ²/σ²}`` is small only while this is; near 1/2 the stable-mask picture is gone.
        """
        gamma = switching_margin(self.weights(sigma), self.X)
        return float(ndtr(-gamma / positive("sigma", sigma)))

    def __repr__(self) -> str:
        return f"TheoryDenoiser({self.description}, d = {self.d}, n = {self.X.shape[1]})"


def memorizing_denoiser(X, p: int, lam: float = 0.0, *, check_assumptions: bool = True) -> TheoryDenoiser:
    """Eq. (9) at every σ: ``W_mem(σ) = (r_1(σ)x_1 … r_n(σ)x_n 0 … 0)``, ``r_i² = (‖x_i‖² − nλ)/(‖x_i‖⁴ + σ²‖x_i‖²)``.

    ``X`` (d, n), ``p ≥ n`` columns (the p − n extra ones are zero and never fire). Checks at
    construction p ≥ n, nλ < min‖x_i‖² (both needed at all) and, with ``check_assumptions``,
    β1 < 0 (every pair of samples negatively correlated, Cor. 3.2). The column directions do
    not depend on σ; only their lengths r_i(σ)‖x_i‖ do, from ≈ 1 at small σ down to ≈ ‖x_i‖/σ.

    >>> import numpy as np
    >>> f = memorizing_denoiser(np.array([[1.0, -1.0], [0.0, 0.5]]), p=3)
    >>> f.weights(1.0).shape
    (2, 3)
    """
    X = as_matrix("X", X, cols_name="n")
    p, lam = positive_int("p", p), nonnegative("lam", lam, symbol="λ")
    memorization_weights(X, p, 1.0, lam, check_assumptions=check_assumptions)   # raises if invalid

    def weights_at(sigma):
        return memorization_weights(X, p, sigma, lam, check_assumptions=False)

    return TheoryDenoiser(X, weights_at, f"eq. (9), n = {X.shape[1]}, p = {p}, λ = {lam:g}",
                          counts_at=lambda sigma: [1] * X.shape[1])


def _usable_counts(spectra, counts, n: int, lam: float, check_assumptions: bool) -> list[int]:
    """Clip each p_k to the directions with Λ > nλ (eq. (8) is real only there); raise if checking."""
    usable = []
    for spectrum, p_k in zip(spectra, counts):
        positive_directions = int(np.sum(spectrum.eigenvalues > n * lam))
        if check_assumptions and p_k > 0:
            if p_k > spectrum.eigenvalues.size:
                raise AssumptionError("p_k <= rank(X_k) (eq. (8) keeps p_k eigen-directions)",
                                      f"p_k = {p_k} for cluster {spectrum.label}",
                                      f"<= {spectrum.eigenvalues.size}")
            check_decay(n * lam, float(spectrum.eigenvalues[p_k - 1]),
                        f"cluster {spectrum.label} with n_k = {spectrum.n_k}, p_k = {p_k}")
        usable.append(min(p_k, positive_directions))
    return usable


def generalizing_denoiser(X, labels, p_per_cluster, lam: float = 0.0, *, p: int | None = None,
                          check_assumptions: bool = True) -> TheoryDenoiser:
    """Eq. (8) blocks at every σ: one block ``W_{X_k}(σ)`` per cluster (Theorem 3.1, Cor. 3.3).

    ``labels`` (n,) give the clusters of ``X`` (d, n); blocks are ordered by label.
    ``p_per_cluster`` is one count per cluster, or ``"auto"`` with a total ``p``: then at each
    σ the allocation rule (`theory.allocation.allocate`, water-filling on the gains
    ``(Λ − nλ)²/(Λ + n_kσ²)``, derived here) chooses the counts, which may change with σ —
    the gains of small clusters fall faster with σ (their noise factor is n_kσ²). The weights
    always have ``p`` columns (Σ p_k for fixed counts); unallocated ones are zero.

    With ``check_assumptions`` the σ-free conditions are checked at construction: β < 0
    between cluster means and, for fixed counts, nλ < λ_min(Λ_k^{(p_k)}) and p_k ≤ rank(X_k)
    (without it those directions get zero columns; see the module notes). The stable-mask
    margins depend on σ and are not enforced (see :meth:`TheoryDenoiser.flip_probability`).

    >>> import numpy as np
    >>> X = np.array([[3.0, 3.1, 2.9, -3.0, -3.2], [0.3, -0.3, 0.0, 0.2, -0.2]])
    >>> f = generalizing_denoiser(X, [0, 0, 0, 1, 1], "auto", p=2)
    >>> f.weights(0.1).shape, f.neurons_per_cluster(0.1)
    ((2, 2), (1, 1))
    """
    X = as_matrix("X", X, cols_name="n")
    labels = labels_for("labels", labels, X.shape[1])
    lam = nonnegative("lam", lam, symbol="λ")
    n = X.shape[1]
    spectra = cluster_spectra(X, labels)
    if check_assumptions and len(spectra) > 1:
        check_negative_beta(X, labels)
    if isinstance(p_per_cluster, str):
        if p_per_cluster != "auto":
            raise ValueError(f"p_per_cluster must be one count per cluster or 'auto'; got {p_per_cluster!r}")
        if p is None:
            raise ValueError("p (the total number of neurons) is required with p_per_cluster='auto'")
        total = positive_int("p", p)

        def counts_at(sigma):
            return list(allocate(X, labels, total, sigma, lam).p_per_cluster)

        description = f"eq. (8) blocks, allocation rule with p = {total}"
    else:
        counts = [positive_int(f"p_per_cluster[{k}]", q, minimum=0) for k, q in enumerate(p_per_cluster)]
        if len(counts) != len(spectra):
            raise ValueError(f"p_per_cluster must have one entry per cluster ({len(spectra)}); got {len(counts)}")
        if p is not None and positive_int("p", p) != sum(counts):
            raise ValueError(f"p must equal sum(p_per_cluster) = {sum(counts)} when counts are given; got {p}")
        total = sum(counts)
        if total == 0:
            raise ValueError("p_per_cluster must give at least one neuron to some cluster")
        usable = _usable_counts(spectra, counts, n, lam, check_assumptions)

        def counts_at(sigma):
            return usable

        description = f"eq. (8) blocks, p_k = {tuple(counts)}"

    blocks = _BlockFamily(X, labels, spectra, lam)

    def weights_at(sigma):
        W = np.zeros((X.shape[0], total))
        start = 0
        for k, q in enumerate(counts_at(sigma)):
            W[:, start:start + q] = blocks.at(k, q, sigma)
            start += q
        return W

    return TheoryDenoiser(X, weights_at, description, counts_at=counts_at)


class _BlockFamily:
    """Eq. (8) blocks of every cluster at any σ from one `theory.predict.block_weights` call per (k, p_k).

    In eq. (8), ``W_k(σ) = U diag(√a(σ)) O_kᵀ`` with ``a_j(σ) = (Λ_j − nλ)/(Λ_j + n_kσ²)``
    (Lemma D.1) and σ-free U, O_k. Hence ``W_k(σ) = W_k(1) O_k diag(√(a(σ)/a(1))) O_kᵀ`` (O_k
    orthogonal): the eigen-decomposition of X_kX_kᵀ is done once, not at every sampler step.
    """

    def __init__(self, X, labels, spectra, lam):
        self._clusters = [X[:, labels == spectrum.label] for spectrum in spectra]
        self._spectra, self._n, self._lam = spectra, X.shape[1], lam
        self._reference = {}

    def at(self, k: int, q: int, sigma: float) -> np.ndarray:
        if q == 0:
            return np.zeros((self._clusters[k].shape[0], 0))
        if (k, q) not in self._reference:
            W_ref = block_weights(self._clusters[k], q, self._n, 1.0, self._lam, check_assumptions=False)
            self._reference[k, q] = (W_ref, uniform_first_orthogonal(q), self._scales(k, q, 1.0))
        W_ref, O, a_ref = self._reference[k, q]
        return W_ref @ ((O * np.sqrt(self._scales(k, q, sigma) / a_ref)) @ O.T)

    def _scales(self, k, q, sigma):
        spectrum = self._spectra[k]
        return optimal_scale_np(spectrum.eigenvalues[:q], spectrum.n_k, sigma, self._n * self._lam)
