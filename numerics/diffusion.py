"""Reverse-diffusion samplers and memorisation metrics for any denoiser ``denoiser(Y, sigma) -> X̂₀``.

A denoiser takes noisy inputs as the columns of ``Y`` (shape ``(d, m)``) and a noise level
σ > 0, and returns its estimate of the clean columns, shape ``(d, m)``: the theory's
denoisers (`theory.diffusion`), the reference ones (`numerics.denoisers`) and trained models
all fit. The forward process is the variance-exploding one, ``x_σ = x₀ + σε``.

* :func:`ve_sample` — the reverse-VE Euler–Maruyama sampler of the paper's authors;
* :func:`heun_sample` — a deterministic probability-flow sampler, 2nd-order Heun (Karras et
  al. 2022, "Elucidating the design space of diffusion-based generative models", Alg. 1);
* :func:`nearest_neighbours` — the k nearest training samples (ℓ2 or cosine), chunked;
* :func:`memorization_ratio` / :func:`memorization_report` — the nearest-neighbour ratio rule
  of the diffusion memorisation literature.

>>> import numpy as np
>>> X = np.array([[3.0, -3.0], [0.0, 0.0]])                     # two training points, d = 2
>>> shrink = lambda Y, sigma: Y * 9.0 / (9.0 + sigma ** 2)      # a Gaussian's denoiser
>>> ve_sample(shrink, d=2, n_samples=4, steps=20, seed=0).shape
(2, 4)
>>> memorization_ratio(X[:, [0, 1, 0]] * 1.001, X)
1.0
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from numerics.validation import as_matrix, positive, positive_int

__all__ = ["Trajectory", "sigma_grid", "ve_sample", "heun_sample", "shifted", "Neighbours",
           "nearest_neighbours", "MemorizationReport", "memorization_report", "memorization_ratio"]

# Memory budget for the distance temporaries of `nearest_neighbours` (bytes).
NEIGHBOUR_MEMORY = 64 * 2 ** 20


# ----------------------------------------------------------------------------- samplers


@dataclass(frozen=True, eq=False)
class Trajectory:
    """A sampler's path: ``sigmas`` (steps + 1,) from σ_max down to 0; ``states`` (steps + 1, d, m),
    the state before each step and, last, the returned samples; ``denoised`` (steps, d, m), the
    denoiser's output ``f(x_i, σ_i)`` at each step (for Heun, its first evaluation).

    Returned by `ve_sample` and `heun_sample` with ``record=True``.

    >>> x, path = heun_sample(lambda Y, s: 0.0 * Y, d=2, n_samples=3, steps=4, record=True)   # x (d, m) = (2, 3)
    >>> path.states.shape, path.denoised.shape, path.snapshots(3)[1].shape   # (steps + 1, d, m), (steps, d, m)
    ((5, 2, 3), (4, 2, 3), (3, 2, 3))
    """

    sigmas: np.ndarray
    states: np.ndarray
    denoised: np.ndarray

    def snapshots(self, count: int) -> tuple[np.ndarray, np.ndarray]:
        """``count`` states evenly spaced along the steps, first and last included: (σ (count,), (count, d, m))."""
        count = positive_int("count", count)
        index = np.unique(np.round(np.linspace(0, self.states.shape[0] - 1, count)).astype(int))
        return self.sigmas[index], self.states[index]


def sigma_grid(steps: int = 60, sigma_max: float = 2.0, sigma_min: float = 0.02) -> np.ndarray:
    """The samplers' noise levels: ``geomspace(σ_max, σ_min, steps)`` followed by 0, shape (steps + 1,).

    >>> sigma_grid(3, 4.0, 1.0).tolist()
    [4.0, 2.0, 1.0, 0.0]
    """
    steps = positive_int("steps", steps, minimum=2)
    sigma_max, sigma_min = positive("sigma_max", sigma_max), positive("sigma_min", sigma_min)
    if sigma_min > sigma_max:
        raise ValueError(f"sigma_min must be <= sigma_max; got sigma_min = {sigma_min!r} > "
                         f"sigma_max = {sigma_max!r}")
    return np.append(np.geomspace(sigma_max, sigma_min, steps), 0.0)


def _clamp_bounds(clamp):
    if clamp is None:
        return None
    try:
        low, high = (float(value) for value in clamp)
    except (TypeError, ValueError) as error:
        raise ValueError(f"clamp must be None or an interval (low, high); got {clamp!r}") from error
    if not (np.isfinite(low) and np.isfinite(high) and low < high):
        raise ValueError(f"clamp must be a finite interval (low, high) with low < high; got {clamp!r}")
    return low, high


def _run(denoiser, d, n_samples, steps, sigma_max, sigma_min, seed, clamp, record, step):
    """The loop both samplers share: validate, start at ``x = σ_max·N(0, I)``, then for each pair
    (σ_i, σ_{i+1}) ``x, x̂₀ = step(x, σ_i, σ_{i+1}, rng)``, clamp, record."""
    if not callable(denoiser):
        raise TypeError(f"denoiser must be a callable denoiser(Y, sigma) -> X̂₀; got {type(denoiser).__name__}")
    d, n_samples = positive_int("d", d), positive_int("n_samples", n_samples)
    sigmas = sigma_grid(steps, sigma_max, sigma_min)
    clamp = _clamp_bounds(clamp)
    rng = np.random.default_rng(seed)
    x = sigmas[0] * rng.standard_normal((d, n_samples))
    states, denoised = [x], []
    for sigma, following in zip(sigmas[:-1], sigmas[1:]):
        x, estimate = step(x, sigma, following, rng)
        if clamp is not None:
            x = np.clip(x, *clamp)
        if record:
            states.append(x)
            denoised.append(estimate)
    if not record:
        return x
    return x, Trajectory(sigmas, np.stack(states), np.stack(denoised))


def _denoise(denoiser, x: np.ndarray, sigma: float) -> np.ndarray:
    """Call the denoiser and check that it returned finite values of the input's shape."""
    out = np.asarray(denoiser(x, float(sigma)), dtype=np.float64)
    if out.shape != x.shape:
        raise ValueError(f"denoiser must return an array of the input's shape {x.shape} (d, m); "
                         f"got {out.shape} at sigma = {sigma:.6g}")
    if not np.all(np.isfinite(out)):
        raise ValueError(f"denoiser returned NaN or inf at sigma = {sigma:.6g}")
    return out


def ve_sample(denoiser, d: int, n_samples: int, *, steps: int = 60, sigma_max: float = 2.0,
              sigma_min: float = 0.02, seed=0, clamp=None, record: bool = False):
    """Reverse-VE Euler–Maruyama sampling with ``denoiser``: ``n_samples`` columns, shape (d, n_samples).

    The authors' sampler: σ = ``sigma_grid(steps, σ_max, σ_min)`` (geometric, then 0); start
    ``x = σ_max·N(0, I)``; at step i, ``x̂₀ = f(x, σ_i)``, ``score = (x̂₀ − x)/σ_i²`` (Tweedie),
    ``δ = σ_i² − σ_{i+1}²``, ``x ← x + δ·score + √δ·z`` with z ~ N(0, I) and no noise on the last
    step — which therefore returns ``x̂₀ = f(x, σ_min)`` exactly. ``clamp=(low, high)`` clips
    every coordinate after every step (the authors clamp pixels to [−1, 1]). ``seed`` is an int
    or a ``numpy.random.Generator``. With ``record=True`` returns ``(samples, Trajectory)``.

    >>> X0 = ve_sample(lambda Y, s: 0.5 * Y, d=3, n_samples=5, steps=10, seed=1)
    >>> X0.shape
    (3, 5)
    """
    def step(x, sigma, following, rng):
        estimate = _denoise(denoiser, x, sigma)
        delta = sigma ** 2 - following ** 2
        x = x + delta * (estimate - x) / sigma ** 2
        if following > 0:
            x = x + np.sqrt(delta) * rng.standard_normal(x.shape)
        return x, estimate

    return _run(denoiser, d, n_samples, steps, sigma_max, sigma_min, seed, clamp, record, step)


def heun_sample(denoiser, d: int, n_samples: int, *, steps: int = 60, sigma_max: float = 2.0,
                sigma_min: float = 0.02, seed=0, clamp=None, record: bool = False):
    """Deterministic probability-flow sampling, EDM's 2nd-order Heun (Karras et al. 2022, Alg. 1).

    The ODE ``dx/dσ = (x − f(x, σ))/σ`` on the same σ grid as :func:`ve_sample`; from
    ``x = σ_max·N(0, I)`` (the only randomness), each step takes an Euler step to σ_{i+1} and,
    unless σ_{i+1} = 0, corrects it with the slope there (trapezoidal rule): 2·steps − 1
    denoiser calls in all. ``clamp`` and ``record`` as in :func:`ve_sample`.

    >>> heun_sample(lambda Y, s: 0.5 * Y, d=3, n_samples=5, steps=10).shape
    (3, 5)
    """
    def step(x, sigma, following, rng):
        estimate = _denoise(denoiser, x, sigma)
        slope = (x - estimate) / sigma
        proposal = x + (following - sigma) * slope
        if following > 0:
            corrected = (proposal - _denoise(denoiser, proposal, following)) / following
            proposal = x + (following - sigma) * 0.5 * (slope + corrected)
        return proposal, estimate

    return _run(denoiser, d, n_samples, steps, sigma_max, sigma_min, seed, clamp, record, step)


def shifted(denoiser, offset):
    """The denoiser of data moved by ``−offset``: ``y ↦ offset + denoiser(y − offset, σ)``, offset (d,) or (d, 1).

    Bias-free models act on data centred somewhere useful (e.g. the training mean); this puts
    their output back in the original coordinates.

    >>> f = shifted(lambda Y, s: 0.0 * Y, offset=[1.0, 2.0])
    >>> f(np.zeros((2, 1)), 0.5).ravel().tolist()
    [1.0, 2.0]
    """
    offset = np.asarray(offset, dtype=np.float64).reshape(-1, 1)
    offset = as_matrix("offset", offset, cols=1, cols_name="1")

    def denoise(Y, sigma):
        return offset + denoiser(np.asarray(Y, dtype=np.float64) - offset, sigma)

    return denoise


# ----------------------------------------------------------------------------- nearest neighbours


@dataclass(frozen=True, eq=False)
class Neighbours:
    """The k nearest training samples of every sample: ``indices`` and ``distances``, both (k, m),
    row 0 the nearest (column j belongs to sample j), distances ascending down each column.

    Returned by `nearest_neighbours`.
    """

    indices: np.ndarray
    distances: np.ndarray
    metric: str


def _unit_columns(name: str, A: np.ndarray, allow_zero: bool) -> np.ndarray:
    norms = np.linalg.norm(A, axis=0)
    zero = norms == 0
    if np.any(zero) and not allow_zero:
        raise ValueError(f"{name} has {int(zero.sum())} zero column(s): a zero vector has no direction, "
                         f"so metric='cosine' is undefined for it")
    return A / np.where(zero, 1.0, norms)


def nearest_neighbours(samples, X, *, metric: str = "l2", k: int = 2, chunk: int | None = None) -> Neighbours:
    """The ``k`` nearest columns of ``X`` (d, n) to every column of ``samples`` (d, m).

    ``metric="l2"``: Euclidean distance. ``metric="cosine"``: the same on unit-normalised
    vectors, i.e. the chordal distance ``‖x/‖x‖ − y/‖y‖‖ = √(2 − 2 cos∠(x, y))``, which orders
    neighbours by cosine; a zero *sample* sits at distance 1 from every training direction, a
    zero training column is an error. Training columns are scanned in blocks of ``chunk``
    (default: as many as keep the block's temporaries, three (chunk, m) float64 arrays, within
    `NEIGHBOUR_MEMORY` = 64 MiB), with squared distances ``‖x‖² − 2xᵀy + ‖y‖²`` from one BLAS
    product per block; the k winners' distances are then recomputed directly from ``y − x``,
    so they carry no cancellation error (ties and near-ties within rounding, ≈ 1e-16·‖x‖², may
    be ordered either way). Needs 1 ≤ k ≤ n.

    >>> X = np.array([[0.0, 1.0, 5.0], [0.0, 0.0, 0.0]])
    >>> nn = nearest_neighbours(np.array([[0.9], [0.1]]), X)
    >>> nn.indices.ravel().tolist(), np.round(nn.distances.ravel(), 4).tolist()
    ([1, 0], [0.1414, 0.9055])
    """
    X = as_matrix("X", X, cols_name="n")
    samples = as_matrix("samples", samples, rows=X.shape[0], rows_name=f"d = {X.shape[0]}", cols_name="m")
    n, m = X.shape[1], samples.shape[1]
    k = positive_int("k", k)
    if k > n:
        raise ValueError(f"k must be <= n = {n} (the number of training samples, columns of X); got {k}")
    if metric not in ("l2", "cosine"):
        raise ValueError(f"metric must be 'l2' or 'cosine'; got {metric!r}")
    if metric == "cosine":
        X, samples = _unit_columns("X", X, False), _unit_columns("samples", samples, True)
    if chunk is None:
        chunk = max(k, NEIGHBOUR_MEMORY // (24 * max(m, 1)))
    chunk = positive_int("chunk", chunk)
    best_idx = np.zeros((0, m), dtype=np.int64)
    best_sq = np.zeros((0, m))
    sample_sq = np.sum(samples ** 2, axis=0)
    for start in range(0, n, chunk):
        block = X[:, start:start + chunk]
        squared = block.T @ samples
        squared *= -2.0
        squared += np.sum(block ** 2, axis=0)[:, None]
        squared += sample_sq[None, :]
        keep = min(k, block.shape[1])
        top = np.argpartition(squared, keep - 1, axis=0)[:keep] if keep < block.shape[1] \
            else np.broadcast_to(np.arange(block.shape[1])[:, None], (keep, m))
        best_idx = np.concatenate([best_idx, top + start])
        best_sq = np.concatenate([best_sq, np.take_along_axis(squared, top, axis=0)])
        if best_idx.shape[0] > k:
            order = np.argpartition(best_sq, k - 1, axis=0)[:k]
            best_idx = np.take_along_axis(best_idx, order, axis=0)
            best_sq = np.take_along_axis(best_sq, order, axis=0)
    # exact distances of the winners, from y − x in blocks of columns within the memory budget
    distances = np.empty(best_idx.shape)
    step = max(1, NEIGHBOUR_MEMORY // (8 * k * X.shape[0]))
    for start in range(0, m, step):
        cols = slice(start, start + step)
        distances[:, cols] = np.linalg.norm(X[:, best_idx[:, cols]] - samples[:, None, cols], axis=0)
    order = np.argsort(distances, axis=0, kind="stable")
    return Neighbours(np.take_along_axis(best_idx, order, axis=0), np.take_along_axis(distances, order, axis=0),
                      metric)


# ----------------------------------------------------------------------------- memorisation


@dataclass(frozen=True, eq=False)
class MemorizationReport:
    """Per-sample outcome of the ratio rule: ``memorized`` (m,) bool, ``nearest`` (m,) index of the
    nearest training sample, ``first``/``second`` (m,) the two smallest distances, ``ratio`` the
    fraction memorised, with the ``threshold`` and ``metric`` used.

    Returned by `memorization_report`.
    """

    ratio: float
    memorized: np.ndarray
    nearest: np.ndarray
    first: np.ndarray
    second: np.ndarray
    threshold: float
    metric: str

    @property
    def distance_ratio(self) -> np.ndarray:
        """``first / second`` per sample (NaN where both are 0: duplicated training samples)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.first / self.second


def memorization_report(samples, X, threshold: float = 1 / 3, metric: str = "l2", *,
                        chunk: int | None = None) -> MemorizationReport:
    """Which samples copy a training sample: distance to the nearest < ``threshold`` × to the second nearest.

    The rule (threshold 1/3, ℓ2 distance) of Yoon et al. 2023, "Diffusion probabilistic models
    generalize when they fail to memorize" (ICML workshop on structured probabilistic
    inference), adopted by Gu et al. 2023, "On memorization in diffusion models"
    (arXiv:2310.02664). ``metric="cosine"`` applies the same rule to unit-normalised vectors
    (`nearest_neighbours`), which is how the paper's authors compare samples with training
    images; a bias-free ReLU denoiser is positively homogeneous, so a memorising one fixes a
    sample's direction but not its norm, and only the cosine rule sees that copy.

    What the rule means for a model that does not copy (derived here): for samples from a
    smooth density that is locally uniform in k effective dimensions around dense training
    points, ``(d₁/d₂)^k`` is uniform on (0, 1) (nearest-neighbour distances of a Poisson process),
    so a fraction ≈ ``threshold^k`` passes by chance: 1/9 in k = 2, 1/27 in 3, 1/243 in 5.

    Needs n ≥ 2 training samples. Duplicated training samples make both distances 0 for a
    sample on them; such a sample is *not* counted (0 < 0 fails), so deduplicate X first.

    >>> X = np.array([[3.0, -3.0], [0.0, 0.0]])                 # two training points, X (d, n) = (2, 2)
    >>> report = memorization_report(np.array([[2.9, 0.0], [0.0, 1.0]]), X)   # samples (d, m) = (2, 2)
    >>> report.memorized.tolist(), report.ratio, np.round(report.distance_ratio, 3).tolist()   # 0.1/5.9; a tie
    ([True, False], 0.5, [0.017, 1.0])
    """
    threshold = positive("threshold", threshold)
    if threshold > 1:
        raise ValueError(f"threshold must be in (0, 1]; got {threshold!r}")
    X = as_matrix("X", X, cols_name="n")
    if X.shape[1] < 2:
        raise ValueError(f"X must hold n >= 2 training samples (the rule compares the nearest with the "
                         f"second nearest); got n = {X.shape[1]}")
    nn = nearest_neighbours(samples, X, metric=metric, k=2, chunk=chunk)
    first, second = nn.distances
    memorized = first < threshold * second
    return MemorizationReport(float(memorized.mean()) if memorized.size else float("nan"), memorized,
                              nn.indices[0], first, second, threshold, metric)


def memorization_ratio(samples, X, threshold: float = 1 / 3, metric: str = "l2") -> float:
    """The fraction of ``samples`` (d, m) that copy a column of ``X`` (d, n): see :func:`memorization_report`.

    >>> X = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> memorization_ratio(np.array([[3.0, 0.5], [0.0, 0.5]]), X, metric="cosine")
    0.5
    """
    return memorization_report(samples, X, threshold, metric).ratio
