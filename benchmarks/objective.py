"""Exact loss-and-gradient vs one NumPy Monte-Carlo step vs a vectorised SciPy closed form.

Paper scale (d = 1024, p = 100, n = 10,000, σ = 0.2) on a 4-component Gaussian mixture
with low-rank covariances, at random weights and at the block solution of eq. (8)
(25 neurons per cluster). Methods: the exact loss and gradient (``exact``), the exact loss
alone (``exact_loss``), one Monte-Carlo loss-and-gradient pass with one noise draw per
sample (``monte_carlo``, the authors' estimator) and the SciPy baseline. Each (method,
weights) pair runs in its own subprocess, so the peak resident memory reported is that
method's alone (data, libraries and all). Times are the best of ``--repeats`` calls after
one warm-up call (numba compilation excluded; the compile time is reported separately).
The 1-minute load average before each measurement is printed next to it: timings taken
while other processes use the cores are not comparable. Writes a JSON record next to the
printed table.

    python benchmarks/objective.py            # full paper scale (~3 min on 2 cores)
    python benchmarks/objective.py --n 2000   # smaller
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _instance(args, weights):
    import numpy as np

    from numerics.data import gaussian_mixture
    from theory.predict import partition_weights

    mixture = gaussian_mixture(d=args.d, K=args.clusters, rank=args.rank, n=args.n,
                               mean_norm=args.mean_norm, spread=args.spread, seed=0)
    X = mixture.X
    if weights == "random":
        rng = np.random.default_rng(1)
        W1 = rng.normal(size=(args.d, args.p)) / np.sqrt(args.d)
        W2 = rng.normal(size=(args.d, args.p)) / np.sqrt(args.d)
    else:
        W1 = partition_weights(X, mixture.labels, [args.p // args.clusters] * args.clusters,
                               args.sigma, 0.0)
        W2 = W1
    return X, W1, W2


def _worker(args):
    """Run one (method, weights) measurement and print a JSON line."""
    X, W1, W2 = _instance(args, args.weights)
    X = X[:, :: max(1, X.shape[1] // args.timed_samples)][:, : args.timed_samples]
    if args.method == "exact":
        from numerics.objective import expected_loss_and_grad as call
    elif args.method == "exact_loss":
        from numerics.objective import expected_loss

        def call(*arguments):
            return (expected_loss(*arguments),)
    elif args.method == "monte_carlo":
        from numerics.objective import monte_carlo_loss_and_grad as call
    else:
        sys.path.insert(0, str(HERE))
        from scipy_closed_form import loss_and_grad as call
    load = os.getloadavg()[0]
    start = time.perf_counter()
    loss = call(W1, W2, X, args.sigma)[0]
    first = time.perf_counter() - start
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        call(W1, W2, X, args.sigma)
        times.append(time.perf_counter() - start)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"method": args.method, "weights": args.weights, "seconds": min(times),
                      "first_call_seconds": first, "peak_mib": peak_mib, "loss": float(loss),
                      "load_before": load, "load_after": os.getloadavg()[0]}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--d", type=int, default=1024)
    parser.add_argument("--p", type=int, default=100)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--sigma", type=float, default=0.2)
    parser.add_argument("--clusters", type=int, default=4)
    parser.add_argument("--rank", type=int, default=40)
    parser.add_argument("--mean-norm", type=float, default=16.0)
    parser.add_argument("--spread", type=float, default=0.05)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--scipy-samples", type=int, default=500,
                        help="the SciPy baseline is timed on this many (evenly spaced) "
                             "samples and scaled linearly to n (its cost is linear in n)")
    parser.add_argument("--output", default="benchmarks/results/objective.json")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--timed-samples", type=int, default=10**9, help=argparse.SUPPRESS)
    parser.add_argument("--method", default="exact", help=argparse.SUPPRESS)
    parser.add_argument("--weights", default="random", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker(args)
        return

    rows = []
    for weights in ["random", "block"]:
        for method in ["exact", "exact_loss", "monte_carlo", "scipy"]:
            n = min(args.n, args.scipy_samples) if method == "scipy" else args.n
            command = [sys.executable, __file__, "--worker", "--method", method,
                       "--weights", weights, "--timed-samples", str(n), "--n", str(args.n),
                       "--d", str(args.d),
                       "--p", str(args.p), "--sigma", str(args.sigma),
                       "--clusters", str(args.clusters), "--rank", str(args.rank),
                       "--mean-norm", str(args.mean_norm), "--spread", str(args.spread),
                       "--repeats", str(1 if method == "scipy" else args.repeats)]
            result = json.loads(subprocess.run(command, check=True, capture_output=True,
                                               text=True).stdout.strip().splitlines()[-1])
            result["seconds_at_n"] = result["seconds"] * args.n / n
            result["timed_samples"] = n
            rows.append(result)
            print(f"{weights:7s} {method:12s} {result['seconds_at_n']:9.3f} s "
                  f"(first call {result['first_call_seconds']:.2f} s on {n} samples) "
                  f"peak {result['peak_mib']:7.0f} MiB  loss {result['loss']:.6g}  "
                  f"load {result['load_before']:.2f}", flush=True)

    print("\n| weights | exact/MC (loss + gradient) | exact loss alone/MC | SciPy/exact | "
          "exact peak MiB | load during the runs |")
    print("|---|---:|---:|---:|---:|---|")
    summary = {}
    for weights in ["random", "block"]:
        by = {r["method"]: r for r in rows if r["weights"] == weights}
        ratio = by["exact"]["seconds_at_n"] / by["monte_carlo"]["seconds_at_n"]
        loss_ratio = by["exact_loss"]["seconds_at_n"] / by["monte_carlo"]["seconds_at_n"]
        speedup = by["scipy"]["seconds_at_n"] / by["exact"]["seconds_at_n"]
        loads = [r[key] for r in by.values() for key in ("load_before", "load_after")]
        summary[weights] = {"exact_over_monte_carlo": ratio, "exact_loss_over_monte_carlo": loss_ratio,
                            "scipy_over_exact": speedup, "exact_peak_mib": by["exact"]["peak_mib"],
                            "load_range": [min(loads), max(loads)]}
        print(f"| {weights} | {ratio:.2f}× | {loss_ratio:.2f}× | {speedup:.0f}× | "
              f"{by['exact']['peak_mib']:.0f} | {min(loads):.2f}–{max(loads):.2f} |")
    record = {"parameters": {k: v for k, v in vars(args).items()
                             if k not in ("worker", "method", "weights", "output")},
              "cpu_count": os.cpu_count(), "rows": rows, "summary": summary}
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    temporary = output.with_suffix(".tmp")
    temporary.write_text(json.dumps(record, indent=2))
    os.replace(temporary, output)  # atomic: a reader never sees half a file
    print(f"\nwritten {output}")


if __name__ == "__main__":
    main()
