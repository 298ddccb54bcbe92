"""numerics.threads: limits apply inside the block and are restored after it, whatever happens."""
from __future__ import annotations

import os

import numba
import pytest
from threadpoolctl import threadpool_info

from numerics.threads import (THREAD_VARIABLES, numba_threads, single_thread, single_thread_environment,
                              single_thread_worker)


def blas_threads():
    return {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"}


def test_single_thread_limits_and_restores():
    before_numba, before_blas = numba.get_num_threads(), blas_threads()
    with single_thread():
        assert numba.get_num_threads() == 1 and blas_threads() == {1}
    assert numba.get_num_threads() == before_numba and blas_threads() == before_blas
    with single_thread(numba=False, user_api="blas"):
        assert numba.get_num_threads() == before_numba and blas_threads() == {1}
    with pytest.raises(RuntimeError):
        with single_thread():
            raise RuntimeError("inside")
    assert numba.get_num_threads() == before_numba and blas_threads() == before_blas


def test_numba_threads_is_checked_and_restored():
    before = numba.get_num_threads()
    with numba_threads(1):
        assert numba.get_num_threads() == 1
    assert numba.get_num_threads() == before
    with pytest.raises(ValueError, match="count"):
        with numba_threads(numba.config.NUMBA_NUM_THREADS + 1):
            pass
    with pytest.raises(TypeError, match="numba"):
        with single_thread(numba="yes"):
            pass


def test_worker_environment_is_restored(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setenv("MKL_NUM_THREADS", "4")
    with single_thread_environment():
        assert all(os.environ[name] == "1" for name in THREAD_VARIABLES)
    assert "OMP_NUM_THREADS" not in os.environ and os.environ["MKL_NUM_THREADS"] == "4"


def test_worker_initializer_sets_one_numba_thread():
    before = numba.get_num_threads()
    try:
        single_thread_worker()
        assert numba.get_num_threads() == 1
    finally:
        numba.set_num_threads(before)
