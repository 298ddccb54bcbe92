"""Table 1 and Fig. 5 on the tiny digit DDPM: detect memorised samples without a prompt.

Generated samples of `numerics.unet_ddpm` are labelled memorised / generalised by the ℓ2
nearest / second-nearest rule against the unique training images; then three prompt-free
scores, each larger for memorised samples, are compared by `numerics.detection.roc_summary`:

* **Std** (the paper's Algorithm 1): noise the sample to timestep ``t`` (the paper's t = 50
  of 1000), one UNet call, spatial max of the up-block activations read with
  `numerics.hooks.collect`, score = population Std of that channel vector. The layers mirror
  the authors' Stable Diffusion choice (`detection_layers`); each layer alone and all of them
  concatenated (the primary score, fixed before looking at results) are reported;
* **denoising loss** (a membership score): minus the mean ε-prediction error at ``t`` over a
  few noise draws;
* **Jacobian effective rank** (App. B.3): minus the effective rank of the Jacobian
  ``∂x̂₀/∂x_t`` of the denoiser at the noisy sample.

`detection_numbers` returns all of it as a dict, with the Std distributions of both groups
(the Fig. 5 analog).

>>> from numerics.unet_ddpm import DDPMConfig, build_unet
>>> detection_layers(build_unet(DDPMConfig.fast()))        # two resnets per up block
['up_blocks.0.resnets.0.nonlinearity', 'up_blocks.0.resnets.1.nonlinearity', 'up_blocks.1.resnets.0.nonlinearity']
"""
from __future__ import annotations

import time

import numpy as np

from numerics.detection import effective_rank, roc_summary, spikiness
from numerics.hooks import collect, require_torch, torch_threads
from numerics.diffusion import memorization_report
from numerics.unet_ddpm import DDPMConfig, TrainedDDPM, noised, sample, train_ddpm
from numerics.validation import positive_int

__all__ = ["detection_layers", "std_scores", "denoising_loss_scores", "denoiser_jacobians", "jacobian_rank_scores",
           "detection_numbers", "ALL_LAYERS"]

# Docstring examples build a UNet: they need the optional extra.
__doctest_requires__ = {("*",): ["torch", "diffusers"]}

ALL_LAYERS = "all detection layers"


def detection_layers(model) -> list[str]:
    """Up-block activations of the detector: every resnet of ``up_blocks.0`` and the first of
    ``up_blocks.1`` — the authors' SD 1.4 layers (``up_blocks.0.resnets.{0,1,2}``,
    ``up_blocks.1.resnets.0``, each ``.nonlinearity``) mapped to a UNet of any depth.

    >>> from numerics.unet_ddpm import build_unet
    >>> detection_layers(build_unet(DDPMConfig.fast()))        # every up_blocks.0 resnet, the first of up_blocks.1
    ['up_blocks.0.resnets.0.nonlinearity', 'up_blocks.0.resnets.1.nonlinearity', 'up_blocks.1.resnets.0.nonlinearity']
    """
    first = [f"up_blocks.0.resnets.{j}.nonlinearity" for j in range(len(model.up_blocks[0].resnets))]
    return first + ["up_blocks.1.resnets.0.nonlinearity"]


def std_scores(trained: TrainedDDPM, X, *, t: int = 50, seed: int = 0, layers=None) -> dict:
    """Algorithm 1's score per layer and for all layers concatenated: ``{name: (m,)}``.

    A diffusers ``ResnetBlock2D.nonlinearity`` runs three times per block (features, time
    embedding, features); the last call — the features entering the block's second
    convolution — is read, as a hook that overwrites its record on every call does.

    >>> trained = train_ddpm(DDPMConfig.fast(n_single=6, n_duplicated=2, copies=3, train_steps=2, batch_size=8))
    >>> scores = std_scores(trained, trained.data.unique[:, :3], t=50)    # X (64, m) = (64, 3)
    >>> {name: value.shape for name, value in scores.items()}[ALL_LAYERS], bool(np.all(scores[ALL_LAYERS] >= 0))
    ((3,), True)
    """
    torch = require_torch()
    layers = list(layers) if layers is not None else detection_layers(trained.model)
    x_t, _, timesteps = noised(trained, X, t, seed=seed)
    with torch.no_grad():
        reps = collect(trained.model, layers, lambda model: model(x_t, timesteps), pooling="max", calls=-1)
    scores = {name: spikiness(reps[name], samples="rows") for name in layers}
    scores[ALL_LAYERS] = spikiness(np.concatenate([reps[name] for name in layers], axis=1), samples="rows")
    return scores


def denoising_loss_scores(trained: TrainedDDPM, X, *, t: int = 50, draws: int = 4, seed: int = 0) -> np.ndarray:
    """Minus the per-sample ε-prediction error ``mean‖ε̂(x_t, t) − ε‖²/d`` over ``draws`` noises.

    >>> trained = train_ddpm(DDPMConfig.fast(n_single=6, n_duplicated=2, copies=3, train_steps=2, batch_size=8))
    >>> scores = denoising_loss_scores(trained, trained.data.unique[:, :3], t=50, draws=2)   # X (64, 3)
    >>> scores.shape, bool(np.all(scores <= 0))                  # minus a squared error
    ((3,), True)
    """
    torch = require_torch()
    draws = positive_int("draws", draws)
    total = 0.0
    for k in range(draws):
        x_t, noise, timesteps = noised(trained, X, t, seed=seed + k)
        with torch.no_grad():
            error = (trained.model(x_t, timesteps).sample - noise) ** 2
        total = total + error.double().flatten(1).mean(dim=1).numpy()
    return -total / draws


def denoiser_jacobians(trained: TrainedDDPM, X, *, t: int = 50, seed: int = 0, chunk: int = 16) -> np.ndarray:
    """Jacobians ``J = ∂x̂₀/∂x_t`` (m, 64, 64) of the denoiser at the noised samples (App. B.3).

    ``x̂₀ = (x_t − √(1 − ᾱ_t) ε̂(x_t, t)) / √ᾱ_t``. Row ``i`` of J is the gradient of output
    pixel ``i``; all 64 rows come from one backward pass over 64 copies of the sample (the
    network treats batch entries independently: group norm, no batch norm).

    >>> trained = train_ddpm(DDPMConfig.fast(n_single=6, n_duplicated=2, copies=3, train_steps=2, batch_size=8))
    >>> denoiser_jacobians(trained, trained.data.unique[:, :2], t=50).shape   # (m, 64, 64) for X (64, 2)
    (2, 64, 64)
    """
    torch = require_torch()
    x_t, _, _ = noised(trained, X, t, seed=seed)
    alpha_bar = float(trained.scheduler.alphas_cumprod[t])
    d = x_t[0].numel()
    blocks = []
    for start in range(0, x_t.shape[0], positive_int("chunk", chunk)):
        block = x_t[start:start + chunk]
        copies = block.repeat_interleave(d, dim=0).requires_grad_(True)
        eps = trained.model(copies, torch.full((copies.shape[0],), t, dtype=torch.long)).sample
        x0 = (copies - (1.0 - alpha_bar) ** 0.5 * eps) / alpha_bar ** 0.5
        diagonal = x0.reshape(block.shape[0], d, d).diagonal(dim1=1, dim2=2)   # output i of copy i
        (gradient,) = torch.autograd.grad(diagonal.sum(), copies)
        blocks.append(gradient.reshape(block.shape[0], d, d).double().numpy())
    return np.concatenate(blocks)


def jacobian_rank_scores(trained: TrainedDDPM, X, *, t: int = 50, seed: int = 0) -> np.ndarray:
    """Minus the effective rank of the denoiser's Jacobian at each noised sample.

    The sign follows App. B.3's picture for the ReLU DAE (one dominant data vector when
    memorised, local statistics when generalised); whether a UNet at small t behaves alike is
    what the ROC of this score measures — an AUROC below 0.5 means the opposite ordering.

    >>> trained = train_ddpm(DDPMConfig.fast(n_single=6, n_duplicated=2, copies=3, train_steps=2, batch_size=8))
    >>> scores = jacobian_rank_scores(trained, trained.data.unique[:, :2], t=50)   # X (64, 2)
    >>> scores.shape, bool(np.all((-64 <= scores) & (scores <= -1)))   # minus an effective rank in [1, 64]
    ((2,), True)
    """
    jacobians = denoiser_jacobians(trained, X, t=t, seed=seed)
    return -effective_rank(np.linalg.svd(jacobians, compute_uv=False))


def _timed(function):
    began = time.perf_counter()
    value = function()
    return value, time.perf_counter() - began


def _summaries(scores: dict, seconds: dict, is_mem: np.ndarray) -> dict:
    if is_mem.all() or not is_mem.any():
        return {}
    return {name: roc_summary(value[is_mem], value[~is_mem], seconds=seconds[name]).as_dict()
            for name, value in scores.items()}


def _distribution(values: np.ndarray, is_mem: np.ndarray, bins: int = 20) -> dict:
    edges = np.histogram_bin_edges(values, bins=bins)
    return dict(edges=edges, memorised=values[is_mem], generalised=values[~is_mem],
                counts_memorised=np.histogram(values[is_mem], edges)[0],
                counts_generalised=np.histogram(values[~is_mem], edges)[0])


def detection_numbers(config: DDPMConfig = DDPMConfig(), *, n_samples: int = 500, sampling_steps: int = 50,
                      t: int = 50, loss_draws: int = 4, t_sweep=(10, 50, 100, 200), seed: int = 0,
                      cache: str | None = None, threads: int | None = 1,
                      trained: TrainedDDPM | None = None) -> dict:
    """Train (or load) the DDPM, sample, label, score: the Table 1 and Fig. 5 numbers as a dict.

    ``methods`` maps each score to its `roc_summary` (AUROC, TPR at 1 % FPR, counts, seconds
    per sample); it is empty when every sample falls in one group (``message`` says so).
    ``fig5`` holds the Std (all detection layers) of both groups and their histograms;
    ``std_auroc_by_t`` the AUROC of that Std when the samples are noised to each ``t_sweep``.

    >>> trained = train_ddpm(DDPMConfig.fast(n_single=6, n_duplicated=2, copies=3, train_steps=2, batch_size=8))
    >>> numbers = detection_numbers(trained=trained, n_samples=6, sampling_steps=3, loss_draws=1, t_sweep=(50,))
    >>> numbers["samples"]["n"], numbers["primary"], sorted(numbers["std_auroc_by_t"])
    (6, 'std', [50])
    """
    began = time.perf_counter()
    trained = trained if trained is not None else train_ddpm(config, cache=cache, threads=threads)
    with torch_threads(threads):
        samples = sample(trained, n_samples, seed=seed, steps=sampling_steps)
        labels = memorization_report(samples, trained.data.unique)
        is_mem = labels.memorized
        std, seconds_std = _timed(lambda: std_scores(trained, samples, t=t, seed=seed))
        loss, seconds_loss = _timed(lambda: denoising_loss_scores(trained, samples, t=t, draws=loss_draws, seed=seed))
        rank, seconds_rank = _timed(lambda: jacobian_rank_scores(trained, samples, t=t, seed=seed))
        by_t = {int(step): std_scores(trained, samples, t=step, seed=seed)[ALL_LAYERS] for step in t_sweep}
    scores = {f"std[{name}]": value for name, value in std.items() if name != ALL_LAYERS}
    scores.update({"std": std[ALL_LAYERS], "denoising loss": loss, "jacobian effective rank": rank})
    seconds = {name: seconds_std for name in scores}
    seconds.update({"denoising loss": seconds_loss, "jacobian effective rank": seconds_rank})
    methods = _summaries(scores, seconds, is_mem)
    n_mem = int(is_mem.sum())
    return dict(
        parameters=dict(config.params(), n_samples=n_samples, sampling_steps=sampling_steps, t=t,
                        loss_draws=loss_draws, t_sweep=list(t_sweep), seed=seed,
                        layers=detection_layers(trained.model)),
        model=dict(n_parameters=trained.n_parameters, train_seconds=trained.seconds,
                   from_cache=trained.from_cache, final_loss=float(np.mean(trained.losses[-100:]))),
        samples=dict(n=n_samples, n_memorised=n_mem, n_generalised=n_samples - n_mem,
                     memorised_copies_of_duplicated=int(np.sum(trained.data.duplicated[labels.nearest[is_mem]])),
                     distance_ratio=labels.distance_ratio),
        methods=methods, primary="std",
        message="" if methods else f"no ROC: {n_mem} of {n_samples} samples are memorised",
        fig5=_distribution(std[ALL_LAYERS], is_mem),
        std_auroc_by_t={step: _summaries({"std": value}, {"std": None}, is_mem).get("std", {}).get("auroc")
                        for step, value in by_t.items()},
        seconds=time.perf_counter() - began)
