"""Table 1 analog: prompt-free memorisation detection with known ground truth.

The paper's Table 1 scores generated images of Stable Diffusion (and other models) by the
standard deviation of an intermediate representation (Algorithm 1) and reports AUROC
0.987–0.998 and TPR@1%FPR against labelled memorised prompts. Here the ground truth is known
because the models and their training sets are our own; a sample is *memorised* when it
passes the 1/3 nearest-neighbour rule (`numerics.diffusion.memorization_report`).

(a) **Multi-noise ReLU DAEs** (numpy, always built) on a hybrid set (Cor. 3.4: Gaussian
    modes plus duplicated points, `numerics.data.hybrid_mixture`), two of them:

    * *theory*: the denoiser at every σ is the theory's best block solution
      (`theory.diffusion.generalizing_denoiser`, eq. (8) per mode and eq. (9) for duplicated
      points, allocation rule), not trained;
    * *trained*: the authors' multi-noise model (`numerics.multinoise.MultiNoiseDAE`: tied
      weights, per-noise gains, skip) trained on the exact multi-noise loss
      (`numerics.multinoise_training.train_multinoise`, the generalising protocol's weight
      decay), cached under ``--cache``.

    Samples come from the reverse-VE sampler (`numerics.diffusion.ve_sample`) and are
    labelled by the cosine rule (both denoisers are positively homogeneous: they copy
    directions, not norms). Each sample is noised once to σ = 0.17 (the paper's t = 50) and
    scored by: the Std of ``h = [W1ᵀy]_+`` (Algorithm 1; for the trained model the authors'
    ``rep()``, without the gain), the scale-free ratio ‖h‖₄/‖h‖₂, the denoising loss (a
    membership score) and the effective rank of the denoiser's Jacobian
    ``W2 D(y) W1ᵀ + s I`` (App. B.3).
(b) **A diffusers UNet DDPM on digits** (needs the ``[torch]`` extra): the numbers of
    `numerics.unet_detection.detection_numbers` (`figures.ddpm`).

Every score is oriented so that larger means "memorised" (losses and ranks are negated).
"""
from __future__ import annotations

import time

import numpy as np
from matplotlib.figure import Figure

from figures.common import Config, cached, check
from figures import TORCH_EXTRA, missing_modules
from figures.ddpm import ddpm_numbers
from numerics.data import hybrid_mixture
from numerics.detection import effective_rank, null_auroc_se, roc_summary, spikiness
from numerics.diffusion import memorization_report, ve_sample
from numerics.multinoise import MultiNoiseDAE
from numerics.multinoise_objective import decay_from_weight_decay
from numerics.multinoise_protocol import PROTOCOLS
from numerics.multinoise_training import train_multinoise
from theory.diffusion import generalizing_denoiser

PAPER = "Table 1 (Algorithm 1's Std score; AUROC 0.987-0.998 on the paper's models)"
SIGMA_DETECT = 0.17           # the paper's t = 50 of 1000 on a VE scale
LOSS_DRAWS = 8
SIGMAS_BY_LEVEL = (0.02, 0.05, 0.17, 0.3)
# A detector is better than chance when its AUROC exceeds 1/2 by this many standard errors of
# a score with no information (`numerics.detection.null_auroc_se`).
CHANCE_SE = 4.0


def parameters(config: Config) -> dict:
    return dict(d=32, K=4, m=8, rank=2, n=config.pick(300, 120), n_copies=config.pick(20, 10), mean_norm=3.0,
                spread=0.1, p=16, lam=0.0, samples=config.pick(600, 200), sigma_detect=SIGMA_DETECT, loss_draws=LOSS_DRAWS,
                sampler=dict(steps=60, sigma_max=2.0, sigma_min=0.02), label_rule="1/3 rule, cosine",
                seed=config.seed)


def training_parameters(config: Config) -> dict:
    """The trained model of part (a): width, the generalising protocol's weight decay, and an
    iteration cap (not a time cap: the model, and so the figure, must not depend on machine speed)."""
    return dict(p=16, weight_decay=PROTOCOLS["generalise"]["weight_decay"], max_iter=config.pick(400, 150),
                seed=config.seed)


def _timed(score):
    began = time.perf_counter()
    value = score()
    return value, time.perf_counter() - began


def single_sigma_weights(denoiser, sigma: float) -> tuple[np.ndarray, np.ndarray, float]:
    """``(W1, W2, s)`` of the one-noise-level network ``W2 [W1ᵀy]_+ + s y`` at ``sigma``.

    A `numerics.multinoise.MultiNoiseDAE` gives its effective weights (gains in W2, its skip);
    a `theory.diffusion.TheoryDenoiser` its tied weights and no skip.
    """
    if hasattr(denoiser, "effective_weights"):
        return denoiser.effective_weights(sigma)
    W = denoiser.weights(sigma)
    return W, W, 0.0


def relu_dae_scores(denoiser, samples, sigma: float, draws: int, seed: int) -> tuple[dict, dict, dict]:
    """Scores (larger = memorised) of each sample column, the seconds each took, and per-sample facts.

    The facts: ‖h‖, the sample's norm and how many entries of h are positive.
    """
    rng = np.random.default_rng(seed)
    Y = samples + sigma * rng.standard_normal(samples.shape)
    W1, W2, skip = single_sigma_weights(denoiser, sigma)
    H = np.maximum(W1.T @ Y, 0.0)
    scores, seconds = {}, {}
    scores["std"], seconds["std"] = _timed(lambda: spikiness(H, "std"))
    scores["l4/l2"], seconds["l4/l2"] = _timed(lambda: spikiness(H, "l4/l2"))

    def loss():
        total = np.zeros(samples.shape[1])
        for _ in range(draws):
            noisy = samples + sigma * rng.standard_normal(samples.shape)
            total += np.sum((denoiser(noisy, sigma) - samples) ** 2, axis=0)
        return -total / draws

    def rank():
        identity = skip * np.eye(W1.shape[0])
        singular = [np.linalg.svd((W2 * (W1.T @ y > 0)) @ W1.T + identity, compute_uv=False) for y in Y.T]
        return -effective_rank(np.array(singular))

    scores["denoising loss"], seconds["denoising loss"] = _timed(loss)
    scores["jacobian effective rank"], seconds["jacobian effective rank"] = _timed(rank)
    return scores, seconds, dict(h_norm=np.linalg.norm(H, axis=0), sample_norm=np.linalg.norm(samples, axis=0),
                                 active=np.sum(H > 0.0, axis=0))


def hybrid_data(par: dict):
    return hybrid_mixture(par["d"], par["K"], par["m"], par["rank"], par["n"], n_copies=par["n_copies"],
                          mean_norm=par["mean_norm"], spread=par["spread"], seed=par["seed"])


def trained_denoiser(config: Config, X: np.ndarray, par: dict) -> tuple[MultiNoiseDAE, dict]:
    """The multi-noise DAE trained on ``X`` by the exact loss (cached), and its training summary."""
    train = training_parameters(config)
    lam = decay_from_weight_decay(train["weight_decay"], X.shape[0])

    def compute():
        fit = train_multinoise(X, train["p"], lam, seed=train["seed"], max_iter=train["max_iter"], polish=False)
        return dict(theta=fit.model.pack()), fit.summary()

    arrays, summary = cached(config, "table1_multinoise", dict(data=par, training=train), compute)
    return MultiNoiseDAE.unpack(arrays["theta"], X.shape[0], train["p"]), dict(summary, **train)


def _class_means(values: np.ndarray, mem: np.ndarray) -> dict:
    return dict(memorised=float(values[mem].mean()), generalised=float(values[~mem].mean()))


def std_auroc_by_sigma(denoiser, samples, mem, seed: int, sigmas=SIGMAS_BY_LEVEL) -> dict:
    """AUROC of Std(h) and of ‖h‖₄/‖h‖₂ with each sample noised once to each σ of ``sigmas``."""
    noise = np.random.default_rng(seed).standard_normal(samples.shape)
    out = {}
    for sigma in sigmas:
        W1 = single_sigma_weights(denoiser, sigma)[0]
        H = np.maximum(W1.T @ (samples + sigma * noise), 0.0)
        out[f"{sigma:g}"] = {kind: roc_summary(spikiness(H, kind)[mem], spikiness(H, kind)[~mem]).auroc
                             for kind in ("std", "l4/l2")}
    return out


def score_part(denoiser, data, par: dict) -> dict:
    """Sample ``denoiser``, label the samples against the distinct training points, score them."""
    samples = ve_sample(denoiser, par["d"], par["samples"], seed=par["seed"] + 1, **par["sampler"])
    unique = np.unique(data.X, axis=1)
    mem = memorization_report(samples, unique, metric="cosine").memorized
    scores, seconds, facts = relu_dae_scores(denoiser, samples, par["sigma_detect"], par["loss_draws"],
                                             par["seed"] + 2)
    both = 0 < mem.sum() < mem.size
    methods = {name: roc_summary(value[mem], value[~mem], seconds=seconds[name]).as_dict()
               for name, value in scores.items()} if both else {}
    premises = {"std/||h||": scores["std"] / np.maximum(facts["h_norm"], np.finfo(float).tiny),
                "fewer active neurons": -facts["active"].astype(float), "h norm": facts["h_norm"]}
    return dict(premises={name: roc_summary(value[mem], value[~mem]).auroc
                          for name, value in premises.items()} if both else {},
                chance_margin=CHANCE_SE * null_auroc_se(int(mem.sum()), int((~mem).sum())) if both else None,
                std_auroc_by_sigma=std_auroc_by_sigma(denoiser, samples, mem, par["seed"] + 3) if both else {},
                n_memorised=int(mem.sum()), n_generalised=int((~mem).sum()),
                l2_rule_memorised=int(memorization_report(samples, unique).memorized.sum()),
                methods=methods, p=int(single_sigma_weights(denoiser, par["sigma_detect"])[0].shape[1]),
                mean_h_norm=_class_means(facts["h_norm"], mem),
                mean_sample_norm=_class_means(facts["sample_norm"], mem),
                mean_active_neurons=_class_means(facts["active"], mem),
                std=dict(memorised=scores["std"][mem], generalised=scores["std"][~mem]))


def relu_dae_part(config: Config) -> dict:
    """Part (a), theory model: the theory's denoiser on a hybrid set, sampled, labelled and scored."""
    par = parameters(config)
    data = hybrid_data(par)
    denoiser = generalizing_denoiser(data.X, data.labels, "auto", par["lam"], p=par["p"], check_assumptions=False)
    return dict(score_part(denoiser, data, par), parameters=par,
                neurons_per_cluster=denoiser.neurons_per_cluster(par["sigma_detect"]))


def trained_relu_dae_part(config: Config) -> dict:
    """Part (a), trained model: the multi-noise DAE trained on the same hybrid set, sampled and scored."""
    par = parameters(config)
    data = hybrid_data(par)
    model, training = trained_denoiser(config, data.X, par)
    return dict(score_part(model, data, par), training=training, skip=float(model.s),
                live_columns=int(np.sum(np.linalg.norm(model.W, axis=0) > 1e-6)))


def compute(config: Config) -> dict:
    relu = relu_dae_part(config)
    trained = trained_relu_dae_part(config)
    absent = missing_modules(TORCH_EXTRA)
    unet = None if absent else ddpm_numbers(config)["detection"]
    caption = ("Prompt-free memorisation detection against known ground truth (1/3 nearest-neighbour rule). "
               "(a) multi-noise ReLU DAEs on a hybrid set: the theory's (eq. (8)/(9) at every sigma, allocation rule) and "
               "the authors' model trained on the exact multi-noise loss; "
               "(b) a diffusers UNet DDPM trained on digits with duplicated images. AUROC per score.")
    return dict(paper=PAPER, caption=caption,
                parameters=dict(relu_dae=relu.pop("parameters"), trained_relu_dae=training_parameters(config),
                                unet=unet["parameters"] if unet else f"not run: needs {', '.join(absent)} "
                                                                     "(pip install -e '.[torch]')"),
                relu_dae=relu, trained_relu_dae=trained,
                unet=unet and dict(methods=unet["methods"], samples=unet["samples"], model=unet["model"],
                                   std_auroc_by_t=unet["std_auroc_by_t"], message=unet["message"]))


def _better_than_chance(name: str, part: dict, method: str, claim: str, **kwargs) -> dict:
    row = part["methods"][method]
    bound = 0.5 + CHANCE_SE * null_auroc_se(row["n_memorised"], row["n_generalised"])
    return check(f"{name}: {claim} (AUROC > 1/2 + {CHANCE_SE:g} SE of an uninformative score)",
                 row["auroc"], bound, row["auroc"] > bound, **kwargs)


def _std_diagnosis(part: dict) -> str | None:
    """Why Std of h fails to rank memorised samples first, when a measured premise fails; else None.

    Std is not scale-free (Std(th) = t Std(h)), and its contrast needs memorised samples to
    fire fewer neurons than generalised ones: for one active neuron Std² = ‖h‖²(1/p − 1/p²),
    for k equal ones ‖h‖²(1/p − k/p²) (derived here). Each premise is scored like a detector
    (``premises``: AUROC of the scale-free Std(h)/‖h‖, of minus the number of active neurons,
    and of ‖h‖) and named when it settles the question by the check's own margin: the
    scale-free version detects (so the spread of ‖h‖ is what Std fails on), or memorised
    samples are not significantly sparser.
    """
    premises, margin = part["premises"], part["chance_margin"]
    norms, active = part["mean_h_norm"], part["mean_active_neurons"]
    reasons = []
    if premises["std/||h||"] > 0.5 + margin:
        reasons.append(f"Std is not scale-free: Std(h)/||h|| detects (AUROC {premises['std/||h||']:.2f}), so the "
                       f"spread of ||h|| between samples is what Std fails on (mean ||h|| memorised "
                       f"{norms['memorised']:.2f}, generalised {norms['generalised']:.2f}; AUROC of ||h|| "
                       f"{premises['h norm']:.2f})")
    if premises["fewer active neurons"] <= 0.5 + margin:
        reasons.append(f"memorised samples are not clearly sparser: they fire {active['memorised']:.1f} of "
                       f"{part['p']} neurons on average, generalised ones {active['generalised']:.1f} (AUROC of "
                       f"the count {premises['fewer active neurons']:.2f})")
    if not reasons:
        return None
    return "; ".join(reasons) + " (measured here, not a statement of the paper)"


def _relu_checks(name: str, part: dict) -> list:
    out = [check(f"{name}: both memorised and generalised samples among the generated ones",
                 [part["n_memorised"], part["n_generalised"]], ">= 10 each",
                 min(part["n_memorised"], part["n_generalised"]) >= 10)]
    if part["methods"]:
        out += [
            _better_than_chance(name, part, "l4/l2", "the scale-free spikiness ||h||_4/||h||_2 detects memorised samples"),
            _better_than_chance(name, part, "std", "Algorithm 1's Std of h detects memorised samples",
                                expected_failure=_std_diagnosis(part)),
        ]
    return out


def checks(numbers: dict) -> list:
    out = _relu_checks("ReLU DAE (theory)", numbers["relu_dae"])
    out += _relu_checks("ReLU DAE (trained)", numbers["trained_relu_dae"])
    unet = numbers["unet"]
    if unet and unet["methods"]:
        out.append(_better_than_chance("UNet DDPM", unet, "std", "Algorithm 1's Std of the up-block activations "
                                       "detects memorised samples"))
    return out


def _bars(ax, methods: dict, title: str) -> None:
    names = list(methods)
    ax.barh(range(len(names)), [methods[name]["auroc"] for name in names], color="0.5")
    ax.axvline(0.5, color="k", lw=0.8, ls=":")
    ax.set_yticks(range(len(names)), names, fontsize=7)
    ax.set_xlim(0, 1)
    ax.set_xlabel("AUROC")
    ax.set_title(title, fontsize=8)


def draw(numbers: dict) -> Figure:
    unet = numbers["unet"]
    figure = Figure(figsize=(11.5 if unet else 8.0, 3.2), layout="constrained")
    axes = figure.subplots(1, 3 if unet else 2, squeeze=False)[0]
    parts = (("relu_dae", "(a) theory ReLU DAE"), ("trained_relu_dae", "(a) trained ReLU DAE"))
    for ax, (key, title) in zip(axes, parts):
        part = numbers[key]
        _bars(ax, part["methods"], f"{title}: {part['n_memorised']} memorised / {part['n_generalised']} generalised")
    if unet:
        samples = unet["samples"]
        _bars(axes[2], unet["methods"], f"(b) UNet DDPM on digits: {samples['n_memorised']} memorised / "
                                        f"{samples['n_generalised']} generalised")
    return figure
