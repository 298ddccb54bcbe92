"""``python -m proofs``: run every claim check, print the table, write the reports.

Options: ``--full`` (paper scale, d = 1024 …), ``--only NAME`` (repeatable; one check),
``--output DIR`` (default ``results/proofs``; checked writable before any work), ``--list``,
``--workers N`` (≥ 1), ``--seed N`` (≥ 0), ``--readme-table REPORT`` (print the three-part claims
table of a saved ``report.json``, as the README shows it). Sweeps (the allocation rule's
instances) run on ``--workers`` local processes, or on Dask with ``--dask local`` (a
LocalCluster of ``--workers`` workers) or ``--dask ADDRESS`` (a running scheduler, e.g.
``tcp://host:8786``, or a scheduler file ``FILE.json``); the address is checked before any
work. ``--cache DIR`` keeps each finished task there, so a killed run, rerun with the same
arguments, computes only what is missing (see ``docs/dask.md``). Progress goes to stderr and
is silent when the environment variable ``CI`` is set. Exit status 1 when a verdict differs
from its expected verdict.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import warnings

from numerics.checkpoint import writable_folder
from numerics.executors import connection_problem, describe, disconnect
from numerics.validation import integer_argument
from proofs import CHECKS, run
from proofs.common import quiet_default
from proofs.record import Mode
from proofs.report import claims_tables, table, write_reports


def main(argv=None) -> int:
    from theory.errors import AssumptionWarning

    # Some checks build predictions outside the assumptions on purpose and record the measured
    # values (record.assume, notes); the warning would repeat them.
    warnings.filterwarnings("ignore", category=AssumptionWarning)
    parser = argparse.ArgumentParser(prog="python -m proofs", description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="paper scale (slow: hours on 2 cores)")
    parser.add_argument("--only", action="append", metavar="NAME", help="run only this check (repeatable)")
    parser.add_argument("--output", default=os.path.join("results", "proofs"), metavar="DIR")
    parser.add_argument("--workers", type=integer_argument(1), default=2,
                        help="local processes for sweeps, or Dask workers with --dask local (>= 1)")
    parser.add_argument("--dask", metavar="ADDRESS|local",
                        help="run the sweeps on Dask: 'local' (a LocalCluster), a scheduler address "
                             "(tcp://host:8786) or a scheduler file (.json); needs the extra [dask]")
    parser.add_argument("--cache", metavar="DIR", help="cache each finished sweep task in DIR; a rerun resumes")
    parser.add_argument("--seed", type=integer_argument(0), default=0, help="seed of every instance (>= 0)")
    parser.add_argument("--list", action="store_true", help="list the checks and exit")
    parser.add_argument("--readme-table", metavar="REPORT", help="print the claims table of a saved report.json")
    args = parser.parse_args(argv)
    if args.list:
        for check in CHECKS.values():
            print(f"{check.name:32s} {check.source:22s} {check.expected:26s} {check.title}")
        return 0
    if args.readme_table:
        try:
            with open(args.readme_table, encoding="utf-8") as stream:
                checks = json.load(stream)["checks"]
        except (OSError, ValueError, KeyError) as error:
            parser.error(f"--readme-table: cannot read the report {args.readme_table}: {error}")
        print(claims_tables(checks), end="")
        return 0
    unknown = [name for name in args.only or [] if name not in CHECKS]
    if unknown:
        parser.error(f"unknown check(s) {unknown}; see --list")
    problem = writable_folder(args.output)
    if problem:
        parser.error(f"--output: cannot write to {args.output} ({problem})")
    if args.cache is not None:
        problem = writable_folder(args.cache)
        if problem:
            parser.error(f"--cache: cannot write to {args.cache} ({problem})")
    executor = None if args.dask is None else f"dask:{args.dask}"
    if executor is not None:
        problem = connection_problem(executor, args.workers)
        if problem:
            parser.error(f"--dask {args.dask}: {problem}")
    mode = Mode(full=args.full, workers=args.workers, quiet=quiet_default(), seed=args.seed,
                executor=executor, cache_dir=args.cache)
    started = time.perf_counter()
    try:
        records = run(args.only, mode)
    finally:
        if executor is not None:
            disconnect(executor)
    elapsed = time.perf_counter() - started
    parameters = dict(mode=mode.name, workers=mode.workers, seed=mode.seed, only=args.only or "all",
                      executor=describe(executor, mode.workers), cache=args.cache,
                      seconds=round(elapsed, 1), python=platform.python_version(),
                      cpus=os.cpu_count())
    md_path, json_path = write_reports(records, parameters, args.output)
    print(table(records))
    failed = [r.name for r in records if not r.ok]
    print(f"\n{len(records) - len(failed)}/{len(records)} checks as expected in {elapsed:.0f} s "
          f"({mode.name} mode); reports: {md_path}, {json_path}")
    if failed:
        print(f"UNEXPECTED: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
