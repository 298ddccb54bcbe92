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

from numerics import compare as _compare
from numerics.certify import CertifyReport, certify
from numerics.escape import CertifiedFit, train_to_minimum
from numerics.geometry import ZERO_TOL
from numerics.geometry import invariant_basis as invariant_basis  # re-export: numerics.multinoise_training imports it from here
from numerics.geometry import loss_scale as loss_scale  # re-export: proofs/ and figures/ still import it from here
from numerics.multistart import MultistartResult, multistart
from numerics.training import TrainResult, train

__all__ = ["train", "TrainResult", "certify", "CertifyReport", "multistart", "MultistartResult",
           "train_to_minimum", "CertifiedFit"]


# re-export: proofs/ and figures/ still import it from here (dict form of numerics.compare.column_structure)
def column_structure(W1, W2, X, labels=None, *, cos_threshold=0.99, zero_tol=ZERO_TOL) -> dict:
    """`numerics.compare.column_structure` as a dict (``info["n_memorized"]`` …)."""
    return _compare.column_structure(W1, W2, X, labels, cos_threshold=cos_threshold, zero_tol=zero_tol).as_dict()


# re-export: proofs/ and figures/ still import it from here (the "owner" rule of numerics.compare.cluster_maps)
def cluster_maps(W1, W2, X, labels, *, zero_tol=ZERO_TOL) -> dict:
    """`numerics.compare.cluster_maps` with ``rule="owner"`` (columns assigned by `column_structure`)."""
    return _compare.cluster_maps(W1, W2, X, labels, rule="owner", zero_tol=zero_tol)
