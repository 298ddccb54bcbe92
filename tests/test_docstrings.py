"""Every public function and user-facing class of `numerics` and `theory` has a runnable example.

The rule, per module (``pkg/<module>.py``, imported by name):

* public: a name without a leading underscore whose object is defined in that module
  (``__module__`` is the module; re-exported names are checked where they are defined);
* a public **function** must have ``>>>`` in its docstring: whatever doctest collects as a
  routine, i.e. a plain function or one behind a decorator that keeps ``__wrapped__``
  (``functools.cache``, ``contextlib.contextmanager``, a numba ``njit`` dispatcher).
  Module-level instances (the ``*_np`` numeric twins of ``theory``) are not routines:
  doctest does not collect them, and their examples live in the derivation they twin;
* a public **class** must have ``>>>`` in its docstring when a user constructs or calls it:
  it defines ``__call__`` or ``__enter__`` itself, or it is not a dataclass and defines its
  own ``__init__``. A dataclass without those (a result record returned by a function, whose
  example shows it) and a class without its own ``__init__`` (a warning category) are exempt.

pytest runs every such example (``--doctest-modules`` in setup.cfg), so the rule means each
of these names has an example that runs. A failure lists every missing name of the module.
"""
from __future__ import annotations

import dataclasses
import importlib
import inspect
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = ("numerics", "theory")



def module_names() -> list[str]:
    """Dotted names of every module of the packages (package ``__init__`` files excluded)."""
    return sorted(f"{package}.{path.stem}" for package in PACKAGES
                  for path in (ROOT / package).glob("*.py") if path.stem != "__init__")


def is_function(obj) -> bool:
    """A routine as doctest's finder sees one: unwrapped through ``__wrapped__``."""
    try:
        return inspect.isroutine(inspect.unwrap(obj))
    except ValueError:                  # a cycle of __wrapped__: not a function
        return False


def needs_example_as_class(cls: type) -> bool:
    """True for a class a user constructs or calls (the rule of the module docstring)."""
    own = vars(cls)
    if "__call__" in own or "__enter__" in own:
        return True
    return "__init__" in own and not dataclasses.is_dataclass(cls)


def missing_examples(module) -> list[str]:
    """Public functions and user-facing classes defined in ``module`` without ``>>>``."""
    missing = []
    for attribute, obj in vars(module).items():
        if attribute.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
            continue
        if is_function(obj) or (inspect.isclass(obj) and needs_example_as_class(obj)):
            if ">>>" not in (inspect.getdoc(obj) or ""):
                missing.append(attribute)
    return missing


def test_the_module_list_is_complete():
    names = module_names()
    assert {"numerics.objective", "numerics.validation", "theory.predict", "theory.symbols"} <= set(names)


def test_the_rule_on_known_cases():
    from numerics.diagnostics import SlopeTest
    from numerics.gaussian import norm_cdf
    from theory.diffusion import TheoryDenoiser
    from theory.errors import AssumptionError, AssumptionWarning
    from theory.linear_block import optimal_scale, optimal_scale_np
    from theory.predict import Prediction

    assert is_function(optimal_scale) and not inspect.isfunction(optimal_scale)   # functools.cache
    assert is_function(norm_cdf) and not inspect.isfunction(norm_cdf)             # numba.njit
    assert not is_function(optimal_scale_np)                                      # a NumericTwin instance
    assert needs_example_as_class(TheoryDenoiser)          # __call__
    assert needs_example_as_class(AssumptionError)         # its own __init__
    assert not needs_example_as_class(AssumptionWarning)   # a warning category
    assert not needs_example_as_class(Prediction)          # a result record
    assert not needs_example_as_class(SlopeTest)           # a result record


@pytest.mark.parametrize("name", module_names())
def test_every_public_function_has_an_example(name):
    missing = missing_examples(importlib.import_module(name))
    assert not missing, f"{name}: no '>>>' example in the docstring of {', '.join(missing)}"
