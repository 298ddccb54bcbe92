"""Exact multi-noise training and its certificates: convergence, resuming, verdicts, zero-column tests."""
from __future__ import annotations

import math

import numpy as np
import pytest

from numerics.data import memorization_set
from numerics.multinoise import MultiNoiseDAE
from numerics.multinoise_certify import _ZeroColumnTest, certify_multinoise
from numerics.multinoise_objective import adaptive_rule, multinoise_loss, multinoise_loss_and_grad
from numerics.multinoise_training import train_multinoise


@pytest.fixture(scope="module")
def memorised():
    """Three simplex points (Cor. 3.2's setting), p = 3, trained to ‖∇L‖/L0 ≤ 1e-8."""
    X = memorization_set(5, 3, norm=2.0, seed=0)
    fit = train_multinoise(X, 3, 0.02, seed=0)
    return X, fit


def test_training_converges_with_an_accurate_rule_and_lowers_the_loss(memorised):
    X, fit = memorised
    assert fit.converged and fit.rel_grad_norm <= 1e-8
    assert fit.quadrature_error <= 1e-10
    start = MultiNoiseDAE.initial(5, 3, seed=0)
    assert fit.loss < multinoise_loss(start, X, lam=0.02)
    # the reported loss is the model's exact loss (both to the quadrature's 1e-10)
    assert fit.loss == pytest.approx(multinoise_loss(fit.model, X, lam=0.02), rel=1e-9)
    # memorisation structure: each sample has a column along it
    unit = fit.model.W / np.maximum(np.linalg.norm(fit.model.W, axis=0), 1e-300)
    assert np.all(np.max(unit.T @ (X / np.linalg.norm(X, axis=0)), axis=0) > 0.999)


def test_training_is_deterministic_and_resumes(tmp_path):
    X = memorization_set(4, 2, norm=2.0, seed=1)
    short = train_multinoise(X, 2, 0.05, seed=3, max_iter=10)
    again = train_multinoise(X, 2, 0.05, seed=3, max_iter=10)
    np.testing.assert_array_equal(short.model.pack(), again.model.pack())
    first = train_multinoise(X, 2, 0.05, seed=3, max_iter=10, checkpoint=(str(tmp_path), "run"))
    np.testing.assert_array_equal(first.model.pack(), short.model.pack())
    assert first.n_iter == 10 and not first.converged
    resumed = train_multinoise(X, 2, 0.05, seed=3, checkpoint=(str(tmp_path), "run"))
    assert resumed.converged and resumed.stages[0] == "resumed@10" and resumed.loss < first.loss
    with pytest.raises(ValueError, match="another run"):
        train_multinoise(X, 2, 0.07, seed=3, checkpoint=(str(tmp_path), "run"))


def test_the_subspace_reduction_is_exact():
    """Loss and gradient in the data-and-encoder subspace (noise_dim = d) equal the full ones.

    Rotations fixing the data leave the loss unchanged, so coordinates W = B V lose nothing;
    only the skip's s²σ²d needs the full d. Agreement to float64 rounding of sums of ~d terms.
    """
    rng = np.random.default_rng(4)
    d, n, p = 9, 3, 2
    X = rng.normal(size=(d, n))
    model = MultiNoiseDAE(W=rng.normal(size=(d, p)), s=0.4, A1=rng.normal(size=p), b1=rng.normal(size=p),
                          A2=rng.normal(size=(p, p)), b2=rng.normal(size=p))
    B = np.linalg.qr(np.hstack([X, model.W]))[0]
    reduced = MultiNoiseDAE(B.T @ model.W, model.s, model.A1, model.b1, model.A2, model.b2)
    rule = adaptive_rule(model, X)
    full_loss, full_grad = multinoise_loss_and_grad(model, X, lam=0.1, rule=rule)
    loss, grad = multinoise_loss_and_grad(reduced, B.T @ X, lam=0.1, rule=rule, noise_dim=d)
    assert loss == pytest.approx(full_loss, rel=1e-12)
    np.testing.assert_allclose(B @ grad.W, full_grad.W, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(grad.pack()[B.shape[1] * p:], full_grad.pack()[d * p:], rtol=1e-9, atol=1e-12)


def test_certify_a_trained_memorising_point(memorised):
    X, fit = memorised
    report = certify_multinoise(fit.model, X, lam=0.02)
    assert report.is_minimum, report.summary()
    assert report.rel_grad_norm <= 1e-6 and report.min_eigenvalue > -report.eig_tol
    assert report.quadrature_error <= 1e-10


def test_certify_rejects_a_non_critical_point():
    X = memorization_set(4, 2, norm=2.0, seed=0)
    report = certify_multinoise(MultiNoiseDAE.initial(4, 2, seed=0), X, lam=0.02)
    assert report.verdict == "not a critical point" and report.rel_grad_norm > 1e-6


def _skip_only(X, lam, sigma_min=0.02, sigma_max=2.0):
    """W = 0, gain network 0, and the skip that is optimal alone: a critical point (derived here).

    ``D(s) = (1 − s)²‖x‖² + s²σ²d`` averaged, plus ``λs²``: ``s* = E‖x‖²/(E‖x‖² + E_u[σ²]d + λ)``
    with ``E_u[σ²] = (σ_max² − σ_min²)/(2 log(σ_max/σ_min))`` for log σ uniform.
    """
    d, n = X.shape
    energy = float(np.sum(X * X)) / n
    mean_variance = (sigma_max**2 - sigma_min**2) / (2.0 * math.log(sigma_max / sigma_min))
    s = energy / (energy + mean_variance * d + lam)
    p = 2
    return MultiNoiseDAE(W=np.zeros((d, p)), s=s, A1=np.zeros(p), b1=np.zeros(p), A2=np.zeros((p, p)), b2=np.zeros(p))


def test_certify_finds_the_saddle_of_the_skip_only_model():
    """Adding a neuron along the data lowers the loss: zero-column ratio > 1, a descent direction."""
    X = memorization_set(4, 2, norm=2.0, seed=0)
    model = _skip_only(X, 0.02)
    report = certify_multinoise(model, X, lam=0.02)
    assert report.rel_grad_norm <= 1e-12                 # the derivation above: a critical point
    assert report.verdict == "saddle" and report.zero_column_ratio > 1.0
    assert report.descent is not None and np.linalg.norm(report.descent.W) > 0
    # the loss does decrease along the reported direction
    step = 1e-2 * report.descent.pack() / np.linalg.norm(report.descent.pack())
    lowered = MultiNoiseDAE.unpack(model.pack() + step, 4, 2)
    assert multinoise_loss(lowered, X, lam=0.02) < multinoise_loss(model, X, lam=0.02)


def test_zero_column_ascent_beats_random_directions():
    """The ascent's sup estimate is at least the best of 200 random directions (it is a lower bound)."""
    X = memorization_set(4, 2, norm=2.0, seed=0)
    lam = 0.02
    model = _skip_only(X, lam)
    report = certify_multinoise(model, X, lam=lam)
    rule = adaptive_rule(model, X)
    test = _ZeroColumnTest(model, X, rule, (0.02, 2.0), 4, 0)
    rng = np.random.default_rng(0)
    directions = rng.standard_normal((200, 4))
    brute = max(-test.phi(a / np.linalg.norm(a)) / lam for a in directions)
    assert report.zero_column_ratio >= brute - 1e-9 * abs(brute)


def test_monte_carlo_warm_up_then_exact_training():
    X = memorization_set(4, 2, norm=2.0, seed=0)
    fit = train_multinoise(X, 2, 0.05, seed=0, warmup=dict(steps=200, optimizer="adam", lr=1e-2, weight_decay=0.0))
    assert fit.stages[0] == "mc-warmup(200)" and fit.converged


@pytest.mark.parametrize("lam", [0.0, 0.1])
def test_removed_symmetries_are_flat_everywhere(lam):
    """The loss is invariant along every removed direction, so the gradient is orthogonal to it at
    any point (not only at minima). Units are built on, off and switching over the σ range.

    Tolerance: the gradient is the exact integral's evaluated by a rule of relative error ≤ 1e-12;
    the projections must vanish to 1e-9 relative.
    """
    from numerics.multinoise_symmetries import Layout, symmetry_tangents, zero_sets

    rng = np.random.default_rng(5)
    d, p = 4, 5
    X = rng.normal(size=(d, 3))
    W = rng.normal(size=(d, p))
    W[:, 4] = 0.0                                                        # a zero column
    A1 = np.array([0.3, 0.5, 1.0, 1.0, -0.2])
    b1 = np.array([3.0, 4.0, 1.0, 1.0, -5.0])       # units 0, 1 always on; 2, 3 switch together; 4 dead
    model = MultiNoiseDAE(W=W, s=0.2, A1=A1, b1=b1, A2=0.3 * rng.normal(size=(p, p)), b2=0.1 * rng.normal(size=p))
    layout = Layout(d, p)
    zero_columns, zero_units = zero_sets(model, 1e-6, 0.0)
    tangents, labels = symmetry_tangents(model, layout, zero_columns, zero_units, (math.log(0.02), math.log(2.0)), lam)
    assert tangents.shape[0] >= (2 if lam else 10), labels
    _, grad = multinoise_loss_and_grad(model, X, lam=lam, rtol=1e-12)
    g = grad.pack()
    for v in tangents:
        assert abs(g @ v) <= 1e-9 * np.linalg.norm(g) * np.linalg.norm(v)
