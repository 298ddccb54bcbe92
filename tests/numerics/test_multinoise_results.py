"""Trained multi-noise face models, sampled: the memorisation numbers and the functions behind them."""
from __future__ import annotations

import numpy as np
import pytest

from numerics.diffusion import memorization_report, ve_sample
from numerics.multinoise import MultiNoiseDAE
from numerics.multinoise_results import case_data, sampling_summary, score_samples, train_case


def test_score_samples_counts_memorised_samples():
    """Copies of the training columns are memorised in ℓ2 and cosine; each sample counted once by its live neurons."""
    X = np.random.default_rng(1).normal(size=(6, 3))
    model = MultiNoiseDAE.initial(6, 3, seed=0)
    copies = np.repeat(X, 3, axis=1)
    scores = score_samples(model, X, copies)
    assert scores["ratio_l2"] == 1.0 and scores["ratio_cosine"] == 1.0
    assert scores["distance_ratio_median_l2"] == 0.0
    assert sum(scores["active_neurons"]) == 9
    assert scores["best_cosine_quartiles"] == pytest.approx([1.0] * 3, abs=1e-14)  # rounding: 6-term dot products of unit vectors, ≲ 10 ulp
    unit = X / np.linalg.norm(X, axis=0)
    pairwise = [unit[:, a] @ unit[:, b] for a in range(3) for b in range(3) if a != b]
    assert scores["largest_training_cosine"] == pytest.approx(max(pairwise), abs=1e-14)   # same rounding bound as above


def test_sampling_summary_is_the_shared_sampler_scored_by_the_shared_rule():
    """Same seed, same samples: the summary's ratios are `ve_sample` scored by `memorization_report`."""
    X = np.random.default_rng(2).normal(size=(5, 4))
    model = MultiNoiseDAE.initial(5, 3, seed=1)
    summary = sampling_summary(model, X, n_samples=16, seed=3)
    for clamp, key in ((None, "no clamp"), ((-1.0, 1.0), "clamp")):
        samples = ve_sample(model, 5, 16, seed=3, clamp=clamp)
        for metric in ("l2", "cosine"):
            assert summary[key][f"ratio_{metric}"] == memorization_report(samples, X, metric=metric).ratio
    with pytest.raises(ValueError, match="sampler must be one of"):
        sampling_summary(model, X, sampler="ddim")


def test_case_data_are_face_images():
    images = case_data("memorise")
    assert images.X.shape == (1024, 5) and images.shape == (32, 32)
    with pytest.raises(ValueError, match="name must be one of"):
        case_data("memorize")


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
    scores = {name: sampling_summary(case.model, case.X) for name, case in (("mem", mem), ("gen", gen))}
    for clamp in ("no clamp", "clamp"):
        assert scores["gen"][clamp]["ratio_l2"] <= 0.1 and scores["gen"][clamp]["ratio_cosine"] <= 0.1
        assert scores["mem"][clamp]["ratio_cosine"] > scores["gen"][clamp]["ratio_cosine"]
        assert scores["mem"][clamp]["best_cosine_quartiles"][1] > scores["gen"][clamp]["best_cosine_quartiles"][1]
