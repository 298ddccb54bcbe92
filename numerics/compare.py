"""Comparing a trained ReLU-DAE with the theory: statistics of its representations.

A representation is ``h = [W1ᵀy]_+`` (`numerics.model.representation`); a batch of them
is ``H`` of shape ``(p, m)``, one column per input. The statistics here are per column:

* :func:`representation_std` — the paper's spikiness metric, the population standard
  deviation of the p entries: ``Std(h)² = ‖h‖²/p − ‖h‖₁²/p²``;
* :func:`norm_ratio` — ``‖h‖₄/‖h‖₂``, scale free: 1 for a one-hot vector, ``q^(−1/4)``
  for q equal entries;
* :func:`participation_ratio` — ``‖h‖₂⁴/‖h‖₄⁴``, the effective number of active neurons:
  1 for a one-hot vector, q for q equal entries ("balanced" over a block of q neurons);
* :func:`top_share` — the share of ``‖h‖²`` in the largest entry: 1 one-hot, 1/q flat.

A zero column (no neuron active) has Std 0 and ratio, participation and share 0.

>>> import numpy as np
>>> H = np.array([[2.0, 1.0], [0.0, 1.0]])      # a spike and a balanced pair
>>> representation_std(H).tolist(), participation_ratio(H).tolist()
([1.0, 0.0], [1.0, 2.0])
>>> top_share(H).tolist(), np.round(norm_ratio(H), 4).tolist()
([1.0, 0.5], [1.0, 0.8409])
"""
from __future__ import annotations

import numpy as np

__all__ = ["representation_std", "norm_ratio", "participation_ratio", "top_share"]


def _columns(H) -> np.ndarray:
    H = np.asarray(H, dtype=np.float64)
    if H.ndim != 2:
        raise ValueError(f"H must be a 2-D array of representations, shape (p, m); got shape {H.shape}")
    return H


def _ratio(numerator, denominator) -> np.ndarray:
    return np.divide(numerator, denominator, out=np.zeros_like(denominator), where=denominator > 0)


def representation_std(H) -> np.ndarray:
    """Std(h) of every column h of H (p, m): population standard deviation of its p entries."""
    return np.std(_columns(H), axis=0)


def norm_ratio(H) -> np.ndarray:
    """``‖h‖₄/‖h‖₂`` of every column of H (p, m)."""
    H = _columns(H)
    return _ratio(np.sum(H ** 4, axis=0) ** 0.25, np.sqrt(np.sum(H ** 2, axis=0)))


def participation_ratio(H) -> np.ndarray:
    """``‖h‖₂⁴/‖h‖₄⁴`` of every column of H (p, m): how many neurons share the energy."""
    H = _columns(H)
    return _ratio(np.sum(H ** 2, axis=0) ** 2, np.sum(H ** 4, axis=0))


def top_share(H) -> np.ndarray:
    """Share of ``‖h‖²`` in the largest entry of every column of H (p, m)."""
    H = _columns(H)
    return _ratio(np.max(H ** 2, axis=0), np.sum(H ** 2, axis=0))
