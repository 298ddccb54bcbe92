"""Training the multi-noise ReLU DAE on its exact loss: L-BFGS on `numerics.multinoise_objective`.

`train_multinoise` minimises ``E_u D(θ, e^u) + λ‖θ‖²`` with SciPy's L-BFGS-B in *stages*: each
stage keeps the quadrature rule `adaptive_rule` built at its starting point (its node counts
per piece; the pieces follow the gains' kinks as they move), so that within a stage the
objective is one deterministic, smooth function of θ while the kinks keep their order. A stage
ends when L-BFGS stops or the relative gradient norm ``‖∇L‖/L0`` (``L0 = (1/n)Σ‖x_i‖²``, the
loss of the zero network) reaches ``gtol``; the point is then re-checked with a fresh rule at
the same tolerance, and a new stage (fresh rule, fresh L-BFGS memory) starts from the lowest
point while each stage at least halves the gradient norm. Encoder columns and gain units that
are vanishing are set to exactly zero between stages when that does not raise the loss (their
zero is a non-smooth point, approached only linearly). L-BFGS stalls where the loss's rounding
hides further decrease; a trust-region Newton polish (`scipy.optimize.minimize(method=
"trust-krylov")`, Hessian-vector products by central differences of the exact gradient, as
`numerics.solvers.train`) then takes the gradient below ``gtol``. The result carries the
quadrature error estimate of the last rule.

Like `numerics.solvers.train` it works in the invariant basis of the data and the initial
encoder (`numerics.geometry.invariant_basis`): the loss is invariant under rotations that fix
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

from numerics.checkpoint import fingerprint, load_checkpoint, progress_bar, save_checkpoint
from numerics.geometry import HVP_STEP, invariant_basis, loss_scale
from numerics.multinoise import MultiNoiseDAE
from numerics.multinoise_objective import (DEFAULT_RTOL, SIGMA_RANGE, _sigma_range, adaptive_rule,
                                           multinoise_loss_and_grad)
from numerics.threads import single_thread
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
    """Loss and packed gradient under one stage's rule, with counters and the best points seen."""

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


def _starting_model(X, initial, seed, sigma_range, warmup, checkpoint, key):
    """``initial`` resumed from ``checkpoint`` or warmed up; returns (model, iterations done, stage notes)."""
    saved = load_checkpoint(*checkpoint) if checkpoint is not None else None
    if saved is not None:
        arrays, meta = saved
        if meta.get("fingerprint") != key:
            raise ValueError(f"checkpoint {checkpoint} belongs to another run")
        iterations = int(meta["n_iter"])
        return MultiNoiseDAE.unpack(arrays["theta"], initial.d, initial.p), iterations, [f"resumed@{iterations}"]
    if warmup:
        from numerics.multinoise_protocol import train_multinoise_protocol

        run = train_multinoise_protocol(X, initial.p, init=initial, seed=seed, sigma_min=sigma_range[0],
                                        sigma_max=sigma_range[1], exact_loss=False, progress=False, **warmup)
        return run.model, 0, [f"mc-warmup({run.steps})"]
    return initial.copy(), 0, []


class _Run:
    """One exact optimisation: the stage objective, its budget, history, checkpoints and stages."""

    def __init__(self, fun, space, options, key, stages, n_iter, progress):
        self.fun, self.space, self.o, self.key, self.stages = fun, space, options, key, stages
        self.n_iter, self.history = n_iter, []
        self.started = self.last_save = time.perf_counter()
        self.bar = progress_bar(progress, desc="multi-noise exact", unit="it", mininterval=1.0)

    def out_of_budget(self) -> bool:
        o = self.o
        return self.n_iter >= o["max_iter"] or (o["max_time"] is not None
                                                and time.perf_counter() - self.started > o["max_time"])

    def save(self, point) -> None:
        if self.o["checkpoint"] is not None:
            full = self.space.outward(MultiNoiseDAE.unpack(point, *self.fun.shape))
            save_checkpoint(*self.o["checkpoint"], {"theta": full.pack()}, {"fingerprint": self.key, "n_iter": self.n_iter})
            self.last_save = time.perf_counter()

    def record(self, loss, rel) -> None:
        self.history.append((self.fun.evaluations, time.perf_counter() - self.started, loss, rel))

    def callback(self, intermediate_result):
        """After each iteration: history, progress, checkpoint; stop at ``gtol`` or out of budget."""
        self.n_iter += 1
        loss, grad = self.fun(intermediate_result.x)
        rel = float(np.linalg.norm(grad)) / self.fun.scale
        self.record(loss, rel)
        self.bar.update(1)
        self.bar.set_postfix(loss=f"{loss:.8g}", rel_grad=f"{rel:.1e}", refresh=False)
        if self.o["checkpoint"] is not None and time.perf_counter() - self.last_save > self.o["checkpoint_every"]:
            self.save(intermediate_result.x)
        if rel <= self.o["gtol"] or self.out_of_budget():
            raise StopIteration

    def hessp(self, point, vector):
        """Central difference of the stage's exact gradient (step as in `numerics.certify`)."""
        norm = float(np.linalg.norm(vector))
        if norm == 0.0 or not np.all(np.isfinite(vector)):
            return np.zeros_like(vector)
        h = HVP_STEP * max(float(np.linalg.norm(point)), 1.0) / norm
        return (self.fun(point + h * vector)[1] - self.fun(point - h * vector)[1]) / (2.0 * h)

    def check(self, point):
        """Loss, gradient and relative gradient norm under a fresh rule built at ``point``."""
        loss, grad = self.fun.new_rule(point, self.o["rtol"])
        return point, loss, grad, float(np.linalg.norm(grad)) / self.fun.scale

    def snapped(self, state):
        """Vanishing columns and gain units set to zero when that does not raise the loss.

        Their terms are positively homogeneous (degree 2), so they shrink only linearly and hold
        L-BFGS and Newton near their non-smooth zero; at zero their gradient is exactly zero.
        """
        point, loss = state[0], state[1]
        model = MultiNoiseDAE.unpack(point, *self.fun.shape)
        columns = np.linalg.norm(model.W, axis=0)
        units = np.maximum(np.hypot(model.A1, model.b1), np.linalg.norm(model.A2, axis=0))
        small_columns = (columns > 0) & (columns <= self.o["snap_tol"] * columns.max())
        small_units = (units > 0) & (units <= self.o["snap_tol"] * units.max())
        if not (small_columns.any() or small_units.any()):
            return state
        model.W[:, small_columns] = 0.0
        model.A1[small_units], model.b1[small_units], model.A2[:, small_units] = 0.0, 0.0, 0.0
        candidate = self.check(model.pack())
        if candidate[1] > loss + self.o["rtol"] * abs(loss):       # within the quadrature accuracy
            return self.check(point)
        self.stages.append(f"zeroed {int(small_columns.sum())} columns, {int(small_units.sum())} gain units")
        return candidate

    def lbfgs_stages(self, state):
        """L-BFGS-B under a fixed rule per stage, restarted from the best point while it halves ‖∇L‖.

        L-BFGS stops when its line search cannot resolve a decrease (the loss's rounding floor)
        or its curvature pairs go stale; fresh memory and a fresh rule move on.
        """
        o, previous, message = self.o, np.inf, ""
        for stage in range(1 + o["restarts"]):
            rel = state[3]
            if rel <= o["gtol"] or self.out_of_budget() or rel > 0.5 * previous:
                break
            previous = rel
            state = self.snapped(state)
            self.stages.append(f"L-BFGS-B stage {stage + 1} ({self.fun.rule.size} nodes)")
            out = scipy.optimize.minimize(
                self.fun, state[0], jac=True, method="L-BFGS-B", callback=self.callback,
                options=dict(maxiter=max(o["max_iter"] - self.n_iter, 1), maxcor=o["maxcor"],
                             maxfun=10 * o["max_iter"], ftol=0.0, gtol=0.0, maxls=50))
            message = str(out.message)
            # At the rounding floor the lowest loss and the smallest gradient part ways.
            best, lowest = self.fun.best, self.fun.lowest
            state = self.check(best[0] if best[2] <= o["gtol"] else lowest[0])
        return state, message

    def polish(self, state, message):
        """Newton steps past L-BFGS's floor: they need no resolvable loss decrease (trust-krylov)."""
        o = self.o
        if state[3] > o["gtol"]:
            state = self.snapped(state)
        if state[3] <= o["gtol"] or not o["polish"] or self.out_of_budget():
            return state, message
        self.stages.append(f"trust-krylov ({self.fun.rule.size} nodes)")
        try:
            out = scipy.optimize.minimize(self.fun, state[0], jac=True, hessp=self.hessp, method="trust-krylov",
                                          callback=self.callback,
                                          options=dict(maxiter=o["polish_iter"], gtol=0.5 * o["gtol"] * self.fun.scale))
            message = str(out.message)
        except (ValueError, FloatingPointError) as error:
            message = f"trust-krylov polish stopped ({error}); best iterate kept"
        return self.check(self.fun.best[0]), message


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
    does not raise the loss (their zero is a non-smooth point both optimisers approach slowly).
    ``warmup``: ``None``, or keyword arguments of
    `numerics.multinoise_protocol.train_multinoise_protocol` (e.g. ``dict(steps=2000,
    optimizer="adam", lr=3e-3, weight_decay=0.0)``) run first from the initialisation.
    ``checkpoint=(folder, name)`` saves the current iterate every ``checkpoint_every`` seconds
    (atomically, with the run's parameters) and resumes from it.
    """
    X = as_matrix("X", X, cols_name="n")
    d = X.shape[0]
    p = positive_int("p", p)
    lam = nonnegative("lam", lam, symbol="λ")
    sigma_range = _sigma_range(sigma_min, sigma_max)
    options = dict(gtol=nonnegative("gtol", gtol), rtol=rtol, max_iter=positive_int("max_iter", max_iter),
                   max_time=max_time, restarts=positive_int("restarts", restarts, minimum=0), maxcor=maxcor,
                   polish=polish, polish_iter=polish_iter, snap_tol=snap_tol, checkpoint=checkpoint,
                   checkpoint_every=checkpoint_every)

    if init is None:
        initial = MultiNoiseDAE.initial(d, p, seed=seed)
    elif isinstance(init, MultiNoiseDAE) and init.W.shape == (d, p):
        initial = init
    else:
        raise ValueError(f"init must be None or a MultiNoiseDAE with W of shape ({d}, {p})")
    key = fingerprint(X, initial.pack(), lam=lam, sigma=list(sigma_range), gtol=options["gtol"], warmup=warmup or {})
    model, n_iter, stages = _starting_model(X, initial, seed, sigma_range, warmup, checkpoint, key)
    space = _Subspace(X, model.W, reduce)
    if space.basis is not None:
        stages.append(f"reduced d={d}->{space.dim}")
    fun = _StageObjective(space.data(X), (space.dim, p), sigma_range, lam, d, loss_scale(X))
    run = _Run(fun, space, options, key, stages, n_iter, progress)
    with single_thread(numba=False):
        try:
            state = run.check(space.inward(model).pack())
            run.record(state[1], state[3])
            state, message = run.lbfgs_stages(state)
            state, message = run.polish(state, message)
        finally:
            run.bar.close()
    theta, loss, grad, rel = state
    converged = rel <= options["gtol"]
    message = (f"converged: relative gradient norm {rel:.2e} <= {options['gtol']:.0e}" if converged else
               f"stopped at relative gradient norm {rel:.2e}: {message}")
    run.save(theta)
    grad_norm = float(np.linalg.norm(grad))
    return MultiNoiseTrainResult(model=space.outward(MultiNoiseDAE.unpack(theta, space.dim, p)), loss=float(loss),
                                 grad_norm=grad_norm, rel_grad_norm=rel, converged=bool(converged), n_iter=run.n_iter,
                                 n_eval=fun.evaluations, wall_time=time.perf_counter() - run.started, message=message,
                                 lam=lam, sigma_min=sigma_range[0], sigma_max=sigma_range[1], gtol=options["gtol"],
                                 quadrature_error=fun.rule.relative_error, n_nodes=fun.rule.size,
                                 stages=stages, history=run.history)
