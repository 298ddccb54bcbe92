"""Exact Hessian-vector products of eq. (6) against finite differences of the exact gradient,
a dense finite-difference Hessian, symmetry, and the Taylor-remainder slope test."""
import numpy as np
import pytest
from hypothesis import assume, given, strategies as st

from numerics.spectrum import hessian_matrix
from numerics.diagnostics import taylor_remainder_slope
from numerics.gaussian import delta_pair_moments, norm_cdf, norm_pdf, pair_moments
from numerics.hessian import HessianVectorProduct, expected_hessian_vector_product
from numerics.objective import DETERMINISTIC_Z, expected_loss_and_grad

EPS = np.finfo(float).eps


@st.composite
def smooth_instances(draw):
    """Small (W1, W2, X, σ, λ, tied) away from the kinks of the loss: no zero or parallel
    columns, and every pre-activation either far from the fast path's switch |z| = 8.5 or
    deterministic (σ = 0 away from z = 0), so that central differences see a smooth function."""
    d = draw(st.integers(1, 4))
    p = draw(st.integers(1, 4))
    n = draw(st.integers(1, 5))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    X = rng.normal(size=(d, n)) * draw(st.sampled_from([0.3, 1.0, 3.0]))
    W1 = rng.normal(size=(d, p))
    tied = draw(st.booleans())
    W2 = W1.copy() if tied else rng.normal(size=(d, p))
    sigma = draw(st.sampled_from([0.0, 0.05, 0.3, 1.0, 3.0]))
    lam = draw(st.sampled_from([0.0, 0.1]))
    norms = np.linalg.norm(W1, axis=0)
    cosines = (W1.T @ W1) / np.outer(norms, norms)
    assume(np.all(np.abs(cosines - np.eye(p)) < 0.99))
    means = W1.T @ X
    if sigma == 0.0:
        assume(np.all(np.abs(means) > 1e-2 * np.abs(W1).sum()))
    else:
        z = np.abs(means) / (sigma * norms[:, None])
        assume(np.all(np.abs(z - DETERMINISTIC_Z) > 0.5))
    return W1, W2, X, sigma, lam, tied


def _gradient(W1, W2, X, sigma, lam, tied):
    _, g1, g2 = expected_loss_and_grad(W1, W2, X, sigma, lam)
    return g1 + g2 if tied else np.stack([g1, g2])


def _product(W1, W2, X, sigma, lam, tied, V1, V2):
    if tied:
        return HessianVectorProduct(W1, W1, X, sigma, lam, tied=True)(V1)
    return np.stack(expected_hessian_vector_product(W1, W2, X, sigma, lam, V1, V2))


def _central_difference(W1, W2, X, sigma, lam, tied, V1, V2, h):
    if tied:
        plus = _gradient(W1 + h * V1, W1 + h * V1, X, sigma, lam, True)
        minus = _gradient(W1 - h * V1, W1 - h * V1, X, sigma, lam, True)
    else:
        plus = _gradient(W1 + h * V1, W2 + h * V2, X, sigma, lam, False)
        minus = _gradient(W1 - h * V1, W2 - h * V2, X, sigma, lam, False)
    return (plus - minus) / (2.0 * h)


@given(smooth_instances(), st.integers(0, 2**32 - 1))
def test_product_matches_central_differences_of_the_exact_gradient(instance, seed):
    """Error budget of the central difference D(h) = Hv + c h² + O(h⁴) + rounding:
    the truncation c h² is estimated by Richardson, D(h) − D(h/2) = ¾ c h², and counted
    twice (4/3 → 8/3); rounding is (two gradient errors)/(2h) with a gradient error of
    1e-13 of the gradient's scale (the agreement of the two pair algorithms, Mehler/Genz)."""
    W1, W2, X, sigma, lam, tied = instance
    rng = np.random.default_rng(seed)
    V1 = rng.normal(size=W1.shape)
    V2 = V1 if tied else rng.normal(size=W2.shape)
    exact = _product(W1, W2, X, sigma, lam, tied, V1, V2)
    h = 1e-4 * max(1.0, float(np.linalg.norm(W1)))
    coarse = _central_difference(W1, W2, X, sigma, lam, tied, V1, V2, h)
    fine = _central_difference(W1, W2, X, sigma, lam, tied, V1, V2, h / 2)
    scale = max(float(np.abs(_gradient(W1, W2, X, sigma, lam, tied)).max()),
                float(np.abs(exact).max()), 1.0)
    budget = (8.0 / 3.0) * np.abs(coarse - fine) + 2.0 * 1e-13 * scale / (h / 2)
    assert np.all(np.abs(exact - fine) <= budget + 1e-12 * np.abs(exact).max())


@given(smooth_instances(), st.integers(0, 2**32 - 1))
def test_products_are_symmetric(instance, seed):
    """uᵀHv = vᵀHu: the closed form has no symmetry built in (the W1 and W2 blocks, the
    pair loops and the Price terms are separate sums). Rounding: each product sums O(n p²)
    terms of size ≤ max|H|·‖v‖; 1e-11 relative to ‖u‖‖v‖ max|H| leaves a factor ~100."""
    W1, W2, X, sigma, lam, tied = instance
    rng = np.random.default_rng(seed)
    shape = (W1.shape if tied else (2,) + W1.shape)
    u, v = rng.normal(size=shape), rng.normal(size=shape)
    Hu = _product(W1, W2, X, sigma, lam, tied, *((u, u) if tied else (u[0], u[1])))
    Hv = _product(W1, W2, X, sigma, lam, tied, *((v, v) if tied else (v[0], v[1])))
    size = max(float(np.abs(Hu).max()), float(np.abs(Hv).max()), 1e-300)
    assert abs(np.sum(u * Hv) - np.sum(v * Hu)) <= 1e-11 * size * np.linalg.norm(u) * np.linalg.norm(v)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("tied", [True, False])
def test_dense_hessian_matches_the_finite_difference_hessian(seed, tied):
    """The exact Hessian built column by column against `numerics.spectrum.hessian_matrix` (central
    differences of the exact gradient, step 1e-5·max(‖θ‖, 1)): that oracle's error is
    O(h²‖∇⁴L‖) + O(ε‖∇L‖/h) ≲ 1e-9 of max|H| here, so 1e-6·max|H| has a wide margin."""
    rng = np.random.default_rng(seed)
    d, p, n = 3, 2, 4
    X = rng.normal(size=(d, n)) * 1.5
    W1 = rng.normal(size=(d, p))
    W2 = W1 if tied else rng.normal(size=(d, p))
    sigma, lam = 0.4, 0.05
    oracle = hessian_matrix(W1, W2, X, sigma, lam, tied=tied)
    hvp = HessianVectorProduct(W1, W2, X, sigma, lam, tied=tied)
    columns = []
    for e in np.eye(oracle.shape[0]):
        if tied:
            columns.append(hvp(e.reshape(d, p)).ravel())
        else:
            H1, H2 = hvp(e[:d * p].reshape(d, p), e[d * p:].reshape(d, p))
            columns.append(np.concatenate([H1.ravel(), H2.ravel()]))
    exact = np.column_stack(columns)
    assert np.abs(exact - oracle).max() <= 1e-6 * np.abs(oracle).max()
    # Symmetric to rounding (a few ε times the largest entry, times the n·p² terms summed).
    assert np.abs(exact - exact.T).max() <= 1e-12 * np.abs(exact).max()


@pytest.mark.parametrize("seed", range(3))
def test_taylor_remainder_slope_of_the_gradient_along_the_product(seed):
    """f(θ) = ⟨u, ∇L(θ)⟩ has gradient Hu; a wrong product leaves an O(t) remainder."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(5, 6))
    W1, W2 = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    sigma, lam = 0.5, 0.02
    u = rng.normal(size=(2, 5, 3))

    def f(theta):
        _, g1, g2 = expected_loss_and_grad(theta[0], theta[1], X, sigma, lam)
        return float(np.sum(u[0] * g1) + np.sum(u[1] * g2))

    Hu = np.stack(expected_hessian_vector_product(W1, W2, X, sigma, lam, u[0], u[1]))
    result = taylor_remainder_slope(f, np.stack([W1, W2]), Hu, rng.normal(size=(2, 5, 3)))
    assert result.slope == pytest.approx(2.0, abs=0.1), result


def test_zero_noise_product_is_the_hessian_of_the_plain_network():
    """σ = 0 away from kinks: L is the plain network loss, whose Hessian along (V1, V2) is
    2/n Σ_i [(V2 h + W2 ḣ) hᵀ + r ḣᵀ] and 2/n Σ_i x (D(V2ᵀr + W2ᵀ(V2 h + W2 ḣ)))ᵀ (chain rule)."""
    rng = np.random.default_rng(5)
    X, W1, W2 = rng.normal(size=(4, 7)), rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    V1, V2 = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    H1, H2 = expected_hessian_vector_product(W1, W2, X, 0.0, 0.0, V1, V2)
    pre = W1.T @ X
    D = (pre > 0).astype(float)
    h = np.maximum(pre, 0.0)
    h_dot = D * (V1.T @ X)
    r = W2 @ h - X
    r_dot = V2 @ h + W2 @ h_dot
    n = X.shape[1]
    np.testing.assert_allclose(H2, 2 * (r_dot @ h.T + r @ h_dot.T) / n, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(H1, 2 * X @ (D * (V2.T @ r + W2.T @ r_dot)).T / n, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("rho", [-0.8, -0.3, 0.0, 0.4, 0.9])
@pytest.mark.parametrize("z_j, z_k", [(0.3, -0.5), (-1.2, 0.7), (2.0, 1.5)])
def test_dirac_pair_moments_are_mean_derivatives_of_the_pair_moments(rho, z_j, z_k):
    """E[f⁽ᵃ⁾(a_j) f⁽ᵇ⁾(a_k)] = ∂ᵃ/∂m_jᵃ ∂ᵇ/∂m_kᵇ E[a_j+ a_k+] (Stein's lemma): each Dirac
    moment against a central difference in the means of a lower one computed independently
    (Genz's Φ2 in `pair_moments`). Step 1e-4: truncation O(h²) ≈ 1e-8, rounding 1e-16/h²."""
    s_j, s_k, h = 0.7, 1.3, 1e-4

    def lower(m_j, m_k):
        zj, zk = m_j / s_j, m_k / s_k
        cross, both, j_on_k, k_on_j, k_cond_j, j_cond_k = pair_moments(
            m_j, s_j, zj, norm_cdf(zj), norm_pdf(zj), m_k, s_k, zk, norm_cdf(zk), norm_pdf(zk), rho)
        delta_j_relu_k = norm_pdf(zj) / s_j * k_cond_j
        return np.array([both, delta_j_relu_k])

    def upper(m_j, m_k):
        zj, zk = m_j / s_j, m_k / s_k
        return np.array(delta_pair_moments(s_j, zj, norm_pdf(zj), s_k, zk, norm_pdf(zk), rho))

    m_j, m_k = z_j * s_j, z_k * s_k
    d_j = (lower(m_j + h, m_k) - lower(m_j - h, m_k)) / (2 * h)
    d_k = (lower(m_j, m_k + h) - lower(m_j, m_k - h)) / (2 * h)
    values = upper(m_j, m_k)
    (delta_j_on_k, on_j_delta_k, delta_delta, d1_j_relu_k, _, d1_j_on_k, _, d2_j_relu_k, _) = values
    assert delta_j_on_k == pytest.approx(d_j[0], abs=1e-7)        # ∂P/∂m_j = E[δ_j 1_k]
    assert on_j_delta_k == pytest.approx(d_k[0], abs=1e-7)        # ∂P/∂m_k = E[1_j δ_k]
    assert d1_j_relu_k == pytest.approx(d_j[1], abs=1e-7)         # ∂E[δ_j a_k+]/∂m_j
    d_upper = (upper(m_j + h, m_k) - upper(m_j - h, m_k)) / (2 * h)
    d_upper_k = (upper(m_j, m_k + h) - upper(m_j, m_k - h)) / (2 * h)
    assert delta_delta == pytest.approx(d_upper_k[0], abs=1e-7)   # ∂E[δ_j 1_k]/∂m_k
    assert d1_j_on_k == pytest.approx(d_upper[0], abs=1e-7)       # ∂E[δ_j 1_k]/∂m_j
    assert d2_j_relu_k == pytest.approx(d_upper[3], abs=1e-7)     # ∂E[δ'_j a_k+]/∂m_j


def test_parallel_columns_and_bad_directions_raise():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3, 5))
    W = rng.normal(size=(3, 2))
    W[:, 1] = 2.0 * W[:, 0]
    with pytest.raises(ValueError, match="parallel columns"):
        HessianVectorProduct(W, W, X, 0.5, 0.0)
    hvp = HessianVectorProduct(rng.normal(size=(3, 2)), rng.normal(size=(3, 2)), X, 0.5, 0.0)
    with pytest.raises(ValueError, match="V1"):
        hvp(np.ones((2, 2)), np.ones((3, 2)))
    with pytest.raises(ValueError, match="V2"):
        hvp(np.ones((3, 2)), np.ones((3, 3)))
    with pytest.raises(ValueError, match="tied"):
        HessianVectorProduct(W, W + 1.0, X, 0.5, 0.0, tied=True)


@given(st.integers(0, 2**32 - 1), st.booleans())
def test_tabled_pair_moments_give_the_same_products(seed, tied):
    """The table of undecided-pair moments stores the numbers a product would otherwise
    recompute, in the same order: the products agree to the last bit."""
    rng = np.random.default_rng(seed)
    d, p, n = 4, 5, 30
    X = rng.normal(size=(d, n))
    W1 = rng.normal(size=(d, p))
    W2 = W1 if tied else rng.normal(size=(d, p))
    V1, V2 = rng.normal(size=(d, p)), rng.normal(size=(d, p))
    tabled = HessianVectorProduct(W1, W2, X, 1.0, 0.1, tied=tied)
    recomputed = HessianVectorProduct(W1, W2, X, 1.0, 0.1, tied=tied, pair_table_bytes=0)
    assert tabled._pair_table.shape == (tabled._bivariate.size, 15) and tabled._bivariate.size > 0
    assert recomputed._pair_table.shape == (0, 15)
    if tied:
        assert np.array_equal(tabled(V1), recomputed(V1))
    else:
        assert all(np.array_equal(a, b) for a, b in zip(tabled(V1, V2), recomputed(V1, V2)))


def test_pair_table_budget_must_be_a_nonnegative_number():
    rng = np.random.default_rng(0)
    X, W = rng.normal(size=(3, 5)), rng.normal(size=(3, 2))
    with pytest.raises(ValueError, match="pair_table_bytes"):
        HessianVectorProduct(W, W, X, 0.5, 0.0, pair_table_bytes=-1)
