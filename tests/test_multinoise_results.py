"""Trained multi-noise face models, sampled: the memorisation numbers and the functions behind them.

The sampler and the 1/3 rule here are the local stand-ins of ``tests/multinoise_sampling.py``.
"""
from __future__ import annotations

import numpy as np
import pytest

from multinoise_sampling import memorization_ratio, ve_sample
from numerics.denoisers import f_emp
from numerics.multinoise import MultiNoiseDAE
from numerics.multinoise_results import sampling_summary, train_case


def test_local_sampler_reproduces_training_points_with_the_optimal_denoiser():
    """The empirical posterior mean (eq. 3) memorises: its samples are training points (≥ 90 %).

    A sanity check of the stand-in sampler and rule on a denoiser known to memorise.
    """
    X = 3.0 * np.linalg.qr(np.random.default_rng(0).normal(size=(16, 4)))[0]
    samples = ve_sample(lambda Y, sigma: f_emp(Y, X, sigma), 16, 64, seed=1)
    assert memorization_ratio(samples, X) >= 0.9
    assert memorization_ratio(samples, X, metric="cosine") >= 0.9


def test_sampling_summary_counts_memorised_samples():
    X = np.random.default_rng(1).normal(size=(6, 3))
    model = MultiNoiseDAE.initial(6, 3, seed=0)

    def copies(denoiser, d, n_samples, seed=0, clamp=None):
        return np.repeat(X, n_samples // 3 + 1, axis=1)[:, :n_samples]

    summary = sampling_summary(model, X, copies, memorization_ratio, n_samples=9, clamps=(None,))
    assert summary["no clamp"]["ratio_l2"] == 1.0 and summary["no clamp"]["ratio_cosine"] == 1.0
    assert sum(summary["no clamp"]["active_neurons"]) == 9


@pytest.mark.slow
def test_trained_face_models_memorise_and_generalise():
    """5 faces vs all 100 (d = 1024, exact training, the authors' weight decays), 64 samples each.

    Asserted: the 5-face model stores the faces (a column within cos 0.9 of each), its samples
    are closer to training faces than the 100-face model's, and the 100-face model's samples
    are new (ratio ≤ 0.1 in ℓ2 and cosine). The 5-face ratios themselves are reported by
    ``numerics.multinoise_results`` (they do not reach 0.9 with this sampler).
    """
    mem = train_case("memorise")
    gen = train_case("generalise")
    assert gen.model.p * 10 <= gen.X.shape[1]                         # p ≪ n
    unit = mem.model.W / np.maximum(np.linalg.norm(mem.model.W, axis=0), 1e-300)
    assert np.all(np.max(unit.T @ (mem.X / np.linalg.norm(mem.X, axis=0)), axis=0) >= 0.9)
    scores = {name: sampling_summary(case.model, case.X, ve_sample, memorization_ratio)
              for name, case in (("mem", mem), ("gen", gen))}
    for clamp in ("no clamp", "clamp"):
        assert scores["gen"][clamp]["ratio_l2"] <= 0.1 and scores["gen"][clamp]["ratio_cosine"] <= 0.1
        assert scores["mem"][clamp]["ratio_cosine"] > scores["gen"][clamp]["ratio_cosine"]
        assert scores["mem"][clamp]["best_cosine_quartiles"][1] > scores["gen"][clamp]["best_cosine_quartiles"][1]
