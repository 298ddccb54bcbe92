"""The ReLU-DAE of eq. (5): ``f(y) = W2 [W1ᵀ y]_+`` with no biases.

Samples are the columns of ``Y`` (shape ``(d, m)``); weights have shape ``(d, p)``.

>>> import numpy as np
>>> W = np.eye(3)[:, :2]
>>> representation(W, np.array([[1.0], [-2.0], [5.0]])).ravel()
array([1., 0.])
"""
from __future__ import annotations

import numpy as np

from numerics.validation import as_matrix, data_matrix, weights_pair

__all__ = ["representation", "forward"]


def representation(W1, Y) -> np.ndarray:
    """The representation ``H = [W1ᵀ Y]_+`` of eq. (5), shape ``(p, m)`` for W1 (d, p), Y (d, m).

    >>> W1 = np.eye(3)[:, :2]                                   # (d, p) = (3, 2)
    >>> representation(W1, np.array([[1.0, 0.5], [-2.0, 0.0], [5.0, 1.0]]))   # Y (d, m) = (3, 2) → H (p, m)
    array([[1. , 0.5],
           [0. , 0. ]])
    """
    W1 = as_matrix("W1", W1, cols_name="p")
    Y = data_matrix("Y", Y, d=W1.shape[0], cols_name="m")
    return np.maximum(W1.T @ Y, 0.0)


def forward(W1, W2, Y) -> np.ndarray:
    """The denoiser output ``f(Y) = W2 [W1ᵀ Y]_+`` of eq. (5), shape ``(d, m)`` for Y (d, m).

    >>> forward(np.eye(2), np.eye(2), np.array([[1.0], [-1.0]])).ravel()
    array([1., 0.])
    """
    W1, W2 = weights_pair(W1, W2)
    return W2 @ representation(W1, Y)
