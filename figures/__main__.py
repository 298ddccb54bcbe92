"""Command line: ``python -m figures [NAME ...] [--fast] [--output DIR] [--cache DIR] [--seed N]``.

Builds every figure (or the named ones) and prints where each went, how long it took and
whether the claims checked in its manifest hold. Exit status 1 if a figure failed to build.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import traceback


def main(argv=None) -> int:
    from figures import FIGURES, build
    from figures.common import Config

    parser = argparse.ArgumentParser(prog="python -m figures", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"figures to build (default: all): {', '.join(FIGURES)}")
    parser.add_argument("--fast", action="store_true", help="small sizes and few steps (for tests)")
    parser.add_argument("--output", default=os.path.join("results", "figures"), help="output folder")
    parser.add_argument("--cache", default=os.path.join("results", "cache"), help="trained-model cache folder")
    parser.add_argument("--seed", type=int, default=0, help="seed of data and training (default 0)")
    parser.add_argument("--list", action="store_true", help="list the figures and exit")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    if args.list:
        for name, (_, _, what) in FIGURES.items():
            print(f"{name:16s} {what}")
        return 0
    unknown = [name for name in args.names if name not in FIGURES]
    if unknown:
        parser.error(f"unknown figure(s) {', '.join(unknown)}; choose from {', '.join(FIGURES)}")
    config = Config(output=args.output, cache=args.cache, seed=args.seed, fast=args.fast,
                    progress=False if args.no_progress else None)
    names = args.names or list(FIGURES)
    failed = []
    started = time.perf_counter()
    with config.bar(total=len(names), desc="figures", unit="fig") as bar:
        for name in names:
            tick = time.perf_counter()
            try:
                manifest = build(name, config)
            except Exception:  # report and go on with the other figures
                traceback.print_exc()
                failed.append(name)
                bar.update(1)
                continue
            checks = manifest.get("checks", [])
            held = sum(c["holds"] for c in checks)
            bar.write(f"{name:16s} {time.perf_counter() - tick:7.1f} s  checks {held}/{len(checks)} hold  "
                      f"-> {os.path.join(config.output, name)}.{{png,pdf,json}}")
            for c in checks:
                if not c["holds"]:
                    bar.write(f"{'':16s} does not hold: {c['claim']} (measured {c['measured']}, bound {c['bound']})")
            bar.update(1)
    print(f"{len(names) - len(failed)} figure(s) in {time.perf_counter() - started:.1f} s"
          + (f"; FAILED: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
