"""Training the multi-noise ReLU DAE on its exact loss: L-BFGS on `numerics.multinoise_objective`.

`train_multinoise` minimises ``E_u D(θ, e^u) + λ‖θ‖²`` with SciPy's L-BFGS-B in *stages*: each
stage fixes a quadrature rule built by `adaptive_rule` at its starting point, so that within a
stage the objective and its gradient are one smooth deterministic function (the rule's nodes
would otherwise move with the gains' kinks). A stage ends when L-BFGS stops or the relative
gradient norm ``‖∇L‖/L0`` (``L0 = (1/n)Σ‖x_i‖²``, the loss of the zero network) reaches ``gtol``;
the point is then re-checked with a fresh rule at the same tolerance, and a new stage (fresh
rule, fresh L-BFGS memory) starts from the lowest point while each stage at least halves the
gradient norm. L-BFGS stalls where the loss's rounding hides further decrease; a trust-region
Newton polish (`scipy.optimize.minimize(method="trust-krylov")`, Hessian-vector products by
central differences of the exact gradient, as `numerics.solvers.train`) then takes the
gradient below ``gtol``. The result carries the quadrature error estimate of the last rule.

Like `numerics.solvers.train` it works in the invariant basis of the data and the initial
encoder (`numerics.solvers.invariant_basis`): the loss is invariant under rotations that fix
the data, so the iterates stay in that span; only the skip's ``s²σ²d`` needs the full d,
which the objective's ``noise_dim`` supplies. An optional warm-up takes Monte-Carlo protocol
steps (`numerics.multinoise_protocol`) first.

>>> import numpy as np
>>> X = np.random.default_rng(0).normal(size=(6, 3))
>>> fit = train_multinoise(X, 2, lam=0.05, seed=0, gtol=1e-6)
>>> fit.converged, fit.rel_grad_norm <= 1e-6, fit.model.W.shape
(True, True, (6, 2))
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import scipy.optimize

from numerics.certify import HVP_STEP
from numerics.checkpoint import fingerprint, load_checkpoint, progress_bar, save_checkpoint, single_blas_thread
from numerics.multinoise import MultiNoiseDAE
from numerics.multinoise_objective import (DEFAULT_RTOL, SIGMA_RANGE, _sigma_range, adaptive_rule,
                                           multinoise_loss_and_grad)
from numerics.solvers import invariant_basis, loss_scale
from numerics.validation import as_matrix, nonnegative, positive_int

LOG_GAIN_LIMIT = 200.0   # |log g| beyond this (g ≈ 1e87) is a runaway trial step, not a model


@dataclass
class MultiNoiseTrainResult:
    """Outcome of `train_multinoise`.

    ``model`` the final parameters (full coordinates); ``loss`` the exact multi-noise loss;
    ``rel_grad_norm = ‖∇L‖/L0``; ``converged``: ``rel_grad_norm ≤ gtol`` under a rule built at
    the final point; ``quadrature_error`` that rule's relative error estimate and ``n_nodes``
    its size; ``history`` rows (evaluations, seconds, loss, relative gradient norm) from the
    exact optimisation's start, one per L-BFGS iteration; ``stages`` what ran.
    """
    model: MultiNoiseDAE
    loss: float
    grad_norm: float
    rel_grad_norm: float
    converged: bool
    n_iter: int
    n_eval: int
    wall_time: float
    message: str
    lam: float
    sigma_min: float
    sigma_max: float
    gtol: float
    quadrature_error: float
    n_nodes: int
    stages: list = field(default_factory=list)
    history: list = field(default_factory=list)

    def summary(self) -> dict:
        """Scalars only (JSON-ready)."""
        return {key: getattr(self, key) for key in (
            "loss", "grad_norm", "rel_grad_norm", "converged", "n_iter", "n_eval", "wall_time", "message", "lam",
            "sigma_min", "sigma_max", "gtol", "quadrature_error", "n_nodes", "stages")}


class _Subspace:
    """The exact change of coordinates W = B V (B orthonormal, (d, k)); other parameters unchanged."""

    def __init__(self, X, W, reduce=True):
        self.d = X.shape[0]
        basis = invariant_basis(X, W) if reduce else None
        self.basis = basis if basis is not None and basis.shape[1] < self.d else None

    @property
    def dim(self) -> int:
        return self.d if self.basis is None else self.basis.shape[1]

    def inward(self, model: MultiNoiseDAE) -> MultiNoiseDAE:
        if self.basis is None:
            return model.copy()
        return MultiNoiseDAE(self.basis.T @ model.W, model.s, model.A1, model.b1, model.A2, model.b2)

    def outward(self, model: MultiNoiseDAE) -> MultiNoiseDAE:
        if self.basis is None:
            return model.copy()
        return MultiNoiseDAE(self.basis @ model.W, model.s, model.A1, model.b1, model.A2, model.b2)

    def data(self, X):
        return X if self.basis is None else self.basis.T @ X


class _StageObjective:
    """Loss and packed gradient under one fixed rule, with counters and the best points seen."""

    def __init__(self, C, shape, sigma_range, lam, noise_dim, scale):
        self.C, self.shape, self.sigma_range, self.lam = C, shape, sigma_range, lam
        self.noise_dim, self.scale = noise_dim, scale
        self.rule = None
        self.evaluations = 0
        self.last = None
        self.lowest = None          # (theta, loss, rel): where an unconverged stage continues
        self.best = None            # smallest relative gradient norm: the convergence test

    def __call__(self, theta):
        if self.last is not None and np.array_equal(theta, self.last[0]):
            return self.last[1], self.last[2]
        model = MultiNoiseDAE.unpack(theta, *self.shape)
        log_gains = model.gain_layers(self.rule.placed(model).nodes)[2]
        if np.max(np.abs(log_gains)) > LOG_GAIN_LIMIT:
            # A line-search trial step far out: L-BFGS-B backtracks from an infinite value.
            return np.inf, np.zeros_like(theta)
        loss, grad = multinoise_loss_and_grad(model, self.C, *self.sigma_range, self.lam, rule=self.rule,
                                              noise_dim=self.noise_dim)
        packed = grad.pack()
        self.evaluations += 1
        self.last = (theta.copy(), float(loss), packed)
        rel = float(np.linalg.norm(packed)) / self.scale
        if self.lowest is None or loss < self.lowest[1]:
            self.lowest = (self.last[0], float(loss), rel)
        if self.best is None or rel < self.best[2]:
            self.best = (self.last[0], float(loss), rel)
        return float(loss), packed

    def new_rule(self, theta, rtol):
        model = MultiNoiseDAE.unpack(theta, *self.shape)
        self.rule = adaptive_rule(model, self.C, *self.sigma_range, rtol=rtol, noise_dim=self.noise_dim)
        self.last = self.lowest = self.best = None
        return self(theta)


def _initial_model(init, d, p, seed) -> MultiNoiseDAE:
    if init is None:
        return MultiNoiseDAE.initial(d, p, seed=seed)
    if not isinstance(init, MultiNoiseDAE) or init.W.shape != (d, p):
        raise ValueError(f"init must be None or a MultiNoiseDAE with W of shape ({d}, {p})")
    return init.copy()


def train_multinoise(X, p, lam, *, sigma_min=SIGMA_RANGE[0], sigma_max=SIGMA_RANGE[1], seed=0, init=None,
                     gtol=1e-8, rtol=DEFAULT_RTOL, max_iter=20_000, max_time=None, restarts=4, maxcor=30,
                     polish=True, polish_iter=100, snap_tol=1e-3, reduce=True, warmup=None, checkpoint=None,
                     checkpoint_every=60.0, progress=None) -> MultiNoiseTrainResult:
    """Minimise the exact multi-noise loss from `MultiNoiseDAE.initial` (or ``init``) to ``‖∇L‖/L0 ≤ gtol``.

    ``X`` (d, n) samples as columns; ``lam`` the decay on ``‖θ‖²`` (``decay_from_weight_decay``
    maps PyTorch's weight decay to it). ``max_iter`` L-BFGS iterations in all, over at most
    ``1 + restarts`` stages (module docstring), then, if the gradient is still above ``gtol``,
    at most ``polish_iter`` trust-region Newton steps (``polish``; Hessian-vector products are
    central differences of the exact gradient); ``max_time`` seconds. Before each stage, encoder
    columns and gain units smaller than ``snap_tol`` times the largest are set to zero if that
    does not raise the loss (their zero is a non-smooth point both optimisers approach slowly). ``warmup``: ``None``, or
    keyword arguments of `numerics.multinoise_protocol.train_multinoise_protocol` (e.g.
    ``dict(steps=2000, optimizer="adam", lr=3e-3, weight_decay=0.0)``) run first from the
    initialisation. ``checkpoint=(folder, name)`` saves the current iterate every
    ``checkpoint_every`` seconds (atomically, with the run's parameters) and resumes from it.
    """
    X = as_matrix("X", X, cols_name="n")
    d, n = X.shape
    p = positive_int("p", p)
    lam = nonnegative("lam", lam, symbol="λ")
    sigma_range = _sigma_range(sigma_min, sigma_max)
    gtol = nonnegative("gtol", gtol)
    max_iter = positive_int("max_iter", max_iter)
    restarts = positive_int("restarts", restarts, minimum=0)
    model = _initial_model(init, d, p, seed)
    stages: list = []
    key = fingerprint(X, model.pack(), lam=lam, sigma=list(sigma_range), gtol=gtol, warmup=warmup or {})
    started = time.perf_counter()
    resumed_iter = 0
    saved = load_checkpoint(*checkpoint) if checkpoint is not None else None
    if saved is not None:
        arrays, meta = saved
        if meta.get("fingerprint") != key:
            raise ValueError(f"checkpoint {checkpoint} belongs to another run")
        model = MultiNoiseDAE.unpack(arrays["theta"], d, p)
        resumed_iter = int(meta["n_iter"])
        stages.append(f"resumed@{resumed_iter}")
    elif warmup:
        from numerics.multinoise_protocol import train_multinoise_protocol

        run = train_multinoise_protocol(X, p, init=model, seed=seed, sigma_min=sigma_range[0],
                                        sigma_max=sigma_range[1], exact_loss=False, progress=False, **warmup)
        model = run.model
        stages.append(f"mc-warmup({run.steps})")
    space = _Subspace(X, model.W, reduce)
    if space.basis is not None:
        stages.append(f"reduced d={d}->{space.dim}")
    scale = loss_scale(X)
    fun = _StageObjective(space.data(X), (space.dim, p), sigma_range, lam, d, scale)
    theta = space.inward(model).pack()
    history: list = []
    n_iter = resumed_iter
    last_save = [time.perf_counter()]

    def save(point):
        if checkpoint is not None:
            full = space.outward(MultiNoiseDAE.unpack(point, space.dim, p))
            save_checkpoint(*checkpoint, {"theta": full.pack()}, {"fingerprint": key, "n_iter": n_iter})
            last_save[0] = time.perf_counter()

    def out_of_budget():
        return n_iter >= max_iter or (max_time is not None and time.perf_counter() - started > max_time)

    bar = progress_bar(progress, desc="multi-noise exact", unit="it", mininterval=1.0)

    def callback(intermediate_result):
        nonlocal n_iter
        n_iter += 1
        loss, grad = fun(intermediate_result.x)
        rel = float(np.linalg.norm(grad)) / scale
        history.append((fun.evaluations, time.perf_counter() - started, loss, rel))
        bar.update(1)
        bar.set_postfix(loss=f"{loss:.8g}", rel_grad=f"{rel:.1e}", refresh=False)
        if checkpoint is not None and time.perf_counter() - last_save[0] > checkpoint_every:
            save(intermediate_result.x)
        if rel <= gtol or out_of_budget():
            raise StopIteration

    def hessp(point, vector):
        """Central difference of the stage's exact gradient (step as in `numerics.certify`)."""
        norm = float(np.linalg.norm(vector))
        if norm == 0.0 or not np.all(np.isfinite(vector)):
            return np.zeros_like(vector)
        h = HVP_STEP * max(float(np.linalg.norm(point)), 1.0) / norm
        return (fun(point + h * vector)[1] - fun(point - h * vector)[1]) / (2.0 * h)

    def check(point):
        loss, grad = fun.new_rule(point, rtol)
        return loss, grad, float(np.linalg.norm(grad)) / scale

    def snapped(point, loss, grad, rel):
        """Vanishing columns and gain units set to zero when that does not raise the loss.

        Their terms are positively homogeneous (degree 2), so they shrink only linearly and hold
        L-BFGS and Newton near their non-smooth zero; at zero their gradient is exactly zero.
        """
        model = MultiNoiseDAE.unpack(point, space.dim, p)
        columns = np.linalg.norm(model.W, axis=0)
        units = np.maximum(np.hypot(model.A1, model.b1), np.linalg.norm(model.A2, axis=0))
        small_columns = (columns > 0) & (columns <= snap_tol * columns.max())
        small_units = (units > 0) & (units <= snap_tol * units.max())
        if not (small_columns.any() or small_units.any()):
            return point, loss, grad, rel
        model.W[:, small_columns] = 0.0
        model.A1[small_units], model.b1[small_units], model.A2[:, small_units] = 0.0, 0.0, 0.0
        candidate = check(model.pack())
        if candidate[0] > loss + rtol * abs(loss):           # within the quadrature accuracy
            return point, *check(point)
        stages.append(f"zeroed {int(small_columns.sum())} columns, {int(small_units.sum())} gain units")
        return (model.pack(), *candidate)

    message, converged = "", False
    with single_blas_thread():
        try:
            loss, grad, rel = check(theta)
            history.append((fun.evaluations, time.perf_counter() - started, loss, rel))
            previous = np.inf
            for stage in range(1 + restarts):
                # L-BFGS stops when its line search cannot resolve a decrease (the loss's rounding
                # floor) or its curvature pairs go stale; fresh memory and a fresh rule from the
                # best point move on while each stage at least halves the gradient norm.
                if rel <= gtol or out_of_budget() or rel > 0.5 * previous:
                    break
                previous = rel
                theta, loss, grad, rel = snapped(theta, loss, grad, rel)
                stages.append(f"L-BFGS-B stage {stage + 1} ({fun.rule.size} nodes)")
                out = scipy.optimize.minimize(fun, theta, jac=True, method="L-BFGS-B", callback=callback,
                                              options=dict(maxiter=max(max_iter - n_iter, 1), maxcor=maxcor,
                                                           maxfun=10 * max_iter, ftol=0.0, gtol=0.0, maxls=50))
                message = str(out.message)
                # At the rounding floor the lowest loss and the smallest gradient part ways.
                theta = fun.best[0] if fun.best[2] <= gtol else fun.lowest[0]
                loss, grad, rel = check(theta)
            if rel > gtol:
                theta, loss, grad, rel = snapped(theta, loss, grad, rel)
            if rel > gtol and polish and not out_of_budget():
                # Newton steps need no resolvable loss decrease: past L-BFGS's floor they keep
                # shrinking the gradient (trust region with finite-difference Hessian products).
                stages.append(f"trust-krylov ({fun.rule.size} nodes)")
                try:
                    out = scipy.optimize.minimize(fun, theta, jac=True, hessp=hessp, method="trust-krylov",
                                                  callback=callback, options=dict(maxiter=polish_iter,
                                                                                  gtol=0.5 * gtol * scale))
                    message = str(out.message)
                except (ValueError, FloatingPointError) as error:
                    message = f"trust-krylov polish stopped ({error}); best iterate kept"
                theta = fun.best[0]
                loss, grad, rel = check(theta)
            converged = rel <= gtol
            message = (f"converged: relative gradient norm {rel:.2e} <= {gtol:.0e}" if converged else
                       f"stopped at relative gradient norm {rel:.2e}: {message}")
        finally:
            bar.close()
    save(theta)
    final = space.outward(MultiNoiseDAE.unpack(theta, space.dim, p))
    grad_norm = float(np.linalg.norm(grad))
    return MultiNoiseTrainResult(model=final, loss=float(loss), grad_norm=grad_norm, rel_grad_norm=grad_norm / scale,
                                 converged=bool(converged), n_iter=n_iter, n_eval=fun.evaluations,
                                 wall_time=time.perf_counter() - started, message=message, lam=lam,
                                 sigma_min=sigma_range[0], sigma_max=sigma_range[1], gtol=gtol,
                                 quadrature_error=fun.rule.relative_error, n_nodes=fun.rule.size,
                                 stages=stages, history=history)
