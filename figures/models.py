"""The data sets and trained ReLU-DAEs behind Figs. 3, 4 and App. B.1/B.3, cached by their parameters.

The paper (Sec. 5 and App. B) trains on CelebA 32×32 grey (d = 1024) with p = 100, σ = 0.2:
memorising n = 5 with RMSprop (lr 1e-3, wd 1e-2, 50k full-batch steps), generalising
n = 10,000 with Adam (lr 1e-4, wd 1e-4, batch 256, 50k steps), weights tied. Here:

* **faces** — ``skimage.data.lfw_subset`` (only 100 faces exist offline), resized to 32×32.
  Memorising: the 5 least correlated faces, p = 100, the paper's RMSprop protocol but 10k
  steps. Generalising: all 100 faces with p = 10 (p ≪ n needs p ≪ 100), Adam lr 1e-3,
  full batch, 5k steps.
* **mixture** — a K = 5 Gaussian mixture in d = 1024 (simplex means, rank-3 covariances,
  spread 0.1, ‖μ‖ = 0.4√d like an image with pixel RMS 0.4). Memorising: one sample per
  mode (n = 5), p = 20, RMSprop as above. Generalising: n = 2000, p = 20, Adam lr 1e-3,
  batch 256, 3k steps.

Both use `numerics.protocol.train_protocol` (the authors' loop: one noise draw per step,
torch's Adam/RMSprop, MSELoss, tied weights; λ of eq. (6) = d·wd/4) and then evaluate the
exact loss and gradient of eq. (6) at the result. ``--fast`` shrinks d to 256 (faces 16×16,
memorising faces p = 20, mixture n = 500) and the generalising models' steps about sixfold.
`exact_fit` trains on the exact eq. (6) with `numerics.solvers.train` (Fig. 6 and the
figures beyond the paper), optionally finished by `newton_polish`. Everything is keyed by its
parameters in the cache.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from figures.common import Config, cached
from numerics import data as datasets
from numerics import images
from numerics.images import largest_cosine, least_correlated
from numerics.spectrum import hessian_matrix
from numerics.checkpoint import fingerprint
from numerics.objective import expected_loss_and_grad
from numerics.protocol import train_protocol
from numerics.geometry import invariant_basis, loss_scale
from numerics.solvers import train
from numerics.threads import single_thread

# ----------------------------------------------------------------------------- data


@dataclass(frozen=True)
class Dataset:
    """Training data of one model: X (d, n), cluster labels (n,), and a readable description."""

    name: str
    X: np.ndarray
    labels: np.ndarray
    description: dict


def face_size(config: Config) -> int:
    return config.pick(32, 16)


def faces_memorised(config: Config) -> Dataset:
    """The 5 least correlated of the 100 lfw faces (each its own cluster, Cor. 3.2)."""
    size = face_size(config)
    everything = images.faces(size=size).X
    index = least_correlated(everything, 5)
    X = everything[:, index]
    beta = largest_cosine(X)
    return Dataset("faces", X, np.arange(5), dict(
        source="skimage.data.lfw_subset (first 100 images are faces), in [-1, 1]",
        size=f"{size}x{size}", d=size * size, n=5, face_indices=index.tolist(),
        selection="the 5 faces with the smallest largest pairwise cosine (greedy)", beta1=beta))


def faces_all(config: Config) -> Dataset:
    """All 100 lfw faces, one cluster."""
    size = face_size(config)
    X = images.faces(size=size).X
    return Dataset("faces", X, np.zeros(X.shape[1], dtype=int), dict(
        source="skimage.data.lfw_subset (first 100 images are faces), in [-1, 1]",
        size=f"{size}x{size}", d=size * size, n=X.shape[1]))


def mixture_parameters(config: Config) -> dict:
    d = config.pick(1024, 256)
    return dict(d=d, K=5, rank=3, n=config.pick(2000, 500), mean_norm=0.4 * np.sqrt(d), spread=0.1,
                means="simplex", seed=config.seed)


def mixture(config: Config) -> datasets.GaussianMixture:
    """The K = 5 mode Gaussian mixture of eq. (4) (Cor. 3.3 setting)."""
    return datasets.gaussian_mixture(**mixture_parameters(config))


def mixture_generalised(config: Config) -> Dataset:
    mix = mixture(config)
    return Dataset("mixture", mix.X, mix.labels, dict(
        source="numerics.data.gaussian_mixture", **mixture_parameters(config),
        alpha=datasets.separability(mix.X, mix.labels).alpha, beta=-1 / (mix.K - 1)))


def mixture_memorised(config: Config) -> Dataset:
    """One fresh sample of each of the K = 5 modes: n = 5 samples with β1 ≈ −1/4 < 0."""
    mix = mixture(config)
    X, _ = mix.sample(mix.K, seed=config.seed + 1)
    return Dataset("mixture", X, np.arange(mix.K), dict(
        source="one sample per mode of the mixture", **{**mixture_parameters(config), "n": mix.K},
        beta1=largest_cosine(X)))


# ----------------------------------------------------------------------------- training


PAPER = dict(
    memorising=dict(optimizer="rmsprop", lr=1e-3, weight_decay=1e-2, batch_size="full", steps=50_000, p=100,
                    n=5, data="CelebA 32x32 grey"),
    generalising=dict(optimizer="adam", lr=1e-4, weight_decay=1e-4, batch_size=256, steps=50_000, p=100,
                      n=10_000, data="CelebA 32x32 grey"),
)


def model_settings(config: Config, dataset: str, regime: str) -> dict:
    """Protocol settings of one of the four models (see the module docstring)."""
    if regime == "memorising":
        return dict(optimizer="rmsprop", lr=1e-3, weight_decay=1e-2, batch_size=None,
                    steps=10_000, p=config.pick(100, 20) if dataset == "faces" else 20)
    if dataset == "faces":
        return dict(optimizer="adam", lr=1e-3, weight_decay=1e-4, batch_size=None,
                    steps=config.pick(5000, 800), p=10)
    return dict(optimizer="adam", lr=1e-3, weight_decay=1e-4, batch_size=config.pick(256, 128),
                steps=config.pick(3000, 600), p=20)


def training_data(config: Config, dataset: str, regime: str) -> Dataset:
    return {("faces", "memorising"): faces_memorised, ("faces", "generalising"): faces_all,
            ("mixture", "memorising"): mixture_memorised,
            ("mixture", "generalising"): mixture_generalised}[(dataset, regime)](config)


@dataclass(frozen=True)
class Model:
    """A trained tied ReLU-DAE (W1 = W2 = W) with its data, σ, λ and training record."""

    dataset: Dataset
    regime: str
    sigma: float
    lam: float
    W: np.ndarray
    settings: dict
    info: dict

    @property
    def parameters(self) -> dict:
        """Everything needed to reproduce the model, for manifests."""
        return dict(data=self.dataset.description, regime=self.regime, sigma=self.sigma, lam=self.lam,
                    tied=True, solver=dict(self.settings, protocol="numerics.protocol.train_protocol",
                                           seed=self.info["seed"]),
                    paper_setting=PAPER[self.regime], exact_loss=self.info["exact_loss"],
                    rel_grad_norm=self.info["rel_grad_norm"])


def trained_model(config: Config, dataset: str, regime: str, sigma: float, p: int | None = None) -> Model:
    """Train (or load from the cache) one of the four models at noise level σ (``p`` overrides the width)."""
    data = training_data(config, dataset, regime)
    settings = model_settings(config, dataset, regime)
    if p is not None:
        settings["p"] = int(p)
    seed = config.seed
    params = dict(dataset=dataset, regime=regime, sigma=float(sigma), seed=seed, fast=config.fast,
                  data=data.description, **settings)

    def compute():
        # Small matrix products: one BLAS thread is faster, and robust on a shared machine.
        with single_thread(numba=False, user_api="blas"):
            run = train_protocol(data.X, settings["p"], sigma, optimizer=settings["optimizer"], lr=settings["lr"],
                                 weight_decay=settings["weight_decay"], batch_size=settings["batch_size"],
                                 steps=settings["steps"], seed=seed, tied=True, exact_loss=False,
                                 record_every=max(1, settings["steps"] // 100), progress=config.progress)
        loss, g1, g2 = expected_loss_and_grad(run.W1, run.W1, data.X, sigma, run.lam)
        info = dict(lam=run.lam, exact_loss=float(loss), seed=seed,
                    rel_grad_norm=float(np.linalg.norm(g1 + g2) / loss_scale(data.X)),
                    final_minibatch_loss=float(run.history_loss[-1]))
        return dict(W=run.W1, history_steps=run.history_steps, history_loss=run.history_loss), info

    arrays, info = cached(config, "protocol", params, compute)
    return Model(data, regime, float(sigma), float(info["lam"]), arrays["W"], settings, info)


# ----------------------------------------------------------------------------- exact training


def newton_polish(X, W, sigma: float, lam: float, gtol: float, *, max_steps: int = 8,
                  rel_eig_tol: float = 1e-6) -> tuple[np.ndarray, dict]:
    """Newton steps on the exact gradient of eq. (6) (tied W (d, p)) until ``‖∇L‖/L0 ≤ gtol``.

    Why: near a minimiser the loss lies above its minimum by ``gᵀH⁻¹g/2``; along the
    stiffest direction (Hessian eigenvalue λ_max) a gradient g changes the loss by only
    ``‖g‖²/(2λ_max)``. When that is below the rounding of L (about 1e-16 times the ``‖x_i‖²``
    terms that cancel in eq. (6)), the line search of L-BFGS and the ratio test of a trust
    region see no decrease and stop, short of gtol (the "floor" ``‖g‖ ≈ √(2λ_max·δL)``).
    Newton's step ``−H⁺g`` needs gradients and curvature only, so it goes on to the critical
    point. The dense Hessian (`numerics.certify.hessian_matrix`, central differences of the
    exact gradient) is taken in the invariant basis of `numerics.geometry.invariant_basis`
    (exact, as in `train`); eigen-directions with curvature below ``rel_eig_tol·λ_max`` —
    the rotations inside blocks (Theorem 3.1's O_k), flat up to the switching residual, and
    any negative curvature — are left out of the step, so the gradient's component along them
    (tiny: ~1e-10·L0 on the residual figure's clusters) is what remains. A step is kept only if
    it lowers ``‖∇L‖``. Hand-written because SciPy's root finders (``hybr``, ``lm``, ``krylov``) either
    stall on those near-flat directions or need many more gradients. Small problems only
    (the Hessian is dense in d'·p coordinates, d' ≤ rank(X) + p).

    >>> from numerics.data import memorization_set
    >>> X = memorization_set(4, 2, norm=2.0, seed=0)
    >>> W, info = newton_polish(X, 0.9 * X, 0.1, 0.01, gtol=1e-12)
    >>> info["converged"], W.shape
    (True, (4, 2))
    """
    basis = invariant_basis(X, W)
    C, V = basis.T @ X, basis.T @ W
    scale = loss_scale(X)

    def gradient(V):
        loss, g1, g2 = expected_loss_and_grad(V, V, C, sigma, lam)
        return loss, g1 + g2

    loss, g = gradient(V)
    steps = 0
    for _ in range(max_steps):
        if np.linalg.norm(g) / scale <= gtol:
            break
        values, vectors = np.linalg.eigh(hessian_matrix(V, V, C, sigma, lam, tied=True))
        kept = values > rel_eig_tol * values[-1]
        step = -vectors[:, kept] @ ((vectors[:, kept].T @ g.ravel()) / values[kept])
        trial = V + step.reshape(V.shape)
        trial_loss, trial_g = gradient(trial)
        if not np.linalg.norm(trial_g) < np.linalg.norm(g):
            break
        V, loss, g = trial, trial_loss, trial_g
        steps += 1
    rel = float(np.linalg.norm(g) / scale)
    return basis @ V, dict(loss=float(loss), grad_norm=float(np.linalg.norm(g)), rel_grad_norm=rel,
                           converged=bool(rel <= gtol), newton_steps=steps)


def exact_fit(config: Config, X, p: int, sigma: float, lam: float, seed: int, *, init=None, newton: bool = False,
              **options) -> dict:
    """`numerics.solvers.train` on the exact eq. (6), tied weights, cached by data hash and settings.

    ``init=None`` is the solver's random start with ``seed``; otherwise a (d, p) start (e.g. a
    theory prediction). ``newton=True`` finishes a run that stopped above ``gtol`` with
    `newton_polish`. Returns W and the solver's summary (loss, rel_grad_norm, converged, ...).
    """
    params = dict(data=fingerprint(X), p=int(p), sigma=float(sigma), lam=float(lam), seed=int(seed),
                  init=None if init is None else fingerprint(init), options=options)
    if newton:
        params["newton"] = True

    def compute():
        fit = train(X, p, sigma, lam, seed=seed, tied=True, init="random" if init is None else init,
                    progress=False, **options)
        info = {k: v for k, v in fit.summary().items() if k not in ("message",)}
        W = fit.W1
        if newton and not fit.converged:
            W, polished = newton_polish(X, W, sigma, lam, fit.gtol)
            info.update(polished, stages=info["stages"] + [f"newton({polished['newton_steps']})"])
        return dict(W=W), info

    arrays, info = cached(config, "exact", params, compute)
    return dict(W=arrays["W"], **info)
