"""A minimal sampler and memorisation rule for the multi-noise tests.

Stand-ins, with the same interface, for ``numerics.diffusion.ve_sample`` and
``memorization_ratio`` (the authors' reverse-VE Euler–Maruyama sampler and the 1/3
nearest-neighbour rule), so that these tests do not depend on that module.
"""
from __future__ import annotations

import numpy as np


def ve_sample(denoiser, d, n_samples, *, steps=60, sigma_max=2.0, sigma_min=0.02, seed=0, clamp=None):
    """The authors' sampler: σ = geomspace(σ_max, σ_min, steps) then 0, x ← x + δ·score + √δ·z."""
    rng = np.random.default_rng(seed)
    sigmas = np.append(np.geomspace(sigma_max, sigma_min, steps), 0.0)
    x = sigma_max * rng.standard_normal((d, n_samples))
    for i in range(steps):
        score = (denoiser(x, sigmas[i]) - x) / sigmas[i] ** 2
        delta = sigmas[i] ** 2 - sigmas[i + 1] ** 2
        x = x + delta * score
        if i < steps - 1:
            x = x + np.sqrt(delta) * rng.standard_normal(x.shape)
        if clamp is not None:
            x = np.clip(x, *clamp)
    return x


def memorization_ratio(samples, X, threshold=1 / 3, metric="l2"):
    """Fraction of samples whose nearest training sample is closer than threshold × the second nearest."""
    if metric == "cosine":
        samples = samples / np.linalg.norm(samples, axis=0)
        X = X / np.linalg.norm(X, axis=0)
    distances = np.sqrt(np.maximum(np.sum(samples**2, axis=0)[:, None] - 2 * samples.T @ X
                                   + np.sum(X**2, axis=0)[None, :], 0.0))
    nearest = np.sort(distances, axis=1)
    return float(np.mean(nearest[:, 0] < threshold * nearest[:, 1]))
