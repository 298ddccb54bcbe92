"""The digit DDPM: training (cached, resumable), memorisation labels, detection and steering numbers."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

from optional_deps import require

torch = require("torch")
require("diffusers")

from numerics.detection import null_auroc_se, roc_summary  # noqa: E402
from numerics.hooks import torch_threads  # noqa: E402
from numerics.unet_ddpm import DDPMConfig, digit_training_set, sample, train_ddpm  # noqa: E402
from numerics.unet_numbers import digit_ddpm_numbers  # noqa: E402
from numerics.unet_detection import denoiser_jacobians, detection_numbers  # noqa: E402
from numerics.unet_steering import response_metrics  # noqa: E402

# A micro configuration for the mechanics (cache, resume): seconds, not minutes.
MICRO = DDPMConfig.fast(n_single=6, n_duplicated=2, copies=3, train_steps=12, batch_size=8, warmup_steps=2)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    with torch_threads(1):
        yield


@pytest.fixture(scope="module")
def fast_numbers(tmp_path_factory):
    return digit_ddpm_numbers(fast=True, cache=str(tmp_path_factory.mktemp("ddpm_cache")))


def test_training_set_holds_duplicates():
    data = digit_training_set(DDPMConfig())
    assert data.X.shape == (64, 300 + 10 * 30) and data.unique.shape == (64, 310)
    np.testing.assert_array_equal(data.X, data.unique[:, data.source])
    assert np.all(np.bincount(data.source)[data.duplicated] == 30) and np.all(np.bincount(data.source)[~data.duplicated] == 1)
    assert len({tuple(column) for column in data.unique.T}) == 310          # distinct digits


def test_cache_returns_the_same_weights(tmp_path):
    first = train_ddpm(MICRO, cache=str(tmp_path))
    again = train_ddpm(MICRO, cache=str(tmp_path))
    assert not first.from_cache and again.from_cache and first.key == again.key
    for (name, a), (_, b) in zip(first.model.state_dict().items(), again.model.state_dict().items()):
        assert torch.equal(a, b), name
    np.testing.assert_array_equal(sample(first, 4, seed=1, steps=5), sample(again, 4, seed=1, steps=5))


def test_interrupted_training_resumes_to_the_same_weights(tmp_path):
    straight = train_ddpm(MICRO, cache=str(tmp_path / "a"), checkpoint_every=4)

    def stop_at_seven(step, loss):
        if step == 6:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_ddpm(MICRO, cache=str(tmp_path / "b"), checkpoint_every=4, callback=stop_at_seven)
    resumed = train_ddpm(MICRO, cache=str(tmp_path / "b"), checkpoint_every=4)
    assert not resumed.from_cache                                    # finished from step 4
    np.testing.assert_array_equal(resumed.losses, straight.losses)
    for (name, a), (_, b) in zip(straight.model.state_dict().items(), resumed.model.state_dict().items()):
        assert torch.equal(a, b), name
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == sorted(p.name for p in (tmp_path / "a").iterdir())


def test_jacobians_equal_autograd(tmp_path):
    trained = train_ddpm(MICRO, cache=str(tmp_path))
    X = trained.data.unique[:, :3]
    fast = denoiser_jacobians(trained, X, t=50, seed=2, chunk=2)
    from numerics.unet_ddpm import noised

    x_t, _, _ = noised(trained, X, 50, seed=2)
    alpha_bar = float(trained.scheduler.alphas_cumprod[50])

    def denoise(x):                                                  # one image (1, 8, 8) → x̂₀ (64,)
        eps = trained.model(x[None], torch.tensor([50])).sample[0]
        return ((x - (1 - alpha_bar) ** 0.5 * eps) / alpha_bar ** 0.5).flatten()

    for i in range(3):
        reference = torch.autograd.functional.jacobian(denoise, x_t[i]).reshape(64, 64).double().numpy()
        # float32 backward passes through different batch shapes: agreement to float32
        # rounding accumulated over ~30 layers, 1e-4 relative to the largest entry.
        np.testing.assert_allclose(fast[i], reference, rtol=0, atol=1e-4 * np.abs(reference).max())


def test_fast_variant_produces_detection_numbers(fast_numbers):
    detection = fast_numbers["detection"]
    samples, model = detection["samples"], detection["model"]
    assert 10_000 <= model["n_parameters"] <= 100_000
    assert samples["n_memorised"] >= 10 and samples["n_generalised"] >= 10, samples
    assert set(detection["methods"]) >= {"std", "denoising loss", "jacobian effective rank"}
    ratio = np.asarray(detection["samples"]["distance_ratio"])
    assert samples["n_memorised"] == int(np.sum(ratio < 1 / 3))
    fig5 = detection["fig5"]
    assert len(fig5["memorised"]) == samples["n_memorised"] and len(fig5["generalised"]) == samples["n_generalised"]
    for name, row in detection["methods"].items():
        assert 0.0 <= row["auroc"] <= 1.0 and 0.0 <= row["tpr_at_1pct_fpr"] <= 1.0, name
        assert row["n_memorised"] + row["n_generalised"] == samples["n"] and row["seconds_per_sample"] > 0
    again = roc_summary(fig5["memorised"], fig5["generalised"])
    assert again.auroc == detection["methods"]["std"]["auroc"]


def test_std_separates_memorised_samples_on_the_fast_model(fast_numbers):
    """Algorithm 1's claim on a model trained here: memorised samples have larger Std. Tested
    as AUROC above the no-information level by 3 standard errors of the null AUROC."""
    detection = fast_numbers["detection"]
    n_mem, n_gen = detection["samples"]["n_memorised"], detection["samples"]["n_generalised"]
    assert detection["methods"]["std"]["auroc"] > 0.5 + 3 * null_auroc_se(n_mem, n_gen)


def test_fast_variant_produces_steering_numbers(fast_numbers):
    steering = fast_numbers["steering"]
    assert steering["steered_steps"] == list(range(30, 48))            # last 20 of 50 except the final 2
    for response in ("logit", "projection", "displacement"):
        for group in ("memorised", "generalised"):
            cell = steering["summary"][response][group]
            assert cell["n"] > 0
            share = cell["largest_step_share"]["mean"]
            assert np.isnan(share) or 1 / (len(steering["parameters"]["strengths"]) - 1) - 1e-12 <= share <= 1 + 1e-12
    for record in steering["per_seed"]:
        assert record["displacement"]["generalised"]["total_change"] >= 0


@given(st.lists(st.floats(-10, 10), min_size=3, max_size=9, unique=True))
def test_response_metrics_against_direct_formulas(values):
    values = np.array(values)
    strengths = np.arange(values.size, dtype=float)
    metrics = response_metrics(strengths, values[None, :])
    ranks = np.argsort(np.argsort(values))                               # no ties: unique values
    n = values.size
    spearman = 1 - 6 * np.sum((ranks - np.arange(n)) ** 2) / (n * (n ** 2 - 1))
    steps = np.abs(np.diff(values))
    # float64 rounding of sums of ≤ 9 terms of size ≤ 20: ≤ 1e-13 absolute.
    assert metrics["spearman"][0] == pytest.approx(spearman, abs=1e-12)
    assert metrics["largest_step_share"][0] == pytest.approx(steps.max() / steps.sum(), abs=1e-12)
    assert metrics["total_change"][0] == pytest.approx(values[-1] - values[0], abs=1e-12)


def test_response_metrics_of_a_flat_response_are_undefined():
    metrics = response_metrics([0.0, 1.0, 2.0], [[1.0, 1.0, 1.0]])
    assert np.isnan(metrics["spearman"][0]) and np.isnan(metrics["largest_step_share"][0])
    assert metrics["total_change"][0] == 0.0


@pytest.mark.parametrize("strengths", [[0.0, 1.0], [0.0, 2.0, 1.0]])
def test_response_metrics_reject_bad_grids(strengths):
    with pytest.raises(ValueError, match="strengths"):
        response_metrics(strengths, np.zeros((1, len(strengths))))


def test_bad_configuration_is_named():
    with pytest.raises(ValueError, match="n_single"):
        digit_training_set(DDPMConfig(n_single=1, n_duplicated=0))
    with pytest.raises(ValueError, match="train_steps"):
        train_ddpm(DDPMConfig.fast(train_steps=0))
    with pytest.raises(ValueError, match="learning_rate"):
        train_ddpm(DDPMConfig.fast(learning_rate=-1.0))


@pytest.mark.slow
def test_default_run_separates_memorised_samples(tmp_path):
    """The default-size model (≈90k parameters, 3000 steps): Std and the denoising loss both
    separate memorised from generalised samples beyond 3 null standard errors."""
    numbers = detection_numbers(DDPMConfig(), n_samples=500, cache=str(tmp_path), t_sweep=(50,))
    n_mem, n_gen = numbers["samples"]["n_memorised"], numbers["samples"]["n_generalised"]
    assert n_mem >= 20 and n_gen >= 20
    for method in ("std", "denoising loss"):
        assert numbers["methods"][method]["auroc"] > 0.5 + 3 * null_auroc_se(n_mem, n_gen), method
