"""The sample sums behind eq. (6): the row-blocked, threaded Mehler series against one serial
block and against Genz's Φ2, and the whole objective against the vectorised SciPy closed form
(Owen's T) of `benchmarks/scipy_closed_form.py`, an independent implementation."""
from unittest import mock

import numpy as np
import pytest

from benchmarks.scipy_closed_form import loss_and_grad as scipy_loss_and_grad
from numerics import moment_sums, objective
from numerics.objective import expected_loss, expected_loss_and_grad


def _mixture_instance(seed, n=300, d=12, p=9, clusters=3):
    """Clustered data and weights mixing decided and undecided neurons (σ = 0.3)."""
    rng = np.random.default_rng(seed)
    means = 3.0 * rng.normal(size=(d, clusters))
    X = np.repeat(means, n // clusters, axis=1) + 0.4 * rng.normal(size=(d, n))
    W1 = 0.3 * rng.normal(size=(d, p))
    W1[:, :clusters] += 0.2 * means
    W2 = 0.3 * rng.normal(size=(d, p))
    return X, W1, W2


@pytest.mark.parametrize("seed", range(3))
def test_blocked_threaded_series_equals_one_serial_block(seed):
    """Blocks of 7 rows on two threads against one block on one thread: the same terms summed
    in another order, so equal to rounding (1e-13 of the largest entry: ~100 additions)."""
    X, W1, W2 = _mixture_instance(seed)
    with mock.patch.object(objective, "MEHLER_MIN_PAIR_SAMPLES", 0):
        with mock.patch.object(moment_sums, "ROWS_PER_BLOCK", 7), \
                mock.patch.object(moment_sums, "SPLIT_ABOVE", 0):
            blocked = expected_loss_and_grad(W1, W2, X, 0.3, 0.01)
        with mock.patch.object(moment_sums, "ROWS_PER_BLOCK", 10**9), \
                mock.patch.object(moment_sums, "SPLIT_ABOVE", 10**18):
            serial = expected_loss_and_grad(W1, W2, X, 0.3, 0.01)
    assert blocked[0] == pytest.approx(serial[0], rel=1e-13)
    for a, b in zip(blocked[1:], serial[1:]):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-13 * np.abs(b).max())


@pytest.mark.parametrize("seed", range(3))
def test_series_with_decided_neurons_matches_genz(seed):
    """Leading terms (orders 0, 1) as products plus the series from order 2 on undecided pairs,
    against every undecided pair through Genz's Φ2: 1e-12 of the largest gradient entry
    (Φ2 is accurate to ~1e-15 absolute; the series is truncated at 1e-17 per term)."""
    X, W1, W2 = _mixture_instance(seed)
    with mock.patch.object(objective, "MEHLER_MIN_PAIR_SAMPLES", 0):
        auto = expected_loss_and_grad(W1, W2, X, 0.3, 0.01)
    genz = expected_loss_and_grad(W1, W2, X, 0.3, 0.01, pair_method="bivariate")
    assert auto[0] == pytest.approx(genz[0], rel=1e-12)
    for a, b in zip(auto[1:], genz[1:]):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12 * np.abs(b).max())
    assert expected_loss(W1, W2, X, 0.3, 0.01) == pytest.approx(auto[0], rel=1e-14)


@pytest.mark.parametrize("seed", range(3))
def test_objective_matches_the_scipy_owens_t_closed_form(seed):
    """The straightforward SciPy version (every pair of every sample, Φ2 by Owen's T, no fast
    paths): agreement to 1e-10 of the largest entry — Owen's T in SciPy is accurate to
    ~1e-14, and the SciPy version forms Φ2 − ½[Φ(h)+Φ(k)] by cancellation."""
    X, W1, W2 = _mixture_instance(seed, n=60)
    reference = scipy_loss_and_grad(W1, W2, X, 0.3, 0.01)
    exact = expected_loss_and_grad(W1, W2, X, 0.3, 0.01)
    assert exact[0] == pytest.approx(reference[0], rel=1e-10)
    for a, b in zip(exact[1:], reference[1:]):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-10 * np.abs(b).max())


def test_row_blocks_group_equal_patterns_and_skip_decided_rows():
    undecided = np.array([[1, 0, 0], [0, 0, 0], [0, 1, 1], [1, 0, 0], [0, 1, 1]], dtype=np.uint8)
    blocks = moment_sums.row_blocks(undecided, 2)
    assert [rows.tolist() for rows, _ in blocks] == [[2, 4], [0, 3]]
    assert [columns.tolist() for _, columns in blocks] == [[1, 2], [0]]
