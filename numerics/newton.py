"""Trust-region Newton stage on eq. (6) with exact Hessian-vector products, and its spectrum.

`newton_polish` takes weights (e.g. where L-BFGS stopped) and runs SciPy's ``trust-krylov``
(or ``trust-ncg``) with the exact gradient and the exact Hessian-vector products of
`numerics.hessian`, in the invariant basis of `numerics.geometry.invariant_basis` (data span
plus the weights: an exact change of coordinates, eq. (6) being invariant under rotations
that fix the data). It stops at ``‖∇L‖_F / L0 ≤ gtol`` (L0 as in `numerics.geometry.loss_scale`).

`exact_hessp` is the product factory that `numerics.certify.certify` accepts as ``hessp=``
and `numerics.training.train` as ``polish=dict(hessp=...)``; `smallest_eigenpairs` gives the
bottom of the Hessian spectrum by Lanczos (SciPy's ``eigsh``) on the same products.

>>> import numpy as np
>>> X = np.array([[2.0, -1.0, 0.3], [0.0, 1.7, -0.4]])
>>> W = np.array([[1.0, -0.5], [0.1, 0.8]])
>>> out = newton_polish(X, W, W, 0.2, 0.01, tied=True)
>>> out.converged, out.rel_grad_norm <= 1e-8
(True, True)
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import scipy.optimize
import scipy.sparse.linalg

from numerics.geometry import ExactGradient, Packing, invariant_basis, loss_scale
from numerics.hessian import HessianVectorProduct, ParallelColumnsError
from numerics.objective import expected_loss_and_grad
from numerics.validation import as_rng, flag, nonnegative, objective_arguments, positive_int, tied_weights

__all__ = ["exact_hessp", "newton_polish", "NewtonResult", "smallest_eigenpairs"]


def exact_hessp(W1, W2, X, sigma, lam, tied):
    """Product factory for ``certify(..., hessp=)`` / ``train(..., polish=dict(hessp=))``:
    ``V ↦ H V`` (tied) or ``(V1, V2) ↦ (H1, H2)``, exact (`numerics.hessian.HessianVectorProduct`).

    At parallel columns of W1 sharing undecided samples — split neurons, e.g. the
    non-unique sparse solutions of Cor. 3.2 — the closed form is not available; there the
    product is the central difference of the exact gradient (`numerics.geometry.ExactGradient`,
    step ``1e-5·max(‖θ‖, 1)``, as `numerics.certify` uses by default), and the returned
    function has ``exact = False``.

    >>> import numpy as np
    >>> X = np.array([[2.0, -1.0, 0.3], [0.0, 1.7, -0.4]]); W = np.array([[1.0, -0.5], [0.1, 0.8]])
    >>> product = exact_hessp(W, W, X, 0.2, 0.01, tied=True)
    >>> product.exact, product(np.ones((2, 2))).shape
    (True, (2, 2))
    """
    try:
        product = HessianVectorProduct(W1, W2, X, sigma, lam, tied=tied)
        product.exact = True
        return product
    except ParallelColumnsError:
        pass
    return _central_difference_product(W1, W2, X, sigma, lam, tied)


def _central_difference_product(W1, W2, X, sigma, lam, tied):
    packing = Packing(W1.shape[0], W1.shape[1], tied)
    gradient = ExactGradient(X, sigma, lam, packing)
    theta = packing.pack(W1, W2)

    def product(V1, V2=None):
        H1, H2 = packing.unpack(gradient.hvp(theta, packing.pack(V1, V1 if tied else V2)))
        return H1 if tied else (H1, H2)

    product.exact = False
    return product


class _Breakdown(Exception):
    """The trust-region subproblem solver returned a non-finite direction, a trial point left
    the float64 range of eq. (6), or ``max_time`` ran out inside a subproblem."""


class _Problem:
    """Eq. (6) on a packed parameter vector in reduced coordinates, with a one-point cache."""

    def __init__(self, C, p, sigma, lam, tied):
        self.C, self.p, self.sigma, self.lam, self.tied = C, p, sigma, lam, tied
        self.k = C.shape[0]
        self.n_eval = 0
        self.n_hvp = 0
        self._last = None
        self._product = None
        self.best = None                 # (point, gradient norm) of the smallest gradient seen
        self.deadline = None             # perf_counter time after which products stop

    def unpack(self, theta):
        size = self.k * self.p
        V1 = theta[:size].reshape(self.k, self.p)
        return (V1, V1) if self.tied else (V1, theta[size:].reshape(self.k, self.p))

    def pack(self, A1, A2):
        return (A1 + A2).ravel() if self.tied else np.concatenate([A1.ravel(), A2.ravel()])

    def __call__(self, theta):
        if self._last is not None and np.array_equal(theta, self._last[0]):
            return self._last[1], self._last[2]
        V1, V2 = self.unpack(theta)
        try:
            loss, g1, g2 = expected_loss_and_grad(V1, V2, self.C, self.sigma, self.lam)
        except ValueError as error:      # the start passed the same checks: a trial point's overflow
            raise _Breakdown(f"a trial point left the float64 range of eq. (6) ({error})") from error
        self.n_eval += 1
        self._last = (theta.copy(), float(loss), self.pack(g1, g2))
        norm = float(np.linalg.norm(self._last[2]))
        if self.best is None or norm < self.best[1]:
            self.best = (self._last[0], norm)
        return self._last[1], self._last[2]

    def hessp(self, theta, vector):
        if not (np.all(np.isfinite(theta)) and np.all(np.isfinite(vector))):
            raise _Breakdown("non-finite trust-region direction")
        if self.deadline is not None and time.perf_counter() > self.deadline:
            raise _Breakdown("max_time reached inside a trust-region subproblem")
        if self._product is None or not np.array_equal(theta, self._product[0]):
            V1, V2 = self.unpack(theta)
            self._product = None             # let the last point's pair table go first
            try:
                product = HessianVectorProduct(V1, V2, self.C, self.sigma, self.lam, tied=self.tied)
            except ValueError as error:
                raise _Breakdown(f"no Hessian-vector product at this trial point ({error})") from error
            self._product = (theta.copy(), product)
        self.n_hvp += 1
        D1, D2 = self.unpack(np.asarray(vector, dtype=np.float64))
        product = self._product[1]
        try:
            if self.tied:
                return product(D1).ravel()
            H1, H2 = product(D1, D2)
        except ValueError as error:      # a subproblem direction beyond the float64 range
            raise _Breakdown(f"no Hessian-vector product along this direction ({error})") from error
        return np.concatenate([H1.ravel(), H2.ravel()])


@dataclass
class NewtonResult:
    """Outcome of `newton_polish`: final ``W1, W2`` (the same array when tied), exact ``loss``,
    ``rel_grad_norm`` (``‖∇L‖_F/L0``), ``converged`` (``≤ gtol``), iterations, gradient and
    Hessian-vector product counts, ``wall_time``, SciPy's ``message`` and ``history``
    (seconds, loss, relative gradient norm) after every iteration."""
    W1: np.ndarray
    W2: np.ndarray
    loss: float
    rel_grad_norm: float
    converged: bool
    n_iter: int
    n_eval: int
    n_hvp: int
    wall_time: float
    message: str
    history: list = field(default_factory=list)


def newton_polish(X, W1, W2, sigma, lam, *, tied=False, gtol=1e-8, max_iter=500, max_time=None,
                  method="trust-krylov", reduce=True, newton_steps=10) -> NewtonResult:
    """Minimise eq. (6) from ``(W1, W2)`` by a trust-region Newton method with exact ``H v``.

    ``method``: ``"trust-krylov"`` (default; Lanczos subproblems, handles negative curvature)
    or ``"trust-ncg"``. Stops at ``‖∇L‖/L0 ≤ gtol``, after ``max_iter`` iterations or
    ``max_time`` seconds. If the trust region stops above ``gtol`` (its acceptance test
    compares loss decreases, which near ``‖∇L‖/L0 ≈ 1e-9`` reach the rounding of L), up to
    ``newton_steps`` Newton steps on ``∇L = 0`` follow, accepted when ``‖∇L‖`` falls
    (`_gradient_newton`); this finds critical points of any index, which `numerics.certify`
    then classifies.

    >>> import numpy as np
    >>> X = np.array([[2.0, -1.0, 0.3], [0.0, 1.7, -0.4]]); W = np.array([[1.0, -0.5], [0.1, 0.8]])
    >>> out = newton_polish(X, W, W, 0.2, 0.01, tied=True, gtol=1e-10)
    >>> out.converged, out.loss < 1.0
    (True, True)
    """
    X, W1, W2, sigma, lam = objective_arguments(X, W1, W2, sigma, lam)
    tied = tied_weights(W1, W2, flag("tied", tied))
    gtol = nonnegative("gtol", gtol)
    max_iter = positive_int("max_iter", max_iter)
    max_time = None if max_time is None else nonnegative("max_time", max_time)
    newton_steps = positive_int("newton_steps", newton_steps, minimum=0)
    reduce = flag("reduce", reduce)
    if not isinstance(method, str) or method not in ("trust-krylov", "trust-ncg"):
        raise ValueError(f"method must be 'trust-krylov' or 'trust-ncg'; got {method!r:.60}")
    d, p = W1.shape
    basis = invariant_basis(X, W1, None if tied else W2) if reduce else None
    if basis is not None and basis.shape[1] >= d:
        basis = None
    C = X if basis is None else basis.T @ X
    problem = _Problem(C, p, sigma, lam, tied)
    V1, V2 = (W1, W2) if basis is None else (basis.T @ W1, basis.T @ W2)
    theta0 = V1.ravel().copy() if tied else np.concatenate([V1.ravel(), V2.ravel()])
    scale = loss_scale(X)
    started = time.perf_counter()
    if max_time is not None:
        problem.deadline = started + float(max_time)
    history = []

    def callback(intermediate_result):
        _, grad = problem(intermediate_result.x)
        rel = float(np.linalg.norm(grad)) / scale
        history.append((time.perf_counter() - started, float(intermediate_result.fun), rel))
        if rel <= gtol or (max_time is not None and time.perf_counter() - started > max_time):
            raise StopIteration

    loss0, grad0 = problem(theta0)
    history.append((0.0, loss0, float(np.linalg.norm(grad0)) / scale))
    message = "already below gtol"
    theta = theta0
    if history[0][2] > gtol:
        try:
            out = scipy.optimize.minimize(problem, theta0, jac=True, hessp=problem.hessp, method=method,
                                          callback=callback,
                                          options=dict(maxiter=max_iter, gtol=0.5 * gtol * scale))
            theta, message = out.x, str(out.message)
        except _Breakdown as stop:
            # SciPy's subproblem solver (trlib) can return NaN directions on nearly singular
            # Hessians, or max_time ran out inside a subproblem: the point with the smallest
            # gradient so far is kept.
            theta, message = problem.best[0], f"trust region stopped: {stop}"
    loss, grad = problem(theta)
    rel = float(np.linalg.norm(grad)) / scale
    if rel > gtol and not (max_time is not None and time.perf_counter() - started > max_time):
        theta, steps = _gradient_newton(problem, theta, gtol * scale, newton_steps)
        if steps:
            loss, grad = problem(theta)
            rel = float(np.linalg.norm(grad)) / scale
            history.append((time.perf_counter() - started, float(loss), rel))
            message += f"; then {steps} Newton steps on the gradient norm"
    U1, U2 = problem.unpack(theta)
    if basis is not None:
        U1, U2 = basis @ U1, basis @ U2
    return NewtonResult(W1=U1, W2=U1 if tied else U2, loss=float(loss), rel_grad_norm=rel,
                        converged=rel <= gtol, n_iter=len(history) - 1, n_eval=problem.n_eval,
                        n_hvp=problem.n_hvp, wall_time=time.perf_counter() - started,
                        message=message, history=history)


def _gradient_newton(problem, theta, gtol_abs, max_steps):
    """Newton's method on ``∇L = 0``: MINRES for ``(H + μI) s = −g``, steps accepted when
    ``‖g‖`` falls. ``μ = 1e-6·‖H u‖`` (u a random unit vector: the scale of H) damps the
    symmetry directions (column rotations inside a block), whose curvature is only
    ``O(‖∇L‖)`` away from a critical point, and barely changes the others.

    Used where the trust-region test fails for want of resolution: near ``‖∇L‖/L0 = 1e-9``
    the predicted loss decrease is ``O(‖∇L‖²/μ)``, at the rounding level of L itself, while
    the gradient norm is still resolved to ~1e-13 relative.
    """
    steps = 0
    _, grad = problem(theta)
    norm = float(np.linalg.norm(grad))
    while steps < max_steps and norm > gtol_abs:
        try:
            accepted = _newton_step(problem, theta, grad, norm, seed=steps)
        except _Breakdown:               # max_time ran out, or every trial left the float64 range
            accepted = None
        if accepted is None:
            break
        theta, grad, norm = accepted
        steps += 1
    return theta, steps


def _newton_step(problem, theta, grad, norm, seed):
    """One damped Newton step of `_gradient_newton` with backtracking; None if ``‖g‖`` does not fall."""
    m = theta.size
    operator = scipy.sparse.linalg.LinearOperator((m, m), dtype=np.float64,
                                                  matvec=lambda v: problem.hessp(theta, v.ravel()))
    probe = np.random.default_rng(seed).standard_normal(m)
    damping = 1e-6 * float(np.linalg.norm(problem.hessp(theta, probe / np.linalg.norm(probe))))
    step, _ = scipy.sparse.linalg.minres(operator, -grad, shift=-damping, rtol=1e-10, maxiter=500)
    for t in (1.0, 0.5, 0.25, 0.125):
        try:
            _, trial_grad = problem(theta + t * step)
        except _Breakdown:
            continue
        trial_norm = float(np.linalg.norm(trial_grad))
        if trial_norm < norm:
            return theta + t * step, trial_grad, trial_norm
    return None


def smallest_eigenpairs(W1, W2, X, sigma, lam, *, tied=False, k=6, tol=1e-8, reduce=True, seed=0,
                        maxiter=None, ncv=None):
    """The ``k`` smallest eigenvalues of the Hessian of eq. (6) and their unit eigenvectors.

    Lanczos (ARPACK via ``scipy.sparse.linalg.eigsh``) on the exact products, shifted by the
    largest eigenvalue c so that the wanted end is the largest in magnitude of ``H − c I``.
    Symmetry directions are not removed (see `numerics.certify` for that). With ``reduce``
    the spectrum is that of the invariant subspace (data span + weights); the complement
    block only repeats eigenvalues of one extra direction (`numerics.geometry.invariant_basis`).
    Returns ``(eigenvalues ascending, eigenvectors as a list of (V1, V2) in the original
    coordinates)``; with ``maxiter`` (ARPACK restarts) reached, the pairs converged so far.
    ``ncv`` is ARPACK's Lanczos basis size (default ``max(2k + 1, 20)``): a clustered bottom
    of the spectrum needs a larger one.

    >>> import numpy as np
    >>> from numerics.spectrum import hessian_matrix
    >>> X = np.array([[2.0, -1.0, 0.3], [0.0, 1.7, -0.4]]); W = np.array([[1.0, -0.5], [0.1, 0.8]])
    >>> values, modes = smallest_eigenpairs(W, W, X, 0.2, 0.01, tied=True, k=2)
    >>> dense = np.linalg.eigvalsh(hessian_matrix(W, W, X, 0.2, 0.01, tied=True))[:2]
    >>> bool(np.allclose(values, dense, rtol=1e-6)), modes[0][0].shape   # central differences: ≲ 1e-9·‖H‖
    (True, (2, 2))
    """
    X, W1, W2, sigma, lam = objective_arguments(X, W1, W2, sigma, lam)
    tied = tied_weights(W1, W2, flag("tied", tied))
    k = positive_int("k", k)
    tol = nonnegative("tol", tol)
    reduce = flag("reduce", reduce)
    maxiter = None if maxiter is None else positive_int("maxiter", maxiter)
    ncv = None if ncv is None else positive_int("ncv", ncv, minimum=k + 2)
    d, p = W1.shape
    basis = invariant_basis(X, W1, None if tied else W2, extra=1) if reduce else None
    if basis is not None and basis.shape[1] >= d:
        basis = None
    C = X if basis is None else basis.T @ X
    U1, U2 = (W1, W2) if basis is None else (basis.T @ W1, basis.T @ W2)
    problem = _Problem(C, p, sigma, lam, tied)
    theta = U1.ravel().copy() if tied else np.concatenate([U1.ravel(), U2.ravel()])
    m = theta.size
    if k >= m:
        raise ValueError(f"k must be smaller than the number of parameters ({m} here); got {k}")
    if ncv is not None and ncv > m:
        raise ValueError(f"ncv must be at most the number of parameters ({m} here); got {ncv}")
    rng = as_rng("seed", seed)
    operator = scipy.sparse.linalg.LinearOperator((m, m), dtype=np.float64,
                                                  matvec=lambda v: problem.hessp(theta, v.ravel()))
    top = float(scipy.sparse.linalg.eigsh(operator, k=1, which="LA", tol=1e-3,
                                          v0=rng.standard_normal(m), return_eigenvectors=False)[0])
    shifted = scipy.sparse.linalg.LinearOperator(
        (m, m), dtype=np.float64, matvec=lambda v: problem.hessp(theta, v.ravel()) - top * v.ravel())
    try:
        values, vectors = scipy.sparse.linalg.eigsh(shifted, k=k, which="LM", tol=tol,
                                                    v0=rng.standard_normal(m), maxiter=maxiter, ncv=ncv)
    except scipy.sparse.linalg.ArpackNoConvergence as partial:
        if partial.eigenvalues.size == 0:
            raise
        values, vectors = partial.eigenvalues, partial.eigenvectors
    values = values + top
    order = np.argsort(values)
    modes = []
    for index in order:
        D1, D2 = problem.unpack(vectors[:, index])
        if basis is not None:
            D1, D2 = basis @ D1, basis @ D2
        modes.append((D1, D1 if tied else D2))
    return values[order], modes
