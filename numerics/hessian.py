"""Exact Hessian-vector products of the loss eq. (6), from the moment formulas of its gradient.

The gradient of eq. (6) (`numerics.objective`) is assembled from per-sample Gaussian
moments of the pre-activations ``a = W1ᵀ(x_i + σε) ~ N(m_i, C)``, ``m_i = W1ᵀx_i``,
``C = σ² W1ᵀW1``:

``∂L/∂W1 = (X M' + 2σ² W1 K)/n + 2λW1``,  ``∂L/∂W2 = 2(W2 S − X μ)/n + 2λW2``,

with ``μ = E[h]``, ``S = Σ_i E[h hᵀ]``, ``M'_ij = ∂F_i/∂m_ij`` and ``K = ½ Σ_i E[∇²_a F_i]``
(``F_i`` the per-sample error). A Hessian-vector product is the directional derivative of
these along ``(V1, V2)``: the inputs move by ``ṁ = V1ᵀx``, ``Ċ = σ²(V1ᵀW1 + W1ᵀV1)``,
``Ġ = V2ᵀW2 + W2ᵀV2`` and ``ḃ = V2ᵀx``, and every moment ``E[f(a)]`` by Stein's lemma and
Price's theorem, ``d E[f] = Σ_j ṁ_j E[∂_j f] + ½ Σ_jk Ċ_jk E[∂_j ∂_k f]`` — forward-mode
differentiation of the moment formulas in closed form (derived here). The derivatives need
pair moments with up to two Dirac factors, ``E[δ_j 1_k]``, ``E[δ_j δ_k]``, ``E[δ'_j a_k+]``,
``E[δ''_j a_k+]`` … (`numerics.gaussian.delta_pair_moments`); decided neurons (on or off for
all noise, as in `numerics.objective`) make them linear algebra. No finite differences.

Where the Hessian does not exist the result is the derivative of the branch the gradient
uses: a zero column of W1 counts as an off neuron. At exactly parallel columns of W1 that
share undecided samples (``|ρ| = 1``) the moment formulas have a removable 0·∞ that this
closed form does not resolve; `HessianVectorProduct` raises `ParallelColumnsError` (a
``ValueError``) there.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> X = rng.normal(size=(4, 6)); W1, W2 = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
>>> V1, V2 = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
>>> H1, H2 = expected_hessian_vector_product(W1, W2, X, 0.5, 0.1, V1, V2)
>>> H1.shape, H2.shape
((4, 3), (4, 3))
"""
from __future__ import annotations


import numpy as np
from numba import njit, prange

from numerics.gaussian import DEGENERATE_Q, conditional_terms, dirac_pair_terms, mehler_terms, upper_bvn
from numerics.moment_sums import moment_sums, neuron_moments
from numerics.objective import DETERMINISTIC_Z, MEHLER_MIN_PAIR_SAMPLES
from numerics.validation import (MagnitudeError, as_matrix, flag, loss_magnitude, nonnegative, objective_arguments,
                                 tied_weights)

__all__ = ["HessianVectorProduct", "expected_hessian_vector_product", "ParallelColumnsError"]

N_CHUNKS = 16
# Memory allowed for the pair-moment table of `HessianVectorProduct` (15 float64 per pair of
# undecided neurons per sample); above it the moments are recomputed in every product.
PAIR_TABLE_BYTES = 4 * 2**30
_OFF, _ON, _UNDECIDED = 0, 1, 2


@njit(cache=True)
def _undecided_pair(m_j, m_k, s_j, s_k, z_j, z_k, pdf_j, pdf_k, e_j, e_k, both, rho):
    """The 15 pair moments of two undecided neurons, given ``both = Φ2`` (see `_pair_table`).

    The closed forms of `numerics.gaussian.pair_moments` and
    `numerics.gaussian.delta_pair_moments`, sharing ``A = (z_k − ρ z_j)/q``,
    ``B = (z_j − ρ z_k)/q`` and their Φ, φ, ψ (`numerics.gaussian.conditional_terms`).
    """
    terms = conditional_terms(z_j, z_k, rho)
    q, _, cdf_a, pdf_a, cdf_b, _, psi_a, psi_b = terms
    cross = ((m_j * m_k + rho * s_j * s_k) * both + m_j * s_k * pdf_k * cdf_b
             + m_k * s_j * pdf_j * cdf_a + s_j * s_k * pdf_j * q * pdf_a)
    r10 = m_k * both + s_k * (rho * pdf_j * cdf_a + pdf_k * cdf_b)
    r01 = m_j * both + s_j * (rho * pdf_k * cdf_b + pdf_j * cdf_a)
    dj, dk = e_j[0], e_k[0]
    r20 = dj * s_k * q * psi_a
    r02 = dk * s_j * q * psi_b
    r21, r12, r22, r30, r03, r31, r13, r40, r04 = dirac_pair_terms(s_j, z_j, dj, s_k, z_k, dk, terms)
    return (cross, r10, r01, both, r20, r02, r21, r12, r22, r30, r03, r31, r13, r40, r04)


@njit(cache=True)
def _pair_table(state_j, state_k, m_j, m_k, s_j, s_k, z_j, z_k, cdf_j, cdf_k, pdf_j, pdf_k,
                mu_j, mu_k, e_j, e_k, c, rho, both):
    """Pair moments ``R_ab = E[f⁽ᵃ⁾(a_j) f⁽ᵇ⁾(a_k)]`` (f⁽⁰⁾ = ReLU, f⁽¹⁾ = step, f⁽²⁾ = δ …).

    Returns ``(R00, R10, R01, R11, R20, R02, R21, R12, R22, R30, R03, R31, R13, R40, R04)``.
    ``e_j = (E δ_j, E δ'_j, E δ''_j, E δ‴_j)`` of an undecided neuron; ``both`` is Φ2 for two
    undecided neurons (`_undecided_pairs`). A decided-on neuron is linear (``h = a``, no
    Dirac terms): by Stein's lemma ``E[a_j g(a_k)] = m_j E[g] + C_jk E[g']``.
    """
    if state_j == _ON and state_k == _ON:
        return (m_j * m_k + c, m_k, m_j, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    if state_j == _ON:
        return (m_j * mu_k + c * cdf_k, mu_k, m_j * cdf_k + c * e_k[0], cdf_k,
                0.0, m_j * e_k[0] + c * e_k[1], 0.0, e_k[0], 0.0,
                0.0, m_j * e_k[1] + c * e_k[2], 0.0, e_k[1], 0.0, m_j * e_k[2] + c * e_k[3])
    if state_k == _ON:
        return (m_k * mu_j + c * cdf_j, m_k * cdf_j + c * e_j[0], mu_j, cdf_j,
                m_k * e_j[0] + c * e_j[1], 0.0, e_j[0], 0.0, 0.0,
                m_k * e_j[1] + c * e_j[2], 0.0, e_j[1], 0.0, m_k * e_j[2] + c * e_j[3], 0.0)
    return _undecided_pair(m_j, m_k, s_j, s_k, z_j, z_k, pdf_j, pdf_k, e_j, e_k, both, rho)


@njit(cache=True, parallel=True)
def _pair_offsets(state):
    """Where each sample's pairs of undecided neurons start in the flat arrays of `_undecided_pairs` (n + 1)."""
    n, p = state.shape
    counts = np.zeros(n + 1, dtype=np.int64)
    for i in prange(n):
        u = 0
        for j in range(p):
            if state[i, j] == _UNDECIDED:
                u += 1
        counts[i + 1] = u * (u - 1) // 2
    return np.cumsum(counts)


@njit(cache=True)
def _dirac_expectations(e, j, s, z, pdf):
    """``e[j] = (E δ_j, E δ'_j, E δ''_j, E δ‴_j)`` of an undecided neuron: pdf(z)/s times Hermite factors."""
    e[j, 0] = pdf / s
    e[j, 1] = -z * pdf / s**2
    e[j, 2] = (z * z - 1.0) * pdf / s**3
    e[j, 3] = -(z**3 - 3.0 * z) * pdf / s**4


@njit(cache=True, parallel=True)
def _undecided_pairs(means, scales, z, pdf, state, rho, offsets, with_moments, n_chunks):
    """Φ2 of every pair of undecided neurons of every sample, and with ``with_moments`` their
    15 pair moments (`_undecided_pair`) as well. Neither depends on the direction V.

    Sample i's pairs, in the order of the loops of `_directional_sums`, are entries
    ``offsets[i]:offsets[i + 1]`` (`_pair_offsets`) of the flat Φ2 values and rows of the
    moment table (no rows without ``with_moments``).
    """
    n, p = means.shape
    values = np.empty(offsets[n])
    table = np.empty((offsets[n] if with_moments else 0, 15))
    for chunk in prange(n_chunks):
        e = np.zeros((p, 4))
        for i in range(chunk * n // n_chunks, (chunk + 1) * n // n_chunks):
            if with_moments:
                for j in range(p):
                    if state[i, j] == _UNDECIDED:
                        _dirac_expectations(e, j, scales[j], z[i, j], pdf[i, j])
            t = offsets[i]
            for j in range(p):
                if state[i, j] != _UNDECIDED:
                    continue
                for k in range(j + 1, p):
                    if state[i, k] == _UNDECIDED:
                        values[t] = upper_bvn(-z[i, j], -z[i, k], rho[j, k])
                        if with_moments:
                            moments = _undecided_pair(means[i, j], means[i, k], scales[j], scales[k], z[i, j],
                                                      z[i, k], pdf[i, j], pdf[i, k], e[j], e[k], values[t],
                                                      rho[j, k])
                            for r in range(15):
                                table[t, r] = moments[r]
                        t += 1
    return values, table


@njit(cache=True, parallel=True)
def _directional_sums(means, targets, scales, z, cdf, pdf, mean_h, state, cov, rho, gram,
                      m_dot, b_dot, cov_dot, gram_dot, offsets, bivariate, pair_table, n_chunks):
    """Directional derivatives of ``M'`` (n, p), ``μ`` (n, p), ``S`` and ``K`` (p, p).

    ``pair_table`` holds the moments of the undecided pairs (`_undecided_pairs`), or has
    no rows, and then they are computed here from ``bivariate``.

    The per-sample formulas (``R_ab`` from `_pair_table`, ``Δ_j = Σ_{k≠j} G_jk R20 − b_j Eδ_j``):
    ``Ṁ'_j = 2(Σ_k Ġ_jk E[1_j h_k] − ḃ_j Φ_j) + 2ṁ_j(G_jj Φ_j + Δ_j) + 2Σ_{k≠j} G_jk R11 ṁ_k
    + Ċ_jj(G_jj Eδ_j + Δ'_j) + Σ_{k≠j} G_jk (2 Ċ_jk R21 + Ċ_kk R12)``,
    ``μ̇_j = Φ_j ṁ_j + ½ Eδ_j Ċ_jj``,
    ``Ṡ_jk = R10 ṁ_j + R01 ṁ_k + ½(Ċ_jj R20 + Ċ_kk R02) + Ċ_jk R11``,
    ``K̇_jk = Ġ_jk R11 + G_jk(ṁ_j R21 + ṁ_k R12 + ½(Ċ_jj R31 + Ċ_kk R13) + Ċ_jk R22)`` and
    ``K̇_jj = Ġ_jj Φ_j + G_jj Φ̇_j + Δ̇_j`` (the derivative of ``Δ_j`` by the same rules).
    """
    n, p = means.shape
    tabled = pair_table.shape[0] > 0
    s_dot = np.zeros((n_chunks, p, p))
    k_dot = np.zeros((n_chunks, p, p))
    grad_dot = np.zeros((n, p))
    mean_dot = np.zeros((n, p))
    for chunk in prange(n_chunks):
        active = np.empty(p, dtype=np.int64)
        e = np.zeros((p, 4))
        for i in range(chunk * n // n_chunks, (chunk + 1) * n // n_chunks):
            n_active = 0
            for j in range(p):
                if state[i, j] == _OFF:
                    continue
                active[n_active] = j
                n_active += 1
                if state[i, j] == _UNDECIDED:
                    _dirac_expectations(e, j, scales[j], z[i, j], pdf[i, j])
                else:
                    e[j, :] = 0.0
                md, bd, cjj = m_dot[i, j], b_dot[i, j], cov_dot[j, j]
                phi, mu, b, g = cdf[i, j], mean_h[i, j], targets[i, j], gram[j, j]
                mean_dot[i, j] = phi * md + 0.5 * e[j, 0] * cjj
                s_dot[chunk, j, j] += 2.0 * mu * md + cjj * phi
                grad_dot[i, j] += (2.0 * gram_dot[j, j] * mu - 2.0 * bd * phi
                                   + 2.0 * md * (g * phi - b * e[j, 0]) + cjj * (g * e[j, 0] - b * e[j, 1]))
                k_dot[chunk, j, j] += (gram_dot[j, j] * phi + g * (e[j, 0] * md + 0.5 * e[j, 1] * cjj)
                                       - bd * e[j, 0] - b * (e[j, 1] * md + 0.5 * e[j, 2] * cjj))
            t = offsets[i]
            for a in range(n_active):
                j = active[a]
                for bb in range(a + 1, n_active):
                    k = active[bb]
                    if tabled and state[i, j] == _UNDECIDED and state[i, k] == _UNDECIDED:
                        row = pair_table[t]
                        t += 1
                        (r00, r10, r01, r11, r20, r02, r21, r12, r22, r30, r03, r31, r13, r40,
                         r04) = (row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7], row[8],
                                 row[9], row[10], row[11], row[12], row[13], row[14])
                    else:
                        both = 0.0
                        if state[i, j] == _UNDECIDED and state[i, k] == _UNDECIDED:
                            both = bivariate[t]
                            t += 1
                        (r00, r10, r01, r11, r20, r02, r21, r12, r22, r30, r03, r31, r13, r40,
                         r04) = _pair_table(state[i, j], state[i, k], means[i, j], means[i, k],
                                            scales[j], scales[k], z[i, j], z[i, k], cdf[i, j], cdf[i, k],
                                            pdf[i, j], pdf[i, k], mean_h[i, j], mean_h[i, k], e[j], e[k],
                                            cov[j, k], rho[j, k], both)
                    g, gd = gram[j, k], gram_dot[j, k]
                    md_j, md_k = m_dot[i, j], m_dot[i, k]
                    cjj, ckk, cjk = cov_dot[j, j], cov_dot[k, k], cov_dot[j, k]
                    grad_dot[i, j] += (2.0 * gd * r10 + 2.0 * g * r11 * md_k + 2.0 * md_j * g * r20
                                       + cjj * g * r30 + 2.0 * g * cjk * r21 + g * ckk * r12)
                    grad_dot[i, k] += (2.0 * gd * r01 + 2.0 * g * r11 * md_j + 2.0 * md_k * g * r02
                                       + ckk * g * r03 + 2.0 * g * cjk * r12 + g * cjj * r21)
                    s_dot[chunk, j, k] += (r10 * md_j + r01 * md_k + 0.5 * (cjj * r20 + ckk * r02)
                                           + cjk * r11)
                    k_dot[chunk, j, k] += gd * r11 + g * (md_j * r21 + md_k * r12
                                                          + 0.5 * (cjj * r31 + ckk * r13) + cjk * r22)
                    k_dot[chunk, j, j] += gd * r20 + g * (md_j * r30 + md_k * r21 + 0.5 * (cjj * r40 + ckk * r22)
                                                          + cjk * r31)
                    k_dot[chunk, k, k] += gd * r02 + g * (md_k * r03 + md_j * r12 + 0.5 * (ckk * r04 + cjj * r22)
                                                          + cjk * r13)
    return grad_dot, mean_dot, s_dot.sum(axis=0), k_dot.sum(axis=0)


class ParallelColumnsError(ValueError):
    """W1 has parallel columns that are both undecided on some sample: no closed-form product there."""


def _symmetrised(upper_and_diagonal):
    return upper_and_diagonal + np.triu(upper_and_diagonal, 1).T


class HessianVectorProduct:
    """``(V1, V2) ↦ ∇²L(W1, W2)·(V1, V2)`` for eq. (6) at a fixed point (module docstring).

    The point's moments are computed once (one exact gradient evaluation); each product
    then costs four products with X and one pass over the (sample, neuron-pair) moments.
    The moments of pairs of undecided neurons are tabled once as well (15 float64 per pair
    and sample) while the table fits in ``pair_table_bytes`` (default `PAIR_TABLE_BYTES`,
    4 GiB; 0 turns it off): a product then reads them instead of recomputing Φ, φ and the
    Dirac terms — same numbers, several times faster when many neurons are undecided.
    ``tied=True`` gives the Hessian of ``W ↦ L(W, W)``: call with one (d, p) direction.

    >>> import numpy as np
    >>> rng = np.random.default_rng(1)
    >>> X, W = rng.normal(size=(3, 5)), rng.normal(size=(3, 2))
    >>> hvp = HessianVectorProduct(W, W, X, 0.3, 0.01, tied=True)
    >>> hvp(np.ones((3, 2))).shape
    (3, 2)
    """

    def __init__(self, W1, W2, X, sigma, lam=0.0, *, tied=False, pair_table_bytes=PAIR_TABLE_BYTES):
        X, W1, W2, self.sigma, self.lam = objective_arguments(X, W1, W2, sigma, lam)
        self.X, self.W1, self.W2 = X, W1, W2
        self.tied = tied_weights(W1, W2, flag("tied", tied))
        pair_table_bytes = nonnegative("pair_table_bytes", pair_table_bytes)
        n, p = X.shape[1], W1.shape[1]
        norms = np.linalg.norm(W1, axis=0)
        self.scales = self.sigma * norms
        inner = W1.T @ W1
        self.cov = self.sigma**2 * inner
        with np.errstate(divide="ignore", invalid="ignore"):
            rho = inner / np.outer(norms, norms)
        self.rho = np.clip(np.nan_to_num(rho), -1.0, 1.0)
        self.gram = W2.T @ W2
        self.means = np.ascontiguousarray(X.T @ W1)
        self.targets = np.ascontiguousarray(X.T @ W2)
        self.mean_h, self.cdf, self.z, self.pdf, undecided, _ = neuron_moments(
            self.means, self.scales, np.ascontiguousarray(np.diag(self.cov)), DETERMINISTIC_Z,
            min(n, N_CHUNKS))
        self.state = np.where(undecided == 1, _UNDECIDED, np.where(self.cdf > 0.0, _ON, _OFF)).astype(np.int8)
        self._check_parallel_columns(undecided)
        n_terms = np.zeros((p, p), dtype=np.int64)
        if n * p * (p - 1) // 2 >= MEHLER_MIN_PAIR_SAMPLES:
            noisy = self.scales > 0.0
            n_terms[np.ix_(noisy, noisy)] = mehler_terms(np.abs(self.rho[np.ix_(noisy, noisy)]))
            n_terms = np.triu(n_terms, 1)
        sums = moment_sums(self.means, self.targets, self.scales, self.cov, self.rho, self.gram,
                           n_terms, DETERMINISTIC_Z, True)
        # Φ2 of the undecided pairs, and their other pair moments, are the costly part of a
        # product and do not depend on the direction: computed once here (8 bytes per pair
        # and sample, and 120 more for the moments while they fit in pair_table_bytes).
        self._offsets = _pair_offsets(self.state)
        with_moments = 15 * 8 * int(self._offsets[-1]) <= pair_table_bytes
        self._bivariate, self._pair_table = _undecided_pairs(self.means, self.scales, self.z, self.pdf, self.state,
                                                             self.rho, self._offsets, with_moments, min(n, N_CHUNKS))
        self.second = sums.second
        self.cov_grad = self.gram * sums.both + np.diag(sums.cov_diag)
        self.n_products = 0

    def _check_parallel_columns(self, undecided):
        noisy = self.scales > 0.0
        q = np.sqrt(np.clip((1.0 - self.rho) * (1.0 + self.rho), 0.0, None))
        close = np.triu((q < DEGENERATE_Q) & np.outer(noisy, noisy), 1)
        if close.any():
            shared = (undecided.T.astype(np.int64) @ undecided.astype(np.int64)) > 0
            bad = np.argwhere(close & shared)
            if bad.size:
                j, k = bad[0]
                raise ParallelColumnsError(f"W1 has parallel columns {j} and {k} (|cos| = 1) that are both "
                                 "undecided on some sample: the exact Hessian-vector product is "
                                 "not available there")

    def _check_direction_size(self, V1, V2):
        """``H V`` is a second derivative of eq. (6) along V: bounded like the loss at weights of
        norm ``‖W‖ + ‖V‖`` (`numerics.validation.loss_magnitude`, three decades of headroom)."""
        try:
            loss_magnitude(self.X, np.hstack([self.W1, V1]), np.hstack([self.W2, V2]), self.sigma, self.lam)
        except MagnitudeError as error:
            names = "V1" if self.tied else "V1 and V2"
            raise ValueError(f"{names} too large for a Hessian-vector product at these weights (it would "
                             f"overflow float64); rescale {names}") from error

    def __call__(self, V1, V2=None):
        """``(H1, H2)``: the products w.r.t. W1 and W2 (tied: one (d, p) array, ``H1 + H2``)."""
        d, p = self.W1.shape
        V1 = as_matrix("V1", V1, rows=d, cols=p, cols_name="p")
        if self.tied:
            if V2 is not None:
                raise ValueError("tied=True takes one direction V (d, p); got V2")
            V2 = V1
        else:
            V2 = as_matrix("V2", V2, rows=d, cols=p, cols_name="p")
        self._check_direction_size(V1, V2)
        X, W1, W2, sigma, lam = self.X, self.W1, self.W2, self.sigma, self.lam
        n = X.shape[1]
        m_dot = np.ascontiguousarray(X.T @ V1)
        b_dot = np.ascontiguousarray(X.T @ V2)
        mixed = V1.T @ W1
        cov_dot = sigma**2 * (mixed + mixed.T)
        mixed = V2.T @ W2
        gram_dot = mixed + mixed.T
        grad_dot, mean_dot, s_dot, k_dot = _directional_sums(
            self.means, self.targets, self.scales, self.z, self.cdf, self.pdf, self.mean_h,
            self.state, self.cov, self.rho, self.gram, m_dot, b_dot, cov_dot, gram_dot,
            self._offsets, self._bivariate, self._pair_table, min(n, N_CHUNKS))
        s_dot, k_dot = _symmetrised(s_dot), _symmetrised(k_dot)
        back = X @ np.hstack([grad_dot, mean_dot])
        H1 = (back[:, :p] + 2.0 * sigma**2 * (V1 @ self.cov_grad + W1 @ k_dot)) / n + 2.0 * lam * V1
        H2 = 2.0 * (V2 @ self.second + W2 @ s_dot - back[:, p:]) / n + 2.0 * lam * V2
        self.n_products += 1
        return H1 + H2 if self.tied else (H1, H2)


def expected_hessian_vector_product(W1, W2, X, sigma, lam, V1, V2):
    """Exact ``∇²L·(V1, V2)`` of eq. (6) at ``(W1, W2)`` (d, p), as the pair ``(H1, H2)``.

    For tied weights the Hessian of ``W ↦ L(W, W)`` along V is ``H1 + H2`` with
    ``W1 = W2 = W`` and ``V1 = V2 = V``. Several products at one point: `HessianVectorProduct`.

    >>> import numpy as np
    >>> X = np.array([[2.0, -1.0, 0.3], [0.0, 1.7, -0.4]]); W = np.array([[1.0, -0.5], [0.1, 0.8]])
    >>> H1, H2 = expected_hessian_vector_product(W, W, X, 0.2, 0.01, np.ones((2, 2)), np.zeros((2, 2)))
    >>> H1.shape, H2.shape
    ((2, 2), (2, 2))
    """
    return HessianVectorProduct(W1, W2, X, sigma, lam)(V1, V2)
