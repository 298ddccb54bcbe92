"""Corollary 3.3 (generalisation): the n → ∞ limit of eq. (8), its population risk, the printed bound.

Per direction of cluster k, eq. (8) has Λ = n_k ê (ê an eigenvalue of X_kX_kᵀ/n_k → S_k),
noise factor n_k and decay nλ. With n_k/n → ρ_k the scale tends to (e − λ/ρ_k)/(e + σ²), i.e.
``W_{X_k}W_{X_k}ᵀ → [(S_k − (λ/ρ_k)I)(S_k + σ²I)^{-1}]`` truncated to the top p_k directions.

The *population* risk of that map per kept direction is ``eσ²/(e + σ²)``, while the printed
test-loss bound of Cor. 3.3 has ``eσ⁴/(e + σ²)²`` — only the bias part. Since no denoiser can
beat the Bayes risk, which is bounded below by the risk of the denoiser told the component
(:func:`component_bayes_risk`), the printed bound is violated for large n_k: see
:func:`printed_bound_counterexample` and ``python -m theory.generalization``.

>>> from theory.generalization import population_limit
>>> population_limit()
(e*rho - lambda)/(rho*(e + sigma**2))
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import sympy as sp

from numerics.validation import as_matrix, nonnegative, positive, positive_int
from theory import linear_block
from theory.errors import AssumptionError
from theory.symbols import Lam, a, e, lam, lam_p, n, n_k, numeric_twin, rho, sigma

__all__ = [
    "population_limit", "population_risk_per_direction", "risk_at_limit_scale",
    "risk_bias_part", "risk_noise_part", "printed_first_term", "printed_gap",
    "gaussian_mmse_per_direction", "population_limit_np", "risk_at_limit_scale_np",
    "printed_first_term_np", "population_risk_per_direction_np", "risk_bias_part_np",
    "risk_noise_part_np", "printed_gap_np", "gaussian_mmse_np", "population_block_map",
    "linear_population_risk", "printed_bound",
    "component_bayes_risk", "PrintedBoundCounterexample", "printed_bound_counterexample",
]


@functools.cache
def population_limit() -> sp.Expr:
    """lim_{n→∞} a*(Λ = n_k ê, n_k, σ, nλ) with n_k = ρn + c√n and ê = e + b/√n (Cor. 3.3).

    The √n terms stand for the sampling fluctuations of the cluster size and of the sample
    eigenvalue; the limit does not depend on them.

    >>> population_limit().subs(lam, 0)              # λ → 0: the Wiener shrinker of eigenvalue e
    e/(e + sigma**2)
    """
    b, c = sp.symbols("b c", real=True)
    cluster_size = rho * n + c * sp.sqrt(n)
    finite = linear_block.optimal_scale().subs(
        {Lam: cluster_size * (e + b / sp.sqrt(n)), n_k: cluster_size, lam_p: n * lam})
    return sp.simplify(sp.limit(finite, n, sp.oo))


@functools.cache
def population_risk_per_direction() -> sp.Expr:
    """Population risk E_x E_ε (a(c + σε) − c)² of a linear map with eigenvalue a: ``e(a − 1)² + σ²a²``.

    Derived from the per-sample noise expectation of Lemma D.1 with E c² = e (the second
    moment of the population along the direction) in place of the sample energy.

    >>> population_risk_per_direction()               # σ²a² + e(a − 1)²
    a**2*sigma**2 + e*(a**2 - 2*a + 1)
    """
    c = sp.Symbol("c", real=True)
    per_sample = sp.Poly(linear_block.per_sample_noise_expectation(), c)
    return per_sample.coeff_monomial(c ** 2) * e + per_sample.coeff_monomial(1)


@functools.cache
def risk_at_limit_scale() -> sp.Expr:
    """Exact population risk of the rank-p_k shrinker per kept direction at λ → 0: eσ²/(e + σ²).

    >>> risk_at_limit_scale()
    e*sigma**2/(e + sigma**2)
    """
    scale = population_limit().subs(lam, 0)
    return sp.factor(sp.simplify(population_risk_per_direction().subs(a, scale)))


@functools.cache
def risk_bias_part() -> sp.Expr:
    """The bias part e(a − 1)² of :func:`risk_at_limit_scale`: eσ⁴/(e + σ²)².

    >>> risk_bias_part() == printed_first_term()      # the printed term is the bias part alone
    True
    """
    return sp.factor((e * (a - 1) ** 2).subs(a, population_limit().subs(lam, 0)))


@functools.cache
def risk_noise_part() -> sp.Expr:
    """The noise part σ²a² of :func:`risk_at_limit_scale`: σ²e²/(e + σ²)².

    >>> sp.simplify(risk_bias_part() + risk_noise_part() - risk_at_limit_scale())
    0
    """
    return sp.factor((sigma ** 2 * a ** 2).subs(a, population_limit().subs(lam, 0)))


def printed_first_term() -> sp.Expr:
    """The per-kept-direction term of the printed Cor. 3.3 bound: ``e_j σ⁴/(e_j + σ²)²``.

    >>> float(printed_first_term_np(4.0, 1.0))       # 4/25, against the risk 4/5
    0.16
    """
    return e * sigma ** 4 / (e + sigma ** 2) ** 2


@functools.cache
def printed_gap() -> sp.Expr:
    """True risk minus printed term per kept direction: σ²e²/(e + σ²)² > 0 (the missing noise part).

    >>> printed_gap()
    e**2*sigma**2/(e + sigma**2)**2
    """
    return sp.factor(sp.simplify(risk_at_limit_scale() - printed_first_term()))


@functools.cache
def gaussian_mmse_per_direction() -> sp.Expr:
    """Bayes risk of a centred 1-D Gaussian of variance e under noise σ: min_a e(a−1)² + σ²a².

    For a Gaussian prior the posterior mean is linear, so this minimum is the MMSE eσ²/(e + σ²).

    >>> gaussian_mmse_per_direction(), gaussian_mmse_per_direction() == risk_at_limit_scale()
    (e*sigma**2/(e + sigma**2), True)
    """
    risk = population_risk_per_direction()
    (best,) = sp.solve(sp.diff(risk, a), a)
    return sp.factor(sp.simplify(risk.subs(a, best)))


population_limit_np = numeric_twin(population_limit, (e, rho, sigma, lam))
risk_at_limit_scale_np = numeric_twin(risk_at_limit_scale, (e, sigma))
printed_first_term_np = numeric_twin(printed_first_term, (e, sigma))
population_risk_per_direction_np = numeric_twin(population_risk_per_direction, (e, sigma, a))
risk_bias_part_np = numeric_twin(risk_bias_part, (e, sigma))
risk_noise_part_np = numeric_twin(risk_noise_part, (e, sigma))
printed_gap_np = numeric_twin(printed_gap, (e, sigma))
gaussian_mmse_np = numeric_twin(gaussian_mmse_per_direction, (e, sigma))


def _spectrum(S, name="S"):
    S = as_matrix(name, S)
    if S.shape[0] != S.shape[1] or not np.allclose(S, S.T, atol=1e-12 * max(1.0, np.abs(S).max())):
        raise ValueError(f"{name} must be a symmetric (d, d) matrix; got shape {S.shape}")
    values, vectors = np.linalg.eigh(S)
    order = np.argsort(values)[::-1]
    return np.clip(values[order], 0.0, None), vectors[:, order]


def population_block_map(S, p_k: int, rho: float, sigma: float, lam: float) -> np.ndarray:
    """The Cor. 3.3 limit ``[(S − (λ/ρ)I)(S + σ²I)^{-1}]`` truncated to the top p_k directions.

    >>> import numpy as np
    >>> population_block_map(np.diag([3.0, 1.0]), 1, 0.5, 1.0, 0.0)   # (d, d)
    array([[0.75, 0.  ],
           [0.  , 0.  ]])
    """
    values, vectors = _spectrum(S)
    sigma, lam, rho = nonnegative("sigma", sigma), nonnegative("lam", lam), positive("rho", rho)
    p_k = positive_int("p_k", p_k, minimum=0)
    if p_k > values.size:
        raise AssumptionError("p_k <= d (Cor. 3.3)", p_k, f"<= {values.size}")
    if p_k and not values[p_k - 1] > lam / rho:
        raise AssumptionError("λ/ρ_k < e_{p_k}(S_k) (n → ∞ form of nλ < λ_min, Theorem 3.1)",
                              f"λ/ρ_k = {lam / rho:.6g}", f"< {values[p_k - 1]:.6g}")
    scales = np.zeros_like(values)
    scales[:p_k] = population_limit_np(values[:p_k], rho, sigma, lam)
    return (vectors * scales) @ vectors.T


def linear_population_risk(second_moments, weights, p_per_cluster, sigma) -> float:
    """Population risk (λ → 0, n → ∞) of W_gen at stable masks: Σ_k ρ_k [Σ_{j≤p_k} e_jσ²/(e_j+σ²) + Σ_{j>p_k} e_j].

    ``second_moments``: one S_k (d, d) per cluster; ``weights``: the ρ_k; ``p_per_cluster``: the p_k.

    >>> import numpy as np
    >>> S = [np.diag([4.0, 1.0])]                   # d = 2, one cluster, ρ = 1
    >>> linear_population_risk(S, [1.0], [1], sigma=1.0)   # 4·1/(4 + 1) kept + 1 dropped
    1.8
    """
    total = 0.0
    for S, weight, p_k in zip(second_moments, weights, p_per_cluster):
        values, _ = _spectrum(S)
        total += weight * (np.sum(risk_at_limit_scale_np(values[:p_k], sigma)) + np.sum(values[p_k:]))
    return float(total)


def printed_bound(second_moments, weights, p_per_cluster, sigma, n_per_cluster, constants) -> float:
    """The Cor. 3.3 test-loss bound as printed (λ → 0), with constants C_k.

    ``Σ_k ρ_k [Σ_{j≤p_k} e_jσ⁴/(e_j+σ²)² + Σ_{j>p_k} e_j + C_k p_k/(σ² n_k)]``, e_j = eig_j(S_k).

    >>> import numpy as np
    >>> S = [np.diag([4.0, 1.0])]                   # d = 2, one cluster, ρ = 1, n_k = 10, C_k = 1
    >>> round(printed_bound(S, [1.0], [1], 1.0, [10], [1.0]), 6)    # 4/25 + 1 + 1/10
    1.26
    """
    total = 0.0
    for S, weight, p_k, n_k_, C in zip(second_moments, weights, p_per_cluster, n_per_cluster, constants):
        values, _ = _spectrum(S)
        total += weight * (np.sum(printed_first_term_np(values[:p_k], sigma)) + np.sum(values[p_k:])
                           + C * p_k / (sigma ** 2 * n_k_))
    return float(total)


def component_bayes_risk(covariances, weights, sigma) -> float:
    """A lower bound on the test loss of *any* denoiser of the mixture: Σ_k ρ_k tr(σ²Σ_k(Σ_k + σ²I)^{-1}).

    Knowing the component label cannot increase the minimum mean-squared error, and given the
    label the posterior mean of a Gaussian is affine with error Σ_j ν_jσ²/(ν_j + σ²),
    ν_j = eig_j(Σ_k) (:func:`gaussian_mmse_per_direction`).

    >>> import numpy as np
    >>> component_bayes_risk([np.diag([4.0, 1.0])], [1.0], sigma=1.0)   # 4/5 + 1/2
    1.3
    """
    total = 0.0
    for Sigma, weight in zip(covariances, weights):
        values, _ = _spectrum(Sigma, "Sigma")
        positive_values = values[values > 0]
        total += weight * float(np.sum(gaussian_mmse_np(positive_values, sigma)))
    return float(total)


@dataclass(frozen=True)
class PrintedBoundCounterexample:
    """Numbers of the Cor. 3.3 printed-bound counterexample.

    Returned by `printed_bound_counterexample`.
    """

    means: np.ndarray
    spread: float
    sigma: float
    p_per_cluster: tuple[int, ...]
    printed_bound_limit: float          # printed bound as n_k → ∞ (the C_k term vanishes)
    bayes_lower_bound: float            # no denoiser has a smaller test loss
    linear_risk_limit: float            # exact risk of W_gen at n → ∞, stable masks
    constant: float                     # the C_k used for n_threshold
    n_threshold: float                  # for n_k above this the printed bound < bayes_lower_bound

    def summary(self) -> str:
        return (f"Cor. 3.3 printed bound, K={self.means.shape[1]} clusters, means ±{self.means[0, 0]:g}, "
                f"Σ_k = {self.spread:g}² I, σ = {self.sigma:g}, p_k = {self.p_per_cluster}:\n"
                f"  printed bound as n_k → ∞        : {self.printed_bound_limit:.6f}\n"
                f"  Bayes risk lower bound (any f)  : {self.bayes_lower_bound:.6f}\n"
                f"  exact risk of W_gen (n → ∞)     : {self.linear_risk_limit:.6f}\n"
                f"  with C_k = {self.constant:g}, the printed bound is below every denoiser's test loss "
                f"for n_k > {self.n_threshold:.1f}; the threshold scales linearly in C_k, so no finite "
                f"C_k rescues the bound.")


def printed_bound_counterexample(mean: float = 3.0, spread: float = 0.3, sigma: float = 0.5,
                                 constant: float = 1.0) -> PrintedBoundCounterexample:
    """Two 1-D clusters N(±mean, spread²), ρ = ½ each, p_k = 1: the printed Cor. 3.3 bound fails.

    Defaults: mean 3, spread 0.3 (‖Σ^{1/2}‖/‖μ‖ = 0.1, β = −1), σ = 0.5. The printed bound's
    n_k → ∞ value is below :func:`component_bayes_risk`, which every denoiser's test loss
    E‖f(x + σε) − x‖² exceeds, so for n_k > ``n_threshold`` the printed bound is not an
    upper bound for the network at W_gen (nor for any network).

    >>> out = printed_bound_counterexample()          # d = 1, K = 2, mean ±3, spread 0.3, σ = 0.5
    >>> round(out.printed_bound_limit, 6), round(out.bayes_lower_bound, 6), round(out.n_threshold, 1)
    (0.006513, 0.066176, 67.0)
    """
    means = np.array([[mean, -mean]])
    covariances = [np.array([[spread ** 2]])] * 2
    second = [np.outer(mu, mu) + C for mu, C in zip(means.T, covariances)]
    weights, p_per_cluster = (0.5, 0.5), (1, 1)
    limit = printed_bound(second, weights, p_per_cluster, sigma, (np.inf, np.inf), (0.0, 0.0))
    bayes = component_bayes_risk(covariances, weights, sigma)
    linear = linear_population_risk(second, weights, p_per_cluster, sigma)
    gap = bayes - limit
    # Σ_k ρ_k C p_k/(σ² n_k) with n_k equal, Σ ρ_k p_k = 1: the bound is below bayes iff n_k > C/(σ² gap)
    threshold = constant * sum(w * q for w, q in zip(weights, p_per_cluster)) / (sigma ** 2 * gap) \
        if gap > 0 else np.inf
    return PrintedBoundCounterexample(means, spread, sigma, p_per_cluster, limit, bayes, linear,
                                      constant, threshold)


if __name__ == "__main__":  # python -m theory.generalization
    print("per kept direction: exact risk", risk_at_limit_scale(), "; printed", printed_first_term(),
          "; missing", printed_gap())
    print(printed_bound_counterexample().summary())
