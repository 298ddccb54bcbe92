"""Beyond the paper: which clusters are memorised, as a function of (n, p) and of σ, against the allocation rule.

Data: one Gaussian mode (n_mode samples, rank-3 covariance with decaying variances) and one
point duplicated n_l times, at antipodal positions (β = −1 < 0, separable). The allocation
rule (`theory.allocation`, derived here) gives each neuron to the direction with the largest
gain ``(Λ − nλ)²/(Λ + n_kσ²)``: the duplicated point (Λ = n_l‖x‖²) is *memorised* — gets its
own column — exactly when its gain is among the p largest. Its gain grows with n_l, and
noise hurts the mode's low-variance directions (Λ = n_k e, gain ≈ n_k e²/σ² once σ² ≫ e)
before the duplicate (gain n_l‖x‖⁴/(‖x‖² + σ²) with ‖x‖² ≫ e), so both more copies and more
noise push towards memorising the duplicate. σ stays ≤ 1 so that the switching margin
γ ≈ 1.5 keeps γ/σ ≳ 1.5 (Theorem 3.1's residual e^{−cγ²/σ²}).

Every cell is trained on the exact loss eq. (6) from a few random starts and, in addition,
from the rule's own block point (eq. (8) blocks, perturbed by 5%), all with
`numerics.solvers.train` (tied weights). The colour shows the regime of the lowest loss found
(duplicate owns a column with cosine ≥ 0.99, active on its copies only, or not), the text the
neurons (mode, duplicate) of the best *random* start, starred where the rule's start reached a
lower loss than every random start (random starts also stop in other local minima). The
lines are the allocation rule's boundaries.

"Lower" is judged against the rule fit's precision: a fit stopped at gradient g near a
minimiser whose Hessian is ≥ μ > 0 off the symmetry directions (`numerics.certify.certify`)
lies above that minimum's loss by at most ``‖g‖²/(2μ)`` (quadratic model, first order).
Random starts can stop in minima with the rule's neuron counts but a lower loss than the
rule's balanced block (an unbalanced O_k); the claims here are about the allocation.
"""
from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from figures.common import Config, check, column_cosines
from figures.models import exact_fit
from numerics.certify import certify
from numerics.data import duplicated_samples, equiangular_means, gaussian_mixture
from numerics.compare import column_structure
from numerics.geometry import loss_scale
from theory.allocation import allocate
from theory.predict import predict

D, N_MODE, RANK, LAM = 12, 40, 3, 1e-3
MODE_NORM, DUPLICATE_NORM, SPREAD = 3.0, 1.5, 0.15     # small spread: stable masks (Theorem 3.1)
MEMORISED_COSINE = 0.99
GTOL, MAX_ITER, STARTS = 1e-7, 3000, 2


def dataset(n_copies: int, seed: int):
    """The mode plus n_copies copies of the antipodal point (labels: mode 0, duplicate 1)."""
    vertices = equiangular_means(D, 2, None, [MODE_NORM, DUPLICATE_NORM], seed)
    mode = gaussian_mixture(D, 1, RANK, N_MODE, means=vertices[:, :1], spread=SPREAD, decay=1.0, seed=seed)
    return duplicated_samples(mode, n_copies=n_copies, points=vertices[:, 1:])


def loss_precision(fit: dict, X, sigma: float) -> dict:
    """How far above its minimum a fit's loss can be: ``‖∇L‖²/(2μ)``, μ from `numerics.certify.certify`.

    Near a minimiser W* with Hessian ≥ μ > 0 off the symmetry directions,
    ``L(W) − L(W*) ≤ ‖∇L(W)‖²/(2μ)`` to first order (quadratic model); infinite if μ ≤ 0.
    """
    report = certify(fit["W"], fit["W"], X, sigma, LAM, tied=True, gtol=1e-6)
    mu = report.min_eigenvalue
    gradient = fit["rel_grad_norm"] * loss_scale(X)
    return dict(verdict=report.verdict, min_eigenvalue=mu,
                loss_precision=gradient ** 2 / (2 * mu) if mu > 0 else float("inf"))


def cell(config: Config, n_copies: int, p: int, sigma: float, starts: int) -> dict:
    """One (n_l, p, σ): the best of ``starts`` random starts and the rule's perturbed block start."""
    data = dataset(n_copies, config.seed)
    X, labels = data.X, data.labels
    allocation = allocate(X, labels, p, sigma, LAM)
    fits = [exact_fit(config, X, p, sigma, LAM, seed=1000 * config.seed + s, gtol=GTOL, max_iter=MAX_ITER)
            for s in range(starts)]
    best = min(fits, key=lambda f: f["loss"])
    start = predict(X, labels, p, sigma, LAM, check_assumptions=False).W
    from_rule = exact_fit(config, X, p, sigma, LAM, seed=config.seed, init=start, perturb=0.05, gtol=GTOL,
                          max_iter=MAX_ITER)
    lowest = min([best, from_rule], key=lambda f: f["loss"])
    trained, rule = regime(best["W"], data), regime(from_rule["W"], data)
    found = regime(lowest["W"], data)
    return dict(n_copies=n_copies, p=p, sigma=sigma,
                predicted=allocation.p_per_cluster, predicted_regimes=allocation.regimes,
                predicted_memorised=allocation.p_per_cluster[1] >= 1, predicted_loss=allocation.loss,
                trained=trained["neurons"], trained_memorised=trained["memorised"],
                duplicate_cosine=trained["cosine"], losses=[f["loss"] for f in fits], best_loss=best["loss"],
                rel_grad_norm=best["rel_grad_norm"],
                rule_start=dict(neurons=rule["neurons"], loss=from_rule["loss"], rel_grad_norm=from_rule["rel_grad_norm"],
                                **loss_precision(from_rule, X, sigma)),
                lowest=dict(neurons=found["neurons"], memorised=found["memorised"], loss=lowest["loss"]),
                rule_start_lower=bool(from_rule["loss"] < best["loss"] * (1 - 1e-6)))


def regime(W, data) -> dict:
    """Neurons per cluster (mode, duplicate) and whether the duplicate owns a memorising column."""
    X, labels = data.X, data.labels
    structure = column_structure(W, W, X, labels)
    cosine = column_cosines(W, data.points)[:, 0]
    j = int(np.argmax(cosine))
    own = np.array_equal(np.flatnonzero(W[:, j] @ X > 0), np.flatnonzero(labels == 1))
    return dict(neurons=(structure.neurons_per_cluster[0], structure.neurons_per_cluster[1]),
                memorised=bool(cosine[j] >= MEMORISED_COSINE and own), cosine=float(cosine[j]))


def compute(config: Config) -> dict:
    """Every cell of both panels: over (n_l, p) at σ = 0.2 and over (σ, p) at n_l = 1."""
    ps = config.pick([1, 2, 3, 4], [1, 2, 3])
    copies = config.pick([1, 2, 4, 16, 64, 256], [1, 4, 256])
    sigmas = config.pick([0.05, 0.1, 0.2, 0.4, 0.7, 1.0], [0.1, 0.5, 1.0])
    sigma0, copies0 = 0.2, 1
    tasks = [dict(n_copies=n_copies, p=p, sigma=sigma0, starts=STARTS) for p in ps for n_copies in copies]
    tasks += [dict(n_copies=copies0, p=p, sigma=float(sigma), starts=STARTS) for p in ps for sigma in sigmas]
    done = config.sweep(cell, tasks, shared=dict(config=config.worker), desc="phase cells")
    split = len(ps) * len(copies)
    by_copies = [done[i:i + len(copies)] for i in range(0, split, len(copies))]
    by_sigma = [done[split + i:split + i + len(sigmas)] for i in range(0, len(ps) * len(sigmas), len(sigmas))]
    cells = [c for row in by_copies + by_sigma for c in row]
    caption = ("Regime of a duplicated point next to a Gaussian mode, trained on eq. (6) (best of a few random starts), "
               "and from the rule's perturbed block point, against the allocation rule's water-filling prediction "
               "(black lines). Left: over its number of copies "
               "n_l and p at sigma = 0.2; right: over sigma and p with n_l = 1.")
    parameters = dict(d=D, n_mode=N_MODE, mode_norm=MODE_NORM, duplicate_norm=DUPLICATE_NORM, spread=SPREAD,
                      rank=RANK, decay=1.0, lam=LAM,
                      ps=ps, copies=copies, sigmas=sigmas, sigma_for_copies=sigma0, copies_for_sigma=copies0,
                      starts=STARTS, solver=dict(gtol=GTOL, max_iter=MAX_ITER, tied=True), seed=config.seed)
    return dict(paper="beyond (allocation rule, derived here)", caption=caption, parameters=parameters,
                over_copies=by_copies, over_sigma=by_sigma,
                agreement_regime=float(np.mean([c["lowest"]["memorised"] == c["predicted_memorised"] for c in cells])),
                agreement_counts=float(np.mean([tuple(c["lowest"]["neurons"]) == tuple(c["predicted"])
                                                for c in cells])),
                random_starts_reaching_allocation=float(np.mean([tuple(c["trained"]) == tuple(c["predicted"])
                                                                 for c in cells])))


def panel(ax, cells, xs, ps, xlabel, xfmt):
    grid = np.array([[c["lowest"]["memorised"] for c in row] for row in cells], dtype=float)   # (p, x)
    ax.imshow(grid, origin="lower", cmap="RdYlBu_r", vmin=-0.5, vmax=1.5, aspect="auto")
    for i, row in enumerate(cells):
        for k, c in enumerate(row):
            star = "*" if c["rule_start_lower"] else ""
            ax.text(k, i, f"{c['trained'][0]},{c['trained'][1]}{star}", ha="center", va="center", fontsize=7,
                    color="k" if c["lowest"]["memorised"] == c["predicted_memorised"] else "m", weight="bold")
    # The allocation rule's boundary: lowest p at which the duplicate is memorised, per column.
    predicted = np.array([[c["predicted_memorised"] for c in row] for row in cells])
    edge = [np.argmax(predicted[:, k]) if predicted[:, k].any() else len(ps) for k in range(len(xs))]
    steps_x = np.repeat(np.arange(len(xs) + 1) - 0.5, 2)[1:-1]
    steps_y = np.repeat(np.array(edge) - 0.5, 2)
    ax.plot(steps_x, steps_y, color="k", lw=2, label="allocation rule: duplicate memorised above")
    generalised = np.array([[c["predicted"][0] >= 2 for c in row] for row in cells])
    edge_g = [np.argmax(generalised[:, k]) if generalised[:, k].any() else len(ps) for k in range(len(xs))]
    ax.plot(steps_x, np.repeat(np.array(edge_g) - 0.5, 2), color="k", lw=1.2, ls="--",
            label="allocation rule: mode generalised (p_k >= 2) above")
    ax.set_xticks(range(len(xs)), [xfmt(x) for x in xs], fontsize=7)
    ax.set_yticks(range(len(ps)), [str(p) for p in ps], fontsize=7)
    ax.set_xlabel(xlabel, fontsize=8)
    ax.set_ylabel("p (neurons)", fontsize=8)
    ax.legend(fontsize=6, loc="upper left")


def draw(numbers) -> Figure:
    """The two phase diagrams, with the allocation rule's boundaries."""
    par = numbers["parameters"]
    figure = Figure(figsize=(13, 4.8))
    axes = figure.subplots(1, 2)
    panel(axes[0], numbers["over_copies"], par["copies"], par["ps"],
          f"n_l: copies of the duplicated point (n = {N_MODE} + n_l), sigma = {par['sigma_for_copies']:g}", str)
    axes[0].set_title("regime over (n, p): red = duplicate memorised by its own column (lowest loss found)\n"
                      "text: best random start's neurons (mode, duplicate); * = the rule's start found a lower loss",
                      fontsize=8)
    panel(axes[1], numbers["over_sigma"], par["sigmas"], par["ps"], f"sigma (n_l = {par['copies_for_sigma']})",
          lambda s: f"{s:.2g}")
    axes[1].set_title("regime over sigma and p (same colours)", fontsize=8)
    figure.suptitle(f"Beyond the paper: phase diagram of the duplicate's regime vs the allocation rule "
                    f"(d={D}, mode: n={N_MODE}, rank {RANK}; lambda={LAM:g}; {par['starts']} random starts + the rule's "
                    "start)", fontsize=10)
    figure.tight_layout()
    return figure


def beats_rule(cell: dict) -> bool:
    """Whether the best random start found another allocation with a loss below the rule fit's minimum.

    The rule fit's loss is within ``loss_precision`` of its minimum (`loss_precision`).
    """
    other = tuple(cell["trained"]) != tuple(cell["predicted"])
    precision = float(cell["rule_start"]["loss_precision"])           # "inf" in JSON when μ <= 0
    return bool(other and cell["best_loss"] < cell["rule_start"]["loss"] - precision)


def checks(numbers) -> list:
    """The allocation rule against the lowest loss found in every cell."""
    cells = [c for row in numbers["over_copies"] + numbers["over_sigma"] for c in row]
    agree, agree_counts = numbers["agreement_regime"], numbers["agreement_counts"]
    beaten = sum(beats_rule(c) for c in cells)
    return [check("regime of the duplicate at the lowest loss found agrees with the allocation rule in every cell",
                  agree, 1.0, agree == 1.0),
            check("neurons per cluster at the lowest loss found equal the allocation in >= 90% of cells", agree_counts,
                  0.9, agree_counts >= 0.9),
            check("no random start finds another allocation with a lower loss than the rule's (beyond the rule fit's "
                  "precision ||grad L||^2/(2 mu))", beaten, 0, beaten == 0)]
