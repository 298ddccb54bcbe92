"""A 32-start `multistart` at paper scale on 2 workers, killed midway and resumed.

Instance: d = 1024, p = 100, σ = 0.2, tied weights, λ from the authors' weight decay
(``λ = d·wd/4``): ``--case mem`` is n = 5 faces (wd = 1e-2), ``--case gen`` the n = 10,000
Gaussian mixture of ``benchmarks/train_vs_torch.py`` (wd = 1e-4, with the same MC warm-up).
Phase 1 runs the multistart in a subprocess and kills its whole process group (SIGKILL)
once ``--kill-after`` starts have been checkpointed; phase 2 reruns the same command, which
must compute only the missing starts and leave the finished checkpoint files untouched.
Peak memory is the largest resident set of any process (parent or worker; ``ru_maxrss``)
in phase 2, plus the parent's. Results (loss levels, structures, timings, memory) go to
``benchmarks/results/multistart_paper_scale.json``.

    python benchmarks/multistart_paper_scale.py --case mem --starts 32 --kill-after 6
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def _worker(args):
    import numpy as np

    sys.path.insert(0, str(ROOT))
    from numerics.protocol import lambda_from_weight_decay
    from numerics.multistart import multistart

    sys.path.insert(0, str(HERE))
    from train_vs_torch import CASES, SIGMA, D, P, _data

    spec = CASES[args.case]
    X, labels = _data(args.case)
    lam = lambda_from_weight_decay(spec["weight_decay"], D, tied=True)
    tick = time.perf_counter()
    out = multistart(X, P, SIGMA, lam, n_starts=args.starts, seed=0, workers=args.workers, labels=labels,
                     checkpoint_dir=args.folder, tied=True, warmup=dict(steps=spec["warmup"]),
                     max_time=args.max_time, checkpoint_every=30.0, progress=args.progress)
    usage_children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    usage_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    record = dict(computed=out.computed, wall_time=time.perf_counter() - tick,
                  losses=out.losses.tolist(), converged=out.converged.tolist(),
                  rel_grad_norms=out.rel_grad_norms.tolist(),
                  loss_levels=out.loss_levels(rtol=1e-6),
                  structures={str(k): v for k, v in out.structure_counts().items()},
                  peak_rss_mib=(usage_children + usage_self) / 1024.0,
                  peak_rss_worker_mib=usage_children / 1024.0, lam=lam,
                  best_loss=float(np.min(out.losses)))
    print("RESULT " + json.dumps(record), flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=["mem", "gen"], default="mem")
    parser.add_argument("--starts", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--kill-after", type=int, default=6)
    parser.add_argument("--max-time", type=float, default=None, help="per start, seconds")
    parser.add_argument("--folder", default=None)
    parser.add_argument("--progress", action="store_true", default=None)
    parser.add_argument("--out", default=str(HERE / "results" / "multistart_paper_scale.json"))
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        _worker(args)
        return
    folder = Path(args.folder or tempfile.mkdtemp(prefix="multistart-"))
    command = [sys.executable, __file__, "--worker", "--case", args.case, "--starts", str(args.starts),
               "--workers", str(args.workers), "--folder", str(folder)]
    if args.max_time:
        command += ["--max-time", str(args.max_time)]
    env = dict(os.environ, PYTHONPATH=str(ROOT))

    tick = time.perf_counter()
    first = subprocess.Popen(command, env=env, start_new_session=True, stdout=subprocess.PIPE, text=True)
    while first.poll() is None and len(list(folder.glob("start_*.json"))) < args.kill_after:
        time.sleep(0.5)
    killed = first.poll() is None
    if killed:
        os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    phase1 = time.perf_counter() - tick
    finished = {p.name: p.stat().st_mtime_ns for p in folder.glob("start_*.json")}
    partial = sorted(p.name for p in folder.glob("partial_*.json"))

    tick = time.perf_counter()
    second = subprocess.run(command, env=env, capture_output=True, text=True)
    phase2 = time.perf_counter() - tick
    if second.returncode != 0:
        raise RuntimeError(second.stderr)
    result = json.loads(next(line for line in second.stdout.splitlines() if line.startswith("RESULT "))[7:])
    untouched = all((folder / name).stat().st_mtime_ns == stamp for name, stamp in finished.items())
    record = dict(case=args.case, starts=args.starts, workers=args.workers, killed=killed,
                  finished_before_kill=len(finished), partial_at_kill=partial,
                  computed_after_resume=result["computed"],
                  resumed_correctly=result["computed"] == args.starts - len(finished) and untouched,
                  phase1_seconds=phase1, phase2_seconds=phase2, folder=str(folder), **result)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as stream:
        json.dump(record, stream, indent=1)
    print(json.dumps({k: record[k] for k in ("killed", "finished_before_kill", "computed_after_resume",
                                              "resumed_correctly", "phase1_seconds", "phase2_seconds",
                                              "peak_rss_mib", "best_loss", "loss_levels")}, indent=1))
    if args.folder is None:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
