"""Shared tools of the proof checks: instances, invariant comparisons, the stable-mask decomposition.

* :func:`orthogonal_clusters` — (α, β)-separable clusters whose spreads live in mutually
  orthogonal subspaces, orthogonal to every mean: the regime of Theorem 3.1 where the margin
  γ is controlled by β alone (see the module `proofs.errata` for what goes wrong otherwise).
* `numerics.compare.cluster_maps` / `map_residual` (rule "all-on") — the per-cluster linear maps
  ``W2 diag(mask) W1ᵀ`` (invariant under column permutations, the O_k of eq. (8) and splitting).
* :func:`decomposition` — Theorem D.2's ``L = (1/n) Σ_k L̂_{X_k} + ε`` at any weights, with a
  rigorous bound on |ε| from the Gaussian tails of the neurons that can flip.
* `numerics.threads.single_thread` — small problems run 5–30× faster with one numba and one BLAS
  thread on a shared 2-core machine (thread start-up dominates); every check runs inside it.

>>> X, labels = orthogonal_clusters(5, [3, 1], [1, 0], alpha=0.2, seed=0)
>>> X.shape, labels.tolist()
((5, 4), [0, 0, 0, 1])
"""
from __future__ import annotations

import os
import sys

import numpy as np
from scipy.special import ndtr

from numerics.compare import map_residual
from numerics.data import equiangular_means
from numerics.validation import as_matrix, labels_for




def say(mode, text: str) -> None:
    """Progress line on stderr, silent when ``mode.quiet`` (CI) is set."""
    if not mode.quiet:
        print(f"  · {text}", file=sys.stderr, flush=True)


def quiet_default() -> bool:
    return bool(os.environ.get("CI"))


# ----------------------------------------------------------------------------- instances


def orthogonal_clusters(d: int, sizes, ranks, alpha: float = 0.2, norms=1.0, beta=None,
                        seed=0) -> tuple[np.ndarray, np.ndarray]:
    """Clusters with equiangular means (cos β, default the simplex) and orthogonal spreads.

    Cluster k has ``sizes[k]`` points ``x̄_k + δ``, δ centred Gaussian in its own
    ``ranks[k]``-dimensional subspace, orthogonal to all means and to the other clusters'
    subspaces, scaled so that max ‖δ‖/‖x̄_k‖ = α (Definition 3.1). ``ranks[k] = 0`` gives
    ``sizes[k]`` copies of the mean: a duplicated sample (Cor. 3.4) or, with one copy, a
    memorised one (Cor. 3.2). Needs ``d ≥ rank(means) + Σ ranks``. Returns ``(X, labels)``.
    """
    sizes = [int(s) for s in np.atleast_1d(sizes)]
    ranks = [int(r) for r in np.broadcast_to(ranks, (len(sizes),))]
    M = len(sizes)
    rng = np.random.default_rng(seed)
    coords = equiangular_means(M, M, beta, norms, rng)           # M vectors in R^M
    U, singular, _ = np.linalg.svd(coords)
    r0 = int(np.sum(singular > 1e-10 * singular[0]))
    if r0 + sum(ranks) > d:
        raise ValueError(f"d = {d} is too small: the means span {r0} dimensions and the spreads "
                         f"need {sum(ranks)} more")
    frame = np.linalg.qr(rng.standard_normal((d, d)))[0]
    means = frame[:, :r0] @ (U[:, :r0].T @ coords)
    blocks, start = [], r0
    for k, (n_k, r) in enumerate(zip(sizes, ranks)):
        deviation = np.zeros((d, n_k))
        if r and n_k > 1:
            z = rng.standard_normal((r, n_k))
            z -= z.mean(axis=1, keepdims=True)
            deviation = frame[:, start:start + r] @ z
            deviation *= alpha * np.linalg.norm(means[:, k]) / np.linalg.norm(deviation, axis=0).max()
        start += r
        blocks.append(means[:, [k]] + deviation)
    return np.hstack(blocks), np.repeat(np.arange(M), sizes)


def split(X, labels) -> dict:
    """{label: X_k (d, n_k)} in increasing label order."""
    labels = np.asarray(labels)
    return {int(k): X[:, labels == k] for k in np.unique(labels)}


def perturb_live(W, relative: float, seed=0) -> np.ndarray:
    """W plus Gaussian noise of Frobenius size ``relative·‖W‖`` on its nonzero columns only.

    Zero columns stay exactly zero (tied: their gradient is exactly zero, so training keeps
    them there), which leaves the zero-column test of `numerics.certify` meaningful; noise on
    them would leave tiny columns along the flat split directions of Cor. 3.2.
    """
    noise = np.random.default_rng(seed).standard_normal(W.shape)
    noise[:, np.linalg.norm(W, axis=0) == 0] = 0.0
    return W + relative * np.linalg.norm(W) * noise / np.linalg.norm(noise)


def minimise_from(X, W, sigma: float, lam: float, *, tied: bool = False, seed=0, perturb: float = 0.0,
                  gtol: float = 1e-9, polish: bool = True):
    """Minimise the exact loss eq. (6) from W (`numerics.solvers.train`), by default untied.

    Untied (loss (6) as printed): W1 and W2 both start at W, each perturbed independently
    on its live columns (`perturb_live`, relative size ``perturb``). Tied: one W. Every
    tolerance downstream charges the gradient left at the end.
    """
    from numerics.solvers import train

    if tied:
        init = perturb_live(W, perturb, seed) if perturb else W
    else:
        init = (perturb_live(W, perturb, seed), perturb_live(W, perturb, seed + 1)) if perturb else (W, W)
    return train(X, W.shape[1], sigma, lam, seed=seed, tied=tied, init=init, gtol=gtol, polish=polish)


def existence(X, labels, W_pred, predicted_maps, sigma: float, lam: float, *, seed=0, perturb=1e-2) -> dict:
    """An existence claim on loss (6) as printed: a certified untied local minimiser near ``W_pred``.

    Trains untied from ``W_pred`` (perturbed), certifies untied, and measures the invariant
    map residual ``Σ_k ‖A_k − A_k^pred‖²`` against Theorem D.2's radius, how far the factors
    are from each other (``‖W1 − W2‖_F``) and from the prediction (`procrustes_distance`, each
    factor). The tied problem (W1 = W2 imposed) is run the same way as a second, labelled
    measurement, with ``‖∂L/∂W1 − ∂L/∂W2‖`` at its optimum: zero iff the tied optimum is also
    a critical point of loss (6).
    """
    from numerics.certify import certify
    from numerics.objective import expected_loss_and_grad

    out = {}
    for tied in (False, True):
        fit = minimise_from(X, W_pred, sigma, lam, tied=tied, seed=seed, perturb=perturb)
        report = certify(fit.W1, fit.W2, X, sigma, lam, tied=tied)
        residual = map_residual(fit.W1, fit.W2, X, labels, predicted_maps)
        tolerance = residual_tolerance(W_pred, fit.W1, X, labels, sigma, lam, fit.grad_norm, W2_fit=fit.W2)
        row = dict(fit=fit, report=report, verdict=report.verdict, minimum=report.is_minimum,
                   map_residual=residual, tolerance=tolerance["tolerance"], radius=tolerance["radius"],
                   within=residual <= tolerance["tolerance"], factor_gap=float(np.linalg.norm(fit.W1 - fit.W2)),
                   factor_distance=max(procrustes_distance(fit.W1, W_pred), procrustes_distance(fit.W2, W_pred)),
                   rel_grad_norm=fit.rel_grad_norm, loss=fit.loss)
        if tied:
            _, g1, g2 = expected_loss_and_grad(fit.W1, fit.W2, X, sigma, lam)
            row["untied_gradient_gap"] = float(np.linalg.norm(g1 - g2))
        out["tied" if tied else "untied"] = row
    return out


def existence_measurements(result: dict) -> dict:
    """The JSON-ready numbers of `existence`: untied first (loss (6) as printed), tied second."""
    keys = ("verdict", "map_residual", "tolerance", "radius", "factor_gap", "factor_distance", "rel_grad_norm",
            "loss", "untied_gradient_gap")
    untied = {k: result["untied"][k] for k in keys if k in result["untied"]}
    tied = {k: result["tied"][k] for k in keys if k in result["tied"]}
    return {"untied (loss (6) as printed)": untied, "tied (W1 = W2 imposed; second measurement)": tied}


# ----------------------------------------------------------------------------- invariants


def procrustes_distance(W, W_ref) -> float:
    """``min_O ‖W − W_ref O‖_F`` over all p × p orthogonal O (orthogonal Procrustes).

    The permutations and the per-block O_k of eq. (8) are orthogonal, so this is a lower bound
    of the symmetry-aligned distance, and needs no activation masks (unlike `aligned_distance`).
    """
    U, _, Vt = np.linalg.svd(W_ref.T @ W)
    return float(np.linalg.norm(W - W_ref @ (U @ Vt)))


# ----------------------------------------------------------------------------- Theorem D.2


def _flip_second_moment(m, s):
    """E[a² 1(sign a ≠ sign m)] for a ~ N(m, s²): (m² + s²)Φ(−|m|/s) − |m| s φ(|m|/s); 0 if s = 0."""
    m, s = np.abs(m), np.broadcast_to(s, np.shape(m))
    out = np.zeros(np.shape(m))
    noisy = s > 0
    z = m[noisy] / s[noisy]
    pdf = np.exp(-0.5 * z * z) / np.sqrt(2 * np.pi)
    out[noisy] = (m[noisy] ** 2 + s[noisy] ** 2) * ndtr(-z) - m[noisy] * s[noisy] * pdf
    return np.clip(out, 0.0, None)


def decomposition(W1, W2, X, labels, sigma: float, lam: float, exact_loss=None) -> dict:
    """Theorem D.2 at (W1, W2): exact L, the block sum (1/n) Σ_k L̂_{X_k}, ε and a bound on |ε|.

    Masks are read from the clean samples: block k = neurons on for every point of cluster
    k. They are *stable* when every live neuron is either on for the whole cluster or off for
    the whole cluster, for every cluster. Then, for x in cluster k, ``f(y) − A_k y`` is a sum
    over neurons j of ``w2_j`` times the part of the pre-activation a_j on the wrong side of
    zero, whose second moment has the closed form of :func:`_flip_second_moment`; with
    Minkowski, ``D_x = Σ_j ‖w2_j‖ √E[a_j² 1(flip)]`` and
    ``|E‖f − x‖² − E‖A_k y − x‖²| ≤ 2 D_x √ℓ_x + D_x²``, ``ℓ_x = ‖A_k x − x‖² + σ²‖A_k‖_F²``
    (Cauchy–Schwarz). Summing (plus 1e-12 relative for rounding) gives the returned ``bound`` ≥ |ε|;
    it decays like
    ``e^{−γ²/(4σ²)}`` (γ the switching margin), the measured ε like ``e^{−γ²/(2σ²)}``.
    """
    from numerics.objective import expected_loss

    X = as_matrix("X", X, cols_name="n")
    labels = labels_for("labels", labels, X.shape[1])
    n = X.shape[1]
    pre = W1.T @ X                                                    # (p, n)
    scales = sigma * np.linalg.norm(W1, axis=0)
    live = np.linalg.norm(W1, axis=0) > 0
    stable = True
    ell = np.empty(n)
    D = np.empty(n)
    for k in np.unique(labels):
        members = labels == k
        on = np.all(pre[:, members] > 0, axis=1)
        off = np.all(pre[:, members] < 0, axis=1)
        stable &= bool(np.all(on | off | ~live))
        A = W2[:, on] @ W1[:, on].T
        X_k = X[:, members]
        ell[members] = np.sum((A @ X_k - X_k) ** 2, axis=0) + sigma ** 2 * np.sum(A ** 2)
        flips = _flip_second_moment(pre[:, members], scales[:, None])
        D[members] = np.linalg.norm(W2, axis=0) @ np.sqrt(flips)
    decay = lam * (np.sum(W1 ** 2) + np.sum(W2 ** 2))
    block = float(ell.mean() + decay)
    exact = float(expected_loss(W1, W2, X, sigma, lam)) if exact_loss is None else float(exact_loss)
    # the tail bound, plus float64 rounding of the two sums over samples and neuron pairs
    bound = float(np.mean(2 * D * np.sqrt(ell) + D ** 2)) + 1e-12 * (abs(exact) + abs(block))
    return dict(exact=exact, blocks=block, epsilon=exact - block, bound=bound if stable else float("inf"),
                stable=stable)


def residual_tolerance(W_pred, W_fit, X, labels, sigma: float, lam: float, grad_norm: float = 0.0, *,
                       W2_fit=None) -> dict:
    """Tolerance on Σ_k ‖A_k(W_fit) − A_k(W_pred)‖_F² from Theorem D.2's radius.

    Local minimisers lie within ``r = √(2ε/m0)`` of the block point (Thm. D.2) with ε the
    largest |L − (1/n) Σ_k L̂_{X_k}| at the two points (measured, `decomposition`) and the
    appendix's curvature scale ``m0 = σ² + nλ`` (constant taken as 1); the solver adds
    ``‖∇L(W_fit)‖/m0``; ``W2_fit`` is the decoder when untied (default: tied). Since
    ``‖WWᵀ − VVᵀ‖_F ≤ (‖W‖₂ + ‖V‖₂)‖W − V‖_F`` per block and the maps do
    not see O_k, the map residual is at most ``(2‖W_pred‖₂ + r)² r²``.
    """
    n = X.shape[1]
    W2_fit = W_fit if W2_fit is None else W2_fit
    eps = max(abs(decomposition(W1, W2, X, labels, sigma, lam)["epsilon"])
              for W1, W2 in ((W_pred, W_pred), (W_fit, W2_fit)))
    m0 = sigma ** 2 + n * lam
    radius = np.sqrt(2 * eps / m0) + grad_norm / m0
    return dict(epsilon=eps, m0=m0, radius=radius,
                tolerance=float((2 * np.linalg.norm(W_pred, 2) + radius) ** 2 * radius ** 2))
