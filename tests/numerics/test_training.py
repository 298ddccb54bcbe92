"""`train` reaches certified minimisers with the predicted structure; its stages, budgets, callback, checkpoints."""
from __future__ import annotations

import numpy as np
import pytest

from numerics import training
from numerics.certify import certify
from numerics.compare import cluster_maps, column_structure
from numerics.data import memorization_set, separable_clusters
from numerics.initialization import random_init
from numerics.objective import expected_loss
from numerics.training import train
from oracles import w_mem

SIGMA, LAM = 0.2, 0.01


def eq8_map(X_k, p_k, n, sigma, lam):
    """Eq. (8) as a map: W_k W_kᵀ = Σ_{j≤p_k} (Λ_j − nλ)_+/(Λ_j + n_k σ²) u_j u_jᵀ."""
    Lam, U = np.linalg.eigh(X_k @ X_k.T)
    Lam, U = Lam[::-1][:p_k], U[:, ::-1][:, :p_k]
    a = np.clip(Lam - n * lam, 0.0, None) / (Lam + X_k.shape[1] * sigma**2)
    return (U * a) @ U.T


# ----------------------------------------------------------------------------- memorisation


@pytest.mark.parametrize("tied,seed", [(True, 0), (False, 0)])
def test_random_start_reaches_certified_memorization(memorization, tied, seed):
    X = memorization
    fit = train(X, 4, SIGMA, LAM, seed=seed, tied=tied)
    assert fit.converged and fit.rel_grad_norm <= 1e-8
    info = column_structure(fit.W1, fit.W2, X)
    assert info.n_memorized == X.shape[1]
    assert np.all(info.max_cosine >= 0.99)
    # Same loss as the eq. (9) construction polished by the solver: the split solutions are
    # one family with W_mem. Tolerance: both are gtol-critical points of a strictly convex
    # (mod symmetry) basin; the loss error is O(‖∇L‖²/λ_min) ≪ 1e-12.
    polished = train(X, 4, SIGMA, LAM, init=w_mem(X, 4, SIGMA, LAM), tied=True)
    assert fit.loss == pytest.approx(polished.loss, rel=1e-10)
    report = certify(fit.W1, fit.W2, X, SIGMA, LAM)
    assert report.verdict == "strict local minimum", report.summary()


def test_perturbed_prediction_returns_to_w_mem(memorization):
    X = memorization
    W = w_mem(X, 4, SIGMA, LAM)
    fit = train(X, 4, SIGMA, LAM, init=W, perturb=0.2, seed=3, tied=True)
    assert fit.converged and fit.init == "given+perturb(0.2)"
    # both are the same strict minimum (mod symmetries) reached to ‖∇L‖/L0 ≤ 1e-8: the loss gap is
    # O(‖∇L‖²/μ_min), far below 1e-7 relative (the perturbed start is 20 % away, not a tolerance)
    assert fit.loss == pytest.approx(expected_loss(W, W, X, SIGMA, LAM), rel=1e-7)


# ----------------------------------------------------------------------------- generalisation


@pytest.mark.parametrize("tied,seed", [(True, 0), (False, 2)])
def test_random_start_reaches_eq8_blocks(tied, seed):
    """Three clusters (simplex means, α = 0.1), one neuron each: per-cluster maps = eq. (8).

    Tolerance: a gtol-critical point is within ‖∇L‖/λ_min(H) of the minimiser, so the maps
    differ by ≲ 10·‖∇L‖/λ_min (λ_min from `certify`), plus the theory's residual, bounded
    by the Gaussian tail Φ(−z_min) at the smallest standardised margin z_min (here > 6,
    so ≤ 1e-9).
    """
    data = separable_clusters(6, [4, 4, 4], alpha=0.1, beta=None, norm=3.0, seed=0)
    X, labels = data.X, data.labels
    fit = train(X, 3, SIGMA, LAM, seed=seed, tied=tied)
    assert fit.converged
    info = column_structure(fit.W1, fit.W2, X, labels)
    assert info.neurons_per_cluster == {0: 1, 1: 1, 2: 1} and info.n_mixed == 0
    report = certify(fit.W1, fit.W2, X, SIGMA, LAM)
    assert report.verdict == "strict local minimum", report.summary()
    margins = np.abs(fit.W1.T @ X) / (SIGMA * np.linalg.norm(fit.W1, axis=0)[:, None])
    assert margins.min() > 6.0
    tolerance = 10 * fit.grad_norm / report.min_eigenvalue + 1e-9
    for k, A in cluster_maps(fit.W1, fit.W2, X, labels, rule="all-on").items():
        predicted = eq8_map(X[:, labels == k], 1, X.shape[1], SIGMA, LAM)
        assert np.linalg.norm(A - predicted) <= tolerance


# ----------------------------------------------------------------------------- pieces


def test_train_resumes_from_checkpoint(tmp_path, memorization):
    X = memorization
    partial = train(X, 4, SIGMA, LAM, seed=5, tied=True, max_iter=3,
                    checkpoint=(str(tmp_path), "fit"), polish=False)
    assert not partial.converged
    resumed = train(X, 4, SIGMA, LAM, seed=5, tied=True, checkpoint=(str(tmp_path), "fit"))
    assert resumed.converged and resumed.stages[0].startswith("resumed@")
    assert resumed.n_iter > partial.n_iter


def test_train_validates_arguments(memorization):
    with pytest.raises(ValueError, match="p"):
        train(memorization, 0, SIGMA, LAM)
    with pytest.raises(ValueError, match="lam"):
        train(memorization, 2, SIGMA, -1.0)
    with pytest.raises(ValueError, match="init"):
        train(memorization, 2, SIGMA, LAM, init=np.zeros((5, 2)))
    with pytest.raises(ValueError, match="init"):
        train(memorization, 2, SIGMA, LAM, init="predicted")
    with pytest.raises(ValueError, match="restarts"):
        train(memorization, 2, SIGMA, LAM, lbfgs=dict(restarts=-1))
    with pytest.raises(TypeError, match="maxiter"):
        train(memorization, 2, SIGMA, LAM, lbfgs=dict(maxiter=5))      # unknown option named
    with pytest.raises(TypeError, match="polish"):
        train(memorization, 2, SIGMA, LAM, polish="yes")
    with pytest.raises(TypeError, match="tied"):
        train(memorization, 2, SIGMA, LAM, tied="yes")
    with pytest.raises(TypeError, match="progress"):
        train(memorization, 2, SIGMA, LAM, progress="bar")
    with pytest.raises(TypeError, match="seed"):
        train(memorization, 2, SIGMA, LAM, seed="a")
    with pytest.raises(TypeError, match="sigma"):
        train(memorization, 2, "0.2", LAM)


def test_random_init_is_seeded():
    a = random_init(5, 3, seed=4)
    b = random_init(5, 3, seed=4)
    np.testing.assert_array_equal(a[0], b[0])
    assert np.abs(a[0]).max() <= 1 / np.sqrt(5)


# ----------------------------------------------------------------------------- reduction


def test_reduced_and_full_training_agree():
    X = memorization_set(12, 3, norm=[3.0, 2.5, 2.0], seed=0)      # rank 2, d = 12
    reduced = train(X, 4, SIGMA, LAM, seed=1, tied=False, reduce=True)
    full = train(X, 4, SIGMA, LAM, seed=1, tied=False, reduce=False)
    assert reduced.stages[0].startswith("reduced") and reduced.converged and full.converged
    assert reduced.loss == pytest.approx(full.loss, rel=1e-9)


def test_warmup_then_exact(memorization):
    fit = train(memorization, 4, SIGMA, LAM, seed=0, tied=True, warmup=dict(steps=50, batch=2))
    assert "mc-warmup(50)" in fit.stages and fit.converged


def test_train_keeps_the_best_iterate_when_the_polish_breaks_down(monkeypatch):
    """SciPy's trust-region subproblem solver can hand NaN directions to the Hessian-vector
    product (seen on nearly singular Hessians); `train` must stop the polish, not crash."""
    import scipy.optimize

    from theory.predict import memorization_weights

    real_minimize = scipy.optimize.minimize

    def minimize_with_nan_direction(fun, x0, **options):
        if options.get("method") == "trust-krylov":
            options["hessp"](x0, np.full_like(x0, np.nan))
        return real_minimize(fun, x0, **options)

    monkeypatch.setattr(training.scipy.optimize, "minimize", minimize_with_nan_direction)
    X = memorization_set(2, 2, norm=1.0, seed=1)
    W = memorization_weights(X, 4, 0.4, 0.0)
    fit = train(X, 4, 0.4, 0.0, tied=True, init=W, perturb=1e-2, gtol=1e-15, max_iter=20)
    assert "trust-krylov" in fit.stages and "non-finite" in fit.message
    assert np.all(np.isfinite(fit.W1)) and np.isfinite(fit.loss)


def test_warmup_is_reproducible(memorization):
    """The warm-up draws its noise on a helper thread; the stream must still be one seeded
    sequence, so two runs give identical weights."""
    runs = [train(memorization, 4, SIGMA, LAM, seed=3, tied=True, warmup=dict(steps=40, batch=2),
                  max_iter=2, polish=False) for _ in range(2)]
    np.testing.assert_array_equal(runs[0].W1, runs[1].W1)


def test_history_starts_at_the_initial_point(memorization):
    W = random_init(memorization.shape[0], 4, tied=True, seed=5)[0]
    fit = train(memorization, 4, SIGMA, LAM, tied=True, init=W)
    # train evaluates in the reduced basis, an exact change of coordinates
    # (test_invariant_basis_reduction_is_exact): the two losses differ by rounding only.
    assert fit.history[0][2] == pytest.approx(expected_loss(W, W, memorization, SIGMA, LAM), rel=1e-12)


def test_unconverged_run_returns_its_lowest_loss_point(memorization):
    fit = train(memorization, 4, SIGMA, LAM, seed=0, tied=True, gtol=1e-15, max_iter=3, polish=False)
    assert not fit.converged
    # The reported loss is that of the returned weights (recomputed here in the full space, so
    # equal up to rounding, as above) and no iterate the run recorded was lower.
    assert fit.loss == pytest.approx(expected_loss(fit.W1, fit.W2, memorization, SIGMA, LAM), rel=1e-12)
    assert fit.loss <= min(loss for _, _, loss, _ in fit.history)


def test_max_iter_bounds_all_lbfgs_runs_together(memorization):
    """Restarts share the iteration budget; with gtol out of reach they stop when it is spent
    or when a restart no longer halves the gradient norm."""
    fit = train(memorization, 4, SIGMA, LAM, seed=0, tied=True, gtol=1e-30, max_iter=40, polish=False)
    assert fit.n_iter <= 40
    assert fit.stages.count("L-BFGS-B") == 1
    assert fit.stages.count("L-BFGS-B restart") <= training.LBFGS["restarts"]


@pytest.mark.parametrize("max_iter", [1, 3, 8])
def test_max_iter_bounds_the_polish_too(memorization, max_iter):
    """L-BFGS, its restarts and the trust-region polish share one budget (gtol out of reach, polish on)."""
    fit = train(memorization, 4, SIGMA, LAM, seed=0, tied=True, gtol=1e-30, max_iter=max_iter)
    assert fit.n_iter <= max_iter
    assert len(fit.history) == 1 + fit.n_iter          # the start, then one entry per iteration


@pytest.mark.parametrize("tied", [True, False])
def test_max_iter_zero_returns_the_start(memorization, tied):
    """No stage runs, the warm-up neither: the start comes back, with its exact loss."""
    W1, W2 = random_init(memorization.shape[0], 4, tied=tied, seed=3)
    fit = train(memorization, 4, SIGMA, LAM, init=W1 if tied else (W1, W2), tied=tied, max_iter=0,
                warmup=dict(steps=50))
    assert fit.n_iter == 0 and not any(s.startswith(("L-BFGS", "trust", "mc-warmup")) for s in fit.stages)
    assert "max_iter = 0" in fit.message
    # the start is projected on the invariant basis and lifted back (B Bᵀ W = W for W in its span):
    # a few ulps of ‖W‖ per entry
    np.testing.assert_allclose(fit.W1, W1, atol=1e-14 * np.abs(W1).max())
    np.testing.assert_allclose(fit.W2, W1 if tied else W2, atol=1e-14 * np.abs(W1).max())
    assert fit.loss == pytest.approx(expected_loss(W1, W1 if tied else W2, memorization, SIGMA, LAM), rel=1e-12)


def test_lam_is_required_and_train_is_untied_by_default():
    """λ has no silent default (as in theory.predict), and train keeps loss (6) as printed: W1, W2 independent."""
    import inspect

    parameters = inspect.signature(train).parameters
    assert parameters["lam"].default is inspect.Parameter.empty
    assert parameters["tied"].default is False
    assert parameters["progress"].default is None
    with pytest.raises(TypeError, match="lam"):
        train(np.eye(2), 2, SIGMA)


def test_progress_bar_counts_the_iterations(memorization, monkeypatch):
    """``progress`` reaches a tqdm bar that sees every iteration (shown after 2 s; forced on here)."""
    bars = []

    class Counting:
        """A silent stand-in for the tqdm bar that counts its updates."""
        n = 0

        def update(self, k):
            self.n += k

        def set_postfix(self, **kwargs):
            pass

        def close(self):
            pass

    def spy(progress, **kwargs):
        bars.append((progress, kwargs, Counting()))
        return bars[-1][2]

    monkeypatch.setattr(training, "progress_bar", spy)
    fit = train(memorization, 4, SIGMA, LAM, seed=0, tied=True, progress=True)
    (progress, kwargs, bar), = bars
    assert progress is True and kwargs["desc"] == "train" and bar.n == fit.n_iter > 0


# ----------------------------------------------------------------------------- callback, options, overflow


def test_callback_sees_each_iteration_and_stopiteration_ends_the_run(memorization):
    seen = []

    def callback(intermediate_result):
        seen.append(intermediate_result)
        if intermediate_result.nit == 5:
            raise StopIteration

    fit = train(memorization, 4, SIGMA, LAM, seed=0, tied=True, gtol=1e-14, callback=callback)
    assert [r.nit for r in seen] == [1, 2, 3, 4, 5] and fit.n_iter == 5
    assert not fit.converged and "stopped by the callback" in fit.message
    assert fit.stages == ["L-BFGS-B"]                             # no restart, no polish after a stop
    assert all(r.stage == "L-BFGS-B" for r in seen)
    # The iterate the callback sees is in the full space: eq. (6) there is the reported loss up
    # to the rounding of the exact change of basis (a few ulps).
    last = seen[-1]
    assert last.W1.shape == (6, 4) and last.W1 is last.W2
    assert expected_loss(last.W1, last.W2, memorization, SIGMA, LAM) == pytest.approx(last.fun, rel=1e-12)
    # the lowest-loss point evaluated is returned, at or below every iterate seen
    assert fit.loss <= min(r.fun for r in seen)


def test_a_callback_that_does_not_stop_changes_nothing(memorization):
    plain = train(memorization, 4, SIGMA, LAM, seed=2, tied=False)
    watched = train(memorization, 4, SIGMA, LAM, seed=2, tied=False, callback=lambda intermediate_result: None)
    np.testing.assert_array_equal(plain.W1, watched.W1)
    np.testing.assert_array_equal(plain.W2, watched.W2)
    assert plain.n_iter == watched.n_iter


def test_stage_options_reach_their_stages(memorization):
    """Per-stage options: no restarts means one L-BFGS run; maxls=1 ends it at its first line search;
    polish=dict(max_iter=2) caps the polish's iterations (train's max_iter bounds all stages together,
    test_max_iter_bounds_the_polish_too)."""
    seen = []
    fit = train(memorization, 4, SIGMA, LAM, seed=0, tied=True, gtol=1e-30, max_iter=5000,
                lbfgs=dict(restarts=0, maxcor=5, maxls=1), polish=dict(max_iter=2),
                callback=lambda r: seen.append((r.stage, r.rel_grad_norm)))
    assert fit.stages == ["L-BFGS-B", "trust-krylov"]
    # one trial step does not meet the Wolfe conditions from this start (the default maxls = 50
    # takes L-BFGS over a hundred iterations here), so the polish starts far from a critical point
    stages = [stage for stage, _ in seen]
    assert "L-BFGS-B" not in stages
    assert seen[0][1] > 1e-3
    # gtol = 1e-30 is out of reach: only the polish's own cap ends the run
    assert stages == ["trust-krylov"] * 2 and fit.n_iter == 2
    assert "Maximum number of iterations" in fit.message
    assert training.LBFGS == dict(maxcor=30, restarts=3, maxls=50)  # the defaults are not mutated


def test_overflowing_steps_end_the_run_with_a_message(memorization):
    """Data so large that ‖∇L‖² overflows: L-BFGS cannot step; the start is returned, and said so."""
    fit = train(memorization * 1e150, 4, SIGMA, LAM, seed=0, tied=True, max_iter=20)
    assert not fit.converged and "float64 range" in fit.message and "rescale X" in fit.message
    assert np.all(np.isfinite(fit.W1)) and np.isfinite(fit.loss)
