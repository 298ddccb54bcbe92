"""The trust-region Newton stage and `certify` with exact Hessian-vector products: the same
verdicts as with central differences on `test_certify`'s instances, and convergence."""
import numpy as np
import pytest
import scipy.optimize

from numerics.certify import certify
from numerics.data import memorization_set, separable_clusters
from numerics.newton import exact_hessp, newton_polish, smallest_eigenpairs
from numerics.geometry import loss_scale
from numerics.objective import expected_loss, expected_loss_and_grad
from numerics.spectrum import hessian_matrix
from numerics.training import train
from oracles import w_mem

SIGMA, LAM = 0.2, 0.01


@pytest.fixture(scope="module")
def memorization():
    return memorization_set(6, 3, norm=[3.0, 2.5, 2.0], seed=0)


@pytest.fixture(scope="module")
def polished_mem(memorization):
    W = w_mem(memorization, 5, SIGMA, LAM)
    tied = train(memorization, 5, SIGMA, LAM, init=W, tied=True)
    untied = train(memorization, 5, SIGMA, LAM, init=(W, W), tied=False)
    return tied, untied


def _both(W1, W2, X, sigma, lam, **options):
    return (certify(W1, W2, X, sigma, lam, **options),
            certify(W1, W2, X, sigma, lam, hessp=exact_hessp, **options))


def _same(finite, exact):
    """Same verdict; eigenvalues equal within the central differences' documented accuracy
    (≲ 1e-9·λ_max, `numerics.certify`) plus Lanczos' ≈ 1e-8·λ_max (its stopping test)."""
    assert exact.verdict == finite.verdict, (finite.summary(), exact.summary())
    np.testing.assert_allclose(exact.eigenvalues, finite.eigenvalues, rtol=0,
                               atol=3e-8 * max(abs(finite.lambda_max), 1e-300))


@pytest.mark.parametrize("which", ["tied", "untied"])
def test_w_mem_certified_alike(polished_mem, memorization, which):
    fit = polished_mem[0] if which == "tied" else polished_mem[1]
    finite, exact = _both(fit.W1, fit.W2, memorization, SIGMA, LAM)
    _same(finite, exact)
    assert exact.verdict == "strict local minimum"


@pytest.mark.parametrize("tied", [True, False])
def test_dropped_memorising_column_saddle_alike(polished_mem, memorization, tied):
    fit = polished_mem[0] if tied else polished_mem[1]
    W1, W2 = fit.W1.copy(), fit.W2.copy()
    W1[:, 0] = 0.0
    W2[:, 0] = 0.0
    finite, exact = _both(W1, W1 if tied else W2, memorization, SIGMA, LAM)
    _same(finite, exact)
    assert exact.verdict == "saddle"


def test_constructed_smooth_saddle_alike():
    X = 5.0 * np.array([[1.0, -0.2], [-0.2, 1.0], [0.0, 0.0]])
    u = np.array([1.0, 1.0, 0.0]) / np.sqrt(2.0)
    res = scipy.optimize.minimize_scalar(
        lambda c: expected_loss(c * u[:, None], c * u[:, None], X, 0.1, 0.01),
        bounds=(0.1, 2.0), method="bounded", options=dict(xatol=1e-12))
    W = res.x * u[:, None]
    finite, exact = _both(W, W, X, 0.1, 0.01)
    _same(finite, exact)
    assert exact.verdict == "saddle"


@pytest.mark.parametrize("dense_max", [1200, 0])
def test_separable_clusters_alike_dense_and_lanczos(dense_max):
    data = separable_clusters(6, [4, 4, 4], alpha=0.1, beta=None, norm=3.0, seed=0)
    fit = train(data.X, 3, SIGMA, LAM, seed=0, tied=False)
    finite, exact = _both(fit.W1, fit.W2, data.X, SIGMA, LAM, n_eigs=3, dense_max=dense_max)
    _same(finite, exact)
    assert exact.verdict == "strict local minimum"


def test_random_weights_not_critical_alike(memorization):
    W = np.random.default_rng(1).normal(size=(6, 3))
    finite, exact = _both(W, W, memorization, SIGMA, LAM)
    assert finite.verdict == exact.verdict == "not a critical point"


@pytest.mark.parametrize("tied", [True, False])
@pytest.mark.parametrize("method", ["trust-krylov", "trust-ncg"])
def test_newton_polish_reaches_gtol_from_a_rough_point(tied, method):
    """From an early L-BFGS iterate (‖∇L‖/L0 ≈ 1e-3) to ≤ 1e-10, checked outside the solver."""
    data = separable_clusters(8, [5, 5], alpha=0.1, beta=None, norm=3.0, seed=1)
    rough = train(data.X, 4, SIGMA, LAM, seed=2, tied=tied, gtol=1e-3, polish=False)
    out = newton_polish(data.X, rough.W1, rough.W2, SIGMA, LAM, tied=tied, gtol=1e-10, method=method)
    assert out.converged, out.message
    _, g1, g2 = expected_loss_and_grad(out.W1, out.W2, data.X, SIGMA, LAM)
    grad = g1 + g2 if tied else np.concatenate([g1.ravel(), g2.ravel()])
    assert np.linalg.norm(grad) / loss_scale(data.X) <= 1e-10
    assert out.loss <= rough.loss


def test_train_polish_takes_the_given_products(memorization, monkeypatch):
    """``polish=dict(hessp=exact_hessp)`` reaches the trust-region stage: the products SciPy gets
    there equal, column by column, central differences of the exact gradient at the same point
    (accurate to ≲ 1e-9·max|H|, `numerics.geometry.ExactGradient.hvp`; 1e-7 leaves a factor 100)."""
    from numerics import training
    from numerics.geometry import ExactGradient

    seen = {}
    minimize = scipy.optimize.minimize

    def spy(fun, x0, **options):
        if options.get("method") == "trust-krylov":
            seen.update(fun=fun, x0=np.array(x0), hessp=options["hessp"])
        return minimize(fun, x0, **options)

    monkeypatch.setattr(training.scipy.optimize, "minimize", spy)
    fit = train(memorization, 4, SIGMA, LAM, seed=0, tied=False, gtol=1e-30, max_iter=5000,
                lbfgs=dict(restarts=0), polish=dict(max_iter=2, hessp=exact_hessp))
    assert fit.stages[-1] == "trust-krylov" and seen["fun"].hessp is exact_hessp
    fun, x0 = seen["fun"], seen["x0"]
    columns = np.eye(x0.size)
    given = np.column_stack([seen["hessp"](x0, e) for e in columns])
    finite = ExactGradient(fun.X, fun.sigma, fun.lam, fun.packing)
    differences = np.column_stack([finite.hvp(x0, e) for e in columns])
    np.testing.assert_allclose(given, differences, rtol=0, atol=1e-7 * np.abs(differences).max())


def test_product_factories_are_checked(memorization):
    W = w_mem(memorization, 3, SIGMA, LAM)
    with pytest.raises(TypeError, match="hessp"):
        certify(W, W, memorization, SIGMA, LAM, hessp="exact")
    with pytest.raises(TypeError, match="hessp"):
        train(memorization, 3, SIGMA, LAM, polish=dict(hessp=3))


def test_split_columns_fall_back_to_central_differences(memorization):
    """Cor. 3.2's split columns (parallel, sharing samples) have no closed-form product; the
    fallback matches `numerics.spectrum.hessian_matrix` columns (both central differences, same step)."""
    W = w_mem(memorization, 4, SIGMA, LAM)
    W[:, 3] = 0.5 * W[:, 0]
    W[:, 0] *= 0.5
    product = exact_hessp(W, W, memorization, SIGMA, LAM, True)
    assert product.exact is False
    H = hessian_matrix(W, W, memorization, SIGMA, LAM, tied=True)
    e = np.zeros(W.size)
    e[5] = 1.0
    np.testing.assert_allclose(product(e.reshape(W.shape)).ravel(), H[:, 5], rtol=0,
                               atol=1e-6 * np.abs(H).max())


def test_smallest_eigenpairs_are_eigenpairs(memorization):
    """Residual ‖Hv − λv‖ of the returned pairs, with H applied by an independent route
    (`numerics.spectrum.hessian_matrix`, central differences accurate to ≲ 1e-9·λ_max)."""
    rng = np.random.default_rng(0)
    W1, W2 = rng.normal(size=(6, 2)), rng.normal(size=(6, 2))
    values, modes = smallest_eigenpairs(W1, W2, memorization, SIGMA, LAM, k=2, reduce=False)
    H = hessian_matrix(W1, W2, memorization, SIGMA, LAM, tied=False)
    reference = np.linalg.eigvalsh(H)
    np.testing.assert_allclose(values, reference[:2], rtol=0, atol=1e-6 * np.abs(reference).max())
    for value, (D1, D2) in zip(values, modes):
        v = np.concatenate([D1.ravel(), D2.ravel()])
        assert np.linalg.norm(H @ v - value * v) <= 1e-6 * np.abs(reference).max()
