"""The proof checks of ``proofs/`` under pytest: the same registry ``python -m proofs`` runs.

Every registered claim is one test. Claims the package verifies must come out
"confirmed"; errata must come out "refuted" — asserted explicitly with the evidence in the
message, never hidden. The allocation check (16 random starts × 30 instances) is ``slow``.
"""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

from proofs import CHECKS, Mode
from proofs.__main__ import main
from numerics.threads import single_thread
from proofs.common import _flip_second_moment, decomposition, orthogonal_clusters
from proofs.record import CONFIRMED, Check, CheckRecord, claim

MODE = Mode(quiet=True)


def run_check(name: str) -> CheckRecord:
    with single_thread():
        return CHECKS[name].run(MODE)


def evidence(record: CheckRecord) -> str:
    return f"{record.name}: {record.verdict} — {record.headline}; notes: {record.notes}"


def _all_params():
    return [pytest.param(name, marks=[pytest.mark.slow] if check.slow else [], id=name)
            for name, check in CHECKS.items()]


@pytest.mark.parametrize("name", _all_params())
def test_verdict_is_the_expected_one(name):
    """Every record comes out as the package asserts, with its numbers; a confirmation needs its assumptions."""
    record = run_check(name)
    assert record.verdict == record.expected_verdict, evidence(record)
    assert record.headline and record.measurement, "a verdict must carry its numbers"
    if record.verdict == CONFIRMED:
        assert record.assumptions_met, evidence(record)


def test_every_claim_of_the_issue_has_a_check():
    expected = {"definition_3_1", "lemma_d1", "theorem_3_1", "theorem_d2", "corollary_3_2", "corollary_3_3",
                "corollary_3_4", "corollary_d4", "representation", "allocation_rule", "errata_cor33_printed_bound",
                "errata_sigma_vs_sigma_sq", "memorised_loss_threshold", "representation_spike", "saddle_decay",
                "corollary_3_2_small_decay", "theorem_3_1_tied_factors", "diffusion_structure"}
    assert expected <= set(CHECKS)


# ----------------------------------------------------------------------------- the runner and reports


def test_cli_writes_both_reports_atomically(tmp_path, capsys):
    assert main(["--only", "definition_3_1", "--only", "lemma_d1", "--output", str(tmp_path)]) == 0
    payload = json.loads((tmp_path / "report.json").read_text())
    assert payload["ok"] and [c["name"] for c in payload["checks"]] == ["definition_3_1", "lemma_d1"]
    assert payload["checks"][0]["assumptions"]["β < 0"][2] is True
    assert "## `lemma_d1`" in (tmp_path / "report.md").read_text()
    assert sorted(os.listdir(tmp_path)) == ["report.json", "report.md"]           # no temporary left over
    assert "definition_3_1" in capsys.readouterr().out


def test_cli_exits_nonzero_when_a_verdict_is_unexpected(tmp_path, monkeypatch):
    def wrong(record, mode):
        record.headline = "deliberately inconclusive"

    monkeypatch.setitem(CHECKS, "dummy", Check("dummy", "dummy", "a claim", "eq. (0)", CONFIRMED, wrong, False,
                                               source="derived here"))
    assert main(["--only", "dummy", "--output", str(tmp_path)]) == 1
    assert json.loads((tmp_path / "report.json").read_text())["ok"] is False


def test_a_crashing_check_is_reported_as_error():
    def crash(record, mode):
        raise RuntimeError("boom")

    record = Check("crash", "crash", "a claim", "eq. (0)", CONFIRMED, crash, False).run(MODE)
    assert record.verdict == "error" and not record.ok and "boom" in record.notes[0]


def test_unmet_assumptions_make_a_verdict_inconclusive_and_say_what_was_found():
    record = CheckRecord("x", "claim", "eq. (0)")
    record.assume("β < 0", 0.3, "< 0", False)
    assert record.decide(confirmed=True) == "inconclusive"
    assert "beyond" in record.notes[0] and "claim holds" in record.notes[0]


def test_registering_a_name_twice_is_an_error():
    with pytest.raises(ValueError, match="twice"):
        claim("lemma_d1", title="", statement="", equations="", source="derived here")(lambda record, mode: None)


@pytest.mark.parametrize("kwargs, message", [
    (dict(source="the paper"), "source must be one of"),
    (dict(source="paper"), "printed words"),
    (dict(source="appendix, second-hand", expected="refuted"), "cannot be expected 'refuted'"),
    (dict(source="derived here", expected="typo"), "cannot be expected 'typo'"),
    (dict(source="derived here", weights="both"), "weights must be"),
])
def test_attribution_is_checked_at_registration(kwargs, message):
    with pytest.raises(ValueError, match=message):
        claim("new_claim", title="", statement="", equations="", **kwargs)


def test_every_registered_claim_is_attributed():
    for check in CHECKS.values():
        assert check.source in ("paper", "appendix, second-hand", "derived here"), check.name
        if check.source == "paper":
            assert check.quote.strip(), check.name


# ----------------------------------------------------------------------------- shared tools


def test_flip_second_moment_matches_monte_carlo():
    """E[a² 1(sign a ≠ sign m)] closed form against 10⁶ draws (tolerance: 5 standard errors)."""
    rng = np.random.default_rng(0)
    for m, s in ((0.7, 0.5), (-1.2, 0.8), (0.1, 1.0)):
        a = m + s * rng.standard_normal(1_000_000)
        samples = a ** 2 * (np.sign(a) != np.sign(m))
        exact = _flip_second_moment(np.array([m]), np.array([s]))[0]
        assert abs(samples.mean() - exact) < 5 * samples.std() / 1e3


def test_decomposition_is_exact_without_noise_and_bounded_with_it():
    X, labels = orthogonal_clusters(5, [4, 3], [2, 1], alpha=0.2, norms=2.0, seed=3)
    from theory.predict import partition_weights

    W = partition_weights(X, labels, [2, 1], 0.3, 1e-3)
    with single_thread():
        clean = decomposition(W, W, X, labels, 0.0, 1e-3)
        noisy = decomposition(W, W, X, labels, 0.3, 1e-3)
    assert clean["stable"] and abs(clean["epsilon"]) <= clean["bound"] <= 1e-11 * clean["exact"]   # rounding only
    assert noisy["stable"] and abs(noisy["epsilon"]) <= noisy["bound"]


def test_orthogonal_clusters_are_separable_with_the_requested_alpha():
    from numerics.data import separability

    X, labels = orthogonal_clusters(8, [5, 4, 1], [2, 2, 0], alpha=0.3, norms=[1.0, 2.0, 3.0], seed=1)
    measured = separability(X, labels)
    assert measured.alpha == pytest.approx(0.3) and measured.beta == pytest.approx(-0.5)
    means = measured.means
    spread = X - means[:, labels]
    assert np.abs(means.T @ spread).max() < 1e-12                       # spreads ⟂ every mean
