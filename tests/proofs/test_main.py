"""``python -m proofs --dask ADDRESS|local --cache DIR``: sweeps of the checks on Dask, resumable; bad addresses
fail before any work with a message naming them."""
from __future__ import annotations

import functools
import json
import sys

import pytest

import proofs.__main__ as cli
import sweep_tasks
from numerics import executors
from numerics.sweep import sweep
from proofs import CHECKS
from proofs.record import CONFIRMED, Check

pytest.importorskip("distributed", reason="the Dask tests need the optional extra [dask]")


def sweeping_check(markers):
    """A registered check whose whole work is one sweep on the mode's executor (what allocation_rule does)."""
    def check(record, mode):
        out = sweep(sweep_tasks.counted, [dict(index=k, scale=1.0) for k in range(4)],
                    unkeyed=dict(markers=str(markers)), **mode.sweep_options("sweeping"))
        record.measurement.update(executor=out.executor, computed=out.computed,
                                  sums=[float(r["vector"].sum()) for r in out.results])
        record.headline = f"{len(out.computed)} computed on {out.executor}"
        record.decide(confirmed=True)
    return Check("sweeping", "a sweep", "a claim", "eq. (0)", CONFIRMED, check, False, source="derived here")


@pytest.fixture
def no_work(monkeypatch):
    """Fail the test if the checks start running."""
    def run(*args, **kwargs):
        raise AssertionError("work started before the --dask address was checked")
    monkeypatch.setattr(cli, "run", run)


def test_unknown_dask_address_fails_before_any_work(tmp_path, capsys, no_work):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--dask", "nowhere", "--output", str(tmp_path)])
    assert exit_.value.code == 2
    error = capsys.readouterr().err
    assert "--dask nowhere" in error and "expected 'local', a scheduler address" in error


def test_unreachable_dask_scheduler_fails_before_any_work(tmp_path, capsys, monkeypatch, no_work):
    monkeypatch.setattr(executors, "connect", functools.partial(executors.connect, timeout=1.0))
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--dask", "tcp://127.0.0.1:9", "--output", str(tmp_path)])
    assert exit_.value.code == 2
    assert "no Dask scheduler answered at tcp://127.0.0.1:9 within 1 s" in capsys.readouterr().err


def test_dask_without_the_extra_names_it(tmp_path, capsys, monkeypatch, no_work):
    executors.disconnect()
    monkeypatch.setitem(sys.modules, "distributed", None)          # as if the extra were not installed
    with pytest.raises(SystemExit):
        cli.main(["--dask", "local", "--output", str(tmp_path)])
    assert "optional extra [dask]: pip install 'balanced-rep[dask]'" in capsys.readouterr().err


def test_dask_local_runs_the_sweeps_and_cache_resumes_them(tmp_path, monkeypatch):
    markers = tmp_path / "markers"
    markers.mkdir()
    monkeypatch.setitem(CHECKS, "sweeping", sweeping_check(markers))
    arguments = ["--only", "sweeping", "--dask", "local", "--cache", str(tmp_path / "cache"),
                 "--output", str(tmp_path / "out")]
    assert cli.main(arguments) == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["parameters"]["executor"] == "dask:local (2 workers)"
    first = report["checks"][0]["measurement"]
    assert first["executor"].startswith("Dask tcp://") and first["computed"] == [0, 1, 2, 3]
    assert not executors._CONNECTIONS                              # the LocalCluster is closed after the run
    assert cli.main(arguments[:2] + ["--workers", "1"] + arguments[4:]) == 0   # this process, same cache
    again = json.loads((tmp_path / "out" / "report.json").read_text())["checks"][0]["measurement"]
    assert again["computed"] == [] and again["sums"] == first["sums"]
    assert sweep_tasks.marker_counts(markers, 4) == [1, 1, 1, 1]


@pytest.mark.slow
def test_allocation_rule_on_dask_equals_local_processes(tmp_path):
    """The real sweep of 30 instances × 16 starts: the same measurement on a LocalCluster and on 2 processes."""
    assert cli.main(["--only", "allocation_rule", "--dask", "local", "--output", str(tmp_path / "dask")]) == 0
    assert cli.main(["--only", "allocation_rule", "--output", str(tmp_path / "local")]) == 0
    measured = [json.loads((tmp_path / where / "report.json").read_text())["checks"][0]["measurement"]
                for where in ("dask", "local")]
    assert measured[0] == measured[1]
