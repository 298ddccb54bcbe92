"""Gradient diagnostics: the Taylor-remainder slope test (after pymanopt's
``check_directional_derivative``).

If ``g`` is the gradient of ``f`` at ``x``, the remainder
``r(t) = |f(x + t v) − f(x) − t ⟨g, v⟩|`` is O(t²), so on a log–log plot it has slope 2;
a wrong gradient leaves an O(t) remainder (slope 1).

>>> import numpy as np
>>> f = lambda x: float(np.sum(np.sin(x)))
>>> x = np.array([0.3, 1.2]); g = np.cos(x)
>>> round(taylor_remainder_slope(f, x, g, np.array([1.0, -2.0])).slope, 1)
2.0
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from numerics.validation import finite_array

__all__ = ["taylor_remainder_slope", "SlopeTest"]


def _finite(name: str, value, shape=None) -> np.ndarray:
    array = finite_array(name, value)
    if shape is not None and array.shape != shape:
        raise ValueError(f"{name} must have the shape of x {shape}; got {array.shape}")
    return array


@dataclass(frozen=True)
class SlopeTest:
    """Steps, remainders and the least-squares slope of log r(t) against log t.

    Returned by `taylor_remainder_slope`.
    """

    steps: np.ndarray
    remainders: np.ndarray
    slope: float


def taylor_remainder_slope(f, x, gradient, direction, steps=None) -> SlopeTest:
    """Fit the slope of the first-order Taylor remainder of ``f`` at ``x`` along ``direction``.

    ``steps`` defaults to 13 values over three decades, 1e-5 … 1e-2 times ‖x‖/‖direction‖,
    a range where the O(t³) term is still small and rounding (≈1e-16·|f|) is far below r(t).

    >>> f = lambda x: float(np.sum(x ** 3))                    # gradient 3x²
    >>> x, v = np.array([1.0, 2.0]), np.array([1.0, -1.0])
    >>> right, wrong = (taylor_remainder_slope(f, x, g, v) for g in (3 * x ** 2, 2 * x ** 2))
    >>> round(right.slope, 1), round(wrong.slope, 1)            # a wrong gradient: slope 1
    (2.0, 1.0)
    """
    if not callable(f):
        raise TypeError(f"f must be a callable returning a float; got {type(f).__name__}")
    x = _finite("x", x)
    gradient = _finite("gradient", gradient, x.shape)
    direction = _finite("direction", direction, x.shape)
    if not np.any(direction):
        raise ValueError("direction must be nonzero")
    if steps is None:
        scale = max(np.linalg.norm(x), 1.0) / np.linalg.norm(direction)
        steps = scale * np.logspace(-5, -2, 13)
    steps = _finite("steps", steps)
    if steps.ndim != 1 or steps.size < 2 or np.any(steps <= 0):
        raise ValueError(f"steps must be at least two positive step sizes; got {steps!r}")
    f0 = f(x)
    slope_along = float(np.sum(gradient * direction))
    remainders = np.array([abs(f(x + t * direction) - f0 - t * slope_along) for t in steps])
    if not np.all(np.isfinite(remainders)) or np.any(remainders == 0):
        raise ValueError("f gave remainders that are zero or not finite; a log-log slope needs "
                         "positive finite remainders (f linear along direction, or steps too small)")
    fitted = np.polyfit(np.log(steps), np.log(remainders), 1)[0]
    return SlopeTest(steps=steps, remainders=remainders, slope=float(fitted))
