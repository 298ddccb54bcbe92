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


@dataclass(frozen=True)
class SlopeTest:
    """Steps, remainders and the least-squares slope of log r(t) against log t."""

    steps: np.ndarray
    remainders: np.ndarray
    slope: float


def taylor_remainder_slope(f, x, gradient, direction, steps=None) -> SlopeTest:
    """Fit the slope of the first-order Taylor remainder of ``f`` at ``x`` along ``direction``.

    ``steps`` defaults to 13 values over three decades, 1e-5 … 1e-2 times ‖x‖/‖direction‖,
    a range where the O(t³) term is still small and rounding (≈1e-16·|f|) is far below r(t).
    """
    x = np.asarray(x, dtype=np.float64)
    direction = np.asarray(direction, dtype=np.float64)
    if direction.shape != x.shape:
        raise ValueError(f"direction must have the shape of x {x.shape}; got {direction.shape}")
    if steps is None:
        scale = max(np.linalg.norm(x), 1.0) / np.linalg.norm(direction)
        steps = scale * np.logspace(-5, -2, 13)
    steps = np.asarray(steps, dtype=np.float64)
    f0 = f(x)
    slope_along = float(np.sum(gradient * direction))
    remainders = np.array([abs(f(x + t * direction) - f0 - t * slope_along) for t in steps])
    fitted = np.polyfit(np.log(steps), np.log(remainders), 1)[0]
    return SlopeTest(steps=steps, remainders=remainders, slope=float(fitted))
