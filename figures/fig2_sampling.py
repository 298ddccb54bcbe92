"""Fig. 2: diffusion sampling with memorising and generalising ReLU DAEs; each sample next to its nearest training image.

The paper samples time-conditioned ReLU DAEs with the reverse-VE sampler (60 geometric
steps from σ = 2 to 0.02, pixels clamped to [−1, 1]; `numerics.diffusion.ve_sample`) and shows
five snapshots of each trajectory beside the nearest training image: the memorising model
(n = 5) reproduces training faces, the generalising one (n = 100k) makes new ones.

Here the models are the theory's denoisers at every σ (`theory.diffusion`), on offline data:

* **memorising** — eq. (9) at every σ on 5 images. Cor. 3.2 needs the samples pairwise
  negatively correlated (β1 < 0), which raw images in [−1, 1] are not (they share the mean
  image). The model is therefore built about an *origin*, the mean image of the pool the
  five are drawn from: ``f(y) = o + f_eq9(y − o)``, and the five are the pool's least
  correlated about o (`numerics.images.least_correlated`); the measured β1 is reported. A
  fifth row applies eq. (9) to the least correlated *raw* faces (β1 > 0, outside Cor. 3.2).
* **generalising** — an eq. (8) block at every σ (p = 16 neurons by the allocation rule) on
  all 100 faces, and on all 1797 digits, each data set one cluster in raw pixels (the mean
  image is the block's first direction). One block is used on purpose: a single block's
  active columns S satisfy ``W_S W_Sᵀ ⪯ W Wᵀ``, whose eigenvalues ``a_j`` are below 1, so the
  sampler is stable. Blocks of several clusters that fire together (stable masks broken)
  can have ``W_S W_Sᵀ`` eigenvalues above 1, and the sampler then amplifies that direction at
  every step (derived here; measured on the digits 0/3/5/7 about their mean, four blocks,
  p = 16: eigenvalues 1.55–1.77 and samples ≈ 20× the data's norm without the clamp).

A bias-free ReLU DAE is positively homogeneous about its origin (derived here), so eq. (9)
pins the *direction* of a copy, not its norm. Copies are therefore counted with the
1/3 nearest-neighbour rule (`numerics.diffusion.memorization_report`) on directions about the
model's origin (the authors compare by cosine) and also in plain ℓ2; the manifest holds both,
with and without the authors' clamp, and the norms (about the origin) relative to the nearest
training image. Two effects keep norms small (derived here, measured in the manifest):

* on a direction where the denoiser is linear with gain ``e/(e + σ²)`` (data variance e), the
  probability-flow map from σ_max to 0 multiplies by ``√(e/(e + σ_max²))``, so a start drawn
  from N(0, σ_max²) ends with variance ``e σ_max²/(e + σ_max²) < min(e, σ_max²)``: with
  σ_max = 2, image directions of variance e ≫ 4 come out with a standard deviation near 2, not
  √e. Eq. (9) is of this kind along each training direction (e = ‖x_i‖²).
* the clamp does not pin the norm; clipping the state at every step also clips the early,
  large-σ states, and the copies come out with *smaller* norms than without it.

`MODELS` lists the rows and `BUILDERS` maps a row's ``kind`` to the function that builds its
denoiser: a trained multi-noise model is one more kind and one more `ModelSpec`.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np

from figures.common import Config, check
from figures.plot import show_vector
from numerics import images as datasets
from numerics.images import centred, least_correlated
from numerics.diffusion import memorization_report, shifted, ve_sample
from theory.diffusion import generalizing_denoiser, memorizing_denoiser
from theory.errors import measured_beta

PAPER = "Fig. 2"
CLAMP = (-1.0, 1.0)                  # the authors' pixel clamp
SAMPLER = dict(steps=60, sigma_max=2.0, sigma_min=0.02)
SNAPSHOTS = 5
SHOWN = 2                            # trajectories drawn per model
# Fig. 2's claims read as numbers: a memorising model's samples are mostly copies (ratio > 1/2);
# a generalising model's are new: the 1/3 rule fires by chance on a fraction ≈ 3^{-k} of samples
# from a k-dimensional smooth density (1/27 for k = 3, `memorization_report`), so a model whose
# samples the rule calls copies at most 5 % of the time counts as making new ones.
COPY_MAJORITY = 0.5
NEW_AT_MOST = 0.05


@dataclass(frozen=True)
class ModelSpec:
    """One row of the figure: ``kind`` names its builder in `BUILDERS`; ``regime`` is what Fig. 2
    expects of its samples ("memorising", "generalising", or "beyond assumptions": not checked);
    ``homogeneous``: the model is positively homogeneous about its origin (bias-free ReLU DAEs,
    with or without a skip term), so its copies need not have the right norm."""

    key: str
    title: str
    dataset: str
    kind: str
    regime: str
    options: dict = field(default_factory=dict)
    homogeneous: bool = True


@dataclass(frozen=True, eq=False)
class Model:
    """A built denoiser with its training images X (d, n) in pixel coordinates, the origin (d, 1)
    it is homogeneous about, its representation ``(Y, σ) -> H`` (or None) and a description."""

    denoiser: Callable
    X: np.ndarray
    origin: np.ndarray
    representation: Callable | None
    description: dict


MODELS = (
    ModelSpec("faces_memorising", "faces, eq. (9), n = 5", "faces", "theory_memorising", "memorising",
              dict(n=5, centre=True)),
    ModelSpec("faces_generalising", "faces, eq. (8), n = 100, p = 16", "faces", "theory_generalising",
              "generalising", dict(p=16)),
    ModelSpec("digits_memorising", "digits, eq. (9), n = 5", "digits", "theory_memorising", "memorising",
              dict(n=5, centre=True)),
    ModelSpec("digits_generalising", "digits, eq. (8), n = 1797, p = 16", "digits", "theory_generalising",
              "generalising", dict(p=16)),
    ModelSpec("faces_memorising_raw", "faces, eq. (9), raw pixels (beta1 > 0)", "faces", "theory_memorising",
              "beyond assumptions", dict(n=5, centre=False)),
)


def _pool(spec: ModelSpec, config: Config):
    """(images (d, N), labels (N,), description) of the data set a row draws from."""
    if spec.dataset == "faces":
        size = config.pick(25, 16)
        X = datasets.faces(size=size).X
        return X, np.zeros(X.shape[1], dtype=int), dict(source="skimage.data.lfw_subset faces in [-1, 1]",
                                                        size=f"{size}x{size}")
    data = datasets.digits()
    return data.X, data.labels, dict(source="sklearn.datasets.load_digits in [-1, 1]")


def _theory_memorising(spec: ModelSpec, config: Config) -> Model:
    """Eq. (9) at every σ on the n least correlated images of the pool (about its mean if ``centre``)."""
    pool, _, description = _pool(spec, config)
    if spec.dataset == "digits":       # greedy selection is O(N²) per start: draw from 200 digits
        pool = pool[:, np.random.default_rng(config.seed).choice(pool.shape[1], 200, replace=False)]
    origin = pool.mean(axis=1, keepdims=True) if spec.options["centre"] else np.zeros((pool.shape[0], 1))
    n = spec.options["n"]
    X = pool[:, least_correlated(centred(pool, origin), n)]
    theory = memorizing_denoiser(X - origin, n, 0.0, check_assumptions=False)
    beta1 = measured_beta(X - origin, np.arange(n))
    return Model(shifted(theory, origin), X, origin, lambda Y, s: theory.representation(Y - origin, s),
                 dict(description, n=n, p=n, lam=0.0, beta1=beta1, cor_3_2_assumption_beta1_negative=beta1 < 0,
                      origin="mean of the pool" if spec.options["centre"] else "0 (raw pixels)",
                      flip_probability={f"{s:g}": theory.flip_probability(s) for s in _ends()}))


def _theory_generalising(spec: ModelSpec, config: Config) -> Model:
    """One eq. (8) block at every σ on the whole pool (raw pixels), ``p`` neurons by the allocation rule."""
    X, _, description = _pool(spec, config)
    theory = generalizing_denoiser(X, np.zeros(X.shape[1], dtype=int), "auto", 0.0, p=spec.options["p"])
    return Model(theory, X, np.zeros((X.shape[0], 1)), theory.representation,
                 dict(description, n=X.shape[1], p=spec.options["p"], lam=0.0, clusters=1, origin="0 (raw pixels)",
                      neurons_per_cluster={f"{s:g}": theory.neurons_per_cluster(s) for s in _ends()},
                      flip_probability={f"{s:g}": theory.flip_probability(s) for s in _ends()}))


BUILDERS: dict[str, Callable[[ModelSpec, Config], Model]] = {
    "theory_memorising": _theory_memorising,
    "theory_generalising": _theory_generalising,
}


def _ends():
    return SAMPLER["sigma_min"], SAMPLER["sigma_max"]


def parameters(config: Config) -> dict:
    return dict(samples=config.pick(256, 32), seed=config.seed, sampler=dict(SAMPLER, clamp=CLAMP),
                snapshots=SNAPSHOTS, shown=SHOWN, face_size=config.pick(25, 16),
                models=[asdict(spec) for spec in MODELS])


def _copies(samples, model: Model) -> dict:
    """The 1/3 rule on directions about the model's origin and in plain ℓ2, plus norm ratios."""
    centred, X = samples - model.origin, model.X - model.origin
    cosine = memorization_report(centred, X, metric="cosine")
    l2 = memorization_report(samples, model.X)
    norms = np.linalg.norm(centred, axis=0) / np.linalg.norm(X[:, cosine.nearest], axis=0)
    return dict(cosine_ratio=cosine.ratio, l2_ratio=l2.ratio, norm_ratio_quartiles=np.percentile(norms, [25, 50, 75]),
                cosine_memorized=cosine.memorized, nearest=cosine.nearest)


def _sample_model(spec: ModelSpec, model: Model, par: dict) -> dict:
    d = model.X.shape[0]
    runs = {}
    for name, clamp in (("clamped", CLAMP), ("unclamped", None)):
        samples, path = ve_sample(model.denoiser, d, par["samples"], seed=par["seed"], clamp=clamp, record=True,
                                  **SAMPLER)
        runs[name] = (samples, path, _copies(samples, model))
    samples, path, copies = runs["clamped"]
    sigmas, states = path.snapshots(SNAPSHOTS)
    nearest = copies["nearest"][:SHOWN]
    out = dict(title=spec.title, regime=spec.regime, kind=spec.kind, homogeneous=spec.homogeneous,
               data=model.description,
               snapshot_sigmas=sigmas, snapshots=np.round(states[:, :, :SHOWN].transpose(2, 0, 1), 4),
               nearest_images=np.round(model.X[:, nearest].T, 4), nearest_index=nearest,
               **{f"{run}_{key}": value for run, (_, _, c) in runs.items() for key, value in c.items()
                  if key in ("cosine_ratio", "l2_ratio", "norm_ratio_quartiles")})
    if model.representation is not None:      # neurons seen by the last step, whose output is the sample
        _, free_path, free_copies = runs["unclamped"]
        active = np.sum(model.representation(free_path.states[-2], SAMPLER["sigma_min"]) > 0, axis=0)
        one = active == 1
        out.update(active_neurons_at_end=np.bincount(active), single_active=float(one.mean()),
                   single_active_not_copied=int(np.sum(one & ~free_copies["cosine_memorized"])))
    return out


def compute(config: Config) -> dict:
    """Build every row of `MODELS`, sample it with and without the clamp, count the copies."""
    par = parameters(config)
    models = {}
    with config.bar(total=len(MODELS), desc="fig2 models") as bar:
        for spec in MODELS:
            models[spec.key] = _sample_model(spec, BUILDERS[spec.kind](spec, config), par)
            bar.update(1)
    return dict(paper=PAPER, parameters=par, models=models, caption=CAPTION)


CAPTION = ("Fig. 2 (paper: sampling a memorising and a generalising multi-noise ReLU DAE; samples beside their "
           "nearest training image). Reverse-VE sampler, 60 steps from sigma = 2 to 0.02, pixels clamped to "
           "[-1, 1]; five snapshots per trajectory and the nearest training image (cosine about the model's origin). "
           "Models: the theory's denoisers at every sigma, eq. (9) (memorising) and eq. (8) with the allocation "
           "rule (generalising); the last row is eq. (9) on raw faces, outside Cor. 3.2 (beta1 > 0).")


def checks(numbers: dict) -> list:
    """Fig. 2's claims on the numbers: copies from memorising rows, new samples from generalising ones."""
    out = []
    for key, row in numbers["models"].items():
        if row["regime"] == "memorising":
            out.append(check(f"{key}: most samples copy a training image (1/3 rule on directions, clamped)",
                             row["clamped_cosine_ratio"], f"> {COPY_MAJORITY}",
                             row["clamped_cosine_ratio"] > COPY_MAJORITY))
            if "single_active_not_copied" in row:          # models with a representation
                out.append(check(f"{key}: a sample whose last step sees one active neuron is a multiple of that "
                                 "neuron's image (derived here: f(y) = r^2 x (x^T y)), hence a copy by direction",
                                 row["single_active_not_copied"], "0", row["single_active_not_copied"] == 0))
            if row["homogeneous"]:
                out.append(check(f"{key}: homogeneity: without the clamp the l2 rule misses copies the direction "
                                 "rule finds (norms are not pinned)", row["unclamped_l2_ratio"],
                                 f"< {row['unclamped_cosine_ratio']:.3f}",
                                 row["unclamped_l2_ratio"] < row["unclamped_cosine_ratio"]))
        elif row["regime"] == "generalising":
            out.append(check(f"{key}: samples are new (l2 1/3 rule, clamped)", row["clamped_l2_ratio"],
                             f"<= {NEW_AT_MOST}", row["clamped_l2_ratio"] <= NEW_AT_MOST))
    return out


def draw(numbers: dict):
    """Rows: SHOWN trajectories per model (snapshots left to right), then the nearest training image."""
    from matplotlib.figure import Figure

    rows = [(key, i) for key in numbers["models"] for i in range(numbers["parameters"]["shown"])]
    columns = numbers["parameters"]["snapshots"] + 1
    fig = Figure(figsize=(1.5 * columns, 1.55 * len(rows)))
    axes = fig.subplots(len(rows), columns, squeeze=False)
    for r, (key, i) in enumerate(rows):
        row = numbers["models"][key]
        images = list(row["snapshots"][i]) + [row["nearest_images"][i]]
        titles = [f"sigma = {sigma:.2g}" for sigma in row["snapshot_sigmas"]] + ["nearest training"]
        for c, (image, title) in enumerate(zip(images, titles)):
            show_vector(axes[r, c], image, title if r == 0 else None, limit=CLAMP[1])
        if i == 0:
            axes[r, 0].set_ylabel(f"{row['title']}\ncopies: {row['clamped_cosine_ratio']:.0%} (dir.), "
                                  f"{row['clamped_l2_ratio']:.0%} (l2)", fontsize=6, rotation=0, ha="right",
                                  va="center")
    fig.suptitle("Fig. 2: reverse-VE sampling with the theory's denoisers (eq. (9) memorising, eq. (8) generalising)",
                 fontsize=9)
    fig.tight_layout()
    return fig
