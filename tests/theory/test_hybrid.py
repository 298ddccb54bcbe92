"""Corollary 3.4: duplicates with n_l copies get one memorising column; the rest generalise."""
from __future__ import annotations


import numpy as np
import pytest
import sympy as sp

import theory.hybrid as hyb
from numerics.objective import expected_loss
from theory import memorization
from theory.errors import AssumptionError
from theory.predict import block_weights, hybrid_weights, predicted_loss, switching_margin
from theory.symbols import lam, n, n_l, s


def test_duplicate_scale_is_eq8_with_p_l_one():
    assert sp.simplify(hyb.duplicate_r_sq_from_eq8() - hyb.duplicate_r_sq_theory()) == 0
    # one copy is the memorisation column of Cor. 3.2; n_l copies divide the decay by n_l
    assert sp.simplify(hyb.duplicate_r_sq_from_eq8().subs(n_l, 1) - memorization.r_eq9() ** 2) == 0
    assert sp.simplify(hyb.duplicate_r_sq_from_eq8()
                       - (memorization.r_eq9() ** 2).subs(lam, lam / n_l)) == 0
    assert sp.simplify(hyb.duplicate_loss_no_decay() - n_l * memorization.loss_per_sample_no_decay()) == 0
    assert hyb.duplicate_validity() == sp.StrictGreaterThan(n_l * s, n * lam)


def _instance(rng):
    """Two duplicated samples (5 and 3 copies) and two generalising clusters in R^7.

    The four centres are a regular tetrahedron (pairwise cosine −1/3, β < 0) of norm 2√3; each
    generalising cluster spreads in its own two extra coordinates (α ≈ 0.1).
    """
    tetrahedron = np.array([[1.0, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]]).T
    centres = np.zeros((7, 4))
    centres[:3] = 2.0 * tetrahedron
    duplicated = centres[:, :2]
    clusters = []
    for k, dims in ((2, slice(3, 5)), (3, slice(5, 7))):
        deviations = np.zeros((7, 6))
        deviations[dims] = 0.3 * rng.standard_normal((2, 6))
        deviations -= deviations.mean(axis=1, keepdims=True)
        clusters.append(centres[:, [k]] + deviations)
    return duplicated, np.array([5, 3]), clusters


def test_hybrid_columns_are_eq8_blocks():
    rng = np.random.default_rng(0)
    duplicated, copies, clusters = _instance(rng)
    sig, lam_value = 0.2, 0.01
    W = hybrid_weights(duplicated, copies, clusters, [2, 1], sig, lam_value)
    n_total = copies.sum() + sum(X.shape[1] for X in clusters)
    assert W.shape == (7, 2 + 2 + 1)
    # two constructions of the same columns (closed-form r_l vs an SVD block): rounding of an
    # SVD of entries ~1, ≈ 1e-15; 1e-12 absolute is the margin
    for l in range(2):
        copies_matrix = np.repeat(duplicated[:, [l]], copies[l], axis=1)
        assert np.allclose(W[:, [l]], block_weights(copies_matrix, 1, n_total, sig, lam_value), atol=1e-12)
    assert np.allclose(W[:, 2:4], block_weights(clusters[0], 2, n_total, sig, lam_value), atol=1e-12)


def test_hybrid_loss_matches_exact_objective():
    rng = np.random.default_rng(1)
    duplicated, copies, clusters = _instance(rng)
    sig, lam_value = 0.15, 0.005
    W = hybrid_weights(duplicated, copies, clusters, [2, 2], sig, lam_value)
    X = np.concatenate([np.repeat(duplicated[:, [l]], c, axis=1) for l, c in enumerate(copies)] + clusters, axis=1)
    labels = np.repeat(np.arange(4), [5, 3, 6, 6])
    predicted = predicted_loss(X, labels, [1, 1, 2, 2], sig, lam_value)
    exact = expected_loss(W, W, X, sig, lam_value)
    # Theorem 3.1: the gap is the mask-switching residual, ≲ ‖x‖² e^{−γ²/(2σ²)} per neuron and sample
    gamma = switching_margin(W, X)
    assert gamma / sig > 5
    bound = W.shape[1] * np.max(np.sum(X ** 2, axis=0)) * np.exp(-gamma ** 2 / (2 * sig ** 2))
    assert abs(exact - predicted) <= bound


def test_hybrid_assumption_errors():
    rng = np.random.default_rng(2)
    duplicated, copies, clusters = _instance(rng)
    with pytest.raises(AssumptionError, match=r"n_l‖x_l‖² > nλ.*measured n_l‖x_l‖² = 36 for l = 1"):
        hybrid_weights(duplicated, copies, clusters, [1, 1], 0.1, 36.0 / 20 + 0.01)
    near = np.concatenate([duplicated[:, :1], clusters[0][:, :1] + 0.1], axis=1)
    with pytest.raises(AssumptionError, match=r"β < 0"):
        hybrid_weights(near, [2, 2], clusters, [1, 1], 0.1, 0.0)
