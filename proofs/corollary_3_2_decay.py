"""Corollary 3.2 with p > n: below a decay λ*(X, σ) the memorising point is a saddle of loss (6).

Cor. 3.2 asserts, for every p ≥ n and nλ < min‖x_i‖², a local minimiser W_mem = (r_1x_1 …
r_nx_n 0 … 0). With p > n the zero columns can grow into new neurons that are half-active
on the noise of the samples; `theory.memorization.saddle_decay` derives the decay λ* below
which one of them lowers the loss (untied W1, W2: loss (6) as printed).

Proof sketch checked here, on several memorisation sets inside the derivation's regime:

1. (theory) λ* and the escaping direction a* from the stable-mask derivation, with its own
   error bound.
2. (exact, along a*) the stability ratio ``‖G(a*)‖/(2λ)`` from the exact gradient of eq. (6)
   (`numerics.objective`), and the decay λ_a* where it crosses 1 (root finding): below
   λ_a*, a* is an exact descent direction, so λ_a* is a certified lower bound of the true
   threshold.
3. (certificate) `numerics.certify` (untied) at W_mem(λ), λ = λ*·{1/4, 1/2, 2, 4}: saddle,
   with a loss decrease confirmed on the loss itself, below; a minimum above.

Two records share the sweep: ``saddle_decay`` (the derived threshold, confirmed if it meets
the certificate on both sides) and ``corollary_3_2_small_decay`` (the paper's statement at
p > n and 0 < λ < λ*: refuted there by certified saddles).
"""
from __future__ import annotations

import functools

import numpy as np
from scipy import optimize

from numerics.certify import certify
from numerics.data import memorization_set
from numerics.objective import expected_loss_and_grad
from numerics.certify import MINIMUM_VERDICTS
from proofs.common import minimise_from
from proofs.record import claim
from theory.memorization import saddle_decay
from theory.predict import memorization_weights

FACTORS = (0.25, 0.5, 2.0, 4.0)


def instances(mode) -> list:
    """(name, X, σ, extra zero columns): simplices and a β = −0.3 set, margins 4–5 (see saddle_decay)."""
    cases = [("simplex d=6, n=3, norms 3/2.5/2", memorization_set(6, 3, norm=[3.0, 2.5, 2.0], seed=mode.seed), 0.2, 2),
             ("simplex d=16, n=4, norm 1", memorization_set(16, 4, norm=1.0, seed=mode.seed + 1), 0.065, 2),
             ("β = −0.3, d=10, n=4", memorization_set(10, 4, norm=[1.0, 2.0, 3.0, 1.5], beta=-0.3,
                                                       seed=mode.seed + 2), 0.06, 1)]
    if mode.full:
        cases.append(("simplex d=64, n=8, norm 2", memorization_set(64, 8, norm=2.0, seed=mode.seed + 3), 0.05, 4))
    return cases


def exact_ratio(X, sigma, lam, direction) -> float:
    """``‖G(a)‖/(2λ‖a‖)`` at W_mem(λ) from the exact gradient: G(a) = ∂L/∂w2_j at w1_j = a, w2_j = 0."""
    n = X.shape[1]
    W1 = memorization_weights(X, n + 1, sigma, lam)
    W2 = W1.copy()
    W1[:, n] = direction
    g2 = expected_loss_and_grad(W1, W2, X, sigma, lam)[2][:, n]
    return float(np.linalg.norm(g2) / (2 * lam * np.linalg.norm(direction)))


@functools.lru_cache(maxsize=4)
def sweep(full: bool, seed: int) -> tuple:
    """The measurements both records use (computed once per mode)."""
    from proofs.record import Mode

    rows = []
    for name, X, sigma, extra in instances(Mode(full=full, seed=seed)):
        n = X.shape[1]
        theory = saddle_decay(X, sigma)
        certified_lower = optimize.brentq(lambda lam: exact_ratio(X, sigma, lam, theory.direction) - 1.0,
                                          theory.lam / 16, 16 * theory.lam, xtol=1e-3 * theory.lam)
        points = []
        for factor in FACTORS:
            lam = factor * theory.lam
            W = memorization_weights(X, n + extra, sigma, lam)
            fit = minimise_from(X, W, sigma, lam, tied=False)      # zero columns stay exactly zero
            report = certify(fit.W1, fit.W2, X, sigma, lam, tied=False)
            points.append(dict(factor=factor, lam=lam, verdict=report.verdict,
                               certify_ratio=report.zero_column_ratio, descent_decrease=report.descent_decrease,
                               theory_ratio=theory.ratio(lam), exact_ratio_along_a=exact_ratio(X, sigma, lam,
                                                                                                 theory.direction),
                               rel_grad_norm=report.rel_grad_norm))
        rows.append(dict(instance=name, d=X.shape[0], n=n, p=n + extra, sigma=sigma, lam_star=theory.lam,
                         lam_exact_along_a=certified_lower, error_bound=theory.error, margin=theory.margin,
                         min_norm_sq_over_n=float(np.sum(X ** 2, axis=0).min() / n), points=points))
    return tuple(rows)


def _sides(row) -> tuple[bool, bool]:
    below = all(p["verdict"] == "saddle" and p["descent_decrease"] > 0 for p in row["points"] if p["factor"] < 1)
    above = all(p["verdict"] in MINIMUM_VERDICTS for p in row["points"] if p["factor"] > 1)
    return below, above


@claim("saddle_decay", title="λ*(X, σ): below it eq. (9) with zero columns is a saddle of loss (6), above a minimum",
       statement="(derived here) for p > n the memorising point W_mem of eq. (9) is a saddle of loss (6) for "
                 "λ < λ* = σ²/(nκ*) and a local minimum above it, κ* from the stable-mask stability ratio "
                 "‖Σ_i x_i (A_i + B_i + κB_i)‖ (theory.memorization.saddle_decay)",
       equations="Cor. 3.2, eq. (9)", source="derived here", weights="untied")
def check_threshold(record, mode):
    rows = sweep(mode.full, mode.seed)
    record.instance.update(instances=[r["instance"] for r in rows], lam_factors=FACTORS,
                           training="W_mem(λ) polished untied (zero columns stay zero); certify untied")
    for row in rows:
        record.assume(f"nλ < min‖x_i‖² at 4λ* ({row['instance']})", 4 * row["lam_star"],
                      f"< {row['min_norm_sq_over_n']:.4g}", 4 * row["lam_star"] < row["min_norm_sq_over_n"])
    record.measurement["sweep"] = [{k: v for k, v in r.items() if k != "points"} for r in rows]
    record.measurement["points"] = [dict(instance=r["instance"], **p) for r in rows for p in r["points"]]
    sides = [_sides(r) for r in rows]
    ratios = [r["lam_exact_along_a"] / r["lam_star"] for r in rows]
    record.measurement["exact_threshold_along_a_over_lam_star"] = ratios
    record.bound.update(bracket="certify: saddle (loss decrease confirmed) at λ*/4 and λ*/2, minimum at 2λ* and 4λ*",
                        exact_along_a="λ_a*/λ* in [1/2, 2] (the factor-2 bracket)")
    confirmed = all(b and a for b, a in sides) and all(0.5 <= q <= 2.0 for q in ratios)
    thresholds = ", ".join(f"{r['lam_star']:.2g}" for r in rows)
    along = ", ".join(f"{q:.3f}" for q in ratios)
    record.headline = (f"{sum(b and a for b, a in sides)}/{len(rows)} instances: saddle below λ*, minimum above; "
                       f"λ* = {thresholds}; exact threshold along a*/λ* = {along}")
    record.decide(confirmed=confirmed)


@claim("corollary_3_2_small_decay",
       title="Corollary 3.2 with p > n fails for 0 < λ < λ*(X, σ): W_mem is a saddle of loss (6) there",
       statement="if nλ < min_i ‖x_i‖² there is a local minimiser W2* = W1* = W_mem = (r_1x_1 … r_nx_n 0 … 0) "
                 "(p ≥ n), tested at p > n and λ = λ*/2, λ*/4 with λ* of theory.memorization.saddle_decay",
       equations="Cor. 3.2, eq. (9)", source="paper", weights="untied", expected="refuted",
       quote="If nλ < min_i ‖x_i‖² there is a local minimiser W2* = W1* = W_mem = (r_1 x_1 … r_n x_n 0 … 0)")
def check_small_decay(record, mode):
    rows = sweep(mode.full, mode.seed)
    record.instance.update(instances=[r["instance"] for r in rows], p=[r["p"] for r in rows],
                           lam=[[p["lam"] for p in r["points"] if p["factor"] < 1] for r in rows])
    for row in rows:
        record.assume(f"nλ < min‖x_i‖² ({row['instance']})", row["lam_star"] / 2,
                      f"< {row['min_norm_sq_over_n']:.4g} (per n)", row["lam_star"] / 2 < row["min_norm_sq_over_n"])
        record.assume(f"p ≥ n ({row['instance']})", row["p"], f">= {row['n']}", row["p"] >= row["n"])
    below = [p for r in rows for p in r["points"] if p["factor"] < 1]
    record.measurement["certificates_below_lam_star"] = [dict(instance=r["instance"], factor=p["factor"],
                                                              lam=p["lam"], verdict=p["verdict"],
                                                              loss_decrease=p["descent_decrease"])
                                                         for r in rows for p in r["points"] if p["factor"] < 1]
    saddles = sum(p["verdict"] == "saddle" and p["descent_decrease"] > 0 for p in below)
    record.bound["refutation"] = "certify (untied) finds a saddle with a loss decrease above rounding, at every λ tried"
    record.note("The statement holds at p = n (no zero column) and, for p > n, above λ*(X, σ) (see saddle_decay); "
                "λ* scales like σ³/‖x‖, far below the printed condition nλ < min‖x_i‖².")
    refuted = saddles == len(below)
    record.headline = (f"{saddles}/{len(below)} points with 0 < λ < λ* and p > n are certified saddles of loss (6) "
                       f"(λ = {min(p['lam'] for p in below):.2g}…{max(p['lam'] for p in below):.2g}, "
                       f"largest loss decrease {max(p['descent_decrease'] for p in below):.1e})")
    record.decide(confirmed=not refuted, refuted=refuted)
