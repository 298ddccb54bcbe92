"""Exact multi-noise training versus the authors' protocol, side by side in one run.

The multi-noise ReLU DAE (`numerics.multinoise`) on faces at the paper's d = 1024 (the offline
LFW faces of `numerics.images.faces`, 32 × 32, in [−1, 1]), σ log-uniform in [0.02, 2]:

* **mem**: n = 5 faces, p = 16; authors' protocol: RMSprop lr 1e-3, weight decay 1e-2, full
  batch, 100,000 steps (the paper's count; ``--steps`` overrides);
* **gen**: all n = 100 faces, p = 8; authors' protocol: Adam lr 5e-5, weight decay 5e-4,
  batch 256 (the whole set here), 200,000 steps.

(The paper used p = 256; p is smaller here so that the exact loss, whose cost grows like p²
per noise level, fits this 2-core machine; both sides train the same model.)

Both sides start from the same initialisation (`MultiNoiseDAE.initial`, seed 0). The protocol
is this package's NumPy loop (`numerics.multinoise_protocol`, float64, step for step the
authors' ``DAECond`` in PyTorch — see ``tests/numerics/test_multinoise_protocol.py``); ``--torch`` also
runs ``DAECond`` itself in PyTorch (CPU, one thread, float32 as in the authors' notebooks). The exact side is
`numerics.multinoise_training.train_multinoise` (L-BFGS on the exact loss, then a Newton
polish) with the protocol's decay λ = d·wd/2. Every final model is scored by the exact loss.
For each protocol run, "exact run reaches this loss after" is when the exact run's loss first
fell to that protocol's final exact loss (from its per-iteration history), and "speed-up" is
the protocol's wall time over it. Numba compilation is done before timing. Writes
``benchmarks/results/multinoise_training.json`` and prints a Markdown table.

    python benchmarks/multinoise_training.py                       # both cases, the paper's step counts
    python benchmarks/multinoise_training.py --case mem --steps 20000
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import numpy as np  # noqa: E402

from numerics.checkpoint import atomic_write_text, jsonable  # noqa: E402
from numerics.images import faces  # noqa: E402
from numerics.multinoise import MultiNoiseDAE  # noqa: E402
from numerics.multinoise_objective import decay_from_weight_decay, multinoise_loss  # noqa: E402
from numerics.multinoise_protocol import PROTOCOLS, train_multinoise_protocol  # noqa: E402
from numerics.multinoise_training import train_multinoise  # noqa: E402

CASES = {
    "mem": dict(label="memorisation (n = 5 faces)", n=5, p=16, protocol="memorise", steps=100_000),
    "gen": dict(label="generalisation (n = 100 faces)", n=None, p=8, protocol="generalise", steps=200_000),
}


def _torch_protocol(X, model, settings, steps, seed):
    """The authors' DAECond loop in PyTorch float32 from ``model``; returns (model, seconds)."""
    import torch

    torch.manual_seed(seed)
    torch.set_num_threads(1)        # small products: thread hand-offs cost more than they save
    d, p = model.W.shape
    encoder = torch.nn.Linear(d, p, bias=False)
    skip = torch.nn.Parameter(torch.tensor(float(model.s)))
    mlp = torch.nn.Sequential(torch.nn.Linear(1, p), torch.nn.ReLU(), torch.nn.Linear(p, p))
    with torch.no_grad():
        encoder.weight.copy_(torch.tensor(model.W.T, dtype=torch.float32))
        mlp[0].weight.copy_(torch.tensor(model.A1[:, None], dtype=torch.float32))
        mlp[0].bias.copy_(torch.tensor(model.b1, dtype=torch.float32))
        mlp[2].weight.copy_(torch.tensor(model.A2, dtype=torch.float32))
        mlp[2].bias.copy_(torch.tensor(model.b2, dtype=torch.float32))
    params = list(encoder.parameters()) + [skip] + list(mlp.parameters())
    optimiser = {"rmsprop": torch.optim.RMSprop, "adam": torch.optim.Adam}[settings["optimizer"]](
        params, lr=settings["lr"], weight_decay=settings["weight_decay"])
    data = torch.tensor(X.T, dtype=torch.float32)
    batch = data.shape[0] if settings["batch_size"] is None else min(settings["batch_size"], data.shape[0])
    log_min, log_max = np.log(0.02), np.log(2.0)
    criterion = torch.nn.MSELoss()
    started = time.perf_counter()
    order, position = torch.randperm(data.shape[0]), data.shape[0]
    for _ in range(steps):
        if position + batch > data.shape[0]:
            order, position = torch.randperm(data.shape[0]), 0
        x0 = data[order[position:position + batch]]
        position += batch
        log_sigma = log_min + (log_max - log_min) * torch.rand(x0.shape[0])
        x_t = x0 + torch.exp(log_sigma)[:, None] * torch.randn_like(x0)
        hidden = torch.relu(encoder(x_t)) * torch.exp(mlp(log_sigma[:, None]))
        loss = criterion(torch.nn.functional.linear(hidden, encoder.weight.t()) + skip * x_t, x0)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
    seconds = time.perf_counter() - started
    trained = MultiNoiseDAE(W=encoder.weight.detach().double().numpy().T.copy(), s=float(skip.detach()),
                            A1=mlp[0].weight.detach().double().numpy()[:, 0].copy(),
                            b1=mlp[0].bias.detach().double().numpy().copy(),
                            A2=mlp[2].weight.detach().double().numpy().copy(),
                            b2=mlp[2].bias.detach().double().numpy().copy())
    return trained, seconds


def _time_to(history, target):
    """Seconds at which the exact run's loss first reached ``target`` (``nan`` if never)."""
    for _, seconds, loss, _ in history:
        if loss <= target:
            return float(seconds)
    return float("nan")


def run_case(name, steps=None, torch=False, seed=0, max_time=None):
    config = CASES[name]
    settings = PROTOCOLS[config["protocol"]]
    steps = config["steps"] if steps is None else steps
    X = faces(n=config["n"], seed=seed, size=32).X
    d, n = X.shape
    lam = decay_from_weight_decay(settings["weight_decay"], d)
    init = MultiNoiseDAE.initial(d, config["p"], seed=seed)
    train_multinoise(X[:, :2], 2, lam, max_iter=2)                    # numba compilation, not timed
    out = dict(case=name, label=config["label"], d=d, n=n, p=config["p"], lam=lam, steps=steps,
               protocol=settings, initial_loss=multinoise_loss(init, X, lam=lam))
    run = train_multinoise_protocol(X, config["p"], init=init, steps=steps, seed=seed, exact_loss=True,
                                    progress=False, **settings)
    out["numpy_protocol"] = dict(seconds=run.wall_time, exact_loss=run.exact_loss)
    if torch:
        trained, seconds = _torch_protocol(X, init, settings, steps, seed)
        out["torch_protocol"] = dict(seconds=seconds, exact_loss=multinoise_loss(trained, X, lam=lam))
    fit = train_multinoise(X, config["p"], lam, init=init, seed=seed, max_time=max_time, progress=False)
    out["exact"] = dict(seconds=fit.wall_time, loss=fit.loss, rel_grad_norm=fit.rel_grad_norm,
                        converged=fit.converged, n_iter=fit.n_iter, n_eval=fit.n_eval, stages=fit.stages,
                        quadrature_error=fit.quadrature_error, history=fit.history)
    for key in ("numpy_protocol", "torch_protocol"):
        if key in out:
            reach = _time_to(fit.history, out[key]["exact_loss"])
            out[key]["exact_time_to_its_loss"] = reach
            out[key]["speed_up"] = out[key]["seconds"] / reach if np.isfinite(reach) and reach > 0 else float("nan")
    return out


def table(results) -> str:
    lines = ["| case | method | wall time | exact run reaches this loss after | speed-up | exact loss | ‖∇L‖/L0 |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for r in results:
        for key, label in (("numpy_protocol", f"protocol (NumPy, {r['steps']:,} steps)"),
                           ("torch_protocol", f"protocol (PyTorch float32, {r['steps']:,} steps)")):
            if key in r:
                entry = r[key]
                lines.append(f"| {r['label']} | {label} | {entry['seconds']:.1f} s | {entry['exact_time_to_its_loss']:.2f} s "
                             f"| {entry['speed_up']:.0f}× | {entry['exact_loss']:.8g} | — |")
        e = r["exact"]
        lines.append(f"| {r['label']} | exact L-BFGS + Newton | {e['seconds']:.1f} s | — | — | {e['loss']:.8g} "
                     f"| {e['rel_grad_norm']:.1e} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--case", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--steps", type=int, default=None, help="protocol steps (default: the paper's)")
    parser.add_argument("--torch", action="store_true", help="also run the authors' DAECond in PyTorch")
    parser.add_argument("--max-time", type=float, default=None, help="cap on the exact run (seconds)")
    parser.add_argument("--out", default=str(HERE / "results" / "multinoise_training.json"))
    args = parser.parse_args(argv)
    results = [run_case(name, args.steps, args.torch, max_time=args.max_time) for name in args.case]
    record = dict(machine=dict(platform=platform.platform(), python=platform.python_version()), results=results)
    atomic_write_text(args.out, json.dumps(jsonable(record), indent=1, sort_keys=True))
    print(table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
