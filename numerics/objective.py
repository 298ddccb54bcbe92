"""The training loss eq. (6), exactly, with its exact gradient, and a Monte-Carlo estimator.

``L(W1, W2) = (1/n) Σ_i E_ε ‖W2 [W1ᵀ(x_i + σε)]_+ − x_i‖² + λ (‖W1‖_F² + ‖W2‖_F²)``

Per sample, the pre-activations ``a = W1ᵀ(x + σε)`` are jointly Gaussian with means
``m = W1ᵀx`` and covariance ``Σ = σ² W1ᵀW1``, so with ``G = W2ᵀW2`` and ``b = W2ᵀx``

``E‖W2 h − x‖² = Σ_jk G_jk E[h_j h_k] − 2 Σ_j b_j E[h_j] + ‖x‖²``

and the moments are the rectified-Gaussian closed forms of `numerics.gaussian`. The
gradient follows from Stein's lemma (``∂/∂m``) and Price's theorem (``∂/∂Σ``), see
``theory/rectified_gaussian.py``.

Speed: a neuron whose standardised mean ``|m/s|`` exceeds `DETERMINISTIC_Z` is on or off
for all noise to within ``Φ(−8.5) ≈ 1e-17``; its moments are then linear algebra, and only
pairs of undecided neurons need the bivariate normal CDF (THEORY.md §2).

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> X = rng.normal(size=(4, 6)); W = rng.normal(size=(4, 3))
>>> loss, gW1, gW2 = expected_loss_and_grad(W, W, X, sigma=0.5)
>>> gW1.shape
(4, 3)
"""
from __future__ import annotations

import os
import sys

import numba
import numpy as np
from numba import njit, prange
from scipy.special import ndtr

from numerics.gaussian import mehler_terms, norm_cdf, norm_pdf, pair_moments, rectified_moments
from numerics.model import forward
from numerics.threads import numba_threads, single_thread
from numerics.validation import as_rng, data_and_weights, loss_magnitude, nonnegative, positive_int

__all__ = ["expected_loss", "expected_loss_and_grad", "monte_carlo_loss", "monte_carlo_loss_and_grad",
           "DETERMINISTIC_Z", "PAIR_METHODS"]

DETERMINISTIC_Z = 8.5
# Below these sizes fixed costs dominate: waking numba's thread pool costs ~50 ms on a loaded
# machine against ~1 ms of serial work at n·p² = 2e5, and the Mehler path's per-order NumPy
# overhead beats Genz's per-pair cost below ~2e4 (pair × sample) evaluations.
SERIAL_BELOW = 200_000
N_CHUNKS = 16
MEHLER_MIN_PAIR_SAMPLES = 20_000

_OFF, _ON, _UNDECIDED = 0, 1, 2


# A numba kernel, longer than the package's 80-line rule on purpose: one pass over the
# samples keeps every per-sample scratch array in registers/cache and the three pair cases
# (on–on, on–undecided, undecided–undecided) in one loop; split into functions, numba would
# either inline them back or pay a call per neuron pair and sample.
@njit(cache=True, parallel=True)
def _moment_sums(means, scales, cov, rho, n_terms, gram, targets, threshold, n_chunks):
    """Sums over samples of the moments the loss and its gradient need.

    ``means, targets``: (n, p) arrays of ``m_ij = w_jᵀx_i`` and ``b_ij = (W2ᵀx_i)_j``;
    ``scales``: (p,) ``s_j = σ‖w_j‖``; ``cov = σ² W1ᵀW1``; ``rho`` its correlations and
    ``n_terms`` the Mehler terms of each pair (pairs of undecided neurons with
    ``n_terms > 0`` are left to `_mehler_sums`; 0: Genz's Φ2 here); ``gram = W2ᵀW2``.
    Returns ``E[h]`` (n, p), ``∂F_i/∂m_ij`` (n, p), the upper triangles of
    ``Σ_i E[hhᵀ]`` and ``Σ_i P(h_j>0, h_k>0)``, and the diagonal term of ``∂F/∂Σ`` that
    Price's theorem adds, ``Σ_i E[δ(a_j)(Σ_{k≠j} G_jk h_k − b_j)]``.
    """
    n, p = means.shape
    second = np.zeros((n_chunks, p, p))
    both_on = np.zeros((n_chunks, p, p))
    cov_diag = np.zeros((n_chunks, p))
    mean_h = np.zeros((n, p))
    grad_m = np.zeros((n, p))
    for chunk in prange(n_chunks):
        active = np.empty(p, dtype=np.int64)
        kind = np.empty(p, dtype=np.int64)
        z = np.empty(p)
        cdf = np.empty(p)
        pdf = np.empty(p)
        g_acc = np.empty(p)
        d_acc = np.empty(p)
        for i in range(chunk * n // n_chunks, (chunk + 1) * n // n_chunks):
            n_active = 0
            for j in range(p):
                m = means[i, j]
                if scales[j] == 0.0:
                    state = _ON if m > 0.0 else _OFF
                else:
                    z[j] = m / scales[j]
                    state = _ON if z[j] > threshold else (_OFF if z[j] < -threshold else _UNDECIDED)
                kind[j] = state
                if state == _OFF:
                    continue
                active[n_active] = j
                n_active += 1
                if state == _ON:
                    cdf[j] = 1.0
                    pdf[j] = 0.0
                    mean_h[i, j] = m
                    second[chunk, j, j] += m * m + cov[j, j]
                else:
                    cdf[j] = norm_cdf(z[j])
                    pdf[j] = norm_pdf(z[j])
                    mean_h[i, j], second_jj = rectified_moments(m, scales[j])
                    second[chunk, j, j] += second_jj
                both_on[chunk, j, j] += cdf[j]
                g_acc[j] = gram[j, j] * mean_h[i, j]
                d_acc[j] = 0.0
            for a in range(n_active):
                j = active[a]
                m_j = means[i, j]
                for b in range(a + 1, n_active):
                    k = active[b]
                    m_k = means[i, k]
                    delta_j = 0.0  # E[δ(a_j) a_k+], zero when a_j is surely on
                    delta_k = 0.0
                    if kind[j] == _ON and kind[k] == _ON:
                        cross = m_j * m_k + cov[j, k]
                        both = 1.0
                        j_on_k = m_k
                        k_on_j = m_j
                    elif kind[j] == _ON:
                        cross = m_j * mean_h[i, k] + cov[j, k] * cdf[k]
                        both = cdf[k]
                        j_on_k = mean_h[i, k]
                        k_on_j = m_j * cdf[k] + cov[j, k] / scales[k] * pdf[k]
                        delta_k = pdf[k] / scales[k] * (m_j - cov[j, k] / scales[k] * z[k])
                    elif kind[k] == _ON:
                        cross = m_k * mean_h[i, j] + cov[j, k] * cdf[j]
                        both = cdf[j]
                        j_on_k = m_k * cdf[j] + cov[j, k] / scales[j] * pdf[j]
                        k_on_j = mean_h[i, j]
                        delta_j = pdf[j] / scales[j] * (m_k - cov[j, k] / scales[j] * z[j])
                    elif n_terms[j, k] > 0:
                        continue  # summed over samples by `_mehler_sums`
                    else:
                        cross, both, j_on_k, k_on_j, k_cond_j, j_cond_k = pair_moments(
                            m_j, scales[j], z[j], cdf[j], pdf[j],
                            m_k, scales[k], z[k], cdf[k], pdf[k], rho[j, k])
                        delta_j = pdf[j] / scales[j] * k_cond_j
                        delta_k = pdf[k] / scales[k] * j_cond_k
                    second[chunk, j, k] += cross
                    both_on[chunk, j, k] += both
                    g_acc[j] += gram[j, k] * j_on_k
                    g_acc[k] += gram[j, k] * k_on_j
                    d_acc[j] += gram[j, k] * delta_j
                    d_acc[k] += gram[j, k] * delta_k
            for a in range(n_active):
                j = active[a]
                grad_m[i, j] = 2.0 * (g_acc[j] - targets[i, j] * cdf[j])
                if kind[j] == _UNDECIDED:
                    cov_diag[chunk, j] += d_acc[j] - targets[i, j] * pdf[j] / scales[j]
    return mean_h, grad_m, second.sum(axis=0), both_on.sum(axis=0), cov_diag.sum(axis=0)


def _mehler_sums(means, scales, rho, n_terms, gram, threshold, need_grad=True):
    """Sample sums of the moments of weakly correlated undecided pairs (Mehler series).

    Implements the four series of `numerics.gaussian` summed over samples: term n is a
    Gram matrix ``AₙᵀAₙ`` and one product ``Aₙ Kₙᵀ`` with ``Kₙ = G ∘ ρⁿ ∘ 1sᵀ``, where
    ``Aₙ`` (n × p') holds the normalised Hermite coefficient of every (sample, neuron) that
    is undecided (zero elsewhere). Returns full (p, p) ``Σ E[hhᵀ]`` and ``Σ P(both on)``
    contributions, the (n, p) ``∂F/∂m`` contribution and the (p,) Price diagonal term (the
    last two stay zero when ``need_grad`` is false, saving one matrix product per order).
    """
    n, p = means.shape
    second = np.zeros((p, p))
    both_on = np.zeros((p, p))
    grad_m = np.zeros((n, p))
    cov_diag = np.zeros(p)
    series = n_terms > 0
    columns = np.flatnonzero(series.any(axis=1) | series.any(axis=0))
    if columns.size == 0:
        return second, both_on, grad_m, cov_diag
    s = scales[columns]
    z = means[:, columns] / s
    undecided = np.abs(z) <= threshold
    columns_used = undecided.any(axis=0)
    columns, s, z, undecided = (columns[columns_used], s[columns_used], z[:, columns_used],
                                undecided[:, columns_used])
    block = np.ix_(columns, columns)
    pair_mask = (n_terms[block] > 0) | (n_terms[block] > 0).T
    if not pair_mask.any():
        return second, both_on, grad_m, cov_diag
    n_max = int(np.max(np.maximum(n_terms[block], n_terms[block].T)[pair_mask]))
    rho_sub = np.where(pair_mask, rho[block], 0.0)
    weight = gram[block] * s[None, :]
    z = np.where(undecided, z, 0.0)
    cdf = np.where(undecided, ndtr(z), 0.0)
    pdf = np.where(undecided, np.exp(-0.5 * z * z) / np.sqrt(2.0 * np.pi), 0.0)

    coefficients = _hermite_coefficients(z, cdf, pdf, n_max + 2)
    a_n, a_next = next(coefficients), next(coefficients)
    gram_n, gram_next = a_n.T @ a_n, a_next.T @ a_next
    power = pair_mask.astype(np.float64)  # ρⁿ on series pairs, 0 elsewhere
    sub_second = np.zeros((columns.size, columns.size))
    sub_both = np.zeros_like(sub_second)
    sub_grad = np.zeros((n, columns.size))
    sub_diag = np.zeros(columns.size)
    for order in range(n_max):
        a_after = next(coefficients)
        sub_second += power * gram_n
        sub_both += power * (order + 1) * gram_next
        if need_grad:
            projected = a_n @ (weight * power).T
            sub_grad += np.sqrt(order + 1.0) * a_next * projected
            sub_diag += np.sqrt((order + 1.0) * (order + 2.0)) * np.sum(a_after * projected, axis=0)
        a_n, a_next = a_next, a_after
        gram_n, gram_next = gram_next, a_after.T @ a_after
        power = power * rho_sub
    second[block] = sub_second * np.outer(s, s)
    both_on[block] = sub_both
    grad_m[:, columns] = 2.0 * sub_grad
    cov_diag[columns] = sub_diag / s
    return second, both_on, grad_m, cov_diag


def _hermite_coefficients(z, cdf, pdf, count):
    """Yield ``Aₙ = cₙ(z)/√(n!)`` for n = 0 … count−1 (see `numerics.gaussian`)."""
    yield z * cdf + pdf
    yield cdf
    h_prev, h_cur = np.zeros_like(z), np.where(pdf > 0.0, 1.0, 0.0)  # ĥ_{m−1}, ĥ_m, m = n − 2
    for n in range(2, count):
        m = n - 2
        if m >= 1:
            h_prev, h_cur = h_cur, (z * h_cur - np.sqrt(m - 1.0) * h_prev) / np.sqrt(float(m))
        yield (1.0 if n % 2 == 0 else -1.0) * h_cur * pdf / np.sqrt(n * (n - 1.0))


def _symmetric_from_upper(upper: np.ndarray) -> np.ndarray:
    return upper + upper.T - np.diag(np.diag(upper))


def _checked(W1, W2, X, sigma, lam):
    X, W1, W2 = data_and_weights(X, W1, W2)
    sigma = nonnegative("sigma", sigma, symbol="σ")
    lam = nonnegative("lam", lam, symbol="λ")
    loss_magnitude(X, W1, W2, sigma, lam)
    return W1, W2, X, sigma, lam


PAIR_METHODS = ("auto", "bivariate")
_ANNOUNCED = False


def _announce_first_compilation() -> None:
    """One line on stderr before numba compiles the exact objective's kernel into a fresh cache.

    The kernel is cached on disk (``cache=True``: ``numerics/__pycache__``, or
    ``NUMBA_CACHE_DIR``); compiling it takes 10–60 s once, loading it later a fraction of a
    second. The message is printed at most once per process, and only when the kernel is
    neither compiled in this process nor indexed in the cache (read from numba's cache
    object; if that ever changes, nothing is printed).
    """
    global _ANNOUNCED
    if _ANNOUNCED or _moment_sums.signatures:
        return
    _ANNOUNCED = True
    index = getattr(getattr(getattr(_moment_sums, "_cache", None), "_cache_file", None), "_index_path", None)
    if index is not None and not os.path.exists(index):
        print("numerics.objective: compiling the exact objective's numba kernel for this cache (once; "
              "10-60 s, then cached on disk) ...", file=sys.stderr, flush=True)


def _exact(W1, W2, X, sigma, lam, need_grad, pair_method):
    if not isinstance(pair_method, str) or pair_method not in PAIR_METHODS:
        raise ValueError(f"pair_method must be one of {PAIR_METHODS}; got {pair_method!r}")
    n = X.shape[1]
    column_norms = np.linalg.norm(W1, axis=0)
    scales = sigma * column_norms
    inner = W1.T @ W1
    cov = sigma**2 * inner
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = inner / np.outer(column_norms, column_norms)
    rho = np.clip(np.nan_to_num(rho), -1.0, 1.0)
    gram = W2.T @ W2
    means = np.ascontiguousarray((W1.T @ X).T)
    targets = np.ascontiguousarray((W2.T @ X).T)
    p = W1.shape[1]
    n_terms = np.zeros(rho.shape, dtype=np.int64)
    if pair_method == "auto" and n * p * (p - 1) // 2 >= MEHLER_MIN_PAIR_SAMPLES:
        noisy = scales > 0.0
        n_terms[np.ix_(noisy, noisy)] = mehler_terms(np.abs(rho[np.ix_(noisy, noisy)]))
        n_terms = np.triu(n_terms, 1)
    _announce_first_compilation()
    with numba_threads(1 if n * p * p < SERIAL_BELOW else numba.get_num_threads()):
        # A fixed number of chunks, whatever the thread count, keeps the summation order and
        # so the result identical to the last bit on every machine.
        mean_h, grad_m, second_upper, both_upper, cov_diag = _moment_sums(
            means, scales, cov, rho, n_terms, gram, targets, DETERMINISTIC_Z, min(n, N_CHUNKS))
    # The series is many mid-sized matrix products: with threaded BLAS their synchronisation
    # costs more than it gains, catastrophically so on a loaded machine (10 s against 1 s at
    # d = 1024, n = 10,000 with other processes running; see benchmarks/objective.py).
    with single_thread(numba=False, user_api="blas"):
        series_second, series_both, series_grad_m, series_diag = _mehler_sums(
            means, scales, rho, n_terms, gram, DETERMINISTIC_Z, need_grad)
    second = _symmetric_from_upper(second_upper) + series_second
    decay = lam * (np.sum(W1 * W1) + np.sum(W2 * W2))
    data = (np.sum(gram * second) - 2.0 * np.sum(targets * mean_h) + np.sum(X * X)) / n
    # Rounding can push an exact zero slightly negative; the data term is an expectation of a
    # squared norm, so clip at zero.
    loss = max(data, 0.0) + decay
    if not need_grad:
        return loss
    cov_grad = (gram * (_symmetric_from_upper(both_upper) + series_both)
                + np.diag(cov_diag + series_diag))
    gW1 = (X @ (grad_m + series_grad_m) + 2.0 * sigma**2 * (W1 @ cov_grad)) / n + 2.0 * lam * W1
    gW2 = 2.0 * (W2 @ second - X @ mean_h) / n + 2.0 * lam * W2
    return loss, gW1, gW2


def expected_loss(W1, W2, X, sigma, lam=0.0, *, pair_method="auto") -> float:
    """Exact value of the loss eq. (6) for weights ``W1, W2`` (d, p) and data ``X`` (d, n).

    Tied weights are the case ``W1 is W2``. ``sigma = 0`` gives the noiseless loss.
    ``pair_method="auto"`` sums weakly correlated neuron pairs by the Mehler series and the
    others with Genz's Φ2; ``"bivariate"`` uses Φ2 for every pair (slower; an independent
    implementation for cross-checks).
    """
    return _exact(*_checked(W1, W2, X, sigma, lam), need_grad=False, pair_method=pair_method)


def expected_loss_and_grad(W1, W2, X, sigma, lam=0.0, *, pair_method="auto"):
    """Exact loss eq. (6) and its gradients ``(loss, ∂L/∂W1, ∂L/∂W2)``.

    For tied weights ``W1 = W2 = W`` the gradient with respect to ``W`` is ``gW1 + gW2``.
    Where the loss is not differentiable (a zero column of W1, or ``sigma = 0`` with a
    pre-activation exactly zero) the returned value is the one-sided derivative of the
    inactive side, i.e. a valid subgradient choice.
    """
    return _exact(*_checked(W1, W2, X, sigma, lam), need_grad=True, pair_method=pair_method)


def monte_carlo_loss(W1, W2, X, sigma, lam=0.0, n_draws=64, rng=None):
    """Monte-Carlo estimate of eq. (6) with ``n_draws ≥ 2`` noise draws per sample.

    Returns ``(mean, standard_error)``; the standard error is that of the mean over the
    ``n · n_draws`` independent per-sample squared errors (weight decay is exact). It uses
    each sample's own variance over its draws, so it needs at least two draws.

    >>> import numpy as np
    >>> W = np.eye(2); X = np.array([[1.0], [0.0]])
    >>> mean, se = monte_carlo_loss(W, W, X, sigma=0.0, n_draws=2)    # no noise: exact
    >>> mean, se
    (0.0, 0.0)
    """
    W1, W2, X, sigma, lam = _checked(W1, W2, X, sigma, lam)
    n_draws = positive_int("n_draws", n_draws, minimum=2)
    rng = as_rng("rng", rng)
    d, n = X.shape
    errors = np.empty((n_draws, n))
    for draw in range(n_draws):
        noisy = X + sigma * rng.standard_normal((d, n))
        errors[draw] = np.sum((forward(W1, W2, noisy) - X) ** 2, axis=0)
    # Draws are independent across samples and draws; the sample means differ, so the
    # variance of the overall mean is the average per-sample variance / (n · n_draws).
    # The errors are divided by their largest value first: their squares may not fit in
    # float64 even when the errors do.
    top = float(errors.max())
    unit = top if top > 0 else 1.0
    per_sample_var = (errors / unit).var(axis=0, ddof=1)
    standard_error = unit * float(np.sqrt(per_sample_var.sum() / (n * n * n_draws)))
    decay = lam * (np.sum(W1 * W1) + np.sum(W2 * W2))
    return float(errors.mean() + decay), standard_error


def monte_carlo_loss_and_grad(W1, W2, X, sigma, lam=0.0, rng=None):
    """One-draw-per-sample estimate of eq. (6) and its gradient (the authors' estimator).

    Unbiased for the loss and the gradient; this is what one full-batch training step of
    the paper's code sees.
    """
    W1, W2, X, sigma, lam = _checked(W1, W2, X, sigma, lam)
    rng = as_rng("rng", rng)
    d, n = X.shape
    noisy = X + sigma * rng.standard_normal((d, n))
    pre = W1.T @ noisy
    hidden = np.maximum(pre, 0.0)
    residual = W2 @ hidden - X
    loss = np.sum(residual * residual) / n + lam * (np.sum(W1 * W1) + np.sum(W2 * W2))
    gW2 = 2.0 * (residual @ hidden.T) / n + 2.0 * lam * W2
    back = (W2.T @ residual) * (pre > 0.0)
    gW1 = 2.0 * (noisy @ back.T) / n + 2.0 * lam * W1
    return float(loss), gW1, gW2
