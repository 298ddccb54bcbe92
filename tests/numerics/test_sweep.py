"""`sweep`: the same bits on every executor, resumable after a failure or a kill, keyed caches, named errors.

One LocalCluster (2 single-threaded worker processes) serves the whole module. The
executors compared: this process (``workers=1``), 2 local processes, and that cluster.
Task functions live in ``tests/sweep_tasks.py`` (worker processes import them by name).
"""
from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from hypothesis import given, strategies as st

import sweep_tasks
from numerics.checkpoint import load_checkpoint
from numerics.data import separable_clusters
from numerics.multistart import multistart
from numerics.sweep import sweep, task_keys, task_seeds
from numerics.sweep_cache import decode, encode, load_entry, save_entry

distributed = pytest.importorskip("distributed", reason="the Dask tests need the optional extra [dask]")

EXECUTORS = ("this process", "2 local processes", "LocalCluster")


@pytest.fixture(scope="module")
def client():
    """One LocalCluster for the module: 2 worker processes with one thread each (dashboard on a free port)."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster, distributed.Client(cluster) as client:
        yield client


def on(executor_name, client) -> dict:
    """Keyword arguments of `sweep` that select one of `EXECUTORS`."""
    return {"this process": dict(workers=1), "2 local processes": dict(workers=2),
            "LocalCluster": dict(executor=client)}[executor_name]


@pytest.fixture(scope="module")
def clusters():
    return separable_clusters(8, [5, 5, 5], alpha=0.1, beta=None, norm=3.0, seed=1)


# ----------------------------------------------------------------------------- same numbers everywhere


def test_same_bits_on_every_executor(client, clusters):
    """A (p, σ) sweep of seeded training: weights and losses bitwise equal in this process, on 2 local
    processes and on the LocalCluster (each task has one thread, and its seed comes from the sweep)."""
    cells = [dict(p=p, sigma=s, lam=0.01) for p in (3, 4) for s in (0.2, 0.4)]
    shared = dict(X=clusters.X, labels=clusters.labels)
    runs = {name: sweep(sweep_tasks.train_cell, cells, shared=shared, seed=3, **on(name, client))
            for name in EXECUTORS}
    reference = runs["this process"]
    assert reference.seeds == task_seeds(3, len(cells))
    assert len({r["loss"] for r in reference.results}) == len(cells)        # four different computations
    for name, run in runs.items():
        assert run.computed == list(range(len(cells))) and run.keys is None
        for mine, theirs in zip(run.results, reference.results):
            assert np.array_equal(mine["W1"], theirs["W1"]) and np.array_equal(mine["W2"], theirs["W2"]), name
            assert mine["loss"] == theirs["loss"] and mine["structure"] == theirs["structure"], name
    assert runs["LocalCluster"].executor.startswith("Dask tcp://")


def test_multistart_on_the_cluster_equals_serial(client, memorization):
    """`multistart(executor=client)` gives bit-identical starts to the serial run."""
    serial = multistart(memorization, 4, 0.2, 0.01, n_starts=4, seed=2, workers=1, tied=True)
    remote = multistart(memorization, 4, 0.2, 0.01, n_starts=4, seed=2, executor=client, tied=True)
    np.testing.assert_array_equal(remote.losses, serial.losses)
    np.testing.assert_array_equal(remote.best_W1, serial.best_W1)
    assert remote.structures == serial.structures and remote.computed == 4


def test_shared_data_is_sent_once_not_per_task(client):
    """The shared blob is pickled as often for 2 tasks as for 12: once per local worker process; on
    Dask a fixed few times for the one scatter (content hash and transfer), never per task."""
    blob = sweep_tasks.CountedBlob(np.arange(5.0))
    for name in ("2 local processes", "LocalCluster"):
        counts = []
        for n_tasks in (2, 12):
            sweep_tasks.PICKLED.clear()
            out = sweep(sweep_tasks.blob_sum, [dict(index=k) for k in range(n_tasks)], shared=dict(blob=blob),
                        **on(name, client))
            assert out.results == [10.0 + k for k in range(n_tasks)]
            counts.append(len(sweep_tasks.PICKLED))
        assert counts[0] == counts[1] and 1 <= counts[1] < 12, (name, counts)
        if name == "2 local processes":
            assert counts == [2, 2]


# ----------------------------------------------------------------------------- resuming


def _cached_indices(keys, folder) -> set:
    return {k for k, key in enumerate(keys) if os.path.exists(os.path.join(folder, f"counted_after-{key}.json"))}


@pytest.mark.parametrize("executor_name", EXECUTORS)
def test_failed_sweep_resumes_computing_only_the_rest(executor_name, client, tmp_path):
    """Task 3 of 6 fails after another task was cached; the rerun computes exactly the tasks without
    an entry (counted by marker files), and its results equal an uncached run's."""
    markers, cache = tmp_path / "markers", tmp_path / "cache"
    markers.mkdir()
    cache.mkdir()
    (markers / "FAIL").touch()
    tasks = [dict(index=k, scale=0.5 * k) for k in range(6)]
    options = dict(unkeyed=dict(markers=str(markers), cache=str(cache), fail_at=3), cache_dir=str(cache))
    with pytest.raises(RuntimeError, match="failed on purpose") as failure:
        sweep(sweep_tasks.counted_after, tasks, **options, **on(executor_name, client))
    assert any("in task 3 of sweep" in note and "compute only the rest" in note for note in failure.value.__notes__)
    keys = task_keys(sweep_tasks.counted_after, tasks)
    cached = _cached_indices(keys, str(cache))
    assert cached and 3 not in cached
    if executor_name == "this process":
        assert cached == {0, 1, 2}                       # in order, stopped at the failure
    first = sweep_tasks.marker_counts(markers, 6)
    (markers / "FAIL").unlink()
    again = sweep(sweep_tasks.counted_after, tasks, **options, **on(executor_name, client))
    missing = sorted(set(range(6)) - cached)
    assert again.computed == missing and again.cached == len(cached) and again.keys == keys
    computed_now = [after - before for after, before in zip(sweep_tasks.marker_counts(markers, 6), first)]
    assert computed_now == [int(k in missing) for k in range(6)]
    fresh = sweep(sweep_tasks.counted_after, tasks, workers=1, unkeyed=options["unkeyed"])
    for mine, theirs in zip(again.results, fresh.results):
        assert np.array_equal(mine["vector"], theirs["vector"]) and mine["pair"] == theirs["pair"]


KILL_SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
from numerics.sweep import sweep
import sweep_tasks

def main():
    out = sweep(sweep_tasks.counted_after, [dict(index=k, scale=1.0) for k in range(12)],
                unkeyed=dict(markers={markers!r}, cache={cache!r}, sleep=0.5), cache_dir={cache!r},
                executor={executor!r}, workers=2)
    print("computed", len(out.computed))

if __name__ == "__main__":
    main()
"""


def entries(cache) -> list:
    """The finished entries' JSON files (a kill can leave an atomic write's ``.tmp-*`` file behind)."""
    return [path for path in cache.glob("*.json") if not path.name.startswith(".tmp-")]


@pytest.mark.slow
@pytest.mark.parametrize("executor", [None, "dask:local"])
def test_killed_sweep_resumes_computing_only_the_rest(executor, tmp_path):
    """SIGKILL the whole process group (driver and workers) once 3 of 12 tasks are cached; the rerun
    computes exactly the others and leaves the finished entries untouched."""
    markers, cache = tmp_path / "markers", tmp_path / "cache"
    markers.mkdir()
    cache.mkdir()
    script = tmp_path / "run.py"
    script.write_text(KILL_SCRIPT.format(tests=os.path.dirname(os.path.dirname(__file__)), markers=str(markers),
                                         cache=str(cache), executor=executor))
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    process = subprocess.Popen([sys.executable, str(script)], env=env, start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline and len(entries(cache)) < 3 and process.poll() is None:
        time.sleep(0.01)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    finished = {path.name: path.stat().st_mtime_ns for path in entries(cache)}
    assert 3 <= len(finished) < 12
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=600)
    assert f"computed {12 - len(finished)}" in done.stdout, done.stdout + done.stderr
    assert all((cache / name).stat().st_mtime_ns == stamp for name, stamp in finished.items())
    assert len(entries(cache)) == 12


# ----------------------------------------------------------------------------- keys and the cache


PARAMETERS = st.dictionaries(st.sampled_from(["p", "sigma", "lam", "name", "grid"]),
                             st.one_of(st.integers(-5, 5), st.floats(-3, 3, allow_nan=False),
                                       st.text(max_size=4), st.lists(st.integers(0, 3), max_size=3)),
                             min_size=1)


@given(params=PARAMETERS, data=st.data())
def test_keys_change_with_any_parameter_seed_data_or_version(params, data):
    X = np.arange(6.0).reshape(2, 3)
    keys = task_keys(sweep_tasks.counted, [params], shared=dict(X=X), seed=1)
    assert keys == task_keys(sweep_tasks.counted, [dict(reversed(params.items()))], shared=dict(X=X), seed=1)
    name = data.draw(st.sampled_from(sorted(params)))
    changed = dict(params, **{name: [params[name], "changed"]})
    assert task_keys(sweep_tasks.counted, [changed], shared=dict(X=X), seed=1) != keys
    assert task_keys(sweep_tasks.counted, [dict(params, extra=0)], shared=dict(X=X), seed=1) != keys
    assert task_keys(sweep_tasks.counted, [params], shared=dict(X=X), seed=2) != keys
    assert task_keys(sweep_tasks.counted, [params], shared=dict(X=X), seed=1, version=1) != keys
    assert task_keys(sweep_tasks.blob_sum, [params], shared=dict(X=X), seed=1) != keys
    entry = data.draw(st.integers(0, X.size - 1))
    other = X.copy()
    other.flat[entry] += data.draw(st.sampled_from([1e-12, -1.0, 1e6]))
    assert task_keys(sweep_tasks.counted, [params], shared=dict(X=other), seed=1) != keys
    assert task_keys(sweep_tasks.counted, [params], shared=dict(Y=X), seed=1) != keys


def test_array_parameters_are_keyed_by_value_dtype_and_shape():
    base = task_keys(sweep_tasks.counted, [dict(init=np.zeros((2, 2)))])
    assert base == task_keys(sweep_tasks.counted, [dict(init=np.zeros((2, 2)))])
    for other in (np.zeros((4, 1)), np.zeros((2, 2), dtype=np.float32), np.eye(2)):
        assert task_keys(sweep_tasks.counted, [dict(init=other)]) != base


FLOATS = st.floats(allow_nan=True, allow_infinity=True)
LEAVES = st.one_of(st.none(), st.booleans(), st.integers(-2 ** 70, 2 ** 70), FLOATS, st.text(max_size=5),
                   st.builds(np.array, st.lists(FLOATS, max_size=4)),
                   st.builds(lambda v: np.array(v, dtype=np.int32), st.lists(st.integers(-9, 9), max_size=3)))
VALUES = st.recursive(LEAVES, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.tuples(inner, inner),
    st.dictionaries(st.one_of(st.text(max_size=9), st.integers(0, 5)), inner, max_size=3)), max_leaves=12)


def same(a, b) -> bool:
    """Equal in type and bits (NaN equals NaN, -0.0 differs from 0.0)."""
    if isinstance(a, float) or isinstance(b, float):
        return type(a) is type(b) and (math.isnan(a) and math.isnan(b) or
                                       (a == b and math.copysign(1, a) == math.copysign(1, b)))
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):                  # order aside: the entry's JSON lists string keys sorted
        return type(b) is dict and set(a) == set(b) and all(same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


@given(value=VALUES)
def test_results_come_back_bit_for_bit_from_memory_and_disk(value, tmp_path_factory):
    """decode ∘ encode is the identity on every cacheable value, and so is a save + load through the files."""
    assert same(decode(*encode(value)), value)
    folder = str(tmp_path_factory.mktemp("entry"))
    returned = save_entry(folder, "entry", value, dict(key="k", params={}))
    found, loaded = load_entry(folder, "entry", "k", strict=True)
    assert found and same(loaded, value) and same(returned, value)
    assert repr(returned) == repr(loaded)                          # same order too: fresh and cached look alike


def test_uncacheable_results_are_named():
    with pytest.raises(TypeError, match=r"result\['fit'\]: object values cannot be cached"):
        encode(dict(fit=object()))
    with pytest.raises(TypeError, match="dtype object"):
        encode(np.array([None, 1]))


def test_corrupt_entry_is_recomputed_with_a_warning_naming_it(tmp_path):
    markers = tmp_path / "markers"
    markers.mkdir()
    tasks = [dict(index=k, scale=1.0) for k in range(3)]
    options = dict(unkeyed=dict(markers=str(markers)), cache_dir=str(tmp_path / "cache"), workers=1)
    first = sweep(sweep_tasks.counted, tasks, **options)
    for suffix, garbage in ((".npz", b"not a zip file"), (".json", b'{"truncated": ')):
        path = tmp_path / "cache" / f"counted-{first.keys[1]}{suffix}"
        path.write_bytes(garbage)
        with pytest.warns(RuntimeWarning, match=f"cannot read {path}.*recomputing") as caught:
            again = sweep(sweep_tasks.counted, tasks, **options)
        assert len(caught) == 1 and again.computed == [1]
        assert np.array_equal(again.results[1]["vector"], first.results[1]["vector"])
        assert load_checkpoint(str(tmp_path / "cache"), f"counted-{first.keys[1]}") is not None
    assert sweep_tasks.marker_counts(markers, 3) == [1, 3, 1]


def test_entries_named_per_index_belong_to_one_run(tmp_path):
    markers = tmp_path / "m"
    markers.mkdir()
    options = dict(unkeyed=dict(markers=str(markers)), cache_dir=str(tmp_path), names=["a", "b"], workers=1)
    sweep(sweep_tasks.counted, [dict(index=0, scale=1.0), dict(index=1, scale=1.0)], **options)
    with open(tmp_path / "a.json", encoding="utf-8") as stream:
        assert '"scale": 1.0' in stream.read()                           # readable JSON with the parameters
    with pytest.raises(ValueError, match="another run"):
        sweep(sweep_tasks.counted, [dict(index=0, scale=2.0), dict(index=1, scale=1.0)], **options)


# ----------------------------------------------------------------------------- inputs and executors


def test_bad_arguments_are_named(tmp_path):
    tasks = [dict(index=0, scale=1.0)]
    with pytest.raises(TypeError, match="function must be a top-level function"):
        sweep(lambda index, scale: index, tasks, workers=1)
    with pytest.raises(TypeError, match="tasks must be a list of dicts"):
        sweep(sweep_tasks.counted, dict(index=0), workers=1)
    with pytest.raises(TypeError, match=r"tasks\[0\] must be a dict"):
        sweep(sweep_tasks.counted, [[0, 1.0]], workers=1)
    with pytest.raises(ValueError, match="'scale'"):
        sweep(sweep_tasks.counted, tasks, shared=dict(scale=2.0), workers=1)
    with pytest.raises(ValueError, match="'seed'"):
        sweep(sweep_tasks.counted, [dict(index=0, seed=1)], seed=0, workers=1)
    with pytest.raises(ValueError, match="'seed'"):
        sweep(sweep_tasks.counted, tasks, unkeyed=dict(seed=1), seed=0, workers=1)
    with pytest.raises(ValueError, match="'markers'"):
        sweep(sweep_tasks.counted, tasks, shared=dict(markers="a"), unkeyed=dict(markers="b"), workers=1)
    with pytest.raises(ValueError, match="names needs cache_dir"):
        sweep(sweep_tasks.counted, tasks, names=["a"], workers=1)
    with pytest.raises(ValueError, match="names must be a list of 1"):
        sweep(sweep_tasks.counted, tasks, names=["a", "b"], cache_dir=str(tmp_path), workers=1)
    with pytest.raises(ValueError, match="workers"):
        sweep(sweep_tasks.counted, tasks, workers=0)
    with pytest.raises(TypeError, match="seed"):
        sweep(sweep_tasks.counted, tasks, seed="a")
    with pytest.raises(ValueError, match="executor must be"):
        sweep(sweep_tasks.counted, [dict(index=0, scale=1.0, markers=str(tmp_path))], executor="threads")
    with pytest.raises(ValueError, match="after 'dask:' expected 'local'"):
        sweep(sweep_tasks.counted, [dict(index=0, scale=1.0, markers=str(tmp_path))], executor="dask:nowhere")
    with pytest.raises(TypeError, match="cannot key the cache"):
        sweep(sweep_tasks.counted, [dict(index=0, scale=object())], cache_dir=str(tmp_path), workers=1)
    assert sweep(sweep_tasks.counted, [], workers=2).results == []


def test_connect_names_a_bad_or_unreachable_scheduler():
    from numerics.executors import connect

    with pytest.raises(ConnectionError, match=r"no Dask scheduler answered at tcp://127.0.0.1:9 within 1 s"):
        connect("dask:tcp://127.0.0.1:9", timeout=1.0)
    with pytest.raises(ValueError, match="no scheduler file"):
        connect("dask:missing-scheduler.json")
    for bad, error, named in (("processes", ValueError, "not a Dask executor"), (3, TypeError, "executor must be"),
                              ("dask:", ValueError, "after 'dask:' expected")):
        with pytest.raises(error, match=named):
            connect(bad)
    with pytest.raises(ValueError, match="workers"):
        connect("dask:local", workers=0)
    with pytest.raises(TypeError, match="timeout"):
        connect("dask:tcp://127.0.0.1:9", timeout="1")


SCRIPT = """
import numpy as np
from numerics.sweep import sweep

print("top level runs")


def square_plus(index, offset):
    return index * index + offset


out = sweep(square_plus, [dict(index=k) for k in range(6)], shared=dict(offset=0.5), workers=2)
print(out.executor, out.results)
"""


def test_a_plain_script_without_main_guard_runs_on_local_processes(tmp_path):
    """A script with top-level code and its own task function: the workers neither rerun it nor need it on disk."""
    script = tmp_path / "plain.py"
    script.write_text(textwrap.dedent(SCRIPT))
    done = subprocess.run([sys.executable, str(script)], env=dict(os.environ, PYTHONPATH=os.getcwd()),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("top level runs") == 1
    assert "2 local processes [0.5, 1.5, 4.5, 9.5, 16.5, 25.5]" in done.stdout


def test_a_plain_script_starting_a_local_cluster_is_told_the_fix(tmp_path):
    script = tmp_path / "plain_dask.py"
    script.write_text(textwrap.dedent(SCRIPT).replace("workers=2)", "workers=2, executor='dask:local')"))
    done = subprocess.run([sys.executable, str(script)], env=dict(os.environ, PYTHONPATH=os.getcwd()),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode != 0
    assert 'needs its top-level code under `if __name__ == "__main__":`' in done.stderr


def test_the_core_import_does_not_need_dask():
    """Sweeps, multistart and the proofs' records import and run without Dask (loaded only for a dask: executor)."""
    code = ("import sys\n"
            "sys.modules['distributed'] = None\n"          # as if the extra were not installed
            "import numpy as np, numerics.multistart, proofs.record\n"
            "from numerics.objective import expected_loss\n"
            "from numerics.sweep import sweep\n"
            "W = np.eye(3)[:, :2]\n"
            "out = sweep(expected_loss, [dict(sigma=0.1)], shared=dict(X=2 * W, W1=W, W2=W), workers=1)\n"
            "print(round(float(out.results[0]), 3), 'dask' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, PYTHONPATH=os.getcwd()),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "0.015 False" in done.stdout, done.stdout + done.stderr
