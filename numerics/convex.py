"""Convex certificates (cvxpy, solver CLARABEL): the linear block exactly, small ReLU-DAEs from below.

(a) **Linear block** (Lemma D.1). With ``A = W2 W1ᵀ`` the block loss
``L̂ = ‖W2W1ᵀX − X‖_F² + nσ²‖W2W1ᵀ‖_F² + λ'(‖W1‖_F² + ‖W2‖_F²)`` minimised over the factors
for fixed A is ``f(A) = ‖AX − X‖_F² + nσ²‖A‖_F² + 2λ'‖A‖_*`` (``min {‖W1‖² + ‖W2‖² :
W2W1ᵀ = A} = 2‖A‖_*``, attained by balanced factors of rank(A) ≤ p columns). f is convex;
in the eigenbasis of ``XXᵀ = UΛUᵀ`` it separates into ``a²(Λ + nσ²) − 2aΛ + 2λ'|a| + Λ``
per direction, minimised at ``a = (Λ − λ')_+/(Λ + nσ²)`` with value
``Λ − (Λ − λ')_+²/(Λ + nσ²)``. Hence

``min f = tr(XXᵀ) − Σ_j (Λ_j − λ')_+² / (Λ_j + nσ²)``,

which is Lemma D.1's optimum (``W2W1ᵀ = U diag(a_j) Uᵀ``) **provided p ≥ #{j : Λ_j > λ'}**;
for smaller p the factored problem keeps only the top p terms of the sum
(`lemma_d1_optimum` with ``p``) and the convex value is a strict lower bound. In Theorem
3.1 the block of cluster k has ``n = n_k`` in the noise term and ``λ' = nλ`` (total n).

(b) **ReLU-DAE lower bound** (Pilanci & Ergen 2020; Sahiner et al. 2021 for vector
outputs). Fix R noise draws per sample: inputs ``Y = [x_i + σε_ir]`` (d × N, N = nR),
targets ``T = [x_i]``; the sampled objective is
``L_s(W1, W2) = (1/N)‖W2[W1ᵀY]_+ − T‖_F² + λ(‖W1‖_F² + ‖W2‖_F²)`` — eq. (6) with the
expectation replaced by R draws. Each neuron j acts through its activation pattern
``D_j = diag(1[Yᵀw1_j ≥ 0])``: ``F = Σ_j w2_j w1_jᵀ Y D_j``. Grouping neurons by pattern,
``M_P = Σ_{j∈P} w2_j w1_jᵀ`` and ``λ(‖w1_j‖² + ‖w2_j‖²) ≥ 2λ‖w1_j‖‖w2_j‖``,
``c_P = Σ_{j∈P} ‖w1_j‖‖w2_j‖``, so for **every** width p

``min L_s ≥ B = min (1/N)‖Σ_P M_P Y D_P − T‖_F² + 2λ Σ_P c_P``

over ``M_P = (C_P⁺ − C_P⁻)ᵀ`` with every column of ``C_P^±`` in the pattern's cone
``K_P = {u : (2D_P − I)Yᵀu ≥ 0}`` and ``c_P ≥ ‖M_P‖_*``, ``c_P ≥ (‖C_P⁺‖_* + ‖C_P⁻‖_*)/√2``;
P runs over all patterns of the hyperplane arrangement of Y's columns (enumerated exactly
for d ≤ 3: every cell has a vertex where d−1 of the hyperplanes meet). Validity: split
``w2_j = w2_j⁺ − w2_j⁻`` entry-wise and set ``C_P^± = Σ_{j∈P} w1_j (w2_j^±)ᵀ`` — each column
is a non-negative combination of ``w1_j ∈ K_P``; ``‖M_P‖_* ≤ c_P`` and
``‖C_P^±‖_* ≤ Σ_j ‖w1_j‖‖w2_j^±‖`` with ``‖w2⁺‖ + ‖w2⁻‖ ≤ √2‖w2‖``. Without the second
bound on c_P the relaxation lets C⁺ and C⁻ cancel at no cost and the bound collapses (on
the test instance it drops from within 4 % of the solver's loss to 40 % of it). This
relaxes Sahiner et al.'s exact copositive program, so B is a lower bound, not
necessarily the optimum. The relaxation's C^± also give a network (one neuron per
column) that seeds the solver side. The report gives B, the best loss that
L-BFGS finds on L_s (from this package's exact-objective minimiser and random starts),
and the gap.

>>> import numpy as np
>>> X = np.random.default_rng(0).normal(size=(3, 5))
>>> cert = linear_block_certificate(X, sigma=0.3, lam_prime=0.5)
>>> bool(cert.rel_error < 1e-6)
True
"""
from __future__ import annotations

import itertools
import time
from dataclasses import dataclass

import numpy as np
import scipy.optimize

from numerics.validation import (as_matrix, as_rng, data_and_weights, data_matrix, flag, nonnegative,
                                 loss_magnitude, positive_int, power_fits, weights_pair)

__all__ = ["lemma_d1_optimum", "block_loss", "linear_block_certificate", "LinearBlockCertificate",
           "noisy_inputs", "activation_patterns", "sampled_patterns", "sampled_loss_and_grad",
           "minimize_sampled", "relu_lower_bound", "ReluBound"]


def _cvxpy():
    import cvxpy as cp

    return cp


# CLARABEL stops when |primal − dual| <= GAP_ABS + GAP_REL·min(|primal|, |dual|).
GAP_ABS = GAP_REL = 1e-8


def _solve(problem, data_name: str, data, tight=False):
    """CLARABEL on ``problem``; a solver failure is reported as a ValueError about the data's scale."""
    cp = _cvxpy()
    tolerance = 1e-10 if tight else GAP_ABS
    try:
        problem.solve(solver=cp.CLARABEL, tol_gap_abs=tolerance, tol_gap_rel=tolerance,
                      tol_feas=tolerance, max_iter=400)
    except cp.error.SolverError as error:
        raise ValueError(f"the conic solver (CLARABEL) failed on this problem: {data_name} has entries up to "
                         f"{float(np.max(np.abs(data))):.3g}; interior-point solvers need data of moderate "
                         f"scale, rescale {data_name}") from error
    return problem


# ----------------------------------------------------------------------------- (a) linear block


def lemma_d1_optimum(X, sigma, lam_prime, p=None):
    """Closed-form optimum of the block loss L̂ over rank-≤p factors (Lemma D.1): ``(value, A)``.

    ``value = tr(XXᵀ) − Σ_{j≤p} (Λ_j − λ')_+²/(Λ_j + nσ²)``, ``A = Σ_{j≤p} a_j u_j u_jᵀ``,
    ``a_j = (Λ_j − λ')_+/(Λ_j + nσ²)``, eigenvalues Λ of XXᵀ in decreasing order;
    ``p=None`` keeps all directions.

    >>> import numpy as np
    >>> value, A = lemma_d1_optimum(np.eye(2) * 2.0, sigma=0.0, lam_prime=0.0)
    >>> round(value, 12), np.allclose(A, np.eye(2))
    (0.0, True)
    """
    X = as_matrix("X", X, cols_name="n")
    power_fits("X", X, 4, "Lemma D.1 (its value squares the eigenvalues of XXᵀ)")
    sigma = nonnegative("sigma", sigma, symbol="σ")
    lam_prime = nonnegative("lam_prime", lam_prime, symbol="λ'")
    n = X.shape[1]
    Lam, U = np.linalg.eigh(X @ X.T)
    Lam, U = np.clip(Lam[::-1], 0.0, None), U[:, ::-1]
    keep = Lam.size if p is None else min(positive_int("p", p, minimum=0), Lam.size)
    gain = np.clip(Lam - lam_prime, 0.0, None)
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.where(gain > 0, gain / (Lam + n * sigma**2), 0.0)
        terms = np.where(gain > 0, gain**2 / (Lam + n * sigma**2), 0.0)
    value = float(np.sum(X * X) - terms[:keep].sum())
    A = (U[:, :keep] * a[:keep]) @ U[:, :keep].T
    return value, A


def block_loss(W1, W2, X, sigma, lam_prime) -> float:
    """The factored block loss L̂ of Lemma D.1 at (W1, W2) (d, p) for the block's data X (d, n).

    >>> block_loss(np.eye(2), np.eye(2), np.eye(2), sigma=0.0, lam_prime=0.5)    # A = I: only decay
    2.0
    """
    X, W1, W2 = data_and_weights(X, W1, W2)
    sigma = nonnegative("sigma", sigma, symbol="σ")
    lam_prime = nonnegative("lam_prime", lam_prime, symbol="λ'")
    loss_magnitude(X, W1, W2, sigma, lam_prime, summed=True)
    A = W2 @ W1.T
    n = X.shape[1]
    return float(np.sum((A @ X - X) ** 2) + n * sigma**2 * np.sum(A * A)
                 + lam_prime * (np.sum(W1 * W1) + np.sum(W2 * W2)))


@dataclass
class LinearBlockCertificate:
    """Result of `linear_block_certificate`.

    ``convex_value`` optimum of the nuclear-norm program; ``lemma_value`` Lemma D.1's closed
    form with ``p``; ``rel_error = |convex − lemma| / lemma``; ``kept`` = #{Λ_j > λ'};
    ``condition`` = ``p ≥ kept`` (when it fails the two values legitimately differ);
    ``A_convex``, ``A_lemma`` the optimal maps; ``status`` the solver status.
    """
    convex_value: float
    lemma_value: float
    rel_error: float
    map_error: float
    kept: int
    p: int
    condition: bool
    A_convex: np.ndarray
    A_lemma: np.ndarray
    status: str
    solve_time: float


def linear_block_certificate(X, sigma, lam_prime, p=None) -> LinearBlockCertificate:
    """Solve ``min_A ‖AX − X‖² + nσ²‖A‖_F² + 2λ'‖A‖_*`` with CLARABEL and compare to Lemma D.1.

    ``p=None`` means p = d (no rank restriction). Returns a `LinearBlockCertificate`.

    >>> X = np.random.default_rng(0).normal(size=(3, 5))          # X (d, n) = (3, 5)
    >>> cert = linear_block_certificate(X, sigma=0.3, lam_prime=0.5)
    >>> cert.condition, bool(cert.rel_error < 1e-6)                 # p = d ≥ kept: the values agree
    (True, True)
    """
    cp = _cvxpy()
    X = as_matrix("X", X, cols_name="n")
    sigma = nonnegative("sigma", sigma, symbol="σ")
    lam_prime = nonnegative("lam_prime", lam_prime, symbol="λ'")
    d, n = X.shape
    p = d if p is None else positive_int("p", p)
    A = cp.Variable((d, d))
    objective = (cp.sum_squares(A @ X - X) + n * sigma**2 * cp.sum_squares(A)
                 + 2.0 * lam_prime * cp.normNuc(A))
    problem = cp.Problem(cp.Minimize(objective))
    tick = time.perf_counter()
    _solve(problem, "X", X, tight=True)
    elapsed = time.perf_counter() - tick
    value, A_lemma = lemma_d1_optimum(X, sigma, lam_prime, p)
    Lam = np.linalg.eigvalsh(X @ X.T)
    kept = int(np.sum(Lam > lam_prime))
    A_convex = np.asarray(A.value)
    return LinearBlockCertificate(
        convex_value=float(problem.value), lemma_value=value,
        rel_error=abs(float(problem.value) - value) / max(abs(value), 1e-300),
        map_error=float(np.linalg.norm(A_convex - A_lemma) / max(np.linalg.norm(A_lemma), 1e-300)),
        kept=kept, p=p, condition=p >= kept, A_convex=A_convex, A_lemma=A_lemma,
        status=str(problem.status), solve_time=elapsed)


# ----------------------------------------------------------------------------- (b) ReLU bound


def noisy_inputs(X, sigma, draws, seed=0):
    """Sampled-noise data set: ``Y = [x_i + σε_ir]``, ``T = [x_i]`` (d, n·draws), draw-major.

    >>> X = np.ones((2, 3))                                         # X (d, n) = (2, 3)
    >>> Y, T = noisy_inputs(X, sigma=0.1, draws=4, seed=0)
    >>> Y.shape, np.array_equal(T[:, :3], X)                        # (d, n·draws), draw-major
    ((2, 12), True)
    """
    X = as_matrix("X", X, cols_name="n")
    sigma = nonnegative("sigma", sigma, symbol="σ")
    draws = positive_int("draws", draws)
    rng = as_rng("seed", seed)
    T = np.tile(X, (1, draws))
    return T + sigma * rng.standard_normal(T.shape), T


def activation_patterns(Y) -> np.ndarray:
    """All activation patterns ``1[Yᵀu ≥ 0]`` of the hyperplane arrangement, for d ≤ 3.

    Every cell of the arrangement of the hyperplanes ``{u : y_kᵀu = 0}`` has in its closure
    a ray where d − 1 of them meet (general position); around that ray the d − 1 signs take
    all 2^{d−1} values and the others are fixed. Returns a boolean (P, N) array of distinct
    non-empty patterns.

    >>> activation_patterns(np.eye(2)).astype(int)    # Y (d, N) = (2, 2): the four quadrants but the all-off one
    array([[0, 1],
           [1, 0],
           [1, 1]])
    """
    Y = as_matrix("Y", Y, cols_name="N")
    d, N = Y.shape
    if d > 3:
        raise ValueError(f"Y must have d <= 3 rows for exact enumeration; got d = {d} "
                         "(use sampled_patterns, which gives no guarantee)")
    found = set()
    for subset in itertools.combinations(range(N), d - 1):
        if d == 1:
            ray = np.ones(1)
        else:
            _, s, Vt = np.linalg.svd(Y[:, subset].T)
            if d - 1 > 0 and s[-1] < 1e-12 * max(s[0], 1e-300):
                continue
            ray = Vt[-1]
        for sign in (1.0, -1.0):
            base = (Y.T @ (sign * ray)) > 0.0
            for bits in itertools.product((False, True), repeat=d - 1):
                pattern = base.copy()
                pattern[list(subset)] = bits
                if pattern.any():
                    found.add(pattern.tobytes())
    return np.array([np.frombuffer(key, dtype=bool) for key in sorted(found)])


def sampled_patterns(Y, count, seed=0) -> np.ndarray:
    """Patterns of ``count`` random directions (no completeness guarantee; any d).

    >>> len(sampled_patterns(np.eye(2), count=100, seed=0))        # the 3 exact patterns of activation_patterns
    3
    """
    Y = as_matrix("Y", Y, cols_name="N")
    rng = as_rng("seed", seed)
    patterns = (rng.standard_normal((positive_int("count", count), Y.shape[0])) @ Y) >= 0
    patterns = np.unique(patterns, axis=0)
    return patterns[patterns.any(axis=1)]


def sampled_loss_and_grad(W1, W2, Y, T, lam):
    """``L_s = (1/N)‖W2[W1ᵀY]_+ − T‖_F² + λ(‖W1‖² + ‖W2‖²)`` and its gradient (ReLU'(0) = 0).

    ``Y`` (d, N) sampled noisy inputs, ``T`` (d, N) their targets (`noisy_inputs`).

    >>> Y = T = np.ones((2, 4))                                     # (d, N) = (2, 4)
    >>> loss, g1, g2 = sampled_loss_and_grad(np.zeros((2, 3)), np.zeros((2, 3)), Y, T, lam=0.1)
    >>> float(loss), g1.shape                                       # W = 0: L_s = ‖T‖²/N = 8/4
    (2.0, (2, 3))
    """
    Y, W1, W2 = data_and_weights(Y, W1, W2, name="Y")
    T = data_matrix("T", T, d=Y.shape[0], n=Y.shape[1], d_source="Y", n_source="the columns of Y")
    lam = nonnegative("lam", lam, symbol="λ")
    loss_magnitude(Y, W1, W2, 0.0, lam, name="Y")
    return _sampled_loss_and_grad(W1, W2, Y, T, lam)


def _sampled_loss_and_grad(W1, W2, Y, T, lam):
    N = Y.shape[1]
    pre = W1.T @ Y
    hidden = np.maximum(pre, 0.0)
    residual = W2 @ hidden - T
    loss = float(np.sum(residual * residual)) / N + lam * (np.sum(W1 * W1) + np.sum(W2 * W2))
    gW2 = 2.0 * residual @ hidden.T / N + 2.0 * lam * W2
    gW1 = 2.0 * Y @ ((W2.T @ residual) * (pre > 0.0)).T / N + 2.0 * lam * W1
    return loss, gW1, gW2


def minimize_sampled(Y, T, p, lam, *, init=None, tied=False, seed=0, max_iter=5000):
    """L-BFGS on the sampled objective L_s from ``init`` (pair) or a random start: (loss, W1, W2).

    >>> loss, W1, W2 = minimize_sampled(np.eye(2), np.eye(2), p=2, lam=0.01, seed=0)   # Y = T (d, N) = (2, 2)
    >>> round(loss, 6), W1.shape                     # one neuron per sample: 4λ(1 − λ) = 0.0396
    (0.0396, (2, 2))
    """
    Y = as_matrix("Y", Y, cols_name="N")
    T = data_matrix("T", T, d=Y.shape[0], n=Y.shape[1], d_source="Y", n_source="the columns of Y")
    p = positive_int("p", p)
    lam = nonnegative("lam", lam, symbol="λ")
    tied = flag("tied", tied)
    max_iter = positive_int("max_iter", max_iter)
    d = Y.shape[0]
    rng = as_rng("seed", seed)
    if init is None:
        W1 = rng.standard_normal((d, p)) / np.sqrt(d)
        W2 = W1.copy() if tied else rng.standard_normal((d, p)) / np.sqrt(d)
    else:
        if not (isinstance(init, (tuple, list)) and len(init) == 2):
            raise TypeError(f"init must be a pair (W1, W2) or None; got {type(init).__name__}")
        W1, W2 = (w.copy() for w in weights_pair(init[0], init[1], d=d, d_source="Y"))
        p = W1.shape[1]
    size = d * p

    def fun(theta):
        A1 = theta[:size].reshape(d, p)
        A2 = A1 if tied else theta[size:].reshape(d, p)
        with np.errstate(over="ignore", invalid="ignore"):
            loss, g1, g2 = _sampled_loss_and_grad(A1, A2, Y, T, lam)
        grad = (g1 + g2).ravel() if tied else np.concatenate([g1.ravel(), g2.ravel()])
        if not (np.isfinite(loss) and np.all(np.isfinite(grad))):
            raise ValueError(f"L_s overflowed float64 during the minimisation (Y entries up to "
                             f"{float(np.max(np.abs(Y))):.3g}, T up to {float(np.max(np.abs(T))):.3g}); "
                             "rescale Y and T")
        return loss, grad

    theta = W1.ravel() if tied else np.concatenate([W1.ravel(), W2.ravel()])
    out = scipy.optimize.minimize(fun, theta, jac=True, method="L-BFGS-B",
                                  options=dict(maxiter=max_iter, ftol=1e-15, gtol=1e-12))
    A1 = out.x[:size].reshape(d, p)
    A2 = A1 if tied else out.x[size:].reshape(d, p)
    return float(out.fun), A1.copy(), A2.copy()


@dataclass
class ReluBound:
    """Result of `relu_lower_bound`.

    ``bound`` B (valid for every width p when ``exact_patterns``; the solver's primal value
    minus its duality-gap tolerance ``GAP_ABS + GAP_REL·|value|``); ``solver_loss`` the best
    L_s found by L-BFGS; ``gap = solver_loss − bound`` (≥ 0 up to solver tolerance when
    exact) and ``rel_gap = gap / solver_loss``; ``n_patterns``; ``N`` sampled inputs;
    ``Y, T`` the sampled data; ``W1, W2`` the best solver weights; ``exact_patterns``
    whether the pattern set is complete; ``status`` the conic solver status.
    """
    bound: float
    solver_loss: float
    gap: float
    rel_gap: float
    n_patterns: int
    N: int
    exact_patterns: bool
    Y: np.ndarray
    T: np.ndarray
    W1: np.ndarray
    W2: np.ndarray
    status: str
    solve_time: float


def _network_from_relaxation(plus, minus):
    """A network realising the relaxation's fit: a neuron (c/√‖c‖, ±√‖c‖ e_k) per column c of C^±."""
    W1, W2 = [], []
    for C_plus, C_minus in zip(plus, minus):
        for C, sign in ((C_plus.value, 1.0), (C_minus.value, -1.0)):
            if C is None:
                return None
            for k in range(C.shape[1]):
                norm = float(np.linalg.norm(C[:, k]))
                if norm > 1e-8:
                    W1.append(C[:, k] / np.sqrt(norm))
                    out = np.zeros(C.shape[0])
                    out[k] = sign * np.sqrt(norm)
                    W2.append(out)
    if not W1:
        return None
    return np.array(W1).T, np.array(W2).T


def relu_lower_bound(X, sigma, lam, p, *, draws=4, seed=0, tied=False, n_random_starts=4,
                     patterns=None, init=None) -> ReluBound:
    """Convex lower bound B of the sampled-noise ReLU-DAE loss and the gap to the solver (module doc).

    ``X`` (d, n) with d ≤ 3 for exact pattern enumeration (``patterns`` may be given
    explicitly otherwise, and ``exact_patterns`` is then False). ``p`` is the width used for
    the solver side; ``init`` an extra (W1, W2) start for it, e.g. `numerics.solvers.train`'s
    result on the exact objective. Tied weights are a restriction, so B bounds them too.

    >>> X = np.random.default_rng(0).normal(size=(2, 3))           # X (d, n) = (2, 3)
    >>> result = relu_lower_bound(X, sigma=0.2, lam=0.05, p=2, draws=2, n_random_starts=0)
    >>> result.exact_patterns, bool(result.bound <= result.solver_loss), bool(result.rel_gap < 0.01)
    (True, True, True)
    """
    cp = _cvxpy()
    X = as_matrix("X", X, cols_name="n")
    sigma = nonnegative("sigma", sigma, symbol="σ")
    lam = nonnegative("lam", lam, symbol="λ")
    p = positive_int("p", p)
    tied = flag("tied", tied)
    n_random_starts = positive_int("n_random_starts", n_random_starts, minimum=0)
    seed = positive_int("seed", seed, minimum=0)
    if init is not None:
        if not (isinstance(init, (tuple, list)) and len(init) == 2):
            raise TypeError(f"init must be a pair (W1, W2) or None; got {type(init).__name__}")
        init = weights_pair(init[0], init[1], d=X.shape[0])
    Y, T = noisy_inputs(X, sigma, draws, seed)
    d, N = Y.shape
    exact = patterns is None
    if exact:
        patterns = activation_patterns(Y)
    patterns = np.asarray(patterns)
    if patterns.dtype != bool or patterns.ndim != 2 or patterns.shape[1] != N:
        raise ValueError(f"patterns must be a boolean (P, N) array, N = n·draws = {N}; "
                         f"got dtype {patterns.dtype}, shape {patterns.shape}")
    M = [cp.Variable((d, d)) for _ in patterns]
    plus = [cp.Variable((d, d)) for _ in patterns]
    minus = [cp.Variable((d, d)) for _ in patterns]
    cost = cp.Variable(len(patterns))
    constraints = []
    for i, (M_P, C_plus, C_minus, P) in enumerate(zip(M, plus, minus, patterns)):
        signs = np.where(P, 1.0, -1.0)[:, None] * Y.T          # rows (2D_P − I) Yᵀ
        constraints += [M_P.T == C_plus - C_minus, signs @ C_plus >= 0, signs @ C_minus >= 0,
                        cost[i] >= cp.normNuc(M_P),
                        cost[i] >= (cp.normNuc(C_plus) + cp.normNuc(C_minus)) / np.sqrt(2.0)]
    fit = sum(M_P @ (Y * P[None, :]) for M_P, P in zip(M, patterns))
    objective = cp.sum_squares(fit - T) / N + 2.0 * lam * cp.sum(cost)
    problem = cp.Problem(cp.Minimize(objective), constraints)
    tick = time.perf_counter()
    _solve(problem, "X", X)
    elapsed = time.perf_counter() - tick

    best = (np.inf, None, None)
    starts = [init] if init is not None else []
    rounded = _network_from_relaxation(plus, minus)
    if rounded is not None:
        starts.append(rounded)
    starts += [None] * n_random_starts
    for k, start in enumerate(starts):
        width = p if start is None else start[0].shape[1]
        if tied and start is not None and start is rounded:
            continue
        loss, W1, W2 = minimize_sampled(Y, T, width, lam, init=start, tied=tied, seed=seed + 1 + k)
        if loss < best[0]:
            best = (loss, W1, W2)
    # The primal value may exceed the relaxation's optimum by the solver's duality gap.
    bound = float(problem.value) - (GAP_ABS + GAP_REL * abs(float(problem.value)))
    gap = best[0] - bound
    return ReluBound(bound=bound, solver_loss=best[0], gap=gap, rel_gap=gap / max(abs(best[0]), 1e-300),
                     n_patterns=len(patterns), N=N, exact_patterns=exact, Y=Y, T=T,
                     W1=best[1], W2=best[2], status=str(problem.status), solve_time=elapsed)
