"""Initial weights: the package's random start and user-given weights.

`random_init` draws (W1, W2) of shape (d, p) (PyTorch's default for the authors' protocol is
`numerics.protocol.torch_default_init`); `given_weights` is
the one parser of an ``init`` argument (`numerics.solvers.train`,
`numerics.protocol.train_protocol`): a (d, p) array W (W1 = W2 = W) or a pair (W1, W2).

>>> W1, W2 = random_init(4, 3, tied=True, seed=0)
>>> W1.shape, W1 is W2
((4, 3), True)
>>> given_weights((np.eye(2), np.eye(2)), 2, 2, tied=True)[0].tolist()
[[1.0, 0.0], [0.0, 1.0]]
"""
from __future__ import annotations

import numpy as np

from numerics.validation import as_matrix, as_rng, flag, nonnegative, positive_int

__all__ = ["random_init", "given_weights"]


def random_init(d, p, *, tied=False, seed=0, scale=None):
    """Random (W1, W2): i.i.d. U(−s, s) entries with ``s = 1/√d`` (PyTorch's encoder default).

    ``scale`` overrides s; ``seed`` is an int or a numpy Generator. Tied returns the same
    array twice.

    >>> W1, W2 = random_init(4, 3, seed=0)                     # (d, p) = (4, 3), untied
    >>> W1.shape, W1 is W2, bool(np.abs(W1).max() <= 1 / np.sqrt(4))
    ((4, 3), False, True)
    """
    d = positive_int("d", d)
    p = positive_int("p", p)
    tied = flag("tied", tied)
    rng = as_rng("seed", seed)
    s = 1.0 / np.sqrt(d) if scale is None else nonnegative("scale", scale)
    W1 = rng.uniform(-s, s, size=(d, p))
    if tied:
        return W1, W1
    return W1, rng.uniform(-s, s, size=(d, p))


def given_weights(init, d: int, p: int, *, tied: bool, name: str = "init", n: int | None = None):
    """Copies ``(W1, W2)`` of a user-given start: a (d, p) array W (both) or a pair (W1, W2).

    With ``tied=True`` a pair must have W1 == W2; the result is then the same array twice.
    ``n`` (the data's column count) lets the error say when the data look transposed.

    >>> W1, W2 = given_weights(np.ones((3, 2)), 3, 2, tied=False)   # one W: W1 = W2 = W, (d, p) = (3, 2)
    >>> W1.shape, W1 is W2, np.array_equal(W1, W2)                  # untied: two copies
    ((3, 2), False, True)
    """
    d, p = positive_int("d", d), positive_int("p", p)
    tied = flag("tied", tied)
    first = init[0] if isinstance(init, (tuple, list)) and len(init) == 2 else init
    rows = np.shape(first)[0] if np.ndim(first) == 2 else None
    if n is not None and rows is not None and rows != d and rows == n:
        raise ValueError(f"X has shape (n, d) = ({d}, {n})? Samples must be columns: {name} has {rows} rows, "
                         f"as many as X has columns; X must have shape (d, n) with d = {rows}")
    if isinstance(init, (tuple, list)) and len(init) == 2:
        W1 = as_matrix(f"{name}[0]", init[0], rows=d, cols=p, cols_name="p")
        W2 = as_matrix(f"{name}[1]", init[1], rows=d, cols=p, cols_name="p")
        if tied and not np.array_equal(W1, W2):
            raise ValueError(f"{name} must have W1 == W2 when tied=True")
    else:
        if isinstance(init, str):
            raise ValueError(f"{name} must be a (d, p) = ({d}, {p}) array W or a pair (W1, W2); got {init!r}")
        W1 = as_matrix(name, init, rows=d, cols=p, cols_name="p")
        W2 = W1
    W1 = W1.copy()
    return (W1, W1) if tied else (W1, W2.copy())
