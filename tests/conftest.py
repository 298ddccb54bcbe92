"""Hypothesis profiles shared by the whole suite.

* ``ci`` (chosen when the environment variable ``CI`` is set, as on the CI machine):
  200 examples per property, no deadline, derandomised so a run is reproducible.
* ``dev`` (default): 40 examples, no deadline — quick local runs.

Override with ``HYPOTHESIS_PROFILE=ci pytest``.
"""
import os

from hypothesis import HealthCheck, settings

settings.register_profile("ci", max_examples=200, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=40, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))
