"""theory.assumptions: the measured assumptions of a predicted point, and the warning outside them.

`mask_margin` is checked against the literal per-column, per-sample loop of
``proofs.definition_3_1.signed_margin`` (an independent implementation), and the warning is
checked on the case that motivates it: eq. (9) on raw digits (β1 ≈ 1), where the exact loss is
orders of magnitude above the block formula.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from numerics.images import digits, largest_cosine
from numerics.objective import expected_loss
from proofs.definition_3_1 import signed_margin
from theory.assumptions import Assumptions, mask_margin
from theory.errors import AssumptionError, AssumptionWarning
from theory.memorization import loss_per_sample_np
from theory.predict import memorization_weights, partition_weights, predict, predicted_loss


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), p=st.integers(1, 5), n=st.integers(2, 8), K=st.integers(1, 3))
def test_mask_margin_equals_the_literal_loop(seed, p, n, K):
    rng = np.random.default_rng(seed)
    W, X = rng.normal(size=(3, p)), rng.normal(size=(3, n))
    owners, labels = rng.integers(0, K, size=p), rng.integers(0, K, size=n)
    # both are a minimum over the same float64 quotients: equal to rounding (1e-12 absolute)
    assert mask_margin(W, owners, X, labels) == pytest.approx(signed_margin(W, owners, X, labels), abs=1e-12)


def test_failed_lists_each_assumption_with_its_value():
    assert Assumptions(-0.5, 0.1, 2.0).hold and Assumptions(-0.5, 0.1, 2.0).failed == []
    failed = Assumptions(0.93, -0.25, -1.5).failed
    assert len(failed) == 3
    assert "0.93" in failed[0] and "-0.25" in failed[1] and "-1.5" in failed[2]
    assert "zero" in Assumptions(float("nan"), 1.0, 1.0).failed[0]


def raw_digits(n=5):
    return digits(n=n, seed=0).X


def test_eq9_on_raw_digits_warns_with_the_measured_beta1_and_the_exact_loss_is_far_off():
    X = raw_digits()
    sigma, lam = 0.2, 1e-3
    with pytest.raises(AssumptionError, match="β1"):
        memorization_weights(X, 5, sigma, lam)
    with pytest.warns(AssumptionWarning) as caught:
        W = memorization_weights(X, 5, sigma, lam, check_assumptions=False)
    message = str(caught[0].message)
    beta1 = largest_cosine(X)
    assert "β < 0" in message and f"{beta1:.4g}" in message and "expected_loss" in message
    # what the warning is about: the formula's loss (λ included) against the exact eq. (6) at W
    s = np.sum(X ** 2, axis=0)
    formula = float(np.mean(loss_per_sample_np(s, X.shape[1], sigma, lam)))
    exact = expected_loss(W, W, X, sigma, lam)
    assert exact > 10 * formula


def test_within_the_assumptions_nothing_is_warned():
    X = np.array([[3.0, 3.1, -1.0], [0.2, -0.2, 0.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pred = predict(X, [0, 0, 1], 3, 0.1, 0.0)
        predicted_loss(X, [0, 0, 1], [2, 1], 0.1, 0.0)
        memorization_weights(np.array([[1.0, -1.0], [0.2, 0.0]]), 2, 0.1, 0.0, check_assumptions=False)
    assert pred.assumptions.hold and pred.assumptions.mask_margin > 0 and pred.assumptions.beta < 0


def test_predict_outside_the_assumptions_records_and_warns():
    """Two clusters whose means are acute (β > 0): predict raises, or warns and records what failed."""
    X = np.array([[3.0, 3.1, 2.0, 2.1], [0.2, -0.2, 1.9, 2.1]])
    labels = [0, 0, 1, 1]
    with pytest.raises(AssumptionError, match="β < 0"):
        predict(X, labels, 2, 0.1, 0.0)
    means = np.stack([X[:, :2].mean(axis=1), X[:, 2:].mean(axis=1)], axis=1)
    beta = float(means[:, 0] @ means[:, 1] / np.prod(np.linalg.norm(means, axis=0)))
    with pytest.warns(AssumptionWarning, match=f"β < 0.*measured {beta:.4g}"):
        pred = predict(X, labels, 2, 0.1, 0.0, check_assumptions=False)
    assert not pred.assumptions.hold and pred.assumptions.beta == pytest.approx(pred.beta)
    with pytest.warns(AssumptionWarning, match="stable masks"):
        partition_weights(X, labels, [1, 1], 0.1, 0.0, check_assumptions=False)
    with pytest.warns(AssumptionWarning, match="block formula"):
        predicted_loss(X, labels, [1, 1], 0.1, 0.0)
    # the block formula and the exact loss part ways: the block of cluster 0 fires on cluster 1
    exact = expected_loss(pred.W, pred.W, X, 0.1, 0.0)
    assert abs(exact - pred.loss) > 0.1 * pred.loss
