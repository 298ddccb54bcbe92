"""Definition 3.1 ((α, β)-separability) and its two consequences used by Theorem 3.1.

Proof sketch checked here:

1. The measured (α, β) of ``numerics.data.separability`` are exactly Definition 3.1's
   ``max ‖x_kj − x̄_k‖/‖x̄_k‖`` and ``max_{k≠l} cos∠(x̄_k, x̄_l)`` (oracle: the generator's
   construction).
2. β < 0 allows at most d + 1 clusters: for M unit means with pairwise cosine β the Gram
   matrix ``(1 − β)I + β11ᵀ`` has eigenvalues ``1 − β`` (M − 1 times) and ``1 + (M − 1)β``; it
   is PSD iff ``β ≥ −1/(M − 1)`` and then has rank ≥ M − 1, so M − 1 ≤ d (symbolic), and the
   generator refuses M = d + 2 negatively correlated means (numeric).
3. Together they give a margin γ > 0: at the eq. (8) block point every neuron is on for its
   own cluster and off for the others, with distance γ = min |w_jᵀx_i|/‖w_j‖ to switching.
"""
from __future__ import annotations

import numpy as np
import sympy as sp

from numerics.data import equiangular_means, separability, separable_clusters
from proofs.record import claim
from theory.predict import predict


def gram_eigenvalues(M: int) -> dict:
    """Eigenvalues (with multiplicities) of the Gram matrix of M unit vectors with cosine β."""
    beta = sp.Symbol("beta", real=True)
    G = (1 - beta) * sp.eye(M) + beta * sp.ones(M, M)
    return {sp.factor(k): v for k, v in G.eigenvals().items()}


@claim("definition_3_1", title="Definition 3.1: (α, β)-separability, β < 0 ⇒ ≤ d + 1 clusters, margin γ > 0",
       statement="X is (α, β)-separable if ‖x_kj − x̄_k‖/‖x̄_k‖ ≤ α and cos∠(x̄_k, x̄_l) ≤ β (k ≠ l); "
                 "β < 0 permits at most d + 1 clusters and gives an inter-cluster margin γ > 0",
       equations="Def. 3.1", source="paper",
       quote="X is (α, β)-separable if ‖x_{k,j} − x̄_k‖/‖x̄_k‖ ≤ α for all k, j, and cos∠(x̄_k, x̄_l) ≤ β for all k ≠ l")
def check(record, mode):
    d, sizes, alpha, beta = (64, [40, 30, 30], 0.1, -0.4) if mode.full else (6, [5, 4, 3], 0.1, -0.4)
    data = separable_clusters(d, sizes, alpha=alpha, beta=beta, norm=2.0, seed=mode.seed)
    record.instance.update(generator="numerics.data.separable_clusters", d=d, sizes=sizes,
                           alpha=alpha, beta=beta, mean_norm=2.0)

    # 1. measured (α, β) against the construction
    measured = separability(data.X, data.labels)
    alpha_error, beta_error = abs(measured.alpha - alpha), abs(measured.beta - beta)
    record.measurement.update(measured_alpha=measured.alpha, measured_beta=measured.beta)
    record.assume("β < 0", measured.beta, "< 0", measured.beta < 0)

    # 2. the Gram-matrix argument, symbolically for M = 2 … 6, and the generator's refusal
    beta_symbol = sp.Symbol("beta", real=True)
    spectra_ok = True
    for M in range(2, 7):
        expected = {sp.factor(1 - beta_symbol): M - 1, sp.factor(1 + (M - 1) * beta_symbol): 1}
        spectra_ok &= gram_eigenvalues(M) == expected
    record.symbolic["Gram (1−β)I + β11ᵀ eigenvalues, M = 2…6"] = "1 − β (M − 1 times), 1 + (M − 1)β" \
        if spectra_ok else "MISMATCH"
    record.symbolic["PSD iff"] = "β ≥ −1/(M − 1); rank ≥ M − 1 ⇒ M ≤ d + 1"
    try:
        equiangular_means(d, d + 2, beta=-1.0 / (d + 1), seed=0)
        refused = False
    except ValueError:
        refused = True
    simplex = equiangular_means(d, d + 1, seed=0)
    cosines = simplex.T @ simplex / np.outer(*(2 * [np.linalg.norm(simplex, axis=0)]))
    record.measurement.update(simplex_of_d_plus_1_max_cosine=float(np.max(cosines - 2 * np.eye(d + 1))),
                              d_plus_2_negative_means_refused=refused)

    # 3. margin at the block point (eq. (8) with one neuron per cluster: the centroid columns)
    prediction = predict(data.X, data.labels, [1] * len(sizes), sigma=0.1, lam=0.0)
    record.measurement.update(margin_gamma=prediction.margin,
                              gamma_over_mean_norm=prediction.margin / 2.0)
    record.bound.update(alpha_error=alpha_error, beta_error=beta_error, tolerance="1e-12 (rounding)")
    record.headline = (f"α, β measured to {max(alpha_error, beta_error):.0e}; Gram spectrum "
                       f"{'ok' if spectra_ok else 'WRONG'}; γ = {prediction.margin:.3f} > 0")
    record.decide(confirmed=alpha_error < 1e-12 and beta_error < 1e-12 and spectra_ok and refused
                  and prediction.margin > 0)
