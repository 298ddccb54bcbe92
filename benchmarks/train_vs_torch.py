"""This package's exact `train` + `certify` versus the authors' PyTorch protocol, side by side.

Paper scale (d = 1024, p = 100, σ = 0.2, tied weights as in the authors' code):

* **memorisation**: n = 5 faces (``skimage`` LFW subset, 32 × 32, in [−1, 1]); authors:
  RMSprop lr 1e-3, weight_decay 1e-2, full batch, 50,000 steps;
* **generalisation**: n = 10,000 samples of a d = 1024 Gaussian mixture (10 simplex means,
  rank-5 covariances, within-cluster spread 0.3, or 0.05 for ``gen-tight``); authors: Adam
  lr 1e-4, weight_decay 1e-4, batch 256, 50,000 steps.

Both sides start from the same PyTorch-default initialisation. `train` works in the exact
invariant basis of `numerics.geometry.invariant_basis` (data span + initial weights: 105 and
159 coordinates instead of 1024); for the mixture it first takes 15,000 float32 Adam steps
(batch 256, lr decaying linearly from 3e-3 to 0) on one-draw Monte-Carlo minibatch
gradients in that basis, then exact L-BFGS and a trust-region Newton polish to
``‖∇L‖/L0 ≤ 1e-8`` or ``--max-time``. This runs inside `numerics.escape.train_to_minimum`,
which then sets columns too short for `certify` to zero, certifies, and steps off any
saddle it finds and trains again (up to 3 times). "wall time" is the first `train`;
"time to protocol's loss" is when its exact loss first fell to the protocol's final
exact loss, and "speed-up" is the protocol's wall time over it; "certify" is the total
certification time and "to certified minimum" the whole `train_to_minimum` call, when it
ends at a minimum. The protocol is run in
PyTorch (CPU, float32 as in the authors' notebooks, 2 threads) in a subprocess — torch is
only a benchmark extra; if it is not importable here, pass ``--torch-python`` (or set
``BENCH_TORCH_PYTHON``) to an interpreter that has it. The same protocol in this package's
NumPy implementation (`numerics.protocol`) can be added with ``--numpy-protocol``. Every
final weight is scored by the exact loss eq. (6) with ``λ = d·wd/4`` (tied; see
`numerics.protocol`), its relative gradient norm, and `certify`'s verdict.

Timings: wall clock of the optimisation loop; numba compilation is excluded (done before,
reported separately); the protocol's ``certify`` is timed separately. Runs are sequential,
so each gets both cores. Writes ``benchmarks/results/train_vs_torch.json`` and prints a Markdown table.

With ``--methods theory`` (or ``train,theory``) the theory-guided start is a row too
(`_theory_row`): `theory.predict.predict`, then `train_to_minimum` from the prediction and
`certify`, timed from before `predict` to the protocol's final loss.

    python benchmarks/train_vs_torch.py                     # all three cases, 50,000 steps
    python benchmarks/train_vs_torch.py --case mem --steps 5000
    python benchmarks/train_vs_torch.py --methods theory --max-time 300
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

CASES = {
    "mem": dict(label="memorisation (n = 5 faces)", optimizer="rmsprop", lr=1e-3, weight_decay=1e-2,
                batch_size=None, warmup=0),
    "gen": dict(label="generalisation (n = 10,000, d = 1024 mixture)", optimizer="adam", lr=1e-4,
                weight_decay=1e-4, batch_size=256, warmup=15_000, warmup_lr=3e-3),
    "gen-tight": dict(label="generalisation (n = 10,000, d = 1024 mixture, spread 0.05)", optimizer="adam",
                      lr=1e-4, weight_decay=1e-4, batch_size=256, warmup=15_000, warmup_lr=3e-3),
}
# Within-cluster spread of the mixtures: 0.3 ("gen") lets neurons straddle clusters; 0.05
# ("gen-tight") gives the separated, stable-mask regime that Thm. 3.1 assumes.
SPREAD = {"gen": 0.3, "gen-tight": 0.05}
D, P, SIGMA = 1024, 100, 0.2


def _data(case):
    import numpy as np

    from numerics.data import gaussian_mixture
    from numerics.images import faces

    if case == "mem":
        return faces(n=5, size=32, seed=0).X, None
    mixture = gaussian_mixture(d=D, K=10, rank=5, n=10_000, mean_norm=float(np.sqrt(0.3 * D)),
                               spread=SPREAD[case], seed=0)
    return mixture.X, mixture.labels


def eq8_deviation(W, X, labels, lam):
    """Relative Frobenius distance of each cluster's map W_k W_kᵀ to eq. (8), as {cluster: value}.

    Columns are assigned to clusters by `column_structure` (mixed columns to none). Eq. (8)
    keeps the top directions with ``Λ_j > nλ`` (Lemma D.1's scale is positive only there),
    at most as many as the cluster has neurons; None for a cluster no neuron serves.
    """
    import numpy as np

    from numerics.compare import cluster_maps, column_structure
    from theory.predict import block_linear_map

    n = X.shape[1]
    counts = column_structure(W, W, X, labels).neurons_per_cluster
    out = {}
    for k, A in cluster_maps(W, W, X, labels, rule="owner").items():
        X_k = X[:, labels == k]
        kept = min(counts[k], int(np.sum(np.linalg.eigvalsh(X_k @ X_k.T) > n * lam)))
        if kept == 0:               # no neuron serves the cluster: eq. (8) predicts the zero map
            out[int(k)] = None
            continue
        predicted = block_linear_map(X_k, kept, n, SIGMA, lam)
        out[int(k)] = float(np.linalg.norm(A - predicted) / np.linalg.norm(predicted))
    return out


def _torch_worker(args):
    """Run the authors' loop in PyTorch on the saved data/init; write weights and time."""
    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    saved = np.load(args.torch_worker)
    X = torch.tensor(saved["X"].T.copy(), dtype=torch.float32)          # (n, d) rows
    W = torch.nn.Parameter(torch.tensor(saved["W0"], dtype=torch.float32))   # (d, p), tied
    spec = CASES[args.case]
    if spec["optimizer"] == "rmsprop":
        opt = torch.optim.RMSprop([W], lr=spec["lr"], weight_decay=spec["weight_decay"])
    else:
        opt = torch.optim.Adam([W], lr=spec["lr"], weight_decay=spec["weight_decay"])
    mse = torch.nn.MSELoss()
    n = X.shape[0]
    batch = n if spec["batch_size"] is None else spec["batch_size"]
    order, position = torch.randperm(n), 0
    start = time.perf_counter()
    for _ in range(args.steps):
        if batch >= n:
            xb = X
        else:
            if position >= n:
                order, position = torch.randperm(n), 0
            xb = X[order[position:position + batch]]
            position += batch
        noisy = xb + SIGMA * torch.randn_like(xb)
        out = torch.relu(noisy @ W) @ W.T
        loss = mse(out, xb)
        opt.zero_grad()
        loss.backward()
        opt.step()
    elapsed = time.perf_counter() - start
    np.savez(args.torch_out, W=W.detach().double().numpy())
    print(json.dumps({"time": elapsed, "last_minibatch_loss": float(loss)}))


def _torch_python(args):
    if args.torch_python:
        return args.torch_python
    if os.environ.get("BENCH_TORCH_PYTHON"):
        return os.environ["BENCH_TORCH_PYTHON"]
    try:
        import torch  # noqa: F401
        return sys.executable
    except ImportError:
        return None


def _score(W, X, lam):
    from numerics.certify import certify
    from numerics.objective import expected_loss_and_grad
    from numerics.geometry import loss_scale

    loss, g1, g2 = expected_loss_and_grad(W, W, X, SIGMA, lam)
    out = {"exact_loss": float(loss), "rel_grad": float(((g1 + g2) ** 2).sum() ** 0.5 / loss_scale(X))}
    tick = time.perf_counter()
    report = certify(W, W, X, SIGMA, lam)
    out.update(verdict=report.verdict, certify_time=time.perf_counter() - tick,
               min_eig=report.min_eigenvalue, zero_columns=len(report.zero_columns))
    return out


def _minimum_fields(out, X, labels, lam, target, protocol_time, *, before=0.0, start_loss=None):
    """What a `train_to_minimum` row reports, shared by `_train_row` and `_theory_row`.

    ``before``: seconds spent before `train_to_minimum` started (counted in every time);
    ``start_loss``: the exact loss at its start when that counts as reaching the protocol's.
    "Time to the protocol's loss" is ``before`` when ``start_loss`` is already at or below the
    protocol's final loss, else ``before`` plus the first fit's time to get there.
    """
    from numerics.compare import column_structure

    fit, first = out.fit, out.fits[0]
    reached = speedup = None
    if target is not None:
        if start_loss is not None and start_loss <= target:
            reached = before
        else:
            during = next((seconds for _, seconds, loss, _ in first.history if loss <= target), None)
            reached = None if during is None else before + during
        if reached is not None:
            speedup = protocol_time / reached
    info = column_structure(fit.W1, fit.W1, X, labels)
    fields = dict(time=before + first.wall_time, time_to_protocol_loss=reached, speedup=speedup,
                  time_to_certified=before + out.wall_time if out.certified else None,
                  certify_time=sum(r["certify_time"] for r in out.rounds), rounds=out.rounds,
                  escapes=out.n_escapes, steps=sum(f.n_iter for f in out.fits), converged=fit.converged,
                  n_memorized=info.n_memorized, n_zero=info.n_zero, verdict=out.report.verdict,
                  min_eig=out.report.min_eigenvalue, zero_columns=len(out.report.zero_columns),
                  exact_loss=out.report.loss, rel_grad=out.report.rel_grad_norm)
    if labels is not None:
        fields["eq8_deviation"] = eq8_deviation(fit.W1, X, labels, lam)
        fields["n_mixed"] = info.n_mixed
    return fields


def _train_row(case, spec, X, labels, lam, W0, target, rows, args):
    """`train_to_minimum` from the protocol's initialisation (MC warm-up for the mixtures)."""
    from numerics.escape import train_to_minimum

    out = train_to_minimum(X, P, SIGMA, lam, tied=True, init=W0,
                           warmup=dict(steps=spec["warmup"], lr=spec.get("warmup_lr", 3e-3)), max_time=args.max_time,
                           progress=args.progress)
    method = "train_to_minimum (exact L-BFGS" + (f" after {spec['warmup']} MC Adam warm-up steps"
                                                 if spec["warmup"] else "") + ")"
    row = dict(case=case, method=method, stages=out.fits[0].stages,
               **_minimum_fields(out, X, labels, lam, target, rows[0]["time"]))
    print(json.dumps(row, default=str), flush=True)
    return row


def _theory_row(case, X, labels, lam, target, rows, args):
    """The theory-guided start: `theory.predict.predict` (allocation rule, eq. (8)/(9) blocks),
    scored by the exact loss, then `train_to_minimum` from it (no warm-up) and `certify`.

    Its clock starts before `predict` and includes the exact loss at the prediction, so "time
    to the protocol's loss" is `predict` + that evaluation when the prediction is already at
    or below the protocol's final loss, else that plus `train`'s time to get there.
    """
    import warnings

    import numpy as np

    from numerics.escape import train_to_minimum
    from numerics.objective import expected_loss
    from theory.errors import AssumptionWarning
    from theory.predict import predict

    tick = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AssumptionWarning)      # recorded below instead
        prediction = predict(X, np.arange(X.shape[1]) if labels is None else labels, P, SIGMA, lam,
                             check_assumptions=False)
    predicted_loss = float(expected_loss(prediction.W, prediction.W, X, SIGMA, lam))
    predict_time = time.perf_counter() - tick
    out = train_to_minimum(X, P, SIGMA, lam, tied=True, init=prediction.W, max_time=args.max_time,
                           progress=args.progress)
    row = dict(case=case, method="theory-guided start (predict, then train_to_minimum)",
               predict_time=predict_time, predicted_loss=predicted_loss, block_formula_loss=prediction.loss,
               p_per_cluster=list(prediction.p_per_cluster), assumptions_failed=list(prediction.assumptions.failed),
               **_minimum_fields(out, X, labels, lam, target, rows[0]["time"], before=predict_time,
                                 start_loss=predicted_loss))
    print(json.dumps(row, default=str), flush=True)
    return row


def run_case(case, args):
    import numpy as np

    from numerics.objective import expected_loss
    from numerics.protocol import (
        lambda_from_weight_decay,
        torch_default_init,
        train_protocol,
    )
    from numerics.compare import column_structure

    spec = CASES[case]
    X, labels = _data(case)
    d, n = X.shape
    lam = lambda_from_weight_decay(spec["weight_decay"], d, tied=True)
    W0, _ = torch_default_init(d, P, tied=True, seed=0)
    rows = []

    tick = time.perf_counter()
    expected_loss(W0[:, :2], W0[:, :2], X[:, :3], SIGMA, lam)          # numba compilation
    compile_time = time.perf_counter() - tick

    python = _torch_python(args)
    if python is None:
        rows.append(dict(case=case, method="PyTorch protocol", skipped="torch not available"))
    else:
        with tempfile.TemporaryDirectory() as folder:
            data_file = os.path.join(folder, "data.npz")
            out_file = os.path.join(folder, "out.npz")
            np.savez(data_file, X=X, W0=W0)
            env = dict(os.environ, PYTHONPATH=str(ROOT))
            done = subprocess.run([python, __file__, "--case", case, "--steps", str(args.steps),
                                   "--threads", str(args.threads), "--torch-worker", data_file,
                                   "--torch-out", out_file], env=env, capture_output=True, text=True)
            if done.returncode != 0:
                raise RuntimeError(done.stderr)
            timing = json.loads(done.stdout.strip().splitlines()[-1])
            W = np.load(out_file)["W"]
        score = _score(W, X, lam)
        info = column_structure(W, W, X)
        rows.append(dict(case=case, method=f"PyTorch protocol ({spec['optimizer']}, {args.steps} steps)",
                         time=timing["time"], steps=args.steps, n_memorized=info.n_memorized,
                         n_zero=info.n_zero, **score))
    print(json.dumps(rows[-1], default=str), flush=True)

    target = min((r["exact_loss"] for r in rows if "exact_loss" in r), default=None)
    if "train" in args.methods:
        rows.append(_train_row(case, spec, X, labels, lam, W0, target, rows, args))
    if "theory" in args.methods:
        rows.append(_theory_row(case, X, labels, lam, target, rows, args))

    if args.numpy_protocol:
        run = train_protocol(X, P, SIGMA, optimizer=spec["optimizer"], lr=spec["lr"],
                             weight_decay=spec["weight_decay"], batch_size=spec["batch_size"],
                             steps=args.steps, seed=0, tied=True, init=W0, exact_loss=False,
                             progress=args.progress)
        score = _score(run.W1, X, lam)
        info = column_structure(run.W1, run.W1, X)
        rows.append(dict(case=case, method=f"numerics.protocol ({spec['optimizer']}, {args.steps} steps)",
                         time=run.wall_time, steps=args.steps, n_memorized=info.n_memorized,
                         n_zero=info.n_zero, **score))
        print(json.dumps(rows[-1], default=str), flush=True)
    for row in rows:
        row.update(compile_time=compile_time, lam=lam, n=n, d=d)
    return rows


def table(rows) -> str:
    lines = ["| case | method | wall time (s) | time to protocol's loss (s) | speed-up | certify (s) | "
             "to certified minimum (s) | exact loss eq. (6) | ‖∇L‖/L0 | verdict |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---|"]

    def seconds(value, suffix=""):
        return "—" if value is None else f"{value:.1f}{suffix}"

    for r in rows:
        if "skipped" in r:
            lines.append(f"| {r['case']} | {r['method']} | — | — | — | — | — | — | — | {r['skipped']} |")
            continue
        verdict = r.get("verdict", "")
        if r.get("escapes"):
            verdict += f" (after {r['escapes']} saddle escape{'s' if r['escapes'] > 1 else ''})"
        lines.append(f"| {CASES[r['case']]['label']} | {r['method']} | {r['time']:.1f} | "
                     f"{seconds(r.get('time_to_protocol_loss'))} | {seconds(r.get('speedup'), '×')} | "
                     f"{seconds(r.get('certify_time'))} | {seconds(r.get('time_to_certified'))} | "
                     f"{r['exact_loss']:.8g} | {r['rel_grad']:.1e} | {verdict} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=[*CASES, "both", "all"], default="all",
                        help="'both' = mem and gen; 'all' adds gen-tight")
    parser.add_argument("--steps", type=int, default=50_000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-time", type=float, default=600.0, help="cap for train (seconds)")
    parser.add_argument("--numpy-protocol", action="store_true")
    parser.add_argument("--methods", default="train",
                        help="comma-separated rows besides the protocol: 'train' (from the protocol's "
                             "initialisation), 'theory' (the theory-guided start)")
    parser.add_argument("--torch-python", default=None)
    parser.add_argument("--progress", action="store_true", default=None)
    parser.add_argument("--out", default=str(HERE / "results" / "train_vs_torch.json"))
    parser.add_argument("--torch-worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--torch-out", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.methods = set(args.methods.split(","))
    if not args.methods <= {"train", "theory"}:
        parser.error(f"--methods takes 'train' and/or 'theory'; got {sorted(args.methods)}")
    if args.torch_worker:
        _torch_worker(args)
        return
    sys.path.insert(0, str(ROOT))
    rows = []
    cases = {"both": ["mem", "gen"], "all": list(CASES)}.get(args.case, [args.case])
    for case in cases:
        rows += run_case(case, args)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as stream:
        json.dump({"rows": rows, "argv": sys.argv[1:], "when": time.strftime("%Y-%m-%d %H:%M")},
                  stream, indent=1, default=str)
    print(table(rows))


if __name__ == "__main__":
    main()
