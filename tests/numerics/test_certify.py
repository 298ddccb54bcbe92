"""`certify`: Hessian against an independent oracle, constructed saddles, W_mem a local minimum."""
from __future__ import annotations

import inspect

import numpy as np
import pytest
import scipy.optimize

from numerics.certify import HVP_STEP, MINIMUM_VERDICTS, VERDICTS, below_resolution, certify
from numerics.spectrum import hessian_matrix
from numerics.data import separable_clusters
from numerics.objective import expected_loss
from numerics.symmetry import SymmetryProjector, activation_blocks
from numerics.training import train
from numerics.zero_column import zero_column_bound, zero_column_ratio
from oracles import w_mem, without_first_column

SIGMA, LAM = 0.2, 0.01


# ----------------------------------------------------------------------------- the Hessian


def test_hessian_matches_second_differences_of_the_loss():
    """Oracle: second differences of loss *values* (no gradient code involved).

    Error of the oracle: O(h²·‖∇⁴L‖) + O(ε·L/h²) ≈ 1e-8 relative for h = 1e-4; the
    finite-difference-of-gradient Hessian is ~1e-10 accurate. Tolerance 1e-5·max|H|.
    """
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3, 3)) * 1.5
    W1 = rng.normal(size=(3, 2)) * 0.6
    W2 = rng.normal(size=(3, 2)) * 0.6
    H = hessian_matrix(W1, W2, X, 0.5, 0.03, tied=False)
    theta = np.concatenate([W1.ravel(), W2.ravel()])

    def loss(t):
        return expected_loss(t[:6].reshape(3, 2), t[6:].reshape(3, 2), X, 0.5, 0.03)

    h = 1e-4
    eye = np.eye(theta.size) * h
    oracle = np.empty_like(H)
    for i in range(theta.size):
        for j in range(i, theta.size):
            value = (loss(theta + eye[i] + eye[j]) - loss(theta + eye[i] - eye[j])
                     - loss(theta - eye[i] + eye[j]) + loss(theta - eye[i] - eye[j])) / (4 * h * h)
            oracle[i, j] = oracle[j, i] = value
    assert np.abs(H - oracle).max() <= 1e-5 * np.abs(H).max()


def test_lanczos_agrees_with_dense():
    data = separable_clusters(6, [4, 4, 4], alpha=0.1, beta=None, norm=3.0, seed=0)
    fit = train(data.X, 3, SIGMA, LAM, seed=0, tied=False)
    dense = certify(fit.W1, fit.W2, data.X, SIGMA, LAM, n_eigs=3)
    lanczos = certify(fit.W1, fit.W2, data.X, SIGMA, LAM, n_eigs=3, dense_max=0)
    assert dense.method == "dense" and lanczos.method == "lanczos"
    # Lanczos runs on the Hessian shifted by c = λ_max (kept eigenvalues in [c, 2c]) with
    # ARPACK's test ‖r‖ ≤ tol·|θ|, tol = 1e-8: the eigenvalue error is at most ‖r‖ ≤ 2e-8·c.
    np.testing.assert_allclose(lanczos.eigenvalues, dense.eigenvalues, rtol=0,
                               atol=2e-8 * lanczos.lambda_max)
    assert lanczos.verdict == dense.verdict == "strict local minimum"
    # The reported lowest modes are unit eigenvectors: Rayleigh quotients on the full Hessian.
    H = hessian_matrix(fit.W1, fit.W2, data.X, SIGMA, LAM, tied=False)
    for report in (dense, lanczos):
        v = np.concatenate([m.ravel() for m in report.lowest_mode])
        assert np.linalg.norm(v) == pytest.approx(1.0, rel=1e-12)
        assert v @ H @ v == pytest.approx(report.min_eigenvalue, abs=2e-8 * lanczos.lambda_max)


# ----------------------------------------------------------------------------- verdicts


@pytest.mark.parametrize("which", ["tied", "untied"])
def test_w_mem_is_a_local_minimum_after_symmetry_removal(polished_mem, memorization, which):
    fit = polished_mem[0] if which == "tied" else polished_mem[1]
    report = certify(fit.W1, fit.W2, memorization, SIGMA, LAM)
    assert report.verdict == "strict local minimum", report.summary()
    assert report.zero_columns.tolist() == [3, 4]
    # Splitting a live column costs nothing in the linear regime: the ratio is 1 up to the
    # gradient tolerance (|ratio − 1| ≲ ‖∇L‖/(2λ‖w‖) ≈ 1e-6 here), never above 1 + ratio_tol.
    assert abs(report.zero_column_ratio - 1.0) <= 1e-5
    assert report.zero_column_ratio <= report.zero_column_bound
    assert report.min_eigenvalue > report.eig_tol


def test_constructed_smooth_saddle_is_a_saddle():
    """Two samples mirrored by the swap of coordinates 1, 2 and one tied neuron on the mirror axis.

    On the axis u = (1, 1, 0)/√2 the neuron is active on both samples (linear regime), and
    u is the *smaller* eigenvector of XXᵀ (eigenvalues 16 vs 36), so the loss curves down
    toward (1, −1, 0): a critical point by symmetry (the gradient is mirror-symmetric and the
    axis coefficient is optimised exactly), with negative curvature.
    """
    X = 5.0 * np.array([[1.0, -0.2], [-0.2, 1.0], [0.0, 0.0]])
    u = np.array([1.0, 1.0, 0.0]) / np.sqrt(2.0)
    sigma, lam = 0.1, 0.01
    res = scipy.optimize.minimize_scalar(
        lambda c: expected_loss(c * u[:, None], c * u[:, None], X, sigma, lam),
        bounds=(0.1, 2.0), method="bounded", options=dict(xatol=1e-12))
    W = res.x * u[:, None]
    report = certify(W, W, X, sigma, lam)
    assert report.verdict == "saddle", report.summary()
    assert report.min_eigenvalue < -100 * report.eig_tol
    assert report.descent_decrease > 0
    direction = report.descent[0][:, 0]
    assert abs(direction @ np.array([1.0, -1.0, 0.0])) / np.linalg.norm(direction) > 0.9 * np.sqrt(2)


@pytest.mark.parametrize("tied", [True, False])
def test_dropping_a_memorising_column_gives_a_saddle(polished_mem, memorization, tied):
    W1, W2 = without_first_column(polished_mem[0] if tied else polished_mem[1], tied)
    report = certify(W1, W2, memorization, SIGMA, LAM)
    assert report.verdict == "saddle", report.summary()
    assert report.zero_column_ratio > 1.0
    assert report.zero_column_ratio <= report.zero_column_bound * (1 + 1e-9)
    assert report.descent_decrease > 1e-6


def test_zero_weights_are_a_saddle(memorization):
    W = np.zeros((6, 2))
    report = certify(W, W, memorization, SIGMA, LAM)
    assert report.verdict == "saddle" and report.descent_decrease > 0


def test_random_weights_are_not_critical(memorization):
    W = np.random.default_rng(1).normal(size=(6, 3))
    assert certify(W, W, memorization, SIGMA, LAM).verdict == "not a critical point"


@pytest.mark.parametrize("tied", [True, False])
def test_w_mem_at_zero_decay_is_a_saddle(memorization, tied):
    """Cor. 3.2 at λ = 0 with p > n: a new neuron half-active on noise lowers the loss.

    The gain is O(σ³/‖x‖) per unit neuron, not exponentially small, so the decrease found
    along the certified direction is many orders above rounding (ε·L ≈ 1e-17).
    """
    W = w_mem(memorization, 5, SIGMA, 0.0)
    fit = train(memorization, 5, SIGMA, 0.0, init=W if tied else (W, W), tied=tied)
    report = certify(fit.W1, fit.W2, memorization, SIGMA, 0.0)
    assert report.verdict == "saddle", report.summary()
    assert report.zero_column_gain > 0 and report.descent_decrease > 1e-10


# ----------------------------------------------------------------------------- symmetries


@pytest.mark.parametrize("tied,family", [(True, "rotation"), (False, "rotation"),
                                         (False, "general-linear")])
def test_symmetry_projector_contains_generators_and_is_a_projection(tied, family):
    rng = np.random.default_rng(2)
    d, k = 5, 4
    W1 = rng.normal(size=(d, k))
    W2 = W1 if tied else rng.normal(size=(d, k))
    blocks = [np.array([0, 1, 2]), np.array([3])]
    proj = SymmetryProjector(W1, W2, blocks, tied=tied, family=family)
    A = np.zeros((k, k))
    if family == "rotation":
        B = rng.normal(size=(3, 3))
        A[:3, :3] = B - B.T
        generator = (W1 @ A, W2 @ A)
    else:
        A[:3, :3] = rng.normal(size=(3, 3))
        A[3, 3] = 0.7                                  # rescaling of the singleton column
        generator = (-W1 @ A.T, W2 @ A)
    v = generator[0].ravel() if tied else np.concatenate([g.ravel() for g in generator])
    np.testing.assert_allclose(proj.component(v), v, atol=1e-10 * np.abs(v).max())
    x = rng.normal(size=v.size)
    y = rng.normal(size=v.size)
    np.testing.assert_allclose(proj.component(proj.component(x)), proj.component(x), atol=1e-10)
    assert abs(x @ proj.component(y) - proj.component(x) @ y) <= 1e-10 * np.linalg.norm(x) * np.linalg.norm(y)
    expected = 3 if family == "rotation" else 9 + 1
    assert proj.dimension == expected


def test_activation_blocks_group_equal_patterns():
    X = np.array([[1.0, -1.0], [0.5, 1.0]])
    W = np.array([[1.0, 2.0, -1.0], [0.0, 0.1, 0.5]])
    blocks = activation_blocks(W, X)
    assert sorted(map(list, blocks)) == [[0, 1], [2]]


def test_zero_column_ratio_is_the_measured_sup_and_below_the_bound(polished_mem, memorization):
    """Dropping a memorising column of W_mem: the ascent's ratio is attained by its own direction
    a (recomputed here from ∂L/∂w2_j, no ascent code involved) and stays below the rigorous bound."""
    from numerics.objective import expected_loss_and_grad

    fit = polished_mem[0]
    W1, W2 = without_first_column(fit, True)
    zero = np.linalg.norm(W1, axis=0) == 0
    found = zero_column_ratio(W1, W2, memorization, SIGMA, LAM, tied=True, zero=zero, rng=0)
    A1 = W1.copy()
    A1[:, found.column] = found.a
    A2 = W2.copy()
    A2[:, found.column] = 0.0
    G = expected_loss_and_grad(A1, A2, memorization, SIGMA, LAM)[2][:, found.column]
    # Same formula, same inputs: the tied score −aᵀG(a)/(2λ) to rounding.
    assert found.value == pytest.approx(-(found.a @ G) / (2 * LAM), rel=1e-12)
    assert 1.0 < found.value <= zero_column_bound(W1, W2, memorization, SIGMA, LAM)


def test_zero_column_bound_dominates_direct_evaluation(memorization):
    """The Cauchy–Schwarz bound is ≥ ‖G(a)‖/(2λ) for any direction a (here: random ones)."""
    W = w_mem(memorization, 4, SIGMA, LAM)
    bound = zero_column_bound(W, W, memorization, SIGMA, LAM)
    from numerics.objective import expected_loss_and_grad

    rng = np.random.default_rng(3)
    for _ in range(5):
        a = rng.normal(size=6)
        a /= np.linalg.norm(a)
        A1 = W.copy()
        A1[:, 3] = a
        G = expected_loss_and_grad(A1, W, memorization, SIGMA, LAM)[2][:, 3]
        assert np.linalg.norm(G) / (2 * LAM) <= bound


def test_certify_validates_arguments(memorization):
    with pytest.raises(ValueError, match="W2"):
        certify(np.zeros((6, 2)), np.zeros((6, 3)), memorization, SIGMA, LAM)
    with pytest.raises(ValueError, match="tied"):
        certify(np.ones((6, 2)), np.zeros((6, 2)), memorization, SIGMA, LAM, tied=True)
    with pytest.raises(TypeError, match="tied"):
        certify(np.ones((6, 2)), np.ones((6, 2)), memorization, SIGMA, LAM, tied="yes")
    with pytest.raises(ValueError, match="X has shape \\(n, d\\)"):
        certify(np.ones((6, 2)), np.ones((6, 2)), memorization.T, SIGMA, LAM)
    with pytest.raises(ValueError, match="X is empty"):
        certify(np.ones((6, 2)), np.ones((6, 2)), memorization[:, :0], SIGMA, LAM)
    with pytest.raises(ValueError, match="overflows float64"):
        certify(1e100 * np.ones((6, 2)), 1e100 * np.ones((6, 2)), memorization, SIGMA, LAM)
    with pytest.raises(ValueError, match="blocks"):
        certify(np.ones((6, 2)), np.ones((6, 2)), memorization, SIGMA, LAM, blocks="none")


def test_is_minimum_is_the_minimum_verdicts():
    """`CertifyReport.is_minimum` replaces comparisons with ("strict local minimum", "degenerate minimum")."""
    assert MINIMUM_VERDICTS == ("strict local minimum", "degenerate minimum")
    X = np.array([[2.0, -1.0], [0.0, 1.7]])
    saddle = certify(np.zeros((2, 1)), np.zeros((2, 1)), X, 0.1, 0.01)
    assert saddle.verdict == "saddle" and not saddle.is_minimum
    for verdict in VERDICTS:
        saddle.verdict = verdict
        assert saddle.is_minimum == (verdict in MINIMUM_VERDICTS)


def test_reduced_certificate_matches_the_full_one(polished_mem, memorization):
    fit = polished_mem[1]
    reduced = certify(fit.W1, fit.W2, memorization, SIGMA, LAM)
    full = certify(fit.W1, fit.W2, memorization, SIGMA, LAM, reduce=False)
    assert any("invariant subspace" in note for note in reduced.notes)
    assert reduced.verdict == full.verdict
    # The full spectrum is the reduced one with the complement block repeated (same set).
    np.testing.assert_allclose(reduced.eigenvalues[0], full.eigenvalues[0], rtol=1e-6)


# ----------------------------------------------------------------------------- short columns


def test_short_column_is_certified_as_a_zero_column(polished_mem, memorization):
    """A column shorter than 100 finite-difference steps is set to zero before certifying.

    Independent path: certifying the same weights with that column zeroed by hand must give
    the same verdict and eigenvalues (the computations are then identical).
    """
    fit = polished_mem[0]
    W = fit.W1.copy()
    zero = np.flatnonzero(np.linalg.norm(W, axis=0) == 0.0)[0]
    step = HVP_STEP * max(float(np.linalg.norm(W)), 1.0)      # certify's default difference step
    W[:, zero] = 10.0 * step * memorization[:, 0] / np.linalg.norm(memorization[:, 0])
    assert below_resolution(W, W, True)[zero]
    report = certify(W, W, memorization, SIGMA, LAM)
    assert any("shorter than 100 finite-difference steps" in note for note in report.notes)
    W[:, zero] = 0.0
    reference = certify(W, W, memorization, SIGMA, LAM)
    assert report.verdict == reference.verdict == "strict local minimum"
    np.testing.assert_array_equal(report.eigenvalues, reference.eigenvalues)


@pytest.mark.parametrize("tied", [True, False])
def test_descent_step_lowers_the_loss(polished_mem, memorization, tied):
    """The reported step and direction are checked on the loss itself, outside certify."""
    W1, W2 = without_first_column(polished_mem[0] if tied else polished_mem[1], tied)
    report = certify(W1, W2, memorization, SIGMA, LAM)
    D1, D2 = report.descent
    t = report.descent_step
    lowered = expected_loss(W1 + t * D1, (W1 + t * D1) if tied else (W2 + t * D2), memorization, SIGMA, LAM)
    assert t > 0
    # Both sides evaluate eq. (6) at the same point (certify in its invariant basis, an exact
    # change of coordinates): equal up to rounding, well inside 1e-12 of the loss.
    assert report.loss - lowered == pytest.approx(report.descent_decrease, rel=1e-9, abs=1e-12 * report.loss)


def test_progress_bar_counts_the_hessian_vector_products(polished_mem, memorization, monkeypatch):
    """``progress`` reaches a bar that counts every Hessian-vector product of the spectrum stage."""
    from numerics import certify as certify_module

    bars = []

    class Counting:
        """A silent stand-in for the tqdm bar that counts its updates."""
        n = 0

        def update(self, k):
            self.n += k

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    def spy(progress, **kwargs):
        bars.append((progress, kwargs, Counting()))
        return bars[-1][2]

    monkeypatch.setattr(certify_module, "progress_bar", spy)
    fit = polished_mem[0]
    report = certify(fit.W1, fit.W2, memorization, SIGMA, LAM, progress=True, check_zero_columns=False)
    (progress, kwargs, bar), = bars
    assert progress is True and kwargs["desc"] == "certify" and bar.n == report.n_hvp > 0
    assert inspect.signature(certify).parameters["progress"].default is None
