"""`multistart`: many seeded starts, checkpointed atomically, skipped or resumed on a rerun, same numbers on any worker count."""
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

from numerics.compare import column_structure
from numerics.multistart import MultistartResult, multistart
from numerics.training import train

SIGMA, LAM = 0.2, 0.01


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
    # The recomputed start is the same deterministic computation: equal to rounding (in fact
    # bit-identical here; 1e-12 only allows a different BLAS on another machine).
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
    # Workers use one thread each, the serial run the default: the objective sums in fixed
    # chunks, so only BLAS rounding may differ (1e-16 relative per product).
    np.testing.assert_allclose(out.losses, serial.losses, rtol=1e-12)


@pytest.mark.slow
def test_multistart_survives_kill_midway(tmp_path):
    """Kill the process after two starts finished; the rerun computes only the rest."""
    folder = tmp_path / "run"
    script = textwrap.dedent(f"""
        import numpy as np
        from numerics.data import separable_clusters
        from numerics.multistart import multistart
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


def test_each_start_is_train_with_its_seed(memorization):
    """Start k is exactly `train(seed=s_k)`, s_k from SeedSequence(seed): same weights, same structure."""
    out = multistart(memorization, 4, SIGMA, LAM, n_starts=2, seed=5, workers=1, tied=True)
    seeds = np.random.SeedSequence(5).generate_state(2)
    np.testing.assert_array_equal(out.seeds, seeds.astype(np.int64))
    for k in range(2):
        fit = train(memorization, 4, SIGMA, LAM, seed=int(seeds[k]), tied=True, progress=False)
        assert out.losses[k] == fit.loss
        assert out.structures[k] == column_structure(fit.W1, fit.W2, memorization).signature
    best = int(np.argmin(out.losses))
    assert out.best_index == best


def test_loss_levels_and_structure_counts_group_equal_results():
    result = MultistartResult(seeds=np.arange(4), losses=np.array([2.0, 1.0, 1.0 + 1e-9, 3.0]),
                              rel_grad_norms=np.zeros(4), converged=np.ones(4, bool),
                              structures=[("a",), ("b",), ("b",), ("c",)], best_index=1,
                              best_W1=np.zeros((1, 1)), best_W2=np.zeros((1, 1)), computed=4,
                              wall_time=0.0, summaries=[])
    # 1.0 and 1.0 + 1e-9 are one level at the default rtol 1e-6, two at rtol 1e-12.
    assert result.loss_levels() == [(1.0, 2), (2.0, 1), (3.0, 1)]
    assert len(result.loss_levels(rtol=1e-12)) == 4
    assert result.structure_counts() == {("a",): 1, ("b",): 2, ("c",): 1}


def test_multistart_arguments_are_checked(memorization, tmp_path):
    with pytest.raises(ValueError, match="n_starts"):
        multistart(memorization, 4, SIGMA, LAM, n_starts=0)
    with pytest.raises(TypeError, match="seed"):
        multistart(memorization, 4, SIGMA, LAM, n_starts=1, seed="a")
    with pytest.raises(ValueError, match="labels"):
        multistart(memorization, 4, SIGMA, LAM, n_starts=1, labels=[0, 1])
    with pytest.raises(TypeError, match="checkpoint_dir"):
        multistart(memorization, 4, SIGMA, LAM, n_starts=1, checkpoint=(str(tmp_path), "x"))
    with pytest.raises(TypeError, match="tied"):
        multistart(memorization, 4, SIGMA, LAM, n_starts=1, workers=1, tied="yes")
    with pytest.raises(ValueError, match="X has shape \\(n, d\\)"):
        multistart(memorization.T, 4, SIGMA, LAM, n_starts=1, labels=[0, 1, 2])
