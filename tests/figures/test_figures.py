"""Build every figure in --fast mode and hold its manifest to the claims it illustrates.

Each test reads the numbers a figure shows (its JSON manifest) and checks them against the
theory, with the tolerance the figure module states and justifies (MC-noise training,
Theorem 3.1's residual through the flip probability Φ(−γ/σ), the solver's certified
distance to the minimiser). The derived bounds are also tested against an independent
oracle: the minimiser itself, reached by Newton steps from the trained point. The whole file
builds the fast figures once (module fixture, about a minute on two cores).
"""
from __future__ import annotations

import ast
import importlib
import inspect
import json
import os
import subprocess
import sys
import types

import numpy as np
import pytest

import figures
from figures import FIGURES, buildable, fig3_columns, fig4_spikiness, fig6_hybrid, phase, residual, shrinkage, summary
from figures.__main__ import main
from figures.common import Config, as_recorded, cached, check, failing
from figures.models import exact_fit, newton_polish
from numerics.certify import certify
from numerics.data import separable_clusters
from numerics.objective import expected_loss_and_grad
from numerics.spectrum import hessian_matrix
from numerics.compare import cluster_maps
from numerics.geometry import invariant_basis, loss_scale
from numerics.solvers import train
from optional_deps import require
from theory.predict import partition_weights, predict, switching_margin

MANIFEST_KEYS = {"figure", "fast", "seed", "paper", "caption", "parameters", "numbers", "checks", "files"}
EPS = np.finfo(float).eps


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """All figures in --fast mode: (output folder, cache folder, {name: manifest})."""
    root = tmp_path_factory.mktemp("figures")
    output, cache = str(root / "out"), str(root / "cache")
    assert main(["--fast", "--output", output, "--cache", cache, "--no-progress"]) == 0
    manifests = {}
    for name in buildable():
        with open(os.path.join(output, f"{name}.json"), encoding="utf-8") as stream:
            manifests[name] = json.load(stream)
    return output, cache, manifests


def manifest_of(built, name: str) -> dict:
    """The fixture's manifest of ``name``; a figure of the [torch] extra is skipped without it
    (locally; under CI a missing extra is an error, `optional_deps.require`)."""
    for module in FIGURES[name].requires:
        require(module)
    return built[2][name]


def fast_config(built) -> Config:
    """The fixture's settings, so that trained models come from its cache."""
    return Config(output=built[0], cache=built[1], fast=True)


def proof_report(tmp_path, verdicts=(("confirmed", "confirmed"),), ok=True) -> str:
    """A proof report in the format of ``python -m proofs`` (only the fields the summary reads)."""
    path = tmp_path / "report.json"
    path.write_text(json.dumps(dict(ok=ok, checks=[dict(verdict=v, expected_verdict=e) for v, e in verdicts])))
    return str(path)


# ----------------------------------------------------------------------------- files and protocol


@pytest.mark.parametrize("name", list(FIGURES))
def test_every_figure_has_png_pdf_and_manifest(built, name):
    manifest = manifest_of(built, name)
    output = built[0]
    for ext in ("png", "pdf", "json"):
        path = os.path.join(output, f"{name}.{ext}")
        assert os.path.getsize(path) > 1000, path
    with open(os.path.join(output, f"{name}.png"), "rb") as stream:
        assert stream.read(8) == b"\x89PNG\r\n\x1a\n"
    assert set(manifest) == MANIFEST_KEYS
    assert manifest["figure"] == name and manifest["fast"] is True and manifest["seed"] == 0
    assert manifest["caption"] and manifest["paper"] and manifest["parameters"] and manifest["numbers"]
    assert manifest["checks"] and manifest["files"] == [f"{name}.{ext}" for ext in ("png", "pdf", "json")]


@pytest.mark.parametrize("name", list(FIGURES))
def test_every_claim_in_the_manifest_holds(built, name):
    """Every check holds, except those marked as expected failures, which state their reason."""
    checks = manifest_of(built, name)["checks"]
    assert not failing(checks), failing(checks)
    assert all(c["expected_failure"].strip() for c in checks if not c["holds"])


@pytest.mark.parametrize("name", list(FIGURES))
def test_checks_are_a_pure_function_of_the_saved_manifest(built, name):
    """Re-running a module's checks on the saved manifest reproduces the saved checks exactly."""
    manifest = manifest_of(built, name)
    module = importlib.import_module(FIGURES[name].module)
    numbers = dict(manifest["numbers"], paper=manifest["paper"], caption=manifest["caption"],
                   parameters=manifest["parameters"])
    assert as_recorded(module.checks(numbers)) == manifest["checks"]


def test_figure_modules_never_import_pyplot_or_set_a_backend():
    """Figures are drawn on matplotlib.figure.Figure: no pyplot state, no backend set per module."""
    for module in {entry.module for entry in FIGURES.values()} | {"figures.common", "figures.models"}:
        tree = ast.parse(inspect.getsource(importlib.import_module(module)))
        imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        imported |= {f"{node.module}.{alias.name}" for node in ast.walk(tree)
                     if isinstance(node, ast.ImportFrom) and node.module for alias in node.names}
        assert not {"matplotlib.pyplot", "matplotlib.use"} & imported, module
        assert "matplotlib.use(" not in inspect.getsource(importlib.import_module(module)), module




def test_no_temporary_files_left(built):
    output, cache, _ = built
    for folder in (output, cache):
        assert not [f for f in os.listdir(folder) if f.startswith(".tmp-")]


def test_cache_entries_hold_their_parameters(built):
    _, cache, _ = built
    entries = [f for f in os.listdir(cache) if f.endswith(".json")]
    assert entries
    for entry in entries:
        with open(os.path.join(cache, entry), encoding="utf-8") as stream:
            meta = json.load(stream)
        assert entry.startswith(meta["kind"] + "-") and meta["params"]
        assert os.path.exists(os.path.join(cache, entry[:-5] + ".npz"))


def test_rebuild_reuses_the_cache_and_is_deterministic(built, tmp_path):
    """Same seed: a rebuild from the cache and a rebuild from scratch give the same numbers."""
    output, cache, manifests = built
    before = sorted(os.listdir(cache))
    assert main(["fig4", "residual", "--fast", "--output", str(tmp_path / "a"), "--cache", cache,
                 "--no-progress"]) == 0
    assert sorted(os.listdir(cache)) == before                    # nothing retrained
    assert main(["fig4", "residual", "--fast", "--output", str(tmp_path / "b"), "--cache",
                 str(tmp_path / "fresh"), "--no-progress"]) == 0
    for name in ("fig4", "residual"):
        for folder in ("a", "b"):
            with open(tmp_path / folder / f"{name}.json", encoding="utf-8") as stream:
                assert json.load(stream)["numbers"] == manifests[name]["numbers"], (name, folder)


# ----------------------------------------------------------------------------- command line


def test_cli_lists_figures_and_rejects_unknown_names(capsys):
    assert main(["--list"]) == 0
    listed = capsys.readouterr().out
    assert all(name in listed for name in FIGURES)
    with pytest.raises(SystemExit) as exit_info:
        main(["no_such_figure"])
    assert exit_info.value.code == 2


def test_cli_rejects_a_negative_seed_without_a_traceback():
    out = subprocess.run([sys.executable, "-m", "figures", "--seed", "-5"], capture_output=True, text=True)
    assert out.returncode == 2
    assert "argument --seed" in out.stderr and "integer >= 0" in out.stderr
    assert "Traceback" not in out.stderr


def test_cli_rejects_zero_workers_and_a_malformed_dask_address(capsys):
    for argv, named in ((["--workers", "0"], "argument --workers"), (["--dask", "not an address"], "--dask")):
        with pytest.raises(SystemExit) as exit_info:
            main(["residual", "--fast", *argv])
        assert exit_info.value.code == 2
        assert named in capsys.readouterr().err


@pytest.mark.parametrize("executor", [["--workers", "2"],
                                      pytest.param(["--dask", "local", "--workers", "2"], marks=pytest.mark.slow)])
def test_sweeps_give_the_same_numbers_on_every_executor(built, tmp_path, executor):
    """The figures' sweeps (phase cells, residual points, memorisation-vs-n cells) on 2 local
    processes or a 2-worker LocalCluster: the same numbers as the fixture's run in this process."""
    names = ["residual", "memorisation_vs_n"]
    assert main([*names, "--fast", "--output", str(tmp_path / "out"), "--cache", str(tmp_path / "cache"),
                 "--no-progress", *executor]) == 0
    for name in names:
        with open(tmp_path / "out" / f"{name}.json", encoding="utf-8") as stream:
            assert json.load(stream)["numbers"] == built[2][name]["numbers"], name


def test_cli_rejects_an_unwritable_output_before_any_work(tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    output = str(blocker / "figures")
    monkeypatch.setattr(figures, "build", lambda *args: pytest.fail("a figure was built"))
    with pytest.raises(SystemExit) as exit_info:
        main(["fig4", "--output", output, "--cache", str(tmp_path / "cache"), "--fast"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "--output" in err and output in err
    assert not (tmp_path / "cache").exists()               # nothing created either


def test_cli_error_names_the_unwritable_folder(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(SystemExit):
        main(["--cache", str(blocker), "--output", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert "--cache" in err and str(blocker) in err


@pytest.mark.parametrize("damage", ["garbage arrays", "truncated json", "json without info"])
def test_corrupt_cache_entry_warns_and_is_recomputed(tmp_path, damage):
    config = Config(output=str(tmp_path / "out"), cache=str(tmp_path / "cache"))
    calls = []

    def compute():
        calls.append(1)
        return dict(W=np.arange(3.0)), dict(loss=0.5)

    cached(config, "unit", dict(a=1), compute)
    [npz] = [f for f in os.listdir(config.cache) if f.endswith(".npz")]
    path = os.path.join(config.cache, npz)
    if damage == "garbage arrays":
        with open(path, "wb") as stream:
            stream.write(b"garbage")
    else:
        path = path[:-4] + ".json"
        with open(path, "w", encoding="utf-8") as stream:
            stream.write('{"kind": "unit", "para' if damage == "truncated json" else '{"kind": "unit"}')
    with pytest.warns(RuntimeWarning, match=os.path.basename(path)):
        arrays, info = cached(config, "unit", dict(a=1), compute)
    assert len(calls) == 2 and arrays["W"].tolist() == [0.0, 1.0, 2.0] and info == dict(loss=0.5)
    assert cached(config, "unit", dict(a=1), compute)[1] == dict(loss=0.5) and len(calls) == 2   # repaired


def test_a_broken_bound_fails_the_build_and_the_summary(built, tmp_path, monkeypatch, capsys):
    """A check that does not hold makes ``python -m figures NAME`` and the summary exit non-zero."""
    _, cache, _ = built
    honest = residual.checks

    def broken(numbers):
        gap = max(point["loss_gap"] for point in numbers["points"])
        return honest(numbers) + [check("deliberately broken: loss gap <= 0", gap, 0.0, gap <= 0.0)]

    monkeypatch.setattr(residual, "checks", broken)
    output = str(tmp_path / "out")
    assert main(["residual", "--fast", "--output", output, "--cache", cache, "--no-progress"]) == 1
    printed = capsys.readouterr().out
    assert "DOES NOT HOLD: deliberately broken: loss gap <= 0" in printed and "bound 0.0" in printed
    assert summary.main(["--proofs", proof_report(tmp_path), "--figures", output, "residual"]) == 1
    assert capsys.readouterr().out.strip() == \
        "make run: claims as expected 1/1, figure checks 4/5 hold (residual: 1 do not hold)"


def test_an_expected_failure_needs_a_reason_and_does_not_fail_the_build(tmp_path, monkeypatch, capsys):
    with pytest.raises(ValueError, match="reason"):
        check("a claim", 1, 0, False, expected_failure=" ")

    def compute(config):
        return dict(paper="beyond", caption="c", parameters=dict(), value=1.0)

    def draw(numbers):
        from matplotlib.figure import Figure
        return Figure(figsize=(1, 1))

    def checks(numbers):
        return [check("value <= 0", numbers["value"], 0.0, False, expected_failure="a known, stated limitation")]

    module = types.SimpleNamespace(compute=compute, draw=draw, checks=checks)
    monkeypatch.setitem(sys.modules, "expected_failure_demo", module)
    monkeypatch.setitem(FIGURES, "demo", figures.Figure("expected_failure_demo", "a figure with a stated limitation"))
    assert main(["demo", "--output", str(tmp_path), "--cache", str(tmp_path), "--no-progress"]) == 0
    assert "expected to fail: value <= 0 (a known, stated limitation)" in capsys.readouterr().out
    with open(tmp_path / "demo.json", encoding="utf-8") as stream:
        manifest = json.load(stream)
    assert manifest["checks"][0]["expected_failure"] == "a known, stated limitation"
    line, ok = summary.summarise(dict(ok=True, checks=[dict(verdict="x", expected_verdict="x")]), {"demo": manifest})
    assert ok and line.endswith("figure checks 0/1 hold, 1 expected to fail")


def test_summary_fails_on_missing_or_unexpected_reports(built, tmp_path, capsys):
    output = built[0]
    assert summary.main(["--proofs", proof_report(tmp_path), "--figures", output]) == 0
    checks = [c for m in built[2].values() for c in m["checks"]]
    held = sum(c["holds"] for c in checks)
    expected = len(checks) - held                   # every other check is a stated expected failure
    line = f"make run: claims as expected 1/1, figure checks {held}/{len(checks)} hold"
    assert capsys.readouterr().out.strip() == line + (f", {expected} expected to fail" if expected else "")
    assert summary.main(["--proofs", str(tmp_path / "none.json"), "--figures", output]) == 1
    assert "missing" in capsys.readouterr().out
    unexpected = proof_report(tmp_path, verdicts=[("confirmed", "confirmed"), ("refuted", "confirmed")], ok=False)
    assert summary.main(["--proofs", unexpected, "--figures", output]) == 1
    assert "claims as expected 1/2" in capsys.readouterr().out
    assert summary.main(["--proofs", proof_report(tmp_path), "--figures", str(tmp_path / "empty"), "fig4"]) == 1
    assert "fig4: missing" in capsys.readouterr().out


# ----------------------------------------------------------------------------- claims, figure by figure


def test_fig3_memorising_columns_are_training_samples(built):
    """Cor. 3.2: the memorising model's columns copy the training samples (cosine >= 0.99)."""
    numbers = built[2]["fig3"]["numbers"]
    for key in ("faces_memorising", "mixture_memorising"):
        theory = numbers[key]["theory"]
        assert all(theory["memorised"]), key
        assert theory["largest_columns_one_per_sample"]
        assert theory["largest_columns_min_cosine"] >= fig3_columns.MEMORISED_COSINE
    # The exact minimiser reached from the protocol's weights: eq. (9) within the bound the
    # module states (SOLVER_FLOOR for the stopping point + the flip probability for Theorem 3.1).
    polish = numbers["mixture_memorising"]["exact_polish"]
    assert all(polish["memorised"])
    assert max(polish["relative_error"]) <= fig3_columns.SOLVER_FLOOR + polish["flip_probability"]


def test_fig3_generalising_columns_copy_no_sample(built):
    numbers = built[2]["fig3"]["numbers"]
    for key in ("faces_generalising", "mixture_generalising"):
        assert numbers[key]["theory"]["specific_columns"] == 0
        assert max(numbers[key]["column_max_cosine"]) < fig3_columns.MEMORISED_COSINE


@pytest.mark.parametrize("name", ["fig3_sigma1", "fig3_sigma5"])
def test_appb1_same_structure_at_large_sigma(built, name):
    """App. B.1: one column per training sample at sigma = 1 and 5 (protocol), eq. (9) after exact polish."""
    numbers = built[2][name]["numbers"]
    for key in ("faces_memorising", "mixture_memorising"):
        assert numbers[key]["theory"]["largest_columns_one_per_sample"]
        assert numbers[key]["theory"]["largest_columns_min_cosine"] >= fig3_columns.STRUCTURE_COSINE
    polish = numbers["mixture_memorising"]["exact_polish"]
    assert all(polish["memorised"])
    assert max(polish["relative_error"]) <= fig3_columns.SOLVER_FLOOR + polish["flip_probability"]


def test_fig4_memorised_representations_are_spikier(built):
    numbers = built[2]["fig4"]["numbers"]
    for dataset in ("faces", "mixture"):
        mem, gen = numbers[dataset]["memorising"], numbers[dataset]["generalising"]
        assert mem["std"]["median"] > gen["std"]["median"]
        assert mem["participation_ratio"]["median"] < gen["participation_ratio"]["median"]
        assert numbers[dataset]["auroc_norm_ratio"] >= 0.95
        # Spike height ||h||_2 against Cor. 3.2's E[h_i]: SPIKE_TOLERANCE (MC-noise training, see fig4 module).
        predicted = np.asarray(mem["spike_predicted_per_sample"])
        measured = np.asarray(mem["spike_height_median_per_sample"])
        assert np.all(np.abs(measured - predicted) <= fig4_spikiness.SPIKE_TOLERANCE * predicted)
    gen = numbers["mixture"]["generalising"]
    assert abs(gen["std_median"] - gen["predicted_std_median"]) <= \
        fig4_spikiness.STD_TOLERANCE * gen["predicted_std_median"]


def test_fig4_uses_the_one_home_of_representation_statistics():
    import figures.common
    import numerics.compare

    assert not hasattr(figures.common, "representation_std")
    for name in ("representation_std", "norm_ratio", "participation_ratio"):
        assert getattr(fig4_spikiness, name) is getattr(numerics.compare, name)


def test_fig6_duplicates_memorised_rest_generalised(built):
    """Cor. 3.4: each duplicate owns a column (cosine >= 0.99); the modes' maps are eq. (8)'s."""
    numbers = built[2]["fig6"]["numbers"]
    assert min(numbers["duplicate_column_cosine"]) >= fig6_hybrid.MEMORISED_COSINE
    assert numbers["duplicate_active_only_on_copies"]
    assert numbers["certificate"]["verdict"] == "strict local minimum"
    # Theorem 3.1's residual at the block point is of the order of the flip probability (in
    # units of the loss scale); its gradient is what the map bound charges for it.
    assert numbers["certificate"]["block_grad_norm"] > 0


def gradient_along_newton_directions(X, W, sigma, lam, rel_eig_tol=1e-6):
    """‖∇L‖/L0 at tied W split along the Hessian's eigen-directions that `newton_polish` steps in
    (curvature above ``rel_eig_tol·λ_max``) and those it skips, in the same invariant basis."""
    basis = invariant_basis(X, W)
    C, V = basis.T @ X, basis.T @ W
    _, g1, g2 = expected_loss_and_grad(V, V, C, sigma, lam)
    values, vectors = np.linalg.eigh(hessian_matrix(V, V, C, sigma, lam, tied=True))
    along = vectors.T @ (g1 + g2).ravel()
    kept = values > rel_eig_tol * values[-1]
    return np.linalg.norm(along[kept]) / loss_scale(X), np.linalg.norm(along[~kept]) / loss_scale(X)


def test_fig6_block_point_is_within_its_certified_distance_of_the_minimiser(built):
    """Oracle for the Theorem 3.1 half of fig6's bound: the minimiser W*_B near the block point B.

    The module's argument: ``‖A_k(W*_B) − A_k(B)‖_F ≤ (2‖B_k‖₂ + δ_B)δ_B``, ``δ_B = ‖∇L(B)‖/μ_B``,
    to first order in δ_B (~1e-6 here). W*_B is reached by Newton steps from B (B's unused
    columns stay zero): along every direction they step in, the gradient falls far past the
    solver's gtol. What they leave is the gradient along the directions `newton_polish` skips
    (curvature below 1e-6·λ_max): the near-rotations inside blocks (Theorem 3.1's O_k, flat up to
    the switching residual), on which every A_k = B_k B_kᵀ is constant, and the unused columns'
    negative curvature. The other half (the trained point's own distance ‖∇L(W)‖/μ) is tested
    on the residual figure's data below.
    """
    numbers = built[2]["fig6"]["numbers"]
    par = fig6_hybrid.settings(Config(fast=True))
    data = fig6_hybrid.hybrid_data(par)
    X, labels = data.X, data.labels
    B = fig6_hybrid.block_point(X, labels, numbers["clusters"], par["p"])
    B_star, info = newton_polish(X, B, par["sigma"], par["lam"], gtol=1e-9)
    assert info["newton_steps"] >= 1
    stepped, skipped = gradient_along_newton_directions(X, B_star, par["sigma"], par["lam"])
    assert stepped <= 1e-9
    # an orthogonal split of the gradient newton_polish reports: equal up to rounding
    assert np.hypot(stepped, skipped) == pytest.approx(info["rel_grad_norm"], rel=1e-9)
    certificate = numbers["certificate"]
    delta = certificate["block_grad_norm"] / certificate["block_min_eigenvalue"]
    maps, maps_star = cluster_maps(B, B, X, labels, rule="owner"), cluster_maps(B_star, B_star, X, labels, rule="owner")
    for k, A in maps.items():
        spectral = np.sqrt(np.linalg.eigvalsh(A)[-1])                    # ‖B_k‖₂, as A_k = B_k B_kᵀ
        assert np.linalg.norm(maps_star[k] - A) <= (2 * spectral + delta) * delta, k


def test_appb3_jacobian_rank(built):
    numbers = built[2]["appb3_jacobian"]["numbers"]
    mem = numbers["mixture_memorising"]
    assert mem["effective_rank_median"] <= 1.5
    # 10%: the figure's stated tolerance for MC-noise training (see appb3_jacobian's checks).
    assert abs(mem["singular_values_median"][0] - mem["predicted_singular_values"][0]) \
        <= 0.1 * mem["predicted_singular_values"][0]
    assert mem["top_vector_cosine_median"] >= 0.95
    for key in ("faces_generalising", "mixture_generalising"):
        assert numbers[key]["effective_rank_median"] >= 2.0


def test_shrinkage_matches_eq8_and_eq9(built):
    numbers = built[2]["shrinkage"]["numbers"]
    for fit in numbers["memorisation"]["fits"]:
        assert all(fit["memorised"])
        if fit["flip_probability"] <= shrinkage.FLIP_VALID:
            assert max(fit["shrinkage_relative_error"]) <= shrinkage.TOLERANCE
    for fit in numbers["generalisation"]["fits"]:
        assert fit["mixed_columns"] == 0
        assert fit["relative_error"] <= 1e-4 + 10 * fit["flip_probability"]


def test_phase_diagram_follows_the_allocation_rule(built):
    """No random start reaches another allocation with a lower loss than the rule's fit.

    "Lower" beyond the rule fit's precision ``‖∇L‖²/(2μ)``: its loss is at most that far above
    the minimum it stopped near (μ certified per cell). Random starts can reach minima with the
    rule's neuron counts but an unbalanced O_k and a lower loss (0.1–0.4% in some cells of the
    full diagram), so the claim is about allocations.
    """
    numbers = built[2]["phase"]["numbers"]
    assert numbers["agreement_regime"] == 1.0
    cells = [cell for row in numbers["over_copies"] + numbers["over_sigma"] for cell in row]
    for cell in cells:
        rule = cell["rule_start"]
        assert rule["verdict"] == "strict local minimum"            # so μ > 0 and the precision is finite
        if tuple(cell["trained"]) != tuple(cell["predicted"]):
            assert cell["best_loss"] >= rule["loss"] - rule["loss_precision"], cell


def test_phase_loss_precision_bounds_the_way_to_the_minimum(built):
    """Oracle for phase's precision: Newton steps from the rule's fit lower its loss by at most ‖∇L‖²/(2μ)."""
    numbers = built[2]["phase"]["numbers"]
    cells = [cell for row in numbers["over_copies"] + numbers["over_sigma"] for cell in row]
    cell = max(cells, key=lambda c: c["rule_start"]["loss_precision"])
    data = phase.dataset(cell["n_copies"], 0)
    start = predict(data.X, data.labels, cell["p"], cell["sigma"], phase.LAM, check_assumptions=False).W
    fit = exact_fit(fast_config(built), data.X, cell["p"], cell["sigma"], phase.LAM, seed=0, init=start, perturb=0.05,
                    gtol=phase.GTOL, max_iter=phase.MAX_ITER)
    assert fit["loss"] == cell["rule_start"]["loss"]                     # the same fit, from the cache
    _, info = newton_polish(data.X, fit["W"], cell["sigma"], phase.LAM, gtol=1e-12)
    # Rounding of the two loss values: a few eps times the loss scale L0, whose ‖x_i‖² terms
    # cancel in eq. (6) (≈ 8 eps·L0 measured on the residual figure's data); 100 eps·L0 here.
    rounding = 100 * EPS * loss_scale(data.X)
    assert 0 <= fit["loss"] - info["loss"] + rounding
    assert fit["loss"] - info["loss"] <= cell["rule_start"]["loss_precision"] + rounding


def test_residual_decays_with_gamma_over_sigma(built):
    numbers = built[2]["residual"]["numbers"]
    points = numbers["points"]
    assert all(p["converged"] for p in points)
    assert 0.25 <= numbers["fitted_exponent"] <= 1.0
    assert all(p["residual"] <= p["flip_probability"] + residual.FLOOR for p in points)
    gaps = [p["loss_gap"] for p in sorted(points, key=lambda p: p["gamma2_over_sigma2"])]
    assert gaps[-1] < 1e-3 * gaps[0]


def test_newton_polish_goes_past_the_loss_resolution_floor():
    """At σ ≈ 0.29 on the residual figure's clusters L-BFGS stops near ‖∇L‖/L0 ≈ 2.5e-8, where the
    loss changes by ~1e-15 along the stiff directions; Newton steps on the gradient go on to a
    strict local minimum at 1e-9 (ten times below the figure's gtol), and do not raise the loss
    beyond its rounding."""
    data = separable_clusters(residual.D, residual.SIZES, alpha=residual.ALPHA, norm=residual.NORM, seed=0)
    X, labels = data.X, data.labels
    gamma0 = switching_margin(partition_weights(X, labels, list(residual.P_K), 0.3, residual.LAM), X)
    sigma = gamma0 / np.sqrt(2.0 + 4 * 38.0 / 9)                      # the fifth sigma of the full grid
    W_b = partition_weights(X, labels, list(residual.P_K), sigma, residual.LAM)
    fit = train(X, sum(residual.P_K), sigma, residual.LAM, tied=True, init=W_b, gtol=residual.GTOL,
                max_iter=residual.MAX_ITER)
    assert fit.rel_grad_norm > 1e-9
    W, info = newton_polish(X, fit.W1, sigma, residual.LAM, gtol=1e-9)
    loss, g1, g2 = expected_loss_and_grad(W, W, X, sigma, residual.LAM)
    assert info["converged"] and np.linalg.norm(g1 + g2) / loss_scale(X) <= 1e-9
    # Rounding noise of eq. (6) here: ≈ 1.7e-15 ≈ 8 eps·L0 (scatter about a quadratic, see
    # figures.residual); 100 eps·L0 leaves a margin of ten.
    assert loss <= fit.loss + 100 * EPS * loss_scale(X)
    report = certify(fit.W1, fit.W1, X, sigma, residual.LAM, tied=True, gtol=1e-6)
    assert report.verdict == "strict local minimum"
    assert certify(W, W, X, sigma, residual.LAM, tied=True, gtol=1e-8).verdict == "strict local minimum"
    # fig6's first half on this data: the stopped fit's map is within (2‖W‖₂ + δ)δ of the
    # minimiser's, δ = ‖∇L(W)‖/μ (μ off the symmetry directions, from certify at the fit).
    delta = fit.grad_norm / report.min_eigenvalue
    bound = (2 * np.linalg.norm(fit.W1, 2) + delta) * delta
    assert np.linalg.norm(fit.W1 @ fit.W1.T - W @ W.T) <= bound
