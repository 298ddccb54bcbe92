"""Fig. 6: the hybrid regime (Cor. 3.4) — duplicated samples get memorising columns, the rest generalise.

Data: K = 2 Gaussian modes plus m = 2 points each duplicated n_l times, all on one regular
simplex so the clusters are separable with β < 0 (`numerics.data.hybrid_mixture`). The
ReLU-DAE is trained on the exact loss eq. (6) from several random starts
(`numerics.solvers.train`, tied weights); the lowest loss is shown. Cor. 3.4 predicts one
column ``r_l x_l`` per duplicate, ``r_l² = (n_l‖x_l‖² − nλ)/(n_l‖x_l‖⁴ + n_lσ²‖x_l‖²)``, and an
eq. (8) block for every mode; the allocation rule (`theory.allocation`) predicts how many
neurons each cluster gets. Compared through invariants: cosines of columns to the duplicated
points, and the per-cluster linear maps ``A_k = Σ_{j∈k} w_j w_jᵀ`` against eq. (8)'s
``U diag(a_j) Uᵀ``.

How close the maps must be (derived here). The solver stops at a point W with gradient
``g = ∇L(W)``, ``‖g‖/L0 ≤ gtol``. `numerics.certify.certify` gives μ, the smallest Hessian
eigenvalue at W off the symmetry directions (rotations inside blocks, which leave every
``A_k`` unchanged). To first order (the Hessian varies by O(‖∇³L‖·distance) over the
distances involved, ~1e-4 in the default mode) the local minimiser W* lies within ``‖g‖/μ`` of W, up to a
symmetry. The eq. (8) block point B with the trained neuron counts (one block per cluster,
split columns merged, unused columns zero) is the exact critical point of the loss with
masks frozen on the clusters, so ``∇L(B)`` is exactly Theorem 3.1's switching residual
(of the order of the flip probability Φ(−γ/σ)); hence W* lies within ``‖∇L(B)‖/μ_B`` of B.
With μ_B the same curvature at B (over its live columns) and
``Δ = ‖∇L(W)‖/μ + ‖∇L(B)‖/μ_B``, using ``‖WWᵀ − VVᵀ‖ ≤ (‖W‖₂ + ‖V‖₂)‖W − V‖``,

``‖A_k(W) − A_k^{(8)}‖_F ≤ (2‖W_k‖₂ + Δ)·Δ``  and  ``|r_l − r_l^{Cor. 3.4}|·‖x_l‖ ≤ Δ``,

W_k the columns of cluster k. Every term is measured: no constant is fitted. The bound is
loose by the ratio of μ to the curvatures the gradient actually points along.
"""
from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from scipy.stats import norm

from figures.common import Config, check, column_cosines
from figures.models import exact_fit
from figures.plot import stem
from numerics.certify import certify
from numerics.data import hybrid_mixture
from numerics.model import representation
from numerics.objective import expected_loss_and_grad
from numerics.compare import cluster_maps, column_structure
from theory.allocation import allocate, cluster_spectra, direction_gains
from theory.hybrid import duplicate_r_sq_np
from theory.predict import block_linear_map, partition_weights, switching_margin

SIGMA, LAM = 0.2, 1e-3
K, M, RANK = 2, 2, 2
MEMORISED_COSINE = 0.99


def settings(config: Config) -> dict:
    d = config.pick(256, 128)
    return dict(d=d, K=K, m=M, rank=RANK, n=config.pick(200, 100), n_copies=config.pick(20, 10),
                mean_norm=0.4 * np.sqrt(d), spread=0.05, sigma=SIGMA, lam=LAM, p=M + K * (RANK + 1),
                starts=config.pick(8, 2), seed=config.seed,
                solver=dict(gtol=config.pick(1e-8, 1e-6), max_iter=config.pick(4000, 1500)))


def hybrid_data(par: dict):
    """The data of `settings`: K modes and m duplicated points on one simplex (`numerics.data.hybrid_mixture`)."""
    return hybrid_mixture(par["d"], par["K"], par["m"], par["rank"], par["n"], n_copies=par["n_copies"],
                          mean_norm=par["mean_norm"], spread=par["spread"], seed=par["seed"])


def fit_starts(config: Config, par: dict, X, labels, allocation) -> list:
    """Exact-objective fits from ``par["starts"]`` random starts, with their neurons per cluster."""
    starts = []
    with config.bar(total=par["starts"], desc="fig6 starts") as bar:
        for start in range(par["starts"]):
            fit = exact_fit(config, X, par["p"], SIGMA, LAM, seed=1000 * par["seed"] + start, **par["solver"])
            structure = column_structure(fit["W"], fit["W"], X, labels)
            starts.append(dict(seed=fit["seed"], loss=fit["loss"], rel_grad_norm=fit["rel_grad_norm"],
                               converged=fit["converged"], W=fit["W"],
                               neurons=tuple(structure.neurons_per_cluster[int(k)] for k in allocation.labels)))
            bar.update(1)
    return starts


def cluster_rows(W, X, labels, data, allocation) -> list:
    """Per cluster: neurons, the map A_k against eq. (8), and ‖W_k‖₂ (for the bound)."""
    n = X.shape[1]
    structure = column_structure(W, W, X, labels)
    maps = cluster_maps(W, W, X, labels, rule="owner")
    spectra = {spectrum.label: spectrum for spectrum in cluster_spectra(X, labels)}
    rows = []
    for k in allocation.labels:
        X_k = X[:, labels == k]
        p_k = structure.neurons_per_cluster[int(k)]
        # Neurons beyond the cluster's directions with a positive gain (one for a duplicate, rank + 1
        # for a mode) can only be parallel pieces of kept columns: same map, same loss.
        useful = int(np.sum(direction_gains(spectra[int(k)], n, SIGMA, LAM) > 0))
        kept = min(p_k, useful)
        predicted = block_linear_map(X_k, kept, n, SIGMA, LAM) if kept else np.zeros((X.shape[0],) * 2)
        trained = maps[int(k)]
        error = float(np.linalg.norm(trained - predicted) / max(np.linalg.norm(predicted), 1e-300))
        own = structure.cluster_of_column == k
        rows.append(dict(cluster=int(k), duplicate=bool(k in data.duplicates), n_k=int(X_k.shape[1]),
                         neurons=p_k, useful_directions=useful,
                         allocated=allocation.p_per_cluster[list(allocation.labels).index(k)],
                         relative_map_error=error,
                         trained_eigenvalues=np.sort(np.linalg.eigvalsh(trained))[::-1][:max(p_k, 1) + 1],
                         predicted_eigenvalues=np.sort(np.linalg.eigvalsh(predicted))[::-1][:max(p_k, 1) + 1],
                         kept_directions=kept, predicted_map_norm=float(np.linalg.norm(predicted)),
                         spectral_norm=float(np.linalg.norm(W[:, own], 2)) if own.any() else 0.0))
    return rows


def block_point(X, labels, rows, p: int) -> np.ndarray:
    """B: eq. (8) blocks with the trained clusters' kept directions, unused neurons as zero columns."""
    kept = [row["kept_directions"] for row in sorted(rows, key=lambda row: row["cluster"])]
    B = partition_weights(X, labels, kept, SIGMA, LAM, check_assumptions=False)
    return np.concatenate([B, np.zeros((X.shape[0], p - B.shape[1]))], axis=1)


def certified_distance(W, X, labels, rows, p: int) -> dict:
    """Δ = ‖∇L(W)‖/μ + ‖∇L(B)‖/μ_B (module docstring), with both curvatures from `numerics.certify.certify`.

    μ: smallest Hessian eigenvalue at W off the symmetry directions; μ_B: the same at the block
    point B over its live columns (its unused columns are held at zero: they are not part of
    the minimiser near B, whose zero-column test is not needed here).
    """
    report = certify(W, W, X, SIGMA, LAM, tied=True)
    _, g1, g2 = expected_loss_and_grad(W, W, X, SIGMA, LAM)
    B = block_point(X, labels, rows, p)
    # gtol = 1: the curvature is wanted whatever B's gradient (the switching residual) is.
    block_report = certify(B, B, X, SIGMA, LAM, tied=True, gtol=1.0, check_zero_columns=False)
    _, b1, b2 = expected_loss_and_grad(B, B, X, SIGMA, LAM)
    mu, mu_block = report.min_eigenvalue, block_report.min_eigenvalue
    gradient, block_gradient = float(np.linalg.norm(g1 + g2)), float(np.linalg.norm(b1 + b2))
    distance = gradient / mu + block_gradient / mu_block if min(mu, mu_block) > 0 else float("inf")
    return dict(verdict=report.verdict, min_eigenvalue=mu, grad_norm=gradient, block_min_eigenvalue=mu_block,
                block_grad_norm=block_gradient, distance=distance,
                block_point_neurons=[row["kept_directions"] for row in sorted(rows, key=lambda row: row["cluster"])])


def representations(W, X, data, order, seed: int) -> list:
    """h of a duplicated sample and of a mode-0 sample, each with one noise draw, columns in ``order``."""
    rng = np.random.default_rng(seed)
    samples = [(int(np.flatnonzero(data.is_duplicate)[0]), "a duplicated sample"), (0, "a sample of mode 0")]
    out = []
    for index, what in samples:
        y = X[:, [index]] + SIGMA * rng.standard_normal((X.shape[0], 1))
        out.append((representation(W, y).ravel()[order], what))
    return out


def compute(config: Config) -> dict:
    """Fits from random starts, the best one's columns and maps against Cor. 3.4 and eq. (8), and Δ."""
    par = settings(config)
    data = hybrid_data(par)
    X, labels, n = data.X, data.labels, data.X.shape[1]
    allocation = allocate(X, labels, par["p"], SIGMA, LAM)
    starts = fit_starts(config, par, X, labels, allocation)
    best = min(starts, key=lambda s: s["loss"])
    W = best["W"]
    structure = column_structure(W, W, X, labels)
    owner = structure.cluster_of_column
    order = np.argsort(owner, kind="stable")
    cos_dup = column_cosines(W, data.points)                 # (p, m)
    rows = cluster_rows(W, X, labels, data, allocation)
    s = np.sum(data.points ** 2, axis=0)
    r_predicted = np.sqrt(duplicate_r_sq_np(s, data.n_copies, n, SIGMA, LAM))
    dup_columns = [int(np.argmax(cos_dup[:, l])) for l in range(M)]
    # Energy of all columns copying x_l (a column split in parallel pieces is the same minimiser).
    copying = cos_dup >= MEMORISED_COSINE
    r_trained = np.sqrt(np.sum(W ** 2, axis=0) @ copying) / np.sqrt(s)
    W_block = partition_weights(X, labels, list(allocation.p_per_cluster), SIGMA, LAM, check_assumptions=False)
    gamma = switching_margin(W_block, X)
    numbers = dict(
        allocation_predicted=dict(zip(map(int, allocation.labels), allocation.p_per_cluster)),
        allocation_trained=structure.neurons_per_cluster, regimes_predicted=allocation.regimes,
        loss_predicted=allocation.loss, loss_trained=best["loss"], best_start_seed=best["seed"],
        starts_reaching_allocation=int(sum(s_["neurons"] == allocation.p_per_cluster for s_ in starts)),
        starts=[{k: v for k, v in s_.items() if k != "W"} for s_ in starts],
        duplicate_column_cosine=[float(cos_dup[j, l]) for l, j in enumerate(dup_columns)],
        duplicate_active_only_on_copies=bool(all(
            np.array_equal(np.flatnonzero(W[:, j] @ X > 0), np.flatnonzero(labels == data.duplicates[l]))
            for l, j in enumerate(dup_columns))),
        r_trained=r_trained, r_predicted=r_predicted, duplicate_norms=np.sqrt(s), clusters=rows,
        column_max_cosine=column_cosines(W, X).max(axis=1), column_owner=owner, gamma=gamma,
        gamma_over_sigma=gamma / SIGMA, flip_probability=float(norm.cdf(-gamma / SIGMA)),
        certificate=certified_distance(W, X, labels, rows, par["p"]))
    caption = ("Fig. 6 (paper: duplicated samples get memorising columns, the rest generalising ones). Exact-objective "
               f"training from {par['starts']} random starts on a synthetic hybrid mixture (d = {par['d']}); the lowest "
               "loss is shown. Top: cosines of columns to the duplicated points and mode means; max cosine to any "
               "training sample; per-cluster map spectra against eq. (8) / Cor. 3.4. Bottom: h of a duplicated and of "
               "a mode sample; final loss and allocation of every start against the allocation rule.")
    arrays = dict(cosines=np.concatenate([cos_dup, column_cosines(W, data.base.means)], axis=1)[order], order=order,
                  duplicates=list(data.duplicates), representations=representations(W, X, data, order, config.seed))
    return dict(paper="Fig. 6", caption=caption, parameters=par, **numbers, arrays=arrays)


def draw_columns(figure, axes, numbers) -> None:
    """Top left and centre: cosines of columns to duplicated points and mode means; max cosine to the data."""
    arrays = numbers["arrays"]
    table, order, duplicates = arrays["cosines"], arrays["order"], arrays["duplicates"]
    owner = np.asarray(numbers["column_owner"])
    ax = axes[0]
    image = ax.imshow(table, cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto")
    ax.set_xticks(range(M + K), [f"duplicate {l}" for l in duplicates] + [f"mode {k} mean" for k in range(K)],
                  fontsize=7, rotation=30)
    ax.set_yticks(range(len(order)), [f"col {j} ({'duplicate' if owner[j] in duplicates else 'mode'} {owner[j]})"
                                      for j in order], fontsize=6)
    for (i, j), value in np.ndenumerate(table):
        ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=5)
    figure.colorbar(image, ax=ax, fraction=0.04)
    ax.set_title("cosine of each column to the duplicated points and the mode means", fontsize=8)
    ax = axes[1]
    colors = ["C3" if owner[j] in duplicates else "C0" for j in order]
    ax.bar(range(len(order)), np.asarray(numbers["column_max_cosine"])[order], color=colors)
    ax.axhline(MEMORISED_COSINE, ls="--", color="k", lw=0.8, label="0.99")
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("column (red: owned by a duplicate, blue: by a mode)", fontsize=7)
    ax.set_title("max cosine of each column to any training sample", fontsize=8)
    ax.legend(fontsize=7)


def draw_spectra(ax, rows) -> None:
    for row in rows:
        x0 = row["cluster"]
        t, pr = row["trained_eigenvalues"], row["predicted_eigenvalues"]
        ax.scatter(np.full(t.size, x0) - 0.1, t, marker="o", color="C3" if row["duplicate"] else "C0", s=18)
        ax.scatter(np.full(pr.size, x0) + 0.1, pr, marker="x", color="k", s=18)
    ax.set_xticks([r["cluster"] for r in rows],
                  [("duplicate" if r["duplicate"] else "mode") + f" {r['cluster']}\nerr {r['relative_map_error']:.0e}"
                   for r in rows], fontsize=7)
    ax.set_ylabel("eigenvalue of the cluster's map A_k", fontsize=7)
    ax.set_title("A_k spectra: trained (o) vs eq. (8) / Cor. 3.4 (x)", fontsize=8)


def draw_starts(ax, numbers) -> None:
    starts = numbers["starts"]
    allocation = tuple(numbers["allocation_predicted"].values())
    hit = [tuple(s["neurons"]) == allocation for s in starts]
    ax.scatter(range(len(starts)), [s["loss"] for s in starts], c=["C2" if h else "C1" for h in hit])
    ax.axhline(numbers["loss_predicted"], ls="--", color="k", lw=0.8, label="allocation rule's block loss")
    for i, start in enumerate(starts):
        ax.annotate(str(tuple(start["neurons"])), (i, start["loss"]), fontsize=6, rotation=20)
    ax.set_xlabel("random start", fontsize=7)
    ax.set_ylabel("exact loss eq. (6) at convergence", fontsize=7)
    ax.set_title("starts: neurons per cluster (green = the allocation rule's)", fontsize=8)
    ax.legend(fontsize=7)


def draw(numbers) -> Figure:
    """Columns, spectra, two representations and the random starts (captioned in the manifest)."""
    par = numbers["parameters"]
    figure = Figure(figsize=(14, 8))
    axes = figure.subplots(2, 3)
    draw_columns(figure, axes[0, :2], numbers)
    draw_spectra(axes[0, 2], numbers["clusters"])
    for ax, (h, what) in zip(axes[1, :2], numbers["arrays"]["representations"]):
        stem(ax, h, title=f"representation h of {what} (+ noise), columns as in the left panels", xlabel="column")
    draw_starts(axes[1, 2], numbers)
    figure.suptitle(f"Fig. 6: hybrid regime (Cor. 3.4), d = {par['d']}, {K} modes + {M} duplicated points x "
                    f"{par['n_copies']} copies, p = {par['p']}, sigma = {SIGMA:g}", fontsize=10)
    figure.tight_layout()
    return figure


def map_check(numbers) -> dict:
    """Modes' maps against eq. (8) within ``(2‖W_k‖₂ + Δ)Δ/‖A_k^{(8)}‖_F`` (module docstring); worst cluster."""
    distance = float(numbers["certificate"]["distance"])        # "inf" in JSON when μ or μ_B <= 0
    modes = [r for r in numbers["clusters"] if not r["duplicate"]]
    bounds = [(2 * r["spectral_norm"] + distance) * distance / r["predicted_map_norm"] for r in modes]
    worst = max(range(len(modes)), key=lambda i: modes[i]["relative_map_error"] / bounds[i])
    error, bound = modes[worst]["relative_map_error"], bounds[worst]
    return check("modes' maps match eq. (8): relative Frobenius error <= (2||W_k||_2 + D) D / ||A_k||_F, "
                 "D = ||grad L(W)||/mu + ||grad L(block point)||/mu_B (certified distance; worst mode)",
                 error, bound, bool(np.isfinite(bound) and error <= bound))


def r_check(numbers) -> dict:
    """Duplicates' r_l against Cor. 3.4 within ``Δ/(r_l‖x_l‖)`` relative (module docstring); worst duplicate."""
    distance = float(numbers["certificate"]["distance"])
    trained, predicted = np.asarray(numbers["r_trained"]), np.asarray(numbers["r_predicted"])
    errors = np.abs(trained - predicted) / predicted
    bounds = distance / (predicted * np.asarray(numbers["duplicate_norms"]))
    worst = int(np.argmax(errors / bounds))
    return check("duplicate columns' r_l match Cor. 3.4 within D / (r_l ||x_l||) relative (certified distance D; "
                 "worst duplicate)", float(errors[worst]), float(bounds[worst]),
                 bool(np.isfinite(bounds[worst]) and errors[worst] <= bounds[worst]))


def checks(numbers) -> list:
    """Cor. 3.4's structure, the allocation rule's loss, and the certified distance to eq. (8) / Cor. 3.4."""
    cosine = min(numbers["duplicate_column_cosine"])
    certificate = numbers["certificate"]
    curvature = min(float(certificate["min_eigenvalue"]), float(certificate["block_min_eigenvalue"]))
    return [
        check("each duplicate owns a column with cosine >= 0.99, active on its copies only (Cor. 3.4)",
              cosine, MEMORISED_COSINE, cosine >= MEMORISED_COSINE and numbers["duplicate_active_only_on_copies"]),
        check("no start beats the allocation rule's block loss (it is the candidate global minimiser; "
              "tolerance 1e-3 relative for the e^{-c gamma^2/sigma^2} residual)", numbers["loss_trained"],
              numbers["loss_predicted"], numbers["loss_trained"] >= numbers["loss_predicted"] * (1 - 1e-3)),
        check("the best fit is a strict local minimum off the symmetry directions and the block point's live "
              "Hessian is positive there (mu, mu_B > 0), so the distance D is defined",
              curvature, 0.0, certificate["verdict"] == "strict local minimum" and curvature > 0),
        map_check(numbers),
        r_check(numbers),
    ]
