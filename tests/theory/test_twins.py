"""Every numeric twin agrees with the sympy expression it was lambdified from, at random points.

Tolerance: the twin runs in float64 (a few dozen operations, relative rounding ≲ 1e-13); the
reference is the same expression evaluated by sympy at 30 significant digits.
"""
from __future__ import annotations

import pytest
import sympy as sp
from hypothesis import given, settings, strategies as st

from theory import allocation, generalization, hybrid, linear_block, memorization, rectified_gaussian
from theory.symbols import NumericTwin

MODULES = (linear_block, memorization, generalization, hybrid, allocation, rectified_gaussian)
TWINS = {f"{module.__name__}.{name}": twin for module in MODULES
         for name, twin in vars(module).items() if isinstance(twin, NumericTwin)}

# Ranges keep every twin inside its domain: decay terms below the energies they are compared to.
RANGES = {"Lambda": (1.0, 10.0), "n_k": (1.0, 5.0), "sigma": (0.05, 3.0), "lambda'": (0.0, 0.9),
          "s": (1.0, 10.0), "n": (1.0, 5.0), "lambda": (0.0, 0.15), "p": (1.0, 20.0),
          "e": (0.1, 10.0), "rho": (0.2, 1.0), "n_l": (1.0, 5.0), "m": (-4.0, 4.0), "a": (-0.5, 1.5)}


def test_every_module_has_twins():
    assert len(TWINS) >= 25
    for module in MODULES:
        assert any(name.startswith(module.__name__ + ".") for name in TWINS)


@pytest.mark.parametrize("name", sorted(TWINS))
@settings(max_examples=15, deadline=None)
@given(unit=st.lists(st.floats(0.0, 1.0), min_size=6, max_size=6))
def test_twin_matches_its_derivation(name, unit):
    twin = TWINS[name]
    point = {}
    for symbol, u in zip(twin.args, unit):
        low, high = RANGES.get(str(symbol), (0.5, 3.0))   # "s" of the rectified Gaussian: a std
        point[symbol] = low + (high - low) * u
    exact = complex(twin.derivation().subs({k: sp.Float(v, 30) for k, v in point.items()}).evalf(30))
    assert abs(exact.imag) < 1e-25
    numeric = float(twin(*[point[symbol] for symbol in twin.args]))
    assert numeric == pytest.approx(exact.real, rel=1e-11, abs=1e-14)
