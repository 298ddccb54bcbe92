"""theory.predict: eq. (8) blocks, O_k, assumption errors, and the exact gradient at the prediction.

The gradient test is the numeric face of Theorem 3.1: at the predicted W1 = W2 = W the only
deviation from the block-wise linear problem (whose exact minimiser W is) comes from ReLU
masks switching under noise, with probability Φ(−|w_jᵀx_i|/(σ‖w_j‖)). We define the margin

    γ = min over nonzero columns j and samples i of |w_jᵀx_i| / ‖w_j‖   (switching_margin),

so the residual gradient should scale like e^{−γ²/(2σ²)}: log‖∇L‖ against 1/σ² has slope
≈ −γ²/2.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st

from numerics.compare import cluster_maps
from tests.oracles import eigenvector_sine_bound
from theory.errors import AssumptionError
from theory.predict import (block_weights, expected_representation, generalization_weights, hybrid_weights,
                            memorization_weights, partition_weights, predict,
                            predicted_loss, switching_margin, uniform_first_orthogonal)


@pytest.mark.parametrize("p_k", [1, 2, 3, 5, 8])
def test_uniform_first_orthogonal(p_k):
    O = uniform_first_orthogonal(p_k)
    # a Householder reflection in float64: orthogonal to ~p_k·ε
    assert np.allclose(O.T @ O, np.eye(p_k), atol=1e-14)
    assert np.allclose(O[:, 0], 1 / np.sqrt(p_k), atol=1e-15)


def separable_instance(rng, K, extra, sizes, alpha, beta_fraction):
    """K clusters with pairwise-cosine-β means (β ∈ [−1/(K−1), −0.1]) and spread α.

    Means are equiangular (Gram (1 − β)I + β11ᵀ); deviations are centred and live in
    ``extra`` coordinates orthogonal to every mean (shared by all clusters), scaled so the
    largest ‖x − x̄_k‖/‖x̄_k‖ is α; a random rotation hides the coordinates.
    """
    simplex = -1.0 / (K - 1)
    beta = simplex + beta_fraction * (-0.1 - simplex)
    eigenvalues, vectors = np.linalg.eigh((1 - beta) * np.eye(K) + beta)
    keep = eigenvalues > 1e-12
    coords = (vectors[:, keep] * np.sqrt(eigenvalues[keep])).T
    r = coords.shape[0]
    d = r + extra
    norms = rng.uniform(1.5, 3.0, size=K)
    rotation, _ = np.linalg.qr(rng.normal(size=(d, d)))
    clusters = []
    for k, size in enumerate(sizes):
        deviations = np.zeros((d, size))
        deviations[r:] = rng.normal(size=(extra, size))
        deviations -= deviations.mean(axis=1, keepdims=True)
        largest = np.linalg.norm(deviations, axis=0).max()
        if largest > 0:
            deviations *= alpha * norms[k] / largest
        mean = np.zeros((d, 1))
        mean[:r, 0] = coords[:, k] * norms[k]
        clusters.append(rotation @ (mean + deviations))
    return clusters


@st.composite
def separable_problems(draw):
    K = draw(st.integers(2, 4))
    extra = draw(st.integers(1, 3))
    sizes = draw(st.lists(st.integers(1, 4), min_size=K, max_size=K))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    clusters = separable_instance(rng, K, extra, sizes, draw(st.floats(0.02, 0.2)), draw(st.floats(0.0, 1.0)))
    p_per_cluster = [draw(st.integers(1, min(size, extra + 1))) for size in sizes]
    n_total = sum(sizes)
    smallest = min(np.linalg.svd(X_k, compute_uv=False)[q - 1] ** 2 for X_k, q in zip(clusters, p_per_cluster))
    lam = draw(st.floats(0.0, 0.5)) * smallest / n_total
    return clusters, p_per_cluster, lam, rng


RATIOS = (3.0, 4.0, 5.0)   # γ/σ: below ~3 the residual is not yet small, above ~6 it hits float64 rounding


def residual_sweep(clusters, p_per_cluster, lam, rng, ratios=RATIOS):
    """Exact tied gradient at the prediction and at a random point 1% away, at the σ where γ(σ)/σ = t."""
    from numerics.objective import expected_loss_and_grad
    X = np.concatenate(clusters, axis=1)
    gamma0 = switching_margin(generalization_weights(clusters, p_per_cluster, 0.0, lam), X)
    rows = []
    for t in ratios:
        # σ with γ(σ)/σ = t: the margin moves with σ (the block's scales, hence its columns'
        # directions, depend on σ), and far from γ0 it can put e^{−γ²/2σ²} under float64 rounding
        sigma = gamma0 / t
        for _ in range(50):
            update = switching_margin(generalization_weights(clusters, p_per_cluster, sigma, lam), X) / t
            converged = abs(update - sigma) <= 1e-9 * sigma
            sigma = update
            if converged:
                break
        W = generalization_weights(clusters, p_per_cluster, sigma, lam)
        loss, g1, g2 = expected_loss_and_grad(W, W, X, sigma, lam)
        Z = rng.normal(size=W.shape)
        W_near = W + 1e-2 * np.linalg.norm(W) * Z / np.linalg.norm(Z)
        _, h1, h2 = expected_loss_and_grad(W_near, W_near, X, sigma, lam)
        rows.append(dict(t=t, sigma=sigma, gamma=switching_margin(W, X), grad=np.linalg.norm(g1 + g2),
                         grad_near=np.linalg.norm(h1 + h2), loss=loss, W=W))
    inverse_var = np.array([1 / row["sigma"] ** 2 for row in rows])
    slope = np.polyfit(inverse_var, np.log([row["grad"] for row in rows]), 1)[0]
    return rows, slope


@settings(max_examples=12, deadline=None)
@given(separable_problems())
def test_exact_gradient_is_exponentially_small_at_the_prediction(problem):
    clusters, p_per_cluster, lam, rng = problem
    try:
        rows, slope = residual_sweep(clusters, p_per_cluster, lam, rng)
    except AssumptionError:      # rare: a tilted block column reaches another cluster (the hypothesis strategy rejects those instances)
        assume(False)
    X = np.concatenate(clusters, axis=1)
    labels = np.repeat(np.arange(len(clusters)), [X_k.shape[1] for X_k in clusters])
    for row in rows:
        # orders of magnitude below a nearby random point; tolerance shaped like e^{−t²/2}, t = γ0/σ
        assert row["grad"] <= 10 * np.exp(-row["t"] ** 2 / 2) * row["grad_near"]
        # the loss is the block-loss sum up to the same switching residual (Theorem D.2), plus
        # rounding: both sides sum n terms of size ≤ max‖x_i‖², so they agree to ε·Σ‖x_i‖²
        bound = row["W"].shape[1] * np.max(np.sum(X ** 2, 0)) * np.exp(-row["gamma"] ** 2 / (2 * row["sigma"] ** 2))
        bound += np.finfo(float).eps * np.sum(X ** 2)
        assert abs(row["loss"] - predicted_loss(X, labels, p_per_cluster, row["sigma"], lam)) <= bound
    grads = [row["grad"] for row in rows]
    assert all(a > b for a, b in zip(grads, grads[1:]))          # shrinks as σ/γ shrinks
    predicted_slope = -np.mean([row["gamma"] ** 2 for row in rows]) / 2
    # slope of log‖∇L‖ vs 1/σ²: −γ²/2 up to the polynomial prefactor and γ's drift with σ
    assert slope < 0
    assert 0.4 <= slope / predicted_slope <= 2.0


def test_report_fitted_slopes(capsys):
    """Three fixed instances, five σ each: fitted slope vs −γ²/2 (printed with -s)."""
    lines = []
    for seed, (K, extra, sizes, p_per_cluster) in enumerate([(2, 2, [3, 2], [2, 1]), (3, 2, [3, 3, 2], [2, 2, 1]),
                                                            (4, 3, [4, 3, 2, 1], [3, 2, 1, 1])]):
        rng = np.random.default_rng(seed)
        clusters = separable_instance(rng, K, extra, sizes, 0.1, 0.5)
        rows, slope = residual_sweep(clusters, p_per_cluster, 1e-4, rng, ratios=(3.0, 3.5, 4.0, 4.5, 5.0))
        gamma_sq = np.mean([row["gamma"] ** 2 for row in rows])
        sigmas = ", ".join(format(row["sigma"], ".3f") for row in rows)
        grads = ", ".join(format(row["grad"], ".1e") for row in rows)
        near = np.mean([row["grad_near"] for row in rows])
        lines.append(f"K={K} p={p_per_cluster}: sigma={sigmas}; |grad|={grads}; random-point |grad|~{near:.1e}; "
                     f"slope={slope:.4f}, -gamma^2/2={-gamma_sq / 2:.4f}, c=-slope/gamma^2={-slope / gamma_sq:.3f}")
        assert 0.5 <= slope / (-gamma_sq / 2) <= 1.5
    with capsys.disabled():
        print("\n" + "\n".join(lines))


def test_balanced_representation_of_a_generalised_cluster():
    """At a cluster mean the block's representation is uniform over its p_k neurons (balanced)."""
    rng = np.random.default_rng(5)
    clusters = separable_instance(rng, 3, 3, [4, 4, 1], 0.1, 0.3)
    W = generalization_weights(clusters, [3, 2, 1], 0.05, 0.0)
    means = np.stack([X_k.mean(axis=1) for X_k in clusters], axis=1)
    H = expected_representation(W, means, 0.0)
    blocks = [slice(0, 3), slice(3, 5), slice(5, 6)]
    for k, block in enumerate(blocks):
        entries = H[block, k]
        # equal in exact arithmetic (uniform first column of O_k); rounding of eq. (8) ≈ 1e-15
        assert np.allclose(entries, entries[0], rtol=1e-10) and entries[0] > 0
        assert np.all(np.delete(H[:, k], np.arange(W.shape[1])[block]) == 0)
    # Std(h) = c√(p − p_k)/p: the memorised cluster (p_k = 1) is spikier than the balanced ones
    stds = H.std(axis=0) / np.linalg.norm(H, axis=0)
    assert stds[2] > stds[1] > stds[0]
    X = np.concatenate(clusters, axis=1)
    labels = np.repeat(np.arange(len(clusters)), [X_k.shape[1] for X_k in clusters])
    maps = cluster_maps(W, W, X, labels, rule="all-on")
    for k in range(len(clusters)):          # the same product of the same columns: identical
        assert np.allclose(maps[k], W[:, blocks[k]] @ W[:, blocks[k]].T, atol=1e-12)


def test_predict_bundle_is_consistent():
    rng = np.random.default_rng(6)
    clusters = separable_instance(rng, 3, 2, [3, 3, 1], 0.1, 0.5)
    X = np.concatenate(clusters, axis=1)
    labels = np.repeat(np.arange(3), [3, 3, 1])
    result = predict(X, labels, p=6, sigma=0.1, lam=1e-3)
    assert result.W.shape == (X.shape[0], 6)
    assert sum(result.p_per_cluster) <= 6
    # the same closed form through two entry points (pytest's default rel=1e-6 is ample)
    assert result.loss == pytest.approx(predicted_loss(X, labels, result.p_per_cluster, 0.1, 1e-3))
    assert result.beta < 0 and result.margin > 0
    for k, q in zip(result.labels, result.p_per_cluster):
        start = sum(result.p_per_cluster[:k])
        block = result.W[:, start:start + q]
        # U diag(a) Uᵀ vs W_kW_kᵀ (O_k cancels): rounding of an SVD, ≈ 1e-15
        assert np.allclose(result.linear_maps[k], block @ block.T, atol=1e-12)


def test_block_assumption_errors():
    rng = np.random.default_rng(7)
    X_k = np.array([[3.0], [0.0]]) + 0.1 * rng.normal(size=(2, 4))
    eigenvalues = np.linalg.svd(X_k, compute_uv=False) ** 2
    with pytest.raises(AssumptionError, match=r"nλ < λ_min.*measured nλ = 10, required < "):
        block_weights(X_k, 2, 10, 0.1, 1.0)
    with pytest.raises(AssumptionError, match=r"p_k <= rank.*required p_k <= 2"):
        block_weights(X_k, 3, 4, 0.1, 0.0)
    wide = np.array([[1.0, 1.0, 1.0], [2.0, -2.0, 0.0]])        # spread ≫ mean: columns flip sign
    with pytest.raises(AssumptionError, match=r"stable masks.*required > 0"):
        block_weights(wide, 2, 3, 0.01, 0.0)
    with pytest.raises(ValueError, match="X_k must"):
        block_weights(np.ones(3), 1, 3, 0.1, 0.0)
    assert eigenvalues[1] > 0


def test_generalization_assumption_errors():
    a = np.array([[2.0, 2.1], [0.1, -0.1]])
    with pytest.raises(AssumptionError, match=r"β < 0.*measured 0\.98.*required < 0"):
        generalization_weights([a, np.array([[2.0, 2.0], [0.5, 0.3]])], [1, 1], 0.1, 0.0)
    # β < 0 but the 2-column block of the first cluster tilts 45° into its spread direction,
    # which carries the second cluster's mean: that column fires on the other cluster
    first = np.array([[2.0, 2.0], [1.0, -1.0]])
    second = np.array([[-0.5], [3.0]])
    with pytest.raises(AssumptionError, match=r"block columns off on the other clusters.*required < 0"):
        generalization_weights([first, second], [2, 1], 0.01, 0.0)
    with pytest.raises(ValueError, match="p_per_cluster must have one entry per cluster"):
        generalization_weights([a], [1, 1], 0.1, 0.0)


CONSTRUCTORS = [memorization_weights, block_weights, generalization_weights, partition_weights, hybrid_weights]


@pytest.mark.parametrize("function", CONSTRUCTORS + [predict], ids=lambda f: f.__name__)
def test_lam_is_required_and_weights_are_tied(function):
    """λ has no silent default anywhere (``numerics.training.train`` neither: tests/numerics/test_training.py),
    and every constructor says that its W is used as W1 = W2 = W."""
    import inspect

    parameters = inspect.signature(function).parameters
    assert parameters["lam"].default is inspect.Parameter.empty
    assert "W1 = W2" in function.__doc__
    others = {name: None for name, p in parameters.items() if p.default is p.empty and name != "lam"}
    with pytest.raises(TypeError, match="missing 1 required positional argument: 'lam'"):
        function(**others)


@pytest.mark.parametrize("lam, svd_calls", [(1e-6, 1), (0.0, 3)])
def test_predict_decomposes_each_cluster_once_and_agrees_with_the_svd(monkeypatch, lam, svd_calls):
    """Clusters large enough for the Gram route (theory.allocation._gram): n_k = 100 > d = 80,
    n_k = 70 < d, and 66 copies of one sample (rank one). predict agrees with the SVD everywhere
    (``_GRAM_MIN`` raised past every cluster) within the Gram route's error bound.

    Rank-4 clusters (rank-3 covariances): at λ = 0 their zero eigenvalues are unresolved by the
    Gram (``alloc._resolution``) and would be gains, so each spectrum comes from the SVD's values
    (3 calls); at nλ above the bound only the rank-one cluster's does (its Λ_2 decides
    ``rank_one``). The top eigenvectors come from the Gram in both, with no SVD.
    """
    import theory.allocation as alloc
    from numerics.data import gaussian_mixture
    mix = gaussian_mixture(d=80, K=3, rank=3, n=236, weights=[100 / 236, 70 / 236, 66 / 236], mean_norm=3.0,
                           spread=0.1, seed=0)
    X, labels = mix.X.copy(), mix.labels
    X[:, labels == 2] = mix.means[:, [2]]
    calls = []
    svd = np.linalg.svd

    def counted(*args, **kwargs):
        calls.append(kwargs.get("compute_uv", True))
        return svd(*args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(np.linalg, "svd", counted)
        fast = predict(X, labels, p=8, sigma=0.1, lam=lam)
    assert calls == [False] * svd_calls                     # spectra only: every U from a Gram
    monkeypatch.setattr(alloc, "_GRAM_MIN", 10 ** 9)
    exact = predict(X, labels, p=8, sigma=0.1, lam=lam)
    assert fast.p_per_cluster == exact.p_per_cluster == (4, 3, 1)
    assert fast.regimes == exact.regimes == ("generalised", "generalised", "memorised")
    assert fast.beta == exact.beta                              # not from a decomposition
    clusters = [X[:, labels == k] for k in range(3)]
    bounds = [alloc._resolution(X_k, float(np.sum(X_k ** 2))) for X_k in clusters]
    # each kept eigenvalue within its bound, and |∂gain/∂Λ| ≤ 2: the loss within (2/n) Σ_k p_k·bound_k
    assert abs(fast.loss - exact.loss) <= 2 * sum(q * b for q, b in zip(fast.p_per_cluster, bounds)) / X.shape[1]
    start = 0
    for k, (X_k, q, bound) in enumerate(zip(clusters, fast.p_per_cluster, bounds)):
        values = np.linalg.svd(X_k, compute_uv=False) ** 2
        # sin∠ of the j-th eigenvector (Davis–Kahan, `eigenvector_sine_bound`), then a_j ≤ 1
        # moves by ≤ bound/Λ_j: the map U diag(a) Uᵀ within Σ_j (2 sin_j + bound/Λ_j)
        sines = [eigenvector_sine_bound(values, j, bound) for j in range(q)]
        tolerance = sum(2 * s + bound / values[j] for j, s in enumerate(sines))
        assert np.linalg.norm(fast.linear_maps[k] - exact.linear_maps[k], 2) <= tolerance
        # W_k = U diag(√a) O_kᵀ: the same columns √a_j u_j up to the signs of u_j, j ≥ 2 (u_1 is
        # oriented along the cluster mean by both; the others carry the eigensolver's arbitrary
        # sign), each within ‖u_j ∓ u'_j‖ ≤ √2 sin_j plus |Δ√a_j| ≤ √|Δa_j| ≤ √(bound/Λ_j)
        O = uniform_first_orthogonal(q)
        ours, theirs = fast.W[:, start:start + q] @ O, exact.W[:, start:start + q] @ O
        assert ours[:, 0] @ theirs[:, 0] > 0
        signs = np.sign(np.sum(ours * theirs, axis=0))
        columns = np.sqrt(2) * np.array(sines) + np.sqrt(bound / values[:q])
        assert np.all(np.linalg.norm(ours * signs - theirs, axis=0) <= columns)
        start += q
    assert not np.any(fast.W[:, start:]) and not np.any(exact.W[:, start:])
