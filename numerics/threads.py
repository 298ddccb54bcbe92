"""Thread limits: the one place that sets how many threads BLAS, OpenMP and numba may use.

Most problems here are small (d, p ≤ 100): waking a thread pool costs more than the work,
and on a shared 2-core machine two pools (BLAS and numba) fight over the cores. Hence

* `single_thread` — one thread for the native pools (BLAS and OpenMP; ``user_api="blas"``
  for BLAS only) and, unless ``numba=False``, for numba; everything is restored on exit;
* `numba_threads` — numba's thread count inside a block (the exact objective switches to
  one thread for small problems);
* `single_thread_environment` / `single_thread_worker` — the same for the worker processes
  of a pool (environment variables read at start-up, and numba in the initializer).

Thread counts never change results: the objective sums in a fixed number of chunks.

>>> with single_thread():
...     import numba
...     numba.get_num_threads()
1
"""
from __future__ import annotations

import contextlib
import functools
import os

from numerics.validation import flag, positive_int

__all__ = ["single_thread", "numba_threads", "single_thread_environment", "single_thread_worker",
           "THREAD_VARIABLES"]

THREAD_VARIABLES = ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


@functools.cache
def _controller():
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


@contextlib.contextmanager
def numba_threads(count: int):
    """Run the block with ``count`` numba threads, restoring the previous count afterwards.

    >>> import numba
    >>> with numba_threads(1):
    ...     numba.get_num_threads()
    1
    """
    import numba

    count = positive_int("count", count)
    if count > numba.config.NUMBA_NUM_THREADS:
        raise ValueError(f"count must be at most numba's {numba.config.NUMBA_NUM_THREADS} threads; got {count}")
    previous = numba.get_num_threads()
    numba.set_num_threads(count)
    try:
        yield
    finally:
        numba.set_num_threads(previous)


@contextlib.contextmanager
def single_thread(*, numba: bool = True, user_api: str | None = None):
    """One thread for the native thread pools (all, or ``user_api`` only) and, if ``numba``, for numba.

    >>> from threadpoolctl import threadpool_info
    >>> with single_thread(numba=False, user_api="blas"):
    ...     print({pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"})
    {1}
    """
    numba = flag("numba", numba)
    if user_api not in (None, "blas", "openmp"):
        raise ValueError(f"user_api must be None, 'blas' or 'openmp'; got {user_api!r:.60}")
    with contextlib.ExitStack() as stack:
        stack.enter_context(_controller().limit(limits=1, user_api=user_api))
        if numba:
            stack.enter_context(numba_threads(1))
        yield


@contextlib.contextmanager
def single_thread_environment():
    """Set `THREAD_VARIABLES` to 1 for processes started inside the block (spawned pool workers).

    >>> with single_thread_environment():
    ...     os.environ["OMP_NUM_THREADS"]
    '1'
    """
    saved = {name: os.environ.get(name) for name in THREAD_VARIABLES}
    os.environ.update({name: "1" for name in THREAD_VARIABLES})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def single_thread_worker() -> None:
    """Pool initializer: one numba thread in this worker process.

    >>> import numba
    >>> from concurrent.futures import ThreadPoolExecutor
    >>> with ThreadPoolExecutor(1, initializer=single_thread_worker) as pool:   # a process pool in practice
    ...     pool.submit(numba.get_num_threads).result()
    1
    """
    try:
        import numba

        numba.set_num_threads(1)
    except (ImportError, ValueError):
        pass
