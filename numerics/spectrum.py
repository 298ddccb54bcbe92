"""Smallest Hessian eigenvalues on the complement of the symmetry directions (used by `numerics.certify`).

Both methods see the Hessian only through products ``hvp(v)`` and the symmetries through a
`numerics.symmetry.SymmetryProjector` P:

* `dense_spectrum` — m products build H; its eigenvalues are read in an orthonormal basis
  of the range of I − P (exact up to the products' finite-difference error);
* `hessian_matrix` — the dense Hessian of eq. (6) itself (small problems, tests);
* `lanczos_spectrum` — ARPACK on ``P H P + c I + 2c (I − P)`` with c ≈ λ_max(H): the removed
  directions sit at 3c, the kept eigenvalues in [c + λ_min, 2c], and ARPACK's relative
  stopping test ``‖r‖ ≤ tol·|θ|`` becomes an absolute accuracy of about ``tol·c``.

>>> import numpy as np
>>> from numerics.symmetry import SymmetryProjector
>>> H = np.diag([3.0, 1.0]); W = np.eye(2)[:, :1]          # one column, no symmetry to remove
>>> projector = SymmetryProjector(W, W, [], tied=True, family="rotation")
>>> dense_spectrum(lambda v: H @ v, projector, 2, 2, np.random.default_rng(0)).eigenvalues.tolist()
[1.0, 3.0]
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse.linalg

from numerics.geometry import HVP_STEP, ExactGradient, NonFiniteStep, Packing
from numerics.validation import data_and_weights, nonnegative, positive_int, tied_weights

__all__ = ["Spectrum", "dense_spectrum", "lanczos_spectrum", "hessian_matrix", "difference_range"]


def _checked(hvp, projector, m, n_eigs):
    if not callable(hvp):
        raise TypeError(f"hvp must be a callable v -> H v; got {type(hvp).__name__}")
    if not (hasattr(projector, "complement") and hasattr(projector, "component")):
        raise TypeError(f"projector must be a numerics.symmetry.SymmetryProjector; got {type(projector).__name__}")
    m = positive_int("m", m)
    size = projector.d * projector.k * (1 if projector.tied else 2)
    if m != size:
        raise ValueError(f"m must be the projector's parameter count {size}; got {m}")
    return m, positive_int("n_eigs", n_eigs)


@dataclass
class Spectrum:
    """Smallest ``eigenvalues`` (ascending) of the compressed Hessian, ``lambda_max``, the number of
    removed symmetry directions, their largest |Rayleigh quotient| (``symmetry_curvature``),
    ``method``, Hessian-vector products spent and the unit ``lowest_mode`` (a vector here;
    `numerics.certify` unpacks it to weights).

    Returned by `dense_spectrum` and `lanczos_spectrum`.
    """
    eigenvalues: np.ndarray = field(default_factory=lambda: np.array([]))
    lambda_max: float = float("nan")
    n_symmetry: int = 0
    symmetry_curvature: float = float("nan")
    method: str = "none"
    n_hvp: int = 0
    lowest_mode: tuple | None = None


def dense_spectrum(hvp, projector, m: int, n_eigs: int, rng) -> Spectrum:
    """The full m × m Hessian from m products, compressed to the complement of the symmetry directions.

    ``hvp(v)`` is the Hessian-vector product, ``projector`` a `numerics.symmetry.SymmetryProjector`,
    ``rng`` draws the removed directions whose curvature is reported.

    >>> from numerics.symmetry import SymmetryProjector
    >>> W = np.eye(2)[:, :1]                                  # tied (d, p) = (2, 1): m = 2 coordinates
    >>> projector = SymmetryProjector(W, W, [], tied=True, family="rotation")   # one column: no symmetry
    >>> dense_spectrum(lambda v: np.diag([3.0, 1.0]) @ v, projector, 2, 2, np.random.default_rng(0)).eigenvalues.tolist()
    [1.0, 3.0]
    """
    m, n_eigs = _checked(hvp, projector, m, n_eigs)
    H = np.column_stack([hvp(e) for e in np.eye(m)])
    H = 0.5 * (H + H.T)
    P = np.column_stack([projector.complement(e) for e in np.eye(m)])
    P = 0.5 * (P + P.T)
    w, V = np.linalg.eigh(P)
    Q = V[:, w > 0.5]
    out = Spectrum(method="dense", n_symmetry=m - Q.shape[1])
    evals, evecs = np.linalg.eigh(Q.T @ H @ Q)
    out.eigenvalues = evals[:n_eigs]
    top = float(np.linalg.eigvalsh(H)[-1])
    out.lambda_max = float(max(evals[-1], top)) if evals.size else top
    if evals.size:
        out.lowest_mode = Q @ evecs[:, 0]
    if out.n_symmetry:
        S = V[:, w <= 0.5]
        picks = S @ rng.standard_normal((S.shape[1], min(3, S.shape[1])))
        out.symmetry_curvature = max(abs(float(v @ H @ v) / float(v @ v)) for v in picks.T)
    return out


def lanczos_spectrum(hvp, projector, m: int, n_eigs: int, lanczos_tol: float, rng) -> Spectrum:
    """Lanczos (ARPACK) on the shifted operator ``P H P + c I + 2c (I − P)``, c ≈ λ_max.

    >>> from numerics.symmetry import SymmetryProjector
    >>> W = np.eye(4)[:, :1]                                  # tied (d, p) = (4, 1): m = 4 coordinates
    >>> projector = SymmetryProjector(W, W, [], tied=True, family="rotation")
    >>> out = lanczos_spectrum(lambda v: np.diag([4.0, 3.0, 2.0, 1.0]) @ v, projector, 4, 2, 1e-10, np.random.default_rng(0))
    >>> np.round(out.eigenvalues, 8).tolist(), round(out.lambda_max, 2)
    ([1.0, 2.0], 4.0)
    """
    m, n_eigs = _checked(hvp, projector, m, n_eigs)
    lanczos_tol = nonnegative("lanczos_tol", lanczos_tol)
    out = Spectrum(method="lanczos", n_symmetry=projector.dimension)
    compressed = scipy.sparse.linalg.LinearOperator(
        (m, m), dtype=np.float64, matvec=lambda v: projector.complement(hvp(projector.complement(v))))
    v0 = projector.complement(rng.standard_normal(m))
    top = scipy.sparse.linalg.eigsh(compressed, k=1, which="LA", tol=1e-3, v0=v0, return_eigenvectors=False)
    out.lambda_max = float(top[-1])
    shift = max(out.lambda_max, 1e-300)
    # Spectrum of P H P + c·I + 2c·(I − P): the kept eigenvalues λ + c lie in [c + λ_min, 2c],
    # the removed directions at 3c, out of the way. ARPACK stops when ‖r‖ ≤ tol·|θ|; with
    # θ ≈ c that bounds the absolute eigenvalue error by ≈ tol·c, instead of tol times an
    # eigenvalue near zero (which near-flat minima reach only after thousands of products).
    shifted = scipy.sparse.linalg.LinearOperator(
        (m, m), dtype=np.float64,
        matvec=lambda v: (projector.complement(hvp(projector.complement(v)))
                          + shift * v + 2.0 * shift * projector.component(v)))
    k = min(n_eigs, m - 1)
    evals, evecs = scipy.sparse.linalg.eigsh(shifted, k=k, which="SA", tol=lanczos_tol, v0=v0,
                                             ncv=min(m, max(2 * k + 1, 30)))
    evals = evals - shift
    order = np.argsort(evals)
    out.eigenvalues = evals[order]
    out.lowest_mode = evecs[:, order[0]]
    if out.n_symmetry:
        picks = [projector.component(rng.standard_normal(m)) for _ in range(3)]
        out.symmetry_curvature = max(abs(float(v @ hvp(v)) / max(float(v @ v), 1e-300)) for v in picks)
    return out


def hessian_matrix(W1, W2, X, sigma, lam, *, tied=None, step_rel=HVP_STEP) -> np.ndarray:
    """Dense Hessian of eq. (6) by central differences of the exact gradient (small problems).

    Coordinates: ``W.ravel()`` when tied, else ``(W1.ravel(), W2.ravel())``; zero columns are
    not removed here. The result is symmetrised.

    >>> W = np.array([[1.0], [0.5]]); X = np.array([[2.0, -1.0], [0.0, 1.5]])
    >>> hessian_matrix(W, W, X, 0.1, 0.01).shape                    # tied: d·p coordinates
    (2, 2)
    """
    X, W1, W2 = data_and_weights(X, W1, W2)
    sigma, lam = nonnegative("sigma", sigma, symbol="σ"), nonnegative("lam", lam, symbol="λ")
    tied = tied_weights(W1, W2, tied)
    step_rel = nonnegative("step_rel", step_rel)
    packing = Packing(W1.shape[0], W1.shape[1], tied)
    gradient = ExactGradient(X, sigma, lam, packing)
    theta = packing.pack(W1, W2)
    with difference_range():
        H = np.column_stack([gradient.hvp(theta, e, step_rel) for e in np.eye(theta.size)])
    return 0.5 * (H + H.T)


@contextlib.contextmanager
def difference_range():
    """Finite differences that step out of the float64 range are the inputs' scale: say so.

    >>> with difference_range():
    ...     raise NonFiniteStep("the step left the float64 range")
    Traceback (most recent call last):
    ...
    ValueError: the finite-difference Hessian of eq. (6) leaves the float64 range at these weights ...
    """
    try:
        yield
    except NonFiniteStep as error:
        raise ValueError("the finite-difference Hessian of eq. (6) leaves the float64 range at these "
                         "weights (steps are relative to the whole parameter vector, so W1 and W2 of very "
                         f"different scales overflow): rescale W1, W2 and X ({error})") from error
