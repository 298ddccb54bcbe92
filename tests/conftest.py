"""Shared set-up of the test suite: hypothesis profiles and the fixtures several test modules use.

Layout: ``tests/<package>/test_<module>.py`` mirrors the packages (``tests/numerics``,
``tests/theory``, ``tests/proofs``, ``tests/figures``); ``tests/README.md`` lists where a flat
``tests/test_*.py`` belongs. Helpers shared by several modules are plain modules here
(``oracles``: independent reference formulas; ``strategies``: hypothesis strategies;
``sweep_tasks``: task functions for the sweep tests), importable by name (setup.cfg puts ``tests`` on the path).

Hypothesis profiles:

* ``ci`` (chosen when the environment variable ``CI`` is set, as on the CI machine):
  200 examples per property, no deadline, derandomised so a run is reproducible.
* ``dev`` (default): 40 examples, no deadline — quick local runs.

Override with ``HYPOTHESIS_PROFILE=ci pytest``.
"""
import os

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("ci", max_examples=200, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=40, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


@pytest.fixture(scope="session")
def memorization():
    """Three samples in d = 6 with pairwise cosine −1/2 (β < 0, Cor. 3.2) and norms 3, 2.5, 2."""
    from numerics.data import memorization_set

    return memorization_set(6, 3, norm=[3.0, 2.5, 2.0], seed=0)


@pytest.fixture(scope="session")
def polished_mem(memorization):
    """W_mem (eq. 9 with p = 5 > n = 3: two zero columns) polished by `train` to a gtol-critical
    point, tied and untied (σ = 0.2, λ = 0.01)."""
    from numerics.training import train
    from oracles import w_mem

    W = w_mem(memorization, 5, 0.2, 0.01)
    tied = train(memorization, 5, 0.2, 0.01, init=W, tied=True)
    untied = train(memorization, 5, 0.2, 0.01, init=(W, W), tied=False)
    assert tied.converged and untied.converged
    return tied, untied
