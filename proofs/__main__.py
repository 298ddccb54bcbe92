"""``python -m proofs``: run every claim check, print the table, write the reports.

Options: ``--full`` (paper scale, d = 1024 …), ``--only NAME`` (repeatable; one check),
``--output DIR`` (default ``results/proofs``), ``--list``, ``--workers N``. Progress goes to
stderr and is silent when the environment variable ``CI`` is set. Exit status 1 when a
verdict differs from its expected verdict (errata are expected to be refuted).
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time

from proofs import CHECKS, run
from proofs.common import quiet_default
from proofs.record import Mode
from proofs.report import table, write_reports


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m proofs", description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="paper scale (slow: hours on 2 cores)")
    parser.add_argument("--only", action="append", metavar="NAME", help="run only this check (repeatable)")
    parser.add_argument("--output", default=os.path.join("results", "proofs"), metavar="DIR")
    parser.add_argument("--workers", type=int, default=2, help="processes for multistart loops")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--list", action="store_true", help="list the checks and exit")
    args = parser.parse_args(argv)
    if args.list:
        for check in CHECKS.values():
            print(f"{check.name:32s} {check.expected:10s} {check.title}")
        return 0
    unknown = [name for name in args.only or [] if name not in CHECKS]
    if unknown:
        parser.error(f"unknown check(s) {unknown}; see --list")
    mode = Mode(full=args.full, workers=args.workers, quiet=quiet_default(), seed=args.seed)
    started = time.perf_counter()
    records = run(args.only, mode)
    elapsed = time.perf_counter() - started
    parameters = dict(mode=mode.name, workers=mode.workers, seed=mode.seed, only=args.only or "all",
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
