"""Table 1, Fig. 5 and Fig. 7 analogs: the ReLU-DAE scores against independent computations,
the checks as functions of their numbers, and figures that need a missing extra skipped."""
from __future__ import annotations

import json

import numpy as np
import pytest

import figures
from figures import FIGURES, buildable, fig7_steering, missing, summary, table1
from figures.__main__ import main
from numerics.compare import representation_std
from numerics.data import hybrid_mixture
from numerics.detection import null_auroc_se
from numerics.multinoise import MultiNoiseDAE
from theory.diffusion import generalizing_denoiser


@pytest.fixture(scope="module")
def denoiser():
    data = hybrid_mixture(d=8, K=2, m=2, rank=2, n=40, n_copies=5, mean_norm=3.0, spread=0.1, seed=0)
    return generalizing_denoiser(data.X, data.labels, "auto", 0.0, p=6, check_assumptions=False), data.X


def test_relu_dae_scores_match_direct_computations(denoiser):
    f, X = denoiser
    samples = X[:, :5] * 1.1
    sigma = 0.17
    scores, seconds, norms = table1.relu_dae_scores(f, samples, sigma, draws=3, seed=4)
    Y = samples + sigma * np.random.default_rng(4).standard_normal(samples.shape)     # the first draw
    H = f.representation(Y, sigma)
    np.testing.assert_array_equal(scores["std"], representation_std(H))
    np.testing.assert_allclose(norms["h_norm"], np.linalg.norm(H, axis=0), rtol=1e-15)
    # The Jacobian W D(y) Wᵀ against central differences of the denoiser itself: away from a
    # ReLU kink it is piecewise linear, so the differences are exact up to rounding
    # (step 1e-6, values O(10): about 1e-16·10/1e-6 ≈ 1e-9).
    W, y, step = f.weights(sigma), Y[:, 0], 1e-6
    assert np.min(np.abs(W.T @ y)[W.any(axis=0)]) > 10 * step * np.abs(W).sum(axis=0).max()   # no kink within reach
    numeric = np.column_stack([(f(y[:, None] + step * e[:, None], sigma) - f(y[:, None] - step * e[:, None], sigma))[:, 0]
                               / (2 * step) for e in np.eye(y.size)])
    assert -scores["jacobian effective rank"][0] == pytest.approx(_effective_rank_of(numeric), rel=1e-6)
    assert set(seconds) == set(scores) and all(value >= 0 for value in seconds.values())


def _effective_rank_of(J) -> float:
    singular = np.linalg.svd(J, compute_uv=False)
    q = singular / singular.sum()
    return float(np.exp(-np.sum(q[q > 0] * np.log(q[q > 0]))))


def test_trained_model_scores_use_its_gains_and_skip():
    """For the multi-noise DAE: h is the authors' rep() (no gain), and the Jacobian rank is that
    of central differences of the model itself (gains and skip included; piecewise linear, so
    exact up to rounding, as above)."""
    model = MultiNoiseDAE.initial(6, 5, seed=1)
    model.b2 = np.linspace(-0.5, 0.5, 5)                 # gains exp(b2) ≠ 1
    model.s = 0.3
    samples = np.random.default_rng(2).normal(size=(6, 4))
    sigma, step = 0.17, 1e-6
    scores, _, facts = table1.relu_dae_scores(model, samples, sigma, draws=2, seed=5)
    Y = samples + sigma * np.random.default_rng(5).standard_normal(samples.shape)
    np.testing.assert_array_equal(scores["std"], representation_std(model.rep(Y)))
    np.testing.assert_array_equal(facts["active"], np.sum(model.W.T @ Y > 0, axis=0))
    y = Y[:, 0]
    assert np.min(np.abs(model.W.T @ y)) > 10 * step * np.abs(model.W).sum(axis=0).max()
    numeric = np.column_stack([(model(y[:, None] + step * e[:, None], sigma) - model(y[:, None] - step * e[:, None], sigma))[:, 0]
                               / (2 * step) for e in np.eye(6)])
    assert -scores["jacobian effective rank"][0] == pytest.approx(_effective_rank_of(numeric), rel=1e-6)


def _part(scale_free_auroc, sparsity_auroc, margin=0.1):
    return dict(premises={"std/||h||": scale_free_auroc, "fewer active neurons": sparsity_auroc, "h norm": 0.4},
                chance_margin=margin, mean_h_norm=dict(memorised=2.0, generalised=3.0),
                mean_active_neurons=dict(memorised=4.3, generalised=6.3), p=16)


def test_std_diagnosis_names_only_the_premises_that_fail_by_the_checks_margin():
    assert table1._std_diagnosis(_part(0.55, 0.9)) is None          # sparser, and scale-free Std no better
    scale = table1._std_diagnosis(_part(0.9, 0.9))
    assert "not scale-free" in scale and "sparser" not in scale
    sparse_only = table1._std_diagnosis(_part(0.55, 0.55))
    assert "4.3 of 16" in sparse_only and "scale-free" not in sparse_only
    assert "not a statement of the paper" in sparse_only


def test_null_auroc_standard_error_matches_a_simulation():
    """Hanley & McNeil's SE against the spread of AUROCs of random scores (400 draws: the
    estimated SE has a relative standard error ≈ 1/√(2·400) ≈ 3.5 %; allow 4 of those)."""
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    truth = np.r_[np.ones(20), np.zeros(60)]
    aurocs = [roc_auc_score(truth, rng.random(80)) for _ in range(400)]
    assert np.std(aurocs, ddof=1) == pytest.approx(null_auroc_se(20, 60), rel=0.14)


def _steering_numbers(rho_generalised, abs_rho=(0.9, 0.6), step=(0.2, 0.6), std=0.02) -> dict:
    def metric(mean):
        return dict(mean=mean, std=std, seeds=3)
    group = {"generalised": dict(n=30, spearman=metric(rho_generalised), abs_spearman=metric(abs_rho[0]),
                                 largest_step_share=metric(step[0])),
             "memorised": dict(n=20, spearman=metric(0.1), abs_spearman=metric(abs_rho[1]),
                               largest_step_share=metric(step[1]))}
    return dict(summary=dict(logit=group))


def test_fig7_checks_hold_on_the_papers_picture_and_fail_on_its_opposite():
    smooth = fig7_steering.checks(_steering_numbers(0.8))
    assert all(c["holds"] for c in smooth) and not any("expected_failure" in c for c in smooth)
    reversed_ = fig7_steering.checks(_steering_numbers(0.8, abs_rho=(0.6, 0.9), step=(0.6, 0.2)))
    assert [c["holds"] for c in reversed_] == [True, False, False]
    assert not any("expected_failure" in c for c in reversed_)          # steering works: real failures
    step_only = fig7_steering.checks(_steering_numbers(0.8, abs_rho=(0.6, 0.9)))     # the measured split
    assert [c["holds"] for c in step_only] == [True, False, True]
    assert "step size only" in step_only[1]["expected_failure"]
    inert = fig7_steering.checks(_steering_numbers(-0.2))
    assert not inert[0]["holds"] and "does not raise the target logit" in inert[0]["expected_failure"]


def test_a_figure_whose_extra_is_missing_is_skipped_not_failed(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(FIGURES, "needs_extra", figures.Figure("figures.table1", "demo", requires=("no_such_module",)))
    assert missing("needs_extra") == ["no_such_module"] and "needs_extra" not in buildable()
    with pytest.raises(ModuleNotFoundError, match="no_such_module"):
        figures.build("needs_extra", None)
    assert main(["needs_extra", "--output", str(tmp_path), "--cache", str(tmp_path), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "needs_extra      skipped: needs no_such_module" in out and "1 skipped" in out
    # the summary does not expect its manifest (the others are missing from this empty folder)
    report = tmp_path / "report.json"
    report.write_text(json.dumps(dict(ok=True, checks=[dict(verdict="confirmed", expected_verdict="confirmed")])))
    assert summary.main(["--proofs", str(report), "--figures", str(tmp_path / "empty")]) == 1
    line = capsys.readouterr().out
    assert "fig4: missing" in line and "needs_extra" not in line
