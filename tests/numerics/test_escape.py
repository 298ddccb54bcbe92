"""`train_to_minimum`: prune columns too short to certify, certify, step off every saddle, until a minimum."""
from __future__ import annotations

import numpy as np
import pytest

from numerics.certify import certify
from numerics.compare import column_structure
from numerics.escape import CertifiedFit, train_to_minimum
from numerics.objective import expected_loss
from oracles import without_first_column

SIGMA, LAM = 0.2, 0.01


@pytest.mark.parametrize("tied", [True, False])
def test_train_to_minimum_escapes_a_saddle_to_the_memorising_minimum(polished_mem, memorization, tied):
    """W_mem without one memorising column is a saddle; escaping it re-memorises that sample (Cor. 3.2)."""
    W1, W2 = without_first_column(polished_mem[0] if tied else polished_mem[1], tied)
    out = train_to_minimum(memorization, 5, SIGMA, LAM, tied=tied, init=W1 if tied else (W1, W2))
    assert out.rounds[0]["verdict"] == "saddle"
    assert out.certified, out.report.summary()
    assert out.report.verdict == "strict local minimum"
    assert out.report.loss < out.rounds[0]["loss"] - out.rounds[0]["descent_decrease"]
    assert column_structure(out.fit.W1, out.fit.W2, memorization).n_memorized == 3


def test_train_to_minimum_prunes_short_columns(polished_mem, memorization):
    fit = polished_mem[0]
    W = fit.W1.copy()
    zero = np.flatnonzero(np.linalg.norm(W, axis=0) == 0.0)[0]
    W[:, zero] = 1e-4 * memorization[:, 1] / np.linalg.norm(memorization[:, 1])
    out = train_to_minimum(memorization, 5, SIGMA, LAM, tied=True, init=W)
    assert out.rounds[0]["n_pruned"] == 1
    assert out.certified and np.linalg.norm(out.fit.W1[:, zero]) == 0.0
    # The minimum from before the short column was added: two gtol-critical points of one strict
    # minimum differ in loss by O(‖∇L‖²/μ_min) ≈ (1e-8·L0)²/μ_min, far below 1e-10 relative.
    assert out.report.loss == pytest.approx(fit.loss, rel=1e-10)


def test_train_to_minimum_validates_its_own_arguments(memorization):
    with pytest.raises(ValueError, match="max_escapes"):
        train_to_minimum(memorization, 2, SIGMA, LAM, max_escapes=-1)
    with pytest.raises(ValueError, match="X"):
        train_to_minimum(np.ones(3), 2, SIGMA, LAM)
    with pytest.raises(TypeError, match="certify_options"):
        train_to_minimum(memorization, 2, SIGMA, LAM, certify_options=[1])
    with pytest.raises(TypeError, match="tied"):
        train_to_minimum(memorization, 2, SIGMA, LAM, tied="yes")


def test_w_equals_zero_is_left_through_its_zero_column_descent():
    """W = 0 is a saddle (a neuron along a sample lowers the loss); the escape ends at a minimum
    whose loss is below the saddle's by at least the decrease certify measured."""
    X = np.array([[2.0, -1.0], [0.0, 1.7]])
    out = train_to_minimum(X, 2, 0.1, 0.01, tied=True, init=np.zeros((2, 2)))
    assert isinstance(out, CertifiedFit)
    first = out.rounds[0]
    assert first["verdict"] == "saddle" and first["descent_decrease"] > 0
    assert out.certified and out.report.is_minimum and out.n_escapes >= 1
    assert out.report.loss < first["loss"] - first["descent_decrease"]
    # the reported loss is eq. (6) at the returned weights (certify evaluates it in an
    # invariant basis: an exact change of coordinates, equal up to rounding)
    assert out.report.loss == pytest.approx(expected_loss(out.fit.W1, out.fit.W2, X, 0.1, 0.01), rel=1e-12)


def test_max_escapes_zero_reports_the_saddle_uncertified():
    X = np.array([[2.0, -1.0], [0.0, 1.7]])
    out = train_to_minimum(X, 2, 0.1, 0.01, tied=True, init=np.zeros((2, 2)), max_escapes=0)
    assert len(out.rounds) == 1 and out.report.verdict == "saddle" and not out.certified
    # the same point certified directly gives the same verdict: the escape loop adds nothing
    assert certify(out.fit.W1, out.fit.W2, X, 0.1, 0.01).verdict == "saddle"
