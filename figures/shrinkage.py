"""Beyond the paper: trained against predicted column norms (eq. 9) and shrinkage spectra (eq. 8).

Left — memorisation (Cor. 3.2): n samples on a regular simplex (β1 < 0) with different norms,
trained on the exact loss eq. (6) from a random start at several σ. The energy of the
columns copying x_i, ``√Σ_j ‖w_j‖²`` (invariant to splitting a column in parallel pieces),
against eq. (9)'s ``r_i‖x_i‖ = √((‖x_i‖² − nλ)/(‖x_i‖² + σ²))``, drawn as the shrinkage
``1 − r_i‖x_i‖ ≈ (σ² + nλ)/(2‖x_i‖²)`` on log axes so that small σ is visible.

Right — generalisation (Theorem 3.1, Cor. 3.3): a two-mode mixture (antipodal means, rank-4
covariances with decaying variances), trained on eq. (6) at several σ from the eq. (8) block
point perturbed by 30% (relative Frobenius norm): the theorem asserts a local minimiser near
that point, and random starts at this size take minutes per fit (Fig. 6 and the phase
diagram train from random starts).
Each mode's map ``A_k = Σ_{j∈k} w_j w_jᵀ`` has eigenvalues that eq. (8) predicts to be the
shrinkage ``a_j = (Λ_j − nλ)/(Λ_j + n_kσ²) = (e_j − nλ/n_k)/(e_j + σ²)`` of the empirical
second-moment eigenvalues ``e_j = Λ_j/n_k``: a Wiener-type curve ``e/(e + σ²)`` per σ. The
population limit (Cor. 3.3) replaces e_j by the eigenvalues of ``S_k = μ_kμ_kᵀ + Σ_k``.
"""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy.stats import norm  # noqa: E402

from figures.common import Config, check, column_cosines, save_figure  # noqa: E402
from figures.models import exact_fit  # noqa: E402
from numerics.data import gaussian_mixture, memorization_set  # noqa: E402
from numerics.solvers import cluster_maps, column_structure  # noqa: E402
from theory.generalization import population_limit_np  # noqa: E402
from theory.memorization import r_eq9_np  # noqa: E402
from theory.predict import memorization_weights, partition_weights, switching_margin  # noqa: E402

LAM = 1e-3
MEMORISED_COSINE = 0.99
# Exact-objective minimisers: where the most marginal neuron flips with probability
# Phi(-gamma/sigma) <= 1e-3 the residual e^{-c gamma^2/sigma^2} and the solver error are far
# below 1% of the shrinkage; the generalisation maps are held to 1e-4 + 10 Phi(-gamma/sigma).
TOLERANCE = 0.01
FLIP_VALID = 1e-3
PERTURB = 0.3


def memorisation_panel(config: Config, ax) -> tuple[dict, list]:
    d, n, p, lam = 16, 4, 6, 1e-4
    norms = np.linspace(2.0, 4.0, n)
    X = memorization_set(d, n, norm=norms, seed=config.seed)        # pairwise cosine -1/3
    s = norms ** 2
    gamma = switching_margin(memorization_weights(X, n, 0.1, lam), X)
    sigmas = config.pick([0.03, 0.1, 0.3, 1.0], [0.1, 1.0])
    grid = np.geomspace(0.02, 1.5, 100)
    for i in range(n):
        ax.loglog(grid, 1 - r_eq9_np(s[i], n, grid, lam) * norms[i], color=f"C{i}", lw=1,
                  label=f"eq. (9), ||x_{i}|| = {norms[i]:.2g}")
    rows = []
    for sigma in sigmas:
        fit = exact_fit(config, X, p, sigma, lam, seed=config.seed, gtol=1e-10, max_iter=5000)
        W = fit["W"]
        copying = column_cosines(W, X) >= MEMORISED_COSINE
        energy = np.sqrt(np.sum(W ** 2, axis=0) @ copying)
        predicted = r_eq9_np(s, n, sigma, lam) * norms
        ax.scatter(np.full(n, sigma), 1 - energy, c=[f"C{i}" for i in range(n)], marker="o", s=24, zorder=3)
        flip = float(norm.cdf(-gamma / sigma))
        rows.append(dict(sigma=sigma, trained=energy, predicted=predicted, loss=fit["loss"],
                         rel_grad_norm=fit["rel_grad_norm"], memorised=copying.any(axis=0),
                         gamma_over_sigma=gamma / sigma, flip_probability=flip,
                         shrinkage_relative_error=np.abs((1 - energy) - (1 - predicted)) / (1 - predicted)))
    ax.set_xlabel("sigma", fontsize=8)
    ax.set_ylabel("1 - sqrt(sum ||w_j||^2) over columns copying x_i", fontsize=8)
    ax.set_title(f"memorisation: column shrinkage, trained (dots) vs eq. (9) (lines)\n"
                 f"d={d}, n={n} (cosine -1/3), p={p}, lambda={lam:g}, gamma={gamma:.2f}", fontsize=8)
    ax.legend(fontsize=6)
    valid = [r for r in rows if r["flip_probability"] <= FLIP_VALID]
    worst = max((float(r["shrinkage_relative_error"].max()) for r in valid), default=float("inf"))
    checks = [check("memorisation: every sample copied by a column at every sigma (cosine >= 0.99)",
                    int(sum(r["memorised"].sum() for r in rows)), n * len(sigmas),
                    all(r["memorised"].all() for r in rows)),
              check(f"memorisation: shrinkage 1 - r_i||x_i|| matches eq. (9) within {TOLERANCE:.0%} where "
                    f"Phi(-gamma/sigma) <= {FLIP_VALID:g} (stable masks)", worst, TOLERANCE, worst <= TOLERANCE)]
    return dict(d=d, n=n, p=p, lam=lam, norms=norms, sigmas=sigmas, gamma=gamma, fits=rows), checks


def generalisation_panel(config: Config, ax) -> tuple[dict, list]:
    d, K, rank, n = 64, 2, 4, config.pick(600, 300)
    mix = gaussian_mixture(d, K, rank, n, mean_norm=5.0, spread=0.15, decay=1.0, seed=config.seed)
    p = K * (rank + 1)
    # sigma stays where the blocks' masks are stable (gamma/sigma >~ 3); beyond, the solver needs
    # thousands of iterations and the map leaves eq. (8) by the flip probability.
    sigmas = config.pick([0.05, 0.1, 0.3], [0.1, 0.3])
    grid = np.geomspace(1e-3, 40, 200)
    rows, checks = [], []
    for c, sigma in enumerate(sigmas):
        ax.plot(grid, np.clip((grid - n * LAM / (n / K)) / (grid + sigma ** 2), 0, None), color=f"C{c}", lw=1,
                label=f"(e - n lam/n_k)/(e + sigma^2), sigma={sigma:g}")
        start = partition_weights(mix.X, mix.labels, [rank + 1] * K, sigma, LAM)
        flip = float(norm.cdf(-switching_margin(start, mix.X) / sigma))
        fit = exact_fit(config, mix.X, p, sigma, LAM, seed=config.seed, init=start, perturb=PERTURB, gtol=1e-8,
                        max_iter=5000)
        W = fit["W"]
        structure = column_structure(W, W, mix.X, mix.labels)
        maps = cluster_maps(W, W, mix.X, mix.labels)
        for k in range(K):
            X_k = mix.cluster(k)
            n_k = X_k.shape[1]
            p_k = structure["neurons_per_cluster"][k]
            e = np.linalg.svd(X_k, compute_uv=False)[:rank + 1] ** 2 / n_k
            trained = np.sort(np.linalg.eigvalsh(maps[k]))[::-1][:rank + 1]
            predicted = np.clip((e - n * LAM / n_k) / (e + sigma ** 2), 0, None)
            predicted[p_k:] = 0.0
            population = np.sort(np.linalg.eigvalsh(mix.second_moment(k)))[::-1][:rank + 1]
            ax.scatter(e[:p_k], trained[:p_k], color=f"C{c}", marker="o" if k == 0 else "s", s=22, zorder=3)
            ax.scatter(population[:p_k], population_limit_np(population[:p_k], n_k / n, sigma, LAM), color="k",
                       marker="+", s=25, zorder=4)
            rows.append(dict(sigma=sigma, cluster=k, neurons=p_k, e=e, trained=trained, predicted=predicted,
                             population_e=population,
                             population_a=population_limit_np(population, mix.weights[k], sigma, LAM),
                             relative_error=float(np.max(np.abs(trained[:p_k] - predicted[:p_k]) / predicted[:p_k]))
                             if p_k else 0.0, flip_probability=flip, loss=fit["loss"], rel_grad_norm=fit["rel_grad_norm"],
                             mixed_columns=structure["n_mixed"]))
    ax.set_xscale("log")
    ax.set_xlabel("e_j: eigenvalue of X_k X_k^T / n_k", fontsize=8)
    ax.set_ylabel("eigenvalue a_j of the mode's map A_k", fontsize=8)
    ax.set_title(f"shrinkage spectra: trained (o, s: modes 1, 2) vs eq. (8) (lines), population limit (+)\n"
                 f"d={d}, K={K}, rank={rank}, n={n}, p={p}, lambda={LAM:g}", fontsize=8)
    ax.legend(fontsize=6, loc="lower right")
    pure = [r for r in rows if r["mixed_columns"] == 0]
    excess = max(r["relative_error"] - (1e-4 + 10 * r["flip_probability"]) for r in rows)
    checks += [check("shrinkage: every fit is block structured (no column mixes modes)",
                     sum(r["mixed_columns"] for r in rows), 0, len(pure) == len(rows)),
               check("shrinkage: trained eigenvalues of A_k match eq. (8) within 1e-4 + 10 Phi(-gamma/sigma)",
                     max(r["relative_error"] for r in rows), "1e-4 + 10 Phi(-gamma/sigma)", excess <= 0)]
    return dict(d=d, K=K, rank=rank, n=n, p=p, lam=LAM, sigmas=sigmas, start=f"eq. (8) + {PERTURB:.0%} noise",
                mean_norm=5.0, spread=0.15,
                decay=1.0, fits=rows), checks


def build(config: Config) -> dict:
    fig, axes = plt.subplots(1, 2, figsize=(13, 5))
    with config.bar(total=2, desc="shrinkage panels") as bar:
        memorisation, checks_m = memorisation_panel(config, axes[0])
        bar.update(1)
        generalisation, checks_g = generalisation_panel(config, axes[1])
        bar.update(1)
    fig.suptitle("Beyond the paper: trained vs predicted column norms and shrinkage spectra (exact loss eq. (6))",
                 fontsize=10)
    fig.tight_layout()
    caption = ("Left: memorising column energy against eq. (9) over sigma. Right: eigenvalues of each mode's linear map "
               "against eq. (8)'s shrinkage of the empirical second-moment eigenvalues and Cor. 3.3's population "
               "limit. Exact objective (numerics.solvers.train, tied); memorisation from random starts, generalisation "
               "from the eq. (8) point perturbed by 30%.")
    return save_figure(fig, "shrinkage", dict(paper="beyond (eqs. 8, 9; Cor. 3.3)", caption=caption,
                                              numbers=dict(memorisation=memorisation, generalisation=generalisation),
                                              checks=checks_m + checks_g), config)
