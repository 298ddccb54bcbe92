"""Solutions to the exercises of tutorial 2 (memorisation)."""
from __future__ import annotations

import numpy as np


def eq9_scales(X, sigma, lam):
    """Exercise 3: r_i = √((‖x_i‖² − nλ)/(‖x_i‖⁴ + σ²‖x_i‖²)), eq. (9); X is (d, n)."""
    n = X.shape[1]
    s = np.sum(X ** 2, axis=0)                  # ‖x_i‖², one per column
    return np.sqrt((s - n * lam) / (s ** 2 + sigma ** 2 * s))


def onehot_std(height, p):
    """Exercise 4: Std(h)² = ‖h‖²/p − (‖h‖₁/p)² = η²/p − η²/p², so Std = η √(p − 1)/p."""
    return float(height * np.sqrt(p - 1) / p)
