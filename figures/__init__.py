"""Figures of the paper, and a few beyond it, rebuilt from the package's numerics and theory.

``python -m figures`` builds all of them into ``results/figures/`` (PNG, PDF and a JSON
manifest each); ``python -m figures NAME ...`` builds some; ``--fast`` a small version.
`FIGURES` maps each name to ``(module, function, what it shows)``; `build` runs one.

>>> sorted(FIGURES)[:2]
['appb3_jacobian', 'fig3']
"""
from __future__ import annotations

import importlib

FIGURES = {
    "fig3": ("figures.fig3_columns", "build", "Fig. 3: encoder columns, memorising vs generalising, sigma = 0.2"),
    "fig3_sigma1": ("figures.fig3_columns", "build_sigma1", "App. B.1: Fig. 3 at sigma = 1"),
    "fig3_sigma5": ("figures.fig3_columns", "build_sigma5", "App. B.1: Fig. 3 at sigma = 5"),
    "fig4": ("figures.fig4_spikiness", "build", "Fig. 4: Std(h) distributions and one sample's representation"),
    "fig6": ("figures.fig6_hybrid", "build", "Fig. 6: hybrid regime with duplicated samples"),
    "appb3_jacobian": ("figures.appb3_jacobian", "build", "App. B.3: singular values of the denoiser Jacobian"),
    "shrinkage": ("figures.shrinkage", "build", "Beyond: trained vs predicted column norms and shrinkage spectra"),
    "phase": ("figures.phase", "build", "Beyond: regime phase diagram over (n, p) and sigma vs the allocation rule"),
    "residual": ("figures.residual", "build", "Beyond: distance to the block point against gamma^2/sigma^2"),
}


def build(name: str, config) -> dict:
    """Build the figure ``name`` with ``config`` (`figures.common.Config`); returns its manifest."""
    if name not in FIGURES:
        raise ValueError(f"unknown figure {name!r}; choose from {', '.join(FIGURES)}")
    from threadpoolctl import threadpool_limits

    module, function, _ = FIGURES[name]
    # The matrices here are small: one BLAS thread is faster than two fighting over the
    # cores with numba's threads (the exact objective) and with other processes.
    with threadpool_limits(1, "blas"):
        return getattr(importlib.import_module(module), function)(config)
