"""pytest set-up for the whole checkout (tests/conftest.py holds the tests' own fixtures).

Docstring examples are collected from every package (``--doctest-modules`` in setup.cfg).
Examples that use PyTorch need the optional extra ``[torch]``: without it they are skipped
with that reason, never failed; everything else must import and run in the core install.
"""
import importlib.util

import pytest

TORCH = importlib.util.find_spec("torch") is not None


def pytest_collection_modifyitems(config, items):
    if TORCH:
        return
    skip = pytest.mark.skip(reason="the example uses PyTorch: install the optional extra [torch]")
    for item in items:
        if isinstance(item, pytest.DoctestItem) and any(
                "import torch" in example.source for example in item.dtest.examples):
            item.add_marker(skip)
