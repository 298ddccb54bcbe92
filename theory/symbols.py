"""The paper's scalar notation as sympy symbols, and the bridge from a derivation to numpy.

Every derivation in ``theory/`` is a function returning sympy expressions in these symbols;
its numeric twin is made from it by :func:`numeric_twin` (``sympy.lambdify``), so the number
a constructor uses is the formula a test proves, not a retyped copy.

>>> from theory.symbols import Lam, numeric_twin
>>> double = numeric_twin(lambda: 2 * Lam, (Lam,))
>>> float(double(3.0))
6.0
"""
from __future__ import annotations

from typing import Callable, Sequence

import sympy as sp

#: an eigenvalue of ``X_k X_kᵀ`` (energy of cluster k along one direction), Lemma D.1
Lam = sp.Symbol("Lambda", positive=True)
#: total number of training samples n (the weight-decay factor of eq. (8) uses it)
n = sp.Symbol("n", positive=True)
#: number of samples n_k of the cluster (the noise factor of eq. (8) uses it)
n_k = sp.Symbol("n_k", positive=True)
#: noise level σ of eq. (6)
sigma = sp.Symbol("sigma", positive=True)
#: weight decay λ of eq. (6)
lam = sp.Symbol("lambda", nonnegative=True)
#: the decay of Lemma D.1, λ' = nλ for a block of the full loss
lam_p = sp.Symbol("lambda'", nonnegative=True)
#: eigenvalue a of the block's linear map W2 W1ᵀ along one direction
a = sp.Symbol("a", real=True)
#: eigenvalue e of the uncentred second moment S_k = μ_k μ_kᵀ + Σ_k (eq. 10)
e = sp.Symbol("e", positive=True)
#: mixture weight ρ_k = lim n_k / n
rho = sp.Symbol("rho", positive=True)
#: squared norm ‖x‖² of one training sample
s = sp.Symbol("s", positive=True)
#: number of copies n_l of a duplicated sample (Cor. 3.4)
n_l = sp.Symbol("n_l", positive=True)
#: width p of the representation
p = sp.Symbol("p", positive=True)


def Phi(z):
    """Standard normal CDF as a sympy expression (erfc form: accurate in both tails).

    >>> Phi(0), Phi(sp.oo)
    (1/2, 1)
    """
    return sp.erfc(-z / sp.sqrt(2)) / 2


def phi(z):
    """Standard normal density as a sympy expression.

    >>> phi(0), sp.integrate(phi(a), (a, -sp.oo, sp.oo))      # 1/√(2π); a density
    (sqrt(2)/(2*sqrt(pi)), 1)
    """
    return sp.exp(-z ** 2 / 2) / sp.sqrt(2 * sp.pi)


class NumericTwin:
    """A numpy function lambdified from a derivation on first use.

    ``twin.derivation()`` returns the sympy expression, ``twin.args`` its arguments in call
    order, ``twin(*values)`` evaluates it (broadcasting over numpy arrays).

    >>> import numpy as np
    >>> square = NumericTwin(lambda: Lam ** 2, (Lam,))
    >>> square.args, square(np.array([1.0, 3.0]))
    ((Lambda,), array([1., 9.]))
    """

    def __init__(self, derivation: Callable[[], sp.Expr], args: Sequence[sp.Symbol]):
        self.derivation = derivation
        self.args = tuple(args)
        self._function = None
        self.__doc__ = (f"Numeric twin of ``{derivation.__module__}.{derivation.__name__}`` "
                        f"with arguments {', '.join(str(arg) for arg in self.args)}.")

    def __call__(self, *values):
        if len(values) != len(self.args):
            raise TypeError(f"expected {len(self.args)} arguments "
                            f"({', '.join(map(str, self.args))}); got {len(values)}")
        if self._function is None:
            self._function = sp.lambdify(self.args, self.derivation(), modules=["scipy", "numpy"])
        return self._function(*values)

    def __repr__(self) -> str:
        return f"NumericTwin({self.derivation.__name__}, args={self.args})"


def numeric_twin(derivation: Callable[[], sp.Expr], args: Sequence[sp.Symbol]) -> NumericTwin:
    """Return the numeric twin of ``derivation`` taking ``args`` in that order.

    >>> from theory.linear_block import optimal_scale                 # (Λ − λ')/(Λ + n_kσ²)
    >>> twin = numeric_twin(optimal_scale, (Lam, n_k, sigma, lam_p))
    >>> float(twin(4.0, 1, 1.0, 0.0))                                 # 4/(4 + 1)
    0.8
    """
    return NumericTwin(derivation, args)
