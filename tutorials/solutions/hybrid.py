"""Solutions to the exercises of tutorial 4 (hybrid regime)."""
from __future__ import annotations

import numpy as np


def duplicate_scale(point, copies, n, sigma, lam):
    """Exercise 7: r_l = √((n_l‖x_l‖² − nλ)/(n_l‖x_l‖⁴ + n_lσ²‖x_l‖²)) — eq. (8) with p_l = 1 on n_l copies."""
    s = float(np.sum(np.asarray(point) ** 2))
    return float(np.sqrt((copies * s - n * lam) / (copies * s ** 2 + copies * sigma ** 2 * s)))


def gain(eigenvalue, n_k, n, sigma, lam):
    """Exercise 8: (Λ − nλ)²/(Λ + n_kσ²), and 0 when Λ ≤ nλ (the direction is not worth a neuron)."""
    if eigenvalue <= n * lam:
        return 0.0
    return float((eigenvalue - n * lam) ** 2 / (eigenvalue + n_k * sigma ** 2))
