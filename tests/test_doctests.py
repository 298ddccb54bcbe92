"""Every docstring example in theory/ and numerics/ runs and prints what it says."""
import doctest
import importlib
import pkgutil

import pytest

import numerics
import theory

MODULES = sorted(f"{package.__name__}.{info.name}" for package in (numerics, theory)
                 for info in pkgutil.iter_modules(package.__path__))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
