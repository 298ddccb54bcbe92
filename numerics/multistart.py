"""Many random starts of `numerics.training.train`, over worker processes, checkpointed and resumable.

`multistart` reports the distribution of final losses and structures
(`numerics.compare.ColumnStructure.signature`: memorised samples, neurons per cluster,
zero and mixed columns) — the numerical evidence on the global minimiser. Finished
starts are checkpointed atomically and skipped on resume; an unfinished start resumes
from its last saved iterate.

>>> import numpy as np
>>> X = 2.0 * np.eye(4)[:, :2]
>>> out = multistart(X, 3, 0.2, 0.01, n_starts=2, workers=1, tied=True)
>>> out.losses.shape, out.loss_levels()[0][1]
((2,), 2)
"""
from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import time
from dataclasses import dataclass

import numpy as np

from numerics.checkpoint import fingerprint, load_checkpoint, progress_bar, save_checkpoint
from numerics.compare import column_structure
from numerics.threads import single_thread_environment, single_thread_worker
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


_WORKER: dict = {}


def _worker_init(X, labels):
    single_thread_worker()
    _WORKER["X"] = X
    _WORKER["labels"] = labels


def _run_start(index, seed, p, sigma, lam, train_kwargs, folder, key):
    """Train start ``index`` (resuming ``partial_K``), save it as ``start_K`` and drop the partial."""
    X, labels = _WORKER["X"], _WORKER["labels"]
    partial = None if folder is None else (folder, f"partial_{index:04d}")
    fit = train(X, p, sigma, lam, seed=int(seed), checkpoint=partial, progress=False, **train_kwargs)
    info = column_structure(fit.W1, fit.W2, X, labels)
    summary = fit.summary()
    summary.update(index=index, fingerprint=key, structure=info.signature,
                   neurons_per_cluster=info.neurons_per_cluster, n_memorized=info.n_memorized)
    if folder is not None:
        save_checkpoint(folder, f"start_{index:04d}", {"W1": fit.W1, "W2": fit.W2}, summary)
        for suffix in (".npz", ".json"):
            path = os.path.join(folder, f"partial_{index:04d}{suffix}")
            if os.path.exists(path):
                os.remove(path)
    return index, summary, fit.W1, fit.W2


def _load_finished(folder, n_starts: int, key: str) -> dict:
    """{index: (summary, W1, W2)} of the starts already saved in ``folder`` by this run."""
    results: dict = {}
    for index in range(n_starts):
        saved = load_checkpoint(folder, f"start_{index:04d}")
        if saved is None:
            continue
        arrays, meta = saved
        if meta.get("fingerprint") != key:
            raise ValueError(f"checkpoint_dir {folder} holds starts of another run "
                             f"(fingerprint {meta.get('fingerprint')} != {key}); use a fresh checkpoint_dir")
        structure = meta["structure"]        # JSON turned the tuples into lists
        meta["structure"] = (structure[0], tuple(tuple(x) for x in structure[1]), structure[2], structure[3])
        results[index] = (meta, arrays["W1"], arrays["W2"])
    return results


# ----------------------------------------------------------------------------- the pool


def _run_serial(X, labels, jobs, bar, results) -> None:
    _worker_init(X, labels)
    for job in jobs:
        index, summary, W1, W2 = _run_start(*job)
        results[index] = (summary, W1, W2)
        bar.update(1)


def _run_pool(workers: int, X, labels, jobs, bar, results) -> None:
    """Spawned worker processes with one BLAS, OpenMP and numba thread each."""
    with single_thread_environment():
        context = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=context,
                                                    initializer=_worker_init, initargs=(X, labels)) as pool:
            futures = [pool.submit(_run_start, *job) for job in jobs]
            for future in concurrent.futures.as_completed(futures):
                index, summary, W1, W2 = future.result()
                results[index] = (summary, W1, W2)
                bar.update(1)


def multistart(X, p, sigma, lam, n_starts=32, *, seed=0, labels=None, workers=2,
               checkpoint_dir=None, progress=None, **train_kwargs) -> MultistartResult:
    """Run `train` from ``n_starts`` random initialisations on ``workers`` processes.

    Start k uses ``train(..., seed=s_k)`` with ``s_k`` drawn from ``SeedSequence(seed)``;
    ``train_kwargs`` (``tied``, ``gtol``, ``warmup``, …) go to every start. ``labels`` (one
    per column of X) group samples into clusters for the structures. ``checkpoint_dir``:
    each finished start is saved there atomically (``start_K.npz`` + ``.json`` with its
    parameters and summary); a second call with the same arguments skips them, and a start
    interrupted midway resumes from its last iterate (``partial_K``, saved every
    ``checkpoint_every`` seconds of `train`). Workers use one numba and one BLAS thread each.
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
    seeds = np.random.SeedSequence(positive_int("seed", seed, minimum=0)).generate_state(n_starts)
    key = fingerprint(X, p=p, sigma=sigma, lam=lam, seed=seed,
                      train={k: v for k, v in sorted(train_kwargs.items())})
    started = time.perf_counter()
    results = {} if checkpoint_dir is None else _load_finished(checkpoint_dir, n_starts, key)
    todo = [k for k in range(n_starts) if k not in results]
    jobs = [(index, seeds[index], p, sigma, lam, train_kwargs, checkpoint_dir, key) for index in todo]
    with progress_bar(progress, total=n_starts, initial=n_starts - len(todo), desc="multistart") as bar:
        if workers == 1 or len(todo) <= 1:
            _run_serial(X, labels, jobs, bar, results)
        else:
            _run_pool(workers, X, labels, jobs, bar, results)
    summaries = [results[k][0] for k in range(n_starts)]
    losses = np.array([s["loss"] for s in summaries])
    best = int(np.argmin(losses))
    return MultistartResult(
        seeds=np.asarray(seeds, dtype=np.int64), losses=losses,
        rel_grad_norms=np.array([s["rel_grad_norm"] for s in summaries]),
        converged=np.array([bool(s["converged"]) for s in summaries]),
        structures=[tuple(s["structure"]) for s in summaries], best_index=best,
        best_W1=results[best][1], best_W2=results[best][2], computed=len(todo),
        wall_time=time.perf_counter() - started, summaries=summaries)
