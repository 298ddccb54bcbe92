"""Geometry of the weights, shared by `numerics.solvers` and `numerics.certify`.

* the loss unit ``L0`` (`loss_scale`) and which columns count as zero (`ZERO_TOL`,
  `column_sizes`, `zero_columns`);
* the invariant subspace of eq. (6) (`orthonormal_span`, `invariant_basis`): the loss is
  unchanged by every rotation R with RX = X, so optimisation and certification can run in
  the span of the data and the weights, an exact change of coordinates;
* one `Packing` of (W1, W2) — tied, untied, all or only the live columns — into the flat
  vector SciPy works on;
* one `ExactGradient`: eq. (6)'s exact gradient on that vector, and its Hessian-vector
  product — by central differences (`HVP_STEP`), or from a given factory of exact products
  (``hessp``, e.g. `numerics.newton.exact_hessp`).

>>> import numpy as np
>>> X = np.array([[2.0, 0.0], [0.0, 1.0], [0.0, 0.0]])         # d = 3, n = 2
>>> loss_scale(X), invariant_basis(X).shape
(2.5, (3, 2))
>>> packing = Packing(3, 2, tied=True)
>>> W = np.arange(6.0).reshape(3, 2)
>>> theta = packing.pack(W, W)
>>> theta.shape, bool(np.array_equal(packing.unpack(theta)[0], W))
((6,), True)
"""
from __future__ import annotations

import numpy as np

from numerics.objective import expected_loss_and_grad
from numerics.validation import MagnitudeError, as_matrix, flag, nonnegative, positive_int, weights_pair

__all__ = ["loss_scale", "ZERO_TOL", "HVP_STEP", "column_sizes", "zero_columns", "orthonormal_span",
           "invariant_basis", "Packing", "ExactGradient", "NonFiniteStep"]

ZERO_TOL = 1e-6        # a column is zero when it is this much shorter than the longest one
HVP_STEP = 1e-5        # relative step of the finite-difference Hessian-vector products


def loss_scale(X) -> float:
    """``L0 = (1/n) Σ_i ‖x_i‖²``: eq. (6) at W = 0, the unit of relative gradient norms (1.0 if X = 0).

    >>> loss_scale([[3.0, 0.0], [4.0, 0.0]])
    12.5
    """
    X = as_matrix("X", X, cols_name="n")
    value = float(np.sum(X * X) / X.shape[1])
    return value if value > 0 else 1.0


# ----------------------------------------------------------------------------- columns


def column_sizes(W1, W2) -> np.ndarray:
    """``max(‖w1_j‖, ‖w2_j‖)`` per column j, shape (p,).

    >>> column_sizes([[3.0, 0.0], [4.0, 0.0]], [[0.0, 1.0], [0.0, 0.0]]).tolist()
    [5.0, 1.0]
    """
    W1, W2 = weights_pair(W1, W2)
    return np.maximum(np.linalg.norm(W1, axis=0), np.linalg.norm(W2, axis=0))


def zero_columns(W1, W2, zero_tol=ZERO_TOL) -> np.ndarray:
    """Boolean mask of columns j with ``max(‖w1_j‖, ‖w2_j‖) <= zero_tol · max_k (same)``.

    All columns are zero when the weights are zero.

    >>> W = np.array([[1.0, 1e-9], [0.0, 0.0]])
    >>> zero_columns(W, W).tolist()
    [False, True]
    """
    size = column_sizes(W1, W2)
    zero_tol = nonnegative("zero_tol", zero_tol)
    top = float(size.max())
    if top == 0.0:
        return np.ones(size.shape, dtype=bool)
    return size <= zero_tol * top


# ----------------------------------------------------------------------------- invariant subspace


def orthonormal_span(A, tol=1e-10, reference=None) -> np.ndarray:
    """Orthonormal basis (d, r) of the column space of A: singular values > tol·reference.

    ``reference`` defaults to A's largest singular value; pass the scale of the quantity A
    was computed from when A may be pure rounding (e.g. a projection residual).

    >>> orthonormal_span(np.array([[1.0, 2.0], [0.0, 0.0]])).shape
    (2, 1)
    """
    A = as_matrix("A", A)
    tol = nonnegative("tol", tol)
    reference = None if reference is None else nonnegative("reference", reference)
    if A.shape[1] > 4 * A.shape[0] and reference is None:
        # Wide A (data): eigh of A Aᵀ is much cheaper than an SVD but squares the condition
        # number, lifting rounding-level directions to √ε·σ_max; keep what is above that and
        # accept it only if the discarded part of A is itself at rounding level.
        values, vectors = np.linalg.eigh(A @ A.T)
        values = np.sqrt(np.clip(values[::-1], 0.0, None))
        vectors = vectors[:, ::-1][:, values > 1e-7 * max(float(values[0]), 1e-300)]
        residual = np.linalg.norm(A - vectors @ (vectors.T @ A))
        if residual <= tol * np.linalg.norm(A):
            return vectors
    # An SVD, not eigh(A Aᵀ): squaring would lift rounding-level directions to √ε·σ_max.
    vectors, values, _ = np.linalg.svd(A, full_matrices=False)
    top = float(values.max()) if reference is None else float(reference)
    return vectors[:, values > tol * max(top, 1e-300)]


def invariant_basis(X, *weights, extra=0, tol=1e-10) -> np.ndarray:
    """Orthonormal B (d, k) spanning the data, the weights' columns, and ``extra`` more directions.

    Eq. (6) is invariant under every orthogonal R with RX = X (``L(RW1, RW2) = L(W1, W2)``:
    the noise is isotropic), so its gradient at weights inside span(B) lies in span(B) and
    ``L(B V1, B V2; X) = L(V1, V2; BᵀX)`` exactly. Gradient-based optimisation from weights
    in span(B) therefore stays there, and can be run in k ≤ rank(X) + (1 or 2)·p
    coordinates. At such a point the Hessian is block diagonal (span(B) and its complement,
    on which it acts as ``I ⊗ K``), and ``extra=1`` adds one complement direction so that K
    is part of the reduced Hessian.

    >>> X = np.eye(4)[:, :2]
    >>> invariant_basis(X, np.eye(4)[:, [3]], extra=1).shape
    (4, 4)
    """
    X = as_matrix("X", X, cols_name="n")
    extra = positive_int("extra", extra, minimum=0)
    Q = orthonormal_span(X, tol)
    weights = [as_matrix(f"weights[{i}]", W, rows=X.shape[0], cols_name="p")
               for i, W in enumerate(weights) if W is not None]
    if weights:
        parts = np.hstack([W - Q @ (Q.T @ W) for W in weights])
        scale = max(float(np.linalg.norm(W, 2)) for W in weights)
        Z = orthonormal_span(parts, tol, reference=scale)
        if Z.shape[1]:
            Z -= Q @ (Q.T @ Z)                  # re-orthogonalise against rounding
            Z, _ = np.linalg.qr(Z)
            Q = np.hstack([Q, Z])
    d = Q.shape[0]
    if extra and Q.shape[1] < d:
        rng = np.random.default_rng(0)
        for _ in range(extra):
            if Q.shape[1] >= d:
                break
            v = rng.standard_normal(d)
            for _ in range(2):                 # twice for orthogonality to rounding
                v -= Q @ (Q.T @ v)
            Q = np.hstack([Q, (v / np.linalg.norm(v))[:, None]])
    return Q


# ----------------------------------------------------------------------------- parameters


class Packing:
    """(W1, W2) ↔ the flat parameter vector: ``W.ravel()`` when tied, else ``(W1.ravel(), W2.ravel())``.

    ``live`` (boolean, one per column) keeps only those columns in the vector; `unpack`
    then returns full (d, p) arrays with the other columns exactly zero. Without ``live``
    `unpack` returns views of the vector.

    >>> W = np.arange(6.0).reshape(2, 3)                          # (d, p) = (2, 3)
    >>> Packing(2, 3, tied=False).size, Packing(2, 3, tied=True).size
    (12, 6)
    >>> live = Packing(2, 3, tied=True, live=np.array([True, False, True]))
    >>> theta = live.pack(W, W)
    >>> theta.tolist(), live.unpack(theta)[0][:, 1].tolist()      # the dead column comes back as zeros
    ([0.0, 2.0, 3.0, 5.0], [0.0, 0.0])
    """

    def __init__(self, d: int, p: int, tied: bool, live=None):
        self.d, self.p, self.tied = positive_int("d", d), positive_int("p", p), flag("tied", tied)
        if live is not None:
            live = np.asarray(live)
            if live.dtype != bool or live.shape != (self.p,):
                raise ValueError(f"live must be a boolean mask with one entry per column ({self.p}); "
                                 f"got dtype {live.dtype}, shape {live.shape}")
        self.live = live
        self.k = p if self.live is None else int(self.live.sum())
        self.size = d * self.k * (1 if tied else 2)

    def _columns(self, W):
        return W if self.live is None else W[:, self.live]

    def pack(self, W1, W2) -> np.ndarray:
        """The vector of (W1, W2) (only W1 when tied)."""
        if self.tied:
            return np.array(self._columns(W1), dtype=np.float64).ravel()
        return np.concatenate([np.ravel(self._columns(W1)), np.ravel(self._columns(W2))]).astype(np.float64)

    def grad(self, gW1, gW2) -> np.ndarray:
        """The gradient on the vector from ``∂L/∂W1, ∂L/∂W2`` (their sum when tied)."""
        if self.tied:
            return self._columns(gW1 + gW2).ravel()
        return np.concatenate([self._columns(gW1).ravel(), self._columns(gW2).ravel()])

    def unpack(self, theta):
        """(W1, W2), each (d, p); the same array twice when tied."""
        dk = self.d * self.k
        parts = [theta[:dk].reshape(self.d, self.k)]
        if not self.tied:
            parts.append(theta[dk:].reshape(self.d, self.k))
        if self.live is not None:
            parts = [self._embed(part) for part in parts]
        return (parts[0], parts[0]) if self.tied else (parts[0], parts[1])

    def _embed(self, columns):
        full = np.zeros((self.d, self.p))
        full[:, self.live] = columns
        return full


class NonFiniteStep(ArithmeticError):
    """An exact evaluation or Hessian-vector product was asked at a non-finite point or direction,
    or at one where eq. (6) overflows float64 (an optimiser's step left the representable range)."""


class ExactGradient:
    """Eq. (6)'s exact loss and gradient on a `Packing`'s vector, and its Hessian-vector product.

    Calling it returns ``(loss, gradient)``; the last evaluation is cached (SciPy asks for
    the same point more than once). ``evaluations`` counts exact evaluations, ``n_hvp``
    Hessian-vector products. Subclasses may override `record` to watch every evaluation.
    ``hessp``: ``None`` (products by central differences of the gradient) or a factory
    ``(W1, W2, X, sigma, lam, tied) → product`` of exact products at a point — ``V ↦ H V``
    when tied, ``(V1, V2) ↦ (H1, H2)`` otherwise (`numerics.newton.exact_hessp`); it is
    called once per point and its product reused for every direction there.

    One tied neuron, x = 1, σ = 0.1: ``L(w) = (w² − 1)² + σ²w⁴`` (up to Φ(−10) ≈ 8e-24), so at
    w = 1 the loss is σ² = 0.01, the gradient 4σ² = 0.04 and the curvature 8 + 12σ² = 8.12:

    >>> f = ExactGradient(np.ones((1, 1)), 0.1, 0.0, Packing(1, 1, tied=True))
    >>> loss, grad = f(np.ones(1))
    >>> round(loss, 10), np.round(grad, 10).tolist(), np.round(f.hvp(np.ones(1), np.ones(1)), 5).tolist()
    (0.01, [0.04], [8.12])
    """

    def __init__(self, X, sigma: float, lam: float, packing: Packing, hessp=None):
        if not isinstance(packing, Packing):
            raise TypeError(f"packing must be a numerics.geometry.Packing; got {type(packing).__name__}")
        if hessp is not None and not callable(hessp):
            raise TypeError(f"hessp must be None or a callable (W1, W2, X, sigma, lam, tied) -> product; "
                            f"got {type(hessp).__name__}")
        self.X = as_matrix("X", X, rows=packing.d, cols_name="n")
        self.sigma = nonnegative("sigma", sigma, symbol="σ")
        self.lam = nonnegative("lam", lam, symbol="λ")
        self.packing = packing
        self.hessp = hessp
        self.evaluations = 0
        self.n_hvp = 0
        self.last = None
        self._product = None       # (point, product) of the last `hessp` factory call

    def __call__(self, theta):
        if self.last is not None and np.array_equal(theta, self.last[0]):
            return self.last[1], self.last[2]
        if not np.all(np.isfinite(theta)):
            # An optimiser's non-finite trial point (SciPy's trust-region subproblem solver can
            # return NaN steps on nearly singular Hessians); callers decide what to keep.
            raise NonFiniteStep("non-finite parameter vector")
        W1, W2 = self.packing.unpack(theta)
        try:
            loss, gW1, gW2 = expected_loss_and_grad(W1, W2, self.X, self.sigma, self.lam)
        except MagnitudeError as error:
            raise NonFiniteStep(f"eq. (6) leaves the float64 range at this point: {error}") from error
        grad = self.packing.grad(gW1, gW2)
        self.evaluations += 1
        point = theta.copy()       # shared by the records; never modified in place
        self.last = (point, float(loss), grad)
        self.record(point, float(loss), grad)
        return float(loss), grad

    def record(self, point, loss: float, grad) -> None:
        """Called after every exact evaluation (no-op here)."""

    def hvp(self, theta, vector, step_rel: float = HVP_STEP) -> np.ndarray:
        """``H v``: from the ``hessp`` factory if given, else by a central difference of the
        gradient with step ``step_rel·max(‖θ‖, 1)/‖v‖``.

        Truncation ``O(h²‖∇³L‖)`` and rounding ``O(ε‖∇L‖/h)`` are both ≲ 1e-9 of ``‖H‖`` at
        the default step (checked against second differences of loss values in the tests).
        """
        vector = np.asarray(vector, dtype=np.float64).ravel()
        if not (np.all(np.isfinite(theta)) and np.all(np.isfinite(vector))):
            raise NonFiniteStep("non-finite point or direction for a Hessian-vector product")
        if self.hessp is not None:
            return self._given_product(theta, vector)
        norm = float(np.linalg.norm(vector))
        if norm == 0.0:
            return np.zeros_like(vector)
        h = step_rel * max(float(np.linalg.norm(theta)), 1.0) / norm
        self.n_hvp += 1
        _, plus = self(theta + h * vector)
        _, minus = self(theta - h * vector)
        return (plus - minus) / (2.0 * h)

    def _given_product(self, theta, vector) -> np.ndarray:
        if self._product is None or not np.array_equal(theta, self._product[0]):
            W1, W2 = self.packing.unpack(np.array(theta, dtype=np.float64))
            product = self.hessp(W1, W2, self.X, self.sigma, self.lam, self.packing.tied)
            self._product = (np.array(theta, dtype=np.float64), product)
        product = self._product[1]
        V1, V2 = self.packing.unpack(vector)
        self.n_hvp += 1
        if self.packing.tied:
            H = product(V1)
            return self.packing.grad(H, np.zeros_like(H))
        return self.packing.grad(*product(V1, V2))
