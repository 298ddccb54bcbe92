"""Input checks shared by every public function of numerics/ and theory/.

Bad input must never become a silent wrong answer. Each check raises

* ``TypeError`` for the wrong kind of value — a string where a number is expected
  (``sigma="0.2"``), complex entries, a non-bool flag (``tied="yes"``), an unusable seed;
* ``ValueError`` for the right kind with a wrong value — a shape, NaN or inf, a sign, an
  empty array, or numbers so large that eq. (6) would overflow float64;

and the message names the argument and what was expected. Data are ``X`` of shape
``(d, n)`` with the samples as **columns**; when the other arguments show that X was
passed as ``(n, d)``, the message says so.

>>> as_matrix("X", [[1.0, 2.0]]).shape
(1, 2)
>>> nonnegative("sigma", "0.2")
Traceback (most recent call last):
...
TypeError: sigma must be a real number, not a string; got '0.2'
"""
from __future__ import annotations

import math
import numbers

import numpy as np

__all__ = [
    "real_array", "finite_array", "as_matrix", "as_vector", "data_matrix", "data_and_weights", "data_and_labels", "weights_pair", "tied_weights",
    "labels_for", "real_number", "nonnegative", "positive", "positive_int", "flag", "optional_flag",
    "as_rng", "loss_magnitude", "MagnitudeError", "power_fits", "FLOAT_MAX",
]

FLOAT_MAX = float(np.finfo(np.float64).max)
_LOG10_MAX = math.log10(FLOAT_MAX)
# eq. (6) and its gradient multiply the bound of `loss_magnitude` by small factors (2, p, n
# of the sums); three decades of head room keep every intermediate finite.
_HEADROOM_DECADES = 3.0


# ----------------------------------------------------------------------------- arrays


def real_array(name: str, value) -> np.ndarray:
    """``value`` as a float64 array of any shape; strings, complex and non-numeric entries are a TypeError.

    >>> real_array("X", [[1, 2], [3, 4]]).dtype
    dtype('float64')
    """
    if isinstance(value, (str, bytes)):
        raise TypeError(f"{name} must be an array of real numbers, not a string; got {value!r:.60}")
    try:
        array = np.asarray(value)
    except ValueError as error:        # ragged nested sequences
        raise ValueError(f"{name} must be a rectangular array of real numbers; {error}") from error
    kind = array.dtype.kind
    if kind == "c":
        raise TypeError(f"{name} must be real; got complex entries (dtype {array.dtype}). "
                        f"Pass np.real({name}) if the imaginary part is meant to be dropped")
    if kind in "USa":
        raise TypeError(f"{name} must hold real numbers, not strings (dtype {array.dtype})")
    if kind not in "biuf":
        try:
            return np.asarray(array, dtype=np.float64)
        except (TypeError, ValueError) as error:
            raise TypeError(f"{name} must hold real numbers; got {type(value).__name__} "
                            f"with dtype {array.dtype}") from error
    return np.asarray(array, dtype=np.float64)


def _check_entries(name: str, array: np.ndarray) -> None:
    """Finite entries whose sum of squares fits in float64 (one BLAS pass in the common case)."""
    with np.errstate(over="ignore", invalid="ignore"):
        total = float(np.vdot(array, array))
    if math.isfinite(total):
        return
    bad = int(np.sum(~np.isfinite(array)))
    if bad:
        raise ValueError(f"{name} must contain only finite values; found {bad} NaN or inf entries")
    largest = float(np.max(np.abs(array)))
    raise ValueError(f"{name} is too large for float64: its squared norm overflows (largest "
                     f"entry {largest:.3g}, float64 ends at {FLOAT_MAX:.3g}); rescale {name}")


def finite_array(name: str, value) -> np.ndarray:
    """``value`` as a float64 array of any shape with finite entries whose squares fit in float64.

    >>> finite_array("x", [[1.0, 2.0]]).shape
    (1, 2)
    """
    array = real_array(name, value)
    _check_entries(name, array)
    return array


def as_matrix(name: str, value, *, rows: int | None = None, cols: int | None = None,
              rows_name: str = "d", cols_name: str | None = None,
              allow_empty: bool = False) -> np.ndarray:
    """Return ``value`` as a finite float64 2-D array, checking its shape.

    Empty arrays (a zero dimension) are refused unless ``allow_empty``.

    >>> as_matrix("X", [[1.0, 2.0]]).shape
    (1, 2)
    """
    array = real_array(name, value)
    shape_text = f"({rows_name}, {cols_name or 'm'})"
    if array.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array of shape {shape_text}; "
                         f"got {array.ndim} dimension(s) with shape {array.shape}")
    if rows is not None and array.shape[0] != rows:
        raise ValueError(f"{name} must have {rows} rows ({rows_name}); got shape {array.shape}")
    if cols is not None and array.shape[1] != cols:
        raise ValueError(f"{name} must have {cols} columns ({cols_name}); got shape {array.shape}")
    if array.size == 0 and not allow_empty:
        raise ValueError(f"{name} is empty: shape {array.shape}; it must have shape {shape_text} "
                         f"with {rows_name} >= 1 and {cols_name or 'm'} >= 1")
    _check_entries(name, array)
    return array


def as_vector(name: str, value, *, length: int | None = None, allow_empty: bool = False) -> np.ndarray:
    """Return ``value`` as a finite float64 1-D array, checking its length.

    >>> as_vector("weights", [0.5, 0.5]).tolist()
    [0.5, 0.5]
    """
    array = real_array(name, value)
    if array.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array; got shape {array.shape}")
    if length is not None and array.shape[0] != length:
        raise ValueError(f"{name} must have length {length}; got {array.shape[0]}")
    if array.size == 0 and not allow_empty:
        raise ValueError(f"{name} is empty; it must have at least one entry")
    _check_entries(name, array)
    return array


def data_matrix(name: str, value, *, d: int | None = None, n: int | None = None,
                d_source: str = "W1", n_source: str = "labels", cols_name: str = "n") -> np.ndarray:
    """A data matrix ``(d, n)``, samples as columns; ``d``/``n`` are what other arguments imply.

    When the shape is the transpose of what ``d`` (the rows of ``d_source``) or ``n`` (the
    length of ``n_source``) demand, the message says "X has shape (n, d)?".

    >>> data_matrix("X", np.ones((5, 3)), d=3)
    Traceback (most recent call last):
    ...
    ValueError: X has shape (n, d) = (5, 3)? Samples must be columns: X must have shape (d, n) with d = 3, the rows of W1
    """
    array = as_matrix(name, value, cols_name=cols_name)
    m = cols_name
    for axis, label, expected, source in ((0, "d", d, f"the rows of {d_source}"),
                                          (1, m, n, f"the length of {n_source}")):
        if expected is None or array.shape[axis] == expected:
            continue
        if array.shape[1 - axis] == expected:
            raise ValueError(f"{name} has shape ({m}, d) = {array.shape}? Samples must be columns: "
                             f"{name} must have shape (d, {m}) with {label} = {expected}, {source}")
        raise ValueError(f"{name} must have shape (d, {m}) with samples as columns and {label} = {expected} "
                         f"({source}); got shape {array.shape}")
    return array


def weights_pair(W1, W2, d: int | None = None, *, d_source: str = "X") -> tuple[np.ndarray, np.ndarray]:
    """Check the ReLU-DAE weights ``W1, W2`` of shape (d, p) and return them as float64.

    >>> W1, W2 = weights_pair(np.ones((3, 2)), np.zeros((3, 2)), d=3)   # (d, p) = (3, 2)
    >>> W1.shape, W2.dtype
    ((3, 2), dtype('float64'))
    """
    W1 = as_matrix("W1", W1, cols_name="p")
    W2 = as_matrix("W2", W2, cols_name="p")
    if W1.shape != W2.shape:
        raise ValueError(f"W1 and W2 must have the same shape (d, p); got W1 {W1.shape} and W2 {W2.shape}")
    if d is not None and W1.shape[0] != d:
        raise ValueError(f"W1 and W2 must have d = {d} rows (the rows of {d_source}); got shape {W1.shape}")
    return W1, W2


def data_and_weights(X, W1, W2, *, name: str = "X") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``X`` (d, n) and weights ``W1, W2`` (d, p), checked together (transposed X named as such).

    ``name`` is what the data argument is called (``X``, ``Y`` …).

    >>> X, W1, W2 = data_and_weights(np.ones((3, 5)), np.ones((3, 2)), np.ones((3, 2)))
    >>> X.shape, W1.shape                               # X (d, n), W1 (d, p)
    ((3, 5), (3, 2))
    """
    W1, W2 = weights_pair(W1, W2)
    return data_matrix(name, X, d=W1.shape[0], d_source="W1 and W2"), W1, W2


def labels_for(name: str, labels, n: int, *, d: int | None = None, data_name: str = "X") -> np.ndarray:
    """Check an integer cluster label per column of X (length n); ``d`` enables the transpose hint.

    >>> labels_for("labels", [0.0, 1.0, 1.0], n=3).tolist()   # integral floats become ints
    [0, 1, 1]
    """
    if isinstance(labels, (str, bytes)):
        raise TypeError(f"{name} must be integer cluster labels, not a string; got {labels!r:.60}")
    array = np.asarray(labels)
    if array.dtype.kind in "USa" or array.dtype.kind == "c":
        raise TypeError(f"{name} must hold integer cluster labels; got dtype {array.dtype}")
    if array.ndim != 1 or array.shape[0] != n:
        hint = ""
        if array.ndim == 1 and d is not None and array.shape[0] == d != n:
            hint = f" ({data_name} has shape (n, d)? Samples must be the columns of {data_name})"
        raise ValueError(f"{name} must be a 1-D array with one label per column of X (length {n}); "
                         f"got shape {array.shape}{hint}")
    if not np.issubdtype(array.dtype, np.integer):
        if np.issubdtype(array.dtype, np.floating) and np.all(np.isfinite(array)) \
                and np.all(array == np.round(array)):
            array = array.astype(np.int64)
        else:
            raise ValueError(f"{name} must hold integer cluster labels; got dtype {array.dtype}")
    return array.astype(np.int64)


def data_and_labels(X, labels, *, name: str = "X") -> tuple[np.ndarray, np.ndarray]:
    """``X`` (d, n) and one integer label per column, checked together (``name``: what X is called).

    >>> X, labels = data_and_labels(np.zeros((2, 3)), [0, 0, 1])   # X (d, n) = (2, 3)
    >>> X.shape, labels.tolist()
    ((2, 3), [0, 0, 1])
    """
    X = as_matrix(name, X, cols_name="n")
    return X, labels_for("labels", labels, X.shape[1], d=X.shape[0], data_name=name)


def tied_weights(W1, W2, tied) -> bool:
    """``tied`` checked against the weights: None detects it (W1 equal to W2); True needs W1 == W2.

    >>> W = np.ones((3, 2))
    >>> tied_weights(W, W, None), tied_weights(W, 2 * W, None)
    (True, False)
    """
    tied = optional_flag("tied", tied)
    if tied is None:
        return bool(np.array_equal(W1, W2))
    if tied and not np.array_equal(W1, W2):
        raise ValueError("tied=True needs W1 == W2")
    return tied


# ----------------------------------------------------------------------------- scalars


def real_number(name: str, value) -> float:
    """``value`` as a finite float; strings, bools, complex and arrays are a TypeError.

    >>> real_number("beta", -0.5)
    -0.5
    """
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a real number; got the bool {value!r}")
    if isinstance(value, (str, bytes)):
        raise TypeError(f"{name} must be a real number, not a string; got {value!r:.60}")
    if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "iuf":
        value = value.item()
    if not isinstance(value, numbers.Real):
        if isinstance(value, numbers.Complex):
            raise TypeError(f"{name} must be real; got the complex number {value!r}")
        raise TypeError(f"{name} must be a real number; got {type(value).__name__}")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{name} must be a finite number; got {value!r}")
    return number


def nonnegative(name: str, value, *, symbol: str | None = None) -> float:
    """Return ``value`` as a float after checking it is finite and >= 0 (sigma, lam, ...).

    >>> nonnegative("sigma", 0.2, symbol="σ")
    0.2
    >>> nonnegative("lam", -1)
    Traceback (most recent call last):
    ...
    ValueError: lam must be a finite number >= 0; got -1
    """
    label = f"{name} ({symbol})" if symbol else name
    number = real_number(label, value)
    if number < 0:
        raise ValueError(f"{label} must be a finite number >= 0; got {value!r}")
    return number


def positive(name: str, value) -> float:
    """Return ``value`` as a float after checking it is finite and > 0.

    >>> positive("sigma", 0)
    Traceback (most recent call last):
    ...
    ValueError: sigma must be > 0; got 0
    """
    number = nonnegative(name, value)
    if number == 0:
        raise ValueError(f"{name} must be > 0; got {value!r}")
    return number


def positive_int(name: str, value, *, minimum: int = 1) -> int:
    """Return ``value`` as an int after checking it is an integer >= ``minimum`` (p >= 1, ...).

    Integral floats (``4.0``) are accepted; strings, bools and fractions are not.

    >>> positive_int("p", 4.0)
    4
    """
    if isinstance(value, (bool, np.bool_)) or isinstance(value, (str, bytes)):
        raise TypeError(f"{name} must be an integer >= {minimum}; got {value!r:.60}")
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()
    if isinstance(value, numbers.Integral):
        number = int(value)
    elif isinstance(value, numbers.Real):
        if not (math.isfinite(float(value)) and float(value).is_integer()):
            raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}")
        number = int(value)
    else:
        raise TypeError(f"{name} must be an integer >= {minimum}; got {type(value).__name__}")
    if number < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {number}")
    return number


def flag(name: str, value) -> bool:
    """``value`` if it is a bool (numpy's included); anything else is a TypeError.

    >>> flag("tied", "yes")
    Traceback (most recent call last):
    ...
    TypeError: tied must be True or False; got 'yes'
    """
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise TypeError(f"{name} must be True or False; got {value!r:.60}")


def optional_flag(name: str, value) -> bool | None:
    """``None`` (decide automatically) or a bool.

    >>> optional_flag("tied", None) is None, optional_flag("tied", True)
    (True, True)
    """
    return None if value is None else flag(name, value)


def as_rng(name: str, value) -> np.random.Generator:
    """A ``numpy.random.Generator`` from ``value``: None, an int >= 0, a Generator, BitGenerator or SeedSequence.

    >>> float(as_rng("seed", 0).random()) == float(np.random.default_rng(0).random())
    True
    """
    if isinstance(value, (np.random.Generator, np.random.BitGenerator, np.random.SeedSequence)) \
            or value is None:
        return np.random.default_rng(value)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer >= 0, a numpy Generator or None; got {value!r:.60}")
    if value < 0:
        raise ValueError(f"{name} must be an integer >= 0; got {value}")
    return np.random.default_rng(int(value))


# ----------------------------------------------------------------------------- overflow


def power_fits(name: str, array: np.ndarray, power: int, what: str) -> None:
    """Raise ``ValueError`` unless ``‖array‖_F^power`` (what a formula computes) fits in float64.

    ``array`` already passed `as_matrix`; ``what`` names the formula for the message.

    >>> power_fits("X", np.ones((2, 2)), 4, "the fourth moment")   # fits: returns None
    >>> power_fits("X", np.full((2, 2), 1e100), 4, "the fourth moment")
    Traceback (most recent call last):
    ...
    ValueError: X is too large for the fourth moment: ‖X‖^4 ~ 1e401 overflows float64; rescale X
    """
    log = _log10(float(np.vdot(array, array))) * power / 2.0
    if log > _LOG10_MAX - _HEADROOM_DECADES:
        raise ValueError(f"{name} is too large for {what}: ‖{name}‖^{power} ~ 1e{log:.0f} overflows float64; "
                         f"rescale {name}")


def _log10(value: float) -> float:
    return math.log10(value) if value > 0 else -math.inf


def _log10_sum(a: float, b: float) -> float:
    """log10(10^a + 10^b) without overflow."""
    top, low = max(a, b), min(a, b)
    if top == -math.inf:
        return -math.inf
    return top + math.log10(1.0 + 10.0 ** (low - top))


class MagnitudeError(ValueError):
    """Inputs are finite, but eq. (6) at them would overflow float64 (`loss_magnitude`).

    >>> W = np.full((2, 1), 1e100)                       # (d, p) = (2, 1)
    >>> try:
    ...     loss_magnitude(np.ones((2, 3)), W, W, sigma=0.1)
    ... except MagnitudeError:
    ...     print("overflow")
    overflow
    """


def objective_arguments(X, W1, W2, sigma, lam) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, float]:
    """``(X, W1, W2, σ, λ)`` checked for eq. (6): shapes and finite values (`data_and_weights`),
    ``σ ≥ 0``, ``λ ≥ 0``, and a loss that fits in float64 (`loss_magnitude`).

    >>> X, W = np.ones((2, 3)), np.ones((2, 4))                  # X (d, n), W1 = W2 (d, p)
    >>> objective_arguments(X, W, W, 0.1, 0.0)[3:]
    (0.1, 0.0)
    >>> objective_arguments(X, W, W, -0.1, 0.0)
    Traceback (most recent call last):
    ...
    ValueError: sigma (σ) must be a finite number >= 0; got -0.1
    """
    X, W1, W2 = data_and_weights(X, W1, W2)
    sigma = nonnegative("sigma", sigma, symbol="σ")
    lam = nonnegative("lam", lam, symbol="λ")
    loss_magnitude(X, W1, W2, sigma, lam)
    return X, W1, W2, sigma, lam


def loss_magnitude(X, W1, W2, sigma: float, lam: float = 0.0, *, summed: bool = False, name: str = "X",
                   dtype=np.float64) -> None:
    """Raise `MagnitudeError` (a ValueError) if eq. (6) at these (already checked) inputs would overflow float64.

    ``E‖W2[W1ᵀ(x + σε)]_+‖² ≤ ‖W2‖_F²‖W1‖_F²(‖x‖² + σ²)``, so the data term is bounded by
    ``2(‖W1‖²‖W2‖²(max‖x_i‖² + σ²) + max‖x_i‖²)`` and the decay is ``λ(‖W1‖² + ‖W2‖²)``;
    each must stay three decades below the float64 maximum (the sums inside the objective
    and its gradient multiply it by small factors). The arrays themselves passed
    `as_matrix`, so their squared norms are finite. ``summed=True`` is for losses summed over
    the samples instead of averaged (Lemma D.1's L̂): ‖X‖_F² and nσ² replace max‖x_i‖² and σ².
    ``name`` is what the data argument is called; ``dtype`` the precision the loss is computed in.

    >>> X, W = np.ones((2, 3)), np.ones((2, 4))          # X (d, n), W1 = W2 (d, p)
    >>> loss_magnitude(X, W, W, sigma=0.1, lam=0.01)     # finite: returns None
    >>> loss_magnitude(X, 1e150 * W, 1e10 * W, sigma=0.1)   # ‖W1‖²‖W2‖² ~ 1e322
    Traceback (most recent call last):
    ...
    numerics.validation.MagnitudeError: the loss overflows float64 at these inputs: ‖W1‖²‖W2‖²(max‖x_i‖² + σ²) ~ 1e322 (largest factor W1; ...
    """
    columns = np.einsum("ij,ij->j", X, X)
    logs = {"X": _log10(float(np.sum(columns) if summed else np.max(columns))),
            "W1": _log10(float(np.vdot(W1, W1))), "W2": _log10(float(np.vdot(W2, W2))),
            "sigma": 2.0 * _log10(sigma) + (_log10(X.shape[1]) if summed else 0.0), "lam": _log10(lam)}
    terms = {"data": logs["W1"] + logs["W2"] + _log10_sum(logs["X"], logs["sigma"]),
             "decay": logs["lam"] + _log10_sum(logs["W1"], logs["W2"])}
    worst = max(terms, key=terms.get)
    if terms[worst] <= math.log10(float(np.finfo(dtype).max)) - _HEADROOM_DECADES:
        return
    logs[name] = logs.pop("X")
    names = ("W1", "W2", name, "sigma") if worst == "data" else ("lam", "W1", "W2")
    culprit = max(names, key=lambda key: logs[key])
    sizes = ", ".join(f"{key} ~ 1e{logs[key] / (1 if key == 'lam' else 2):.0f}"
                      for key in names if math.isfinite(logs[key]))
    formula = "‖W1‖²‖W2‖²(max‖x_i‖² + σ²)" if worst == "data" else "λ(‖W1‖² + ‖W2‖²)"
    raise MagnitudeError(f"the loss overflows {np.dtype(dtype).name} at these inputs: {formula} ~ 1e{terms[worst]:.0f} "
                     f"(largest factor {culprit}; {sizes}); rescale {', '.join(names)}")


def integer_argument(minimum: int):
    """An ``argparse`` type: an integer >= ``minimum``, or a usage error saying so.

    >>> integer_argument(1)("3")
    3
    >>> integer_argument(1)("0")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: expected an integer >= 1; got 0
    """
    import argparse

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}; got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}; got {value}")
        return value
    return parse
