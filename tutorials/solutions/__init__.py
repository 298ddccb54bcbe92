"""Solutions to the tutorials' exercises (one module per tutorial) and the `exercise` decorator.

Each exercise in a tutorial is a function whose body you write. It is decorated with
``@exercise("<tutorial>")``: while your body returns ``None`` (not written yet) a call runs
the solution of the same name in ``tutorials/solutions/<tutorial>.py`` instead, and says so
once, so the notebook runs to its end either way; as soon as your function returns a value,
yours is used — and the checks after it test your answer.
"""
from __future__ import annotations

import functools
import importlib

__all__ = ["exercise"]

_ANNOUNCED: set = set()


def exercise(tutorial: str):
    """Decorator: use the decorated function, or the solution in ``solutions/<tutorial>.py`` while it returns None."""
    def decorate(function):
        @functools.wraps(function)
        def attempt(*args, **kwargs):
            value = function(*args, **kwargs)
            if value is not None:
                return value
            try:
                solutions = importlib.import_module(f"solutions.{tutorial}")
            except ModuleNotFoundError:
                raise NotImplementedError(f"{function.__name__} is an exercise: write its body (it returns None "
                                          f"so far, and tutorials/solutions/{tutorial}.py is not here)") from None
            if function.__name__ not in _ANNOUNCED:
                _ANNOUNCED.add(function.__name__)
                print(f"[{function.__name__}: not written yet, so this runs the solution in "
                      f"tutorials/solutions/{tutorial}.py]")
            return getattr(solutions, function.__name__)(*args, **kwargs)
        return attempt
    return decorate
