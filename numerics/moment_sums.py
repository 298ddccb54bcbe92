"""Sums over samples of the rectified-Gaussian moments that eq. (6) and its gradient need.

Per sample i the pre-activations ``a = W1ᵀ(x_i + σε)`` are Gaussian with means
``m_ij = w_jᵀx_i``, standard deviations ``s_j = σ‖w_j‖`` and covariance ``C = σ² W1ᵀW1``.
`numerics.objective` needs, summed over samples, ``E[h_j]``, ``E[h_j h_k]``,
``P(h_j > 0, h_k > 0)`` and the two derivative quantities of Stein's lemma and Price's
theorem (`numerics.gaussian`).

The computation is organised so that almost all of it is matrix products:

* Mehler's expansion ``E[f(a_j) g(a_k)] = Σ_n ρⁿ/n! E[f Heₙ] E[g Heₙ]`` (see
  `numerics.gaussian`) shows that orders 0 and 1 of every pair moment factor into
  single-neuron quantities: ``E[h_j h_k] = μ_j μ_k + C_jk Φ_j Φ_k + (orders ≥ 2)``,
  ``P(both on) = Φ_j Φ_k + (orders ≥ 1)``, ``E[1{a_j>0} h_k] = Φ_j μ_k + C_jk (φ_j/s_j) Φ_k
  + (orders ≥ 2)`` and ``E[δ(a_j) h_k] = (φ_j/s_j)(μ_k − C_jk z_j Φ_k / s_j) + (orders ≥ 2)``
  (``μ = E[h]``, ``Φ = P(h > 0)``, ``φ = φ(z)``, ``z = m/s``). Summed over samples these
  leading terms are products such as ``μᵀμ`` and ``μ G`` (`leading_sums`).
* A neuron whose ``|z|`` exceeds the threshold is on (``h = a``) or off for all noise to
  within ``Φ(−8.5) ≈ 1e-17``; for it the leading terms are exact (its Hermite coefficients
  of order ≥ 2 vanish), so only pairs of two *undecided* neurons need more.
* For those pairs the remainder (orders ≥ 2, the "bracket") is summed either by the rest of
  the Mehler series — a Gram matrix and a product per order over the undecided entries
  (`mehler_brackets`), for weakly correlated pairs — or as the exact closed form minus the
  leading terms, with Genz's Φ2 (`pair_brackets`), for the others.

The pieces are written by hand (numba and NumPy) because no library evaluates these
Gaussian moment sums; `numerics.objective` assembles them.
"""
from __future__ import annotations

import concurrent.futures
from dataclasses import dataclass

import numpy as np
from numba import njit, prange

from numerics.gaussian import TAIL_Z, norm_cdf, norm_pdf, pair_moments, rectified_moments
from numerics.threads import single_thread

# Series work (sample × neuron² summed over blocks) below this runs on one thread: two only
# pay once the blocks' products take milliseconds.
SPLIT_ABOVE = 400_000
N_PARTS = 2
N_CHUNKS = 16


@njit(cache=True, parallel=True)
def neuron_moments(means, scales, cov_diag, threshold, n_chunks):
    """Single-neuron quantities per (sample, neuron), and ``Σ_i E[h_ij²]`` per neuron.

    Returns ``mean_h`` (``μ = E[h]``), ``cdf`` (``Φ = P(h > 0)``), ``z`` and ``pdf``
    (``φ(z)``; both zero unless undecided), ``undecided`` (1 where ``|z| ≤ threshold``)
    and the (p,) sums of second moments. Decided-on entries have ``μ = m``, ``Φ = 1``;
    zero-scale neurons (``s_j = 0``) are decided by the sign of ``m``.

    >>> import numpy as np
    >>> means, scales = np.array([[0.0, 5.0], [-9.0, 0.1]]), np.array([1.0, 0.5])
    >>> mean_h, cdf, z, pdf, undecided, squares = neuron_moments(means, scales, scales**2, 8.5, 1)
    >>> undecided.tolist(), float(mean_h[0, 1])        # z = 10 > 8.5: on, E[h] = m
    ([[1, 0], [0, 1]], 5.0)
    """
    n, p = means.shape
    mean_h = np.zeros((n, p))
    cdf = np.zeros((n, p))
    z = np.zeros((n, p))
    pdf = np.zeros((n, p))
    undecided = np.zeros((n, p), dtype=np.uint8)
    squares = np.zeros((n_chunks, p))
    for chunk in prange(n_chunks):
        for i in range(chunk * n // n_chunks, (chunk + 1) * n // n_chunks):
            for j in range(p):
                m = means[i, j]
                s = scales[j]
                if s == 0.0:
                    on = m > 0.0
                    off = not on
                else:
                    zij = m / s
                    on = zij > threshold
                    off = zij < -threshold
                if off:
                    continue
                if on:
                    mean_h[i, j] = m
                    cdf[i, j] = 1.0
                    squares[chunk, j] += m * m + cov_diag[j]
                    continue
                undecided[i, j] = 1
                z[i, j] = zij
                c = norm_cdf(zij)
                d = norm_pdf(zij)
                cdf[i, j] = c
                pdf[i, j] = d
                if zij >= TAIL_Z:       # the closed forms of `rectified_moments`, reusing Φ, φ
                    mean_h[i, j] = m * c + s * d
                    squares[chunk, j] += (m * m + s * s) * c + m * s * d
                else:
                    mean_h[i, j], second = rectified_moments(m, s)
                    squares[chunk, j] += second
    return mean_h, cdf, z, pdf, undecided, squares.sum(axis=0)


@njit(cache=True, parallel=True)
def leading_gradient_terms(mean_h, cdf, pdf, z, targets, mean_gram, cdf_gram_cov, gram_diag, gram_cov_diag,
                           scales, n_chunks):
    """The gradient sums of Mehler orders 0 and 1, in one pass over the (sample, neuron) entries.

    With ``dens = φ(z)/s`` (``E[δ(a_j)]``, 0 when decided) and the sums over ``k ≠ j``
    ``M_ij = Σ_k G_jk μ_ik`` and ``P_ij = Σ_k G_jk C_jk Φ_ik`` (``mean_gram``, ``cdf_gram_cov``
    minus their k = j terms): returns ``Φ M + dens P + G_jj μ`` (n, p), the leading part of
    ``Σ_k G_jk E[1{a_j>0} h_k]``, and ``Σ_i dens (M − b) − dens z P / s`` (p,), the leading
    part of the ``E[δ(a_j)(…)]`` sum. Rows are summed in `N_CHUNKS`-style fixed chunks, so the
    result does not depend on the thread count.

    >>> import numpy as np
    >>> one = np.ones((1, 1))
    >>> g_acc, cov_diag = leading_gradient_terms(one, one, 0 * one, 0 * one, one, 2 * one, one,
    ...                                          np.ones(1), np.ones(1), np.ones(1), 1)
    >>> float(g_acc[0, 0]), float(cov_diag[0])      # Φ(2 − 1) + 0 + 1·1; no density, no δ term
    (2.0, 0.0)
    """
    n, p = mean_h.shape
    g_acc = np.empty((n, p))
    partial = np.zeros((n_chunks, p))
    for chunk in prange(n_chunks):
        for i in range(chunk * n // n_chunks, (chunk + 1) * n // n_chunks):
            for j in range(p):
                self_mean = mean_h[i, j] * gram_diag[j]
                others_mean = mean_gram[i, j] - self_mean
                others_cdf = cdf_gram_cov[i, j] - cdf[i, j] * gram_cov_diag[j]
                dens = pdf[i, j] / scales[j]
                g_acc[i, j] = cdf[i, j] * others_mean + dens * others_cdf + self_mean
                partial[chunk, j] += dens * (others_mean - targets[i, j]) - dens * z[i, j] / scales[j] * others_cdf
    return g_acc, partial.sum(axis=0)


@njit(cache=True, parallel=True)
def pair_brackets(means, scales, z, cdf, pdf, mean_h, undecided, pair_j, pair_k, rho, cov,
                  gram, n_chunks, need_grad):
    """Exact pair moments minus their leading terms, for the listed pairs, summed over samples.

    Only samples where both neurons of a pair are undecided contribute (elsewhere the
    leading terms are exact). Returns per pair the brackets of ``Σ_i E[h_j h_k]`` and of
    ``Σ_i P(both on)``, the (n, p) bracket of ``Σ_k G_jk E[1{a_j>0} h_k]`` and the (p,)
    bracket of ``Σ_i Σ_k G_jk E[δ(a_j) h_k]`` (the last two only when ``need_grad``).

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> W, X = rng.normal(size=(3, 2)), rng.normal(size=(3, 5))
    >>> m, s, cov = X.T @ W, 0.5 * np.linalg.norm(W, axis=0), 0.25 * W.T @ W
    >>> rho = cov / np.outer(s, s)
    >>> mean_h, cdf, z, pdf, undecided, _ = neuron_moments(m, s, np.diag(cov).copy(), 8.5, 1)
    >>> out = pair_brackets(m, s, z, cdf, pdf, mean_h, undecided, np.array([0]), np.array([1]),
    ...                     rho, cov, W.T @ W, 1, True)
    >>> [np.shape(part) for part in out]
    [(1,), (1,), (5, 2), (2,)]
    """
    n, p = means.shape
    n_pairs = pair_j.shape[0]
    second = np.zeros((n_chunks, n_pairs))
    both = np.zeros((n_chunks, n_pairs))
    grad = np.zeros((n, p))
    diag = np.zeros((n_chunks, p))
    for chunk in prange(n_chunks):
        for i in range(chunk * n // n_chunks, (chunk + 1) * n // n_chunks):
            for t in range(n_pairs):
                j = pair_j[t]
                k = pair_k[t]
                if undecided[i, j] == 0 or undecided[i, k] == 0:
                    continue
                s_j = scales[j]
                s_k = scales[k]
                cross, both_on, j_on_k, k_on_j, k_cond_j, j_cond_k = pair_moments(
                    means[i, j], s_j, z[i, j], cdf[i, j], pdf[i, j],
                    means[i, k], s_k, z[i, k], cdf[i, k], pdf[i, k], rho[j, k])
                c = cov[j, k]
                second[chunk, t] += cross - mean_h[i, j] * mean_h[i, k] - c * cdf[i, j] * cdf[i, k]
                both[chunk, t] += both_on - cdf[i, j] * cdf[i, k]
                if need_grad:
                    dens_j = pdf[i, j] / s_j
                    dens_k = pdf[i, k] / s_k
                    g = gram[j, k]
                    grad[i, j] += g * (j_on_k - cdf[i, j] * mean_h[i, k] - c * dens_j * cdf[i, k])
                    grad[i, k] += g * (k_on_j - cdf[i, k] * mean_h[i, j] - c * dens_k * cdf[i, j])
                    diag[chunk, j] += g * dens_j * (k_cond_j - mean_h[i, k] + c * z[i, j] * cdf[i, k] / s_j)
                    diag[chunk, k] += g * dens_k * (j_cond_k - mean_h[i, j] + c * z[i, k] * cdf[i, j] / s_k)
    return second.sum(axis=0), both.sum(axis=0), grad, diag.sum(axis=0)


@njit(cache=True, nogil=True)
def hermite_step(z, pdf, h_prev, h_cur, n, out):
    """Write ``Aₙ = cₙ(z)/√(n!) = (−1)ⁿ He_{n−2}(z) φ(z)/√(n!)`` (n ≥ 2) into ``out``.

    The Hermite polynomials are normalised, ``ĥ_m = He_m/√(m!)``, so that the recurrence
    ``ĥ_m = (z ĥ_{m−1} − √(m−1) ĥ_{m−2})/√m`` stays bounded. For m = n − 2 ≥ 1, ``h_prev,
    h_cur`` hold ``ĥ_{m−2}, ĥ_{m−1}`` on entry and are advanced in place to ``ĥ_{m−1}, ĥ_m``;
    so the calls must come in the order n = 2, 3, …, starting from ``h_prev = 0`` and
    ``h_cur = ĥ_0 = 1`` where ``pdf > 0`` (n = 2 advances nothing).
    Entries with ``pdf = 0`` (decided neurons) give zero. One fused pass: the recurrence and
    the coefficient would otherwise take several NumPy temporaries per order.

    >>> import numpy as np
    >>> z, pdf = np.zeros((1, 1)), np.full((1, 1), 1 / np.sqrt(2 * np.pi))
    >>> h_prev, h_cur, A2 = np.zeros((1, 1)), np.ones((1, 1)), np.empty((1, 1))
    >>> hermite_step(z, pdf, h_prev, h_cur, 2, A2)
    >>> round(float(A2[0, 0]), 4)                      # c₂(0)/√2! = φ(0)/√2
    0.2821
    """
    rows, q = z.shape
    m = n - 2
    sign = 1.0 if n % 2 == 0 else -1.0
    root = np.sqrt(n * (n - 1.0))
    previous_scale = np.sqrt(max(m - 1.0, 0.0))
    scale = np.sqrt(max(float(m), 1.0))
    for i in range(rows):
        for j in range(q):
            if m >= 1:
                h = (z[i, j] * h_cur[i, j] - previous_scale * h_prev[i, j]) / scale
                h_prev[i, j] = h_cur[i, j]
                h_cur[i, j] = h
            out[i, j] = sign * h_cur[i, j] * pdf[i, j] / root


@njit(cache=True, nogil=True)
def _mehler_block(z, pdf, rho, weight, n_max, need_grad):
    """The series brackets of one block of rows (see `mehler_brackets`), without the GIL.

    Per order m: the Gram matrix ``A_mᵀA_m`` and, for the gradient, ``A_m (weight ∘ ρᵐ)ᵀ``
    (BLAS through ``np.dot``), and fused elementwise updates. Running the whole block in
    compiled code lets the blocks of `mehler_brackets` run on threads without taking turns
    at the interpreter.
    """
    rows, q = z.shape
    second = np.zeros((q, q))
    both = np.zeros((q, q))
    grad = np.zeros((rows, q) if need_grad else (0, q))
    diag = np.zeros(q)
    if n_max < 2:
        return second, both, grad, diag
    h_prev = np.zeros((rows, q))
    h_cur = np.zeros((rows, q))
    for i in range(rows):
        for j in range(q):
            if pdf[i, j] > 0.0:
                h_cur[i, j] = 1.0
    a_m, a_next, a_after = np.empty((rows, q)), np.empty((rows, q)), np.empty((rows, q))
    hermite_step(z, pdf, h_prev, h_cur, 2, a_m)
    hermite_step(z, pdf, h_prev, h_cur, 3, a_next)
    power = rho.copy()                            # ρ^(m−1) on series pairs, 0 elsewhere
    column_sums = np.empty(q)
    for m in range(2, n_max + 1):
        if m < n_max:
            hermite_step(z, pdf, h_prev, h_cur, m + 2, a_after)
        gram_m = np.dot(a_m.T, a_m)
        both += (m * power) * gram_m              # order m − 1 of P(both on)
        power = power * rho                       # ρ^m
        if m < n_max:
            second += power * gram_m              # order m of E[h_j h_k]
            if need_grad:
                projected = np.dot(a_m, np.ascontiguousarray((weight * power).T))
                c_next, c_after = np.sqrt(m + 1.0), np.sqrt((m + 1.0) * (m + 2.0))
                column_sums[:] = 0.0
                for i in range(rows):
                    for j in range(q):
                        grad[i, j] += c_next * a_next[i, j] * projected[i, j]
                        column_sums[j] += a_after[i, j] * projected[i, j]
                diag += c_after * column_sums
        a_m, a_next, a_after = a_next, a_after, a_m
    return second, both, grad, diag


def _mehler_part(z, pdf, rho, weight, n_max, need_grad):
    """The series brackets of one block of rows (see `mehler_brackets`); ``grad`` None without ``need_grad``."""
    second, both, grad, diag = _mehler_block(np.ascontiguousarray(z), np.ascontiguousarray(pdf),
                                             np.ascontiguousarray(rho), np.ascontiguousarray(weight),
                                             int(n_max), bool(need_grad))
    return second, both, grad if need_grad else None, diag


def row_blocks(undecided, rows_per_block):
    """Blocks of samples with similar undecided sets, and each block's undecided neurons.

    Samples are ordered by their pattern of undecided neurons (identical patterns become
    neighbours) and cut into blocks of ``rows_per_block``; a block's series runs over the
    neurons undecided somewhere in it only (at the block solution of eq. (8) a sample's
    undecided neurons are mostly those of its own cluster). Samples with no undecided
    neuron are left out. Deterministic: the blocks depend on the pattern only.

    >>> import numpy as np
    >>> undecided = np.array([[1, 1, 0], [0, 0, 1], [1, 1, 0]], dtype=np.uint8)
    >>> [(rows.tolist(), columns.tolist()) for rows, columns in row_blocks(undecided, 2)]
    [([0, 1], [0, 1, 2]), ([2], [0, 1])]
    """
    active = np.flatnonzero(undecided.any(axis=1))
    if active.size == 0:
        return []
    packed = np.packbits(undecided[active].astype(bool), axis=1)
    order = active[np.lexsort(packed.T[::-1])]
    blocks = []
    for start in range(0, order.size, rows_per_block):
        rows = np.sort(order[start:start + rows_per_block])
        columns = np.flatnonzero(undecided[rows].any(axis=0))
        blocks.append((rows, columns))
    return blocks


ROWS_PER_BLOCK = 512


def mehler_brackets(z, pdf, undecided, rho, weight, n_max, need_grad):
    """Orders ≥ 2 of the pair moments by the Mehler series, summed over samples.

    ``z, pdf, undecided`` (n, q) for the q series columns (``pdf = 0`` where decided);
    ``rho`` (q, q) the correlations on series pairs and 0 elsewhere (diagonal included);
    ``weight = G ∘ 1sᵀ``; ``n_max`` the number of terms. Term m is the Gram matrix
    ``A_mᵀA_m`` (for ``E[h_j h_k]`` and ``P(both on)``) and one product ``A_m Kₘᵀ`` with
    ``Kₘ = weight ∘ ρᵐ`` (for the two gradient quantities), over the blocks of
    `row_blocks`. Returns the (q, q) brackets of ``Σ E[h_j h_k]/(s_j s_k)`` and
    ``Σ P(both on)``, the (n, q) bracket of ``Σ_k G_jk E[1{a_j>0} h_k]`` and the (q,)
    bracket of ``s_j Σ_i Σ_k G_jk E[δ(a_j) h_k]``. Large problems run the blocks on
    `N_PARTS` threads, each product with one BLAS thread (independent products, no
    synchronisation inside BLAS); blocks are added in a fixed order, so results do not
    depend on the thread count.

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> W, X = rng.normal(size=(3, 2)), rng.normal(size=(3, 5))
    >>> m, s, cov = X.T @ W, 0.5 * np.linalg.norm(W, axis=0), 0.25 * W.T @ W
    >>> rho = np.where(np.eye(2) > 0, 0.0, cov / np.outer(s, s))
    >>> _, _, z, pdf, undecided, _ = neuron_moments(m, s, np.diag(cov).copy(), 8.5, 1)
    >>> out = mehler_brackets(z, pdf, undecided, rho, (W.T @ W) * s[None, :], 6, True)
    >>> [np.shape(part) for part in out]
    [(2, 2), (2, 2), (5, 2), (2,)]
    """
    n, q = z.shape
    blocks = row_blocks(undecided, ROWS_PER_BLOCK)

    def one(block):
        rows, columns = block
        sub = np.ix_(columns, columns)
        return _mehler_part(z[np.ix_(rows, columns)], pdf[np.ix_(rows, columns)], rho[sub],
                            weight[sub], n_max, need_grad)

    work = sum(rows.size * columns.size**2 for rows, columns in blocks)
    with single_thread(numba=False, user_api="blas"):
        if work < SPLIT_ABOVE or len(blocks) < 2:
            results = [one(b) for b in blocks]
        else:
            with concurrent.futures.ThreadPoolExecutor(max_workers=N_PARTS) as pool:
                results = list(pool.map(one, blocks))
    second = np.zeros((q, q))
    both = np.zeros((q, q))
    grad = np.zeros((n, q)) if need_grad else None
    diag = np.zeros(q)
    for (rows, columns), (s_b, b_b, g_b, d_b) in zip(blocks, results):
        sub = np.ix_(columns, columns)
        second[sub] += s_b
        both[sub] += b_b
        diag[columns] += d_b
        if need_grad:
            grad[np.ix_(rows, columns)] = g_b
    return second, both, grad, diag


@dataclass
class MomentSums:
    """The sample sums `numerics.objective` assembles eq. (6) and its gradient from.

    ``mean_h`` (n, p) ``E[h]``; ``second`` (p, p) ``Σ_i E[h hᵀ]``; with the gradient also
    ``grad_m`` (n, p) ``∂F_i/∂m_ij``, ``both`` (p, p) ``Σ_i P(h_j > 0, h_k > 0)`` (diagonal
    ``Σ_i Φ_ij``) and ``cov_diag`` (p,) ``Σ_i E[δ(a_j)(Σ_{k≠j} G_jk h_k − b_j)]``.
    """
    mean_h: np.ndarray
    second: np.ndarray
    grad_m: np.ndarray | None = None
    both: np.ndarray | None = None
    cov_diag: np.ndarray | None = None


def moment_sums(means, targets, scales, cov, rho, gram, n_terms, threshold, need_grad):
    """All sample sums of eq. (6) (module docstring); ``n_terms`` (p, p) upper triangle:
    Mehler terms of each pair (0: closed form with Φ2).

    Tied weights W: the data term of eq. (6) is ``(Σ G∘S − 2 Σ b∘μ + ‖X‖²)/n``.

    >>> import numpy as np
    >>> from numerics.objective import expected_loss
    >>> rng = np.random.default_rng(0)
    >>> W, X, sigma = rng.normal(size=(3, 2)), rng.normal(size=(3, 5)), 0.5
    >>> m, norms = X.T @ W, np.linalg.norm(W, axis=0)
    >>> sums = moment_sums(m, m, sigma * norms, sigma**2 * W.T @ W, W.T @ W / np.outer(norms, norms),
    ...                    W.T @ W, np.zeros((2, 2), dtype=np.int64), 8.5, True)
    >>> loss = (np.sum(W.T @ W * sums.second) - 2 * np.sum(m * sums.mean_h) + np.sum(X * X)) / 5
    >>> bool(np.isclose(loss, expected_loss(W, W, X, sigma)))
    True
    """
    n, p = means.shape
    noisy = scales > 0.0
    safe_scales = np.where(noisy, scales, 1.0)
    mean_h, cdf, z, pdf, undecided, squares = neuron_moments(
        means, scales, np.ascontiguousarray(np.diag(cov)), threshold, min(n, N_CHUNKS))

    # Leading terms (Mehler orders 0 and 1): exact for every pair with a decided neuron.
    second = mean_h.T @ mean_h + cov * (cdf.T @ cdf)
    if need_grad:
        both = cdf.T @ cdf
        gram_cov = gram * cov
        mean_gram = mean_h @ gram                              # Σ_k G_jk μ_k
        cdf_gram_cov = cdf @ gram_cov                          # Σ_k G_jk C_jk Φ_k
        g_acc, cov_diag = leading_gradient_terms(mean_h, cdf, pdf, z, targets, mean_gram, cdf_gram_cov,
                                                 np.ascontiguousarray(np.diag(gram)),
                                                 np.ascontiguousarray(np.diag(gram_cov)), safe_scales,
                                                 min(n, N_CHUNKS))

    # Brackets (orders ≥ 2) of pairs of undecided neurons.
    pairs = np.triu(np.outer(noisy, noisy), 1)
    series = pairs & (n_terms > 0)
    closed = pairs & ~series
    if closed.any() and undecided.any():
        pair_j, pair_k = np.nonzero(closed)
        s_br, b_br, g_br, d_br = pair_brackets(means, scales, z, cdf, pdf, mean_h, undecided,
                                                pair_j, pair_k, rho, cov, gram, min(n, N_CHUNKS),
                                                need_grad)
        bracket = np.zeros((p, p))
        bracket[pair_j, pair_k] = s_br
        second += bracket + bracket.T
        if need_grad:
            bracket[pair_j, pair_k] = b_br
            both += bracket + bracket.T
            g_acc += g_br
            cov_diag += d_br
    columns = np.flatnonzero((series.any(axis=1) | series.any(axis=0)) & undecided.any(axis=0))
    block = np.ix_(columns, columns)
    mask = series[block] | series[block].T
    if mask.any():
        s = scales[columns]
        n_max = int(np.max(np.maximum(n_terms[block], n_terms[block].T)[mask]))
        s_br, b_br, g_br, d_br = mehler_brackets(z[:, columns], pdf[:, columns],
                                                 undecided[:, columns], np.where(mask, rho[block], 0.0),
                                                 gram[block] * s[None, :], n_max, need_grad)
        second[block] += s_br * np.outer(s, s)
        if need_grad:
            both[block] += b_br
            g_acc[:, columns] += g_br
            cov_diag[columns] += d_br / s

    second[np.diag_indices(p)] = squares
    if not need_grad:
        return MomentSums(mean_h=mean_h, second=second)
    both[np.diag_indices(p)] = cdf.sum(axis=0)
    return MomentSums(mean_h=mean_h, second=second, grad_m=2.0 * (g_acc - targets * cdf),
                      both=both, cov_diag=cov_diag)
