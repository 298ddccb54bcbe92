"""A phase-diagram sweep at d = 1024 on a Dask LocalCluster with 1 and 2 workers, side by side.

Each cell (σ, p) is what the phase diagram of ``figures/phase.py`` computes at small d, here
at d = 1024: data = one Gaussian mode (``--n-mode`` samples, rank 3) and one point
duplicated ``--copies`` times at the antipode; the allocation rule's prediction
(`theory.allocation.allocate`); ``--starts`` random starts and one start from the rule's
block point (eq. (8), perturbed by 5 %), each trained on the exact loss eq. (6), tied
(`numerics.training.train`); the regime of the lowest loss found. The cells are the tasks of
one `numerics.sweep.sweep` (seeded per cell, one BLAS/numba thread per task), run:

1. on a LocalCluster with 1 worker, 2. with 2 workers (3. optionally on 2 loky processes,
``--processes``), each into a fresh cache folder; then 4. the 2-worker sweep again on its
filled cache (a resumed sweep computes nothing).

Reported per run: wall time of the sweep (the LocalCluster's start-up apart; loky starts
its processes inside the sweep, so its wall time includes them), the sum of the cells' own
compute times, speed-up and scaling efficiency ``T1 / (workers · Tw)``, the machine's
1-minute load average and busy CPU share sampled during the run, and whether every run gave
bit-identical cells. Since other work on the machine takes cores away, the script first
and last measures how many cores two CPU-bound processes got at that moment
(`parallel_capacity`, a snapshot: the load changes during a run). Results go to ``benchmarks/results/phase_diagram_dask.json``.

    python benchmarks/phase_diagram_dask.py --processes         # 48 cells, about 10-20 min on 2 cores
    python benchmarks/phase_diagram_dask.py --sigmas 0.1 1.0 --ps 1 2 --n-mode 100   # a quick look
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from numerics.compare import column_structure  # noqa: E402
from numerics.data import duplicated_samples, equiangular_means, gaussian_mixture  # noqa: E402
from numerics.sweep import sweep  # noqa: E402
from numerics.training import train  # noqa: E402
from theory.allocation import allocate  # noqa: E402
from theory.predict import predict  # noqa: E402

D, RANK, LAM = 1024, 3, 1e-3
MODE_NORM, DUPLICATE_NORM, SPREAD = 3.0, 1.5, 0.15     # as figures/phase.py
SOLVER = dict(tied=True, gtol=1e-7, max_iter=3000, progress=False)


def dataset(n_mode: int, n_copies: int, seed: int):
    """The mode (label 0) plus n_copies copies of the antipodal point (label 1), X of shape (D, n_mode + n_copies)."""
    vertices = equiangular_means(D, 2, None, [MODE_NORM, DUPLICATE_NORM], seed)
    mode = gaussian_mixture(D, 1, RANK, n_mode, means=vertices[:, :1], spread=SPREAD, decay=1.0, seed=seed)
    return duplicated_samples(mode, n_copies=n_copies, points=vertices[:, 1:])


def cell(X, labels, p, sigma, starts, seed):
    """One (σ, p) cell: the rule's allocation, the best of `starts` random starts and the rule's own start."""
    tick = time.perf_counter()
    rule = allocate(X, labels, p, sigma, LAM)
    seeds = np.random.SeedSequence(seed).generate_state(starts)
    fits = [train(X, p, sigma, LAM, seed=int(s), **SOLVER) for s in seeds]
    block = predict(X, labels, p, sigma, LAM, check_assumptions=False).W
    from_rule = train(X, p, sigma, LAM, seed=seed, init=block, perturb=0.05, **SOLVER)
    best = min(fits, key=lambda fit: fit.loss)
    lowest = min([best, from_rule], key=lambda fit: fit.loss)
    neurons = column_structure(lowest.W1, lowest.W2, X, labels).neurons_per_cluster
    return dict(p=p, sigma=sigma, predicted=tuple(rule.p_per_cluster), losses=[fit.loss for fit in fits],
                rule_start_loss=from_rule.loss, lowest_neurons=(neurons.get(0, 0), neurons.get(1, 0)),
                agrees=(neurons.get(0, 0), neurons.get(1, 0)) == tuple(rule.p_per_cluster),
                iterations=[fit.n_iter for fit in fits] + [from_rule.n_iter], seconds=time.perf_counter() - tick)


def spin(iterations: int, start_at: float) -> tuple:
    """Pure-Python CPU work (no memory traffic, no threads) begun at wall-clock ``start_at``: (start, end)."""
    time.sleep(max(0.0, start_at - time.time()))
    start = time.time()
    total = 0
    for k in range(iterations):
        total += k * k % 7
    return start, time.time()


def parallel_capacity(iterations: int = 20_000_000, lead: float = 30.0) -> dict:
    """How many cores two CPU-bound processes really get now: 2 · T(one alone) / T(each of two at once).

    The two start together at a wall-clock time ``lead`` seconds ahead (after their processes
    have started); ``overlap`` is the share of their run they spent side by side.
    """
    start, end = sweep(spin, [dict(iterations=iterations, start_at=0.0)], workers=1, progress=False).results[0]
    one = end - start
    pair = sweep(spin, [dict(iterations=iterations, start_at=time.time() + lead)] * 2, workers=2,
                 progress=False).results
    both = float(np.mean([end - start for start, end in pair]))
    overlap = (min(end for _, end in pair) - max(start for start, _ in pair)) / both
    return dict(one_alone=one, each_of_two=both, overlap=overlap, cores=2 * one / both)


class LoadMonitor:
    """Samples the 1-minute load average and the machine's busy CPU share every `every` seconds."""

    def __init__(self, every: float = 2.0):
        import psutil

        self.psutil, self.every = psutil, every
        self.loads, self.busy = [], []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        self.psutil.cpu_percent(interval=None)
        while not self._stop.wait(self.every):
            self.loads.append(os.getloadavg()[0])
            self.busy.append(self.psutil.cpu_percent(interval=None))

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def summary(self) -> dict:
        loads = self.loads or [os.getloadavg()[0]]
        busy = self.busy or [float("nan")]
        return dict(load_mean=float(np.mean(loads)), load_max=float(np.max(loads)),
                    busy_cpu_percent=float(np.mean(busy)))


def timed_sweep(label, tasks, shared, executor, workers, cache):
    with LoadMonitor() as monitor:
        out = sweep(cell, tasks, shared=shared, seed=0, executor=executor, workers=workers, cache_dir=cache,
                    desc=label)
    record = dict(run=label, executor=out.executor, workers=workers, wall=out.wall_time,
                  computed=len(out.computed), cell_seconds=float(sum(r["seconds"] for r in out.results)),
                  **monitor.summary())
    print(f"  {label:28s} {out.wall_time:8.1f} s wall, {len(out.computed):2d} cells computed, "
          f"load {record['load_mean']:.1f} (max {record['load_max']:.1f}), CPU busy {record['busy_cpu_percent']:.0f} %",
          flush=True)
    return out, record


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sigmas", type=float, nargs="+", default=[0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.7, 1.0])
    parser.add_argument("--ps", type=int, nargs="+", default=[1, 2, 3, 4, 5, 6])
    parser.add_argument("--n-mode", type=int, default=400)
    parser.add_argument("--copies", type=int, default=10)
    parser.add_argument("--starts", type=int, default=4)
    parser.add_argument("--processes", action="store_true", help="also time 2 local (loky) processes")
    parser.add_argument("--out", default=str(HERE / "results" / "phase_diagram_dask.json"))
    args = parser.parse_args(argv)
    import distributed

    data = dataset(args.n_mode, args.copies, seed=0)
    shared = dict(X=data.X, labels=data.labels)
    tasks = [dict(p=p, sigma=s, starts=args.starts) for p in args.ps for s in args.sigmas]
    print(f"{len(tasks)} cells (sigma x p) at d = {D}, n = {data.X.shape[1]} ({args.n_mode} + {args.copies} copies), "
          f"{args.starts} random starts + the rule's start each; {os.cpu_count()} CPUs, load before "
          f"{os.getloadavg()[0]:.1f}", flush=True)
    before = parallel_capacity()
    print(f"machine now: a CPU-bound task alone {before['one_alone']:.1f} s, each of two at once "
          f"{before['each_of_two']:.1f} s (overlap {before['overlap']:.0%}) -> {before['cores']:.2f} cores "
          f"available to a 2-way run", flush=True)
    folder = Path(tempfile.mkdtemp(prefix="phase-dask-"))
    runs, outs = [], {}
    for workers in (1, 2):
        tick = time.perf_counter()
        with distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                      dashboard_address=":0") as cluster, distributed.Client(cluster) as client:
            startup = time.perf_counter() - tick
            out, record = timed_sweep(f"LocalCluster, {workers} worker(s)", tasks, shared, client, workers,
                                      str(folder / f"dask{workers}"))
            record["cluster_startup"] = startup
            if workers == 2:
                _, resumed = timed_sweep("  same, resumed from cache", tasks, shared, client, workers,
                                         str(folder / "dask2"))
        runs.append(record)
        outs[record["run"]] = out
    if args.processes:
        out, record = timed_sweep("loky, 2 local processes", tasks, shared, None, 2, str(folder / "loky2"))
        runs.append(record)
        outs[record["run"]] = out
    reference = next(iter(outs.values())).results
    identical = all([r["losses"] + [r["rule_start_loss"]] for r in out.results] ==
                    [r["losses"] + [r["rule_start_loss"]] for r in reference] for out in outs.values())
    one = runs[0]["wall"]
    for record in runs:
        record["speedup"] = one / record["wall"]
        record["efficiency"] = one / (record["workers"] * record["wall"])
    print(f"\n{'run':28s} {'start-up s':>10s} {'wall s':>8s} {'cells s':>8s} {'speed-up':>8s} {'efficiency':>10s} "
          f"{'load mean/max':>13s} {'CPU busy':>8s}")
    for record in runs:
        startup = f"{record['cluster_startup']:10.1f}" if "cluster_startup" in record else f"{'in wall':>10s}"
        print(f"{record['run']:28s} {startup} {record['wall']:8.1f} {record['cell_seconds']:8.1f} "
              f"{record['speedup']:8.2f} {record['efficiency']:10.0%} "
              f"{record['load_mean']:7.1f}/{record['load_max']:<5.1f} {record['busy_cpu_percent']:7.0f}%")
    print(f"resumed from cache: {resumed['computed']} cells computed in {resumed['wall']:.1f} s; "
          f"bit-identical cells on every run: {identical}")
    after = parallel_capacity()
    print(f"cores available to a 2-way run: {before['cores']:.2f} before, {after['cores']:.2f} after "
          f"(2.00 on an idle machine)")
    agreement = float(np.mean([r["agrees"] for r in reference]))
    print(f"allocation rule vs lowest loss found: {agreement:.0%} of cells agree")
    payload = dict(d=D, n=int(data.X.shape[1]), n_mode=args.n_mode, copies=args.copies, starts=args.starts,
                   sigmas=args.sigmas, ps=args.ps, lam=LAM, solver=SOLVER, cpus=os.cpu_count(), runs=runs,
                   resumed=resumed, identical=identical, agreement=agreement,
                   capacity_before=before, capacity_after=after,
                   cells=[{k: v for k, v in r.items()} for r in reference])
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as stream:
        json.dump(payload, stream, indent=1, default=lambda v: v.item() if hasattr(v, "item") else str(v))
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
