"""Figures of the paper, and a few beyond it, rebuilt from the package's numerics and theory.

``python -m figures`` builds all of them into ``results/figures/`` (PNG, PDF and a JSON
manifest each); ``python -m figures NAME ...`` builds some; ``--fast`` a small version. The
exit status is non-zero when a figure cannot be built or one of its checks does not hold.

The figure protocol
-------------------
A figure is a module with three functions, registered in `FIGURES`:

``compute(config, **options) -> dict``
    The numbers the figure shows: trains or loads cached models (`figures.models`), runs the
    theory, never draws. The result must hold ``parameters`` (every setting that produced
    the numbers), ``paper`` (the paper's item, e.g. ``"Fig. 6"``, or ``"beyond (...)"``) and
    ``caption``; all other keys are the manifest's ``numbers``, except ``arrays`` (large
    arrays only the drawing needs, e.g. images; not saved).
``draw(numbers) -> matplotlib.figure.Figure``
    The picture of compute's result and nothing else: formatting only. Build a
    `matplotlib.figure.Figure` directly (no pyplot, hence no backend and no global state).
``checks(numbers) -> list[dict]``
    The claims the figure illustrates, each ``figures.common.check(claim, measured, bound,
    holds)``, as a pure function of the numbers *as the manifest stores them* (JSON values:
    lists and floats), so a saved manifest can be re-checked. Every bound states where it
    comes from. A check known not to hold is marked ``expected_failure="reason"`` (rare).

`build` (or `figures.common.build_figure`) runs compute → checks → draw and writes
``NAME.{png,pdf,json}``; the manifest's keys are ``figure, fast, seed, paper, caption,
parameters, numbers, checks, files``. Variants of one module (``fig3``, ``fig3_sigma1``,
``fig3_sigma5``) are registry entries with different ``options`` for ``compute``.

A minimal figure, built into a temporary folder:

>>> import tempfile
>>> import types
>>> from matplotlib.figure import Figure as MplFigure
>>> from figures.common import Config, build_figure, check
>>> def compute(config):
...     x = np.linspace(0.0, 1.0, config.pick(101, 11))
...     return dict(paper="beyond", caption="The mean of a uniform grid on [0, 1].",
...                 parameters=dict(points=x.size), mean=float(x.mean()), arrays=dict(x=x))
>>> def draw(numbers):
...     figure = MplFigure(figsize=(3, 2))
...     figure.subplots().plot(numbers["arrays"]["x"])
...     return figure
>>> def checks(numbers):      # a symmetric grid's mean is 1/2 up to float64 rounding (~1e-16)
...     return [check("the grid's mean is 1/2", numbers["mean"], 0.5, abs(numbers["mean"] - 0.5) <= 1e-15)]
>>> demo = types.SimpleNamespace(compute=compute, draw=draw, checks=checks)
>>> folder = tempfile.mkdtemp()
>>> manifest = build_figure("demo", demo, Config(output=folder, cache=folder, fast=True))
>>> sorted(manifest)
['caption', 'checks', 'fast', 'figure', 'files', 'numbers', 'paper', 'parameters', 'seed']
>>> list(manifest["numbers"]), manifest["checks"][0]["holds"], manifest["files"]
(['mean'], True, ['demo.png', 'demo.pdf', 'demo.json'])

A real figure lives in ``figures/NAME.py`` and is registered as
``FIGURES["NAME"] = Figure("figures.NAME", "what it shows")``.

>>> sorted(FIGURES)[:2]
['appb3_jacobian', 'fig2']
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field

import numpy as np  # noqa: F401  (used by the docstring example)


@dataclass(frozen=True)
class Figure:
    """A registry entry: the module implementing the protocol, one line for ``--list``, compute's
    options, and the optional modules it needs (``requires``; see `missing`)."""

    module: str
    what: str
    options: dict = field(default_factory=dict)
    requires: tuple = ()


TORCH_EXTRA = ("torch", "diffusers")      # the [torch] extra (pip install -e '.[torch]')

FIGURES = {
    "fig3": Figure("figures.fig3_columns", "Fig. 3: encoder columns, memorising vs generalising, sigma = 0.2",
                   dict(sigma=0.2)),
    "fig3_sigma1": Figure("figures.fig3_columns", "App. B.1: Fig. 3 at sigma = 1", dict(sigma=1.0)),
    "fig3_sigma5": Figure("figures.fig3_columns", "App. B.1: Fig. 3 at sigma = 5", dict(sigma=5.0)),
    "fig2": Figure("figures.fig2_sampling", "Fig. 2: sampling memorising vs generalising denoisers, nearest training image"),
    "fig4": Figure("figures.fig4_spikiness", "Fig. 4: Std(h) and participation ratio; one sample's representation"),
    "fig6": Figure("figures.fig6_hybrid", "Fig. 6: hybrid regime with duplicated samples"),
    "appb3_jacobian": Figure("figures.appb3_jacobian", "App. B.3: singular values of the denoiser Jacobian"),
    "shrinkage": Figure("figures.shrinkage", "Beyond: trained vs predicted column norms and shrinkage spectra"),
    "phase": Figure("figures.phase", "Beyond: regime phase diagram over (n, p) and sigma vs the allocation rule"),
    "residual": Figure("figures.residual", "Beyond: distance to the block point against gamma^2/sigma^2"),
    "memorisation_vs_n": Figure("figures.memorisation_vs_n",
                                "Beyond: copies among generated samples against n, for several widths p"),
    "table1": Figure("figures.table1", "Table 1: prompt-free detection (Std and baselines), ReLU DAE and UNet DDPM"),
    "fig5": Figure("figures.fig5_detection", "Fig. 5: Std of memorised vs generalised DDPM samples",
                   requires=TORCH_EXTRA),
    "fig7": Figure("figures.fig7_steering", "Fig. 7: steering by a mean representation, memorised vs generalised",
                   requires=TORCH_EXTRA),
}


def missing_modules(modules) -> list[str]:
    """Those of ``modules`` that are not installed.

    >>> missing_modules(["numpy", "no_such_module_here"])
    ['no_such_module_here']
    """
    import importlib.util

    return [module for module in modules if importlib.util.find_spec(module) is None]


def missing(name: str) -> list[str]:
    """The optional modules figure ``name`` needs that are not installed (empty: it can be built).

    >>> missing("fig4")
    []
    """
    if name not in FIGURES:
        raise ValueError(f"unknown figure {name!r}; choose from {', '.join(FIGURES)}")
    return missing_modules(FIGURES[name].requires)


def buildable() -> list[str]:
    """The registered figures whose optional modules are installed."""
    return [name for name in FIGURES if not missing(name)]


def build(name: str, config) -> dict:
    """Build the figure ``name`` with ``config`` (`figures.common.Config`); returns its manifest."""
    if name not in FIGURES:
        raise ValueError(f"unknown figure {name!r}; choose from {', '.join(FIGURES)}")
    from figures.common import build_figure
    from numerics.threads import single_thread

    absent = missing(name)
    if absent:
        raise ModuleNotFoundError(f"figure {name!r} needs {', '.join(absent)}: pip install -e '.[torch]'")
    entry = FIGURES[name]
    # The matrices here are small: one BLAS thread is faster than two fighting over the
    # cores with numba's threads (the exact objective) and with other processes.
    with single_thread(numba=False, user_api="blas"):
        return build_figure(name, importlib.import_module(entry.module), config, **entry.options)
