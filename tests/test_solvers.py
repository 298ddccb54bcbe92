"""`train` reaches certified minimisers with the predicted structure; `multistart` resumes."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from numerics.certify import certify
from numerics.data import memorization_set, separable_clusters
from numerics.objective import expected_loss
from numerics.solvers import (
    cluster_maps,
    invariant_basis,
    column_structure,
    loss_scale,
    multistart,
    random_init,
    train,
    zero_columns,
)
from oracles import w_mem

SIGMA, LAM = 0.2, 0.01


@pytest.fixture(scope="module")
def memorization():
    """Three samples with pairwise cosine −1/2 (β < 0, Cor. 3.2) and distinct norms, d = 6."""
    return memorization_set(6, 3, norm=[3.0, 2.5, 2.0], seed=0)


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
    assert info["n_memorized"] == X.shape[1]
    assert np.all(info["max_cosine"] >= 0.99)
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
    assert info["neurons_per_cluster"] == {0: 1, 1: 1, 2: 1} and info["n_mixed"] == 0
    report = certify(fit.W1, fit.W2, X, SIGMA, LAM)
    assert report.verdict == "strict local minimum", report.summary()
    margins = np.abs(fit.W1.T @ X) / (SIGMA * np.linalg.norm(fit.W1, axis=0)[:, None])
    assert margins.min() > 6.0
    tolerance = 10 * fit.grad_norm / report.min_eigenvalue + 1e-9
    for k, A in cluster_maps(fit.W1, fit.W2, X, labels).items():
        predicted = eq8_map(X[:, labels == k], 1, X.shape[1], SIGMA, LAM)
        assert np.linalg.norm(A - predicted) <= tolerance


# ----------------------------------------------------------------------------- pieces


def test_column_structure_on_constructed_weights():
    X = np.array([[2.0, -1.0, 0.0], [0.0, 1.5, 0.0], [0.0, 0.0, 1.0]])
    W = np.zeros((3, 4))
    W[:, 0] = X[:, 0]
    W[:, 1] = X[:, 1] + np.array([0.0, 0.01, -0.01])
    W[:, 2] = [-1.0, -1.0, 1.0]     # active on x_3 only (cluster 1 with labels below)
    info = column_structure(W, W, X, labels=[0, 0, 1])
    assert info["n_zero"] == 1 and info["n_live"] == 3
    assert info["cluster_of_column"].tolist() == [0, 0, 1, -1]
    assert info["neurons_per_cluster"] == {0: 2, 1: 1}
    assert info["memorized"].tolist() == [True, True, False]
    assert zero_columns(W, W).tolist() == [False, False, False, True]


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
        train(memorization, 2, SIGMA, LAM, restarts=-1)


def test_random_init_is_seeded():
    a = random_init(5, 3, seed=4)
    b = random_init(5, 3, seed=4)
    np.testing.assert_array_equal(a[0], b[0])
    assert np.abs(a[0]).max() <= 1 / np.sqrt(5)


def test_loss_scale_is_zero_network_loss(memorization):
    W = np.zeros((6, 2))
    assert loss_scale(memorization) == pytest.approx(expected_loss(W, W, memorization, SIGMA, 0.0))


# ----------------------------------------------------------------------------- multistart


def test_multistart_checkpoints_and_skips_finished_starts(tmp_path, memorization):
    X = memorization
    folder = str(tmp_path / "starts")
    first = multistart(X, 4, SIGMA, LAM, n_starts=3, workers=1, checkpoint_dir=folder, tied=True)
    assert first.computed == 3 and first.losses.shape == (3,)
    assert first.converged.all()
    again = multistart(X, 4, SIGMA, LAM, n_starts=3, workers=1, checkpoint_dir=folder, tied=True)
    assert again.computed == 0
    np.testing.assert_array_equal(again.losses, first.losses)
    os.remove(os.path.join(folder, "start_0001.json"))
    third = multistart(X, 4, SIGMA, LAM, n_starts=3, workers=1, checkpoint_dir=folder, tied=True)
    assert third.computed == 1
    assert third.losses[1] == pytest.approx(first.losses[1], rel=1e-12)
    with open(os.path.join(folder, "start_0000.json"), encoding="utf-8") as stream:
        meta = json.load(stream)
    assert meta["sigma"] == SIGMA and meta["lam"] == LAM and meta["tied"] is True
    levels = third.loss_levels()
    assert sum(count for _, count in levels) == 3
    with pytest.raises(ValueError, match="another run"):
        multistart(X, 4, SIGMA, 2 * LAM, n_starts=3, workers=1, checkpoint_dir=folder, tied=True)


@pytest.mark.slow
def test_multistart_on_two_workers(memorization):
    out = multistart(memorization, 4, SIGMA, LAM, n_starts=4, workers=2, tied=True)
    serial = multistart(memorization, 4, SIGMA, LAM, n_starts=4, workers=1, tied=True)
    np.testing.assert_allclose(out.losses, serial.losses, rtol=1e-12)


@pytest.mark.slow
def test_multistart_survives_kill_midway(tmp_path):
    """Kill the process after two starts finished; the rerun computes only the rest."""
    folder = tmp_path / "run"
    script = textwrap.dedent(f"""
        import numpy as np
        from numerics.data import separable_clusters
        from numerics.solvers import multistart
        data = separable_clusters(8, [6, 6, 6], alpha=0.1, beta=None, norm=3.0, seed=1)
        out = multistart(data.X, 6, 0.2, 0.01, n_starts=16, workers=2, tied=False,
                         checkpoint_dir={str(folder)!r}, labels=data.labels)
        print("computed", out.computed)
    """)
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    process = subprocess.Popen([sys.executable, "-c", script], env=env, start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline:
        if folder.exists() and len(list(folder.glob("start_*.json"))) >= 2:
            break
        time.sleep(0.01)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    finished = sorted(p.name for p in folder.glob("start_*.json"))
    assert 2 <= len(finished) < 16
    before = {name: (folder / name).stat().st_mtime_ns for name in finished}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                          timeout=600)
    assert f"computed {16 - len(finished)}" in done.stdout, done.stdout + done.stderr
    for name, stamp in before.items():
        assert (folder / name).stat().st_mtime_ns == stamp


# ----------------------------------------------------------------------------- reduction


def test_invariant_basis_reduction_is_exact():
    """L(B V1, B V2; X) = L(V1, V2; BᵀX) and the gradient lies in span(B) (rotation invariance)."""
    rng = np.random.default_rng(9)
    X = rng.normal(size=(12, 3))
    W1, W2 = rng.normal(size=(12, 2)), rng.normal(size=(12, 2))
    B = invariant_basis(X, W1, W2)
    assert B.shape == (12, 7)
    np.testing.assert_allclose(B.T @ B, np.eye(7), atol=1e-14)
    V1, V2, C = B.T @ W1, B.T @ W2, B.T @ X
    from numerics.objective import expected_loss_and_grad

    full = expected_loss_and_grad(W1, W2, X, SIGMA, LAM)
    small = expected_loss_and_grad(V1, V2, C, SIGMA, LAM)
    assert small[0] == pytest.approx(full[0], rel=1e-13)
    for g_full, g_small in zip(full[1:], small[1:]):
        np.testing.assert_allclose(B @ g_small, g_full, atol=1e-12 * np.abs(g_full).max())


def test_reduced_and_full_training_agree():
    X = memorization_set(12, 3, norm=[3.0, 2.5, 2.0], seed=0)      # rank 2, d = 12
    reduced = train(X, 4, SIGMA, LAM, seed=1, tied=False, reduce=True)
    full = train(X, 4, SIGMA, LAM, seed=1, tied=False, reduce=False)
    assert reduced.stages[0].startswith("reduced") and reduced.converged and full.converged
    assert reduced.loss == pytest.approx(full.loss, rel=1e-9)


def test_warmup_then_exact(memorization):
    fit = train(memorization, 4, SIGMA, LAM, seed=0, tied=True, warmup_steps=50, warmup_batch=2)
    assert "mc-warmup(50)" in fit.stages and fit.converged


def test_train_keeps_the_best_iterate_when_the_polish_breaks_down(monkeypatch):
    """SciPy's trust-region subproblem solver can hand NaN directions to the Hessian-vector
    product (seen on nearly singular Hessians); `train` must stop the polish, not crash."""
    import scipy.optimize

    from numerics import solvers
    from numerics.data import memorization_set
    from theory.predict import memorization_weights

    real_minimize = scipy.optimize.minimize

    def minimize_with_nan_direction(fun, x0, **options):
        if options.get("method") == "trust-krylov":
            options["hessp"](x0, np.full_like(x0, np.nan))
        return real_minimize(fun, x0, **options)

    monkeypatch.setattr(solvers.scipy.optimize, "minimize", minimize_with_nan_direction)
    X = memorization_set(2, 2, norm=1.0, seed=1)
    W = memorization_weights(X, 4, 0.4, 0.0)
    fit = solvers.train(X, 4, 0.4, 0.0, tied=True, init=W, perturb=1e-2, gtol=1e-15, max_iter=20)
    assert "trust-krylov" in fit.stages and "non-finite" in fit.message
    assert np.all(np.isfinite(fit.W1)) and np.isfinite(fit.loss)


def test_warmup_is_reproducible(memorization):
    """The warm-up draws its noise on a helper thread; the stream must still be one seeded
    sequence, so two runs give identical weights."""
    runs = [train(memorization, 4, SIGMA, LAM, seed=3, tied=True, warmup_steps=40, warmup_batch=2,
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
    assert fit.stages.count("L-BFGS-B restart") <= 3        # train's default restarts
