"""The spread-0.3 paper-scale mixture: L-BFGS, then trust-region Newton with exact Hessian-vector
products, `certify` with exact products, the bottom of the Hessian spectrum — and the
theory-guided start against the authors' protocol, side by side in one run.

Instance (as ``benchmarks/train_vs_torch.py --case gen``): d = 1024, p = 100, σ = 0.2, tied
weights, n = 10,000 samples of 10 simplex-mean Gaussian modes with rank-5 covariances and
within-cluster spread 0.3; λ = d·wd/4 with the authors' wd = 1e-4; the PyTorch-default
initialisation (seed 0).

Stages (each result saved atomically under ``--out`` with its parameters; a finished stage
is loaded instead of recomputed when the script is run again with the same parameters):

1. ``lbfgs``: `numerics.training.train` from the initialisation (15,000 Monte-Carlo Adam
   warm-up steps, then exact L-BFGS), no polish, at most ``--lbfgs-time`` seconds;
2. ``newton`` (after ``spectrum``): `numerics.newton.newton_polish` (trust-krylov with exact products, then Newton
   steps on the gradient norm) to ``‖∇L‖/L0 ≤ 1e-8`` or ``--newton-time`` seconds;
3. ``spectrum`` (at the L-BFGS point): the smallest Hessian eigenvalues
   (`numerics.newton.smallest_eigenpairs`, at most ``--lanczos-restarts`` ARPACK restarts)
   and where the lowest modes live: their weight on each column, against the columns' norms
   and whether they straddle clusters (`numerics.compare.column_structure`);
4. ``certify``: `numerics.certify.certify` with ``hessp=exact_hessp`` at the Newton point;
5. ``protocol``: the authors' loop (Adam lr 1e-4, wd 1e-4, batch 256, ``--steps``) in this
   package's NumPy implementation (`numerics.protocol.train_protocol`, float32 like the
   authors' PyTorch code), scored by the exact loss;
6. ``theory``: `theory.predict.predict` (water-filling allocation, eq. (8) blocks), then
   `train(init=prediction, polish=dict(hessp=exact_hessp))` (L-BFGS + trust-krylov with exact
   products): seconds until its
   exact loss first reaches the protocol's final exact loss, prediction time included.
   ``--protocol-loss``/``--protocol-seconds`` take the protocol's result from an earlier
   run (e.g. ``train_vs_torch.py``'s PyTorch run) instead of stage 5.

    python benchmarks/newton_gen.py                     # all stages (~30–60 min on 2 cores)
    python benchmarks/newton_gen.py --stages lbfgs,newton,certify,spectrum
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse.linalg

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from numerics.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402

D, P, SIGMA, WD = 1024, 100, 0.2, 1e-4
STAGES = ("lbfgs", "spectrum", "newton", "certify", "protocol", "theory")


def _instance(spread):
    from numerics.data import gaussian_mixture
    from numerics.protocol import lambda_from_weight_decay, torch_default_init

    mixture = gaussian_mixture(d=D, K=10, rank=5, n=10_000, mean_norm=float(np.sqrt(0.3 * D)),
                               spread=spread, seed=0)
    lam = lambda_from_weight_decay(WD, D, tied=True)
    W0, _ = torch_default_init(D, P, tied=True, seed=0)
    return mixture.X, mixture.labels, lam, W0


def _stage(args, name, compute):
    """Load stage ``name`` if saved with the same parameters, else compute and save it."""
    key = {"spread": args.spread, "lbfgs_time": args.lbfgs_time, "newton_time": args.newton_time,
           "steps": args.steps, "stage": name}
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
    parser.add_argument("--steps", type=int, default=50_000, help="protocol steps")
    parser.add_argument("--lanczos-restarts", type=int, default=6)
    parser.add_argument("--protocol-loss", type=float, default=None,
                        help="the protocol's final exact loss from an earlier run (skips stage protocol)")
    parser.add_argument("--protocol-seconds", type=float, default=None,
                        help="that run's wall time")
    parser.add_argument("--stages", default=",".join(STAGES))
    parser.add_argument("--out", default=str(HERE / "results" / "newton_gen"))
    args = parser.parse_args(argv)
    stages = args.stages.split(",")
    from numerics.certify import certify
    from numerics.newton import exact_hessp, newton_polish, smallest_eigenpairs
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
        W = arrays["W"]
    if "spectrum" in stages and W is not None:
        def spectrum():
            tick = time.perf_counter()
            live = np.linalg.norm(W, axis=0) > 0
            try:
                values, modes = smallest_eigenpairs(W, W, X, SIGMA, lam, tied=True, k=4, tol=1e-6,
                                                    maxiter=args.lanczos_restarts)
            except scipy.sparse.linalg.ArpackNoConvergence as error:   # not one pair converged
                return {}, {"seconds": time.perf_counter() - tick, "converged": False, "message": str(error),
                            "lanczos_restarts": args.lanczos_restarts, "rel_grad": rel_grad(W)}
            where = [_mode_location(m[0], W, X, labels) for m in modes[:3]]
            norms = np.linalg.norm(W, axis=0)
            info = column_structure(W, W, X, labels)
            mixed = np.flatnonzero(info.cluster_of_column == MIXED)
            return {"eigenvalues": values}, {
                "seconds": time.perf_counter() - tick, "eigenvalues": values.tolist(),
                "lowest_modes": where, "n_live": int(live.sum()), "n_mixed": int(mixed.size),
                "mixed_column_norms": np.sort(norms[mixed]).tolist(),
                "other_column_norms_median": float(np.median(np.delete(norms, mixed))),
                "rel_grad": rel_grad(W)}
        _, summary["spectrum"] = _stage(args, "spectrum", spectrum)
    if "newton" in stages and W is not None:
        def newton():
            out = newton_polish(X, W, W, SIGMA, lam, tied=True, gtol=1e-8, max_time=args.newton_time)
            info = column_structure(out.W1, out.W1, X, labels)
            return {"W": out.W1}, {"seconds": out.wall_time, "loss": out.loss, "rel_grad": out.rel_grad_norm,
                                   "converged": out.converged, "n_iter": out.n_iter, "n_hvp": out.n_hvp,
                                   "message": out.message, "history": out.history[-5:],
                                   "n_mixed": info.n_mixed, "n_zero": info.n_zero}
        arrays, summary["newton"] = _stage(args, "newton", newton)
        W = arrays["W"]
    if "certify" in stages and W is not None:
        def run_certify():
            tick = time.perf_counter()
            report = certify(W, W, X, SIGMA, lam, hessp=exact_hessp, progress=False)
            return {"eigenvalues": report.eigenvalues}, {
                "seconds": time.perf_counter() - tick, "verdict": report.verdict, "summary": report.summary(),
                "eigenvalues": report.eigenvalues.tolist(), "lambda_max": report.lambda_max,
                "n_hvp": report.n_hvp, "notes": report.notes}
        _, summary["certify"] = _stage(args, "certify", run_certify)
    if "protocol" in stages:
        def protocol():
            from numerics.protocol import train_protocol

            run = train_protocol(X, P, SIGMA, optimizer="adam", lr=1e-4, weight_decay=WD, batch_size=256,
                                 steps=args.steps, seed=0, tied=True, init=W0, exact_loss=False, progress=False)
            return {"W": run.W1}, {"seconds": run.wall_time, "exact_loss": float(expected_loss(run.W1, run.W1, X, SIGMA, lam)),
                                   "rel_grad": rel_grad(run.W1), "steps": args.steps}
        _, summary["protocol"] = _stage(args, "protocol", protocol)
    if "theory" in stages and "protocol" not in summary and args.protocol_loss is not None:
        summary["protocol"] = {"exact_loss": args.protocol_loss, "seconds": args.protocol_seconds,
                               "source": "given on the command line (--protocol-loss, --protocol-seconds)"}
    if "theory" in stages and "protocol" in summary:
        def theory():
            from theory.predict import predict

            target = summary["protocol"]["exact_loss"]
            tick = time.perf_counter()
            prediction = predict(X, labels, P, SIGMA, lam, check_assumptions=False)
            predict_seconds = time.perf_counter() - tick
            predicted_loss = float(expected_loss(prediction.W, prediction.W, X, SIGMA, lam))
            fit = train(X, P, SIGMA, lam, tied=True, init=prediction.W, polish=dict(hessp=exact_hessp),
                        max_time=args.newton_time, progress=False)
            reached = next((seconds for _, seconds, loss, _ in fit.history if loss <= target), None)
            to_target = None if reached is None else predict_seconds + reached
            if predicted_loss <= target:
                to_target = predict_seconds
            return {"W": fit.W1}, {
                "predict_seconds": predict_seconds, "predicted_exact_loss": predicted_loss,
                "p_per_cluster": list(prediction.p_per_cluster), "train_seconds": fit.wall_time,
                "loss": fit.loss, "rel_grad": fit.rel_grad_norm, "converged": fit.converged,
                "seconds_to_protocol_loss": to_target,
                "speedup_vs_protocol": None if to_target is None else summary["protocol"]["seconds"] / to_target}
        _, summary["theory"] = _stage(args, "theory", theory)
    path = Path(args.out) / "summary.json"
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(summary, indent=1, default=str))
    os.replace(temporary, path)
    print(f"written {path}")


if __name__ == "__main__":
    main()
