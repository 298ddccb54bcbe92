"""Trained multi-noise models on faces, sampled: do they reproduce training faces or make new ones?

Two cases, as in the paper's Fig. 2 (authors' settings from their notebooks, here at the
paper's d = 1024 with the offline LFW faces of `numerics.data.faces`, resized to 32 × 32):

* ``"memorise"``: n = 5 faces, the memorising protocol's weight decay (``wd = 1e-2``);
* ``"generalise"``: all 100 faces with p ≪ n, the generalising protocol's (``wd = 5e-4``).

Each is trained on the exact multi-noise loss (`numerics.multinoise_training`, λ = d·wd/2) —
or with the authors' protocol (`numerics.multinoise_protocol`) — then sampled with a VE
sampler and scored with the memorisation rule of the diffusion literature: a sample is
memorised when its nearest training sample is closer than 1/3 of the second nearest, in ℓ2
and on unit-normalised vectors (``metric="cosine"``). The sampler and the rule are passed in
(`numerics.diffusion.ve_sample` and `memorization_ratio` by default), so the same numbers can
be produced with any implementation of that interface.

>>> sorted(CASES)
['generalise', 'memorise']
"""
from __future__ import annotations

import argparse
import itertools
import json
import time
from dataclasses import dataclass

import numpy as np

from numerics.checkpoint import atomic_write_text, jsonable
from numerics.data import faces
from numerics.multinoise import MultiNoiseDAE
from numerics.multinoise_objective import decay_from_weight_decay, multinoise_loss
from numerics.multinoise_protocol import PROTOCOLS, train_multinoise_protocol
from numerics.multinoise_training import train_multinoise

CASES = {
    "memorise": dict(faces="random-5", p=16, protocol="memorise", size=32),
    "generalise": dict(faces="all", p=8, protocol="generalise", size=32),
}


def case_data(name: str, seed=0) -> np.ndarray:
    """The training faces of a case (columns, d = size²)."""
    config = CASES[name]
    if config["faces"] == "random-5":
        return faces(n=5, seed=seed, size=config["size"])
    return faces(size=config["size"])


@dataclass
class TrainedCase:
    """A trained model with its data, decay and the training summary."""

    name: str
    model: MultiNoiseDAE
    X: np.ndarray
    lam: float
    summary: dict


def train_case(name: str, *, method="exact", seed=0, X=None, steps=100_000, max_time=None,
               progress=None) -> TrainedCase:
    """Train a case of `CASES` on the exact loss (``method="exact"``) or with the authors' protocol."""
    config = CASES[name]
    X = case_data(name, seed) if X is None else X
    settings = PROTOCOLS[config["protocol"]]
    lam = decay_from_weight_decay(settings["weight_decay"], X.shape[0])
    if method == "exact":
        fit = train_multinoise(X, config["p"], lam, seed=seed, max_time=max_time, progress=progress)
        return TrainedCase(name, fit.model, X, lam, dict(method=method, **fit.summary()))
    if method == "protocol":
        run = train_multinoise_protocol(X, config["p"], steps=steps, seed=seed, progress=progress, **settings)
        return TrainedCase(name, run.model, X, lam, dict(method=method, steps=run.steps, wall_time=run.wall_time,
                                                         exact_loss=run.exact_loss, config=run.config))
    raise ValueError(f"method must be 'exact' or 'protocol'; got {method!r}")


def sampling_summary(model, X, sampler, ratio, *, n_samples=64, seed=0, clamps=(None, (-1.0, 1.0))) -> dict:
    """Memorisation ratios (ℓ2 and cosine) of ``n_samples`` samples, without and with a pixel clamp.

    ``sampler(denoiser, d, n_samples, seed=..., clamp=...)`` returns samples (d, n_samples);
    ``ratio(samples, X, metric=...)`` the fraction memorised. Also reports the samples' norms
    against the training norms (a bias-free DAE is positively homogeneous: it pins directions,
    not norms), their largest cosine to a training sample, and how many live neurons are on at
    the final samples (``active_neurons[k]`` samples with k on: one means a single stored
    direction, more a blend).
    """
    out = {}
    unit = X / np.linalg.norm(X, axis=0)
    for clamp in clamps:
        samples = sampler(model, X.shape[0], n_samples, seed=seed, clamp=clamp)
        norms = np.linalg.norm(samples, axis=0)
        cosines = np.sort((samples / np.maximum(norms, 1e-300)).T @ unit, axis=1)[:, ::-1]
        live = np.linalg.norm(model.W, axis=0) > 1e-6 * np.linalg.norm(model.W, axis=0).max()
        active = np.sum((model.W[:, live].T @ samples) > 0.0, axis=0)
        out["clamp" if clamp else "no clamp"] = dict(
            ratio_l2=float(ratio(samples, X, metric="l2")), ratio_cosine=float(ratio(samples, X, metric="cosine")),
            active_neurons=np.bincount(active, minlength=int(live.sum()) + 1).tolist(),
            sample_norm_quartiles=np.percentile(norms, [25, 50, 75]).tolist(),
            training_norm_range=[float(np.linalg.norm(X, axis=0).min()), float(np.linalg.norm(X, axis=0).max())],
            best_cosine_quartiles=np.percentile(cosines[:, 0], [25, 50, 75]).tolist(),
            second_cosine_median=float(np.median(cosines[:, 1])) if X.shape[1] > 1 else float("nan"))
    return out


RUNS = (("memorise", "exact"), ("generalise", "exact"))


def manifest(sampler, ratio, *, runs=RUNS, seed=0, n_samples=64, path=None, steps=100_000) -> dict:
    """Train, sample and score each (case, method) of ``runs``; the numbers with the parameters that produced them.

    ``path``: also written there atomically as JSON.
    """
    names = sorted({name for name, _ in runs})
    record = dict(parameters=dict(cases={name: CASES[name] for name in names}, seed=seed, n_samples=n_samples,
                                  protocols={name: PROTOCOLS[CASES[name]["protocol"]] for name in names},
                                  protocol_steps=steps, threshold="1/3", sampler=getattr(sampler, "__module__", "")),
                  cases={})
    for name, method in runs:
        started = time.perf_counter()
        case = train_case(name, method=method, seed=seed, steps=steps)
        entry = dict(training=case.summary, lam=case.lam, d=case.X.shape[0], n=case.X.shape[1], p=case.model.p,
                     exact_loss=multinoise_loss(case.model, case.X, lam=case.lam),
                     sampling=sampling_summary(case.model, case.X, sampler, ratio, n_samples=n_samples, seed=seed),
                     seconds=time.perf_counter() - started)
        record["cases"][f"{name}/{method}"] = entry
    if path is not None:
        atomic_write_text(str(path), json.dumps(jsonable(record), indent=1, sort_keys=True))
    return record


def main(argv=None) -> int:
    """``python -m numerics.multinoise_results [--out FILE] [--method exact protocol]``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="results/multinoise/manifest.json")
    parser.add_argument("--method", nargs="+", default=["exact"], choices=["exact", "protocol"])
    parser.add_argument("--steps", type=int, default=100_000)
    args = parser.parse_args(argv)
    try:
        from numerics.diffusion import memorization_ratio, ve_sample
    except ImportError as error:
        raise SystemExit(f"the samplers of numerics.diffusion are needed: {error}") from error

    runs = tuple(itertools.product(("memorise", "generalise"), args.method))
    record = manifest(ve_sample, memorization_ratio, runs=runs, path=args.out, steps=args.steps)
    for key, entry in record["cases"].items():
        for clamp, scores in entry["sampling"].items():
            print(f"{key:22s} {clamp:9s} ℓ2 {scores['ratio_l2']:.3f}  cosine {scores['ratio_cosine']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
