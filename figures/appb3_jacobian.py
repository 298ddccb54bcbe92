"""App. B.3: singular values of the denoiser Jacobian around memorised vs generalised samples.

For the tied ReLU-DAE ``f(y) = W[Wᵀy]_+`` the Jacobian at y is ``J = W_a W_aᵀ``, W_a the
columns active at y: symmetric and PSD, so its singular values are the eigenvalues of
``W_aᵀW_a``. Around a noisy training sample y = x_i + σε:

* memorising model (Cor. 3.2): one active column ``r_i x_i``, so J has **one** nonzero
  singular value ``r_i²‖x_i‖² = (‖x_i‖² − nλ)/(‖x_i‖² + σ²)`` with singular vector x_i — the
  denoiser projects onto one data vector;
* generalising model (eq. (8)): the active block gives ``J = U diag(a_j) Uᵀ``, p_k singular
  values ``a_j = (Λ_j − nλ)/(Λ_j + n_kσ²)`` along the cluster's principal directions — the
  local statistics of the cluster.

The effective rank ``(Σ s_j)²/Σ s_j²`` (1 for one value, p_k for p_k equal ones) summarises it.
"""
from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from figures.common import Config, check, column_cosines, summary
from figures.plot import show_vector
from figures.fig4_spikiness import predicted_generalising_weights
from figures.models import trained_model
from theory.linear_block import optimal_scale_np

SIGMA = 0.2
SAMPLES = 100          # noisy training samples per model
SHOWN = 12             # singular values drawn


def jacobian(W, y):
    """Singular values (descending) and singular vectors (d, p_a) of J = W_a W_aᵀ at y."""
    active = W.T @ y > 0
    W_a = W[:, active]
    if W_a.shape[1] == 0:
        return np.zeros(0), np.zeros((W.shape[0], 0))
    values, vectors = np.linalg.eigh(W_a.T @ W_a)
    values, vectors = values[::-1].clip(0, None), vectors[:, ::-1]
    left = W_a @ vectors / np.sqrt(np.maximum(values, 1e-300))
    return values, left


def effective_rank(values) -> float:
    """``(Σ s_j)²/Σ s_j²``: 1 for one nonzero value, q for q equal ones.

    >>> effective_rank(np.array([2.0, 2.0, 0.0]))
    2.0
    """
    total = np.sum(values ** 2)
    return float(np.sum(values) ** 2 / total) if total > 0 else 0.0


def jacobian_statistics(model, rng) -> dict:
    """Jacobian spectra at noisy copies of ``SAMPLES`` training samples (drawn with ``rng``)."""
    X = model.dataset.X
    index = rng.choice(X.shape[1], size=min(SAMPLES, X.shape[1] * 20), replace=X.shape[1] < SAMPLES)
    spectra = np.zeros((index.size, SHOWN))
    ranks, top_cos = [], []
    for row, i in enumerate(index):
        y = X[:, i] + SIGMA * rng.standard_normal(X.shape[0])
        values, left = jacobian(model.W, y)
        spectra[row, :min(SHOWN, values.size)] = values[:SHOWN]
        ranks.append(effective_rank(values))
        top_cos.append(float(abs(column_cosines(left[:, :1], X[:, [i]])[0, 0])) if values.size else 0.0)
    return dict(index=index, spectra=spectra, effective_rank=np.array(ranks), top_vector_cosine=np.array(top_cos))


def predicted_spectrum(model) -> np.ndarray:
    """The theory's singular values: one r_i²‖x_i‖² per sample (memorising, mean over samples),
    or a_j of eq. (8) for the allocation rule's p_k of the sample-0 cluster (generalising)."""
    X, n = model.dataset.X, model.dataset.X.shape[1]
    if model.regime == "memorising":
        s = np.sum(X ** 2, axis=0)
        return np.array([np.mean((s - n * model.lam) / (s + model.sigma ** 2))])
    W_pred, owner, _ = predicted_generalising_weights(model)
    labels = model.dataset.labels
    k = labels[0]
    X_k = X[:, labels == k]
    p_k = int(np.sum(np.array(owner) == k))
    eigen = np.linalg.svd(X_k, compute_uv=False)[:p_k] ** 2
    return optimal_scale_np(eigen, X_k.shape[1], model.sigma, n * model.lam)


REGIMES = (("memorising", "C0"), ("generalising", "C1"))


def model_numbers(model, rng) -> dict:
    """Spectra at noisy training samples (median and 10-90% band) next to the theory's values."""
    stats = jacobian_statistics(model, rng)
    low, high = np.percentile(stats["spectra"], [10, 90], axis=0)
    return dict(parameters=model.parameters, singular_values_median=np.median(stats["spectra"], axis=0),
                singular_values_p10=low, singular_values_p90=high,
                predicted_singular_values=predicted_spectrum(model),
                effective_rank=summary(stats["effective_rank"]),
                effective_rank_median=float(np.median(stats["effective_rank"])),
                top_vector_cosine=summary(stats["top_vector_cosine"]),
                top_vector_cosine_median=float(np.median(stats["top_vector_cosine"])))


def top_vectors(model, rng) -> dict:
    """The three top singular vectors around training face 0, their values and largest |cosine| to a face."""
    x = model.dataset.X[:, 0]
    values, left = jacobian(model.W, x + SIGMA * rng.standard_normal(x.size))
    count = min(3, values.size)
    cosine = [float(np.max(np.abs(column_cosines(left[:, [j]], model.dataset.X)))) for j in range(count)]
    return dict(values=values[:count], vectors=left[:, :count], max_cosine=cosine)


def compute(config: Config) -> dict:
    """Jacobian spectra of the four Fig. 3 models at σ = 0.2, and top singular vectors around one face."""
    rng = np.random.default_rng(config.seed)
    numbers = {}
    for dataset in ("faces", "mixture"):
        for regime, _ in REGIMES:
            numbers[f"{dataset}_{regime}"] = model_numbers(trained_model(config, dataset, regime, SIGMA), rng)
    vectors = {regime: top_vectors(trained_model(config, "faces", regime, SIGMA), rng) for regime, _ in REGIMES}
    caption = ("App. B.3. Singular values of J = W_a W_a^T at noisy training samples for the Fig. 3 models; "
               "crosses: the theory (memorising: one value r_i^2||x_i||^2, eq. (9); generalising: eq. (8)'s a_j for the "
               "allocation rule's p_k). Bottom: top singular vectors around a training face with their largest |cosine| "
               "to a training face.")
    parameters = dict(sigma=SIGMA, samples_per_model=SAMPLES, shown_values=SHOWN, seed=config.seed,
                      models="numbers[DATASET_REGIME].parameters")
    return dict(paper="App. B.3", caption=caption, parameters=parameters, **numbers, arrays=dict(top_vectors=vectors))


def spectra_panel(ax, dataset, numbers) -> None:
    ticks = np.arange(1, SHOWN + 1)
    for regime, color in REGIMES:
        entry = numbers[f"{dataset}_{regime}"]
        median = np.asarray(entry["singular_values_median"])
        low, high = np.asarray(entry["singular_values_p10"]), np.asarray(entry["singular_values_p90"])
        prediction = np.asarray(entry["predicted_singular_values"])
        ax.semilogy(ticks, np.maximum(median, 1e-6), "o-", color=color, ms=4,
                    label=f"{regime} (n={entry['parameters']['data']['n']}, p={entry['parameters']['solver']['p']}): "
                          "median")
        ax.fill_between(ticks, np.maximum(low, 1e-6), np.maximum(high, 1e-6), color=color, alpha=0.2)
        ax.semilogy(np.arange(1, prediction.size + 1), prediction, "x", color="k", ms=7,
                    label="theory" if regime == "memorising" else None)
    ax.set_ylim(1e-4, 3)
    ax.set_xlabel("index j", fontsize=8)
    ax.set_ylabel("singular value of the Jacobian at x_i + sigma eps", fontsize=8)
    ax.set_title(f"{dataset}: Jacobian spectra (band: 10-90% over samples)", fontsize=9)
    ax.legend(fontsize=7)


def draw(numbers) -> Figure:
    """Top: spectra per data set; bottom: top singular vectors around face 0 under each face model."""
    figure = Figure(figsize=(14, 7.5))
    grid = figure.add_gridspec(2, 6)
    for column, dataset in enumerate(["faces", "mixture"]):
        spectra_panel(figure.add_subplot(grid[0, 3 * column:3 * column + 3]), dataset, numbers)
    for offset, (regime, _) in enumerate(REGIMES):
        top = numbers["arrays"]["top_vectors"][regime]
        for j in range(3):
            ax = figure.add_subplot(grid[1, 3 * offset + j])
            if j < len(top["values"]):
                show_vector(ax, top["vectors"][:, j], f"{regime} face 0: v{j + 1}\ns={top['values'][j]:.3f}, "
                                                      f"max|cos|={top['max_cosine'][j]:.2f}", fontsize=7)
            else:
                ax.axis("off")
                ax.set_title(f"{regime}: v{j + 1} (no {j + 1}th active neuron)", fontsize=7)
    figure.suptitle("App. B.3: singular values of the denoiser Jacobian around training samples (sigma = 0.2)",
                    fontsize=10)
    figure.tight_layout()
    return figure


def checks(numbers) -> list:
    """Memorising: one dominant value along the sample, eq. (9)'s size; generalising: several values."""
    results = []
    for dataset in ("faces", "mixture"):
        for regime, _ in REGIMES:
            key = f"{dataset}_{regime}"
            entry = numbers[key]
            rank = entry["effective_rank_median"]
            if regime == "generalising":
                results.append(check(f"{key}: several comparable singular values (median effective rank >= 2)", rank,
                                     2.0, rank >= 2.0))
                continue
            if entry["parameters"]["data"]["beta1"] < 0:
                # With beta1 > 0 (faces) neighbouring samples' columns also fire: not Cor. 3.2's setting.
                results.append(check(f"{key}: one dominant singular value (median effective rank <= 1.5)", rank, 1.5,
                                     rank <= 1.5))
            cosine = entry["top_vector_cosine_median"]
            predicted = entry["predicted_singular_values"][0]
            error = abs(entry["singular_values_median"][0] - predicted) / predicted
            results += [
                check(f"{key}: top singular vector is the training sample (median cosine >= 0.95)", cosine, 0.95,
                      cosine >= 0.95),
                check(f"{key}: top singular value within 10% of (||x||^2 - n lam)/(||x||^2 + sigma^2) (eq. 9)",
                      error, 0.10, error <= 0.10),
            ]
    return results
