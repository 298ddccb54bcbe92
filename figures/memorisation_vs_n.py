"""Memorisation of generated samples against the training-set size n, for several widths p, beside the theory's prediction.

**Data.** A K-mode Gaussian mixture (simplex means, rank-r spreads, small spread; the
Cor. 3.3 setting, `numerics.data.gaussian_mixture` with deterministic mode sizes n_k =
round(n/K)). Below n = K every mode holds at most one sample; from n = 2K on, every mode
holds several.

**Model sampled.** At each (n, p) the theory's best block solution at every σ: eq. (8)
blocks on the modes with the allocation rule's neurons per mode (`theory.diffusion.
generalizing_denoiser(…, "auto", p=p)`). A mode holding one sample is a rank-1 cluster, its
block is eq. (9)'s column r·x (Cor. 3.4's memorised regime); a mode holding several gets a
generalising block (or a centroid column when p_k = 1). Samples: the reverse-VE sampler
(`numerics.diffusion.ve_sample`, no clamp); copies counted by the 1/3 nearest-neighbour rule
on directions (`memorization_report(metric="cosine")`) and in ℓ2.

**What is predicted** (derived here, from the allocation rule at each σ of a grid over
[σ_min, σ_max], `predicted_copy_fraction`): the fraction of *represented* modes (p_k > 0)
whose samples are copies by direction — the rank-1 modes, and the one-neuron modes whose
single direction u_1 happens to pass the 1/3 rule — i.e. the share of copies if the sampler
splits its samples evenly among the represented modes. It is 1 while n ≤ K (only
singletons; p only decides how many are represented), near 0 from n = 2K on, and in between
it depends on p: the gain of a mode's top direction grows with its size n_k, so with few
neurons the singletons are the first to go unrepresented and the fraction drops.

**What is measured**: the fraction of m samples that the 1/3 rule calls copies. Between
n = K and 2K (modes of one and of two samples side by side) the sampler does not split its
samples evenly: modes with more neurons draw more of them, and the measured share falls below
the even-split prediction there (drawn, not checked).

**Why not eq. (9) per sample up to n = p.** The block formula for stable masks
(`theory.allocation.predicted_block_loss`) prefers one eq. (9) column per sample over the
per-mode blocks whenever p ≥ n, i.e. it predicts copies up to n = p (dashed lines). But
samples of one mode are positively correlated (β1 > 0, outside Cor. 3.2): their eq. (9)
columns fire together, and the *exact* loss eq. (6) (`numerics.objective.expected_loss`)
of that point exceeds the per-mode blocks' as soon as a mode holds two samples. The right
panel shows both loss ratios; a check states it. (Sampling that point is unstable: the
columns of a mode fire together, ``W_S W_Sᵀ`` has an eigenvalue above 1, and the sampler
amplifies it.)

Checks: copies are the majority of samples where the prediction is 1 at every σ; at most
`NEW_AT_MOST` of samples are copies where it is 0 at every σ; the exact loss prefers the
per-mode blocks at every n ≤ p with a mode of two or more samples.
"""
from __future__ import annotations

import numpy as np

from figures.common import Config, check
from figures.fig2_sampling import COPY_MAJORITY, NEW_AT_MOST
from numerics.data import gaussian_mixture
from numerics.diffusion import memorization_report, sigma_grid, ve_sample
from numerics.objective import expected_loss
from numerics.validation import as_matrix, labels_for
from theory.allocation import allocate, cluster_spectra
from theory.diffusion import generalizing_denoiser
from theory.predict import block_weights, partition_weights

PAPER = "beyond the paper (Fig. 2's two regimes as a function of n)"
SAMPLER = dict(steps=60, sigma_max=2.0, sigma_min=0.02)
PREDICTION_SIGMAS = 8          # σ nodes (geometric over [σ_min, σ_max]) where the allocation is evaluated
LOSS_SIGMAS = (0.02, 0.2, 2.0)


def parameters(config: Config) -> dict:
    return dict(d=32, K=8, rank=2, spread=0.1, mean_norm=3.0, lam=0.0,
                n_values=config.pick([2, 4, 6, 8, 10, 12, 14, 16, 24, 32, 64, 128, 512, 2048], [4, 8, 12, 16, 64]),
                widths=[4, 8, 32], samples=config.pick(256, 64), seed=config.seed, sampler=SAMPLER,
                prediction_sigmas=np.geomspace(SAMPLER["sigma_max"], SAMPLER["sigma_min"], PREDICTION_SIGMAS),
                loss_sigmas=LOSS_SIGMAS)


def _mixture(par: dict, n: int):
    return gaussian_mixture(par["d"], par["K"], par["rank"], n, mean_norm=par["mean_norm"], spread=par["spread"],
                            seed=par["seed"])


def predicted_copy_fraction(X, labels, p: int, sigma: float, lam: float = 0.0) -> float:
    """Share of the represented modes whose samples the theory predicts to be copies by direction; NaN if none.

    From the allocation rule at σ, per mode with p_k > 0: a rank-1 mode ("memorised") has one
    column along its sample, so every sample it produces points along that sample: a copy. A
    mode with one neuron but several samples ("centroid") produces samples along one fixed
    direction, its top eigenvector u_1; whether that is a copy is decided by applying the 1/3
    rule to u_1 itself. A block with p_k ≥ 2 ("generalised") spreads its samples over p_k
    dimensions: not copies (up to the rule's chance level, about 3^{-p_k}).

    >>> X = np.array([[2.0, -1.0, -1.1], [0.0, 1.7, 1.8]])         # a singleton and a two-sample mode
    >>> predicted_copy_fraction(X, [0, 1, 1], p=3, sigma=0.1)        # mode 1 gets 2 neurons: generalised
    0.5
    >>> predicted_copy_fraction(X, [0, 1, 1], p=2, sigma=0.1)        # one neuron: u_1 lies between the two
    0.5
    """
    X = as_matrix("X", X, cols_name="n")
    labels = labels_for("labels", labels, X.shape[1])
    allocation = allocate(X, labels, p, sigma, lam)
    verdicts = []
    for label, p_k, regime in zip(allocation.labels, allocation.p_per_cluster, allocation.regimes):
        if regime == "centroid":
            direction = block_weights(X[:, labels == label], 1, X.shape[1], sigma, lam, check_assumptions=False)
            verdicts.append(float(memorization_report(direction, X, metric="cosine").memorized[0]))
        elif p_k > 0:
            verdicts.append(float(regime == "memorised"))
    return float(np.mean(verdicts)) if verdicts else float("nan")


def _loss_ratios(X, labels, p: int, sigma: float, lam: float) -> dict:
    """Exact and block-formula loss of eq. (9) per sample over eq. (8) per mode (both by the allocation rule)."""
    out = {}
    for name, partition in (("per_sample", np.arange(X.shape[1])), ("per_mode", labels)):
        allocation = allocate(X, partition, p, sigma, lam)
        W = partition_weights(X, partition, list(allocation.p_per_cluster), sigma, lam, check_assumptions=False)
        out[name] = (expected_loss(W, W, X, sigma, lam), allocation.loss)
    return dict(sigma=sigma, exact=out["per_sample"][0] / out["per_mode"][0],
                block=out["per_sample"][1] / out["per_mode"][1])


def cell(par: dict, n: int, p: int) -> dict:
    """One (n, p): sample the allocation-rule denoiser, count copies, predict the copy fraction."""
    mix = _mixture(par, n)
    X, labels = mix.X, mix.labels
    denoiser = generalizing_denoiser(X, labels, "auto", par["lam"], p=p, check_assumptions=False)
    samples = ve_sample(denoiser, par["d"], par["samples"], seed=par["seed"] + 1, **SAMPLER)
    cosine = memorization_report(samples, X, metric="cosine")
    l2 = memorization_report(samples, X)
    predicted = [predicted_copy_fraction(X, labels, p, s, par["lam"]) for s in par["prediction_sigmas"]]
    cell = dict(n=n, p=p, mode_sizes=np.bincount(labels, minlength=par["K"]),
                singleton_modes=int(sum(s.rank_one for s in cluster_spectra(X, labels))),
                cosine_ratio=cosine.ratio, l2_ratio=l2.ratio,
                standard_error=float(np.sqrt(max(cosine.ratio * (1 - cosine.ratio), 1e-12) / par["samples"])),
                predicted=predicted, predicted_min=float(np.nanmin(predicted)), predicted_max=float(np.nanmax(predicted)),
                neurons_per_mode_at_sigma_min=denoiser.neurons_per_cluster(SAMPLER["sigma_min"]))
    if n <= p and np.bincount(labels).max() >= 2:
        cell["loss_ratios"] = [_loss_ratios(X, labels, p, s, par["lam"]) for s in par["loss_sigmas"]]
    return cell


def compute(config: Config) -> dict:
    """Sample the allocation-rule denoiser at every (n, p); predicted copy fraction and exact-loss comparison."""
    par = parameters(config)
    cells = config.sweep(cell, [dict(n=n, p=p) for p in par["widths"] for n in par["n_values"]],
                         shared=dict(par=par), desc="memorisation_vs_n")
    return dict(paper=PAPER, parameters=par, cells=cells, caption=CAPTION,
                sampler_sigmas=sigma_grid(**SAMPLER))


CAPTION = ("Memorisation ratio of 1/3-rule copies (directions: solid; l2: dotted) of reverse-VE samples from the "
           "theory's best block solution (eq. (8) per mode, eq. (9) for single-sample modes, allocation rule with p "
           "neurons) against n, on a K-mode mixture; shaded: the predicted fraction of represented modes that are "
           "single samples over the sigma range; dashed: n = p, where the stable-mask block formula would put the "
           "boundary. Right: loss of eq. (9) per sample over eq. (8) per mode, exact (eq. (6)) and block formula.")


def checks(numbers: dict) -> list:
    """Measured copies against the predicted regime; the exact loss against the block formula."""
    cells = numbers["cells"]
    copies = [c for c in cells if c["predicted_min"] == 1.0]
    new = [c for c in cells if c["predicted_max"] == 0.0]
    losses = [(c["n"], c["p"], r["sigma"], r["exact"], r["block"]) for c in cells for r in c.get("loss_ratios", [])]
    out = [
        check("where every represented mode is a single sample at every sigma (prediction 1), most samples are "
              "copies (1/3 rule on directions)", min(c["cosine_ratio"] for c in copies), f"> {COPY_MAJORITY}",
              bool(copies) and min(c["cosine_ratio"] for c in copies) > COPY_MAJORITY),
        check("where no represented mode is a single sample at any sigma (prediction 0), samples are new "
              "(1/3 rule, directions and l2)", max(max(c["cosine_ratio"], c["l2_ratio"]) for c in new),
              f"<= {NEW_AT_MOST}", bool(new) and max(max(c["cosine_ratio"], c["l2_ratio"]) for c in new) <= NEW_AT_MOST),
        check("derived here: for n <= p with a mode of two or more samples the exact loss prefers eq. (8) per mode "
              "over eq. (9) per sample (exact-loss ratio > 1), though the stable-mask block formula prefers eq. (9) "
              "(block ratio < 1)", min(r[3] for r in losses) if losses else None, "> 1 (exact)",
              bool(losses) and all(r[3] > 1 for r in losses)),
    ]
    return out


def draw(numbers: dict):
    """Left: copies vs n per width with the predicted band; right: the two loss ratios vs n."""
    from matplotlib.figure import Figure

    par, cells = numbers["parameters"], numbers["cells"]
    fig = Figure(figsize=(12, 4.5))
    left, right = fig.subplots(1, 2)
    for colour, p in zip(("C0", "C1", "C2"), par["widths"]):
        row = sorted((c for c in cells if c["p"] == p), key=lambda c: c["n"])
        n = [c["n"] for c in row]
        left.fill_between(n, [c["predicted_min"] for c in row], [c["predicted_max"] for c in row], color=colour,
                          alpha=0.25, lw=3, label=f"p = {p}: predicted (range over sigma)")
        left.errorbar(n, [c["cosine_ratio"] for c in row], yerr=[2 * c["standard_error"] for c in row],
                      color=colour, marker="o", ms=3, label=f"p = {p}: copies by direction")
        left.plot(n, [c["l2_ratio"] for c in row], color=colour, ls=":", marker=".", label=f"p = {p}: copies in l2")
        left.axvline(p, color=colour, ls="--", lw=0.8)
        losses = [(c["n"], c["loss_ratios"]) for c in row if "loss_ratios" in c]
        if not losses:
            continue
        for j, (s, marker) in enumerate(zip(par["loss_sigmas"], ("o", "s", "^"))):
            right.plot([m for m, _ in losses], [r[j]["exact"] for _, r in losses], color=colour, marker=marker,
                       label=f"p = {p}, sigma = {s:g}: exact")
            right.plot([m for m, _ in losses], [r[j]["block"] for _, r in losses], color=colour, marker=marker,
                       ls=":", mfc="none")
    left.axvline(par["K"], color="k", lw=0.8)
    left.axvline(2 * par["K"], color="k", lw=0.8)
    left.set_xscale("log")
    left.set_xlabel("training samples n (black: K and 2K; dashed: n = p)")
    left.set_ylabel("fraction of samples that copy a training sample")
    left.legend(fontsize=6)
    right.axhline(1, color="k", lw=0.8)
    right.set_yscale("log")
    right.set_xlabel("training samples n (n <= p, some mode holding >= 2 samples)")
    right.set_ylabel("loss(eq. (9) per sample) / loss(eq. (8) per mode)\nsolid: exact eq. (6); dotted: block formula")
    right.legend(fontsize=5, ncol=2)
    fig.suptitle(f"Copies vs n: K = {par['K']} modes in d = {par['d']}, rank {par['rank']}, spread {par['spread']}; "
                 f"{par['samples']} reverse-VE samples per point", fontsize=9)
    fig.tight_layout()
    return fig
