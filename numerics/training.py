"""`train`: full-batch minimisation of the exact loss eq. (6), in named stages.

`train` minimises eq. (6) — evaluated exactly by `numerics.objective` — and stops when the
relative gradient norm ``‖∇L‖_F / L0`` is at most ``gtol`` (default 1e-8), where
``L0 = (1/n) Σ_i ‖x_i‖²`` is the loss of the zero network (`numerics.geometry.loss_scale`).
The ratio is dimensionless: tied weights are scale free (``W Wᵀ`` maps data space to
itself), so ``‖∇L‖`` is measured in units of ``L0``. The stages, in order:

1. **initial point** (`_initial_point`): `random_init` with ``seed`` (the default), or given
   weights (a theory prediction, say), optionally perturbed — or the iterate saved in a
   checkpoint, which the run then resumes;
2. **reduction** (`_Reduction`): the same iterations in the basis of
   `numerics.geometry.invariant_basis` (data span plus the start's components outside it)
   whenever that is smaller than d — an exact change of coordinates;
3. **Monte-Carlo warm-up** (`_mc_warmup`, optional): float32 Adam on one-draw minibatch
   gradients, a cheap way into a basin;
4. **L-BFGS with restarts** (`_lbfgs_with_restarts`): SciPy's L-BFGS-B, restarted with
   fresh memory from its lowest point while each restart at least halves the gradient norm;
5. **polish** (`_polish`): SciPy's ``trust-krylov`` with Hessian-vector products by central
   differences of the exact gradient — or exact ones, ``polish=dict(hessp=exact_hessp)``
   (`numerics.newton.exact_hessp`) — when L-BFGS stopped above ``gtol``.

``max_iter`` bounds the iterations of stages 4 and 5 together (L-BFGS, its restarts and the
polish); ``max_iter=0`` evaluates the start and returns it, with no stage run (the warm-up
neither). A ``callback(intermediate_result)`` sees every iteration of stages 4 and 5 (an
``OptimizeResult`` with ``W1, W2, fun, rel_grad_norm, nit, nfev, stage``); raising
``StopIteration`` in it ends the run, which returns the lowest-loss point so far.

>>> from numerics.data import memorization_set
>>> X = memorization_set(6, 3, norm=3.0, seed=0)       # pairwise cosine −1/2 (Cor. 3.2)
>>> fit = train(X, p=4, sigma=0.2, lam=0.01, seed=0, tied=True)
>>> fit.converged, fit.rel_grad_norm <= 1e-8
(True, True)
"""
from __future__ import annotations

import concurrent.futures
import time
from dataclasses import dataclass, field

import numpy as np
import scipy.optimize

from numerics.checkpoint import fingerprint, load_checkpoint, progress_bar, save_checkpoint
from numerics.geometry import ExactGradient, NonFiniteStep, Packing, invariant_basis, loss_scale
from numerics.initialization import given_weights, random_init
from numerics.protocol import Adam, _minibatch_mse_and_grad
from numerics.threads import single_thread
from numerics.validation import (as_matrix, flag, nonnegative, optional_flag, positive, positive_int)

__all__ = ["train", "TrainResult", "WARMUP", "LBFGS", "POLISH"]

# Per-stage options and their defaults (``warmup=dict(...)``, ``lbfgs=dict(...)``, ``polish=dict(...)``).
WARMUP = dict(steps=0, lr=3e-3, batch=256)
LBFGS = dict(maxcor=30, restarts=3, maxls=50)
POLISH = dict(max_iter=200, hessp=None)


@dataclass
class TrainResult:
    """Outcome of `train`.

    ``W1, W2``: final weights (d, p) (the same array when tied); ``loss``: exact eq. (6);
    ``grad_norm``: ``‖∇L‖_F`` (w.r.t. W when tied, else w.r.t. (W1, W2));
    ``rel_grad_norm = grad_norm / loss_scale(X)``; ``converged``: ``rel_grad_norm <= gtol``;
    ``n_iter``/``n_eval``: optimiser iterations and exact loss+gradient evaluations;
    ``stages``: which stages ran; ``history``: (evaluations, seconds, loss, rel. grad.)
    at the exact optimisation's starting point and after each iteration. A converged run
    returns a point with ``rel_grad_norm <= gtol``; one that stopped early (``max_time``,
    ``max_iter``, the callback) returns the lowest-loss point it evaluated.
    """
    W1: np.ndarray
    W2: np.ndarray
    loss: float
    grad_norm: float
    rel_grad_norm: float
    converged: bool
    n_iter: int
    n_eval: int
    wall_time: float
    message: str
    seed: int
    tied: bool
    sigma: float
    lam: float
    init: str
    gtol: float
    stages: list = field(default_factory=list)
    history: list = field(default_factory=list)

    def summary(self) -> dict:
        """Scalars only (JSON-ready)."""
        return dict(loss=self.loss, grad_norm=self.grad_norm, rel_grad_norm=self.rel_grad_norm,
                    converged=self.converged, n_iter=self.n_iter, n_eval=self.n_eval,
                    wall_time=self.wall_time, message=self.message, seed=self.seed, tied=self.tied,
                    sigma=self.sigma, lam=self.lam, init=self.init, gtol=self.gtol, stages=self.stages)


def _stage_options(warmup, lbfgs, polish):
    """The three stages' options, checked: ``(warmup, lbfgs, polish)`` dicts (polish None: off)."""
    warmup = _options("warmup", warmup, WARMUP)
    warmup.update(steps=positive_int("warmup['steps']", warmup["steps"], minimum=0),
                  lr=positive("warmup['lr']", warmup["lr"]),
                  batch=positive_int("warmup['batch']", warmup["batch"]))
    lbfgs = _options("lbfgs", lbfgs, LBFGS)
    lbfgs.update(maxcor=positive_int("lbfgs['maxcor']", lbfgs["maxcor"]),
                 restarts=positive_int("lbfgs['restarts']", lbfgs["restarts"], minimum=0),
                 maxls=positive_int("lbfgs['maxls']", lbfgs["maxls"]))
    if isinstance(polish, (bool, np.bool_)):
        polish = dict(POLISH) if polish else None
    elif isinstance(polish, dict):
        polish = _options("polish", polish, POLISH)
    else:
        raise TypeError(f"polish must be True, False or a dict of options {sorted(POLISH)}; got {polish!r:.60}")
    if polish is not None:
        polish["max_iter"] = positive_int("polish['max_iter']", polish["max_iter"])
        if polish["hessp"] is not None and not callable(polish["hessp"]):
            raise TypeError("polish['hessp'] must be None or a callable (W1, W2, X, sigma, lam, tied) -> product, "
                            f"e.g. numerics.newton.exact_hessp; got {type(polish['hessp']).__name__}")
    return warmup, lbfgs, polish


def _checkpoint_every(checkpoint, every) -> float:
    """Check ``checkpoint`` (None or a pair (folder, name)) and return the saving interval."""
    if checkpoint is None:
        return every
    if not (isinstance(checkpoint, (tuple, list)) and len(checkpoint) == 2):
        raise TypeError(f"checkpoint must be a pair (folder, name) or None; got {checkpoint!r:.60}")
    return nonnegative("checkpoint_every", every)


def _options(name: str, given, defaults: dict) -> dict:
    """``defaults`` updated by the dict ``given`` (None: defaults); unknown keys are a TypeError."""
    if given is None:
        return dict(defaults)
    if not isinstance(given, dict):
        raise TypeError(f"{name} must be a dict of options {sorted(defaults)} or None; got {given!r:.60}")
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise TypeError(f"{name} got unknown option(s) {unknown}; allowed: {sorted(defaults)}")
    return {**defaults, **given}


# ----------------------------------------------------------------------------- stage 1: initial point


def _initial_point(init, d: int, p: int, tied: bool, seed: int, perturb: float, n: int):
    """``(W1, W2, label)``: random or given weights, plus relative Gaussian noise ``perturb``."""
    rng = np.random.default_rng(seed)
    if isinstance(init, str) and init == "random":
        W1, W2 = random_init(d, p, tied=tied, seed=rng)
        label = "random"
    else:
        W1, W2 = given_weights(init, d, p, tied=tied, n=n)
        label = "given"
    if perturb:
        # Relative perturbation: Gaussian noise with Frobenius norm perturb·‖W‖_F.
        for W in ((W1,) if tied else (W1, W2)):
            noise = rng.standard_normal(W.shape)
            W += perturb * max(np.linalg.norm(W), 1e-12) * noise / np.linalg.norm(noise)
        label += f"+perturb({perturb:g})"
    return W1, (W1 if tied else W2), label


# ----------------------------------------------------------------------------- stage 2: reduction


class _Reduction:
    """The invariant basis B (or None: full space): ``V = BᵀW``, ``C = BᵀX``, ``W = B V``."""

    def __init__(self, X, W1, W2, tied: bool, reduce: bool):
        d = X.shape[0]
        basis = invariant_basis(X, W1, None if tied else W2) if reduce else None
        self.basis = None if basis is None or basis.shape[1] >= d else basis
        self.d, self.tied = d, tied
        self.k = d if self.basis is None else self.basis.shape[1]
        self.C = X if self.basis is None else self.basis.T @ X

    def project(self, W1, W2):
        if self.basis is None:
            return W1, W2
        V1 = self.basis.T @ W1
        return V1, (V1 if self.tied else self.basis.T @ W2)

    def lift(self, V1, V2):
        """Full-space (W1, W2) as new arrays (the same array twice when tied)."""
        W1 = V1.copy() if self.basis is None else self.basis @ V1
        if self.tied:
            return W1, W1
        return W1, (V2.copy() if self.basis is None else self.basis @ V2)


# ----------------------------------------------------------------------------- stage 3: warm-up


def _mc_warmup(V1, V2, C, sigma, lam, tied, steps, lr, batch, seed):
    """Adam on one-draw Monte-Carlo minibatch gradients of eq. (6), a cheap way into a basin.

    The learning rate decays linearly from ``lr`` to 0 over ``steps`` (annealing removes the
    Monte-Carlo noise floor a constant rate leaves). The steps run in float32, as the
    authors' PyTorch code does: its rounding (1e-7 relative) is far below the Monte-Carlo
    noise, and the exact float64 optimisation takes over afterwards.
    """
    k, n = C.shape
    rng = np.random.default_rng(np.random.SeedSequence([seed, 7]))
    noise_rng = np.random.default_rng(np.random.SeedSequence([seed, 8]))
    C = C.astype(np.float32)
    params = [V1.astype(np.float32)] if tied else [V1.astype(np.float32), V2.astype(np.float32)]
    opt = Adam(lr=lr)
    decay = np.float32((4.0 if tied else 2.0) * lam)
    batch = min(batch, n)
    order, position = rng.permutation(n), 0

    def draw():
        return noise_rng.standard_normal((k, batch), dtype=np.float32)

    # Drawing the noise costs as much as the step's five matrix products; NumPy releases the
    # GIL while it fills the array, so the next draw runs on the other core meanwhile.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(draw)
        for step in range(steps):
            noise = pending.result()
            if step + 1 < steps:
                pending = pool.submit(draw)
            if position >= n:
                order, position = rng.permutation(n), 0
            Cb = C[:, order[position:position + batch]]
            position += batch
            _, grads = _minibatch_mse_and_grad(params[0], params[-1], Cb, noise[:, :Cb.shape[1]],
                                              sigma, tied)
            # minibatch_mse_and_grad divides by (k·B); eq. (6) divides by B only.
            grads = [np.float32(k) * g + decay * w for g, w in zip(grads, params)]
            opt.lr = lr * (1.0 - step / steps)
            opt.step(params, grads)
    params = [w.astype(np.float64) for w in params]
    return (params[0], params[0]) if tied else (params[0], params[1])


# ----------------------------------------------------------------------------- the run's state


class _Tracked(ExactGradient):
    """`ExactGradient` that keeps the point of smallest relative gradient and of lowest loss."""

    def __init__(self, X, sigma, lam, packing, scale):
        super().__init__(X, sigma, lam, packing)
        self.scale = scale
        self.best = None       # smallest relative gradient norm: the convergence test
        self.lowest = None     # lowest loss: what an unconverged run returns

    def record(self, point, loss, grad) -> None:
        rel = float(np.linalg.norm(grad)) / self.scale
        if self.best is None or rel < self.best[2] or (rel == self.best[2] and loss < self.best[1]):
            self.best = (point, loss, rel, grad)
        if self.lowest is None or loss < self.lowest[1]:
            self.lowest = (point, loss, rel, grad)


class _Run:
    """Budget, history, checkpoints and callback of one `train` call; `record` is every iteration's hook."""

    def __init__(self, fun, reduction, *, gtol, max_iter, max_time, callback, checkpoint,
                 checkpoint_every, key, seed, progress, started, n_iter=0, stages=()):
        self.fun, self.reduction = fun, reduction
        self.gtol, self.max_iter, self.max_time, self.callback = gtol, max_iter, max_time, callback
        self.checkpoint, self.checkpoint_every, self.key, self.seed = checkpoint, checkpoint_every, key, seed
        self.started = started
        self.last_save = time.perf_counter()
        self.history: list = []
        self.stages = list(stages)
        self.n_iter = n_iter
        self.message = ""
        self.stopped_by_callback = False
        self.stopped_by_overflow = False
        self.stage = ""
        # delay: a bar appears only once the run has lasted 2 s, so quick fits stay silent
        self.bar = progress_bar(progress, desc="train", unit="it", mininterval=1.0, delay=2.0)

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def timed_out(self) -> bool:
        return self.max_time is not None and self.elapsed() > self.max_time

    def done(self) -> bool:
        return (self.fun.best[2] <= self.gtol or self.stopped_by_callback or self.stopped_by_overflow
                or self.timed_out())

    def save(self, theta) -> None:
        if self.checkpoint is not None:
            save_checkpoint(self.checkpoint[0], self.checkpoint[1], {"theta": theta},
                            {"fingerprint": self.key, "n_iter": self.n_iter, "seed": self.seed})
            self.last_save = time.perf_counter()

    def start(self, theta0) -> None:
        """Evaluate the starting point: the first entry of the history."""
        try:
            loss0, grad0 = self.fun(theta0)
        except NonFiniteStep as error:     # the start itself is out of range: the inputs' fault
            raise (error.__cause__ or ValueError(str(error))) from None
        self.history.append((self.fun.evaluations, self.elapsed(), loss0,
                             float(np.linalg.norm(grad0)) / self.fun.scale))

    def record(self, intermediate_result) -> None:
        """SciPy callback: log the iterate, save it now and then, and stop when done."""
        theta, loss = intermediate_result.x, intermediate_result.fun
        self.n_iter += 1
        _, grad = self.fun(theta)
        rel = float(np.linalg.norm(grad)) / self.fun.scale
        self.history.append((self.fun.evaluations, self.elapsed(), float(loss), rel))
        self.bar.update(1)
        self.bar.set_postfix(loss=f"{loss:.6g}", rel_grad=f"{rel:.1e}", refresh=False)
        if self.checkpoint is not None and time.perf_counter() - self.last_save > self.checkpoint_every:
            self.save(theta)
        if self.callback is not None:
            W1, W2 = self.reduction.lift(*self.fun.packing.unpack(theta))
            progress = scipy.optimize.OptimizeResult(
                W1=W1, W2=W2, fun=float(loss), rel_grad_norm=rel, nit=self.n_iter,
                nfev=self.fun.evaluations, stage=self.stage)
            try:
                self.callback(progress)
            except StopIteration:
                self.stopped_by_callback = True
                raise
        if rel <= self.gtol or self.timed_out():
            raise StopIteration


# ----------------------------------------------------------------------------- stages 4 and 5


def _lbfgs_with_restarts(run: _Run, theta0, options: dict) -> None:
    """L-BFGS-B (``max_iter`` iterations in all), restarted from its lowest point with fresh memory.

    L-BFGS stops when its line search makes no progress, often because its curvature pairs
    went stale; fresh memory from the lowest point usually moves on. Restarts end when one
    no longer halves the gradient norm, or after ``options["restarts"]``.
    """
    fun, start = run.fun, theta0
    for attempt in range(1 + options["restarts"]):
        if run.done() or run.n_iter >= run.max_iter:
            break
        before = fun.best[2]
        run.stage = "L-BFGS-B" if attempt == 0 else "L-BFGS-B restart"
        run.stages.append(run.stage)
        try:
            out = scipy.optimize.minimize(
                fun, start, jac=True, method="L-BFGS-B", callback=run.record,
                options=dict(maxiter=run.max_iter - run.n_iter, maxfun=10 * run.max_iter,
                             maxcor=options["maxcor"], ftol=0.0, gtol=0.0, maxls=options["maxls"]))
        except NonFiniteStep as error:
            run.message = (f"L-BFGS-B stepped out of the float64 range ({error}): its steps need ‖∇L‖² "
                           f"to fit in float64; rescale X (largest entry "
                           f"{float(np.max(np.abs(run.reduction.C))):.1e}); best iterate kept")
            run.stopped_by_overflow = True
            break
        run.message = str(out.message)
        if attempt > 0 and fun.best[2] > 0.5 * before:
            break
        start = fun.lowest[0]


def _polish(run: _Run, options: dict) -> None:
    """``trust-krylov`` from the best iterate, Hessian-vector products by central differences
    or from ``options["hessp"]`` (`numerics.geometry.ExactGradient`).

    At most ``options["max_iter"]`` iterations, and never beyond ``train``'s ``max_iter`` in all.
    """
    budget = min(options["max_iter"], run.max_iter - run.n_iter)
    if run.done() or budget <= 0:
        return
    run.stage = "trust-krylov"
    run.stages.append(run.stage)
    fun = run.fun
    fun.hessp = options["hessp"]
    try:
        out = scipy.optimize.minimize(
            fun, fun.best[0], jac=True, hessp=fun.hvp, method="trust-krylov", callback=run.record,
            options=dict(maxiter=budget, gtol=run.gtol * fun.scale * 0.5))
        run.message = str(out.message)
    except NonFiniteStep:
        # SciPy's trust-region subproblem solver (trlib) can return NaN directions on nearly
        # singular Hessians; the best iterate so far is kept.
        run.message = "trust-krylov polish stopped on a non-finite direction; best iterate kept"


# ----------------------------------------------------------------------------- train


def train(X, p, sigma, lam, seed=0, *, tied=False, init="random", perturb=0.0, gtol=1e-8,
          max_iter=20_000, max_time=None, warmup=None, lbfgs=None, polish=True, reduce=True,
          callback=None, checkpoint=None, checkpoint_every=60.0, progress=None) -> TrainResult:
    """Minimise eq. (6) exactly, full batch, from a random or given start, to ``‖∇L‖/L0 ≤ gtol``.

    ``X`` (d, n), samples as columns; ``p`` neurons; ``tied`` optimises one W with
    W1 = W2 = W. ``init``: ``"random"`` (default, `random_init` with ``seed``), a (d, p)
    array, or a pair (W1, W2) — e.g. a theory prediction; ``perturb`` adds Gaussian noise of
    relative Frobenius size ``perturb``. ``lam`` is required (no silent λ = 0), as in
    ``theory.predict``. ``tied=False`` (the default) trains W1 and W2 independently: loss (6)
    as printed, whose minimisers the results assert to have W2* = W1*; ``tied=True`` trains one
    W, as the authors' code does. Budgets: ``max_iter`` iterations in all (L-BFGS, restarts
    and polish; ``0`` returns the start), ``max_time`` seconds. Stages (module docstring) take options dicts:
    ``warmup=dict(steps, lr=3e-3, batch=256)`` (off by default), ``lbfgs=dict(maxcor=30,
    restarts=3, maxls=50)``, ``polish=True | False | dict(max_iter=200, hessp=None)`` (``hessp``:
    exact Hessian-vector products, e.g. `numerics.newton.exact_hessp`); ``reduce=False``
    runs in the full space. ``callback(intermediate_result)`` sees every iteration and may
    raise ``StopIteration``. ``checkpoint=(folder, name)`` saves the current iterate every
    ``checkpoint_every`` seconds and resumes from it. ``progress``: a progress bar (tqdm) of
    the iterations with the loss and relative gradient; ``None`` (default) shows it in
    notebooks and terminals and hides it under CI (`numerics.checkpoint.progress_enabled`),
    ``True``/``False`` force it. Training runs with one BLAS thread (the objective's numba
    kernel uses the cores).

    >>> import numpy as np
    >>> X = np.array([[2.0, -1.0], [0.0, 1.5], [1.0, 0.5]])
    >>> train(X, 2, 0.1, 0.0, seed=1, tied=True).converged
    True
    """
    X = as_matrix("X", X, cols_name="n")
    d = X.shape[0]
    p = positive_int("p", p)
    sigma = nonnegative("sigma", sigma, symbol="σ")
    lam = nonnegative("lam", lam, symbol="λ")
    seed = positive_int("seed", seed, minimum=0)
    tied = flag("tied", tied)
    gtol = nonnegative("gtol", gtol)
    max_iter = positive_int("max_iter", max_iter, minimum=0)
    max_time = None if max_time is None else nonnegative("max_time", max_time)
    perturb = nonnegative("perturb", perturb)
    reduce = flag("reduce", reduce)
    progress = optional_flag("progress", progress)
    warmup, lbfgs, polish = _stage_options(warmup, lbfgs, polish)
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable or None; got {type(callback).__name__}")
    checkpoint_every = _checkpoint_every(checkpoint, checkpoint_every)

    W1, W2, init_label = _initial_point(init, d, p, tied, seed, perturb, X.shape[1])
    started = time.perf_counter()
    key = None if checkpoint is None else fingerprint(
        X, W1, W2, p=p, sigma=sigma, lam=lam, tied=tied, gtol=gtol,
        warmup=[warmup["steps"], float(warmup["lr"]), warmup["batch"]])
    reduction = _Reduction(X, W1, W2, tied, reduce)
    packing = Packing(reduction.k, p, tied)
    fun = _Tracked(reduction.C, sigma, lam, packing, loss_scale(X))
    stages = [] if reduction.basis is None else [f"reduced d={d}->{reduction.k}"]
    theta0, n_iter = _resume(checkpoint, key)
    if theta0 is not None:
        stages.append(f"resumed@{n_iter}")
    run = _Run(fun, reduction, gtol=gtol, max_iter=max_iter, max_time=max_time, callback=callback,
               checkpoint=checkpoint, checkpoint_every=checkpoint_every, key=key, seed=seed,
               progress=progress, started=started, n_iter=n_iter, stages=stages)
    if theta0 is None:
        V1, V2 = reduction.project(W1, W2)
        if warmup["steps"] and max_iter > 0:
            with single_thread(numba=False):
                V1, V2 = _mc_warmup(V1, V2, reduction.C, sigma, lam, tied, warmup["steps"],
                                    float(warmup["lr"]), warmup["batch"], seed)
            run.stages.append(f"mc-warmup({warmup['steps']})")
        theta0 = packing.pack(V1, V2)
    # One BLAS thread: the objective parallelises itself (numba); threaded BLAS on the solver's
    # small products and vector operations cost 6× per iteration at d = 1024, p = 100, n = 5.
    with single_thread(numba=False):
        try:
            run.start(theta0)
            if max_iter == 0:
                run.message = "max_iter = 0: the start returned as it is"
            _lbfgs_with_restarts(run, theta0, lbfgs)
            if polish is not None:
                _polish(run, polish)
        finally:
            run.bar.close()
    return _result(run, seed=seed, tied=tied, sigma=sigma, lam=lam, init=init_label)


def _resume(checkpoint, key):
    """``(theta, n_iter)`` saved under ``checkpoint`` for this run, or ``(None, 0)``."""
    if checkpoint is None:
        return None, 0
    saved = load_checkpoint(*checkpoint)
    if saved is None:
        return None, 0
    arrays, meta = saved
    if meta.get("fingerprint") != key:
        raise ValueError(f"checkpoint {checkpoint} belongs to another run")
    return arrays["theta"], int(meta.get("n_iter", 0))


def _result(run: _Run, **fields) -> TrainResult:
    """The converged (smallest gradient) or else lowest-loss point, lifted to the full space."""
    fun = run.fun
    converged = fun.best[2] <= run.gtol
    theta, loss, rel, grad = fun.best if converged else fun.lowest
    run.save(theta)
    message = run.message
    if converged:
        message = f"converged: relative gradient norm {rel:.2e} <= {run.gtol:.0e}"
    elif run.stopped_by_callback:
        message = f"stopped by the callback: relative gradient norm {rel:.2e}; lowest-loss point returned"
    elif run.stopped_by_overflow:
        message = f"{run.message}: relative gradient norm {rel:.2e}; lowest-loss point returned"
    elif run.timed_out():
        message = f"stopped at max_time={run.max_time} s: relative gradient norm {rel:.2e}; {message}"
    W1, W2 = run.reduction.lift(*fun.packing.unpack(theta))
    return TrainResult(W1=W1, W2=W2, loss=float(loss), grad_norm=float(np.linalg.norm(grad)),
                       rel_grad_norm=float(rel), converged=bool(converged), n_iter=run.n_iter,
                       n_eval=fun.evaluations, wall_time=run.elapsed(), message=message,
                       gtol=run.gtol, stages=run.stages, history=run.history, **fields)
