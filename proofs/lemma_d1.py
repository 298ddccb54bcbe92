"""Lemma D.1: the global minimisers of the regularised linear autoencoder.

``L̂(W2, W1) = ‖W2W1ᵀX − X‖_F² + nσ²‖W2W1ᵀ‖_F² + λ'(‖W1‖_F² + ‖W2‖_F²)`` with ``XXᵀ = UΛUᵀ``
is minimised by ``W2 = W1 = U^{(p)}(I + nσ²Λ^{-1})^{-1/2}(I − λ'Λ^{-1})^{1/2}Oᵀ``, i.e.
``W2W1ᵀ = U diag(a_j) Uᵀ`` with ``a_j = (Λ_j − λ')/(Λ_j + nσ²)`` on the top p directions.

Proof sketch checked here:

1. (symbolic) per eigen-direction the problem is ``Λ(a − 1)² + nσ²a² + 2λ'a`` (balanced
   factors); its minimiser is a*, the printed factor of eq. (8) squares to a*, and at any
   stationary point ``u∂F/∂u − v∂F/∂v = 2λ'(u² − v²)``, so λ' > 0 forces balanced factors.
2. (numeric) L-BFGS on the untied (W1, W2) from random starts reaches the closed-form value
   ``Σ_{j≤p} [Λ_j − (Λ_j − λ')²/(Λ_j + nσ²)] + Σ_{j>p} Λ_j`` and the closed-form map; the printed
   W with a random orthogonal O attains the same value.
"""
from __future__ import annotations

import numpy as np
import scipy.optimize
import sympy as sp

from proofs.record import claim
from theory import linear_block
from theory.symbols import Lam, lam_p, n_k, sigma as sigma_symbol


def minimise_linear_ae(X, p, sigma, lam_prime, seed):
    """Global-minimum search for L̂ over untied (W1, W2) by L-BFGS from one random start."""
    d, n = X.shape
    rng = np.random.default_rng(seed)

    def fun(theta):
        W1, W2 = theta[:d * p].reshape(d, p), theta[d * p:].reshape(d, p)
        loss = linear_block.linear_block_loss(W1, W2, X, 1, sigma, lam_prime)   # n = 1: decay is λ'
        g1, g2 = linear_block.linear_block_grad(W1, W2, X, 1, sigma, lam_prime)
        return loss, np.concatenate([g1.ravel(), g2.ravel()])

    out = scipy.optimize.minimize(fun, rng.normal(scale=0.5, size=2 * d * p), jac=True, method="L-BFGS-B",
                                  options=dict(maxiter=20000, ftol=0, gtol=1e-12, maxcor=30))
    return out.fun, out.x[:d * p].reshape(d, p), out.x[d * p:].reshape(d, p)


@claim("lemma_d1", title="Lemma D.1: regularised linear AE minimisers a_j = (Λ_j − λ')/(Λ_j + nσ²)",
       statement="the global minimisers of ‖W2W1ᵀX − X‖² + nσ²‖W2W1ᵀ‖² + λ'(‖W1‖² + ‖W2‖²) are "
                 "W2 = W1 = U^(p)(I + nσ²Λ⁻¹)^(−1/2)(I − λ'Λ⁻¹)^(1/2)Oᵀ (needs Λ_p > λ')",
       equations="Lemma D.1, eq. (8)", source="appendix, second-hand", expected="consistent")
def check(record, mode):
    d, n, p = (32, 64, 8) if mode.full else (5, 7, 2)
    sigma, lam_prime = 0.3, 0.5
    rng = np.random.default_rng(mode.seed)
    X = rng.normal(size=(d, n)) * np.linspace(2.0, 0.5, d)[:, None]
    U, singular, _ = np.linalg.svd(X, full_matrices=False)
    Lambda = singular ** 2
    record.instance.update(d=d, n=n, p=p, sigma=sigma, lam_prime=lam_prime,
                           data="Gaussian with anisotropic scales 2 … 0.5")
    record.assume("Λ_p > λ'", float(Lambda[p - 1]), f"> {lam_prime}", Lambda[p - 1] > lam_prime)

    # 1. symbolic
    a_star = linear_block.optimal_scale()
    record.symbolic["a*"] = str(a_star)
    record.symbolic["a* = (Λ − λ')/(Λ + n_kσ²)"] = sp.simplify(
        a_star - (Lam - lam_p) / (Lam + n_k * sigma_symbol ** 2)) == 0
    record.symbolic["(eq. (8) factor)² = a*"] = sp.simplify(linear_block.eq8_column_scale() ** 2 - a_star) == 0
    record.symbolic["u∂F/∂u − v∂F/∂v"] = str(linear_block.two_factor_stationarity())
    symbolic_ok = all(v is True for k, v in record.symbolic.items() if k.startswith(("a* =", "(eq.")))

    # 2. numeric: closed form against a global search
    a = linear_block.optimal_scale_np(Lambda[:p], n, sigma, lam_prime)
    predicted_value = float(np.sum(linear_block.minimal_value_np(Lambda[:p], n, sigma, lam_prime))
                            + np.sum(Lambda[p:]))
    predicted_map = (U[:, :p] * a) @ U[:, :p].T
    O = np.linalg.qr(rng.normal(size=(p, p)))[0]
    W_printed = U[:, :p] * np.sqrt((1 + n * sigma ** 2 / Lambda[:p]) ** -1 * (1 - lam_prime / Lambda[:p])) @ O.T
    printed_value = linear_block.linear_block_loss(W_printed, W_printed, X, 1, sigma, lam_prime)
    starts = 8 if mode.full else 4
    runs = [minimise_linear_ae(X, p, sigma, lam_prime, seed) for seed in range(starts)]
    values = np.array([r[0] for r in runs])
    best = runs[int(np.argmin(values))]
    map_error = float(np.linalg.norm(best[2] @ best[1].T - predicted_map))
    balance = float(np.linalg.norm(best[1].T @ best[1] - best[2].T @ best[2]))
    value_error = abs(values.min() - predicted_value) / predicted_value
    record.measurement.update(closed_form_value=predicted_value, printed_W_value=printed_value,
                              best_search_value=float(values.min()), search_values=values,
                              map_error=map_error, balance_W1tW1_minus_W2tW2=balance)
    # L-BFGS stops at ‖∇‖ ≤ 1e-12: value error O(1e-12), map error O(1e-6) (square root of it)
    record.bound.update(relative_value_tolerance=1e-9, map_tolerance=1e-5, balance_tolerance=1e-5,
                        source="L-BFGS-B stopping tolerance gtol = 1e-12")
    record.headline = (f"search {values.min():.10g} vs closed form {predicted_value:.10g} "
                       f"(rel {value_error:.0e}); map err {map_error:.0e}")
    record.decide(confirmed=symbolic_ok and value_error < 1e-9 and map_error < 1e-5 and balance < 1e-5
                  and abs(printed_value - predicted_value) < 1e-9 * predicted_value
                  and values.min() >= predicted_value * (1 - 1e-9))
