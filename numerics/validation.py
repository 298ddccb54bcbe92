"""Input checks shared by every public function.

Each check raises ``ValueError`` naming the argument and what was expected, so that bad
input never turns into a silent wrong answer.
"""
from __future__ import annotations

import numpy as np


def as_matrix(name: str, value, *, rows: int | None = None, cols: int | None = None,
              rows_name: str = "d", cols_name: str | None = None) -> np.ndarray:
    """Return ``value`` as a finite float64 2-D array, checking its shape.

    >>> as_matrix("X", [[1.0, 2.0]]).shape
    (1, 2)
    """
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} must be a real 2-D array; got {type(value).__name__}") from error
    if array.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array of shape ({rows_name}, {cols_name or 'm'}); "
                         f"got {array.ndim} dimension(s) with shape {array.shape}")
    if rows is not None and array.shape[0] != rows:
        raise ValueError(f"{name} must have {rows} rows ({rows_name}); got shape {array.shape}")
    if cols is not None and array.shape[1] != cols:
        raise ValueError(f"{name} must have {cols} columns ({cols_name}); got shape {array.shape}")
    if array.size and not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must contain only finite values; found "
                         f"{int(np.sum(~np.isfinite(array)))} NaN or inf entries")
    return array


def as_vector(name: str, value, *, length: int | None = None) -> np.ndarray:
    """Return ``value`` as a finite float64 1-D array, checking its length."""
    array = np.asarray(value, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array; got shape {array.shape}")
    if length is not None and array.shape[0] != length:
        raise ValueError(f"{name} must have length {length}; got {array.shape[0]}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must contain only finite values")
    return array


def nonnegative(name: str, value, *, symbol: str | None = None) -> float:
    """Return ``value`` as a float after checking it is finite and >= 0 (sigma, lam, ...)."""
    label = f"{name} ({symbol})" if symbol else name
    try:
        number = float(value)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{label} must be a real number >= 0; got {value!r}") from error
    if not np.isfinite(number) or number < 0:
        raise ValueError(f"{label} must be a finite number >= 0; got {value!r}")
    return number


def positive(name: str, value) -> float:
    """Return ``value`` as a float after checking it is finite and > 0."""
    number = nonnegative(name, value)
    if number == 0:
        raise ValueError(f"{name} must be > 0; got {value!r}")
    return number


def positive_int(name: str, value, *, minimum: int = 1) -> int:
    """Return ``value`` as an int after checking it is an integer >= ``minimum`` (p >= 1, ...)."""
    if isinstance(value, bool) or not float(value).is_integer():
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}")
    number = int(value)
    if number < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {number}")
    return number


def weights_pair(W1, W2, d: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Check the ReLU-DAE weights ``W1, W2`` of shape (d, p) and return them as float64."""
    W1 = as_matrix("W1", W1, rows=d, cols_name="p")
    W2 = as_matrix("W2", W2, rows=W1.shape[0], cols=W1.shape[1], cols_name="p")
    if W1.shape[1] < 1:
        raise ValueError(f"W1 must have at least one column (p >= 1); got shape {W1.shape}")
    return W1, W2


def labels_for(name: str, labels, n: int) -> np.ndarray:
    """Check an integer cluster label per column of X (length n)."""
    array = np.asarray(labels)
    if array.ndim != 1 or array.shape[0] != n:
        raise ValueError(f"{name} must be a 1-D array with one label per column of X (length {n}); "
                         f"got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.integer):
        if np.issubdtype(array.dtype, np.floating) and np.all(np.isfinite(array)) \
                and np.all(array == np.round(array)):
            array = array.astype(np.int64)
        else:
            raise ValueError(f"{name} must hold integer cluster labels; got dtype {array.dtype}")
    return array.astype(np.int64)
