"""numerics.diagnostics: the Taylor-remainder slope separates right gradients (slope 2) from wrong ones (1)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra.numpy import arrays

from numerics.diagnostics import taylor_remainder_slope


def convex(x):
    """f = Σ cosh(x_i) + ‖x‖²: curvature cosh + 2 ≥ 3 in every direction, so the right
    remainder is a clean O(t²) (no direction where the quadratic term vanishes)."""
    return float(np.sum(np.cosh(x)) + np.sum(x ** 2))


def convex_gradient(x):
    return np.sinh(x) + 2 * x


points = arrays(np.float64, st.integers(1, 6), elements=st.floats(-2.0, 2.0))


@given(points, st.integers(0, 2 ** 31 - 1))
def test_right_gradient_has_slope_two_and_wrong_one_slope_one(x, seed):
    direction = np.random.default_rng(seed).normal(size=x.shape)
    direction /= np.linalg.norm(direction)       # a unit direction: the bounds below use ‖v‖ = 1
    right = taylor_remainder_slope(convex, x, convex_gradient(x), direction)
    # A wrong gradient (off by the direction itself) leaves t·‖v‖² in the remainder.
    wrong = taylor_remainder_slope(convex, x, convex_gradient(x) + direction, direction)
    # Steps t ≤ 1e-2·max(‖x‖, 1) ≤ 0.05 (‖x‖ ≤ 2√6) over three decades. Relative to the
    # leading term, the next one is at most t·sinh(2.05)/(3·3) ≈ 0.02 for the right gradient,
    # and t·(cosh 2.05 + 2)/2 ≤ 0.15 at the largest step only for the wrong one: both fitted
    # slopes stay within 0.1. (A non-unit v would scale the steps by 1/‖v‖ and void the bound.)
    assert abs(right.slope - 2.0) < 0.1, right
    assert abs(wrong.slope - 1.0) < 0.1, wrong
    assert right.steps.shape == right.remainders.shape == (13,)


def test_explicit_steps_are_used():
    x = np.array([0.5])
    steps = np.array([1e-3, 1e-2])
    out = taylor_remainder_slope(convex, x, convex_gradient(x), np.ones(1), steps=steps)
    np.testing.assert_array_equal(out.steps, steps)


def test_bad_arguments_are_named():
    x = np.array([0.5, 1.0])
    g = convex_gradient(x)
    with pytest.raises(ValueError, match="direction must have the shape of x"):
        taylor_remainder_slope(convex, x, g, np.ones(3))
    with pytest.raises(ValueError, match="direction must be nonzero"):
        taylor_remainder_slope(convex, x, g, np.zeros(2))
    with pytest.raises(TypeError, match="f must be a callable"):
        taylor_remainder_slope(1.0, x, g, np.ones(2))
    with pytest.raises(ValueError, match="steps"):
        taylor_remainder_slope(convex, x, g, np.ones(2), steps=[-1.0, 1.0])
    with pytest.raises(ValueError, match="x must contain only finite"):
        taylor_remainder_slope(convex, np.array([np.nan, 1.0]), g, np.ones(2))
    with pytest.raises(ValueError, match="remainders"):               # f itself is not finite
        taylor_remainder_slope(lambda y: float("nan"), x, g, np.ones(2))
