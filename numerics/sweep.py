"""Sweeps as tasks: one function over a list of parameter sets, on any executor, cached and resumable.

A sweep calls one top-level ``function`` once per task, with keyword arguments::

    function(**shared, **tasks[k], **unkeyed, seed=s_k)

* ``tasks`` — a list of dicts, the parameters of each task (a cell of a phase diagram, a
  start of a multistart, an instance of a check); results come back in this order;
* ``shared`` — read-only data every task receives (``X``, ``labels``): sent to each worker
  once (local processes: through the pool's initializer; Dask: ``client.scatter(...,
  broadcast=True)``), never once per task;
* ``unkeyed`` — values every task receives that do not change its result (a folder for
  partial checkpoints), so they stay out of the cache key;
* ``seed`` — when given, task k also receives ``seed=s_k``, word k of
  ``numpy.random.SeedSequence(seed).generate_state(...)`` (`task_seeds`): derived from the
  sweep's seed and the task's index only, never from a worker, so the same seed gives the
  same numbers on every executor.

``executor`` chooses where tasks run (`numerics.executors`): ``None`` — ``workers`` local
processes (this process when ``workers == 1``); ``"dask:local"`` — a LocalCluster of
``workers`` workers; ``"dask:ADDRESS"`` — a running Dask scheduler; or a
``distributed.Client``. Each task runs with one BLAS and one numba thread, so its
reductions, hence its bits, do not depend on the executor.

``cache_dir`` makes the sweep resumable: each finished result is written there at once
(`numerics.sweep_cache`: atomic ``.npz`` + readable ``.json``, keyed by the function's
qualified name, the task's parameters and seed, the shared data and ``version``), and a
later call with the same arguments — on any executor — loads those and computes only the
missing tasks. A corrupt entry is recomputed with a warning naming its file. With a cache,
a fresh result is returned exactly as a cached one would be (tuples stay tuples, numpy
scalars become Python numbers).

The first failing task stops the sweep: tasks not yet started are cancelled (on Dask,
running ones too), finished ones are cached, and its exception is raised with a note
saying which task failed and how to resume.

>>> import numpy as np
>>> from numerics.objective import expected_loss
>>> X, W = 2.0 * np.eye(3)[:, :2], np.eye(3)[:, :2]                 # X (d, n) = (3, 2), W (d, p) = (3, 2)
>>> out = sweep(expected_loss, [dict(sigma=s) for s in (0.1, 0.2, 0.4)], shared=dict(X=X, W1=W, W2=W),
...             workers=1)
>>> out.computed, [round(float(loss), 3) for loss in out.results]
([0, 1, 2], [0.015, 0.06, 0.24])
"""
from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass

import numpy as np

from numerics.checkpoint import progress_bar, progress_enabled
from numerics.executors import describe, runner
from numerics.sweep_cache import load_entry, save_entry, shared_digest, task_key
from numerics.validation import optional_flag, positive_int

__all__ = ["sweep", "SweepResult", "task_seeds", "task_keys"]


@dataclass
class SweepResult:
    """Outcome of `sweep`: ``results`` in task order; ``computed`` the task indices run by this call
    (the others came from the cache); ``seeds`` each task's seed (None without a sweep seed);
    ``keys`` each task's cache key (None without ``cache_dir``); ``executor`` where the computed
    tasks ran; ``wall_time`` of the call in seconds."""

    results: list
    computed: list
    seeds: list
    keys: list | None
    executor: str
    wall_time: float

    @property
    def cached(self) -> int:
        """How many results came from the cache."""
        return len(self.results) - len(self.computed)


def task_seeds(seed, n_tasks: int) -> list:
    """The seed of each task: word k of ``SeedSequence(seed).generate_state(n_tasks)``.

    Word k does not depend on ``n_tasks`` (the state is a stream), so appending tasks to a
    sweep leaves the seeds of the earlier ones unchanged.

    >>> task_seeds(0, 3) == task_seeds(0, 5)[:3]
    True
    """
    seed = positive_int("seed", seed, minimum=0)
    n_tasks = positive_int("n_tasks", n_tasks, minimum=0)
    return [int(word) for word in np.random.SeedSequence(seed).generate_state(n_tasks)] if n_tasks else []


def _qualified_name(function) -> str:
    """``module.qualname`` of a top-level function; a lambda or a nested function is a TypeError."""
    if not callable(function):
        raise TypeError(f"function must be a top-level function; got {type(function).__name__}")
    qualname, module = getattr(function, "__qualname__", None), getattr(function, "__module__", None)
    if not isinstance(qualname, str) or not isinstance(module, str) or "<" in qualname:
        raise TypeError(f"function must be a top-level function (its qualified name keys the cache and "
                        f"names the tasks); got {getattr(function, '__qualname__', function)!r:.80}")
    return f"{module}.{qualname}"


def _parameter_dict(name: str, value) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(key, str) for key in value):
        raise TypeError(f"{name} must be a dict with string keys (keyword arguments of the function); "
                        f"got {type(value).__name__}")
    return value


def _checked_tasks(tasks, shared: dict, unkeyed: dict, seeded: bool) -> list:
    """The tasks as a list of dicts; an argument given twice (by a task, shared, unkeyed or seed=) is a ValueError."""
    if isinstance(tasks, (str, bytes, dict)) or not hasattr(tasks, "__iter__"):
        raise TypeError(f"tasks must be a list of dicts (the parameters of each task); got {type(tasks).__name__}")
    tasks = [_parameter_dict(f"tasks[{k}]", task) for k, task in enumerate(tasks)]
    reserved = {"seed"} if seeded else set()
    clash = (set(shared) & set(unkeyed)) | (reserved & (set(shared) | set(unkeyed)))
    if clash:
        raise ValueError(f"shared and unkeyed (and seed=, when given) must not name the same argument twice; "
                         f"{sorted(clash)} appear twice")
    for k, task in enumerate(tasks):
        twice = set(task) & (set(shared) | set(unkeyed) | reserved)
        if twice:
            raise ValueError(f"tasks[{k}] names {sorted(twice)}, also given by shared, unkeyed or seed=")
    return tasks


def task_keys(function, tasks, *, shared=None, seed=None, version="") -> list:
    """The cache key of each task of ``sweep(function, tasks, shared=shared, seed=seed, version=version)``.

    >>> import tempfile
    >>> from numerics.objective import expected_loss
    >>> tasks, shared = [dict(sigma=0.1), dict(sigma=0.2)], dict(X=np.eye(2), W1=np.eye(2), W2=np.eye(2))
    >>> keys = task_keys(expected_loss, tasks, shared=shared)
    >>> keys == sweep(expected_loss, tasks, shared=shared, workers=1, cache_dir=tempfile.mkdtemp()).keys
    True
    """
    name = _qualified_name(function)
    shared = _parameter_dict("shared", shared)
    tasks = _checked_tasks(tasks, shared, {}, seed is not None)
    seeds = task_seeds(seed, len(tasks)) if seed is not None else [None] * len(tasks)
    digest, version = shared_digest(shared), _version(version)
    return [task_key(name, task, task_seed, digest, version) for task, task_seed in zip(tasks, seeds)]


def _version(version):
    if isinstance(version, bool) or not isinstance(version, (str, int)):
        raise TypeError(f"version must be a str or an int; got {type(version).__name__}")
    return version


def _names(names, keys, function, cache_dir) -> tuple[list, bool]:
    """The entry names (given, one per task, or FUNCTION-KEY) and whether they were given."""
    if names is None:
        return [f"{function.__name__}-{key}" for key in keys], False
    if cache_dir is None:
        raise ValueError("names needs cache_dir (they name the cache entries)")
    names = list(names) if not isinstance(names, str) else None
    if names is None or len(names) != len(keys) or not all(isinstance(n, str) and n for n in names):
        raise ValueError(f"names must be a list of {len(keys)} non-empty strings, one per task")
    if len(set(names)) != len(names):
        raise ValueError("names must be distinct (one cache entry per task)")
    return names, True


def sweep(function, tasks, *, shared=None, unkeyed=None, seed=None, executor=None, workers=2, cache_dir=None,
          names=None, version="", progress=None, desc=None) -> SweepResult:
    """Run ``function`` once per task on ``executor``; results in task order, cached in ``cache_dir``.

    See the module docstring for the call made per task, the executors, the seeds and the
    cache. ``names`` (with ``cache_dir``) names the entries one per task index, e.g.
    ``start_0003``; such a folder then belongs to one run, and an entry of another run is a
    ValueError. ``progress``: a tqdm bar (None: only on a terminal and outside CI); with Dask
    it also prints the dashboard link.

    >>> import tempfile
    >>> from numerics.objective import expected_loss
    >>> tasks, shared, folder = [dict(sigma=0.1), dict(sigma=0.2)], dict(X=np.eye(2), W1=np.eye(2), W2=np.eye(2)), tempfile.mkdtemp()
    >>> first = sweep(expected_loss, tasks, shared=shared, workers=1, cache_dir=folder)    # X, W1, W2 (d, ·) = (2, 2)
    >>> again = sweep(expected_loss, tasks, shared=shared, workers=1, cache_dir=folder)    # every task cached
    >>> first.computed, again.computed, again.results == first.results
    ([0, 1], [], True)
    """
    qualified = _qualified_name(function)
    shared = _parameter_dict("shared", shared)
    unkeyed = _parameter_dict("unkeyed", unkeyed)
    tasks = _checked_tasks(tasks, shared, unkeyed, seed is not None)
    workers = positive_int("workers", workers)
    describe(executor, workers)                  # checks executor now, even if every task is cached
    progress = optional_flag("progress", progress)
    version = _version(version)
    if cache_dir is not None and not isinstance(cache_dir, (str, os.PathLike)):
        raise TypeError(f"cache_dir must be a folder path (str or os.PathLike) or None; got {type(cache_dir).__name__}")
    if desc is not None and not isinstance(desc, str):
        raise TypeError(f"desc must be a str or None; got {type(desc).__name__}")
    started = time.perf_counter()
    seeds = task_seeds(seed, len(tasks)) if seed is not None else [None] * len(tasks)
    keys, results = None, {}
    if cache_dir is not None:
        cache_dir = os.fspath(cache_dir)
        digest = shared_digest(shared)
        keys = [task_key(qualified, task, s, digest, version) for task, s in zip(tasks, seeds)]
        names, strict = _names(names, keys, function, cache_dir)
        for k in range(len(tasks)):
            found, value = load_entry(cache_dir, names[k], keys[k], strict=strict)
            if found:
                results[k] = value
    elif names is not None:
        _names(names, [None] * len(tasks), function, cache_dir)
    todo = [k for k in range(len(tasks)) if k not in results]
    where, errors = "nothing to compute", {}
    with progress_bar(progress, total=len(tasks), initial=len(tasks) - len(todo),
                      desc=desc or function.__name__) as bar:
        if todo:
            run = runner(executor, workers, len(todo))
            where = run.name
            if run.dashboard is not None and progress_enabled(progress):
                bar.write(f"Dask dashboard: {run.dashboard}")
            jobs = [(k, {**tasks[k], **unkeyed}, seeds[k]) for k in todo]
            with contextlib.closing(run.run(function, jobs, shared)) as outcomes:
                for k, value, error in outcomes:
                    if error is not None:
                        errors[k] = error
                        continue
                    if cache_dir is not None:
                        value = save_entry(cache_dir, names[k], value, dict(
                            key=keys[k], function=qualified, index=k, params=tasks[k], seed=seeds[k], version=version))
                    results[k] = value
                    bar.update(1)
    lost = [k for k in todo if k not in results and k not in errors]
    if lost and not errors:             # an executor that drops tasks without an error: never return a hole
        raise RuntimeError(f"sweep({qualified}) on {where}: tasks {lost} returned neither a result nor an error")
    if errors:
        k, error = next(iter(errors.items()))
        resume = f"; rerun with cache_dir={cache_dir!r} to compute only the rest" if cache_dir else ""
        error.add_note(f"in task {k} of sweep({qualified}) with parameters {tasks[k]!r:.200} on {where}: "
                       f"{len(results)} of {len(tasks)} tasks finished{' and cached' if cache_dir else ''}{resume}")
        raise error
    return SweepResult(results=[results[k] for k in range(len(tasks))], computed=todo, seeds=seeds, keys=keys,
                       executor=where, wall_time=time.perf_counter() - started)
