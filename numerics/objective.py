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
pairs of undecided neurons need more than matrix products (`numerics.moment_sums`;
docs/theory.md §2).

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

from numerics.gaussian import mehler_terms
from numerics.model import forward
from numerics.moment_sums import moment_sums, neuron_moments
from numerics.threads import numba_threads
from numerics.validation import as_rng, objective_arguments, positive_int

__all__ = ["expected_loss", "expected_loss_and_grad", "monte_carlo_loss", "monte_carlo_loss_and_grad",
           "DETERMINISTIC_Z", "PAIR_METHODS"]

DETERMINISTIC_Z = 8.5
# Below these sizes fixed costs dominate: waking numba's thread pool costs ~50 ms on a loaded
# machine against ~1 ms of serial work at n·p² = 2e5, and the Mehler path's per-order NumPy
# overhead beats Genz's per-pair cost below ~2e4 (pair × sample) evaluations.
SERIAL_BELOW = 200_000
MEHLER_MIN_PAIR_SAMPLES = 20_000


def _squared_norm(X: np.ndarray, block: int = 1024) -> float:
    """``Σ X²`` by column blocks: pairwise summation inside each block, no (d, n) temporary."""
    return float(sum(np.sum(X[:, i:i + block] ** 2) for i in range(0, X.shape[1], block)))


def _checked(W1, W2, X, sigma, lam):
    X, W1, W2, sigma, lam = objective_arguments(X, W1, W2, sigma, lam)
    return W1, W2, X, sigma, lam


PAIR_METHODS = ("auto", "bivariate")
_ANNOUNCED = False


def _announce_first_compilation() -> None:
    """One line on stderr before numba compiles the exact objective's kernels into a fresh cache.

    The kernels (`numerics.moment_sums`) are cached on disk (``cache=True``:
    ``numerics/__pycache__``, or ``NUMBA_CACHE_DIR``); compiling them takes 10–60 s once,
    loading them later a fraction of a second. The message is printed at most once per
    process, and only when `numerics.moment_sums.neuron_moments` (compiled with the others
    on the first call) is neither compiled in this process nor indexed in the cache (read
    from numba's cache object; if that ever changes, nothing is printed).
    """
    global _ANNOUNCED
    if _ANNOUNCED or neuron_moments.signatures:
        return
    _ANNOUNCED = True
    index = getattr(getattr(getattr(neuron_moments, "_cache", None), "_cache_file", None), "_index_path", None)
    if index is not None and not os.path.exists(index):
        print("numerics.objective: compiling the exact objective's numba kernels for this cache (once; "
              "10-60 s, then cached on disk) ...", file=sys.stderr, flush=True)


def _exact(W1, W2, X, sigma, lam, need_grad, pair_method):
    if not isinstance(pair_method, str) or pair_method not in PAIR_METHODS:
        raise ValueError(f"pair_method must be one of {PAIR_METHODS}; got {pair_method!r}")
    n = X.shape[1]
    p = W1.shape[1]
    column_norms = np.linalg.norm(W1, axis=0)
    scales = sigma * column_norms
    inner = W1.T @ W1
    cov = sigma**2 * inner
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = inner / np.outer(column_norms, column_norms)
    rho = np.clip(np.nan_to_num(rho), -1.0, 1.0)
    tied = W1 is W2 or np.array_equal(W1, W2)
    gram = inner if tied else W2.T @ W2
    # One pass over X for both projections (one product of width 2p, or p when tied).
    if tied:
        means = targets = X.T @ W1
    else:
        both_projections = X.T @ np.hstack([W1, W2])
        means, targets = both_projections[:, :p], both_projections[:, p:]
    n_terms = np.zeros(rho.shape, dtype=np.int64)
    if pair_method == "auto" and n * p * (p - 1) // 2 >= MEHLER_MIN_PAIR_SAMPLES:
        noisy = scales > 0.0
        n_terms[np.ix_(noisy, noisy)] = mehler_terms(np.abs(rho[np.ix_(noisy, noisy)]))
        n_terms = np.triu(n_terms, 1)
    _announce_first_compilation()
    # A fixed number of chunks, whatever the thread count, keeps the summation order and so
    # the result identical to the last bit on every machine.
    with numba_threads(1 if n * p * p < SERIAL_BELOW else numba.get_num_threads()):
        sums = moment_sums(means, targets, scales, cov, rho, gram, n_terms, DETERMINISTIC_Z,
                           need_grad)
    decay = lam * (np.sum(W1 * W1) + np.sum(W2 * W2))
    data = (np.sum(gram * sums.second) - 2.0 * np.sum(targets * sums.mean_h) + _squared_norm(X)) / n
    # Rounding can push an exact zero slightly negative; the data term is an expectation of a
    # squared norm, so clip at zero.
    loss = max(data, 0.0) + decay
    if not need_grad:
        return loss
    cov_grad = gram * sums.both + np.diag(sums.cov_diag)
    # One pass over X for both data terms of the gradient.
    back = X @ np.hstack([sums.grad_m, sums.mean_h])
    gW1 = (back[:, :p] + 2.0 * sigma**2 * (W1 @ cov_grad)) / n + 2.0 * lam * W1
    gW2 = 2.0 * (W2 @ sums.second - back[:, p:]) / n + 2.0 * lam * W2
    return loss, gW1, gW2


def expected_loss(W1, W2, X, sigma, lam=0.0, *, pair_method="auto") -> float:
    """Exact value of the loss eq. (6) for weights ``W1, W2`` (d, p) and data ``X`` (d, n).

    Tied weights are the case ``W1 is W2``. ``sigma = 0`` gives the noiseless loss.
    ``pair_method="auto"`` sums weakly correlated neuron pairs by the Mehler series and the
    others with Genz's Φ2; ``"bivariate"`` uses Φ2 for every pair (slower; an independent
    implementation for cross-checks).

    One neuron, one sample: ``f(x) = [x + σε]_+`` at x = 1 errs by σε unless 1 + σε < 0,
    which at σ = 0.1 has probability Φ(−10) ≈ 8e-24, so the loss is σ² (plus 2λ of decay):

    >>> import numpy as np
    >>> W, X = np.ones((1, 1)), np.ones((1, 1))                  # W (d, p) = (1, 1), X (d, n) = (1, 1)
    >>> round(expected_loss(W, W, X, sigma=0.1), 12), round(expected_loss(W, W, X, sigma=0.1, lam=0.5), 12)
    (0.01, 1.01)
    """
    return float(_exact(*_checked(W1, W2, X, sigma, lam), need_grad=False, pair_method=pair_method))


def expected_loss_and_grad(W1, W2, X, sigma, lam=0.0, *, pair_method="auto"):
    """Exact loss eq. (6) and its gradients ``(loss, ∂L/∂W1, ∂L/∂W2)``.

    For tied weights ``W1 = W2 = W`` the gradient with respect to ``W`` is ``gW1 + gW2``.
    Where the loss is not differentiable (a zero column of W1, or ``sigma = 0`` with a
    pre-activation exactly zero) the returned value is the one-sided derivative of the
    inactive side, i.e. a valid subgradient choice.

    In the example of `expected_loss` both derivatives are ``2E[σε(1 + σε)] = 2σ² = 0.02``
    (the ReLU is on with probability 1 − 8e-24):

    >>> import numpy as np
    >>> W, X = np.ones((1, 1)), np.ones((1, 1))
    >>> loss, gW1, gW2 = expected_loss_and_grad(W, W, X, sigma=0.1)
    >>> gW1.shape, round(float(gW1[0, 0]), 12), round(float(gW2[0, 0]), 12)
    ((1, 1), 0.02, 0.02)
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

    Without noise it is exact: W = 2, x = 1 gives f(x) = 4, a residual of 3, loss 9 and
    both derivatives 2·3·2 = 12:

    >>> import numpy as np
    >>> loss, gW1, gW2 = monte_carlo_loss_and_grad(2 * np.ones((1, 1)), 2 * np.ones((1, 1)), np.ones((1, 1)), 0.0)
    >>> loss, float(gW1[0, 0]), float(gW2[0, 0])
    (9.0, 12.0, 12.0)
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
