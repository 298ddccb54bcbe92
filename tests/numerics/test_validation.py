"""numerics.validation, and the bad inputs a new user tries, each named in its error.

The first half tests the checks themselves; the second half calls the package's entry
points with the inputs that used to fail silently or with a message that did not say what
was wrong (`test_bad_inputs.py` sweeps every public function systematically).
"""
from __future__ import annotations

import numpy as np
import pytest

from numerics import validation as v
from numerics.certify import certify
from numerics.compare import column_structure
from numerics.data import memorization_set
from numerics.denoisers import f_emp
from numerics.model import representation
from numerics.objective import expected_loss, expected_loss_and_grad, monte_carlo_loss
from numerics.protocol import train_protocol
from numerics.training import train
from theory.predict import memorization_weights, predict

SIGMA, LAM = 0.2, 0.01


@pytest.fixture(scope="module")
def data():
    """X (d, n) = (6, 3) with W (d, p) = (6, 4): d, n, p all different, so a transpose shows."""
    X = memorization_set(6, 3, norm=2.0, seed=0)
    W = 0.3 * np.random.default_rng(0).normal(size=(6, 4))
    return X, W


# ----------------------------------------------------------------------------- the checks


def test_as_matrix_names_each_kind_of_problem():
    with pytest.raises(TypeError, match="X must hold real numbers, not strings"):
        v.as_matrix("X", [["1", "2"]])
    with pytest.raises(TypeError, match="X must be real; got complex"):
        v.as_matrix("X", np.ones((2, 2)) * 1j)
    with pytest.raises(TypeError, match="not a string"):
        v.as_matrix("X", "abc")
    with pytest.raises(ValueError, match="X must be a 2-D array"):
        v.as_matrix("X", np.ones(3))
    with pytest.raises(ValueError, match="X is empty: shape \\(3, 0\\)"):
        v.as_matrix("X", np.ones((3, 0)))
    assert v.as_matrix("X", np.ones((3, 0)), allow_empty=True).shape == (3, 0)
    with pytest.raises(ValueError, match="X must contain only finite values; found 1 NaN"):
        v.as_matrix("X", [[1.0, np.nan]])
    with pytest.raises(ValueError, match="X is too large for float64"):
        v.as_matrix("X", [[1e200, 1.0]])
    with pytest.raises(ValueError, match="rectangular"):
        v.as_matrix("X", [[1.0, 2.0], [3.0]])
    # sqrt(float64 max) ≈ 1.34e154: entries just below it square to a finite sum, so they pass
    assert v.as_matrix("X", [[1e153]]).dtype == np.float64


def test_scalars_reject_strings_bools_complex_and_non_finite():
    for bad, error in (("0.2", TypeError), (True, TypeError), (0.2 + 1j, TypeError), (None, TypeError),
                       (np.array([0.2, 0.3]), TypeError), (float("nan"), ValueError), (-0.1, ValueError)):
        with pytest.raises(error, match="sigma"):
            v.nonnegative("sigma", bad)
    assert v.nonnegative("sigma", np.float32(0.5)) == 0.5 and v.nonnegative("sigma", np.array(2)) == 2.0
    with pytest.raises(ValueError, match="must be > 0"):
        v.positive("lr", 0.0)
    with pytest.raises(TypeError, match="p must be an integer"):
        v.positive_int("p", "3")
    with pytest.raises(ValueError, match="p must be an integer"):
        v.positive_int("p", 2.5)
    with pytest.raises(ValueError, match="p must be an integer >= 1; got 0"):
        v.positive_int("p", 0)
    assert v.positive_int("p", 4.0) == 4 and v.positive_int("p", np.int32(4)) == 4


def test_flags_seeds_and_labels():
    assert v.flag("tied", np.bool_(True)) is True
    for bad in ("yes", 1, None):
        with pytest.raises(TypeError, match="tied must be True or False"):
            v.flag("tied", bad)
    assert v.optional_flag("progress", None) is None
    generator = np.random.default_rng(3)
    assert v.as_rng("seed", generator) is generator
    for bad in ("a", 1.5, True, object()):
        with pytest.raises(TypeError, match="rng"):
            v.as_rng("rng", bad)
    with pytest.raises(ValueError, match="rng must be an integer >= 0"):
        v.as_rng("rng", -1)
    with pytest.raises(ValueError, match="X has shape \\(n, d\\)\\?"):
        v.labels_for("labels", [0, 1, 1, 2, 2, 2], n=3, d=6)
    with pytest.raises(TypeError, match="labels"):
        v.labels_for("labels", "012", n=3)
    np.testing.assert_array_equal(v.labels_for("labels", [0.0, 1.0, 1.0], n=3), [0, 1, 1])


def test_transposed_data_is_named_as_such(data):
    X, W = data
    with pytest.raises(ValueError, match="X has shape \\(n, d\\) = \\(3, 6\\)\\? Samples must be columns"):
        v.data_and_weights(X.T, W, W)
    with pytest.raises(ValueError, match="X must have shape \\(d, n\\) with samples as columns and d = 6"):
        v.data_and_weights(X[:5], W, W)                    # neither matches: plain mismatch
    with pytest.raises(ValueError, match="W1 and W2 must have the same shape"):
        v.data_and_weights(X, W, W[:, :2])


def test_loss_magnitude_names_the_largest_factor(data):
    X, W = data
    v.loss_magnitude(X, W, W, SIGMA, LAM)                  # ordinary inputs: silent
    with pytest.raises(v.MagnitudeError, match="largest factor W1"):
        v.loss_magnitude(X, 1e160 * W, W, SIGMA)
    with pytest.raises(v.MagnitudeError, match="largest factor sigma"):
        v.loss_magnitude(X, W, W, 1e200)
    with pytest.raises(v.MagnitudeError, match="largest factor lam"):
        v.loss_magnitude(X, W, W, SIGMA, 1e307)
    # the bound of the docstring is ≥ the loss itself: at the limit's edge the loss is finite
    assert np.isfinite(expected_loss(1e75 * W, 1e75 * W, X, SIGMA))


# ----------------------------------------------------------------------------- the bad inputs, one by one


def test_transposed_x_in_the_objective_says_so(data):
    X, W = data
    for call in (expected_loss, expected_loss_and_grad):
        with pytest.raises(ValueError, match="X has shape \\(n, d\\).*Samples must be columns"):
            call(W, W, X.T, SIGMA, LAM)
    with pytest.raises(ValueError, match="Y has shape \\(m, d\\)"):
        representation(W, X.T)
    with pytest.raises(ValueError, match="Y has shape \\(m, d\\)"):
        f_emp(X.T, X, SIGMA)


def test_transposed_x_in_training_with_a_start_or_labels_says_so(data):
    X, W = data
    with pytest.raises(ValueError, match="X has shape \\(n, d\\)"):
        train(X.T, 4, SIGMA, LAM, init=W)
    with pytest.raises(ValueError, match="X has shape \\(n, d\\)"):
        train_protocol(X.T, 4, SIGMA, init=W, steps=1)
    with pytest.raises(ValueError, match="X has shape \\(n, d\\)"):
        column_structure(W, W, X.T, labels=[0, 1, 2])
    with pytest.raises(ValueError, match="X has shape \\(n, d\\)"):
        certify(W, W, X.T, SIGMA, LAM)


def test_strings_for_numbers_are_type_errors(data):
    X, W = data
    with pytest.raises(TypeError, match="sigma"):
        expected_loss(W, W, X, "0.2")
    with pytest.raises(TypeError, match="sigma"):
        train(X, 4, "0.2", LAM)
    with pytest.raises(TypeError, match="lam"):
        certify(W, W, X, SIGMA, "0.01")
    with pytest.raises(TypeError, match="sigma"):
        memorization_weights(X, 4, "0.2", LAM)


def test_huge_entries_are_refused_before_they_become_nan(data):
    X, W = data
    huge = X.copy()
    huge[0, 0] = 1e200
    with pytest.raises(ValueError, match="X is too large for float64"):
        expected_loss_and_grad(W, W, huge, SIGMA, LAM)
    with pytest.raises(ValueError, match="X is too large for float64"):
        certify(W, W, huge, SIGMA, LAM)                    # was a LinAlgError
    with pytest.raises(ValueError, match="overflows float64.*W1"):
        expected_loss(1e100 * W, 1e100 * W, X, SIGMA)      # ‖X‖²‖W‖⁴ beyond float64
    with pytest.raises(ValueError, match="X and sigma are too large for eq. \\(9\\)"):
        memorization_weights(1e80 * X, 4, SIGMA, 0.0)      # ‖x_i‖⁴ overflows in r_i


def test_complex_input_is_refused(data):
    X, W = data
    with pytest.raises(TypeError, match="X must be real"):
        expected_loss(W, W, X + 0j, SIGMA)
    with pytest.raises(TypeError, match="X must be real"):
        train(X + 1j * X, 4, SIGMA, LAM)


def test_seeds_and_generators_are_checked_by_name(data):
    X, W = data
    with pytest.raises(TypeError, match="seed"):
        train(X, 4, SIGMA, LAM, seed="a")
    with pytest.raises(TypeError, match="rng"):
        monte_carlo_loss(W, W, X, SIGMA, rng="abc")
    with pytest.raises(TypeError, match="seed"):
        memorization_set(6, 3, seed="a")
    with pytest.raises(ValueError, match="seed"):
        train(X, 4, SIGMA, LAM, seed=-1)


def test_flags_must_be_bools(data):
    X, _ = data
    with pytest.raises(TypeError, match="tied"):
        train(X, 4, SIGMA, LAM, tied="yes")
    with pytest.raises(TypeError, match="progress"):
        train(X, 4, SIGMA, LAM, progress="bar")
    with pytest.raises(TypeError, match="progress"):
        train_protocol(X, 4, SIGMA, steps=1, progress="bar")


def test_empty_data_is_named_everywhere(data):
    _, W = data
    empty = np.zeros((6, 0))
    for call in (lambda: memorization_weights(empty, 4, SIGMA, LAM),
                 lambda: predict(empty, [], 4, SIGMA, LAM),
                 lambda: train(empty, 4, SIGMA, LAM),
                 lambda: certify(W, W, empty, SIGMA, LAM),
                 lambda: expected_loss(W, W, empty, SIGMA)):
        with pytest.raises(ValueError, match="X is empty: shape \\(6, 0\\)"):
            call()
    with pytest.raises(ValueError, match="X is empty: shape \\(0, 3\\)"):
        train(np.zeros((0, 3)), 4, SIGMA, LAM)             # d = 0: never a reduced internal shape


def test_a_standard_error_needs_two_draws(data):
    X, W = data
    with pytest.raises(ValueError, match="n_draws must be an integer >= 2"):
        monte_carlo_loss(W, W, X[:, :1], SIGMA, n_draws=1)
    mean, standard_error = monte_carlo_loss(W, W, X[:, :1], SIGMA, n_draws=2, rng=0)
    assert np.isfinite(mean) and np.isfinite(standard_error)
