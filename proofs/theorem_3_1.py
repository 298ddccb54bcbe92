"""Theorem 3.1: a local minimiser of loss (6) within ‖R‖_F² ≤ C e^{−cγ²/σ²} of the block point eq. (8).

Proof sketch checked here, on loss (6) as printed (independent W1, W2):

1. (assumptions, measured) β < 0, ``nλ < min_k λ_min(Λ_k^{(p_k)})`` and stable masks at the
   block point (margin γ > 0, `theory.predict.predict`). The clusters' spreads are orthogonal
   to every mean (`proofs.common.orthogonal_clusters`): the regime where β alone controls the
   margin; for general Definition 3.1 clusters see ``errata_separability_margin``.
2. (symbolic) with stable masks n·L restricted to block k is Lemma D.1's L̂ with ``n_k`` samples
   and decay ``λ' = nλ``: eq. (8) is Lemma D.1 per block (its factor squares to a*).
3. (numeric) for a sweep of σ and of λ, minimise the exact loss over untied W1, W2 from the
   block point (1 % perturbation of each factor), certify the limit is a local minimum
   (`numerics.certify`, untied), and measure ``‖R‖² = Σ_k ‖A_k(W*) − A_k(eq. 8)‖_F²`` on the
   invariant per-cluster maps ``A_k = W2 diag(mask_k) W1ᵀ`` (O_k and permutations drop out),
   and the factors' own distance to the block point (`procrustes_distance`, each factor).
4. (bound) fit ``ln ‖R‖² = ln C − c γ²/σ²`` for each λ. A neuron at distance γ from switching
   flips with probability ``Φ(−γ/σ) ≤ ½e^{−γ²/(2σ²)}``; the gradient at the block point is of
   that order and the displacement is gradient/curvature, so ‖R‖² ∝ e^{−γ²/σ²} up to
   polynomial factors: we require exponential decay with a fitted c in [0.5, 2] (derived
   c = 1), and report how the constant C depends on λ (maps and factors separately).
5. (the factors of eq. 8) the trained maps are compared with eq. (8) and with the two
   look-alikes ``n`` in the noise factor and ``n_kλ`` in the decay: eq. (8) must be closest.

A second record, ``theorem_3_1_tied_factors``, tests the printed W2* = W1* itself.
"""
from __future__ import annotations

import functools

import numpy as np
import sympy as sp

from numerics.certify import certify
from numerics.objective import expected_loss_and_grad
from numerics.certify import MINIMUM_VERDICTS as MINIMUM
from numerics.compare import cluster_maps, map_residual
from numerics.geometry import loss_scale
from proofs.common import minimise_from, orthogonal_clusters, procrustes_distance, split
from proofs.record import claim
from theory import linear_block
from theory.predict import block_linear_map, predict

def instance(mode):
    """Three clusters, simplex means of norm 3, rank-2 spreads (α = 0.3), p_k = 2 each; the σ sweep, λ = 1e-3."""
    if mode.full:
        d, sizes, ranks, p_k = 1024, [100, 100, 100], [4, 4, 4], [3, 3, 3]
    else:
        d, sizes, ranks, p_k = 8, [6, 6, 6], [2, 2, 2], [2, 2, 2]
    sigmas = [0.25, 0.3, 0.35, 0.4, 0.5, 0.6, 0.75, 0.9]
    X, labels = orthogonal_clusters(d, sizes, ranks, alpha=0.3, norms=3.0, seed=mode.seed + 1)
    return X, labels, p_k, sigmas, REFERENCE_LAMBDA


LAMBDAS = (1e-3, 3e-3, 1e-2)     # the decay sweep: does the residual's constant depend on λ?
REFERENCE_LAMBDA = LAMBDAS[0]    # where the tied problem is also solved (second measurement)


@functools.lru_cache(maxsize=2)
def sweep(full: bool, seed: int) -> tuple:
    """Untied minimisers of loss (6) near eq. (8) over σ × λ (tied too at the reference λ); computed once."""
    from proofs.record import Mode

    X, labels, p_k, sigmas, _ = instance(Mode(full=full, seed=seed))
    rows = []
    for lam in LAMBDAS:
        for sigma in sigmas:
            prediction = predict(X, labels, p_k, sigma, lam)
            fit = minimise_from(X, prediction.W, sigma, lam, tied=False, seed=seed, perturb=1e-2)
            report = certify(fit.W1, fit.W2, X, sigma, lam, tied=False)
            curvature = max(report.min_eigenvalue, 1e-12)
            # the solver stops at ‖∇L‖ = rel·L0: the point is within ‖∇L‖/λ_min(H) of the minimiser
            displacement = fit.rel_grad_norm * loss_scale(X) / curvature
            row = dict(sigma=sigma, lam=lam, gamma=prediction.margin, g2s2=prediction.margin ** 2 / sigma ** 2,
                       R2=map_residual(fit.W1, fit.W2, X, labels, prediction.linear_maps),
                       factor_gap_sq=float(np.sum((fit.W1 - fit.W2) ** 2)),
                       factor_distance_sq=max(procrustes_distance(fit.W1, prediction.W),
                                              procrustes_distance(fit.W2, prediction.W)) ** 2,
                       map_floor=(2 * np.linalg.norm(prediction.W, 2) * displacement) ** 2,
                       factor_floor=displacement ** 2, verdict=report.verdict, min_eig=report.min_eigenvalue,
                       beta=prediction.beta, fit=fit)
            if lam == REFERENCE_LAMBDA:
                tied = minimise_from(X, prediction.W, sigma, lam, tied=True, seed=seed, perturb=1e-2)
                _, g1, g2 = expected_loss_and_grad(tied.W1, tied.W2, X, sigma, lam)
                row.update(tied_R2=map_residual(tied.W1, tied.W2, X, labels, prediction.linear_maps),
                           tied_verdict=certify(tied.W1, tied.W2, X, sigma, lam, tied=True).verdict,
                           tied_untied_gradient_gap=float(np.linalg.norm(g1 - g2)),
                           tied_rel_grad=tied.rel_grad_norm)
            rows.append(row)
    return X, labels, p_k, tuple(rows)


ASYMPTOTIC = 4.0     # γ²/σ² from which the exponential form is fitted (the theorem is a small-σ statement)


def joint_fit(rows, key, floor_key) -> dict:
    """Fit ``ln y = ln C_λ − c·γ²/σ²`` with one c and one C per λ (least squares).

    Points: γ²/σ² ≥ `ASYMPTOTIC` and ``y`` at least 100× above the solver floor. Returns c,
    C per λ, the fit's r², the number of points, and the slope of ln C_λ against ln λ (0: one
    C across λ; −1: C ∝ 1/λ; −2: C ∝ 1/λ²).
    """
    usable = [r for r in rows if r["g2s2"] >= ASYMPTOTIC and r[key] > 100 * r[floor_key]]
    lams = sorted({r["lam"] for r in usable})
    if len(usable) < len(lams) + 2:
        return dict(c=float("nan"), C={}, r2=float("nan"), points=len(usable), lambda_slope=float("nan"))
    A = np.zeros((len(usable), len(lams) + 1))
    for i, r in enumerate(usable):
        A[i, lams.index(r["lam"])] = 1.0
        A[i, -1] = -r["g2s2"]
    y = np.log([r[key] for r in usable])
    coef, *_ = np.linalg.lstsq(A, y, rcond=None)
    residual = y - A @ coef
    r2 = float(1 - residual @ residual / np.sum((y - y.mean()) ** 2))
    slope = float(np.polyfit(np.log(lams), coef[:-1], 1)[0]) if len(lams) >= 2 else float("nan")
    return dict(c=float(coef[-1]), C={lam: float(np.exp(v)) for lam, v in zip(lams, coef[:-1])}, r2=r2,
                points=len(usable), lambda_slope=slope)


@claim("theorem_3_1", title="Theorem 3.1: a local minimiser of loss (6) within ‖R‖² ≤ C e^{−cγ²/σ²} of eq. (8)",
       statement="if X is (α, β)-separable with β < 0 and nλ < min_k λ_min(Λ_k^(p_k)), there is a local "
                 "minimiser W2* = W1* = (W_X1 … W_XM) + R with ‖R‖_F² ≤ C e^{−cγ²/σ²}, W_Xk = "
                 "U_k(I + n_kσ²Λ_k⁻¹)^(−1/2)(I − nλΛ_k⁻¹)^(1/2)O_kᵀ; checked on clusters whose spreads are "
                 "orthogonal to every mean (the regime where β alone controls the margin)",
       equations="Thm. 3.1, eq. (8)", source="paper", weights="untied",
       quote="there exists a local minimiser W2* = W1* = (W_{X_1} … W_{X_M}) + R(σ, γ), Σ_k p_k = p, "
             "‖R‖_F² ≤ C e^{−cγ²/σ²}")
def check(record, mode):
    X, labels, p_k, rows = sweep(mode.full, mode.seed)
    d, n = X.shape
    clusters = split(X, labels)
    sigmas = sorted({r["sigma"] for r in rows})
    record.instance.update(generator="proofs.common.orthogonal_clusters", d=d, sizes=[c.shape[1] for c in
                           clusters.values()], spread_rank=2, alpha=0.3, mean_norm=3.0, p_k=p_k, lambdas=LAMBDAS,
                           sigmas=sigmas, restriction="cluster spreads orthogonal to every mean (see "
                                                      "errata_separability_margin for general Def. 3.1 clusters)",
                           training="exact loss (6), untied W1, W2, L-BFGS from eq. (8) + 1 % noise on each "
                                    "factor; certified untied; tied problem at λ = 1e-3 as a second measurement")

    # 1. assumptions
    smallest_kept = min(float(np.linalg.svd(X_k, compute_uv=False)[q - 1] ** 2)
                        for X_k, q in zip(clusters.values(), p_k))
    record.assume("nλ < min_k λ_min(Λ_k^(p_k)) (largest λ)", n * max(LAMBDAS), f"< {smallest_kept:.4g}",
                  n * max(LAMBDAS) < smallest_kept)
    record.assume("β < 0", rows[0]["beta"], "< 0", rows[0]["beta"] < 0)
    gamma = min(r["gamma"] for r in rows)
    record.assume("margin γ > 0 (stable masks at eq. 8)", gamma, "> 0", gamma > 0)

    # 2. symbolic: eq. (8) is Lemma D.1 per block with (n_k, λ' = nλ)
    record.symbolic["(eq. 8 factor)² = Lemma D.1 a*(Λ, n_k, λ' = nλ)"] = sp.simplify(
        linear_block.eq8_column_scale() ** 2 - linear_block.optimal_scale()) == 0

    # 3. the untied minimisers: maps (invariant) and factors
    maps = joint_fit(rows, "R2", "map_floor")
    factors = joint_fit(rows, "factor_distance_sq", "factor_floor")
    minima = all(r["verdict"] in MINIMUM for r in rows)
    table = [{k: v for k, v in r.items() if k not in ("fit", "beta")} for r in rows]
    record.measurement.update(points=table, map_residual_fit=maps, factor_residual_fit=factors,
                              all_certified_minima=minima)
    record.bound.update(form="‖R‖² ≤ C_λ e^{−cγ²/σ²}, one c", derived_c=1.0, accepted_c="[0.5, 2], fit r² ≥ 0.9",
                        fitted_points=f"γ²/σ² ≥ {ASYMPTOTIC:g} and 100× above the solver floor",
                        solver_floor="(2‖W‖·‖∇L‖/λ_min(H))² for maps, (‖∇L‖/λ_min(H))² for factors",
                        one_C_across_lambda="|slope of ln C_λ in ln λ| ≤ 0.5")
    record.note(f"Maps: the per-cluster maps of the untied minimiser follow C e^{{−cγ²/σ²}} with c = {maps['c']:.2f} "
                f"and one C across λ (ln C_λ ∝ {maps['lambda_slope']:.2f}·ln λ). Factors: the distance of W1*, W2* "
                f"to the block point follows the same form (c = {factors['c']:.2f}), but its constant grows like "
                f"λ^{factors['lambda_slope']:.2f} as λ → 0: the gradient of loss (6) at the tied optimum is not "
                f"symmetric (‖∂L/∂W1 − ∂L/∂W2‖ > 0, see theorem_3_1_tied_factors) and only the decay, of "
                f"curvature ≈ 4λ, holds W1 and W2 together.")

    # 4. which factors: eq. (8) against look-alikes, where the residual is smallest
    best = min((r for r in rows if r["lam"] == REFERENCE_LAMBDA), key=lambda r: r["R2"])
    trained = cluster_maps(best["fit"].W1, best["fit"].W2, X, labels)
    errors = {}
    for name, noise_n, decay_n in (("eq. (8): n_k in noise, nλ in decay", "n_k", "n"),
                                   ("n in noise", "n", "n"), ("n_kλ in decay", "n_k", "n_k")):
        total = 0.0
        for (k, X_k), q in zip(clusters.items(), p_k):
            n_k = X_k.shape[1]
            sigma = best["sigma"] * (np.sqrt(n / n_k) if noise_n == "n" else 1.0)   # n_k σ'² = n σ²
            decay = best["lam"] * (n_k / n if decay_n == "n_k" else 1.0)            # n λ' = n_k λ
            total += np.sum((trained[k] - block_linear_map(X_k, q, n, sigma, decay)) ** 2)
        errors[name] = float(total)
    record.measurement[f"map_error_of_variants_at_sigma_{best['sigma']:g}"] = errors
    eq8_best = min(errors, key=errors.get).startswith("eq. (8)")
    maps_ok = 0.5 <= maps["c"] <= 2 and maps["r2"] >= 0.9 and maps["points"] >= 4 * len(LAMBDAS)
    record.headline = (f"untied, {len(rows)} (σ, λ), all certified minima: {minima}; maps ‖ΔA‖² = C e^{{−cγ²/σ²}}, "
                       f"c = {maps['c']:.2f} (r² {maps['r2']:.3f}), C ∝ λ^{maps['lambda_slope']:.2f}; factors: "
                       f"c = {factors['c']:.2f}, C ∝ λ^{factors['lambda_slope']:.2f}; eq. (8) closest: {eq8_best}")
    record.decide(confirmed=minima and maps_ok and eq8_best and abs(maps["lambda_slope"]) <= 0.5
                  and record.symbolic["(eq. 8 factor)² = Lemma D.1 a*(Λ, n_k, λ' = nλ)"])


@claim("theorem_3_1_tied_factors", title="Theorem 3.1's W2* = W1*: the local minimiser of loss (6) near eq. (8) is untied",
       statement="the local minimiser near the block point has W2* = W1* (loss (6) is over independent W1, W2)",
       equations="Thm. 3.1, eq. (6)", source="paper", weights="untied", expected="refuted",
       quote="there exists a local minimiser W2* = W1* = (W_{X_1} … W_{X_M}) + R(σ, γ)")
def check_tied(record, mode):
    X, labels, p_k, rows = sweep(mode.full, mode.seed)
    scale = loss_scale(X)
    reference = [r for r in rows if r["lam"] == REFERENCE_LAMBDA]
    record.instance.update(data="the theorem_3_1 instance", lam=REFERENCE_LAMBDA,
                           sigmas=[r["sigma"] for r in reference])
    gaps = [dict(sigma=r["sigma"], lam=r["lam"], factor_gap=np.sqrt(r["factor_gap_sq"]),
                 solver_floor=np.sqrt(r["factor_floor"]), verdict=r["verdict"]) for r in rows]
    tied_gradients = [dict(sigma=r["sigma"], gradient_gap=r["tied_untied_gradient_gap"],
                           tied_verdict=r["tied_verdict"], gradient_tolerance=r["tied_rel_grad"] * scale)
                      for r in reference]
    record.measurement.update(untied_minimisers=gaps, tied_optimum_gradient_asymmetry=tied_gradients)
    untied_apart = [g for g in gaps if g["verdict"] in MINIMUM and g["factor_gap"] > 100 * g["solver_floor"]]
    not_critical = [t for t in tied_gradients if t["gradient_gap"] > 100 * t["gradient_tolerance"]]
    record.bound["refutation"] = ("a certified strict minimum of loss (6) with ‖W1 − W2‖ > 100× the solver's "
                                  "displacement bound, and the tied optimum's ‖∂L/∂W1 − ∂L/∂W2‖ > 100× its gradient")
    record.note("Equality holds only up to a residual of the theorem's exponential form, whose constant grows "
                "as λ decreases (theorem_3_1 reports the fit); at λ = 0, W1 → W1M^{−T}, W2 → W2M is a symmetry "
                "and nothing ties the factors.")
    largest = max(gaps, key=lambda g: g["factor_gap"])
    record.headline = (f"{len(untied_apart)}/{len(gaps)} certified untied minima have W1* ≠ W2* beyond the solver "
                       f"floor (largest ‖W1 − W2‖ = {largest['factor_gap']:.2g} at σ = {largest['sigma']:g}, "
                       f"λ = {largest['lam']:g}); tied optimum not critical for loss (6) at "
                       f"{len(not_critical)}/{len(tied_gradients)} σ's")
    refuted = bool(untied_apart) and bool(not_critical)
    record.decide(confirmed=not refuted, refuted=refuted)
