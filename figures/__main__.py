"""Command line: ``python -m figures [NAME ...] [--fast] [--output DIR] [--cache DIR] [--seed N]
[--workers N] [--dask ADDRESS|local]``.

Builds every figure (or the named ones) and prints where each went, how long it took and
whether the claims checked in its manifest hold; a claim that does not hold is printed with
its measured value and bound. The sweeps inside a figure (phase-diagram cells, residual
points, memorisation-vs-n cells) run on ``--workers`` local processes, or on Dask with
``--dask local`` (a LocalCluster of ``--workers`` workers) or ``--dask ADDRESS`` (a running
scheduler); the numbers are the same on every executor. Exit status 1 if a figure failed to build or one of its checks
does not hold (checks marked as expected failures, with their stated reason, excepted).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
import warnings

from numerics.checkpoint import writable_folder
from numerics.validation import integer_argument


def parse(argv, names):
    parser = argparse.ArgumentParser(prog="python -m figures", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"figures to build (default: all): {', '.join(names)}")
    parser.add_argument("--fast", action="store_true", help="small sizes and few steps (for tests)")
    parser.add_argument("--output", default=os.path.join("results", "figures"), help="output folder")
    parser.add_argument("--cache", default=os.path.join("results", "cache"), help="trained-model cache folder")
    parser.add_argument("--seed", type=integer_argument(0), default=0, help="seed of data and training, an integer >= 0 "
                                                                      "(default 0)")
    parser.add_argument("--list", action="store_true", help="list the figures and exit")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--workers", type=integer_argument(1), default=1,
                        help="local processes for the sweeps, or Dask workers with --dask local (>= 1, default 1)")
    parser.add_argument("--dask", metavar="ADDRESS|local",
                        help="run the sweeps on Dask: 'local' (a LocalCluster), a scheduler address "
                             "(tcp://host:8786) or a scheduler file (.json); needs the extra [dask]")
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in names]
    if unknown:
        parser.error(f"unknown figure(s) {', '.join(unknown)}; choose from {', '.join(names)}")
    if not args.list:
        # Fail before any work: a figure may train for minutes before its first write.
        for option, folder in (("--output", args.output), ("--cache", args.cache)):
            problem = writable_folder(folder)
            if problem:
                parser.error(f"{option}: cannot use the folder {folder!r}: {problem}")
        if args.dask is not None:
            from numerics.executors import connection_problem

            problem = connection_problem(f"dask:{args.dask}", args.workers)
            if problem:
                parser.error(f"--dask {args.dask}: {problem}")
    return args


def report(bar, name, manifest, seconds, config) -> list:
    """Print one figure's line and its failing checks; return the checks that should hold and do not."""
    from figures.common import failing

    checks = manifest["checks"]
    held = sum(c["holds"] for c in checks)
    expected = [c for c in checks if not c["holds"] and c.get("expected_failure")]
    note = f" ({len(expected)} expected to fail)" if expected else ""
    bar.write(f"{name:16s} {seconds:7.1f} s  checks {held}/{len(checks)} hold{note}  "
              f"-> {os.path.join(config.output, name)}.{{png,pdf,json}}")
    for c in failing(checks):
        bar.write(f"{'':16s} DOES NOT HOLD: {c['claim']} (measured {c['measured']}, bound {c['bound']})")
    for c in expected:
        bar.write(f"{'':16s} expected to fail: {c['claim']} ({c['expected_failure']})")
    return failing(checks)


def main(argv=None) -> int:
    import matplotlib

    matplotlib.use("Agg")          # files only; the figure modules never touch pyplot
    from theory.errors import AssumptionWarning

    # Some figures build predictions outside the theorems' assumptions on purpose (real faces,
    # wide clusters) and record the measured values in their manifests; the warning would repeat them.
    warnings.filterwarnings("ignore", category=AssumptionWarning)
    from figures import FIGURES
    from figures.common import Config

    args = parse(argv, list(FIGURES))
    if args.list:
        for name, entry in FIGURES.items():
            print(f"{name:16s} {entry.what}")
        return 0
    executor = None if args.dask is None else f"dask:{args.dask}"
    config = Config(output=args.output, cache=args.cache, seed=args.seed, fast=args.fast,
                    progress=False if args.no_progress else None, executor=executor, workers=args.workers)
    try:
        return build_all(args.names or list(FIGURES), config)
    finally:
        if executor is not None:
            from numerics.executors import disconnect

            disconnect(executor)


def build_all(names, config) -> int:
    """Build the named figures one after the other; the exit status of `main`.

    A figure whose optional modules are missing (the ``[torch]`` extra) is skipped with a
    line saying so; that is not a failure.
    """
    from figures import build, missing

    crashed, failed_checks, skipped = [], 0, []
    started = time.perf_counter()
    with config.bar(total=len(names), desc="figures", unit="fig") as bar:
        for name in names:
            tick = time.perf_counter()
            absent = missing(name)
            if absent:
                bar.write(f"{name:16s} skipped: needs {', '.join(absent)} (pip install -e '.[torch]')")
                skipped.append(name)
                bar.update(1)
                continue
            try:
                manifest = build(name, config)
            except Exception:  # report and go on with the other figures
                traceback.print_exc()
                crashed.append(name)
            else:
                failed_checks += len(report(bar, name, manifest, time.perf_counter() - tick, config))
            bar.update(1)
    problems = ([f"FAILED to build: {', '.join(crashed)}"] if crashed else []) + \
               ([f"{failed_checks} check(s) DO NOT HOLD"] if failed_checks else [])
    built = len(names) - len(crashed) - len(skipped)
    print(f"{built} figure(s) in {time.perf_counter() - started:.1f} s"
          + (f", {len(skipped)} skipped (optional extra missing)" if skipped else "")
          + (f"; {'; '.join(problems)}" if problems else ""))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
