"""numerics.compare: representation statistics, column structure, per-cluster maps and their two rules."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra.numpy import arrays

from numerics.compare import (IDLE, MIXED, ZERO, ColumnStructure, align_prediction, aligned_distance, all_on_mask,
                              compare_to_prediction,
                              cluster_maps, column_structure, map_residual, norm_ratio,
                              participation_ratio, representation_std, top_share)
from numerics.data import separable_clusters
from theory.predict import block_linear_map, partition_weights

# float64 rounding of sums of at most 8 squares/fourth powers of entries ≤ 10: relative 1e-15
# per operation; 1e-12 is a wide margin that still catches any formula error.
ROUNDING = 1e-12


# ----------------------------------------------------------------------------- representations


representations = arrays(np.float64, st.tuples(st.integers(1, 8), st.integers(1, 5)),
                         elements=st.floats(0.0, 10.0))


@given(representations)
def test_std_is_the_population_formula_of_the_paper(H):
    """Std(h)² = ‖h‖²/p − ‖h‖₁²/p² (docs/theory.md §4), an independent way to the same number."""
    p = H.shape[0]
    formula = np.sum(H ** 2, axis=0) / p - np.sum(np.abs(H), axis=0) ** 2 / p ** 2
    np.testing.assert_allclose(representation_std(H) ** 2, np.clip(formula, 0, None),
                               atol=ROUNDING * (1 + np.max(H) ** 2))


@given(representations)
def test_spikiness_statistics_are_ordered(H):
    """For h ≠ 0: 1 ≤ PR ≤ p, 1/PR ≤ top share ≤ 1 (max h² Σh² ≥ Σh⁴), ‖h‖₄/‖h‖₂ = PR^(−1/4).

    The statistics are scale free, so they hold for subnormal entries too (whose squares underflow)."""
    live = np.any(H != 0, axis=0)
    pr, share, ratio = participation_ratio(H)[live], top_share(H)[live], norm_ratio(H)[live]
    assert np.all(pr >= 1 - ROUNDING) and np.all(pr <= H.shape[0] * (1 + ROUNDING))
    assert np.all(share >= 1 / pr - ROUNDING) and np.all(share <= 1 + ROUNDING)
    np.testing.assert_allclose(ratio, pr ** -0.25, rtol=ROUNDING)
    assert np.all(participation_ratio(H)[~live] == 0) and np.all(top_share(H)[~live] == 0)


@pytest.mark.parametrize("q", [1, 2, 5])
def test_balanced_and_one_hot_extremes(q):
    H = np.zeros((8, 1))
    H[:q] = 3.0                                   # q equal entries: "balanced" over q neurons
    assert participation_ratio(H)[0] == pytest.approx(q, rel=ROUNDING)
    assert top_share(H)[0] == pytest.approx(1 / q, rel=ROUNDING)
    assert norm_ratio(H)[0] == pytest.approx(q ** -0.25, rel=ROUNDING)


def test_statistics_name_a_bad_representation():
    with pytest.raises(ValueError, match="H must be a 2-D"):
        representation_std(np.ones(3))
    with pytest.raises(ValueError, match="H must contain only finite"):
        top_share(np.array([[np.nan]]))
    with pytest.raises(TypeError, match="H"):
        norm_ratio("spiky")


# ----------------------------------------------------------------------------- column structure


def test_column_structure_on_constructed_weights():
    X = np.array([[2.0, -1.0, 0.0], [0.0, 1.5, 0.0], [0.0, 0.0, 1.0]])
    W = np.zeros((3, 5))
    W[:, 0] = X[:, 0]
    W[:, 1] = X[:, 1] + np.array([0.0, 0.01, -0.01])
    W[:, 2] = [-1.0, -1.0, 1.0]     # active on x_3 only (cluster 1 with the labels below)
    W[:, 4] = [1.0, 1.0, 1.0]       # active on x_1, x_2 (cluster 0) and x_3 (cluster 1): mixed
    info = column_structure(W, W, X, labels=[0, 0, 1])
    assert isinstance(info, ColumnStructure)
    assert info.n_zero == 1 and info.n_live == 4 and info.n_mixed == 1 and info.n_idle == 0
    assert info.cluster_of_column.tolist() == [0, 0, 1, ZERO, MIXED]
    assert info.neurons_per_cluster == {0: 2, 1: 1}
    assert info.memorized.tolist() == [True, True, False]
    assert info.signature == (2, ((0, 2), (1, 1)), 1, 1)
    W[:, 4] = [-1.0, -1.0, -1.0]    # on for no sample
    assert column_structure(W, W, X, labels=[0, 0, 1]).cluster_of_column[4] == IDLE


# ----------------------------------------------------------------------------- cluster maps


def test_the_two_rules_differ_on_a_partly_active_column_and_agree_at_a_block_point():
    X = np.array([[3.0, 3.0, -3.0], [0.5, -0.5, 0.0]])          # cluster 0: x_1, x_2; cluster 1: x_3
    labels = np.array([0, 0, 1])
    W = np.array([[1.0, 0.0, -1.0], [0.0, 1.0, 0.0]])            # column 1 is on for x_1 only
    owner = cluster_maps(W, W, X, labels, rule="owner")
    all_on = cluster_maps(W, W, X, labels, rule="all-on")
    e = np.eye(2)
    np.testing.assert_array_equal(owner[0], np.outer(e[0], e[0]) + np.outer(e[1], e[1]))
    np.testing.assert_array_equal(all_on[0], np.outer(e[0], e[0]))
    np.testing.assert_array_equal(owner[1], all_on[1])
    assert all_on_mask(W, X[:, labels == 0]).tolist() == [True, False, False]

    data = separable_clusters(5, [3, 3], alpha=0.05, beta=-0.5, norm=2.0, seed=0)
    W = partition_weights(data.X, data.labels, [2, 1], 0.1, 0.0)   # eq. (8): stable masks
    owner = cluster_maps(W, W, data.X, data.labels, rule="owner")
    all_on = cluster_maps(W, W, data.X, data.labels, rule="all-on")
    for k in (0, 1):
        np.testing.assert_array_equal(owner[k], all_on[k])
        # and the map is eq. (8)'s W_k W_kᵀ (Lemma D.1), independent of O_k: rounding only
        np.testing.assert_allclose(all_on[k], block_linear_map(data.cluster(k), [2, 1][k], 6, 0.1, 0.0),
                                   atol=ROUNDING)
    assert map_residual(W, W, data.X, data.labels, all_on) == 0.0


def test_map_residual_and_rule_arguments_are_checked():
    X = np.array([[2.0, -1.0], [0.0, 1.5]])
    with pytest.raises(ValueError, match="rule"):
        cluster_maps(X, X, X, [0, 1], rule="majority")
    with pytest.raises(ValueError, match="predicted_maps"):
        map_residual(X, X, X, [0, 1], {0: np.eye(2)})
    with pytest.raises(ValueError, match="predicted_maps\\[1\\]"):
        map_residual(X, X, X, [0, 1], {0: np.eye(2), 1: np.eye(3)})


def test_aligned_distance_sees_through_permutations_and_block_rotations():
    data, W, rotated = rotated_and_permuted()                # rotate inside blocks, then permute
    # Procrustes recovers O_k exactly up to the SVD's rounding: ≈ 1e-15·‖W‖.
    assert aligned_distance(rotated, W, data.X, data.labels) <= ROUNDING * np.linalg.norm(W)
    noise = 1e-3 * np.random.default_rng(0).standard_normal(W.shape)
    # The best O_k is at least as good as the identity alignment.
    assert aligned_distance(W + noise, W, data.X, data.labels) <= np.linalg.norm(noise) * (1 + ROUNDING)
    assert aligned_distance(W[:, :3], W, data.X, data.labels) == np.inf   # a block lost a column


def rotated_and_permuted():
    data = separable_clusters(6, [4, 4], alpha=0.05, beta=-0.5, norm=2.0, seed=1)
    W = partition_weights(data.X, data.labels, [2, 2], 0.1, 0.0)
    angle = 0.3
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    O = np.zeros((4, 4))
    O[:2, :2], O[2:, 2:] = rotation, rotation.T
    return data, W, (W @ O)[:, [3, 2, 1, 0]]


def test_align_prediction_returns_the_prediction_in_the_trained_order_and_rotation():
    data, W, rotated = rotated_and_permuted()
    # Procrustes recovers O_k up to the SVD's rounding: ≈ 1e-15·‖W‖ per entry
    np.testing.assert_allclose(align_prediction(rotated, W, data.X, data.labels), rotated,
                               atol=ROUNDING * np.linalg.norm(W))
    noisy = W + 1e-2 * np.random.default_rng(2).standard_normal(W.shape)
    aligned = align_prediction(noisy, W, data.X, data.labels)
    # the distance is exactly that to the aligned prediction when every column is in a block
    assert aligned_distance(noisy, W, data.X, data.labels) == pytest.approx(np.linalg.norm(noisy - aligned),
                                                                            rel=ROUNDING)
    with pytest.raises(ValueError, match="different sizes"):
        align_prediction(W[:, :3], W, data.X, data.labels)


def test_compare_to_prediction_is_blind_to_the_symmetries_and_sees_a_change():
    data, W, rotated = rotated_and_permuted()
    same = compare_to_prediction(rotated, rotated, W, data.X, data.labels)
    assert same.map_error <= ROUNDING and same.aligned_W1 <= ROUNDING and same.factor_gap == 0.0
    assert same.same_blocks and same.neurons == {0: (2, 2), 1: (2, 2)}
    # untied: rescaling a column between W1 and W2 leaves the maps, not the factors
    W1, W2 = rotated.copy(), rotated.copy()
    W1[:, 0] *= 2.0
    W2[:, 0] /= 2.0
    rescaled = compare_to_prediction(W1, W2, W, data.X, data.labels)
    assert rescaled.map_error <= ROUNDING and rescaled.aligned_W1 > 0.1 and rescaled.factor_gap > 0.1
    # a record with the theory's maps gives the same as the maps of its W (eq. (8) blocks, stable masks)
    record = type("Record", (), {"W": W, "linear_maps": cluster_maps(W, W, data.X, data.labels)})()
    assert compare_to_prediction(rotated, rotated, record, data.X, data.labels).map_error <= ROUNDING
    # a block that lost a column: maps differ, no alignment
    lost = compare_to_prediction(W[:, [0, 2, 3]], W[:, [0, 2, 3]], W, data.X, data.labels)
    assert not lost.same_blocks and lost.aligned_W1 == np.inf and lost.map_errors[0] > 0.01
