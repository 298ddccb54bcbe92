"""numerics.detection against direct numpy computations (oracle tests, hypothesis)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra.numpy import arrays

from numerics.detection import roc_summary, spikiness, tpr_at_fpr

# float64 sums of at most a few hundred O(1) terms: relative rounding ≤ 1e-13 (n·eps with n ≤ 500).
ROUNDING = 1e-12

# Entries are 0 or at least 1e-60: the direct formula's h⁴ underflows below ~1e-77 (the package
# rescales each column first, numerics.compare), and the oracle must be exact where it is used.
representations = arrays(np.float64, st.tuples(st.integers(1, 12), st.integers(1, 6)),
                         elements=st.one_of(st.just(0.0), st.floats(1e-60, 10.0, allow_nan=False, width=64)))
# Small integer scores make ties between and within the classes frequent.
score_lists = st.lists(st.integers(-5, 5).map(float), min_size=1, max_size=300)


def direct_auroc(mem, gen) -> float:
    """Mann–Whitney: P(score_mem > score_gen) + ½ P(equal), over all pairs."""
    mem, gen = np.asarray(mem)[:, None], np.asarray(gen)[None, :]
    return float(np.mean((mem > gen) + 0.5 * (mem == gen)))


def direct_tpr(mem, gen, max_fpr=0.01) -> float:
    """Sweep every threshold (flag score >= τ, τ over all scores and +inf); best admissible TPR."""
    mem, gen = np.asarray(mem), np.asarray(gen)
    best = 0.0                                                   # τ = +inf flags nothing
    for tau in np.concatenate([mem, gen]):
        if np.mean(gen >= tau) <= max_fpr:
            best = max(best, float(np.mean(mem >= tau)))
    return best


@given(representations)
def test_std_is_the_population_std_of_each_column(H):
    expected = np.sqrt(np.mean((H - H.mean(axis=0)) ** 2, axis=0))
    np.testing.assert_allclose(spikiness(H), expected, rtol=ROUNDING, atol=ROUNDING * (1 + H.max()))


@given(representations)
def test_l4_l2_ratio_matches_numpy_norms(H):
    l2 = np.linalg.norm(H, ord=2, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        expected = np.where(l2 > 0, np.linalg.norm(H, ord=4, axis=0) / l2, 0.0)
    np.testing.assert_allclose(spikiness(H, kind="l4/l2"), expected, rtol=ROUNDING, atol=0)


@given(representations)
def test_rows_layout_is_the_transpose(H):
    # Same numbers, different memory order: numpy may sum in another order, so equal up to
    # float64 rounding of a mean of ≤ 12 terms (≤ 12·eps relative to max |H|).
    for kind in ("std", "l4/l2"):
        np.testing.assert_allclose(spikiness(H.T.copy(), kind=kind, samples="rows"), spikiness(H, kind=kind),
                                   rtol=ROUNDING, atol=ROUNDING * (1 + H.max()))


def test_one_hot_is_spikier_than_flat_at_equal_energy():
    p = 8
    spike, flat = np.zeros(p), np.full(p, 1 / np.sqrt(p))
    spike[3] = 1.0
    scores = spikiness(np.stack([spike, flat], axis=1))
    assert scores[1] == pytest.approx(0.0, abs=ROUNDING) and scores[0] == pytest.approx(np.sqrt(1 / p - 1 / p ** 2))


@pytest.mark.parametrize("kwargs, message", [
    (dict(kind="max"), "kind"), (dict(samples="cols"), "samples")])
def test_spikiness_rejects_unknown_options(kwargs, message):
    with pytest.raises(ValueError, match=message):
        spikiness(np.ones((3, 2)), **kwargs)


@pytest.mark.parametrize("H", [np.ones(3), np.array([[np.nan, 1.0]]), np.ones((0, 3))])
def test_spikiness_rejects_bad_arrays(H):
    with pytest.raises(ValueError, match="H"):
        spikiness(H)


@given(score_lists, score_lists)
def test_roc_summary_matches_direct_computation(mem, gen):
    summary = roc_summary(mem, gen)
    assert summary.auroc == pytest.approx(direct_auroc(mem, gen), rel=ROUNDING, abs=ROUNDING)
    assert summary.tpr_at_1pct_fpr == direct_tpr(mem, gen)      # both are exact ratios k / n
    assert (summary.n_memorised, summary.n_generalised) == (len(mem), len(gen))
    flagged = np.asarray(gen) >= summary.threshold_at_1pct_fpr
    assert np.mean(flagged) <= 0.01


@given(score_lists, score_lists, st.floats(0.0, 1.0))
def test_tpr_at_any_fpr_matches_direct_sweep(mem, gen, max_fpr):
    assert tpr_at_fpr(mem, gen, max_fpr)[0] == direct_tpr(mem, gen, max_fpr)


def test_one_percent_allows_two_false_positives_out_of_two_hundred():
    gen = np.arange(200.0)                       # the two largest generalised scores: 198, 199
    mem = np.array([198.5, 197.5, 196.5, 250.0])
    summary = roc_summary(mem, gen)    # τ = 197.5 flags 198, 199 (FPR 0.01) and 3 of 4; 196.5 flags 197 too
    assert summary.tpr_at_1pct_fpr == 0.75 and summary.threshold_at_1pct_fpr == 197.5


def test_seconds_per_sample():
    assert roc_summary([1.0], [0.0, 0.5, 0.2], seconds=2.0).seconds_per_sample == 0.5
    assert roc_summary([1.0], [0.0]).seconds_per_sample is None


@pytest.mark.parametrize("mem, gen, kwargs, name", [
    ([], [1.0], {}, "scores_memorised"), ([1.0], [np.inf], {}, "scores_generalised"),
    ([[1.0]], [0.0], {}, "scores_memorised"), ([1.0], [0.0], dict(seconds=-1), "seconds")])
def test_roc_summary_rejects_bad_input(mem, gen, kwargs, name):
    with pytest.raises(ValueError, match=name):
        roc_summary(mem, gen, **kwargs)
