"""The solvers in one namespace: `train`, `certify`, `multistart`, `train_to_minimum`.

Each lives in its own module — `numerics.training` (full-batch minimisation of the exact
eq. (6), in stages), `numerics.certify` (second-order certificates), `numerics.multistart`
(many random starts over processes, checkpointed), `numerics.escape` (train, certify, step
off saddles) — and shares the weight geometry of `numerics.geometry`. ``numerics.solvers.train``
and ``numerics.solvers.certify`` are the names the documentation uses.

>>> from numerics.data import memorization_set
>>> X = memorization_set(6, 3, norm=3.0, seed=0)       # pairwise cosine −1/2 (Cor. 3.2)
>>> fit = train(X, p=4, sigma=0.2, lam=0.01, seed=0, tied=True)
>>> fit.converged, certify(fit.W1, fit.W2, X, 0.2, 0.01).is_minimum
(True, True)
"""
from __future__ import annotations

from numerics.certify import CertifyReport, certify
from numerics.escape import CertifiedFit, train_to_minimum
from numerics.multistart import MultistartResult, multistart
from numerics.training import TrainResult, train

__all__ = ["train", "TrainResult", "certify", "CertifyReport", "multistart", "MultistartResult",
           "train_to_minimum", "CertifiedFit"]
