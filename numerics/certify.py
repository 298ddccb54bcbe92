"""Second-order certificates for critical points of eq. (6): strict minimum, degenerate minimum, saddle.

`certify` evaluates, at given weights, the exact gradient and the smallest eigenvalues of
the Hessian of eq. (6) after removing the directions along which the loss is (exactly or
up to the theory's residual ``e^{−cγ²/σ²}``) constant:

* **zero columns** (``w1_j = w2_j = 0``, or shorter than 100 difference steps, see
  `below_resolution`): the loss is not twice differentiable there (the expected ReLU is
  positively homogeneous in ``w1_j``), so their coordinates leave the Hessian and get
  their own test. Adding a small neuron ``(t·a, t·b)`` changes the loss by
  ``t²[λ(‖a‖² + ‖b‖²) + bᵀG(a)] + O(t³)`` (untied) or ``t²[2λ‖a‖² + aᵀG(a)] + O(t³)``
  (tied), where ``G(a) = (2/n) Σ_i E[(f(y_i) − x_i)(aᵀy_i)_+]`` is exactly ``∂L/∂w2_j`` at
  ``w1_j = a, w2_j = 0``. Minimising over b, the point is stable in these directions iff
  ``ratio = sup_a ‖G(a)‖/(2λ‖a‖) ≤ 1`` (tied: ``sup_a −aᵀG(a)/(2λ‖a‖²) ≤ 1``). In the linear
  regime ratio = 1 exactly along the live columns' own directions (``G(w1_i) = −2λ w2_i``
  at a critical point): splitting a column into two is free — the "many sparse solutions"
  of Cor. 3.2 — so ratio ≈ 1 is that symmetry and ratio > 1 is a descent direction.
  ``sup`` is estimated by ascent from many starts (a lower bound), and bounded above
  rigorously by Cauchy–Schwarz (`zero_column_bound`).
* **column rescaling** ``(w1_j, w2_j) → (c w1_j, w2_j / c)`` when untied and λ = 0 (with λ > 0
  it is not a symmetry and has positive curvature 4λ‖·‖², so it stays in the test);
  more generally ``W1 → W1 M^{−T}, W2 → W2 M`` inside a block when λ = 0;
* **rotations inside a block** ``W → W O`` (tied) or ``(W1, W2) → (W1 O, W2 O)``: a block is
  a set of live columns with the same activation pattern ``sign(w1_jᵀx_i)`` on the data, so
  a small rotation keeps the masks (Theorem 3.1's O_k).

Hessian-vector products are central differences of the exact gradient with step
``h = 1e-5·max(‖θ‖, 1)`` along a unit vector: truncation error ``O(h²‖∇³L‖)`` and rounding
``O(ε_mach‖∇L‖_scale/h)`` are both ≲ 1e-9 of ``‖H‖`` here (checked against an analytic
Hessian in tests). Small problems use the dense compressed Hessian; large ones Lanczos
(``scipy.sparse.linalg.eigsh``) on ``P H P + c I + 2c (I − P)``, P the projector onto the
complement of the symmetry directions and c ≈ λ_max(H): the removed directions sit at the
top of the spectrum, and ARPACK's relative stopping test becomes an absolute eigenvalue
accuracy of about ``lanczos_tol · c``.

Verdict (eigenvalue tolerance ``eig_tol = rel_eig_tol · λ_max``):
``"not a critical point"`` if ``‖∇L‖/L0 > gtol``; ``"saddle"`` if the smallest eigenvalue is
``< −eig_tol`` or the zero-column ratio exceeds ``1 + ratio_tol`` plus the ratio's own
error along live columns, ``max_j ‖∂L/∂w_j‖/(2λ‖w1_j‖)`` (each comes with an
explicit descent direction, checked on the loss itself); ``"strict local minimum"`` if the
smallest eigenvalue is ``> eig_tol`` and zero columns pass — strict *modulo the removed
symmetry directions*, which are listed in the report; otherwise ``"degenerate minimum"``
(second-order necessary conditions hold, flat directions remain).

>>> import numpy as np
>>> from numerics.solvers import train
>>> X = np.array([[3.0, -1.5], [0.0, 2.6], [0.0, 0.0]])
>>> fit = train(X, 2, 0.2, 0.01, seed=0, tied=True)
>>> certify(fit.W1, fit.W2, X, 0.2, 0.01).verdict
'strict local minimum'
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import scipy.linalg
import scipy.optimize
import scipy.sparse.linalg

from numerics.solvers import ZERO_TOL, column_sizes, invariant_basis, loss_scale, zero_columns
from numerics.validation import as_matrix, nonnegative, positive_int, weights_pair

VERDICTS = ("strict local minimum", "degenerate minimum", "saddle", "not a critical point")
HVP_STEP = 1e-5         # relative step of the finite-difference Hessian-vector products
FD_RESOLUTION = 100.0   # columns shorter than this many steps are certified as zero columns


def _objective():
    from numerics import objective

    return objective


# ----------------------------------------------------------------------------- symmetries


def activation_blocks(W1, X, live=None) -> list:
    """Live columns grouped by identical activation pattern ``w1_jᵀx_i > 0`` over the samples."""
    W1 = np.asarray(W1)
    live = np.ones(W1.shape[1], dtype=bool) if live is None else np.asarray(live)
    patterns: dict = {}
    for j in np.flatnonzero(live):
        key = ((W1[:, j] @ X) > 0.0).tobytes()
        patterns.setdefault(key, []).append(j)
    return [np.array(block) for block in patterns.values()]


class SymmetryProjector:
    """Orthogonal projection onto the tangent space of the continuous symmetries (module doc).

    Works on the reduced parameter vector (live columns only) laid out as ``W[:, live]``
    (tied) or ``(W1[:, live], W2[:, live])`` raveled. Within each block the least-squares
    coefficients solve a Sylvester equation in the eigenbases of the block Gram matrices,
    so applying the projector costs O(d·k²) per block of k columns.
    """

    def __init__(self, W1, W2, blocks, *, tied: bool, family: str):
        self.W1, self.W2, self.tied, self.family = W1, W2, tied, family
        self.d, self.k = W1.shape
        self.blocks = [b for b in blocks if (len(b) >= 2 or family == "general-linear")]
        self.factors = []
        for block in self.blocks:
            A1, A2 = W1[:, block], W2[:, block]
            if family == "general-linear":
                e1, Q1 = np.linalg.eigh(A1.T @ A1)
                e2, Q2 = np.linalg.eigh(A2.T @ A2)
                self.factors.append((e1, Q1, e2, Q2))
            else:
                G = A1.T @ A1 if tied else A1.T @ A1 + A2.T @ A2
                self.factors.append(np.linalg.eigh(G))

    @property
    def dimension(self) -> int:
        if self.family == "general-linear":
            return int(sum(len(b) ** 2 for b in self.blocks))
        return int(sum(len(b) * (len(b) - 1) // 2 for b in self.blocks))

    def _split(self, v):
        dk = self.d * self.k
        V1 = v[:dk].reshape(self.d, self.k)
        return (V1, V1) if self.tied else (V1, v[dk:].reshape(self.d, self.k))

    def component(self, v) -> np.ndarray:
        """The symmetry component of v (its projection onto the symmetry tangent space)."""
        V1, V2 = self._split(v)
        out1 = np.zeros_like(V1)
        out2 = out1 if self.tied else np.zeros_like(V2)
        for block, factor in zip(self.blocks, self.factors):
            A1, A2 = self.W1[:, block], self.W2[:, block]
            B1, B2 = V1[:, block], V2[:, block]
            if self.family == "general-linear":
                # δW1 = −W1 Bᵀ, δW2 = W2 B; normal equations G2 B + B G1 = W2ᵀV2 − V1ᵀW1.
                e1, Q1, e2, Q2 = factor
                R = Q2.T @ (A2.T @ B2 - B1.T @ A1) @ Q1
                denominator = e2[:, None] + e1[None, :]
                cut = 1e-12 * max(float(denominator.max()), 1e-300)
                Bt = np.where(denominator > cut, R / np.where(denominator > cut, denominator, 1.0), 0.0)
                B = Q2 @ Bt @ Q1.T
                out1[:, block] += -A1 @ B.T
                out2[:, block] += A2 @ B
            else:
                # δW = W A (A antisymmetric); normal equations G A + A G = WᵀV − VᵀW (summed).
                e, Q = factor
                R = A1.T @ B1 - B1.T @ A1
                if not self.tied:
                    R = R + A2.T @ B2 - B2.T @ A2
                R = Q.T @ R @ Q
                denominator = e[:, None] + e[None, :]
                cut = 1e-12 * max(float(denominator.max()), 1e-300)
                At = np.where(denominator > cut, R / np.where(denominator > cut, denominator, 1.0), 0.0)
                np.fill_diagonal(At, 0.0)
                A = Q @ At @ Q.T
                out1[:, block] += A1 @ A
                if not self.tied:
                    out2[:, block] += A2 @ A
        return out1.ravel() if self.tied else np.concatenate([out1.ravel(), out2.ravel()])

    def complement(self, v) -> np.ndarray:
        return v - self.component(v)


# ----------------------------------------------------------------------------- report


@dataclass
class CertifyReport:
    """What `certify` found at one point (see the module docstring for the tests).

    ``verdict`` one of `VERDICTS`; ``loss`` eq. (6); ``grad_norm``, ``rel_grad_norm``
    (÷ L0); ``eigenvalues`` the smallest eigenvalues of the Hessian restricted to the
    complement of the symmetry directions and of the zero-column coordinates, ascending;
    ``lambda_max`` its largest eigenvalue (estimate); ``eig_tol``; ``n_params``,
    ``n_reduced`` (live coordinates), ``n_symmetry`` (removed directions); ``zero_columns``
    indices; ``blocks`` the activation blocks; ``symmetries`` plain-language list of what
    was removed; ``zero_column_ratio`` (sup estimate, λ > 0) or ``zero_column_gain``
    (λ = 0); ``zero_column_tol`` how far above 1 the ratio may be before it counts as a
    descent (``ratio_tol`` plus the offset a nonzero gradient causes along live columns);
    ``zero_column_bound`` rigorous upper bound of the ratio; ``symmetry_curvature``
    largest |Rayleigh quotient|/λ_max along random removed directions (small = the removed
    directions are indeed flat); ``descent`` (W1, W2) direction, ``descent_decrease``
    (loss drop found along it, above rounding) and ``descent_step`` (the step t that gave
    it: ``W + t·descent`` is lower) for a saddle; ``lowest_mode`` (W1, W2) unit eigenvector
    of the smallest eigenvalue (zero on zero columns); ``method`` "dense" or "lanczos"; ``n_hvp``.
    """
    verdict: str
    loss: float
    grad_norm: float
    rel_grad_norm: float
    eigenvalues: np.ndarray
    lambda_max: float
    eig_tol: float
    n_params: int
    n_reduced: int
    n_symmetry: int
    zero_columns: np.ndarray
    blocks: list
    symmetries: list
    zero_column_ratio: float
    zero_column_gain: float
    zero_column_bound: float
    symmetry_curvature: float
    method: str
    n_hvp: int
    wall_time: float
    descent: tuple | None = None
    descent_decrease: float = 0.0
    descent_step: float = 0.0
    lowest_mode: tuple | None = None
    zero_column_tol: float = float("nan")
    notes: list = field(default_factory=list)

    @property
    def min_eigenvalue(self) -> float:
        return float(self.eigenvalues[0]) if self.eigenvalues.size else float("nan")

    def summary(self) -> str:
        parts = [f"{self.verdict}: loss {self.loss:.10g}, |grad|/L0 {self.rel_grad_norm:.1e}",
                 f"min eig {self.min_eigenvalue:.3e} (tol {self.eig_tol:.1e}, max {self.lambda_max:.3e})",
                 f"{len(self.zero_columns)} zero columns"]
        if len(self.zero_columns):
            parts.append(f"zero-column ratio {self.zero_column_ratio:.6f} (bound {self.zero_column_bound:.3g})")
        parts.append(f"{self.n_symmetry} symmetry directions removed")
        return "; ".join(parts)


# ----------------------------------------------------------------------------- helpers


class _Reduced:
    """Exact gradient of eq. (6) as a function of the live columns only (zero columns held at 0)."""

    def __init__(self, W1, W2, X, sigma, lam, tied, live):
        self.X, self.sigma, self.lam, self.tied, self.live = X, sigma, lam, tied, live
        self.W1, self.W2 = W1, W2
        self.d = W1.shape[0]
        self.k = int(live.sum())
        self.objective = _objective()
        self.n_grad = 0

    def pack(self, W1, W2):
        if self.tied:
            return W1[:, self.live].ravel()
        return np.concatenate([W1[:, self.live].ravel(), W2[:, self.live].ravel()])

    def full(self, theta):
        dk = self.d * self.k
        W1 = np.zeros_like(self.W1)
        W1[:, self.live] = theta[:dk].reshape(self.d, self.k)
        if self.tied:
            return W1, W1
        W2 = np.zeros_like(self.W2)
        W2[:, self.live] = theta[dk:].reshape(self.d, self.k)
        return W1, W2

    def loss_grad(self, theta):
        W1, W2 = self.full(theta)
        loss, g1, g2 = self.objective.expected_loss_and_grad(W1, W2, self.X, self.sigma, self.lam)
        self.n_grad += 1
        if self.tied:
            return loss, (g1 + g2)[:, self.live].ravel()
        return loss, np.concatenate([g1[:, self.live].ravel(), g2[:, self.live].ravel()])


def _hvp_factory(reduced: _Reduced, theta, step_rel):
    scale = step_rel * max(float(np.linalg.norm(theta)), 1.0)
    counter = [0]

    def hvp(v):
        v = np.asarray(v, dtype=np.float64).ravel()
        norm = float(np.linalg.norm(v))
        if norm == 0.0:
            return np.zeros_like(v)
        h = scale / norm
        counter[0] += 1
        return (reduced.loss_grad(theta + h * v)[1] - reduced.loss_grad(theta - h * v)[1]) / (2.0 * h)

    return hvp, counter


def _given_hvp(reduced: _Reduced, product):
    """Hessian-vector products on the live coordinates from ``product`` (V ↦ HV when tied,
    (V1, V2) ↦ (H1, H2) otherwise), e.g. `numerics.newton.exact_hessp`."""
    counter = [0]

    def hvp(v):
        counter[0] += 1
        D1, D2 = reduced.full(np.asarray(v, dtype=np.float64).ravel())
        if reduced.tied:
            H = product(D1)
            return reduced.pack(H, H)
        return reduced.pack(*product(D1, D2))

    return hvp, counter


def hessian_matrix(W1, W2, X, sigma, lam, *, tied=None, step_rel=1e-5) -> np.ndarray:
    """Dense Hessian of eq. (6) by central differences of the exact gradient (small problems).

    Coordinates: ``W.ravel()`` when tied, else ``(W1.ravel(), W2.ravel())``; zero columns are
    not removed here. The result is symmetrised.
    """
    X = as_matrix("X", X, cols_name="n")
    W1, W2 = weights_pair(W1, W2, d=X.shape[0])
    tied = bool(np.array_equal(W1, W2)) if tied is None else bool(tied)
    live = np.ones(W1.shape[1], dtype=bool)
    reduced = _Reduced(W1, W2, X, nonnegative("sigma", sigma), nonnegative("lam", lam), tied, live)
    theta = reduced.pack(W1, W2)
    hvp, _ = _hvp_factory(reduced, theta, step_rel)
    H = np.column_stack([hvp(e) for e in np.eye(theta.size)])
    return 0.5 * (H + H.T)


def _zero_column_test(W1, W2, X, sigma, lam, tied, zero, rng, n_random=6, ascent_iter=25):
    """Estimate sup over directions a of the zero-column ratio (or gain when λ = 0).

    Returns (ratio_or_gain, best a, best b, n_gradient_evaluations).
    """
    obj = _objective()
    j0 = int(np.flatnonzero(zero)[0])
    d = W1.shape[0]
    evaluations = [0]

    def G(a):
        A1 = W1.copy()
        A2 = W2.copy()
        A1[:, j0] = a
        A2[:, j0] = 0.0
        evaluations[0] += 1
        return obj.expected_loss_and_grad(A1, A2, X, sigma, lam)[2][:, j0]

    def mixed(a, c, eps):
        """∇_a (cᵀG(a)) by a central difference in b = ±eps·c (exact up to O(eps²))."""
        out = []
        for sign in (1.0, -1.0):
            A1 = W1.copy()
            A2 = W2.copy()
            A1[:, j0] = a
            A2[:, j0] = sign * eps * c
            evaluations[0] += 1
            out.append(obj.expected_loss_and_grad(A1, A2, X, sigma, lam)[1][:, j0])
        return (out[0] - out[1]) / (2.0 * eps)

    denom = 2.0 * lam if lam > 0 else 1.0

    def score(a):
        a = a / np.linalg.norm(a)
        g = G(a)
        if tied:
            return -(a @ g) / denom, g
        return float(np.linalg.norm(g)) / denom, g

    def negative_score_and_grad(a):
        norm = float(np.linalg.norm(a))
        u = a / norm
        value, g = score(u)
        c = u if tied else g / max(float(np.linalg.norm(g)), 1e-300)
        eps = 1e-5
        directional = mixed(u, c, eps)   # ∇_u (cᵀG(u))
        if tied:
            grad_u = -(g + directional) / denom      # ∇(−uᵀG(u)) = −(G + Jᵀu)
        else:
            grad_u = directional / denom             # ∇‖G‖ = Jᵀ G/‖G‖
        grad_u -= (grad_u @ u) * u                   # scale invariance: tangent to the sphere
        return -value, -grad_u / norm

    live = ~zero
    live_units = [W1[:, j] / np.linalg.norm(W1[:, j]) for j in np.flatnonzero(live) if np.linalg.norm(W1[:, j]) > 0]
    starts = list(live_units)
    starts += [X[:, i] for i in range(min(X.shape[1], 64)) if np.linalg.norm(X[:, i]) > 0]
    for _ in range(n_random):
        starts.append(rng.standard_normal(d))
    starts += _half_active_starts(X, sigma, rng)

    def along_live(a):
        """Parallel to a live column: ratio 1 there by the splitting symmetry, no escape."""
        unit = a / np.linalg.norm(a)
        return any(abs(unit @ u) > 0.999 for u in live_units)

    scored = sorted(((score(a)[0], a) for a in starts), key=lambda item: -item[0])
    best_value, best_a = scored[0][0], scored[0][1] / np.linalg.norm(scored[0][1])
    # Ascend from the best start and from the best ones off the live columns: the live
    # columns score exactly 1 (splitting is free) and would otherwise crowd out the
    # half-active directions where a zero column escapes (`_half_active_starts`).
    ascents = [scored[0]] + [item for item in scored[1:] if not along_live(item[1])][:4]
    for value, a in ascents:
        out = scipy.optimize.minimize(negative_score_and_grad, a / np.linalg.norm(a), jac=True,
                                      method="L-BFGS-B", options=dict(maxiter=ascent_iter))
        if -out.fun > best_value:
            best_value, best_a = -out.fun, out.x / np.linalg.norm(out.x)
    g = G(best_a)
    if tied:
        best_b = best_a
    elif lam > 0:
        best_b = -g / (2.0 * lam)
    else:
        best_b = -g / max(float(np.linalg.norm(g)), 1e-300)
    return float(best_value), best_a, best_b, j0, evaluations[0]


def _splitting_ratio_error(W1, g1, g2, live, lam, tied) -> float:
    """Largest ``‖g_j‖/(2λ‖w1_j‖)`` over live columns: the zero-column ratio's offset from 1
    along live directions at a point that is critical only up to its gradient g."""
    columns = np.flatnonzero(live)
    if not columns.size:
        return 0.0
    grads = (g1 + g2) if tied else g2
    sizes = np.linalg.norm(W1[:, columns], axis=0)
    return float(np.max(np.linalg.norm(grads[:, columns], axis=0) / (2.0 * lam * np.maximum(sizes, 1e-300))))


def _half_active_starts(X, sigma, rng, count=8) -> list:
    """Directions on which a new neuron is half-active on the noise of the samples.

    A unit vector orthogonal to the data plus small components along the samples, so that
    its overlaps aᵀx_i are about σ (z ≈ 1): the regime where a zero column of W_mem can grow
    (`theory.memorization.saddle_decay`). One sample at a time, all together, and random
    mixtures; without an orthogonal direction (rank X = d), random unit vectors instead.
    """
    d, n = X.shape
    norms_sq = np.sum(X * X, axis=0)
    Q, singular, _ = np.linalg.svd(X, full_matrices=False)
    Q = Q[:, singular > 1e-12 * max(singular[0], 1e-300)] if singular.size else Q[:, :0]
    if Q.shape[1] >= d or sigma == 0:
        return [rng.standard_normal(d) for _ in range(count)]
    v = rng.standard_normal(d)
    v -= Q @ (Q.T @ v)
    v /= np.linalg.norm(v)
    safe = norms_sq > 0
    weights = [np.eye(n)[i] for i in range(min(n, count))] + [np.ones(n)]
    weights += [rng.uniform(-1.0, 2.0, n) for _ in range(count // 2)]
    starts = []
    for c in weights:
        overlap = np.where(safe, sigma * c / np.where(safe, norms_sq, 1.0), 0.0)
        starts.append(v + X @ overlap)
    return starts


def zero_column_bound(W1, W2, X, sigma, lam) -> float:
    """Rigorous upper bound of the zero-column ratio ``sup_a ‖G(a)‖/(2λ‖a‖)`` (∞ if λ = 0).

    ``‖G(a)‖ ≤ (2/n) Σ_i √ℓ_i √E(aᵀy_i)² ≤ (2/n) √(Σc) √(λ_max(X diag(c) Xᵀ) + σ²Σc)`` with
    ``c_i = √ℓ_i`` and ``ℓ_i`` sample i's expected squared error (Cauchy–Schwarz twice);
    for n > 256 the per-sample errors are replaced by their total (a looser bound).
    The tied ratio ``sup −aᵀG(a)/(2λ‖a‖²)`` obeys the same bound.
    """
    if lam <= 0:
        return float("inf")
    obj = _objective()
    n = X.shape[1]
    if n <= 256:
        errors = np.array([obj.expected_loss(W1, W2, X[:, [i]], sigma, 0.0) for i in range(n)])
        c = np.sqrt(np.maximum(errors, 0.0))
        top = float(np.linalg.eigvalsh((X * c) @ X.T)[-1]) if X.shape[0] <= 2000 else \
            float(scipy.sparse.linalg.svds(X * np.sqrt(c), k=1, return_singular_vectors=False)[0] ** 2)
        bound = (2.0 / n) * np.sqrt(c.sum()) * np.sqrt(top + sigma**2 * c.sum())
    else:
        data_loss = obj.expected_loss(W1, W2, X, sigma, 0.0)
        top = float(scipy.sparse.linalg.svds(X, k=1, return_singular_vectors=False)[0] ** 2)
        bound = 2.0 * np.sqrt(max(data_loss, 0.0)) * np.sqrt(top / n + sigma**2)
    return float(bound / (2.0 * lam))


# ----------------------------------------------------------------------------- certify


def certify(W1, W2, X, sigma, lam, *, tied=None, gtol=1e-6, n_eigs=2, rel_eig_tol=1e-6,
            eig_tol=None, zero_tol=ZERO_TOL, ratio_tol=1e-5, blocks="auto", dense_max=1200,
            hvp_step=HVP_STEP, lanczos_tol=1e-8, seed=0, check_zero_columns=True,
            reduce=True, hessp=None) -> CertifyReport:
    """Gradient, smallest Hessian eigenvalues modulo symmetries, and a verdict (module docstring).

    ``W1, W2`` (d, p); ``tied=None`` detects tied weights (``W1`` and ``W2`` equal), in
    which case derivatives are taken w.r.t. the single W. Columns with
    ``max(‖w1_j‖, ‖w2_j‖) ≤ zero_tol·max`` are set exactly to zero first (they are
    `zero_columns`). ``blocks``: ``"auto"`` (`activation_blocks`), a list of column-index
    arrays, or ``None`` to remove no rotations. ``n_eigs`` smallest eigenvalues are
    returned (2 by default: the verdict needs the smallest, the second shows the gap; each
    further, often clustered, eigenvalue costs Lanczos many more Hessian-vector products).
    Columns shorter than `FD_RESOLUTION` difference steps are zero columns too
    (`below_resolution`; the report's notes list them). ``reduce=True`` computes
    everything in the invariant subspace of `numerics.solvers.invariant_basis` (data
    span, the weights, one more direction) when it is smaller than d: eq. (6) is
    invariant under rotations fixing the data, so the Hessian splits into that subspace and
    ``I ⊗ K`` on the rest, K being seen by the extra direction — the eigenvalues (as a set)
    and the verdict are those of the full problem. ``hessp``: a factory
    ``(W1, W2, X, sigma, lam, tied) → product`` of exact Hessian-vector products (e.g.
    `numerics.newton.exact_hessp`) used instead of central differences of the gradient.

    >>> import numpy as np
    >>> X = np.array([[2.0, -1.0], [0.0, 1.7]])
    >>> certify(np.zeros((2, 1)), np.zeros((2, 1)), X, 0.1, 0.01).verdict   # W = 0
    'saddle'
    """
    X = as_matrix("X", X, cols_name="n")
    W1, W2 = weights_pair(W1, W2, d=X.shape[0])
    if tied is None:
        tied = bool(np.array_equal(W1, W2))
    if tied and not np.array_equal(W1, W2):
        raise ValueError("tied=True needs W1 == W2")
    d = X.shape[0]
    basis = invariant_basis(X, W1, None if tied else W2, extra=1) if reduce else None
    if basis is not None and basis.shape[1] >= d:
        basis = None
    if basis is not None:
        V1 = basis.T @ W1
        args = (V1, V1 if tied else basis.T @ W2, basis.T @ X)
    else:
        args = (W1, W2, X)
    report = _certify(*args, sigma, lam, tied=tied, gtol=gtol, n_eigs=n_eigs,
                      rel_eig_tol=rel_eig_tol, eig_tol=eig_tol, zero_tol=zero_tol,
                      ratio_tol=ratio_tol, blocks=blocks, dense_max=dense_max,
                      hvp_step=hvp_step, lanczos_tol=lanczos_tol, seed=seed,
                      check_zero_columns=check_zero_columns, hessp=hessp)
    if basis is not None:
        report.n_params = d * W1.shape[1] * (1 if tied else 2)
        report.notes.append(f"computed in a {basis.shape[1]}-dimensional invariant subspace "
                            f"(data span + weights + one complement direction; exact by the "
                            f"O(d) symmetry of eq. (6)), out of d = {d}")
        for name in ("descent", "lowest_mode"):
            if getattr(report, name) is not None:
                D1, D2 = getattr(report, name)
                setattr(report, name, (basis @ D1, basis @ D1 if tied else basis @ D2))
    return report


def below_resolution(W1, W2, tied, hvp_step=HVP_STEP):
    """Columns too short for the central-difference Hessian (``‖w_j‖ ≤ FD_RESOLUTION·h``).

    A neuron's terms in eq. (6) are positively homogeneous of degree 2 in ``w1_j`` (times
    ``w2_j``), so their fourth derivatives grow like ``‖w_j‖^{-2}`` and the central
    difference's relative error on that column is ``O((h/‖w_j‖)²)``: ``≤ 1e-4`` when the
    column is 100 steps long. Shorter columns (the slowly vanishing copies that the
    splitting symmetry of Cor. 3.2 leaves behind) are certified as zero columns instead.
    """
    size = float(np.sqrt(np.sum(W1 * W1) + (0.0 if tied else np.sum(W2 * W2))))
    step = hvp_step * max(size, 1.0)
    return column_sizes(W1, W2) <= FD_RESOLUTION * step


def _certify(W1, W2, X, sigma, lam, *, tied=None, gtol=1e-6, n_eigs=2, rel_eig_tol=1e-6,
            eig_tol=None, zero_tol=ZERO_TOL, ratio_tol=1e-5, blocks="auto", dense_max=1200,
            hvp_step=HVP_STEP, lanczos_tol=1e-8, seed=0, check_zero_columns=True,
            hessp=None) -> CertifyReport:
    started = time.perf_counter()
    X = as_matrix("X", X, cols_name="n")
    W1, W2 = weights_pair(W1, W2, d=X.shape[0])
    sigma = nonnegative("sigma", sigma, symbol="σ")
    lam = nonnegative("lam", lam, symbol="λ")
    n_eigs = positive_int("n_eigs", n_eigs)
    if tied is None:
        tied = bool(np.array_equal(W1, W2))
    if tied and not np.array_equal(W1, W2):
        raise ValueError("tied=True needs W1 == W2")
    rng = np.random.default_rng(seed)
    obj = _objective()
    d, p = W1.shape
    scale = loss_scale(X)
    notes = []

    zero = zero_columns(W1, W2, zero_tol)
    unresolved = below_resolution(W1, W2, tied, hvp_step) & ~zero
    if unresolved.any():
        notes.append(f"{int(unresolved.sum())} columns shorter than {FD_RESOLUTION:g} finite-difference "
                     f"steps (norms {np.array2string(column_sizes(W1, W2)[unresolved], precision=1)}) "
                     "treated as zero columns")
        zero |= unresolved
    W1 = np.where(zero[None, :], 0.0, W1)
    W2 = W1 if tied else np.where(zero[None, :], 0.0, W2)
    live = ~zero
    loss, g1, g2 = obj.expected_loss_and_grad(W1, W2, X, sigma, lam)
    grad = (g1 + g2) if tied else np.concatenate([g1.ravel(), g2.ravel()])
    grad_norm = float(np.linalg.norm(grad))
    rel = grad_norm / scale
    n_params = d * p * (1 if tied else 2)

    if blocks == "auto":
        block_list = activation_blocks(W1, X, live)
    elif blocks is None:
        block_list = [np.array([j]) for j in np.flatnonzero(live)]
    else:
        block_list = [np.asarray(b, dtype=int) for b in blocks]
        if any(zero[b].any() for b in block_list):
            raise ValueError("blocks must not contain zero columns")
    live_index = -np.ones(p, dtype=int)
    live_index[live] = np.arange(int(live.sum()))
    reduced_blocks = [live_index[b] for b in block_list]

    symmetries = []
    if zero.any():
        symmetries.append(f"{int(zero.sum())} zero columns (tested separately)")
    family = "general-linear" if (not tied and lam == 0.0) else "rotation"
    base = dict(loss=float(loss), grad_norm=grad_norm, rel_grad_norm=rel, n_params=n_params,
                zero_columns=np.flatnonzero(zero), blocks=block_list, notes=notes)
    if rel > gtol:
        return CertifyReport(verdict="not a critical point", eigenvalues=np.array([]),
                             lambda_max=float("nan"), eig_tol=float("nan"),
                             n_reduced=0, n_symmetry=0, symmetries=symmetries,
                             zero_column_ratio=float("nan"), zero_column_gain=float("nan"),
                             zero_column_bound=float("nan"), symmetry_curvature=float("nan"),
                             method="none", n_hvp=0, wall_time=time.perf_counter() - started, **base)

    # -- zero columns
    ratio = gain = bound = float("nan")
    zero_descent = None
    zero_evals = 0
    if zero.any() and check_zero_columns:
        value, a, b, j0, zero_evals = _zero_column_test(W1, W2, X, sigma, lam, tied, zero, rng)
        if lam > 0:
            ratio = value
            bound = zero_column_bound(W1, W2, X, sigma, lam)
            # Along a live column the ratio is 1 at an exact critical point (splitting is
            # free); at the given point it is off by ‖∂L/∂w_j‖/(2λ‖w1_j‖) (positive
            # homogeneity), which therefore widens the tolerance.
            ratio_tol = ratio_tol + _splitting_ratio_error(W1, g1, g2, live, lam, tied)
        else:
            gain = value
        unstable = (value > 1.0 + ratio_tol) if lam > 0 else (value > gtol * scale)
        if unstable:
            D1 = np.zeros_like(W1)
            D2 = np.zeros_like(W2)
            D1[:, j0] = a
            D2[:, j0] = b
            zero_descent = (D1, D1 if tied else D2)

    # -- Hessian on the live coordinates, modulo symmetries
    eigenvalues = np.array([])
    lambda_max = float("nan")
    n_sym = 0
    sym_curv = float("nan")
    method = "none"
    hvp_count = [0]
    lowest_mode = None
    if live.any():
        reduced = _Reduced(W1, W2, X, sigma, lam, tied, live)
        theta = reduced.pack(W1, W2)
        m = theta.size
        projector = SymmetryProjector(W1[:, live], W2[:, live], reduced_blocks, tied=tied,
                                      family=family)
        if projector.blocks:
            if family == "general-linear":
                symmetries.append("W1 → W1 M^{-T}, W2 → W2 M inside each activation block "
                                  "(includes column rescaling; λ = 0, untied)")
            else:
                sizes = sorted((len(b) for b in projector.blocks), reverse=True)
                symmetries.append(f"rotations inside activation blocks of sizes {sizes}")
        if hessp is None:
            hvp, hvp_count = _hvp_factory(reduced, theta, hvp_step)
        else:
            hvp, hvp_count = _given_hvp(reduced, hessp(W1, W2, X, sigma, lam, tied))
        if m <= dense_max:
            method = "dense"
            H = np.column_stack([hvp(e) for e in np.eye(m)])
            H = 0.5 * (H + H.T)
            P = np.column_stack([projector.complement(e) for e in np.eye(m)])
            P = 0.5 * (P + P.T)
            w, V = np.linalg.eigh(P)
            Q = V[:, w > 0.5]
            n_sym = m - Q.shape[1]
            Hc = Q.T @ H @ Q
            evals, evecs = np.linalg.eigh(Hc)
            eigenvalues = evals[:n_eigs]
            lambda_max = float(max(evals[-1], np.linalg.eigvalsh(H)[-1])) if evals.size else \
                float(np.linalg.eigvalsh(H)[-1])
            if evals.size:
                lowest_mode = Q @ evecs[:, 0]
            if n_sym:
                S = V[:, w <= 0.5]
                picks = S @ rng.standard_normal((S.shape[1], min(3, S.shape[1])))
                sym_curv = max(abs(float(v @ H @ v) / float(v @ v)) for v in picks.T)
        else:
            method = "lanczos"
            n_sym = projector.dimension
            compressed = scipy.sparse.linalg.LinearOperator(
                (m, m), dtype=np.float64,
                matvec=lambda v: projector.complement(hvp(projector.complement(v))))
            v0 = projector.complement(rng.standard_normal(m))
            top = scipy.sparse.linalg.eigsh(compressed, k=1, which="LA", tol=1e-3, v0=v0,
                                            return_eigenvectors=False)
            lambda_max = float(top[-1])
            shift = max(lambda_max, 1e-300)
            # Spectrum of P H P + c·I + 2c·(I − P): the kept eigenvalues λ + c lie in
            # [c + λ_min, 2c], the removed directions at 3c, out of the way. ARPACK stops when
            # ‖r‖ ≤ tol·|θ|; with θ ≈ c that bounds the absolute eigenvalue error by ≈ tol·c,
            # instead of tol times an eigenvalue near zero (which near-flat minima reach
            # only after thousands of Hessian-vector products).
            shifted = scipy.sparse.linalg.LinearOperator(
                (m, m), dtype=np.float64,
                matvec=lambda v: (projector.complement(hvp(projector.complement(v)))
                                  + shift * v + 2.0 * shift * projector.component(v)))
            k = min(n_eigs, m - 1)
            evals, evecs = scipy.sparse.linalg.eigsh(shifted, k=k, which="SA", tol=lanczos_tol,
                                                     v0=v0, ncv=min(m, max(2 * k + 1, 30)))
            evals = evals - shift
            order = np.argsort(evals)
            eigenvalues = evals[order]
            lowest_mode = evecs[:, order[0]]
            if n_sym:
                picks = [projector.component(rng.standard_normal(m)) for _ in range(3)]
                sym_curv = max(abs(float(v @ hvp(v)) / max(float(v @ v), 1e-300)) for v in picks)
        if np.isfinite(sym_curv) and lambda_max > 0:
            sym_curv /= lambda_max
        if n_sym and np.isfinite(sym_curv) and sym_curv > 1e-3:
            notes.append(f"removed symmetry directions have curvature up to {sym_curv:.2e}·λ_max: "
                         "they are not flat here (blocks may not be in the linear regime)")
        if lowest_mode is not None:
            D1, D2 = reduced.full(lowest_mode)
            lowest_mode = (D1, D2)

    scale_eig = max(abs(lambda_max), abs(eigenvalues[0]) if eigenvalues.size else 0.0, 1e-300) \
        if np.isfinite(lambda_max) else 1.0
    tol = float(eig_tol) if eig_tol is not None else rel_eig_tol * scale_eig
    min_eig = float(eigenvalues[0]) if eigenvalues.size else np.inf
    zero_ok = True
    zero_unstable = zero_descent is not None
    if zero.any() and check_zero_columns and lam > 0 and not zero_unstable:
        zero_ok = ratio <= 1.0 + ratio_tol
    if zero.any() and check_zero_columns and lam == 0 and not zero_unstable:
        zero_ok = False
        notes.append("λ = 0: zero columns have zero curvature in some directions (degenerate)")
    if zero.any() and not check_zero_columns:
        zero_ok = False

    descent = None
    decrease = step = 0.0
    if min_eig < -tol or zero_unstable:
        verdict = "saddle"
        candidates = []
        if zero_unstable:
            candidates.append(zero_descent)
        if min_eig < -tol and lowest_mode is not None:
            candidates.append(lowest_mode)
        descent, decrease, step = _confirm_descent(W1, W2, X, sigma, lam, tied, candidates, loss)
        if descent is None:
            notes.append("no loss decrease above rounding found along the descent direction at "
                         "the tried step sizes; the negative curvature is below what the loss "
                         "resolves")
    elif min_eig > tol and zero_ok:
        verdict = "strict local minimum"
    else:
        verdict = "degenerate minimum"
    if zero.any() and lam > 0 and np.isfinite(ratio) and abs(ratio - 1.0) <= ratio_tol:
        notes.append("zero-column ratio = 1: splitting a live column is a flat direction "
                     "(the non-unique sparse solutions of Cor. 3.2)")
    return CertifyReport(verdict=verdict, eigenvalues=np.asarray(eigenvalues), lambda_max=lambda_max,
                         eig_tol=tol, n_reduced=int(live.sum()) * d * (1 if tied else 2),
                         n_symmetry=int(n_sym), symmetries=symmetries, zero_column_ratio=ratio,
                         zero_column_gain=gain, zero_column_bound=bound, symmetry_curvature=sym_curv,
                         method=method, n_hvp=int(hvp_count[0]) + zero_evals, zero_column_tol=ratio_tol,
                         wall_time=time.perf_counter() - started, descent=descent,
                         descent_decrease=decrease, descent_step=step, lowest_mode=lowest_mode, **base)


def _confirm_descent(W1, W2, X, sigma, lam, tied, candidates, loss):
    """Largest loss decrease along ±t·direction over a geometric range of t.

    Returns ``(direction, decrease, t)``; decreases below the loss's rounding floor
    ``(n + d)·ε·|L|`` (the bound for summing n + d non-negative terms in floating point)
    do not count, so ``(None, 0.0, 0.0)`` means no decrease was resolved.
    """
    obj = _objective()
    floor = (X.shape[1] + X.shape[0]) * np.finfo(float).eps * abs(loss)
    best = (None, floor, 0.0)
    size = max(float(np.linalg.norm(W1)), float(np.linalg.norm(W2)), 1.0)
    for D1, D2 in candidates:
        norm = float(np.sqrt(np.sum(D1 * D1) + (0.0 if tied else np.sum(D2 * D2))))
        if norm == 0:
            continue
        for t in size * np.logspace(-6, -1, 11) / norm:
            for sign in (1.0, -1.0):
                A1 = W1 + sign * t * D1
                A2 = A1 if tied else W2 + sign * t * D2
                drop = loss - obj.expected_loss(A1, A2, X, sigma, lam)
                if drop > best[1]:
                    best = ((sign * D1, sign * D2), float(drop), float(t))
    return best if best[0] is not None else (None, 0.0, 0.0)
