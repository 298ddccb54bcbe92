"""Optional dependencies of the test suite (the ``[torch]`` extra).

Locally a test that needs torch, diffusers or transformers is skipped when they are missing;
under CI (the environment variable ``CI`` is set, and CI installs the extra) a missing
package is an error, so that no such test is skipped there silently.
"""
import importlib
import os

import pytest


def require(name: str):
    """Import and return module ``name``; skip the test without it, except under CI."""
    if os.environ.get("CI"):
        try:
            return importlib.import_module(name)
        except ImportError as error:
            pytest.fail(f"{name} is not installed, but CI must run the tests of the [torch] extra "
                        f"(pip install -e '.[test,torch]'): {error}")
    return pytest.importorskip(name)
