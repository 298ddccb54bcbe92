"""Top-level task functions for the sweep tests, importable by name in worker processes.

Worker processes (loky, Dask) import a task function by its module name; the test modules
themselves are imported by pytest under names a worker cannot import, so the tasks live here
(``tests`` is on the path: setup.cfg ``pythonpath``).
"""
from __future__ import annotations

import os
import time
import uuid

import numpy as np


def train_cell(X, labels, p, sigma, lam, seed):
    """One cell of a small (σ, p) sweep: train tied from a random start; weights, loss, structure."""
    from numerics.compare import column_structure      # imported here: the other tasks start workers light
    from numerics.training import train

    fit = train(X, p, sigma, lam, seed=seed, tied=True, gtol=1e-6, max_iter=400, progress=False)
    return dict(W1=fit.W1, W2=fit.W2, loss=fit.loss, rel_grad_norm=fit.rel_grad_norm,
                structure=column_structure(fit.W1, fit.W2, X, labels).signature)


def counted(index, scale, markers, fail_at=None):
    """Leave a marker file ``<index>-<random>`` in ``markers``, then return numbers of ``index``.

    Raises when ``index == fail_at`` and the file ``markers/FAIL`` exists, so one run can fail
    and the next (after removing FAIL) succeed with the same parameters, hence the same keys.
    """
    with open(os.path.join(markers, f"{index}-{uuid.uuid4().hex}"), "w", encoding="utf-8"):
        pass
    if index == fail_at and os.path.exists(os.path.join(markers, "FAIL")):
        raise RuntimeError(f"task {index} failed on purpose")
    rng = np.random.default_rng(index)
    return dict(index=index, vector=scale * rng.standard_normal(3), pair=(index, float(scale)))


def marker_counts(markers, n) -> list:
    """How many times each task index left a marker in ``markers``."""
    names = [name for name in os.listdir(markers) if name != "FAIL"]
    return [sum(name.split("-")[0] == str(index) for name in names) for index in range(n)]


def counted_after(index, scale, markers, cache, fail_at=None, sleep=0.0):
    """`counted` after ``sleep`` seconds; a failing task first waits (≤ 120 s) until the sweep has cached another.

    This makes "some tasks were finished and cached before the failure" certain on every
    executor, whatever the scheduling, so a resume test cannot pass vacuously.
    """
    time.sleep(sleep)
    if index == fail_at and os.path.exists(os.path.join(markers, "FAIL")):
        deadline = time.monotonic() + 120.0
        while not any(name.endswith(".json") for name in os.listdir(cache)) and time.monotonic() < deadline:
            time.sleep(0.05)
    return counted(index, scale, markers, fail_at)


PICKLED = []            # one entry each time a `CountedBlob` is pickled in this process


class CountedBlob:
    """Shared data that counts how often it is pickled (to check it is sent once per worker, not per task)."""

    def __init__(self, values):
        self.values = np.asarray(values)

    def __reduce__(self):
        PICKLED.append(1)
        return (CountedBlob, (self.values,))


def blob_sum(blob, index):
    """A task reading the shared blob."""
    return float(blob.values.sum()) + index
