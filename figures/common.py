"""Shared plumbing for the figures: run settings, atomic output, the model cache, small metrics.

Every figure module has one public function ``build(config) -> dict`` that draws one figure
and returns its manifest. The manifest is also written next to the PNG and PDF as
``NAME.json``; it holds the parameters (``parameters``), the numbers the figure shows
(``numbers``), the theory's values next to the trained ones, and the claims checked on them
(``checks``: a list of ``{claim, measured, bound, holds}``).

>>> config = Config(output="/tmp/figs", fast=True)
>>> config.pick(default=10_000, fast=500)
500
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass

import numpy as np

from numerics.checkpoint import (
    atomic_write,
    jsonable,
    load_checkpoint,
    progress_bar,
    progress_enabled,
    save_checkpoint,
)

# Bump when a change to training code or parameters must invalidate cached models.
CACHE_VERSION = 3


@dataclass(frozen=True)
class Config:
    """Where to write, where to cache, which seed, and whether to build the small (--fast) version."""

    output: str = os.path.join("results", "figures")
    cache: str = os.path.join("results", "cache")
    seed: int = 0
    fast: bool = False
    progress: bool | None = None      # None: bars only on a terminal and outside CI

    def pick(self, default, fast):
        """The default-mode value or the fast-mode value of a setting."""
        return fast if self.fast else default

    @property
    def show_progress(self) -> bool:
        return progress_enabled(self.progress)

    def bar(self, **kwargs):
        """A tqdm progress bar obeying ``progress`` (silent under CI or without a TTY)."""
        return progress_bar(self.progress, **kwargs)


# ----------------------------------------------------------------------------- JSON and files


def save_figure(fig, name: str, manifest: dict, config: Config) -> dict:
    """Save ``fig`` as NAME.png and NAME.pdf and ``manifest`` as NAME.json in ``config.output``."""
    import matplotlib.pyplot as plt

    files = {ext: os.path.join(config.output, f"{name}.{ext}") for ext in ("png", "pdf", "json")}
    for ext in ("png", "pdf"):
        atomic_write(files[ext], lambda stream, ext=ext: fig.savefig(stream, format=ext, dpi=130,
                                                                     bbox_inches="tight"))
    plt.close(fig)
    manifest = jsonable(dict(figure=name, fast=config.fast, seed=config.seed, **manifest,
                             files=[os.path.basename(path) for path in files.values()]))
    text = json.dumps(manifest, indent=1, sort_keys=False).encode()
    atomic_write(files["json"], lambda stream: stream.write(text))
    return manifest


def check(claim: str, measured, bound, holds: bool) -> dict:
    """One claim of the theory confronted with a measured number (an entry of ``checks``)."""
    return dict(claim=claim, measured=measured, bound=bound, holds=bool(holds))


# ----------------------------------------------------------------------------- model cache


def cache_key(kind: str, params: dict) -> str:
    """A short hash of the model kind, its parameters and `CACHE_VERSION`."""
    text = json.dumps(jsonable(dict(kind=kind, params=params, version=CACHE_VERSION)), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def cached(config: Config, kind: str, params: dict, compute):
    """Arrays from ``compute()`` (a dict of arrays, a dict of JSON info), cached under ``config.cache``.

    The cache entry ``KIND-HASH.npz`` + ``.json`` is keyed by every parameter of the model
    (the JSON repeats them, readable), written atomically and reused when present.
    """
    name = f"{kind}-{cache_key(kind, params)}"
    saved = load_checkpoint(config.cache, name)
    if saved is not None:
        arrays, meta = saved
        return arrays, meta["info"]
    arrays, info = compute()
    save_checkpoint(config.cache, name, arrays, jsonable(dict(kind=kind, params=params, info=info)))
    # Reload so a fresh and a cached run hand out identical values (JSON round trip included).
    arrays, meta = load_checkpoint(config.cache, name)
    return arrays, meta["info"]


# ----------------------------------------------------------------------------- metrics


def representation_std(H) -> np.ndarray:
    """Std(h) of every column h of H (p, m): the paper's spikiness metric (population std).

    ``Std(h)² = ‖h‖²/p − ‖h‖₁²/p²`` for h ≥ 0 (THEORY.md §4).

    >>> representation_std(np.array([[2.0, 1.0], [0.0, 1.0]])).tolist()
    [1.0, 0.0]
    """
    return np.std(np.asarray(H, dtype=float), axis=0)


def column_cosines(W, X) -> np.ndarray:
    """cos∠(w_j, x_i) for every column of W (d, p) and X (d, n): shape (p, n); 0 for zero columns."""
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
    """Mean, std, min, quartiles and max of an array (for manifests)."""
    values = np.asarray(values, dtype=float).ravel()
    q = np.percentile(values, [0, 25, 50, 75, 100])
    return dict(count=int(values.size), mean=float(values.mean()), std=float(values.std()),
                min=float(q[0]), q25=float(q[1]), median=float(q[2]), q75=float(q[3]), max=float(q[4]))


def image_side(d: int) -> int | None:
    """The side of a square image with d pixels, or None."""
    side = int(round(np.sqrt(d)))
    return side if side * side == d else None


def show_vector(ax, vector, title=None, fontsize=7) -> None:
    """Draw a d-vector as a square grey image (symmetric colour range), or as a line if d is not square."""
    side = image_side(vector.size)
    if side is None:
        ax.plot(vector, lw=0.6)
        ax.set_yticks([])
    else:
        bound = float(np.abs(vector).max()) or 1.0
        ax.imshow(vector.reshape(side, side), cmap="gray", vmin=-bound, vmax=bound)
        ax.set_yticks([])
    ax.set_xticks([])
    if title:
        ax.set_title(title, fontsize=fontsize)
