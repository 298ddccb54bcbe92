"""Shared plumbing for the figures: run settings, the builder, checks, the model cache, small helpers.

`build_figure` runs one figure module through the protocol of `figures` (compute → checks →
draw → save) and writes ``NAME.png``, ``NAME.pdf`` and the manifest ``NAME.json``; the
manifest holds ``paper``, ``caption``, ``parameters``, ``numbers`` (what the figure shows, next
to the theory's values) and ``checks`` (claims confronted with the numbers, see `check`).

>>> config = Config(output="/tmp/figs", fast=True)
>>> config.pick(default=10_000, fast=500)
500
>>> check("one is below two", 1, 2, 1 <= 2)
{'claim': 'one is below two', 'measured': 1, 'bound': 2, 'holds': True}
"""
from __future__ import annotations

import hashlib
import json
import os
import warnings
from dataclasses import dataclass, replace

import numpy as np

from numerics.checkpoint import (
    CorruptFileError,
    atomic_write,
    jsonable,
    load_checkpoint,
    progress_bar,
    progress_enabled,
    save_checkpoint,
)
from numerics.validation import positive_int
from theory.errors import AssumptionWarning

# Bump when a change to training code or parameters must invalidate cached models.
CACHE_VERSION = 3
# Keys of compute()'s result that go to the manifest's top level; the rest are its numbers.
MANIFEST_KEYS = ("paper", "caption", "parameters")
# Key of compute()'s result holding large arrays that only draw() needs (not saved).
ARRAYS = "arrays"
FILE_TYPES = ("png", "pdf", "json")


@dataclass(frozen=True)
class Config:
    """Where to write, where to cache, which seed, and whether to build the small (--fast) version.

    >>> Config(seed=-1)
    Traceback (most recent call last):
    ...
    ValueError: seed must be an integer >= 0; got -1
    """

    output: str = os.path.join("results", "figures")
    cache: str = os.path.join("results", "cache")
    seed: int = 0
    fast: bool = False
    progress: bool | None = None      # None: bars only on a terminal and outside CI
    executor: str | None = None       # where sweeps run: None (local processes), "dask:local", "dask:ADDRESS"
    workers: int = 1                  # local processes, or LocalCluster workers with "dask:local"

    def __post_init__(self):
        from numerics.executors import describe

        object.__setattr__(self, "seed", positive_int("seed", self.seed, minimum=0))
        object.__setattr__(self, "workers", positive_int("workers", self.workers))
        describe(self.executor, self.workers)          # names a malformed executor now, connects nowhere

    @property
    def worker(self) -> "Config":
        """This configuration as a sweep task receives it: no progress bars, no executor of its own."""
        return replace(self, progress=False, executor=None, workers=1)

    def sweep(self, function, tasks, *, shared: dict, desc: str) -> list:
        """``[function(**shared, **task) for task in tasks]``, run on this configuration's executor.

        `numerics.sweep.sweep` does the work: ``function`` must be a top-level function,
        ``shared`` (e.g. ``dict(config=config.worker, X=X)``) reaches each worker once, and
        every task runs with one BLAS and one numba thread, so the numbers do not depend on
        where it ran (this process, local processes or a Dask cluster).
        """
        from numerics.sweep import sweep

        runner = dict(task_function=function, quiet=_ignored(AssumptionWarning))
        return sweep(run_task, list(tasks), shared={**shared, **runner}, executor=self.executor,
                     workers=self.workers, progress=self.progress, desc=desc).results

    def pick(self, default, fast):
        """The default-mode value or the fast-mode value of a setting."""
        return fast if self.fast else default

    @property
    def show_progress(self) -> bool:
        return progress_enabled(self.progress)

    def bar(self, **kwargs):
        """A tqdm progress bar obeying ``progress`` (silent under CI or without a TTY)."""
        return progress_bar(self.progress, **kwargs)


def _ignored(category) -> bool:
    """True if the current warning filters ignore ``category`` (probed, nothing is shown)."""
    with warnings.catch_warnings(record=True) as shown:
        warnings.warn("probe", category)
    return not shown


def run_task(task_function, quiet: bool, **arguments):
    """One task of `Config.sweep` in a worker: ``task_function(**arguments)``, with the caller's
    ignoring of `theory.errors.AssumptionWarning` carried over (worker processes start with the
    default warning filters)."""
    with warnings.catch_warnings():
        if quiet:
            warnings.simplefilter("ignore", AssumptionWarning)
        return task_function(**arguments)


# ----------------------------------------------------------------------------- checks


def check(claim: str, measured, bound, holds: bool, *, expected_failure: str | None = None) -> dict:
    """One claim of the theory confronted with a measured number (an entry of ``checks``).

    ``expected_failure``: the reason, stated in the manifest, why this check is known not to
    hold; such a check does not fail the build (use sparingly: a failing check is news).
    """
    entry = dict(claim=claim, measured=measured, bound=bound, holds=bool(holds))
    if expected_failure is not None:
        if not str(expected_failure).strip():
            raise ValueError("expected_failure must state a reason")
        entry["expected_failure"] = str(expected_failure)
    return entry


def failing(checks) -> list:
    """The checks that should hold and do not (those with an ``expected_failure`` reason excepted)."""
    return [c for c in checks if not c["holds"] and not c.get("expected_failure")]


def _validated_checks(name: str, checks) -> list:
    checks = list(checks)
    for entry in checks:
        if not (isinstance(entry, dict) and {"claim", "measured", "bound", "holds"} <= set(entry)):
            raise TypeError(f"{name}: checks() must return a list of figures.common.check(...) dicts; got {entry!r}")
    return checks


# ----------------------------------------------------------------------------- builder


def as_recorded(value):
    """``value`` as a manifest stores it: a JSON round trip (arrays → lists, numpy scalars → Python)."""
    return json.loads(json.dumps(jsonable(value)))


def build_figure(name: str, module, config: Config, **options) -> dict:
    """Run ``module`` through the figure protocol and save the result; returns the manifest.

    ``module.compute(config, **options)`` gives the numbers; ``module.checks`` receives them
    exactly as the manifest stores them (JSON values, so checks can be re-run on a saved
    manifest); ``module.draw`` receives compute's result as is (with its ``arrays``).
    """
    computed = dict(module.compute(config, **options))
    missing = [key for key in MANIFEST_KEYS if key not in computed]
    if missing:
        raise ValueError(f"{name}: compute() must return the keys {', '.join(missing)}")
    recorded = as_recorded({key: value for key, value in computed.items() if key != ARRAYS})
    checks = _validated_checks(name, module.checks(recorded))
    figure = module.draw(computed)
    manifest = dict(figure=name, fast=config.fast, seed=config.seed,
                    **{key: recorded[key] for key in MANIFEST_KEYS},
                    numbers={key: value for key, value in recorded.items() if key not in MANIFEST_KEYS},
                    checks=checks, files=[f"{name}.{ext}" for ext in FILE_TYPES])
    return save_figure(figure, name, manifest, config)


def save_figure(figure, name: str, manifest: dict, config: Config) -> dict:
    """Write ``figure`` as NAME.png and NAME.pdf and ``manifest`` as NAME.json in ``config.output``."""
    paths = {ext: os.path.join(config.output, f"{name}.{ext}") for ext in FILE_TYPES}
    for ext in ("png", "pdf"):
        atomic_write(paths[ext], lambda stream, ext=ext: figure.savefig(stream, format=ext, dpi=130,
                                                                        bbox_inches="tight"))
    manifest = jsonable(manifest)
    text = json.dumps(manifest, indent=1, sort_keys=False).encode()
    atomic_write(paths["json"], lambda stream: stream.write(text))
    return manifest


# ----------------------------------------------------------------------------- model cache


def cache_key(kind: str, params: dict) -> str:
    """A short hash of the model kind, its parameters and `CACHE_VERSION`."""
    text = json.dumps(jsonable(dict(kind=kind, params=params, version=CACHE_VERSION)), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _load_entry(config: Config, name: str):
    """A cache entry's (arrays, info), or None if absent; an unreadable entry warns and counts as absent."""
    try:
        saved = load_checkpoint(config.cache, name)
        if saved is None:
            return None
        arrays, meta = saved
        if not (isinstance(meta, dict) and "info" in meta):
            raise CorruptFileError(os.path.join(config.cache, name + ".json"), "no 'info' entry")
        return arrays, meta["info"]
    except CorruptFileError as error:
        warnings.warn(f"cache entry {error.path} is unreadable; recomputing it ({error})", RuntimeWarning,
                      stacklevel=3)
        return None


def cached(config: Config, kind: str, params: dict, compute):
    """Arrays from ``compute()`` (a dict of arrays, a dict of JSON info), cached under ``config.cache``.

    The cache entry ``KIND-HASH.npz`` + ``.json`` is keyed by every parameter of the model
    (the JSON repeats them, readable), written atomically and reused when present. A garbage
    or truncated entry (`numerics.checkpoint.CorruptFileError`) is reported with a warning
    naming the file and recomputed.
    """
    name = f"{kind}-{cache_key(kind, params)}"
    saved = _load_entry(config, name)
    if saved is not None:
        return saved
    arrays, info = compute()
    save_checkpoint(config.cache, name, arrays, jsonable(dict(kind=kind, params=params, info=info)))
    # Reload so a fresh and a cached run hand out identical values (JSON round trip included).
    arrays, meta = load_checkpoint(config.cache, name)
    return arrays, meta["info"]


# ----------------------------------------------------------------------------- metrics


def column_cosines(W, X) -> np.ndarray:
    """cos∠(w_j, x_i) for every column of W (d, p) and X (d, n): shape (p, n); 0 for zero columns.

    >>> column_cosines(np.array([[1.0, 0.0], [0.0, 0.0]]), np.array([[2.0], [2.0]])).round(4).tolist()
    [[0.7071], [0.0]]
    """
    norms_w = np.linalg.norm(W, axis=0)
    norms_x = np.linalg.norm(X, axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        cosine = (W.T @ X) / np.outer(norms_w, norms_x)
    return np.nan_to_num(cosine)


def columns_by_norm(W, X) -> dict:
    """Columns sorted by decreasing norm with their maximum cosine to a training sample (Fig. 3 titles)."""
    norms = np.linalg.norm(W, axis=0)
    order = np.argsort(-norms, kind="stable")
    cosine = column_cosines(W, X)
    return dict(order=order, norm=norms[order], max_cosine=cosine.max(axis=1)[order],
                nearest_sample=cosine.argmax(axis=1)[order])


def noisy_copies(X, sigma: float, draws: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """``draws`` noisy copies x_i + σε of every column: (Y (d, n·draws), sample index (n·draws,))."""
    index = np.repeat(np.arange(X.shape[1]), draws)
    return X[:, index] + sigma * rng.standard_normal((X.shape[0], index.size)), index


def summary(values) -> dict:
    """Mean, std, min, quartiles and max of an array (for manifests).

    >>> summary([1.0, 2.0, 3.0])["median"]
    2.0
    """
    values = np.asarray(values, dtype=float).ravel()
    q = np.percentile(values, [0, 25, 50, 75, 100])
    return dict(count=int(values.size), mean=float(values.mean()), std=float(values.std()),
                min=float(q[0]), q25=float(q[1]), median=float(q[2]), q75=float(q[3]), max=float(q[4]))


# ----------------------------------------------------------------------------- drawing helpers


def image_side(d: int) -> int | None:
    """The side of a square image with d pixels, or None.

    >>> image_side(1024), image_side(10)
    (32, None)
    """
    side = int(round(np.sqrt(d)))
    return side if side * side == d else None

