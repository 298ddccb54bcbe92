"""The spread-0.3 paper-scale mixture: L-BFGS, then trust-region Newton with exact Hessian-vector
products, the bottom of the Hessian spectrum, and `certify` with exact products.

Instance (as ``benchmarks/train_vs_torch.py --case gen``): d = 1024, p = 100, σ = 0.2, tied
weights, n = 10,000 samples of 10 simplex-mean Gaussian modes with rank-5 covariances and
within-cluster spread 0.3; λ = d·wd/4 with the authors' wd = 1e-4; the PyTorch-default
initialisation (seed 0). The theory-guided start on this instance against the authors'
protocol is ``python benchmarks/train_vs_torch.py --case gen --methods theory``.

Stages (each result saved atomically under ``--out`` with its parameters; a finished stage
is loaded instead of recomputed when the script is run again with the same parameters):

1. ``lbfgs``: `numerics.training.train` from the initialisation (15,000 Monte-Carlo Adam
   warm-up steps, then exact L-BFGS), no polish, at most ``--lbfgs-time`` seconds;
2. ``newton``: `numerics.newton.newton_polish` (trust-krylov with exact products, then
   Newton steps on the gradient norm) from the L-BFGS point projected onto the data span
   (`_on_data_span`), to ``‖∇L‖/L0 ≤ 1e-8`` or ``--newton-time`` seconds in all: a saved
   shorter run that did not converge is continued from its end, its seconds counted;
3. ``spectrum``, at the Newton point (or the L-BFGS point without ``newton``) projected onto
   the data span: ``--lanczos-steps`` Lanczos steps on the exact Hessian-vector products in
   the invariant basis (`_lanczos_ritz`): the smallest and largest Ritz values with their
   residuals (each has an eigenvalue within its residual), how many lie below 1e-4 … 1e-1,
   and where the lowest Ritz vectors live: their weight on each column, against the
   columns' norms and whether they straddle clusters (`numerics.compare.column_structure`);
4. ``certify``: `numerics.certify.certify` with ``hessp=exact_hessp`` at that point.

    python benchmarks/newton_gen.py                     # all stages (~30–60 min on 2 cores)
    python benchmarks/newton_gen.py --stages lbfgs,newton,spectrum --newton-time 2700
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import scipy.linalg

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from numerics.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402

D, P, SIGMA, WD = 1024, 100, 0.2, 1e-4
STAGES = ("lbfgs", "newton", "spectrum", "certify")


def _instance(spread):
    from numerics.data import gaussian_mixture
    from numerics.protocol import lambda_from_weight_decay, torch_default_init

    mixture = gaussian_mixture(d=D, K=10, rank=5, n=10_000, mean_norm=float(np.sqrt(0.3 * D)),
                               spread=spread, seed=0)
    lam = lambda_from_weight_decay(WD, D, tied=True)
    W0, _ = torch_default_init(D, P, tied=True, seed=0)
    return mixture.X, mixture.labels, lam, W0


def _key(args, name, **parameters):
    """What a stage's result depends on: the instance, the L-BFGS cap, the stage's own parameters."""
    return {"spread": args.spread, "lbfgs_time": args.lbfgs_time, "stage": name, **parameters}


def _stage(args, name, compute, **parameters):
    """Load stage ``name`` if saved with the same parameters, else compute and save it."""
    key = _key(args, name, **parameters)
    saved = load_checkpoint(args.out, name)
    if saved is not None and saved[1].get("key") == key:
        print(f"[{name}] loaded from {args.out}", flush=True)
        return saved[0], saved[1]["record"]
    load = os.getloadavg()[0]
    arrays, record = compute()
    record["load_before"] = load
    record["load_after"] = os.getloadavg()[0]
    save_checkpoint(args.out, name, arrays, {"key": key, "record": record})
    print(f"[{name}] " + json.dumps(record, default=str), flush=True)
    return arrays, record


def _on_data_span(W, X):
    """W's projection onto span(X), and the norm of the part dropped.

    Eq. (6) is invariant under rotations fixing the data, and the part B of W outside span(X)
    only enters through B h (an error the decay and the data-free target push to zero) and
    the noise variance σ²BᵀB: gradient descent shrinks it towards zero. Left in, its
    directions join the invariant basis, and rotations about span(X) that move B give a
    cluster of near-zero Hessian eigenvalues (exactly zero at B = 0) that says nothing about
    the minimiser.
    """
    from numerics.geometry import orthonormal_span

    U = orthonormal_span(X)
    projected = U @ (U.T @ W)
    return projected, float(np.linalg.norm(W - projected))


def _lanczos_ritz(product, size, steps, seed=0):
    """Ritz values and residual norms of ``steps`` Lanczos steps on a symmetric ``product``.

    Written here because ARPACK (``eigsh``) returns only converged pairs: on a Hessian whose
    bottom is a tight cluster it returns nothing. Full reorthogonalisation (two Gram-Schmidt
    passes) keeps the basis orthonormal. Every Ritz value θ has an eigenvalue within its
    residual ‖Hy − θy‖ = β_m|s_m| (y = Qs), and the smallest Ritz value bounds the smallest
    eigenvalue from above (Courant-Fischer). Returns (θ ascending, residuals, Ritz vectors).
    """
    rng = np.random.default_rng(seed)
    Q = np.zeros((steps + 1, size))
    alpha, beta = np.zeros(steps), np.zeros(steps)
    q = rng.standard_normal(size)
    Q[0] = q / np.linalg.norm(q)
    for m in range(steps):
        w = product(Q[m])
        alpha[m] = Q[m] @ w
        for _ in range(2):
            w -= Q[:m + 1].T @ (Q[:m + 1] @ w)
        beta[m] = np.linalg.norm(w)
        Q[m + 1] = w / beta[m]
    theta, S = scipy.linalg.eigh_tridiagonal(alpha, beta[:-1])
    return theta, beta[-1] * np.abs(S[-1]), S.T @ Q[:steps]


def _mode_location(mode, W, X, labels):
    """Share of a unit mode's squared norm on each column, with the columns' norms and status."""
    from numerics.compare import IDLE, MIXED, ZERO, column_structure

    weight = np.sum(mode * mode, axis=0)
    order = np.argsort(weight)[::-1][:8]
    info = column_structure(W, W, X, labels)
    kinds = {ZERO: "zero", IDLE: "idle", MIXED: "mixed"}
    return [{"column": int(j), "share": float(weight[j]), "norm": float(np.linalg.norm(W[:, j])),
             "cluster": kinds.get(int(info.cluster_of_column[j]), int(info.cluster_of_column[j]))}
            for j in order]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spread", type=float, default=0.3)
    parser.add_argument("--lbfgs-time", type=float, default=900.0)
    parser.add_argument("--newton-time", type=float, default=900.0)
    parser.add_argument("--lanczos-steps", type=int, default=500, help="Lanczos steps of the spectrum stage")
    parser.add_argument("--stages", default=",".join(STAGES))
    parser.add_argument("--out", default=str(HERE / "results" / "newton_gen"))
    args = parser.parse_args(argv)
    stages = args.stages.split(",")
    from numerics.certify import certify
    from numerics.newton import exact_hessp, newton_polish
    from numerics.compare import MIXED, column_structure
    from numerics.geometry import loss_scale
    from numerics.objective import expected_loss, expected_loss_and_grad
    from numerics.training import train

    X, labels, lam, W0 = _instance(args.spread)
    scale = loss_scale(X)
    expected_loss(W0[:, :2], W0[:, :2], X[:, :3], SIGMA, lam)      # numba compilation
    summary = {}

    def rel_grad(W):
        _, g1, g2 = expected_loss_and_grad(W, W, X, SIGMA, lam)
        return float(np.linalg.norm(g1 + g2) / scale)

    W = None
    if "lbfgs" in stages:
        def lbfgs():
            fit = train(X, P, SIGMA, lam, tied=True, init=W0, warmup=dict(steps=15_000, lr=3e-3),
                        polish=False, max_time=args.lbfgs_time, progress=False)
            info = column_structure(fit.W1, fit.W1, X, labels)
            return {"W": fit.W1}, {"seconds": fit.wall_time, "loss": fit.loss, "rel_grad": fit.rel_grad_norm,
                                   "n_iter": fit.n_iter, "message": fit.message, "n_mixed": info.n_mixed,
                                   "n_zero": info.n_zero}
        arrays, summary["lbfgs"] = _stage(args, "lbfgs", lbfgs)
        W, point = arrays["W"], "lbfgs"
    if "newton" in stages and W is not None:
        def newton():
            start, before = W, {"seconds": 0.0, "n_iter": 0, "n_hvp": 0}
            saved = load_checkpoint(args.out, "newton")
            if saved is not None:           # a shorter run that did not converge: go on from its end
                old_key, old = saved[1]["key"], saved[1]["record"]
                if ({**old_key, "newton_time": args.newton_time} == _key(args, "newton", newton_time=args.newton_time)
                        and not old["converged"] and old["seconds"] < args.newton_time):
                    start, before = saved[0]["W"], old
            start, dropped = _on_data_span(start, X)
            out = newton_polish(X, start, start, SIGMA, lam, tied=True, gtol=1e-8,
                                max_time=args.newton_time - before["seconds"])
            info = column_structure(out.W1, out.W1, X, labels)
            return {"W": out.W1}, {"seconds": before["seconds"] + out.wall_time, "loss": out.loss,
                                   "rel_grad": out.rel_grad_norm, "converged": out.converged,
                                   "n_iter": before["n_iter"] + out.n_iter, "n_hvp": before["n_hvp"] + out.n_hvp,
                                   "resumed_after_seconds": before["seconds"], "dropped_off_data_span": dropped,
                                   "message": out.message,
                                   "history": out.history[-5:], "n_mixed": info.n_mixed, "n_zero": info.n_zero}
        arrays, summary["newton"] = _stage(args, "newton", newton, newton_time=args.newton_time)
        W, point = arrays["W"], "newton"
    if W is not None and ("spectrum" in stages or "certify" in stages):
        W, dropped = _on_data_span(W, X)
        point += " on span(X)"
    if "spectrum" in stages and W is not None:
        def spectrum():
            from numerics.geometry import invariant_basis
            from numerics.hessian import HessianVectorProduct

            tick = time.perf_counter()
            basis = invariant_basis(X, W, extra=1)
            product = HessianVectorProduct(basis.T @ W, basis.T @ W, basis.T @ X, SIGMA, lam, tied=True)
            shape = (basis.shape[1], P)
            theta, residual, vectors = _lanczos_ritz(lambda v: product(v.reshape(shape)).ravel(),
                                                      basis.shape[1] * P, args.lanczos_steps)
            where = [_mode_location(basis @ vectors[i].reshape(shape), W, X, labels) for i in range(3)]
            norms = np.linalg.norm(W, axis=0)
            info = column_structure(W, W, X, labels)
            mixed = np.flatnonzero(info.cluster_of_column == MIXED)
            return {"ritz_values": theta, "residuals": residual}, {
                "seconds": time.perf_counter() - tick, "basis": basis.shape[1], "steps": args.lanczos_steps,
                "smallest_ritz_values": theta[:10].tolist(), "their_residuals": residual[:10].tolist(),
                "largest_ritz_value": float(theta[-1]), "largest_residual": float(residual[-1]),
                "n_ritz_below": {f"{t:g}": int(np.sum(theta < t)) for t in (1e-4, 1e-3, 1e-2, 1e-1)},
                "lowest_modes": where, "n_mixed": int(mixed.size),
                "mixed_column_norms": np.sort(norms[mixed]).tolist(),
                "other_column_norms_median": float(np.median(np.delete(norms, mixed))),
                "rel_grad": rel_grad(W), "point": point, "dropped_off_data_span": dropped,
                "loss": float(expected_loss(W, W, X, SIGMA, lam))}
        _, summary["spectrum"] = _stage(args, "spectrum", spectrum, point=point,
                                        newton_time=args.newton_time, lanczos_steps=args.lanczos_steps)
    if "certify" in stages and W is not None:
        def run_certify():
            tick = time.perf_counter()
            report = certify(W, W, X, SIGMA, lam, hessp=exact_hessp, progress=False)
            return {"eigenvalues": report.eigenvalues}, {
                "seconds": time.perf_counter() - tick, "verdict": report.verdict, "summary": report.summary(),
                "eigenvalues": report.eigenvalues.tolist(), "lambda_max": report.lambda_max,
                "n_hvp": report.n_hvp, "notes": report.notes}
        _, summary["certify"] = _stage(args, "certify", run_certify, point=point, newton_time=args.newton_time)
    path = Path(args.out) / "summary.json"
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(summary, indent=1, default=str))
    os.replace(temporary, path)
    print(f"written {path}")


if __name__ == "__main__":
    main()
