"""Where the tasks of a sweep run: this process, local worker processes, or a Dask cluster.

`runner(executor, workers)` turns the ``executor`` argument of `numerics.sweep.sweep` into
a runner that ships the shared data once, runs the tasks and yields each outcome as it
arrives:

* ``None`` or ``"processes"`` — ``workers`` local processes (loky's process pool: a script
  needs no ``if __name__ == "__main__":`` guard, functions defined in it are sent by value);
  with ``workers == 1``, or ``"serial"``, the tasks run in this process one after another;
* ``"dask:local"`` — a ``distributed.LocalCluster`` of ``workers`` single-threaded worker
  processes, started on first use and kept for later sweeps (`disconnect` closes it);
* ``"dask:ADDRESS"`` — the scheduler at ADDRESS (``tcp://host:8786``, ``host:8786``), or
  ``"dask:FILE.json"`` — the scheduler named in a ``dask scheduler --scheduler-file`` file;
* a ``distributed.Client`` — used as it is (never closed here).

Dask is an optional extra (``pip install 'balanced-rep[dask]'``), imported only for the
``dask:`` executors. Every task runs inside `numerics.threads.single_thread` (one BLAS and
one numba thread; local worker processes also start with the OpenMP and BLAS environment
variables at 1, as Dask's do by default) wherever it runs, so the same task gives the same
bits on every executor.

>>> runner(None, workers=2).name, describe("dask:tcp://scheduler:8786", workers=2)
('2 local processes', 'dask:tcp://scheduler:8786')
"""
from __future__ import annotations

import atexit
import importlib.util
import os
import re
import sys
import time
import uuid
from typing import Iterator

from numerics.threads import THREAD_VARIABLES, single_thread, single_thread_worker
from numerics.validation import positive, positive_int

__all__ = ["runner", "connect", "connection_problem", "disconnect", "describe", "DASK_EXTRA"]

DASK_EXTRA = "pip install 'balanced-rep[dask]'"
_SCHEMES = ("tcp", "tls", "inproc", "ucx", "ws", "wss")
_ADDRESS = re.compile(rf"^(?:(?:{'|'.join(_SCHEMES)})://)?[\w.\-\[\]:]+:\d+/?$")
_CONNECTIONS: dict = {}          # "dask:..." spec -> (client, cluster or None), opened by `connect`
_EXIT_HOOK: list = []            # non-empty once `disconnect` is registered to run at exit

__doctest_requires__ = {("DaskCluster", "connect", "disconnect"): ["distributed"]}


def _call_task(function, params: dict, seed, shared: dict):
    """Run one task: ``function(**shared, **params, seed=seed)`` with one BLAS and one numba thread."""
    kwargs = {**shared, **params}
    if seed is not None:
        kwargs["seed"] = seed
    with single_thread():
        return function(**kwargs)


def _is_client(value) -> bool:
    """True for a ``distributed.Client`` (without importing Dask when it is not loaded)."""
    module = sys.modules.get("distributed")
    return module is not None and isinstance(value, module.Client)


# ----------------------------------------------------------------------------- this process


class InProcess:
    """Tasks in this process, in order; the first failure stops the rest.

    >>> jobs = [(0, {"exp": 3}, None), (1, {"exp": 2}, None)]    # (index, parameters, seed) per task
    >>> list(InProcess().run(pow, jobs, {"base": 2}))           # (index, value, error) as they finish
    [(0, 8, None), (1, 4, None)]
    """

    name = "this process"
    dashboard = None

    def run(self, function, jobs, shared) -> Iterator[tuple]:
        for index, params, seed in jobs:
            try:
                value = _call_task(function, params, seed, shared)
            except Exception as error:  # reported to the sweep, which raises it after cleaning up
                yield index, None, error
                return
            yield index, value, None


# ----------------------------------------------------------------------------- local processes

_SHARED: dict = {}


def _worker_start(shared: dict) -> None:
    single_thread_worker()
    _SHARED.clear()
    _SHARED.update(shared)


def _worker_call(function, params, seed):
    return _call_task(function, params, seed, _SHARED)


class LocalProcesses:
    """``workers`` loky processes; the shared data reaches each once, through the initializer.

    loky starts workers without re-running the main script (no ``__main__`` guard needed) and
    pickles functions with cloudpickle (a function defined in a script is sent by value).
    After a failure, tasks not yet started are cancelled; started ones finish and are reported.

    >>> run = LocalProcesses(2)                        # what runner(None, workers=2) returns
    >>> run.name, run.dashboard
    ('2 local processes', None)
    """

    def __init__(self, workers: int):
        self.workers = workers
        self.name = f"{workers} local processes"
        self.dashboard = None

    def run(self, function, jobs, shared) -> Iterator[tuple]:
        import loky

        pool = loky.ProcessPoolExecutor(max_workers=min(self.workers, len(jobs)), initializer=_worker_start,
                                        initargs=(shared,), env={name: "1" for name in THREAD_VARIABLES})
        futures = {pool.submit(_worker_call, function, params, seed): index for index, params, seed in jobs}
        finished = False
        try:
            for future in loky.as_completed(futures):
                if future.cancelled():          # only after a failure: cancelled here, below
                    continue
                error = future.exception()
                if error is not None:
                    for other in futures:
                        other.cancel()
                yield futures[future], (None if error else future.result()), error
            finished = True
        finally:
            # Interrupted (Ctrl-C, or the caller stopped early): do not wait for running tasks.
            pool.shutdown(wait=finished, kill_workers=not finished)


# ----------------------------------------------------------------------------- Dask


def _distributed():
    """The ``distributed`` module, or an ImportError naming the optional extra."""
    if importlib.util.find_spec("distributed") is None:
        raise ImportError(f"Dask executors need the optional extra [dask]: {DASK_EXTRA}")
    import distributed

    return distributed


class DaskCluster:
    """Tasks as futures on a Dask cluster; shared data scattered once to every worker (broadcast).

    >>> import distributed
    >>> client = distributed.Client(processes=False, n_workers=1, dashboard_address=None)   # threads, in process
    >>> sorted(DaskCluster(client).run(pow, [(0, {"exp": 3}, None), (1, {"exp": 2}, None)], {"base": 2}))
    [(0, 8, None), (1, 4, None)]
    >>> client.close()
    """

    def __init__(self, client):
        self.client = client
        self.name = f"Dask {client.scheduler.address}"
        self.dashboard = _dashboard_link(client)

    def run(self, function, jobs, shared) -> Iterator[tuple]:
        distributed = _distributed()
        client = self.client
        # A list, not the dict, and unhashed keys: a dict's keys would be its names, and hashed
        # keys can meet the same data still being released after an earlier sweep.
        names = list(shared)
        scattered = client.scatter([shared[name] for name in names], broadcast=True, hash=False) if names else []
        remote = dict(zip(names, scattered))
        prefix = getattr(function, "__name__", "task")
        futures = {client.submit(_call_task, function, params, seed, remote,
                                 key=f"{prefix}-{index}-{uuid.uuid4().hex[:8]}"): index
                   for index, params, seed in jobs}
        stopping = False
        try:
            for future in distributed.as_completed(list(futures)):
                if future.status == "finished":
                    yield futures[future], future.result(), None
                    continue
                if stopping and future.cancelled():
                    continue
                if future.status == "error":
                    error = future.exception()
                else:                   # cancelled or lost without being asked to: never drop a task silently
                    error = RuntimeError(f"the Dask task {future.key} ended as {future.status!r}")
                stopping = True
                client.cancel([other for other in futures if not other.done()])
                yield futures[future], None, error
        finally:
            client.cancel([future for future in futures if not future.done()])
            futures.clear()              # release the results and the scattered data on the cluster
            remote.clear()
            scattered.clear()


def _dashboard_link(client) -> str | None:
    """The dashboard address if the scheduler serves one (it needs bokeh), else None."""
    try:
        services = client.scheduler_info().get("services", {})
    except Exception:  # an old or unusual scheduler: fall back to what the client believes
        services = {"dashboard": True}
    return client.dashboard_link if "dashboard" in services else None


def _dask_target(executor: str) -> str:
    """``"local"``, an address or a scheduler file out of ``"dask:..."``, checked; ValueError names ``executor``."""
    target = executor[len("dask:"):].strip()
    if target == "local" or _ADDRESS.match(target):
        return target
    if target.endswith(".json"):
        if not os.path.isfile(target):
            raise ValueError(f"executor {executor!r}: no scheduler file {target}")
        return target
    raise ValueError(f"executor {executor!r}: after 'dask:' expected 'local', a scheduler address "
                     f"(tcp://host:8786 or host:8786) or a scheduler file (.json); got {target!r:.80}")


_GUARD = ("a script that starts a LocalCluster needs its top-level code under `if __name__ == \"__main__\":` "
          "(Dask starts its worker processes by re-importing the main script)")


def _local_cluster(distributed, workers: int):
    """A LocalCluster of ``workers`` single-threaded processes; a clear error when a script lacks its guard."""
    main = sys.modules.get("__main__")
    if getattr(main, "__name__", "") == "__mp_main__":      # this process is a worker re-importing the script
        raise RuntimeError(f"executor 'dask:local' requested while a worker process imports the main script: {_GUARD}")
    try:
        return distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True)
    except RuntimeError as error:
        script = getattr(main, "__spec__", None) is None and hasattr(main, "__file__")
        if script and "failed to start" in str(error):
            raise RuntimeError(f"the LocalCluster's workers failed to start; {_GUARD}") from error
        raise


def connect(executor, workers: int = 2, *, timeout: float = 10.0):
    """The ``distributed.Client`` of a ``"dask:..."`` executor: opened once, reused by later sweeps.

    ``"dask:local"`` starts a LocalCluster of ``workers`` single-threaded processes;
    ``"dask:ADDRESS"`` connects within ``timeout`` seconds, else ``ConnectionError`` naming the
    address. A ``distributed.Client`` is returned as it is. Nothing is computed here, so a
    command line can call it to fail early on a wrong address.

    >>> from distributed import LocalCluster
    >>> cluster = LocalCluster(n_workers=1, processes=False, protocol="tcp", dashboard_address=None)
    >>> executor = "dask:" + cluster.scheduler_address            # "dask:tcp://127.0.0.1:PORT"
    >>> connect(executor) is connect(executor), connect(executor).status   # opened once, then reused
    (True, 'running')
    >>> disconnect(executor); cluster.close()
    """
    if _is_client(executor):
        return executor
    if not isinstance(executor, str):
        raise TypeError(f"executor must be a 'dask:...' string or a distributed.Client; got {type(executor).__name__}")
    if not executor.startswith("dask:"):
        raise ValueError(f"executor {executor!r:.80} is not a Dask executor (expected 'dask:local' or 'dask:ADDRESS')")
    target = _dask_target(executor)
    workers = positive_int("workers", workers)
    timeout = positive("timeout", timeout)
    spec = f"dask:local/{workers}" if target == "local" else executor
    if spec in _CONNECTIONS and _CONNECTIONS[spec][0].status == "running":
        return _CONNECTIONS[spec][0]
    distributed = _distributed()
    cluster = None
    if target == "local":
        cluster = _local_cluster(distributed, workers)
        client = distributed.Client(cluster)
    else:
        where = dict(scheduler_file=target) if target.endswith(".json") else dict(address=target)
        try:
            client = distributed.Client(timeout=f"{timeout}s", **where)
        except (OSError, TimeoutError) as error:
            raise ConnectionError(f"executor {executor!r}: no Dask scheduler answered at {target} within "
                                  f"{timeout:g} s ({type(error).__name__}: {error})") from None
    if not _EXIT_HOOK:
        # Registered after distributed's own exit handlers, so it runs before them (last in, first out).
        atexit.register(disconnect)
        _EXIT_HOOK.append(disconnect)
    _CONNECTIONS[spec] = (client, cluster)
    return client


def connection_problem(executor, workers: int = 2) -> str | None:
    """None once a ``"dask:..."`` executor is connected (`connect`), else why it cannot be: for a
    command line to report before any work (an unknown form, no scheduler, no [dask] extra).

    >>> connection_problem("dask:nowhere")
    "executor 'dask:nowhere': after 'dask:' expected 'local', a scheduler address (tcp://host:8786 or host:8786) or a scheduler file (.json); got 'nowhere'"
    """
    workers = positive_int("workers", workers)
    try:
        connect(executor, workers)
    except (ImportError, ValueError, TypeError, ConnectionError) as error:
        return str(error)
    return None


def disconnect(executor=None) -> None:
    """Close the clients (and LocalClusters) that `connect` opened: all of them, or those of ``executor``.

    >>> from distributed import LocalCluster
    >>> cluster = LocalCluster(n_workers=1, processes=False, protocol="tcp", dashboard_address=None)
    >>> client = connect("dask:" + cluster.scheduler_address)
    >>> disconnect("dask:" + cluster.scheduler_address); client.status
    'closed'
    >>> cluster.close()
    """
    if executor is not None and not isinstance(executor, str):
        raise TypeError(f"executor must be a 'dask:...' string or None; got {type(executor).__name__}")
    for spec in list(_CONNECTIONS):
        if executor is None or spec == executor or spec.startswith(f"{executor}/"):
            client, cluster = _CONNECTIONS.pop(spec)
            _let_releases_arrive(client)
            client.close()
            if cluster is not None:
                cluster.close()


def _let_releases_arrive(client, timeout: float = 2.0) -> None:
    """Wait (briefly) until the client has told the scheduler to forget every released result,
    so closing a LocalCluster right after a sweep does not warn about results still held."""
    deadline = time.monotonic() + timeout
    while client.futures and time.monotonic() < deadline:
        time.sleep(0.02)


# ----------------------------------------------------------------------------- choosing

_EXPECTED = "None, 'processes', 'serial', 'dask:local', 'dask:ADDRESS' or a distributed.Client"


def _kind(executor) -> str:
    """"processes", "serial", "dask" or "client"; anything else is an error naming ``executor``."""
    if executor is None or executor == "processes":
        return "processes"
    if executor == "serial":
        return "serial"
    if isinstance(executor, str) and executor.startswith("dask:"):
        _dask_target(executor)
        return "dask"
    if _is_client(executor):
        return "client"
    if isinstance(executor, str):
        raise ValueError(f"executor must be {_EXPECTED}; got {executor!r:.80}")
    raise TypeError(f"executor must be {_EXPECTED}; got {type(executor).__name__}")


def runner(executor, workers: int, n_tasks: int | None = None):
    """The runner of ``executor`` (module docstring) with ``workers`` local processes or Dask workers.

    Local processes are not started for a single task (``n_tasks == 1``): it runs here.

    >>> runner(None, workers=1).name, runner(None, workers=2).name, runner(None, 2, n_tasks=1).name
    ('this process', '2 local processes', 'this process')
    """
    kind = _kind(executor)
    workers = positive_int("workers", workers)
    n_tasks = None if n_tasks is None else positive_int("n_tasks", n_tasks, minimum=0)
    if kind == "processes":
        return InProcess() if workers == 1 or n_tasks == 1 else LocalProcesses(workers)
    if kind == "serial":
        return InProcess()
    return DaskCluster(connect(executor, workers))


def describe(executor, workers: int) -> str:
    """A short readable name of ``executor`` (for reports), without connecting anywhere.

    >>> describe("dask:local", 2), describe(None, 1)
    ('dask:local (2 workers)', 'this process')
    """
    kind = _kind(executor)
    workers = positive_int("workers", workers)
    if kind == "processes":
        return "this process" if workers == 1 else f"{workers} local processes"
    if kind == "serial":
        return "this process"
    if kind == "dask":
        return executor if executor != "dask:local" else f"dask:local ({workers} workers)"
    return f"Dask client of {executor.scheduler.address}"
