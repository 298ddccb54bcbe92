"""Trained multi-noise models on faces, sampled: do they reproduce training faces or make new ones?

Two cases, as in the paper's Fig. 2 (authors' settings from their notebooks, here at the
paper's d = 1024 with the offline LFW faces of `numerics.images.faces`, resized to 32 × 32):

* ``"memorise"``: n = 5 faces, the memorising protocol's weight decay (``wd = 1e-2``);
* ``"generalise"``: all 100 faces with p ≪ n, the generalising protocol's (``wd = 5e-4``).

Each is trained on the exact multi-noise loss (`numerics.multinoise_training`, λ = d·wd/2) —
or with the authors' protocol (`numerics.multinoise_protocol`) — then sampled with the
authors' reverse-VE sampler (`numerics.diffusion.ve_sample`; ``sampler="heun"``: the
probability-flow `heun_sample`) and scored with the memorisation rule of the diffusion
literature (`numerics.diffusion.memorization_report`): a sample is memorised when its nearest
training sample is closer than 1/3 of the second nearest, in ℓ2 and on unit-normalised
vectors (``metric="cosine"``).

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
from numerics.diffusion import heun_sample, memorization_report, ve_sample
from numerics.images import Images, faces
from numerics.multinoise import MultiNoiseDAE
from numerics.multinoise_objective import decay_from_weight_decay, multinoise_loss
from numerics.multinoise_protocol import PROTOCOLS, train_multinoise_protocol
from numerics.multinoise_training import train_multinoise

CASES = {
    "memorise": dict(faces="random-5", p=16, protocol="memorise", size=32),
    "generalise": dict(faces="all", p=8, protocol="generalise", size=32),
}


SAMPLERS = {"ve": ve_sample, "heun": heun_sample}


def case_data(name: str, seed=0) -> Images:
    """The training faces of a case: `Images` with X (size², n).

    >>> case_data("memorise").X.shape, case_data("generalise").X.shape   # 32 × 32 faces as columns
    ((1024, 5), (1024, 100))
    """
    config = _case(name)
    if config["faces"] == "random-5":
        return faces(n=5, seed=seed, size=config["size"])
    return faces(size=config["size"])


def _case(name: str) -> dict:
    if name not in CASES:
        raise ValueError(f"name must be one of {sorted(CASES)}; got {name!r}")
    return CASES[name]


@dataclass
class TrainedCase:
    """A trained model with its data, decay and the training summary. Returned by `train_case`."""

    name: str
    model: MultiNoiseDAE
    X: np.ndarray
    lam: float
    summary: dict


def train_case(name: str, *, method="exact", seed=0, X=None, steps=100_000, max_time=None,
               progress=None) -> TrainedCase:
    """Train a case of `CASES` on the exact loss (``method="exact"``) or with the authors' protocol.

    ``X`` (d, n) replaces the case's faces (`case_data`); here a tiny one keeps the example fast:

    >>> X = np.random.default_rng(0).normal(size=(4, 5))              # d = 4, n = 5
    >>> case = train_case("memorise", method="protocol", X=X, steps=20)
    >>> case.model.W.shape, case.lam, case.summary["steps"]           # p = 16; λ = d·wd/2 = 4·1e-2/2
    ((4, 16), 0.02, 20)
    """
    config = _case(name)
    X = case_data(name, seed).X if X is None else X
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


def score_samples(model, X, samples) -> dict:
    """Memorisation scores of ``samples`` (d, m) against the training columns of ``X`` (d, n).

    The ratio rule in ℓ2 and cosine (`numerics.diffusion.memorization_report`), the samples'
    norms against the training norms (a bias-free DAE is positively homogeneous: it pins
    directions, not norms), their largest cosine to a training sample, and how many live
    neurons of ``model`` are on at the samples (``active_neurons[k]`` samples with k on: one
    means a single stored direction, more a blend), and the largest cosine between two
    training samples (β of Def. 3.1 with every sample its own cluster: eq. (9)'s stored
    directions each fire alone only when it is negative).

    >>> X = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> model = MultiNoiseDAE.initial(2, 3, seed=0)
    >>> scores = score_samples(model, X, np.array([[2.0, 0.1], [0.0, 1.0]]))
    >>> scores["ratio_l2"], scores["ratio_cosine"], sum(scores["active_neurons"])
    (0.5, 1.0, 2)
    """
    reports = {metric: memorization_report(samples, X, metric=metric) for metric in ("l2", "cosine")}
    norms = np.linalg.norm(samples, axis=0)
    unit = X / np.linalg.norm(X, axis=0)
    cosines = np.sort((samples / np.maximum(norms, 1e-300)).T @ unit, axis=1)[:, ::-1]
    column_norms = np.linalg.norm(model.W, axis=0)
    live = column_norms > 1e-6 * column_norms.max()
    active = np.sum((model.W[:, live].T @ samples) > 0.0, axis=0)
    return dict(
        ratio_l2=reports["l2"].ratio, ratio_cosine=reports["cosine"].ratio,
        distance_ratio_median_l2=float(np.nanmedian(reports["l2"].distance_ratio)),
        distance_ratio_median_cosine=float(np.nanmedian(reports["cosine"].distance_ratio)),
        active_neurons=np.bincount(active, minlength=int(live.sum()) + 1).tolist(),
        sample_norm_quartiles=np.percentile(norms, [25, 50, 75]).tolist(),
        training_norm_range=[float(np.linalg.norm(X, axis=0).min()), float(np.linalg.norm(X, axis=0).max())],
        best_cosine_quartiles=np.percentile(cosines[:, 0], [25, 50, 75]).tolist(),
        second_cosine_median=float(np.median(cosines[:, 1])) if X.shape[1] > 1 else float("nan"),
        largest_training_cosine=_largest_off_diagonal(unit.T @ unit))


def _largest_off_diagonal(gram: np.ndarray) -> float:
    if gram.shape[0] < 2:
        return float("nan")
    return float(np.max(gram[~np.eye(gram.shape[0], dtype=bool)]))


def sampling_summary(model, X, *, sampler="ve", n_samples=64, seed=0, clamps=(None, (-1.0, 1.0))) -> dict:
    """`score_samples` of ``n_samples`` samples of ``model``, without and with a pixel clamp to [−1, 1].

    ``sampler``: ``"ve"`` (`numerics.diffusion.ve_sample`, the authors') or ``"heun"``
    (`numerics.diffusion.heun_sample`), 60 steps from σ = 2 to 0.02 (their defaults).

    A model with one unit, ``w = e1``, outputs multiples of e1 (the first training sample): a
    sample whose unit is on at the end lies along e1, memorised under the cosine rule; one whose
    unit is off is 0, not memorised:

    >>> X = np.eye(3)                                                 # three samples e1, e2, e3 (d = 3)
    >>> one_unit = MultiNoiseDAE(W=X[:, :1], s=0.0, A1=[0.0], b1=[1.0], A2=[[0.0]], b2=[0.0])
    >>> scores = sampling_summary(one_unit, X, n_samples=8, clamps=(None,))["no clamp"]
    >>> scores["active_neurons"], scores["ratio_cosine"]              # 7 of 8 with the unit on: 7/8
    ([1, 7], 0.875)
    """
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {sorted(SAMPLERS)}; got {sampler!r}")
    out = {}
    for clamp in clamps:
        samples = SAMPLERS[sampler](model, X.shape[0], n_samples, seed=seed, clamp=clamp)
        out["clamp" if clamp else "no clamp"] = score_samples(model, X, samples)
    return out


RUNS = (("memorise", "exact"), ("generalise", "exact"))


def manifest(*, runs=RUNS, sampler="ve", seed=0, n_samples=64, path=None, steps=100_000) -> dict:
    """Train, sample and score each (case, method) of ``runs``; the numbers with the parameters that produced them.

    ``path``: also written there atomically as JSON.

    A smoke run on the memorising case (the five faces, d = 1024; a few seconds):

    >>> record = manifest(runs=(("memorise", "protocol"),), n_samples=4, steps=5)
    >>> entry = record["cases"]["memorise/protocol"]
    >>> (entry["d"], entry["n"], entry["p"]), sorted(entry["sampling"])
    ((1024, 5, 16), ['clamp', 'no clamp'])
    """
    names = sorted({name for name, _ in runs})
    record = dict(parameters=dict(cases={name: _case(name) for name in names}, seed=seed, n_samples=n_samples,
                                  protocols={name: PROTOCOLS[CASES[name]["protocol"]] for name in names},
                                  protocol_steps=steps, threshold="1/3",
                                  sampler=f"numerics.diffusion.{SAMPLERS[sampler].__name__}"),
                  cases={})
    for name, method in runs:
        started = time.perf_counter()
        case = train_case(name, method=method, seed=seed, steps=steps)
        entry = dict(training=case.summary, lam=case.lam, d=case.X.shape[0], n=case.X.shape[1], p=case.model.p,
                     exact_loss=multinoise_loss(case.model, case.X, lam=case.lam),
                     sampling=sampling_summary(case.model, case.X, sampler=sampler, n_samples=n_samples, seed=seed),
                     seconds=time.perf_counter() - started)
        record["cases"][f"{name}/{method}"] = entry
    if path is not None:
        atomic_write_text(str(path), json.dumps(jsonable(record), indent=1, sort_keys=True))
    return record


def main(argv=None) -> int:
    """``python -m numerics.multinoise_results [--out FILE] [--method exact protocol] [--sampler ve|heun]``.

    Runs `manifest` for both cases and prints the memorised fractions. Not run by the doctests:
    it trains and samples both cases on the faces (d = 1024, n = 5 and 100), which takes tens of
    seconds even for a few protocol steps.

    >>> main(["--method", "protocol", "--out", "results/multinoise/protocol.json"])  # doctest: +SKIP
    memorise/protocol      no clamp  ℓ2 ...  cosine ...  largest cosine between training samples ...
    memorise/protocol      clamp     ℓ2 ...  cosine ...  largest cosine between training samples ...
    generalise/protocol    no clamp  ℓ2 ...  cosine ...  largest cosine between training samples ...
    generalise/protocol    clamp     ℓ2 ...  cosine ...  largest cosine between training samples ...
    0
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="results/multinoise/manifest.json")
    parser.add_argument("--method", nargs="+", default=["exact"], choices=["exact", "protocol"])
    parser.add_argument("--sampler", default="ve", choices=sorted(SAMPLERS))
    parser.add_argument("--steps", type=int, default=100_000)
    args = parser.parse_args(argv)
    runs = tuple(itertools.product(("memorise", "generalise"), args.method))
    record = manifest(runs=runs, sampler=args.sampler, path=args.out, steps=args.steps)
    for key, entry in record["cases"].items():
        for clamp, scores in entry["sampling"].items():
            print(f"{key:22s} {clamp:9s} ℓ2 {scores['ratio_l2']:.3f}  cosine {scores['ratio_cosine']:.3f}  "
                  f"largest cosine between training samples {scores['largest_training_cosine']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
