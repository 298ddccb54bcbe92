"""The proof checks of proofs/diffusion_sampling.py, run as `python -m proofs` runs them."""
from __future__ import annotations

from numerics.threads import single_thread
from proofs.diffusion_sampling import paper_constant_identity, prior_kl  # registers the checks
from proofs.record import CHECKS, CONFIRMED, INCONCLUSIVE, Mode

import numpy as np


def run(name):
    with single_thread():
        return CHECKS[name].run(Mode(quiet=True))


def test_memorising_sampler_returns_training_directions():
    record = run("diffusion_memorising_sampler")
    assert record.source == "derived here" and record.assumptions_met
    assert record.verdict == CONFIRMED, (record.headline, record.notes)
    ve = record.measurement["ve"]
    assert ve["largest_single_active_chordal"] < 1e-12 and ve["l2_ratio"] < ve["cosine_ratio"]


def test_kl_remark_is_inconclusive_and_says_why():
    record = run("diffusion_kl_bound")
    assert record.source == "paper" and record.quote and record.expected_verdict == INCONCLUSIVE
    assert record.verdict == INCONCLUSIVE, (record.headline, record.notes)
    bounds = record.measurement["bounds"]
    assert any(b["below_paper"] for b in bounds) and not all(b["below_paper"] for b in bounds)
    assert any("NOT below" in note for note in record.notes)
    # the integrand E‖f_mem − f_emp‖² two ways (direct Monte Carlo; exact loss minus Monte-Carlo MMSE),
    # within 4.5 combined standard errors
    for row in record.measurement["integrand_cross_checks"]:
        assert abs(row["direct"] - row["exact_minus_mmse"]) <= 4.5 * np.hypot(row["direct_se"], row["mmse_se"]), row
    # quadrature error (nodes vs twice the nodes) far below the Monte-Carlo error
    for b in bounds:
        assert abs(b["score_term"]["quadrature_difference"]) < 0.1 * b["score_term"]["standard_error"]


def test_paper_constant_is_the_memorisation_loss_against_dsigma_over_sigma_squared():
    for norm in (0.5, 4.0, 30.0):
        identity = paper_constant_identity(norm)
        assert abs(identity["integral"] - identity["half_pi_norm"]) < 1e-8 * identity["half_pi_norm"]


def test_prior_term_below_its_convexity_bound():
    X = np.array([[3.0, -3.0], [0.0, 1.0]])
    prior = prior_kl(X, 2.0, 200_000, np.random.default_rng(0))
    assert 0 < prior["mean"] < prior["convexity_bound"]
