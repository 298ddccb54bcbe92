"""Solutions to the exercises of tutorial 5 (diffusion)."""
from __future__ import annotations

import numpy as np


def cosine_copy_fraction(samples, X, threshold):
    """Exercise 9: the ratio rule on unit vectors — d₁ < threshold · d₂, chordal distances ‖ŝ − x̂‖."""
    S = samples / np.linalg.norm(samples, axis=0)
    U = X / np.linalg.norm(X, axis=0)
    distances = np.linalg.norm(U[:, :, None] - S[:, None, :], axis=0)      # (n, m)
    first, second = np.sort(distances, axis=0)[:2]
    return float(np.mean(first < threshold * second))


def auroc(scores_memorised, scores_generalised):
    """Exercise 10: Mann–Whitney, P(s_mem > s_gen) + P(s_mem = s_gen)/2 over all pairs."""
    mem = np.asarray(scores_memorised)[:, None]
    gen = np.asarray(scores_generalised)[None, :]
    return float(np.mean(mem > gen) + 0.5 * np.mean(mem == gen))
