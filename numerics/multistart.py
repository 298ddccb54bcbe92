"""Many random starts of `numerics.training.train`, as a sweep on any executor, checkpointed and resumable.

`multistart` reports the distribution of final losses and structures
(`numerics.compare.ColumnStructure.signature`: memorised samples, neurons per cluster,
zero and mixed columns) — the numerical evidence on the global minimiser. The starts are
the tasks of `numerics.sweep.sweep` (local processes, or a Dask cluster); finished starts
are checkpointed atomically and skipped on resume; an unfinished start resumes from its
last saved iterate.

>>> import numpy as np
>>> X = 2.0 * np.eye(4)[:, :2]
>>> out = multistart(X, 3, 0.2, 0.01, n_starts=2, workers=1, tied=True)
>>> out.losses.shape, out.loss_levels()[0][1]
((2,), 2)
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from numerics.compare import column_structure
from numerics.sweep import sweep
from numerics.training import train
from numerics.validation import as_matrix, labels_for, nonnegative, optional_flag, positive_int

__all__ = ["multistart", "MultistartResult"]


@dataclass
class MultistartResult:
    """Outcome of `multistart`: one entry per start, in start order.

    ``seeds`` the train seeds; ``losses``, ``rel_grad_norms``, ``converged`` per start;
    ``structures`` per start: (n_memorized, neurons per cluster as a sorted tuple of
    (label, count), n_zero, n_mixed); ``best_index`` the lowest loss; ``best_W1``,
    ``best_W2`` its weights; ``computed`` how many starts ran in this call (the rest came
    from checkpoints); ``wall_time`` of this call; ``summaries`` each start's
    `TrainResult.summary` with its structure.
    """
    seeds: np.ndarray
    losses: np.ndarray
    rel_grad_norms: np.ndarray
    converged: np.ndarray
    structures: list
    best_index: int
    best_W1: np.ndarray
    best_W2: np.ndarray
    computed: int
    wall_time: float
    summaries: list

    def loss_levels(self, rtol=1e-6):
        """Distinct final-loss levels (within ``rtol``), ascending, with how many starts reached each."""
        rtol = nonnegative("rtol", rtol)
        levels: list = []
        for value in np.sort(self.losses):
            if levels and abs(value - levels[-1][0]) <= rtol * max(abs(levels[-1][0]), 1e-300):
                levels[-1][1] += 1
            else:
                levels.append([float(value), 1])
        return [(value, count) for value, count in levels]

    def structure_counts(self) -> dict:
        """{structure: number of starts} — how often each allocation was found."""
        counts: dict = {}
        for s in self.structures:
            counts[s] = counts.get(s, 0) + 1
        return counts


# ----------------------------------------------------------------------------- one start


def _run_start(*, X, labels, index, p, sigma, lam, train_kwargs, folder, seed):
    """Train start ``index`` (resuming ``partial_K`` in ``folder``); its summary, structure and weights.

    A task of `numerics.sweep.sweep`: the sweep saves the result as ``start_K`` in ``folder``;
    the partial iterate is dropped here once the start has finished.
    """
    partial = None if folder is None else (folder, f"partial_{index:04d}")
    fit = train(X, p, sigma, lam, seed=int(seed), checkpoint=partial, progress=False, **train_kwargs)
    info = column_structure(fit.W1, fit.W2, X, labels)
    summary = fit.summary()
    summary.update(index=index, structure=info.signature, neurons_per_cluster=info.neurons_per_cluster,
                   n_memorized=info.n_memorized, W1=fit.W1, W2=fit.W2)
    if folder is not None:
        for suffix in (".npz", ".json"):
            path = os.path.join(folder, f"partial_{index:04d}{suffix}")
            if os.path.exists(path):
                os.remove(path)
    return summary


def multistart(X, p, sigma, lam, n_starts=32, *, seed=0, labels=None, workers=2, executor=None,
               checkpoint_dir=None, progress=None, **train_kwargs) -> MultistartResult:
    """Run `train` from ``n_starts`` random initialisations on ``workers`` processes, or on ``executor``.

    The starts are the tasks of a `numerics.sweep.sweep`: ``executor`` None runs them on
    ``workers`` local processes (this process when 1), ``"dask:local"`` / ``"dask:ADDRESS"`` /
    a ``distributed.Client`` on Dask, with the same numbers everywhere.
    Start k uses ``train(..., seed=s_k)`` with ``s_k`` drawn from ``SeedSequence(seed)``;
    ``train_kwargs`` (``tied``, ``gtol``, ``warmup``, …) go to every start. ``labels`` (one
    per column of X) group samples into clusters for the structures. ``checkpoint_dir``:
    each finished start is saved there atomically (``start_K.npz`` + ``.json`` with its
    parameters and summary); a second call with the same arguments skips them, and a start
    interrupted midway resumes from its last iterate (``partial_K``, saved every
    ``checkpoint_every`` seconds of `train`; on a cluster the worker writes it, so resuming a
    partial start there needs a shared folder). A checkpoint_dir holds one run: starts saved
    with other arguments are a ValueError. Every start runs with one numba and one BLAS thread.

    >>> X = np.array([[2.0, -1.0], [0.0, 1.7]])                # X (d, n) = (2, 2)
    >>> runs = multistart(X, 2, 0.1, 0.01, n_starts=3, workers=1, tied=True, progress=False)
    >>> [(round(loss, 4), count) for loss, count in runs.loss_levels()]   # two loss levels over 3 starts
    [(0.0498, 2), (1.9699, 1)]
    >>> runs.structures[runs.best_index][0]                    # at the lowest loss both samples are memorised
    2
    """
    X = as_matrix("X", X, cols_name="n")
    p = positive_int("p", p)
    n_starts = positive_int("n_starts", n_starts)
    workers = positive_int("workers", workers)
    sigma = nonnegative("sigma", sigma, symbol="σ")
    lam = nonnegative("lam", lam, symbol="λ")
    progress = optional_flag("progress", progress)
    if labels is not None:
        labels = labels_for("labels", labels, X.shape[1], d=X.shape[0])
    if "checkpoint" in train_kwargs:
        raise TypeError("multistart checkpoints every start itself: pass checkpoint_dir, not checkpoint")
    seed = positive_int("seed", seed, minimum=0)
    tasks = [dict(index=k, p=p, sigma=sigma, lam=lam, train_kwargs=dict(sorted(train_kwargs.items())))
             for k in range(n_starts)]
    names = None if checkpoint_dir is None else [f"start_{k:04d}" for k in range(n_starts)]
    out = sweep(_run_start, tasks, shared=dict(X=X, labels=labels), unkeyed=dict(folder=checkpoint_dir),
                seed=seed, executor=executor, workers=workers, cache_dir=checkpoint_dir, names=names,
                progress=progress, desc="multistart")
    results = {k: ({key: v for key, v in r.items() if key not in ("W1", "W2")}, r["W1"], r["W2"])
               for k, r in enumerate(out.results)}
    summaries = [results[k][0] for k in range(n_starts)]
    losses = np.array([s["loss"] for s in summaries])
    best = int(np.argmin(losses))
    return MultistartResult(
        seeds=np.asarray(out.seeds, dtype=np.int64), losses=losses,
        rel_grad_norms=np.array([s["rel_grad_norm"] for s in summaries]),
        converged=np.array([bool(s["converged"]) for s in summaries]),
        structures=[tuple(s["structure"]) for s in summaries], best_index=best,
        best_W1=results[best][1], best_W2=results[best][2], computed=len(out.computed),
        wall_time=out.wall_time, summaries=summaries)
