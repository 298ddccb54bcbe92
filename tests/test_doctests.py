"""Every docstring example in theory/ and numerics/ runs and prints what it says."""
import doctest
import importlib
import pkgutil

import pytest

import numerics
import theory
from optional_deps import require

MODULES = sorted(f"{package.__name__}.{info.name}" for package in (numerics, theory)
                 for info in pkgutil.iter_modules(package.__path__))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    # Examples that need an optional extra (``__doctest_requires__``, pytest-doctestplus style)
    # are skipped without it locally and fail under CI.
    for requirements in getattr(module, "__doctest_requires__", {}).values():
        for requirement in requirements:
            require(requirement)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
