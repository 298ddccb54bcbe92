"""A straightforward vectorised SciPy version of the exact loss and gradient — the baseline.

The same closed forms as `numerics.objective` (docs/theory.md §2), written the way one would
first write them in NumPy: every neuron pair of every sample through the general formula,
with Φ2 from Owen's T function (``scipy.special.owens_t``, Owen 1956), no fast paths,
samples processed in chunks so that the (chunk, p, p) arrays fit in memory. Only for
``sigma > 0`` and weights without zero or parallel columns (the benchmark's instances).
"""
import numpy as np
from scipy.special import ndtr, owens_t


def _bivariate_cdf(h, k, rho):
    """Φ2(h, k; ρ) by Owen's formula Φ2 = ½[Φ(h) + Φ(k)] − T(h, a_h) − T(k, a_k) − β."""
    q = np.sqrt((1 - rho) * (1 + rho))
    with np.errstate(divide="ignore", invalid="ignore"):
        a_h = (k - rho * h) / (h * q)
        a_k = (h - rho * k) / (k * q)
    beta = np.where((h * k > 0) | ((h * k == 0) & (h + k >= 0)), 0.0, 0.5)
    return 0.5 * (ndtr(h) + ndtr(k)) - owens_t(h, a_h) - owens_t(k, a_k) - beta


def loss_and_grad(W1, W2, X, sigma, lam=0.0, chunk=40):
    d, n = X.shape
    p = W1.shape[1]
    norms = np.linalg.norm(W1, axis=0)
    s = sigma * norms
    rho = np.clip((W1.T @ W1) / np.outer(norms, norms), -1.0, 1.0)
    q = np.sqrt((1 - rho) * (1 + rho))
    gram = W2.T @ W2
    off = ~np.eye(p, dtype=bool)
    second = np.zeros((p, p))
    both_sum = np.zeros((p, p))
    mean_h = np.zeros((p, n))
    grad_m = np.zeros((p, n))
    cov_diag = np.zeros(p)
    targets = W2.T @ X
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        m = (W1.T @ X[:, start:stop]).T  # (c, p)
        b = targets[:, start:stop].T
        z = m / s
        cdf, pdf = ndtr(z), np.exp(-z**2 / 2) / np.sqrt(2 * np.pi)
        mu = m * cdf + s * pdf
        zj, zk = z[:, :, None], z[:, None, :]
        mj, mk = m[:, :, None], m[:, None, :]
        sj, sk = s[None, :, None], s[None, None, :]
        pj, pk = pdf[:, :, None], pdf[:, None, :]
        with np.errstate(divide="ignore", invalid="ignore"):
            a = (zk - rho * zj) / q
            bb = (zj - rho * zk) / q
        both = np.where(off, _bivariate_cdf(zj, zk, rho), cdf[:, :, None])
        cdf_a, cdf_b = ndtr(a), ndtr(bb)
        pdf_a = np.exp(-a**2 / 2) / np.sqrt(2 * np.pi)
        cross = ((mj * mk + rho * sj * sk) * both + mj * sk * pk * cdf_b + mk * sj * pj * cdf_a
                 + sj * sk * q * pj * pdf_a)
        diag = (m**2 + s**2) * cdf + m * s * pdf
        cross = np.where(off, cross, 0.0) + np.einsum("ij,jk->ijk", diag, np.eye(p))
        j_on_k = np.where(off, mk * both + sk * (rho * pj * cdf_a + pk * cdf_b), mu[:, :, None] * np.eye(p))
        delta = np.where(off, pj / sj * sk * ((zk - rho * zj) * cdf_a + q * pdf_a), 0.0)
        second += cross.sum(axis=0)
        both_sum += both.sum(axis=0) * off + np.diag(cdf.sum(axis=0))
        mean_h[:, start:stop] = mu.T
        grad_m[:, start:stop] = (2 * (np.einsum("ijk,jk->ij", j_on_k, gram) - b * cdf)).T
        cov_diag += np.einsum("ijk,jk->j", delta, gram) - np.sum(b * pdf / s, axis=0)
    loss = (np.sum(gram * second) - 2 * np.sum(targets * mean_h) + np.sum(X * X)) / n
    loss += lam * (np.sum(W1**2) + np.sum(W2**2))
    cov_grad = gram * both_sum + np.diag(cov_diag)
    gW1 = (X @ grad_m.T + 2 * sigma**2 * W1 @ cov_grad) / n + 2 * lam * W1
    gW2 = 2 * (W2 @ second - X @ mean_h.T) / n + 2 * lam * W2
    return loss, gW1, gW2
