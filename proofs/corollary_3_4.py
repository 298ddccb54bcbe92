"""Corollary 3.4 (hybrid, duplicated data): duplicates are memorised, the rest generalise.

There is a local minimiser ``W2* = W1* = (r_1x_1 … r_mx_m W_{X_{m+1}} … W_{X_K})`` with, for a
sample copied n_l times, ``r_l² = (n_l‖x_l‖² − nλ)/(n_l‖x_l‖⁴ + n_lσ²‖x_l‖²)`` (derived here).

Proof sketch checked here:

1. (assumptions) β < 0 over all clusters (modes and duplicates), n_l‖x_l‖² > nλ, stable masks.
2. (symbolic) a cluster of n_l copies has one eigenvalue n_l‖x‖² with n_k = n_l: eq. (8) with
   p_l = 1 gives the r_l² above (`theory.hybrid`); the water-filling allocation
   (`theory.allocation`) calls the duplicates "memorised" and the modes "generalised".
3. (numeric, loss (6) as printed) minimise the exact loss over untied W1, W2 from the hybrid
   prediction (each factor perturbed by 1 %), certify (untied), compare all per-cluster maps
   within Theorem D.2's radius, and check each duplicate is served by one column parallel
   to it (cosine ≈ 1) of length r_l‖x_l‖; the tied problem as a second measurement.
4. (reachability, beyond the claim) the best of several random tied starts: are the
   duplicates memorised there too?
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sympy as sp

from numerics.compare import column_structure
from numerics.solvers import multistart
from proofs.common import existence, existence_measurements, orthogonal_clusters, split
from proofs.record import claim
from theory import hybrid
from theory.allocation import allocate
from theory.errors import measured_beta
from theory.predict import block_linear_map, hybrid_weights, switching_margin


@dataclass(frozen=True)
class Hybrid:
    """Labelled data whose last clusters are duplicates: ``points`` (d, m) copied ``n_copies`` times."""

    X: np.ndarray
    labels: np.ndarray
    duplicates: np.ndarray
    points: np.ndarray
    n_copies: np.ndarray


def hybrid_instance(mode):
    """K Gaussian-spread modes and m duplicated points on one simplex, spreads orthogonal to all means.

    `proofs.common.orthogonal_clusters` with rank-0 clusters for the duplicates (their copies
    are exact). `numerics.data.hybrid_mixture` gives the same structure with random spread
    directions; at d = 8 its block columns tilt toward the other means (see
    errata_separability_margin) and γ/σ drops to ≈ 1.4, outside the regime of the claim.
    """
    if mode.full:
        sizes, ranks, p_modes, d, norm = [500, 500, 500, 20, 10, 5], [8, 8, 8, 0, 0, 0], [4, 4, 4], 1024, 10.0
    else:
        sizes, ranks, p_modes, d, norm = [30, 30, 5, 3], [2, 2, 0, 0], [2, 2], 8, 5.0
    X, labels = orthogonal_clusters(d, sizes, ranks, alpha=0.3, norms=norm, seed=mode.seed)
    K = len(p_modes)
    duplicates = np.arange(K, len(sizes))
    points = np.stack([X[:, labels == l][:, 0] for l in duplicates], axis=1)
    return Hybrid(X, labels, duplicates, points, np.array(sizes[K:])), p_modes


def predicted_maps(data, p_modes, sigma, lam):
    """{label: map} of the Cor. 3.4 prediction: r_l²x_lx_lᵀ for duplicates, eq. (8) for modes."""
    n = data.X.shape[1]
    maps = {}
    r_sq = hybrid.duplicate_r_sq_np(np.sum(data.points ** 2, axis=0), data.n_copies, n, sigma, lam)
    for label, X_k in split(data.X, data.labels).items():
        if label in data.duplicates:
            l = int(np.flatnonzero(data.duplicates == label)[0])
            maps[label] = r_sq[l] * np.outer(data.points[:, l], data.points[:, l])
        else:
            maps[label] = block_linear_map(X_k, p_modes[label], n, sigma, lam)
    return maps


@claim("corollary_3_4", title="Corollary 3.4: hybrid — duplicates memorised (one column r_l x_l), modes generalise",
       statement="if clusters 1…m are duplicates X_l = (x_l, …, x_l) and the rest are samples of Gaussian modes, "
                 "there is a local minimiser (r_1x_1 … r_mx_m W_X(m+1) … W_XK); with n_l copies "
                 "r_l² = (n_l‖x_l‖² − nλ)/(n_l‖x_l‖⁴ + n_lσ²‖x_l‖²)",
       equations="Cor. 3.4, eq. (8)", source="paper", weights="untied",
       quote="W2* = W1* = (r_1 x_1 … r_m x_m W_{X_{m+1}} … W_{X_K})")
def check(record, mode):
    data, p_modes = hybrid_instance(mode)
    sigma, lam = 0.4, 1e-3
    X, labels = data.X, data.labels
    n = X.shape[1]
    K = len(p_modes)
    modes = [X[:, labels == k] for k in range(K)]
    record.instance.update(generator="proofs.common.orthogonal_clusters (rank-0 clusters = duplicates)",
                           d=X.shape[0], K=K, m=len(data.duplicates), n=n, n_copies=data.n_copies,
                           p_modes=p_modes, sigma=sigma, lam=lam)

    # 1. assumptions
    beta = measured_beta(X, labels)
    record.assume("β < 0 (modes and duplicates)", beta, "< 0", beta < 0)
    strength = data.n_copies * np.sum(data.points ** 2, axis=0)
    record.assume("n_l‖x_l‖² > nλ", float(strength.min()), f"> {n * lam:g}", strength.min() > n * lam)

    # 2. symbolic and the allocation's regimes
    record.symbolic["r_l² from eq. (8) = stated r_l²"] = sp.simplify(
        hybrid.duplicate_r_sq_from_eq8() - hybrid.duplicate_r_sq_theory()) == 0
    record.symbolic["λ → 0: copies cost"] = str(hybrid.duplicate_loss_no_decay())
    allocation = allocate(X, labels, sum(p_modes) + len(data.duplicates), sigma, lam)
    record.measurement["water_filling_regimes"] = dict(zip(allocation.labels, allocation.regimes))
    regimes_ok = all((r == "memorised") == (label in data.duplicates)
                     for label, r in zip(allocation.labels, allocation.regimes))

    # 3. existence on loss (6) as printed (untied); tied as a second measurement
    W = hybrid_weights(data.points, data.n_copies, modes, p_modes, sigma, lam)
    result = existence(X, labels, W, predicted_maps(data, p_modes, sigma, lam), sigma, lam, seed=mode.seed)
    untied = result["untied"]
    fit = untied["fit"]
    info = column_structure(fit.W1, fit.W2, X, labels)
    duplicate_columns = info.max_cosine[np.isin(labels, data.duplicates)]
    r_sq = hybrid.duplicate_r_sq_np(np.sum(data.points ** 2, axis=0), data.n_copies, n, sigma, lam)
    gamma = switching_margin(W, X)
    record.assume("margin γ > 0 (stable masks at the prediction)", gamma, "> 0", gamma > 0)
    record.measurement["gamma_over_sigma"] = gamma / sigma
    # a duplicate's column is within the radius r of r_l x_l: 1 − cos ≤ (r/‖r_l x_l‖)²/2
    lengths = np.sqrt(r_sq) * np.linalg.norm(data.points, axis=0)
    cosine_floor = 1 - 0.5 * (untied["radius"] / lengths.min()) ** 2
    record.bound["duplicate_cosine_floor"] = cosine_floor
    record.measurement.update(certificate=untied["verdict"], map_residual=untied["map_residual"],
                              factor_gap_W1_minus_W2=untied["factor_gap"],
                              duplicate_column_cosines=float(duplicate_columns.min()),
                              predicted_r_l=np.sqrt(r_sq), existence=existence_measurements(result))
    record.bound.update(map_residual_tolerance=untied["tolerance"],
                        tolerance_source="Thm. D.2 radius √(2ε/m0) (appendix, second-hand), m0 = σ² + nλ, ε measured")

    # 4. reachability from random starts
    starts = 4 if mode.full else 6
    runs = multistart(X, W.shape[1], sigma, lam, n_starts=starts, seed=mode.seed, labels=labels, tied=True,
                      gtol=1e-6, **mode.multistart_options("corollary_3_4_random_starts"))
    best = column_structure(runs.best_W1, runs.best_W2, X, labels)
    memorised = best.memorized[np.isin(labels, data.duplicates)]
    record.measurement["random_starts_best"] = (f"duplicates memorised: {bool(memorised.all())}; "
                                                f"neurons per cluster {best.neurons_per_cluster}; loss "
                                                f"{runs.losses.min():.6g} vs prediction-started {fit.loss:.6g}")

    confirmed = (record.symbolic["r_l² from eq. (8) = stated r_l²"] is True and regimes_ok
                 and untied["minimum"] and untied["within"]
                 and duplicate_columns.min() >= cosine_floor)
    record.headline = (f"untied: {untied['verdict']}, ‖ΔA‖² = {untied['map_residual']:.1e} ≤ "
                       f"{untied['tolerance']:.1e}; duplicate "
                       f"columns cos ≥ {duplicate_columns.min():.8f}; regimes {allocation.regimes}")
    record.decide(confirmed=confirmed)
