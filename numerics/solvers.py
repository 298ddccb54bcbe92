"""Full-batch optimisation of the exact loss eq. (6), and many random starts of it.

`train` minimises eq. (6) — evaluated exactly by `numerics.objective` — with SciPy's
L-BFGS-B (restarted with fresh memory when it stalls) and, if that is not enough, a
trust-region Newton–Krylov polish whose Hessian-vector products are central differences
of the exact gradient. It stops when the relative gradient norm ``‖∇L‖_F / L0`` is at
most ``gtol`` (default 1e-8), where ``L0 = (1/n) Σ_i ‖x_i‖²`` is the loss of the zero
network (`loss_scale`). The ratio is
dimensionless: tied weights are scale free (``W Wᵀ`` is a map from data space to itself),
so ``‖∇L‖`` is measured in units of ``L0``.

`multistart` runs `train` from many random initialisations over worker processes and
reports the distribution of final losses and structures (`column_structure`: neurons per
cluster, memorising columns) — the numerical evidence on the global minimiser. Finished
starts are checkpointed atomically and skipped on resume; an unfinished start resumes
from its last saved iterate.

>>> from numerics.data import memorization_set
>>> X = memorization_set(6, 3, norm=3.0, seed=0)       # pairwise cosine −1/2 (Cor. 3.2)
>>> fit = train(X, p=4, sigma=0.2, lam=0.01, seed=0, tied=True)
>>> fit.converged, fit.rel_grad_norm <= 1e-8
(True, True)
>>> column_structure(fit.W1, fit.W2, X)["n_memorized"]
3
"""
from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import time
from dataclasses import dataclass, field

import numpy as np
import scipy.optimize

from numerics.checkpoint import (
    fingerprint,
    load_checkpoint,
    progress_bar,
    save_checkpoint,
    single_blas_thread,
)
from numerics.validation import as_matrix, labels_for, nonnegative, positive_int


def _objective():
    from numerics import objective

    return objective


class _PolishBreakdown(Exception):
    """The trust-region polish produced a non-finite point (see `train`)."""


def loss_scale(X) -> float:
    """``L0 = (1/n) Σ_i ‖x_i‖²``: eq. (6) at W = 0, the unit of `TrainResult.rel_grad_norm`."""
    X = np.asarray(X, dtype=np.float64)
    value = float(np.sum(X * X) / X.shape[1])
    return value if value > 0 else 1.0


# ----------------------------------------------------------------------------- parameters


class _Packing:
    """Flattening of (W1, W2) — or of W when tied — into SciPy's parameter vector."""

    def __init__(self, d: int, p: int, tied: bool):
        self.d, self.p, self.tied = d, p, tied
        self.size = d * p * (1 if tied else 2)

    def pack(self, W1, W2) -> np.ndarray:
        if self.tied:
            return np.array(W1, dtype=np.float64).ravel()
        return np.concatenate([np.ravel(W1), np.ravel(W2)]).astype(np.float64)

    def unpack(self, theta):
        dp = self.d * self.p
        W1 = theta[:dp].reshape(self.d, self.p)
        return (W1, W1) if self.tied else (W1, theta[dp:].reshape(self.d, self.p))

    def grad(self, gW1, gW2) -> np.ndarray:
        if self.tied:
            return (gW1 + gW2).ravel()
        return np.concatenate([gW1.ravel(), gW2.ravel()])


def random_init(d, p, *, tied=False, seed=0, scale=None):
    """Random (W1, W2): i.i.d. U(−s, s) entries with ``s = 1/√d`` (PyTorch's encoder default).

    ``scale`` overrides s. Tied returns the same array twice.
    """
    d = positive_int("d", d)
    p = positive_int("p", p)
    rng = np.random.default_rng(seed)
    s = 1.0 / np.sqrt(d) if scale is None else nonnegative("scale", scale)
    W1 = rng.uniform(-s, s, size=(d, p))
    if tied:
        return W1, W1
    return W1, rng.uniform(-s, s, size=(d, p))


def _initial_weights(init, d, p, tied, seed, perturb, init_scale):
    rng = np.random.default_rng(seed)
    if isinstance(init, str):
        if init != "random":
            raise ValueError(f"init must be 'random', a (d, p) array W, or a pair (W1, W2); got {init!r}")
        W1, W2 = random_init(d, p, tied=tied, seed=rng, scale=init_scale)
        label = "random"
    else:
        if isinstance(init, (tuple, list)) and len(init) == 2:
            W1 = as_matrix("init[0]", init[0], rows=d, cols=p, cols_name="p")
            W2 = as_matrix("init[1]", init[1], rows=d, cols=p, cols_name="p")
        else:
            W1 = as_matrix("init", init, rows=d, cols=p, cols_name="p")
            W2 = W1
        if tied and not np.array_equal(W1, W2):
            raise ValueError("init must have W1 == W2 when tied=True")
        W1, W2 = W1.copy(), W2.copy()
        label = "given"
    if perturb:
        perturb = nonnegative("perturb", perturb)
        # Relative perturbation: Gaussian noise with Frobenius norm perturb·‖W‖_F.
        for W in ((W1,) if tied else (W1, W2)):
            noise = rng.standard_normal(W.shape)
            W += perturb * max(np.linalg.norm(W), 1e-12) * noise / np.linalg.norm(noise)
        if tied:
            W2 = W1
        label += f"+perturb({perturb:g})"
    return W1, (W1 if tied else W2), label


# ----------------------------------------------------------------------------- reduction


def orthonormal_span(A, tol=1e-10, reference=None) -> np.ndarray:
    """Orthonormal basis (d, r) of the column space of A: singular values > tol·reference.

    ``reference`` defaults to A's largest singular value; pass the scale of the quantity A
    was computed from when A may be pure rounding (e.g. a projection residual).
    """
    A = np.asarray(A, dtype=np.float64)
    if A.size == 0:
        return np.zeros((A.shape[0], 0))
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
    """
    Q = orthonormal_span(X, tol)
    weights = [np.asarray(W, dtype=np.float64) for W in weights if W is not None]
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
        for _ in range(int(extra)):
            if Q.shape[1] >= d:
                break
            v = rng.standard_normal(d)
            for _ in range(2):                 # twice for orthogonality to rounding
                v -= Q @ (Q.T @ v)
            Q = np.hstack([Q, (v / np.linalg.norm(v))[:, None]])
    return Q


def _mc_warmup(V1, V2, C, sigma, lam, tied, steps, lr, batch, seed):
    """Adam on one-draw Monte-Carlo minibatch gradients of eq. (6), a cheap way into a basin.

    The learning rate decays linearly from ``lr`` to 0 over ``steps`` (annealing removes the
    Monte-Carlo noise floor a constant rate leaves). The steps run in float32, as the
    authors' PyTorch code does: its rounding (1e-7 relative) is far below the Monte-Carlo
    noise, and the exact float64 optimisation takes over afterwards.
    """
    from numerics.protocol import Adam, minibatch_mse_and_grad

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
            _, grads = minibatch_mse_and_grad(params[0], params[-1], Cb, noise[:, :Cb.shape[1]],
                                              sigma, tied)
            # minibatch_mse_and_grad divides by (k·B); eq. (6) divides by B only.
            grads = [np.float32(k) * g + decay * w for g, w in zip(grads, params)]
            opt.lr = lr * (1.0 - step / steps)
            opt.step(params, grads)
    params = [w.astype(np.float64) for w in params]
    return (params[0], params[0]) if tied else (params[0], params[1])


# ----------------------------------------------------------------------------- train


@dataclass
class TrainResult:
    """Outcome of `train`.

    ``W1, W2``: final weights (d, p) (the same array when tied); ``loss``: exact eq. (6);
    ``grad_norm``: ``‖∇L‖_F`` (w.r.t. W when tied, else w.r.t. (W1, W2));
    ``rel_grad_norm = grad_norm / loss_scale(X)``; ``converged``: ``rel_grad_norm <= gtol``;
    ``n_iter``/``n_eval``: optimiser iterations and exact loss+gradient evaluations;
    ``stages``: which optimisers ran; ``history``: (evaluations, seconds, loss, rel. grad.)
    at the exact optimisation's starting point and after each iteration. A converged run
    returns a point with ``rel_grad_norm <= gtol``; one that stopped early (``max_time``,
    ``max_iter``) returns the lowest-loss point it evaluated.
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


class _Counted:
    """Exact loss and gradient on the packed vector, with a one-entry cache and counters."""

    def __init__(self, X, sigma, lam, packing, scale):
        self.X, self.sigma, self.lam, self.packing, self.scale = X, sigma, lam, packing, scale
        self.evaluations = 0
        self.last = None
        self.best = None       # smallest relative gradient norm: the convergence test
        self.lowest = None     # lowest loss: what an unconverged run returns
        self.objective = _objective()

    def __call__(self, theta):
        if self.last is not None and np.array_equal(theta, self.last[0]):
            return self.last[1], self.last[2]
        W1, W2 = self.packing.unpack(theta)
        loss, gW1, gW2 = self.objective.expected_loss_and_grad(W1, W2, self.X, self.sigma, self.lam)
        grad = self.packing.grad(gW1, gW2)
        self.evaluations += 1
        point = theta.copy()       # shared by the records below; never modified in place
        self.last = (point, float(loss), grad)
        rel = float(np.linalg.norm(grad)) / self.scale
        if self.best is None or rel < self.best[2] or (rel == self.best[2] and loss < self.best[1]):
            self.best = (point, float(loss), rel, grad)
        if self.lowest is None or loss < self.lowest[1]:
            self.lowest = (point, float(loss), rel, grad)
        return float(loss), grad

    def hessp(self, theta, vector, step_rel=1e-5):
        """Central difference of the exact gradient; step = step_rel·max(‖θ‖, 1)/‖v‖."""
        if not (np.all(np.isfinite(theta)) and np.all(np.isfinite(vector))):
            raise _PolishBreakdown("non-finite trust-region direction")
        norm = np.linalg.norm(vector)
        if norm == 0.0:
            return np.zeros_like(vector)
        h = step_rel * max(np.linalg.norm(theta), 1.0) / norm
        _, plus = self(theta + h * vector)
        _, minus = self(theta - h * vector)
        return (plus - minus) / (2.0 * h)


def _given_hessp(factory, fun, packing):
    """SciPy's ``hessp(theta, v)`` from a product factory (see `train`), one product per point."""
    cache = {}

    def hessp(theta, vector):
        if "theta" not in cache or not np.array_equal(theta, cache["theta"]):
            W1, W2 = packing.unpack(theta)
            cache.update(theta=theta.copy(), product=factory(W1, W2, fun.X, fun.sigma, fun.lam, packing.tied))
        V1, V2 = packing.unpack(np.asarray(vector, dtype=np.float64))
        if packing.tied:
            return cache["product"](V1).ravel()
        return packing.grad(*cache["product"](V1, V2))

    return hessp


def train(X, p, sigma, lam, seed=0, *, tied=False, init="random", perturb=0.0, init_scale=None,
          gtol=1e-8, max_iter=20_000, max_time=None, maxcor=30, restarts=3, polish=True, polish_iter=200,
          reduce=True, warmup_steps=0, warmup_lr=3e-3, warmup_batch=256,
          checkpoint=None, checkpoint_every=60.0, progress=None, hessp=None) -> TrainResult:
    """Minimise eq. (6) exactly, full batch, from a random or given start, to ``‖∇L‖/L0 ≤ gtol``.

    ``X`` (d, n), samples as columns; ``p`` neurons; ``tied`` optimises one W with
    W1 = W2 = W. ``init``: ``"random"`` (default, `random_init` with ``seed``), a (d, p)
    array, or a pair (W1, W2) — e.g. a theory prediction; ``perturb`` adds Gaussian noise of
    relative Frobenius size ``perturb`` (perturbed-predicted starts). Stage 1 is L-BFGS-B
    (``maxcor`` pairs, ``max_iter`` iterations in all), restarted with fresh memory from its
    lowest point up to ``restarts`` times while each restart at least halves the gradient
    norm; if it still stops above ``gtol``, stage 2 is SciPy's ``trust-krylov`` with
    finite-difference Hessian-vector products. ``checkpoint=(folder, name)`` saves the
    current iterate every ``checkpoint_every`` seconds and resumes from it.

    ``reduce=True`` runs the same iterations in the basis of `invariant_basis` (data span
    plus the initial weights' components outside it) whenever that is smaller than d — an
    exact change of coordinates, not an approximation (L-BFGS is rotation-equivariant).
    ``warmup_steps > 0`` first takes that many float32 Adam steps on one-draw Monte-Carlo
    minibatch gradients (``warmup_batch``) of eq. (6) from the initialisation, the learning
    rate decaying linearly from ``warmup_lr`` to 0; the exact optimisation then starts there
    (stage ``"mc-warmup"``). Training runs with one BLAS thread (the objective's numba kernel
    uses the cores). ``hessp``: a factory ``(W1, W2, X, sigma, lam, tied) → product`` of exact
    Hessian-vector products (e.g. `numerics.newton.exact_hessp`) for the trust-region stage,
    instead of central differences of the gradient.

    >>> import numpy as np
    >>> X = np.array([[2.0, -1.0], [0.0, 1.5], [1.0, 0.5]])
    >>> train(X, 2, 0.1, 0.0, seed=1, tied=True).converged
    True
    """
    X = as_matrix("X", X, cols_name="n")
    d, _ = X.shape
    p = positive_int("p", p)
    sigma = nonnegative("sigma", sigma, symbol="σ")
    lam = nonnegative("lam", lam, symbol="λ")
    gtol = nonnegative("gtol", gtol)
    seed = positive_int("seed", seed, minimum=0)
    restarts = positive_int("restarts", restarts, minimum=0)
    tied = bool(tied)
    W1, W2, init_label = _initial_weights(init, d, p, tied, seed, perturb, init_scale)
    started = time.perf_counter()
    history: list = []
    stages: list = []
    n_iter = 0
    key = None
    if checkpoint is not None:
        key = fingerprint(X, W1, W2, p=p, sigma=sigma, lam=lam, tied=tied, gtol=gtol,
                          warmup=[int(warmup_steps), float(warmup_lr), int(warmup_batch)])
    basis = None
    if reduce:
        basis = invariant_basis(X, W1, None if tied else W2)
        if basis.shape[1] >= d:
            basis = None
    if basis is not None:
        C = basis.T @ X
        V1 = basis.T @ W1
        V2 = V1 if tied else basis.T @ W2
        stages.append(f"reduced d={d}->{basis.shape[1]}")
    else:
        C, V1, V2 = X, W1, W2
    k = C.shape[0]
    packing = _Packing(k, p, tied)
    scale = loss_scale(X)
    fun = _Counted(C, sigma, lam, packing, scale)
    theta0 = None
    if checkpoint is not None:
        saved = load_checkpoint(*checkpoint)
        if saved is not None:
            arrays, meta = saved
            if meta.get("fingerprint") != key:
                raise ValueError(f"checkpoint {checkpoint} belongs to another run")
            theta0 = arrays["theta"]
            n_iter = int(meta.get("n_iter", 0))
            stages.append(f"resumed@{n_iter}")
    if theta0 is None:
        if warmup_steps:
            with single_blas_thread():
                V1, V2 = _mc_warmup(V1, V2, C, sigma, lam, tied,
                                    positive_int("warmup_steps", warmup_steps), float(warmup_lr),
                                    positive_int("warmup_batch", warmup_batch), seed)
            stages.append(f"mc-warmup({int(warmup_steps)})")
        theta0 = packing.pack(V1, V2)
    last_save = [time.perf_counter()]

    def save(theta):
        if checkpoint is not None:
            save_checkpoint(checkpoint[0], checkpoint[1], {"theta": theta},
                            {"fingerprint": key, "n_iter": n_iter, "seed": seed})
            last_save[0] = time.perf_counter()

    bar = progress_bar(progress, desc="train", unit="it", mininterval=1.0)

    def record(theta, loss):
        nonlocal n_iter
        n_iter += 1
        _, grad = fun(theta)
        rel = float(np.linalg.norm(grad)) / scale
        history.append((fun.evaluations, time.perf_counter() - started, float(loss), rel))
        bar.update(1)
        bar.set_postfix(loss=f"{loss:.6g}", rel_grad=f"{rel:.1e}", refresh=False)
        if checkpoint is not None and time.perf_counter() - last_save[0] > checkpoint_every:
            save(theta)
        if rel <= gtol:
            raise StopIteration
        if max_time is not None and time.perf_counter() - started > max_time:
            raise StopIteration

    def lbfgs_callback(intermediate_result):
        record(intermediate_result.x, intermediate_result.fun)

    message = ""
    # One BLAS thread: the objective parallelises itself (numba); threaded BLAS on the solver's
    # small products and vector operations cost 6× per iteration at d = 1024, p = 100, n = 5.
    with single_blas_thread():
        try:
            loss0, grad0 = fun(theta0)
            history.append((fun.evaluations, time.perf_counter() - started, loss0,
                            float(np.linalg.norm(grad0)) / scale))
            start = theta0
            for attempt in range(1 + restarts):
                timed_out = max_time is not None and time.perf_counter() - started > max_time
                if fun.best[2] <= gtol or timed_out or n_iter >= max_iter:
                    break
                before = fun.best[2]
                stages.append("L-BFGS-B" if attempt == 0 else "L-BFGS-B restart")
                out = scipy.optimize.minimize(
                    fun, start, jac=True, method="L-BFGS-B", callback=lbfgs_callback,
                    options=dict(maxiter=max_iter - n_iter, maxfun=10 * max_iter, maxcor=maxcor,
                                 ftol=0.0, gtol=0.0, maxls=50))
                message = str(out.message)
                # L-BFGS stops when its line search makes no progress, often because its
                # curvature pairs went stale; fresh memory from the lowest point usually
                # moves on. Restarts end when one no longer halves the gradient norm.
                if attempt > 0 and fun.best[2] > 0.5 * before:
                    break
                start = fun.lowest[0]
            timed_out = max_time is not None and time.perf_counter() - started > max_time
            if polish and fun.best[2] > gtol and not timed_out:
                stages.append("trust-krylov")
                theta = fun.best[0]

                def trust_callback(intermediate_result):
                    record(intermediate_result.x, intermediate_result.fun)

                try:
                    out = scipy.optimize.minimize(
                        fun, theta, jac=True, method="trust-krylov",
                        hessp=fun.hessp if hessp is None else _given_hessp(hessp, fun, packing),
                        callback=trust_callback,
                        options=dict(maxiter=polish_iter, gtol=gtol * scale * 0.5))
                    message = str(out.message)
                except _PolishBreakdown:
                    # SciPy's trust-region subproblem solver (trlib) can return NaN directions
                    # on nearly singular Hessians; the best iterate so far is kept.
                    message = "trust-krylov polish stopped on a non-finite direction; best iterate kept"
        finally:
            bar.close()
    converged = fun.best[2] <= gtol
    theta, loss, rel, grad = fun.best if converged else fun.lowest
    save(theta)
    if converged:
        message = f"converged: relative gradient norm {rel:.2e} <= {gtol:.0e}"
    elif max_time is not None and time.perf_counter() - started > max_time:
        message = f"stopped at max_time={max_time} s: relative gradient norm {rel:.2e}; {message}"
    V1, V2 = packing.unpack(theta)
    if basis is not None:
        W1 = basis @ V1
        W2 = W1 if tied else basis @ V2
    else:
        W1 = V1.copy()
        W2 = W1 if tied else V2.copy()
    return TrainResult(W1=W1, W2=W2, loss=float(loss), grad_norm=float(np.linalg.norm(grad)),
                       rel_grad_norm=float(rel), converged=bool(converged), n_iter=n_iter,
                       n_eval=fun.evaluations, wall_time=time.perf_counter() - started,
                       message=message, seed=seed, tied=tied, sigma=sigma, lam=lam,
                       init=init_label, gtol=gtol, stages=stages, history=history)


# ----------------------------------------------------------------------------- structure


ZERO_TOL = 1e-6


def column_sizes(W1, W2) -> np.ndarray:
    """``max(‖w1_j‖, ‖w2_j‖)`` per column j."""
    return np.maximum(np.linalg.norm(W1, axis=0), np.linalg.norm(W2, axis=0))


def zero_columns(W1, W2, zero_tol=ZERO_TOL) -> np.ndarray:
    """Boolean mask of columns j with ``max(‖w1_j‖, ‖w2_j‖) <= zero_tol · max_k (same)``."""
    size = column_sizes(W1, W2)
    top = float(size.max()) if size.size else 0.0
    if top == 0.0:
        return np.ones(size.shape, dtype=bool)
    return size <= zero_tol * top


def column_structure(W1, W2, X, labels=None, *, cos_threshold=0.99, zero_tol=ZERO_TOL) -> dict:
    """Which neuron serves which cluster, and which samples are memorised (THEORY.md Cor. 3.2–3.4).

    A live column j (not `zero_columns`) is *active* on sample i when ``w1_jᵀx_i > 0``. With
    ``labels`` (one per column of X), column j belongs to cluster k when all samples it is
    active on are in cluster k; ``mixed`` when they span several clusters, ``idle`` when
    there are none. Without labels every sample is its own cluster. Sample i is *memorised*
    when some live column has ``cos∠(w1_j, x_i) >= cos_threshold``.

    Returns a dict: ``n_live``, ``n_zero``, ``n_idle``, ``n_mixed``, ``cluster_of_column``
    (label, −1 zero, −2 idle, −3 mixed), ``neurons_per_cluster`` {label: count},
    ``max_cosine`` (n,), ``owner`` (n,) column index of the best cosine, ``memorized`` (n,)
    bool, ``n_memorized``, ``n_memorizing_columns``.
    """
    X = as_matrix("X", X, cols_name="n")
    W1 = as_matrix("W1", W1, rows=X.shape[0], cols_name="p")
    W2 = as_matrix("W2", W2, rows=X.shape[0], cols=W1.shape[1], cols_name="p")
    n = X.shape[1]
    labels = np.arange(n) if labels is None else labels_for("labels", labels, n)
    zero = zero_columns(W1, W2, zero_tol)
    active = (W1.T @ X) > 0.0
    cluster_of = np.full(W1.shape[1], -1, dtype=np.int64)
    for j in np.flatnonzero(~zero):
        owners = np.unique(labels[active[j]])
        cluster_of[j] = -2 if owners.size == 0 else (owners[0] if owners.size == 1 else -3)
    norms1 = np.linalg.norm(W1, axis=0)
    norms_x = np.linalg.norm(X, axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        cosine = (W1.T @ X) / np.outer(norms1, norms_x)
    cosine = np.where(np.isfinite(cosine), cosine, -np.inf)
    cosine[zero] = -np.inf
    owner = np.argmax(cosine, axis=0)
    best = cosine[owner, np.arange(n)]
    memorized = best >= cos_threshold
    per_cluster = {int(k): int(np.sum(cluster_of == k)) for k in np.unique(labels)}
    return dict(n_live=int(np.sum(~zero)), n_zero=int(np.sum(zero)),
                n_idle=int(np.sum(cluster_of == -2)), n_mixed=int(np.sum(cluster_of == -3)),
                cluster_of_column=cluster_of, neurons_per_cluster=per_cluster,
                max_cosine=best, owner=owner, memorized=memorized,
                n_memorized=int(memorized.sum()),
                n_memorizing_columns=int(np.unique(owner[memorized]).size))


def cluster_maps(W1, W2, X, labels, *, zero_tol=ZERO_TOL) -> dict:
    """Per-cluster linear maps ``A_k = Σ_{j in cluster k} w2_j w1_jᵀ`` (the block's W2 W1ᵀ, eq. 8).

    Columns are assigned by `column_structure`; returns {label: (d, d) array}.
    """
    info = column_structure(W1, W2, X, labels, zero_tol=zero_tol)
    maps = {}
    for k in info["neurons_per_cluster"]:
        J = info["cluster_of_column"] == k
        maps[k] = W2[:, J] @ W1[:, J].T
    return maps


# ----------------------------------------------------------------------------- multistart


@dataclass
class MultistartResult:
    """Outcome of `multistart`: one entry per start, in start order.

    ``seeds`` the train seeds; ``losses``, ``rel_grad_norms``, ``converged`` per start;
    ``structures`` per start: (n_memorized, neurons per cluster as a sorted tuple of
    (label, count), n_zero, n_mixed); ``best_index`` the lowest loss; ``best_W1``,
    ``best_W2`` its weights; ``computed`` how many starts ran in this call (the rest came
    from checkpoints); ``wall_time`` of this call.
    """
    seeds: np.ndarray
    losses: np.ndarray
    rel_grad_norms: np.ndarray
    converged: np.ndarray
    structures: list
    best_index: int
    best_W1: np.ndarray
    best_W2: np.ndarray
    computed: int
    wall_time: float
    summaries: list

    def loss_levels(self, rtol=1e-6):
        """Distinct final-loss levels (within ``rtol``), ascending, with how many starts reached each."""
        order = np.sort(self.losses)
        levels: list = []
        for value in order:
            if levels and abs(value - levels[-1][0]) <= rtol * max(abs(levels[-1][0]), 1e-300):
                levels[-1][1] += 1
            else:
                levels.append([float(value), 1])
        return [(value, count) for value, count in levels]

    def structure_counts(self) -> dict:
        """{structure: number of starts} — how often each allocation was found."""
        counts: dict = {}
        for s in self.structures:
            counts[s] = counts.get(s, 0) + 1
        return counts


_WORKER: dict = {}


def _worker_init(X, labels):
    try:
        import numba

        numba.set_num_threads(1)
    except (ImportError, ValueError):
        pass
    _WORKER["X"] = X
    _WORKER["labels"] = labels


def _structure_key(info) -> tuple:
    return (info["n_memorized"], tuple(sorted(info["neurons_per_cluster"].items())),
            info["n_zero"], info["n_mixed"])


def _run_start(index, seed, p, sigma, lam, train_kwargs, folder, key):
    X, labels = _WORKER["X"], _WORKER["labels"]
    partial = None if folder is None else (folder, f"partial_{index:04d}")
    fit = train(X, p, sigma, lam, seed=int(seed), checkpoint=partial, progress=False, **train_kwargs)
    info = column_structure(fit.W1, fit.W2, X, labels)
    summary = fit.summary()
    summary.update(index=index, fingerprint=key, structure=_structure_key(info),
                   neurons_per_cluster=info["neurons_per_cluster"], n_memorized=info["n_memorized"])
    if folder is not None:
        save_checkpoint(folder, f"start_{index:04d}", {"W1": fit.W1, "W2": fit.W2}, summary)
        for suffix in (".npz", ".json"):
            path = os.path.join(folder, f"partial_{index:04d}{suffix}")
            if os.path.exists(path):
                os.remove(path)
    return index, summary, fit.W1, fit.W2


def multistart(X, p, sigma, lam, n_starts=32, *, seed=0, labels=None, workers=2,
               checkpoint_dir=None, progress=None, **train_kwargs) -> MultistartResult:
    """Run `train` from ``n_starts`` random initialisations on ``workers`` processes.

    Start k uses ``train(..., seed=s_k)`` with ``s_k`` drawn from ``SeedSequence(seed)``.
    ``checkpoint_dir``: each finished start is saved there atomically (``start_K.npz`` +
    ``.json`` with its parameters and summary); a second call with the same arguments skips
    them, and a start interrupted midway resumes from its last iterate
    (``partial_K``, saved every ``checkpoint_every`` seconds of `train`). Workers use one
    numba and one BLAS thread each.

    >>> import numpy as np
    >>> X = 2.0 * np.eye(4)[:, :2]
    >>> out = multistart(X, 3, 0.2, 0.01, n_starts=2, workers=1, tied=True)
    >>> out.losses.shape
    (2,)
    """
    X = as_matrix("X", X, cols_name="n")
    p = positive_int("p", p)
    n_starts = positive_int("n_starts", n_starts)
    workers = positive_int("workers", workers)
    sigma = nonnegative("sigma", sigma, symbol="σ")
    lam = nonnegative("lam", lam, symbol="λ")
    if labels is not None:
        labels = labels_for("labels", labels, X.shape[1])
    seeds = np.random.SeedSequence(positive_int("seed", seed, minimum=0)).generate_state(n_starts)
    key = fingerprint(X, p=p, sigma=sigma, lam=lam, seed=seed,
                      train={k: v for k, v in sorted(train_kwargs.items()) if k != "progress"})
    started = time.perf_counter()
    results: dict = {}
    if checkpoint_dir is not None:
        for index in range(n_starts):
            saved = load_checkpoint(checkpoint_dir, f"start_{index:04d}")
            if saved is None:
                continue
            arrays, meta = saved
            if meta.get("fingerprint") != key:
                raise ValueError(f"{checkpoint_dir} holds starts of another run "
                                 f"(fingerprint {meta.get('fingerprint')} != {key}); "
                                 "use a fresh checkpoint_dir")
            meta["structure"] = tuple((meta["structure"][0], tuple(tuple(x) for x in meta["structure"][1]),
                                       meta["structure"][2], meta["structure"][3]))
            results[index] = (meta, arrays["W1"], arrays["W2"])
    todo = [k for k in range(n_starts) if k not in results]
    with progress_bar(progress, total=n_starts, initial=n_starts - len(todo), desc="multistart") as bar:
        if workers == 1 or len(todo) <= 1:
            _worker_init(X, labels)
            for index in todo:
                i, summary, W1, W2 = _run_start(index, seeds[index], p, sigma, lam, train_kwargs,
                                                checkpoint_dir, key)
                results[i] = (summary, W1, W2)
                bar.update(1)
        elif todo:
            saved_env = {name: os.environ.get(name) for name in
                         ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
            os.environ.update({name: "1" for name in saved_env})
            try:
                context = multiprocessing.get_context("spawn")
                with concurrent.futures.ProcessPoolExecutor(
                        max_workers=workers, mp_context=context, initializer=_worker_init,
                        initargs=(X, labels)) as pool:
                    futures = [pool.submit(_run_start, index, seeds[index], p, sigma, lam,
                                           train_kwargs, checkpoint_dir, key) for index in todo]
                    for future in concurrent.futures.as_completed(futures):
                        i, summary, W1, W2 = future.result()
                        results[i] = (summary, W1, W2)
                        bar.update(1)
            finally:
                for name, value in saved_env.items():
                    if value is None:
                        os.environ.pop(name, None)
                    else:
                        os.environ[name] = value
    summaries = [results[k][0] for k in range(n_starts)]
    losses = np.array([s["loss"] for s in summaries])
    best = int(np.argmin(losses))
    return MultistartResult(
        seeds=np.asarray(seeds, dtype=np.int64), losses=losses,
        rel_grad_norms=np.array([s["rel_grad_norm"] for s in summaries]),
        converged=np.array([bool(s["converged"]) for s in summaries]),
        structures=[tuple(s["structure"]) for s in summaries], best_index=best,
        best_W1=results[best][1], best_W2=results[best][2], computed=len(todo),
        wall_time=time.perf_counter() - started, summaries=summaries)


def __getattr__(name):
    # `numerics.solvers.certify` is the name in ARCHITECTURE.md; it lives in numerics.certify,
    # which imports this module, so it is looked up on first use.
    if name == "certify":
        from numerics.certify import certify

        return certify
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
