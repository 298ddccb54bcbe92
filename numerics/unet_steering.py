"""Fig. 7 on the tiny digit DDPM: steering representations (eq. 11), memorised vs generalised.

Eq. (11) steers the decoder with ``g(h(x_t) + a v)``, ``v`` the mean representation of a
reference set of the target concept. The paper shows (Fig. 7) that generalised samples
change smoothly and monotonically with ``a`` while memorised ones barely change or jump.
Here the concept is a digit class: ``v`` is the spatial-mean-pooled output of the steering
layers (`steering_layers`) on held-out digits of the ``target`` class noised to t = 10 (the
authors' reference timestep), averaged over the reference set; each generated sample is
regenerated from the same initial noise with ``steer(model, v, a)`` active in the authors'
window (the last 20 DDIM steps except the final 2), for every ``a`` of a grid (by default
the authors' range 0 … 0.5).

The primary response of a sample is the target-class logit of a logistic-regression digit
classifier (scikit-learn, trained on all digits) along the grid. Per sample we measure

* the Spearman rank correlation ρ between ``a`` and the logit (1: monotone increase);
* the largest single-step share ``max_k |Δ_k| / Σ_k |Δ_k|`` of the total variation
  (``1/(G−1)`` for an even change over G strengths, 1 for a single jump);
* the change of the logit between the smallest and the largest ``a``;

averaged over the memorised and over the generalised samples (labelled at ``a = 0`` by the ℓ2
rule), for several sampling seeds; `steering_numbers` returns mean and spread over seeds.
Samples already classified as the target at ``a = 0`` are left out. The same metrics are
reported for two other responses: the projection of the pixels on the direction from the mean
digit to the mean target digit, and the displacement ``‖x(a) − x(0)‖``.

>>> metrics = response_metrics([0.0, 0.5, 1.0], [[0.0, 1.0, 2.0], [0.0, 0.0, 3.0]])  # even, jump
>>> metrics["spearman"].round(3).tolist(), metrics["largest_step_share"].tolist()
([1.0, 0.866], [0.5, 1.0])
>>> metrics["total_change"].tolist()
[2.0, 3.0]
"""
from __future__ import annotations

import warnings

import numpy as np

from numerics.hooks import collect, denoising_window, require_torch, steer, torch_threads
from numerics.diffusion import memorization_report
from numerics.unet_ddpm import DDPMConfig, TrainedDDPM, noised, sample, train_ddpm
from numerics.validation import as_matrix, as_vector

__all__ = ["steering_layers", "steering_vectors", "digit_classifier", "response_metrics", "steering_numbers"]

# The examples that build a UNet need the optional extra.
__doctest_requires__ = {("steering_layers", "steering_vectors", "steering_numbers"): ["torch", "diffusers"]}

# The authors' range a ∈ [0, 0.5] (they use 0, 0.2, 0.3, 0.4, 0.5), in steps of 0.05.
DEFAULT_STRENGTHS = (0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5)


def steering_layers(model) -> list[str]:
    """Resnet outputs of ``up_blocks.0`` (all) and ``up_blocks.1`` (the first two): the
    authors' SD 1.4 steering layers (``up_blocks.0.resnets.{0,1,2}``,
    ``up_blocks.1.resnets.{0,1}``) mapped to a UNet of any depth.

    >>> from numerics.unet_ddpm import DDPMConfig, build_unet
    >>> steering_layers(build_unet(DDPMConfig.fast()))
    ['up_blocks.0.resnets.0', 'up_blocks.0.resnets.1', 'up_blocks.1.resnets.0', 'up_blocks.1.resnets.1']
    """
    first = [f"up_blocks.0.resnets.{j}" for j in range(len(model.up_blocks[0].resnets))]
    second = [f"up_blocks.1.resnets.{j}" for j in range(min(2, len(model.up_blocks[1].resnets)))]
    return first + second


def steering_vectors(trained: TrainedDDPM, reference, *, t: int = 10, seed: int = 0, layers=None) -> dict:
    """``v = mean`` over the reference images (columns) of each layer's spatial-mean output.

    >>> trained = train_ddpm(DDPMConfig.fast(n_single=6, n_duplicated=2, copies=3, train_steps=2, batch_size=8))
    >>> vectors = steering_vectors(trained, trained.data.unique[:, :3], t=10)   # reference X (64, 3)
    >>> {name: v.shape for name, v in vectors.items()}          # one length-C vector per layer
    {'up_blocks.0.resnets.0': (16,), 'up_blocks.0.resnets.1': (16,), 'up_blocks.1.resnets.0': (8,), 'up_blocks.1.resnets.1': (8,)}
    """
    torch = require_torch()
    layers = list(layers) if layers is not None else steering_layers(trained.model)
    x_t, _, timesteps = noised(trained, reference, t, seed=seed)
    with torch.no_grad():
        reps = collect(trained.model, layers, lambda model: model(x_t, timesteps), pooling="mean")
    return {name: reps[name].mean(axis=0) for name in layers}


def digit_classifier(seed: int = 0):
    """A logistic-regression classifier of all 1797 digits (pixels in [−1, 1], columns).

    >>> from numerics.images import digits
    >>> from numerics.threads import single_thread
    >>> with single_thread():                                   # one BLAS thread: faster for this small fit
    ...     classifier, data = digit_classifier(), digits()
    ...     print(classifier.classes_.tolist(), bool(classifier.score(data.X.T, data.labels) > 0.95))
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9] True
    """
    from sklearn.linear_model import LogisticRegression

    from numerics.images import digits

    data = digits()
    X, labels = data.X, data.labels
    return LogisticRegression(max_iter=2000, random_state=seed).fit(X.T, labels)


def response_metrics(strengths, responses) -> dict:
    """Spearman ρ, largest single-step share and total change of each row of ``responses``.

    ``responses`` has one row per sample and one column per strength (increasing). A row
    that does not change at all has ρ and share NaN (undefined) and total change 0.

    >>> metrics = response_metrics([0.0, 0.5, 1.0], [[0.0, 1.0, 2.0], [0.0, 0.0, 3.0]])   # an even change, a jump
    >>> metrics["largest_step_share"].tolist(), metrics["total_change"].tolist()
    ([0.5, 1.0], [2.0, 3.0])
    """
    from scipy.stats import spearmanr

    strengths = as_vector("strengths", strengths)
    if strengths.size < 3 or np.any(np.diff(strengths) <= 0):
        raise ValueError(f"strengths must be >= 3 increasing values; got {strengths.tolist()}")
    responses = as_matrix("responses", responses, cols=strengths.size, rows_name="samples",
                          cols_name="strengths")
    steps = np.abs(np.diff(responses, axis=1))
    variation = steps.sum(axis=1)
    share = np.divide(steps.max(axis=1), variation, out=np.full(variation.shape, np.nan), where=variation > 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")                          # constant rows: ρ undefined
        rho = np.array([spearmanr(strengths, row).statistic if np.ptp(row) > 0 else np.nan
                        for row in responses])
    return dict(spearman=rho, abs_spearman=np.abs(rho), largest_step_share=share,
                total_change=responses[:, -1] - responses[:, 0])


def _reference_set(trained: TrainedDDPM, classes, size: int, seed: int) -> np.ndarray:
    """``size`` digits of the given classes that are not training images."""
    from numerics.images import digits

    data = digits(classes=classes)
    X = data.X
    fresh = [i for i in range(X.shape[1]) if np.min(np.abs(trained.data.unique - X[:, [i]]).sum(axis=0)) > 0]
    chosen = np.random.default_rng(seed).permutation(fresh)[:size]
    return X[:, np.sort(chosen)]


METRICS = ("spearman", "abs_spearman", "largest_step_share", "total_change")


def _group_means(metrics: dict, groups: dict) -> dict:
    """``{group: {metric: mean over the group's samples (NaN ignored)}, "n": size}``."""
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")                           # all-NaN or empty group: NaN
        for group, mask in groups.items():
            out[group] = {key: float(np.nanmean(metrics[key][mask])) if mask.any() else float("nan")
                          for key in METRICS}
            out[group]["n"] = int(mask.sum())
    return out


def _over_seeds(per_seed: list[dict], response: str) -> dict:
    """Mean and standard deviation (ddof 1) over seeds of each per-seed group average."""
    summary = {}
    for group in ("memorised", "generalised"):
        summary[group] = {"n": int(sum(record[response][group]["n"] for record in per_seed))}
        for key in METRICS:
            values = np.array([record[response][group][key] for record in per_seed])
            finite = values[np.isfinite(values)]
            summary[group][key] = dict(mean=float(finite.mean()) if finite.size else float("nan"),
                                       std=float(finite.std(ddof=1)) if finite.size > 1 else float("nan"),
                                       seeds=int(finite.size))
    return summary


def _responses(runs: list, classifier, target_column: int, direction: np.ndarray) -> dict:
    """Three responses of each sample (rows) along the strengths (columns)."""
    return dict(
        logit=np.stack([classifier.decision_function(run.T)[:, target_column] for run in runs], axis=1),
        projection=np.stack([direction @ run for run in runs], axis=1),
        displacement=np.stack([np.linalg.norm(run - runs[0], axis=0) for run in runs], axis=1))


def _vectors(trained: TrainedDDPM, target: int, size: int, t: int, contrast: bool) -> tuple[dict, np.ndarray]:
    """Steering vectors per layer and the image-space direction from the mean digit to the
    mean target digit (both from held-out reference digits)."""
    positive = _reference_set(trained, [target], size, 0)
    others = _reference_set(trained, [c for c in range(10) if c != target], size, 0)
    vectors = steering_vectors(trained, positive, t=t)
    if contrast:
        negative = steering_vectors(trained, others, t=t)
        vectors = {name: vectors[name] - negative[name] for name in vectors}
    direction = positive.mean(axis=1) - others.mean(axis=1)
    return vectors, direction / np.linalg.norm(direction)


def steering_numbers(config: DDPMConfig = DDPMConfig(), *, target: int = 0, strengths=DEFAULT_STRENGTHS,
                     n_samples: int = 200, seeds=(0, 1, 2), sampling_steps: int = 50, reference_size: int = 50,
                     reference_t: int = 10, window: str = "late", contrast: bool = False,
                     cache: str | None = None, threads: int | None = 1,
                     trained: TrainedDDPM | None = None) -> dict:
    """Steer generated digits towards class ``target``: the Fig. 7 numbers as a dict.

    ``window="late"`` steers in the authors' steps (`denoising_window`), ``"all"`` in every
    step; ``contrast=True`` uses ``v = mean(target) − mean(other digits)`` instead of eq. (11)'s
    ``mean(target)``. Three responses are measured per sample: ``logit`` (target-class logit),
    ``projection`` (pixels projected on the unit direction from the mean digit to the mean
    target digit) and ``displacement`` (``‖x(a) − x(0)‖``, how far the sample moved).
    ``summary[response][group][metric]`` holds mean and standard deviation over ``seeds`` of
    the per-seed group averages (``per_seed``).

    >>> from numerics.threads import single_thread
    >>> trained = train_ddpm(DDPMConfig.fast(n_single=6, n_duplicated=2, copies=3, train_steps=2, batch_size=8))
    >>> with single_thread():
    ...     numbers = steering_numbers(trained=trained, strengths=(0.0, 0.25, 0.5), n_samples=4, seeds=(0,),
    ...                                sampling_steps=3, reference_size=3)
    >>> numbers["steered_steps"], sorted(numbers["summary"]), sorted(numbers["summary"]["logit"])
    ([0], ['displacement', 'logit', 'projection'], ['generalised', 'memorised'])
    """
    strengths = as_vector("strengths", strengths)
    if window not in ("late", "all"):
        raise ValueError(f"window must be 'late' (the authors' steps) or 'all'; got {window!r}")
    trained = trained if trained is not None else train_ddpm(config, cache=cache, threads=threads)
    classifier = digit_classifier()
    target_column = list(classifier.classes_).index(target)
    steps = denoising_window(sampling_steps) if window == "late" else range(sampling_steps)
    per_seed = []
    with torch_threads(threads):
        vectors, direction = _vectors(trained, target, reference_size, reference_t, contrast)
        for seed in seeds:
            runs = []
            for a in strengths:
                with steer(trained.model, vectors, a, steps=steps):
                    runs.append(sample(trained, n_samples, seed=seed, steps=sampling_steps))
            keep = classifier.predict(runs[0].T) != target
            is_mem = memorization_report(runs[0], trained.data.unique).memorized[keep]
            record = {"seed": int(seed), "left_out_as_target": int(np.sum(~keep))}
            for response, values in _responses(runs, classifier, target_column, direction).items():
                metrics = {key: value[keep] for key, value in response_metrics(strengths, values).items()}
                record[response] = _group_means(metrics, {"memorised": is_mem, "generalised": ~is_mem})
            per_seed.append(record)
    responses = ("logit", "projection", "displacement")
    return dict(parameters=dict(config.params(), target=target, strengths=strengths, n_samples=n_samples,
                                seeds=list(seeds), sampling_steps=sampling_steps, reference_size=reference_size,
                                reference_t=reference_t, window=window, contrast=contrast, layers=list(vectors)),
                steered_steps=list(steps), vector_norms={name: float(np.linalg.norm(v)) for name, v in vectors.items()},
                per_seed=per_seed, summary={response: _over_seeds(per_seed, response) for response in responses})
