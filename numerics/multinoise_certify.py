"""Second-order certificates for critical points of the exact multi-noise loss.

`certify_multinoise` evaluates, at given parameters, the exact gradient of
``L(θ) = E_u D(θ, e^u) + λ‖θ‖²`` (`numerics.multinoise_objective`) and the smallest eigenvalues
of its Hessian — central differences of the exact gradient along unit vectors, with
step ``h = 1e-5·max(‖θ‖, 1)`` as in `numerics.certify` — after setting aside what is not
twice differentiable or exactly flat:

* **zero encoder columns** (``w_j = 0``, or shorter than `numerics.certify.FD_RESOLUTION`
  steps): the loss is positively homogeneous of degree 2 in ``w_j`` there, not twice
  differentiable. Adding ``t·a`` changes L by ``t²[λ‖a‖² + φ_j(a)] + O(t⁴)`` with
  ``φ_j(a) = E_u g_j(u) (aᵀΓ_u(a) + 2s E[(aᵀy)_+²])``, ``Γ_u(a) = (2/n)Σ_i E[(f(y_i) − x_i)(aᵀy_i)_+]``
  the decoder-column gradient of eq. (6) at ``(w1_j, w2_j) = (a, 0)`` (derived here). Stable iff
  ``ratio = sup_a −φ_j(a)/(λ‖a‖²) ≤ 1``; the sup is estimated by ascent from many starts
  (a lower bound). Changing the gain network's row j at the same time is third order.
* **zero gain units** (``A1_k = b1_k = 0``, ``A2[:, k] = 0``): adding ``t(a, b, c)`` changes L by
  ``t²[λ(a² + b² + ‖c‖²) + cᵀG(a, b)]``, ``G(a, b) = E_u[∂D/∂log g(u) · (a u + b)_+]``;
  minimising over c, stable iff ``ratio = max_θ ‖G(cos θ, sin θ)‖/(2λ) ≤ 1`` — a scan over one
  angle (∂D/∂log g is interpolated on each smooth piece through the quadrature nodes).
* **symmetries**. For every λ: orthogonal mixing ``(A1_S, b1_S, A2[:, S]) → (·R)`` of gain units S
  that switch together over the σ range (all on, or the same kink and orientation) — the gains
  and ``‖θ‖²`` are unchanged. Only when λ = 0 (weight decay breaks each of them): per live
  column, ``w_j → c w_j`` with ``b2_j → b2_j − 2 log c`` (``g_j → g_j/c²``); per switching gain
  unit, ReLU homogeneity ``(A1_k, b1_k, A2[:, k]) → (c A1_k, c b1_k, A2[:, k]/c)``; for the units
  that are on over the whole σ range, every direction that keeps the affine map
  ``u ↦ A2_S(A1_S u + b1_S) + b2`` (bias shifts among them); units off over the whole range
  (dead): their incoming and outgoing weights; the gain rows of zero columns.

Like `numerics.certify`, everything is computed in the invariant subspace of the data and the
encoder plus one complement direction (`numerics.geometry.invariant_basis`, ``extra=1``): the
loss is invariant under rotations fixing the data, so the Hessian splits into that subspace
and identical copies of one block on the rest, which the extra direction sees.

Verdict (``eig_tol = rel_eig_tol·λ_max``): ``"not a critical point"`` if ``‖∇L‖/L0 > gtol``;
``"saddle"`` if an eigenvalue is ``< −eig_tol`` or a zero-column or zero-unit ratio exceeds
``1 + ratio_tol``; ``"strict local minimum"`` if the smallest eigenvalue is ``> eig_tol`` and
the ratios are below ``1 − ratio_tol`` (strict modulo the removed symmetries, listed in the
report); otherwise ``"degenerate minimum"``.

>>> import numpy as np
>>> from numerics.multinoise_training import train_multinoise
>>> X = np.array([[2.0, -1.0], [0.0, 1.7], [0.3, 0.2]])
>>> fit = train_multinoise(X, 2, lam=0.05, seed=0)
>>> certify_multinoise(fit.model, X, lam=0.05).verdict
'strict local minimum'
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import scipy.linalg
import scipy.optimize
import scipy.sparse.linalg
from numpy.polynomial import legendre
from scipy.special import roots_legendre

from numerics.gaussian import relu_second_moment
from numerics.geometry import HVP_STEP, invariant_basis, loss_scale
from numerics.multinoise import MultiNoiseDAE
from numerics.multinoise_objective import (SIGMA_RANGE, _checked, adaptive_rule, multinoise_loss,
                                           multinoise_loss_and_grad, noise_level_terms)
from numerics.multinoise_symmetries import Layout, symmetry_tangents, zero_sets
from numerics.objective import expected_loss_and_grad
from numerics.validation import positive_int

VERDICTS = ("strict local minimum", "degenerate minimum", "saddle", "not a critical point")


@dataclass
class MultiNoiseCertificate:
    """What `certify_multinoise` found (module docstring).

    ``eigenvalues`` the smallest Hessian eigenvalues on the kept coordinates modulo the
    removed symmetries, ascending; ``lambda_max`` the largest; ``zero_columns``,
    ``zero_units`` indices set aside and tested by ``zero_column_ratio``,
    ``zero_unit_ratio`` (nan when there are none; with λ = 0 they are the largest
    decrease rates, compared with 0); ``symmetries`` what was removed and
    ``symmetry_curvature`` the largest |Rayleigh quotient|/λ_max along removed directions;
    ``descent`` a direction (a `MultiNoiseDAE`) along which the loss decreases, for a saddle.
    """
    verdict: str
    loss: float
    grad_norm: float
    rel_grad_norm: float
    eigenvalues: np.ndarray
    lambda_max: float
    eig_tol: float
    n_params: int
    n_kept: int
    n_symmetry: int
    zero_columns: np.ndarray
    zero_units: np.ndarray
    zero_column_ratio: float
    zero_unit_ratio: float
    symmetries: list
    symmetry_curvature: float
    method: str
    n_gradients: int
    quadrature_error: float
    wall_time: float
    descent: MultiNoiseDAE | None = None
    notes: list = field(default_factory=list)

    @property
    def min_eigenvalue(self) -> float:
        return float(self.eigenvalues[0]) if self.eigenvalues.size else float("nan")

    @property
    def is_minimum(self) -> bool:
        return self.verdict in VERDICTS[:2]

    def summary(self) -> str:
        return (f"{self.verdict}: loss {self.loss:.10g}, |grad|/L0 {self.rel_grad_norm:.1e}, min eig "
                f"{self.min_eigenvalue:.3e} (tol {self.eig_tol:.1e}, max {self.lambda_max:.3e}), "
                f"{len(self.zero_columns)} zero columns (ratio {self.zero_column_ratio:.4f}), "
                f"{len(self.zero_units)} zero gain units (ratio {self.zero_unit_ratio:.4f}), "
                f"{self.n_symmetry} symmetry directions removed")


# ----------------------------------------------------------------------------- zero columns and units


class _ZeroColumnTest:
    """``φ_j(a)`` and an approximate gradient, for a zero column j (module docstring)."""

    def __init__(self, model, C, rule, sigma_range, noise_dim, j):
        self.model, self.C, self.rule, self.j = model, C, rule, j
        self.sigma_range, self.noise_dim = sigma_range, noise_dim
        self.sigmas = np.exp(rule.nodes)
        self.gains = model.gains(self.sigmas)
        self.evaluations = 0

    def phi(self, a) -> float:
        total = 0.0
        W1 = self.model.W.copy()
        W1[:, self.j] = a
        for weight, sigma, g in zip(self.rule.weights, self.sigmas, self.gains.T):
            W2 = self.model.W * g
            W2[:, self.j] = 0.0
            _, _, gW2 = expected_loss_and_grad(W1, W2, self.C, sigma, 0.0)
            energy = float(np.mean(relu_second_moment(a @ self.C, sigma * np.linalg.norm(a))))
            total += weight * g[self.j] * (a @ gW2[:, self.j] + 2.0 * self.model.s * energy)
        self.evaluations += 1
        return float(total)

    def grad_phi(self, a, t=1e-4) -> np.ndarray:
        """``(1/t)∇_{w_j} D(t·a)``: ``∇φ_j(a)`` up to a relative O(t²) (degree-2 homogeneity)."""
        probe = self.model.copy()
        probe.W[:, self.j] = t * a
        _, grad = multinoise_loss_and_grad(probe, self.C, *self.sigma_range, 0.0, rule=self.rule,
                                           noise_dim=self.noise_dim)
        self.evaluations += 1
        return grad.W[:, self.j] / t


def _zero_column_ratio(test: _ZeroColumnTest, lam, candidates, rng, ascent_iter=25):
    """``sup_a −φ(a)/(λ‖a‖²)`` (λ = 0: ``sup −φ(a)/‖a‖²``) from many starts; (value, best a)."""
    denominator = lam if lam > 0 else 1.0

    def score(a):
        a = a / np.linalg.norm(a)
        return -test.phi(a) / denominator

    def negative_and_grad(a):
        norm2 = float(a @ a)
        phi = test.phi(a / math.sqrt(norm2)) * norm2
        grad = test.grad_phi(a / math.sqrt(norm2)) * math.sqrt(norm2)
        value = -phi / (denominator * norm2)
        return -value, (grad * norm2 - 2.0 * phi * a) / (denominator * norm2 * norm2)

    scored = sorted(((score(a), a / np.linalg.norm(a)) for a in candidates if np.linalg.norm(a) > 0),
                    key=lambda item: -item[0])
    best, best_a = scored[0]
    for _, a in scored[:3]:
        out = scipy.optimize.minimize(negative_and_grad, a, jac=True, method="L-BFGS-B",
                                      options=dict(maxiter=ascent_iter))
        value = score(out.x)
        if value > best:
            best, best_a = value, out.x / np.linalg.norm(out.x)
    return float(best), best_a


def _log_gain_gradients(model, C, rule, noise_dim):
    """``∂D/∂log g`` (p, N) at the rule's nodes (without the quadrature weights)."""
    sigmas = np.exp(rule.nodes)
    gains = model.gains(sigmas)
    return np.column_stack([noise_level_terms(model.W, gains[:, k], model.s, C, sigma, noise_dim=noise_dim).grad_g
                            * gains[:, k] for k, sigma in enumerate(sigmas)])


def _zero_unit_ratio(model, C, rule, noise_dim, lam, n_angles=720):
    """``max_θ ‖E_u[∂D/∂log g(u)·(u cos θ + sin θ)_+]‖/(2λ)`` (λ = 0: the max norm itself)."""
    values = _log_gain_gradients(model, C, rule, noise_dim)
    u_min, u_max = float(rule.breakpoints[0]), float(rule.breakpoints[-1])
    pieces, start = [], 0
    for left, right, count in zip(rule.breakpoints[:-1], rule.breakpoints[1:], rule.counts):
        x = 2.0 * (rule.nodes[start:start + count] - left) / (right - left) - 1.0
        pieces.append((left, right, legendre.legfit(x, values[:, start:start + count].T, count - 1)))
        start += count
    x64, w64 = roots_legendre(64)

    def G(theta):
        a, b = math.cos(theta), math.sin(theta)
        total = np.zeros(values.shape[0])
        for left, right, coefficients in pieces:
            cuts = [left, right]
            if a != 0.0 and left < -b / a < right:
                cuts = [left, -b / a, right]
            for lo, hi in zip(cuts[:-1], cuts[1:]):
                u = lo + 0.5 * (hi - lo) * (x64 + 1.0)
                basis = legendre.legval(2.0 * (u - left) / (right - left) - 1.0, coefficients)   # (p, 64)
                total += basis @ (w64 * np.maximum(a * u + b, 0.0)) * 0.5 * (hi - lo)
        return total / (u_max - u_min)

    angles = np.linspace(0.0, 2.0 * math.pi, n_angles, endpoint=False)
    norms = np.array([np.linalg.norm(G(theta)) for theta in angles])
    best = int(np.argmax(norms))
    step = 2.0 * math.pi / n_angles
    out = scipy.optimize.minimize_scalar(lambda theta: -np.linalg.norm(G(theta)), method="bounded",
                                         bounds=(angles[best] - step, angles[best] + step))
    top = max(float(norms[best]), -float(out.fun))
    return top / (2.0 * lam) if lam > 0 else top


# ----------------------------------------------------------------------------- certify


def _reduced(model, X, reduce):
    """The model and data in the invariant subspace (data, encoder, one complement direction)."""
    basis = invariant_basis(X, model.W, extra=1) if reduce else None
    if basis is None or basis.shape[1] >= model.d:
        return model.copy(), X, None
    return MultiNoiseDAE(basis.T @ model.W, model.s, model.A1, model.b1, model.A2, model.b2), basis.T @ X, basis


def _symmetry_basis(work, layout, kept, zero_columns, zero_units, sigma_range, lam):
    """Orthonormal basis (kept coordinates) of the symmetry directions, and their description."""
    symmetries = []
    if zero_columns.any():
        symmetries.append(f"{int(zero_columns.sum())} zero encoder columns (tested separately)")
    if zero_units.any():
        symmetries.append(f"{int(zero_units.sum())} zero gain units (tested separately)")
    tangents, labels = symmetry_tangents(work, layout, zero_columns, zero_units,
                                         (math.log(sigma_range[0]), math.log(sigma_range[1])), lam)
    tangents = tangents[:, kept]
    if not tangents.shape[0]:
        return np.zeros((int(kept.sum()), 0)), symmetries + labels
    U, singular, _ = np.linalg.svd(tangents.T, full_matrices=False)
    return U[:, singular > 1e-10 * singular.max()], symmetries + labels


def _spectrum(hvp, m, Q, n_eigs, dense_max, lanczos_tol, rng):
    """Smallest eigenvalues of the Hessian on the complement of span(Q), λ_max, the lowest mode,
    the method, and the largest |Rayleigh quotient| along removed directions."""
    complement = lambda v: v - Q @ (Q.T @ v)              # noqa: E731
    if m <= dense_max:
        H = np.column_stack([hvp(e) for e in np.eye(m)])
        H = 0.5 * (H + H.T)
        B = scipy.linalg.null_space(Q.T) if Q.shape[1] else np.eye(m)
        evals, evecs = np.linalg.eigh(B.T @ H @ B)
        curvature = max((abs(float(q @ H @ q)) for q in Q.T), default=float("nan"))
        return evals[:n_eigs], float(evals[-1]), B @ evecs[:, 0], "dense", curvature
    operator = scipy.sparse.linalg.LinearOperator((m, m), dtype=np.float64,
                                                  matvec=lambda v: complement(hvp(complement(v))))
    v0 = complement(rng.standard_normal(m))
    lambda_max = float(scipy.sparse.linalg.eigsh(operator, k=1, which="LA", tol=1e-3, v0=v0,
                                                 return_eigenvectors=False)[-1])
    shift = max(lambda_max, 1e-300)
    # Removed directions sit at 3·shift, the kept spectrum in [shift + λ_min, 2·shift] (numerics.certify).
    shifted = scipy.sparse.linalg.LinearOperator(
        (m, m), dtype=np.float64,
        matvec=lambda v: complement(hvp(complement(v))) + shift * v + 2.0 * shift * (Q @ (Q.T @ v)))
    count = min(n_eigs, m - 1)
    evals, evecs = scipy.sparse.linalg.eigsh(shifted, k=count, which="SA", tol=lanczos_tol, v0=v0,
                                             ncv=min(m, max(2 * count + 1, 30)))
    order = np.argsort(evals)
    curvature = max((abs(float(q @ hvp(q))) for q in Q.T[:3]), default=float("nan"))
    return evals[order] - shift, lambda_max, evecs[:, order[0]], "lanczos", curvature


def _not_critical(base: dict, n_gradients: int, seconds: float) -> MultiNoiseCertificate:
    """The certificate of a point whose gradient is above ``gtol``: no spectrum is computed."""
    return MultiNoiseCertificate(verdict=VERDICTS[3], eigenvalues=np.array([]), lambda_max=float("nan"),
                                 eig_tol=float("nan"), n_symmetry=0, zero_column_ratio=float("nan"),
                                 zero_unit_ratio=float("nan"), symmetries=[], symmetry_curvature=float("nan"),
                                 method="none", n_gradients=n_gradients, wall_time=seconds, **base)


def _decide(lowest: float, eig_tol: float, ratios: list, threshold: float, tolerance: float) -> str:
    """Saddle if a curvature or a zero-set ratio says descent, strict minimum if all say ascent, else degenerate."""
    if lowest < -eig_tol or any(r > threshold + tolerance for r in ratios):
        return VERDICTS[2]
    if lowest > eig_tol and all(r < threshold - tolerance for r in ratios):
        return VERDICTS[0]
    return VERDICTS[1]


def certify_multinoise(model, X, sigma_min=SIGMA_RANGE[0], sigma_max=SIGMA_RANGE[1], lam=0.0, *, gtol=1e-6,
                       n_eigs=3, rel_eig_tol=1e-6, zero_tol=1e-6, ratio_tol=1e-4, dense_max=1500,
                       hvp_step=HVP_STEP, rtol=1e-12, lanczos_tol=1e-8, seed=0,
                       reduce=True) -> MultiNoiseCertificate:
    """Gradient, smallest Hessian eigenvalues modulo symmetries, zero-column/unit tests, verdict.

    ``model`` a `MultiNoiseDAE`, ``X`` (d, n), ``lam`` the decay on ``‖θ‖²``. Parameters
    within ``zero_tol`` (relative) of zero columns or units are set to zero first. Up to
    ``dense_max`` kept coordinates the Hessian is formed densely; beyond, Lanczos
    (`scipy.sparse.linalg.eigsh`) on the shifted, projected operator as in `numerics.certify`.
    """
    started = time.perf_counter()
    X, sigma_min, sigma_max, lam = _checked(model, X, sigma_min, sigma_max, lam)
    n_eigs = positive_int("n_eigs", n_eigs)
    rng = np.random.default_rng(seed)
    d, p, sigma_range = model.d, model.p, (sigma_min, sigma_max)
    work, C, basis = _reduced(model, X, reduce)
    notes = [] if basis is None else [f"computed in a {basis.shape[1]}-dimensional invariant subspace (data, "
                                      f"encoder, one complement direction) of d = {d}"]
    k = work.W.shape[0]
    step = hvp_step * max(float(np.linalg.norm(work.pack())), 1.0)
    zero_columns, zero_units = zero_sets(work, zero_tol, step)
    work.W[:, zero_columns] = 0.0
    work.A1[zero_units], work.b1[zero_units], work.A2[:, zero_units] = 0.0, 0.0, 0.0
    rule = adaptive_rule(work, C, *sigma_range, rtol=rtol, noise_dim=d)
    n_gradients = [0]

    def gradient(theta):
        n_gradients[0] += 1
        return multinoise_loss_and_grad(MultiNoiseDAE.unpack(theta, k, p), C, *sigma_range, lam, rule=rule,
                                        noise_dim=d)[1].pack()

    theta = work.pack()
    loss = multinoise_loss(work, C, *sigma_range, lam, rule=rule, noise_dim=d)
    grad_norm = float(np.linalg.norm(gradient(theta)))
    rel = grad_norm / loss_scale(X)
    layout = Layout(k, p)
    kept = np.ones(layout.size, dtype=bool)
    kept[np.concatenate([layout.W[:, zero_columns].ravel(), layout.A1[zero_units], layout.b1[zero_units],
                         layout.A2[:, zero_units].ravel()])] = False
    base = dict(loss=float(loss), grad_norm=grad_norm, rel_grad_norm=rel, n_params=model.size,
                n_kept=int(kept.sum()), zero_columns=np.flatnonzero(zero_columns),
                zero_units=np.flatnonzero(zero_units), quadrature_error=rule.relative_error, notes=notes)
    if rel > gtol:
        return _not_critical(base, n_gradients[0], time.perf_counter() - started)
    Q, symmetries = _symmetry_basis(work, layout, kept, zero_columns, zero_units, sigma_range, lam)

    def hvp(v):
        full = np.zeros(layout.size)
        full[kept] = v
        norm = float(np.linalg.norm(full))
        if norm == 0.0:
            return np.zeros_like(v)
        h = step / norm
        return ((gradient(theta + h * full) - gradient(theta - h * full)) / (2.0 * h))[kept]

    eigenvalues, lambda_max, lowest, method, curvature = _spectrum(hvp, int(kept.sum()), Q, n_eigs, dense_max,
                                                                   lanczos_tol, rng)
    curvature = curvature / lambda_max if np.isfinite(curvature) and lambda_max > 0 else curvature
    eig_tol = rel_eig_tol * max(abs(lambda_max), abs(float(eigenvalues[0])), 1e-300)
    column_ratio, column_descent = (_test_zero_columns(work, C, rule, sigma_range, d, lam, zero_columns, rng)
                                    if zero_columns.any() else (float("nan"), None))
    unit_ratio = _zero_unit_ratio(work, C, rule, d, lam) if zero_units.any() else float("nan")
    threshold, tolerance = (1.0, ratio_tol) if lam > 0 else (0.0, ratio_tol * loss_scale(X))
    ratios = [r for r in (column_ratio, unit_ratio) if np.isfinite(r)]
    verdict = _decide(float(eigenvalues[0]), eig_tol, ratios, threshold, tolerance)
    descent = None
    if verdict == VERDICTS[2] and float(eigenvalues[0]) < -eig_tol:
        full = np.zeros(layout.size)
        full[kept] = lowest
        descent = MultiNoiseDAE.unpack(full, k, p)
    elif verdict == VERDICTS[2]:
        descent = column_descent
    if descent is not None:
        if basis is not None:
            descent = MultiNoiseDAE(basis @ descent.W, descent.s, descent.A1, descent.b1, descent.A2, descent.b2)
        notes.append(f"largest loss decrease along the descent direction: "
                     f"{_largest_drop(model, descent, X, sigma_range, lam, rtol):.3e}")
    return MultiNoiseCertificate(verdict=verdict, eigenvalues=np.asarray(eigenvalues), lambda_max=lambda_max,
                                 eig_tol=eig_tol, n_symmetry=int(Q.shape[1]), zero_column_ratio=column_ratio,
                                 zero_unit_ratio=unit_ratio, symmetries=symmetries, symmetry_curvature=curvature,
                                 method=method, n_gradients=n_gradients[0], wall_time=time.perf_counter() - started,
                                 descent=descent, **base)


def _largest_drop(model, descent, X, sigma_range, lam, rtol) -> float:
    """Largest decrease of the loss along ``t·descent`` over t ∈ 10^[−5, −1]·max(‖θ‖, 1)."""
    here = multinoise_loss(model, X, *sigma_range, lam, rtol=rtol)
    return max(here - multinoise_loss(MultiNoiseDAE.unpack(model.pack() + t * descent.pack(), model.d, model.p), X,
                                      *sigma_range, lam, rtol=rtol)
               for t in np.logspace(-5, -1, 9) * max(float(np.linalg.norm(model.pack())), 1.0))


def _test_zero_columns(work, C, rule, sigma_range, noise_dim, lam, zero_columns, rng):
    """Largest zero-column ratio over the distinct gain functions of the zero columns."""
    live = ~zero_columns
    candidates = [work.W[:, j] for j in np.flatnonzero(live)] + [C[:, i] for i in range(min(C.shape[1], 32))]
    candidates += [rng.standard_normal(work.W.shape[0]) for _ in range(6)]
    rows = np.column_stack([work.A2, work.b2])
    best, best_direction = -np.inf, None
    seen: list = []
    for j in np.flatnonzero(zero_columns):
        if any(np.allclose(rows[j], rows[i], rtol=0.0, atol=1e-12) for i in seen):
            continue
        seen.append(j)
        test = _ZeroColumnTest(work, C, rule, sigma_range, noise_dim, j)
        value, a = _zero_column_ratio(test, lam, candidates, rng)
        if value > best:
            direction = MultiNoiseDAE.zeros_like(work)
            direction.W[:, j] = a
            best, best_direction = value, direction
    return float(best), best_direction
